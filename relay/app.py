"""The function: every request's course, from its log line's start to the response, errors included.

A table of endpoints serves the paths (relay/endpoints/); this module does what all
of them share: the log line, the origin check and CORS headers, the access token,
preflights, the page, and turning any error into its response and outcome.
"""

from __future__ import annotations

import logging

import flask

from relay.access import cors
from relay.access.callers import InFlight, identify
from relay.access.limiter import Limiter
from relay.access.policy import check_access_token
from relay.config import Settings
from relay.endpoints.anthropic_messages import COUNT_TOKENS_PATH, MESSAGES_PATH, CountTokens, Messages
from relay.endpoints.base import Call, Endpoint, Upstreams
from relay.endpoints.chat_completions import ChatCompletions
from relay.endpoints.embeddings import Embeddings
from relay.endpoints.models import MODEL_PATH, ModelEntry, ModelList
from relay.endpoints.original_chat import OriginalChat
from relay.endpoints.page_config import CONFIG_PATH, PageConfig
from relay.endpoints.responses_api import COMPACT_PATH, Responses, ResponsesCompact
from relay.endpoints.stored_responses import STORED_PATH, StoredResponse
from relay.errors import (
    ENDPOINTS_HINT,
    Dialect,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    RelayError,
    ShuttingDown,
    UpgradeRequired,
)
from relay.page import Page
from relay.serving.request_body import limit_body
from relay.serving.request_log import REQUEST_ID_HEADER, RequestLog, trace_of
from relay.serving.shutdown import SHUTDOWN
from relay.serving.writer import Written

logger = logging.getLogger(__name__)

PAGE_METHODS = ("GET", "HEAD")


def dialect_of(path: str) -> Dialect:
    """The API a path speaks: Anthropic's under /v1/messages, OpenAI's elsewhere on /v1/, or the original."""
    if path == MESSAGES_PATH or path.startswith(MESSAGES_PATH + "/"):
        return "anthropic"
    return "openai" if path.startswith("/v1/") else "original"


class ChatRelay:
    """Serves every endpoint; one instance per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        upstreams = Upstreams(settings)
        limiter = Limiter(settings.limits)
        self.in_flight = InFlight(settings.max_requests_per_caller)
        original = OriginalChat(settings, upstreams, limiter)
        # path -> its endpoint; OPTIONS, for CORS preflights, is served everywhere.
        self.endpoints: dict[str, Endpoint] = {
            "/": original,  # the original route, also at the root (where the page is, for GET)
            "/api/chat": original,
            "/v1/chat/completions": ChatCompletions(settings, upstreams, limiter),
            "/v1/responses": Responses(settings, upstreams, limiter),
            COMPACT_PATH: ResponsesCompact(settings, upstreams, limiter),
            "/v1/embeddings": Embeddings(settings, upstreams, limiter),
            # Anthropic's, for its SDKs and Claude Code
            MESSAGES_PATH: Messages(settings, upstreams, limiter),
            COUNT_TOKENS_PATH: CountTokens(settings, upstreams, limiter),
            "/v1/models": ModelList(settings, upstreams),
            CONFIG_PATH: PageConfig(settings),  # what a page may offer; served with or without the page
        }
        self.model_entry = ModelEntry(settings, upstreams)  # /v1/models/{model}
        self.stored_response = StoredResponse(settings, upstreams, limiter)  # /v1/responses/{id}...
        self.page = Page(settings) if settings.serve_page else None

    def endpoint(self, path: str) -> Endpoint | None:
        if path.startswith(MODEL_PATH) and len(path) > len(MODEL_PATH):
            return self.model_entry
        found = self.endpoints.get(path)
        if found is None and path.startswith(STORED_PATH) and len(path) > len(STORED_PATH):
            return self.stored_response
        return found

    def __call__(self, request: flask.Request) -> flask.Response:
        log = RequestLog(
            method=request.method,
            path=request.path,
            user_agent=request.headers.get("User-Agent", ""),
            trace=trace_of(
                self.settings.google_cloud_project,
                request.headers.get("X-Cloud-Trace-Context"),
                request.headers.get("traceparent"),
            ),
        )
        origin = request.headers.get("Origin")
        allowed = origin is not None and cors.origin_allowed(
            self.settings,
            origin,
            cors.own_origin(
                self.settings, request.scheme, request.host, request.headers.get("X-Forwarded-Proto")
            ),
        )
        limit_body(request, self.settings.max_body_bytes)
        call = Call(request, log, self.settings, dialect=dialect_of(request.path))
        try:
            if SHUTDOWN.draining:
                raise ShuttingDown()  # another instance takes it at once
            written = self._serve(call, origin, allowed)
        except RelayError as error:
            if error.outcome == "error":  # raised as a RelayError by the relay itself: still a bug
                logger.error("Relay error while serving %s %s", request.method, request.path)
            written = call.writer.error(error)
        except Exception:
            # A bug: say so in the log (type only) and give the caller a plain 500.
            logger.exception("Unexpected error while serving %s %s", request.method, request.path)
            failure = RelayError("Internal error in the relay; the request was not completed.")
            written = call.writer.error(failure)
        response = written.response
        response.headers[REQUEST_ID_HEADER] = log.request_id
        # Every answer to an allowed origin carries CORS headers, or the page cannot read it.
        response.vary.add("Origin")
        if allowed and origin is not None:
            response.headers.update(cors.response_headers(origin))
        return response

    def _serve(self, call: Call, origin: str | None, allowed: bool) -> Written:
        request = call.request
        if request.headers.get("Upgrade", "").strip().lower() == "websocket":
            # Codex tries a WebSocket first: a 426 sends it to POST at once (other answers cost it
            # seconds of retries, or end it). On any path, before the token: it costs nothing.
            raise UpgradeRequired(request.path)
        page = self.page is not None and self.page.serves(request.path)
        if page and request.method in PAGE_METHODS:
            return self.page.serve(request.path, call.writer)  # type: ignore[union-attr]
        endpoint = self.endpoint(request.path)
        if endpoint is None:
            if page:
                raise MethodNotAllowed(request.method, request.path, PAGE_METHODS)
            raise NotFound(f"Not found: {request.path}. {ENDPOINTS_HINT}")
        if origin is not None and not allowed:
            # Refused before anything is spent: a page from this origin could still send a
            # "simple" POST without a preflight, and the browser would only hide the answer.
            raise Forbidden(f"Origin {origin} is not allowed to use this relay (ALLOWED_ORIGINS).")
        if request.method == "OPTIONS":
            return self._preflight(call, endpoint, origin)
        if request.method not in endpoint.methods:
            raise MethodNotAllowed(request.method, request.path, self._methods(request.path, endpoint))
        token_name = (
            check_access_token(self.settings, call.authorization, call.api_key, call.dialect)
            if endpoint.needs_token
            else None
        )
        caller = call.caller = identify(
            token_name,
            self.settings.client_ip_hops,
            request.headers.get("X-Forwarded-For"),
            request.remote_addr,
        )
        call.log.caller = caller.name
        if self.in_flight.enter(caller):  # before the body is read: a caller's share holds from the start
            call.on_end(lambda: self.in_flight.leave(caller))
        return endpoint.serve(call)

    def _methods(self, path: str, endpoint: Endpoint) -> tuple[str, ...]:
        methods = (*endpoint.methods, "OPTIONS")
        if self.page is not None and self.page.serves(path):
            return (*PAGE_METHODS, *methods)
        return methods

    def _preflight(self, call: Call, endpoint: Endpoint, origin: str | None) -> Written:
        request = call.request
        headers = {"Allow": ", ".join(self._methods(request.path, endpoint))}
        if origin is not None:
            headers.update(
                cors.preflight_headers(
                    self.settings,
                    origin,
                    request.headers.get("Access-Control-Request-Headers"),
                    private_network=request.headers.get("Access-Control-Request-Private-Network") == "true",
                )
            )
        return call.writer.fixed(204, b"", None, headers.items(), outcome="ok")
