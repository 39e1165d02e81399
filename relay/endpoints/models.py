"""GET /v1/models and GET /v1/models/{model}: every route's models, prefixed, filtered by ALLOWED_MODELS."""

from __future__ import annotations

import logging
from typing import Any

from relay.access.policy import bearer_key, choose_key, model_allowed
from relay.config import Settings
from relay.endpoints.base import Call, Upstreams
from relay.endpoints.course import passed_on, read_while_there
from relay.errors import KeyRequired, MissingApiKey, NotFound
from relay.formats import jsoncodec
from relay.serving.writer import Written
from relay.upstream.bodies import JSON, Answer
from relay.upstream.failures import UpstreamError

logger = logging.getLogger(__name__)

MODEL_PATH = "/v1/models/"


class ModelList:
    methods: tuple[str, ...] = ("GET",)
    needs_token = True

    def __init__(self, settings: Settings, upstreams: Upstreams) -> None:
        self.settings = settings
        self.upstreams = upstreams

    def serve(self, call: Call) -> Written:
        listed = listed_models(self.settings, self.upstreams, call)
        if isinstance(listed, Written):
            return listed
        call.log.upstream_status = 200
        return call.writer.fixed(200, jsoncodec.dumps({"object": "list", "data": listed}), JSON, outcome="ok")


class ModelEntry(ModelList):
    """One model of that list (the SDKs' models.retrieve), or OpenAI's 404."""

    def serve(self, call: Call) -> Written:
        name = call.request.path.removeprefix(MODEL_PATH)
        call.log.model = name
        listed = listed_models(self.settings, self.upstreams, call)
        if isinstance(listed, Written):
            return listed
        for entry in listed:
            if entry["id"] == name:
                call.log.upstream_status = 200
                return call.writer.fixed(200, jsoncodec.dumps(entry), JSON, outcome="ok")
        raise NotFound(
            f"The model '{name}' does not exist, or this relay does not offer it (GET /v1/models lists them)."
        )


def listed_models(settings: Settings, upstreams: Upstreams, call: Call) -> list[dict[str, Any]] | Written:
    """Every route's models, prefixed and filtered; or the default route's failure, as it came."""
    client_key = bearer_key(settings, call.authorization)
    listed: list[dict[str, Any]] = []
    default_failure: Answer | None = None
    reached = keyless = 0
    routes = upstreams.router.all
    for route in routes:
        try:
            # The caller's own key goes where its chat would: the default route, not every host.
            api_key = choose_key(settings, client_key if route.prefix == "" else None, route)
            # What an upstream lists is passed on, but not a key or header value it might echo.
            call.writer.keep_secret(api_key, *route.secrets)
            with call.client.interruptible():
                response = upstreams.of(route).send("GET", "/models", api_key, None, accept=JSON)
            answer = read_while_there(call, response)
        except MissingApiKey:
            keyless += 1
            continue
        except UpstreamError as error:
            logger.warning("Listing the models of %s failed: %s", route.host, error.message)
            continue
        if answer.status >= 400:
            logger.warning("Listing the models of %s failed: status %d", route.host, answer.status)
            if route.prefix == "":
                default_failure = answer
            continue
        try:
            payload = jsoncodec.loads(answer.body)
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
            call.log.upstream_status = default_failure.status
            return passed_on(call, default_failure)
        if keyless == len(routes):
            raise KeyRequired()
        raise UpstreamError("OpenAI API error: no upstream answered the model list.")
    return listed
