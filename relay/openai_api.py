"""The OpenAI-compatible endpoints: POST /v1/chat/completions and GET /v1/models.

The OpenAI SDKs (and anything that speaks the API) point their base URL at the
relay and keep working: the request body passes through as it is, only the
model's route prefix is taken off; streams come back event by event; the
upstream's errors keep their status, JSON body and rate-limit headers, so the
SDKs raise their usual exceptions and back off as asked; the relay's own refusals
have the same JSON shape.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import flask
import httpx

from relay import jsoncodec
from relay.chat_request import check_depth, parse_json_object, token_count
from relay.client_connection import stop_if_client_leaves
from relay.config import Route, Settings
from relay.errors import BadRequest, KeyRequired, MissingApiKey, NotFound, UpstreamError
from relay.event_stream import EventPassThrough, completion_as_events, error_event
from relay.policy import bearer_key, check_model, check_token_limit, choose_key, model_allowed
from relay.redaction import redact
from relay.reply import ReplyStream
from relay.request_log import RequestLog
from relay.responses import fixed_response, json_error_body, stream_response
from relay.routes import Router
from relay.upstream import WHOLE_BODY_LIMIT, Upstream, body_kind, read_body

logger = logging.getLogger(__name__)

EVENT_STREAM = "text/event-stream; charset=utf-8"
JSON = "application/json"
# The upstream's headers an SDK acts on, passed on with its answer.
PASSED_HEADERS = ("retry-after", "retry-after-ms", "x-request-id", "openai-processing-ms")
PASSED_HEADER_PREFIX = "x-ratelimit-"


class OpenAIEndpoints:
    def __init__(self, settings: Settings, router: Router, upstreams: dict[str, Upstream]) -> None:
        self.settings = settings
        self.router = router
        self.upstreams = upstreams  # by route prefix

    def chat_completions(self, request: flask.Request, body: bytes, log: RequestLog) -> flask.Response:
        data = parse_json_object(body)
        model = data.get("model")
        if not isinstance(model, str) or not model.strip():
            raise BadRequest('"model" must be a non-empty string such as "gpt-4o-mini".')
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest('"messages" must be a non-empty list of messages.')
        for name, value in data.items():
            check_depth(value, name)
        log.model = model
        check_model(self.settings, model)
        route, data["model"] = self.router.route(model)
        self._limit_tokens(data, route)

        client_key = bearer_key(self.settings, request.headers.get("Authorization"))
        api_key = _key_or_401(self.settings, client_key, route)
        stream = data.get("stream") is True
        upstream = self.upstreams[route.prefix]
        client_socket = request.environ.get("gunicorn.socket")
        with stop_if_client_leaves(client_socket):
            response = upstream.send(
                "POST",
                "/chat/completions",
                api_key,
                jsoncodec.dumps(data),
                accept=EVENT_STREAM if stream else JSON,
            )
            streamed = stream and response.is_success and body_kind(response) == "stream"
            # A whole answer can take as long to arrive as a stream's first byte.
            answer = None if streamed else read_answer(response)
        log.upstream_status = response.status_code
        if answer is None:
            reply = ReplyStream(
                response,
                EventPassThrough(secrets=(api_key,)),
                log=log,
                settings=self.settings,
                secrets=(api_key,),
                client_socket=client_socket,
            )
            return stream_response(reply, content_type=EVENT_STREAM)
        if stream and answer.status < 300 and answer.content_type.lower().startswith(JSON):
            # The upstream ignored `stream` and sent the whole completion: the caller gets its stream.
            events = completion_as_events(answer.body)
            outcome = "ok"
            if events is None:
                events = error_event(
                    f"The upstream ({answer.host}) answered {answer.status} with JSON that holds no reply."
                )
                outcome = "upstream_error"
            log.finish(answer.status, outcome)
            as_stream = fixed_response(events, answer.status, EVENT_STREAM)
            as_stream.headers.extend(answer.headers)
            return as_stream
        return answer_response(answer, log, secrets=(api_key,))

    def models(self, request: flask.Request, log: RequestLog) -> flask.Response:
        """Every route's models, prefixed, filtered by ALLOWED_MODELS."""
        listed = self._listed_models(request, log)
        if isinstance(listed, flask.Response):
            return listed
        log.upstream_status = 200
        log.finish(200, "ok")
        return fixed_response(jsoncodec.dumps({"object": "list", "data": listed}), 200, JSON)

    def model(self, request: flask.Request, log: RequestLog, name: str) -> flask.Response:
        """One model of that list (the SDKs' models.retrieve), or OpenAI's 404."""
        log.model = name
        listed = self._listed_models(request, log)
        if isinstance(listed, flask.Response):
            return listed
        for entry in listed:
            if entry["id"] == name:
                log.upstream_status = 200
                log.finish(200, "ok")
                return fixed_response(jsoncodec.dumps(entry), 200, JSON)
        raise NotFound(
            f"The model '{name}' does not exist, or this relay does not offer it (GET /v1/models lists them)."
        )

    def _listed_models(
        self, request: flask.Request, log: RequestLog
    ) -> list[dict[str, Any]] | flask.Response:
        """Every route's models, prefixed and filtered; or the default route's failure, as it came."""
        client_key = bearer_key(self.settings, request.headers.get("Authorization"))
        listed: list[dict[str, Any]] = []
        default_failure: Answer | None = None
        default_key: str | None = None  # the key that failure was asked with, to redact from it
        reached = keyless = 0
        for route in self.router.all:
            try:
                # The caller's own key goes where its chat would: the default route, not every host.
                api_key = choose_key(self.settings, client_key if route.prefix == "" else None, route)
                answer = read_answer(
                    self.upstreams[route.prefix].send("GET", "/models", api_key, None, accept=JSON)
                )
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
                payload = jsoncodec.loads(answer.body)
            except jsoncodec.JSONDecodeError:
                logger.warning("Listing the models of %s failed: not JSON", route.host)
                continue
            reached += 1
            entries = payload.get("data") if isinstance(payload, dict) else None
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                    name = route.prefix + entry["id"]
                    if model_allowed(self.settings, name):
                        listed.append({**entry, "id": name})
        if not reached:
            if default_failure is not None:
                return answer_response(default_failure, log, secrets=(default_key,))
            if keyless == len(self.router.all):
                raise KeyRequired()
            raise UpstreamError("OpenAI API error: no upstream answered the model list.")
        return listed

    def _limit_tokens(self, data: dict[str, Any], route: Route) -> None:
        """MAX_TOKENS_LIMIT, as on the original endpoint: per reply, so one choice per request."""
        limit = self.settings.max_tokens_limit
        if limit is None:
            return
        asked = [name for name in ("max_tokens", "max_completion_tokens") if data.get(name) is not None]
        for name in asked:
            data[name] = token_count(name, data[name])
            check_token_limit(name, data[name], limit)
        choices = data.get("n")
        if choices is not None and (isinstance(choices, bool) or choices != 1):  # True == 1 in Python
            raise BadRequest('"n" must be 1 on this relay: each choice is another reply (MAX_TOKENS_LIMIT).')
        if not asked:
            # The owner's cap, where the caller set none. OpenAI's reasoning models refuse
            # max_tokens; other OpenAI-compatible servers may not know max_completion_tokens.
            data[_token_field(route)] = limit


def _token_field(route: Route) -> str:
    host = route.host.split(":")[0]
    return "max_completion_tokens" if host.endswith(("openai.com", "openai.azure.com")) else "max_tokens"


@dataclass(frozen=True)
class Answer:
    """A whole answer from the upstream: a completion, a model list, or an error."""

    status: int
    content_type: str
    body: bytes
    host: str
    headers: tuple[tuple[str, str], ...]  # the ones an SDK acts on (PASSED_HEADERS)


def read_answer(response: httpx.Response) -> Answer:
    try:
        body = read_body(response, WHOLE_BODY_LIMIT)
    finally:
        response.close()
    passed = tuple(
        (name, value)
        for name, value in response.headers.items()
        if name in PASSED_HEADERS or name.startswith(PASSED_HEADER_PREFIX)
    )
    host = response.request.url.host
    return Answer(response.status_code, response.headers.get("content-type", JSON), body, host, passed)


def answer_response(answer: Answer, log: RequestLog, secrets: tuple[str | None, ...]) -> flask.Response:
    """The upstream's answer, status and rate-limit headers as they came; JSON even where it sent none."""
    status, content_type, body = answer.status, answer.content_type, answer.body
    if not (200 <= status < 300 or 400 <= status <= 599):
        # A redirect, or a status no client knows: the base URL likely points somewhere else.
        status, content_type = 502, JSON
        body = json_error_body(
            f"The upstream ({answer.host}) answered {answer.status}, which the relay cannot pass on; "
            "check OPENAI_BASE_URL (or the route's base_url).",
            status,
        )
    elif not content_type.lower().startswith(JSON):
        # An HTML error page or the like: the SDKs need JSON to raise the right error.
        status = status if status >= 400 else 502
        body = json_error_body(
            f"The upstream ({answer.host}) answered {answer.status} without a JSON body.", status
        )
        content_type = JSON
    elif status >= 400:
        # OpenAI's 401 quotes the refused key, masked: not for the caller to see.
        body = redact(body.decode("utf-8", "replace"), secrets).encode()
    log.finish(status, "ok" if status < 400 else "upstream_error")
    response = fixed_response(body, status, content_type)
    response.headers.extend(answer.headers)
    return response


def _key_or_401(settings: Settings, client_key: str | None, route: Route) -> str | None:
    try:
        return choose_key(settings, client_key, route)
    except MissingApiKey:
        raise KeyRequired() from None
