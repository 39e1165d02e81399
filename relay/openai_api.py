"""The OpenAI-compatible endpoints: POST /v1/chat/completions and GET /v1/models.

The OpenAI SDKs (and anything that speaks the API) point their base URL at the
relay and keep working: the request body passes through as it is, only the
model's route prefix is taken off; streams come back event by event; the
upstream's errors keep their status and JSON body, so the SDKs raise their usual
exceptions; the relay's own refusals have the same JSON shape.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import flask
import httpx

from relay import jsoncodec
from relay.chat_request import parse_json_object
from relay.config import Settings
from relay.errors import BadRequest, KeyRequired, MissingApiKey, UpstreamError
from relay.event_stream import EventPassThrough
from relay.policy import bearer_key, check_model, choose_key, model_allowed
from relay.reply import ReplyStream
from relay.request_log import RequestLog
from relay.responses import fixed_response, json_error_body, stream_response
from relay.routes import Route, Router
from relay.upstream import Upstream, body_kind

logger = logging.getLogger(__name__)

EVENT_STREAM = "text/event-stream; charset=utf-8"
JSON = "application/json"
# A whole (not streamed) answer, or a model list, is read up to this.
WHOLE_BODY_LIMIT = 16 * 1024 * 1024


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
        log.model = model
        check_model(self.settings, model)
        self._limit_tokens(data)

        route, data["model"] = self.router.route(model)
        client_key = bearer_key(self.settings, request.headers.get("Authorization"))
        api_key = _key_or_401(self.settings, client_key, route)
        stream = data.get("stream") is True
        upstream = self.upstreams[route.prefix]
        response = upstream.send(
            "POST",
            "/chat/completions",
            api_key,
            jsoncodec.dumps(data),
            accept=EVENT_STREAM if stream else JSON,
        )
        log.upstream_status = response.status_code
        if stream and response.is_success and body_kind(response) == "stream":
            reply = ReplyStream(
                response,
                EventPassThrough(),
                log=log,
                settings=self.settings,
                secrets=(api_key,),
                client_socket=request.environ.get("gunicorn.socket"),
            )
            return stream_response(reply, content_type=EVENT_STREAM)
        return answer_response(read_answer(response), log)

    def models(self, request: flask.Request, log: RequestLog) -> flask.Response:
        """Every route's models, prefixed, filtered by ALLOWED_MODELS."""
        client_key = bearer_key(self.settings, request.headers.get("Authorization"))
        listed: list[dict[str, Any]] = []
        default_failure: Answer | None = None
        reached = 0
        for route in self.router.all:
            try:
                api_key = choose_key(self.settings, client_key, route)
                answer = read_answer(
                    self.upstreams[route.prefix].send("GET", "/models", api_key, None, accept=JSON)
                )
            except (MissingApiKey, UpstreamError) as error:
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
            for entry in payload.get("data", []) if isinstance(payload, dict) else []:
                if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                    name = route.prefix + entry["id"]
                    if model_allowed(self.settings, name):
                        listed.append({**entry, "id": name})
        if not reached and default_failure is not None:
            return answer_response(default_failure, log)
        if not reached:
            raise UpstreamError("No upstream answered the model list.")
        log.upstream_status = 200
        log.finish(200, "ok")
        return fixed_response(jsoncodec.dumps({"object": "list", "data": listed}), 200, JSON)

    def _limit_tokens(self, data: dict[str, Any]) -> None:
        limit = self.settings.max_tokens_limit
        if limit is None:
            return
        asked = [name for name in ("max_tokens", "max_completion_tokens") if data.get(name) is not None]
        for name in asked:
            value = data[name]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise BadRequest(f'"{name}" must be a positive whole number.')
            if value > limit:
                raise BadRequest(f'"{name}" must be at most {limit} on this relay (MAX_TOKENS_LIMIT).')
        if not asked:
            data["max_tokens"] = limit  # the owner's cap, where the caller set none


@dataclass(frozen=True)
class Answer:
    """A whole answer from the upstream: a completion, a model list, or an error."""

    status: int
    content_type: str
    body: bytes
    host: str


def read_answer(response: httpx.Response) -> Answer:
    try:
        body = _read_whole(response)
    finally:
        response.close()
    host = response.request.url.host
    return Answer(response.status_code, response.headers.get("content-type", JSON), body, host)


def answer_response(answer: Answer, log: RequestLog) -> flask.Response:
    """The upstream's answer and status as they came; JSON even where the upstream sent none."""
    status, content_type, body = answer.status, answer.content_type, answer.body
    if not content_type.lower().startswith(JSON):
        # An HTML error page or the like: the SDKs need JSON to raise the right error.
        status = status if status >= 400 else 502
        body = json_error_body(
            f"The upstream ({answer.host}) answered {answer.status} without a JSON body.", status
        )
        content_type = JSON
    log.finish(status, "ok" if status < 400 else "upstream_error")
    return fixed_response(body, status, content_type)


def _key_or_401(settings: Settings, client_key: str | None, route: Route) -> str | None:
    try:
        return choose_key(settings, client_key, route)
    except MissingApiKey:
        raise KeyRequired() from None


def _read_whole(response: httpx.Response) -> bytes:
    parts: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        parts.append(chunk)
        size += len(chunk)
        if size > WHOLE_BODY_LIMIT:
            raise UpstreamError("The upstream's answer is larger than the relay passes on (16 MiB).")
    return b"".join(parts)
