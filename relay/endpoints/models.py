"""GET /v1/models and GET /v1/models/{model}: every route's models, prefixed, filtered by ALLOWED_MODELS."""

from __future__ import annotations

import logging
from typing import Any

import flask

from relay.access.policy import bearer_key, choose_key, model_allowed
from relay.access.redaction import redactor_for
from relay.config import Settings
from relay.endpoints.answers import answer_response
from relay.endpoints.base import Call, Upstreams, read_whole
from relay.errors import KeyRequired, MissingApiKey, NotFound, UpstreamError
from relay.formats import jsoncodec
from relay.serving.responses import fixed_response
from relay.upstream.bodies import JSON, Answer

logger = logging.getLogger(__name__)

MODEL_PATH = "/v1/models/"


class ModelList:
    methods: tuple[str, ...] = ("GET",)

    def __init__(self, settings: Settings, upstreams: Upstreams) -> None:
        self.settings = settings
        self.upstreams = upstreams

    def serve(self, call: Call) -> flask.Response:
        listed = listed_models(self.settings, self.upstreams, call)
        if isinstance(listed, flask.Response):
            return listed
        call.log.upstream_status = 200
        call.log.finish(200, "ok")
        return fixed_response(jsoncodec.dumps({"object": "list", "data": listed}), 200, JSON)


class ModelEntry(ModelList):
    """One model of that list (the SDKs' models.retrieve), or OpenAI's 404."""

    def serve(self, call: Call) -> flask.Response:
        name = call.request.path.removeprefix(MODEL_PATH)
        call.log.model = name
        listed = listed_models(self.settings, self.upstreams, call)
        if isinstance(listed, flask.Response):
            return listed
        for entry in listed:
            if entry["id"] == name:
                call.log.upstream_status = 200
                call.log.finish(200, "ok")
                return fixed_response(jsoncodec.dumps(entry), 200, JSON)
        raise NotFound(
            f"The model '{name}' does not exist, or this relay does not offer it (GET /v1/models lists them)."
        )


def listed_models(
    settings: Settings, upstreams: Upstreams, call: Call
) -> list[dict[str, Any]] | flask.Response:
    """Every route's models, prefixed and filtered; or the default route's failure, as it came."""
    client_key = bearer_key(settings, call.authorization)
    listed: list[dict[str, Any]] = []
    default_failure: Answer | None = None
    default_key: str | None = None  # the key that failure was asked with, to redact from it
    reached = keyless = 0
    routes = upstreams.router.all
    for route in routes:
        try:
            # The caller's own key goes where its chat would: the default route, not every host.
            api_key = choose_key(settings, client_key if route.prefix == "" else None, route)
            with call.client.interruptible():
                response = upstreams.of(route).send("GET", "/models", api_key, None, accept=JSON)
            answer = read_whole(call, response)
        except MissingApiKey:
            keyless += 1
            continue
        except UpstreamError as error:
            logger.warning("Listing the models of %s failed: %s", route.host, error.message)
            continue
        if answer.status >= 400:
            logger.warning("Listing the models of %s failed: status %d", route.host, answer.status)
            if route.prefix == "":
                default_failure, default_key = answer, api_key
            continue
        try:
            # What an upstream lists is passed on: not a key it might echo in it (its own, or the caller's).
            payload = jsoncodec.loads(redactor_for((api_key,)).redact_bytes(answer.body))
        except jsoncodec.JSONDecodeError:
            logger.warning("Listing the models of %s failed: not JSON", route.host)
            continue
        reached += 1
        entries = payload.get("data") if isinstance(payload, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                name = route.prefix + entry["id"]
                if model_allowed(settings, name):
                    listed.append({**entry, "id": name})
    if not reached:
        if default_failure is not None:
            return answer_response(default_failure, call.log, default_key)
        if keyless == len(routes):
            raise KeyRequired()
        raise UpstreamError("OpenAI API error: no upstream answered the model list.")
    return listed
