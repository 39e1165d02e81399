"""The HTTP function: route, check access, read and validate, pick the key, open the upstream, stream back."""

from __future__ import annotations

import logging
from dataclasses import replace

import flask
from gunicorn.http.errors import NoMoreData, ParseException  # type: ignore[import-untyped]
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from relay import cors
from relay.chat_request import parse_chat_request
from relay.client_connection import has_left, read_timeout, stop_if_client_leaves
from relay.config import Settings
from relay.errors import (
    BadRequest,
    BodyTimeout,
    ClientError,
    ClientGone,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RelayError,
    UpstreamHTTPError,
    UpstreamTimeout,
)
from relay.openai_api import OpenAIEndpoints
from relay.page import Page
from relay.policy import apply_limits, check_access_token, choose_key
from relay.reply import ReplyStream
from relay.request_log import REQUEST_ID_HEADER, RequestLog, trace_of
from relay.responses import ENDPOINTS_HINT, empty_response, error_response, stream_response
from relay.routes import Router
from relay.upstream import Upstream
from relay.wire import TextStream

logger = logging.getLogger(__name__)


# path -> the methods it serves (OPTIONS, for CORS preflights, everywhere)
ENDPOINTS = {
    "/": ("POST",),  # the original route, also at the root (and the page, GET)
    "/api/chat": ("POST",),
    "/v1/chat/completions": ("POST",),  # OpenAI-compatible
    "/v1/models": ("GET",),
    "/v1/models/{model}": ("GET",),  # one model, as the SDKs' models.retrieve asks
}
MODEL_PATH = "/v1/models/"


def endpoint(path: str) -> str:
    """The ENDPOINTS key a path is served by (a path that names a model counts as /v1/models/{model})."""
    if path.startswith(MODEL_PATH) and len(path) > len(MODEL_PATH):
        return "/v1/models/{model}"
    return path


PAGE_METHODS = ("GET", "HEAD")


class ChatRelay:
    """Serves every endpoint; one instance per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.router = Router(settings.default_route, settings.routes)
        self.upstreams = {route.prefix: Upstream(settings, route) for route in self.router.all}
        self.openai = OpenAIEndpoints(settings, self.router, self.upstreams)
        self.page = Page(settings) if settings.serve_page else None

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
            cors.own_origin(request.scheme, request.host, request.headers.get("X-Forwarded-Proto")),
        )
        # Whatever reads the body from here on, the framework included, stops past the limit.
        request.max_content_length = self.settings.max_body_bytes + 1
        try:
            response = self._serve(request, origin, allowed, log)
        except RelayError as error:
            if isinstance(error, UpstreamHTTPError):
                log.upstream_status = error.status
            log.finish(error.status, _outcome(error))
            response = error_response(error, openai=request.path.startswith("/v1/"))
        except Exception:
            # A bug: say so in the log (type only) and give the caller a plain 500.
            logger.exception("Unexpected error while serving %s %s", request.method, request.path)
            log.finish(500, "error")
            response = error_response(
                RelayError("Internal error in the relay; the request was not completed."),
                openai=request.path.startswith("/v1/"),
            )
        response.headers[REQUEST_ID_HEADER] = log.request_id
        # Every answer to an allowed origin carries CORS headers, or the page cannot read it.
        response.vary.add("Origin")
        if allowed and origin is not None:
            response.headers.update(cors.response_headers(origin))
        return response

    def _serve(
        self, request: flask.Request, origin: str | None, allowed: bool, log: RequestLog
    ) -> flask.Response:
        page = self.page is not None and self.page.serves(request.path)
        if page and request.method in PAGE_METHODS:
            log.finish(200, "ok")
            return self.page.response(request.path)  # type: ignore[union-attr]
        served = endpoint(request.path)
        if served not in ENDPOINTS:
            if page:
                raise MethodNotAllowed(request.method, request.path, PAGE_METHODS)
            raise NotFound(f"Not found: {request.path}. {ENDPOINTS_HINT}")
        if origin is not None and not allowed:
            # Refused before anything is spent: a page from this origin could still send a
            # "simple" POST without a preflight, and the browser would only hide the answer.
            raise Forbidden(f"Origin {origin} is not allowed to use this relay (ALLOWED_ORIGINS).")
        if request.method == "OPTIONS":
            return self._preflight(request, origin, log)
        if request.method not in ENDPOINTS[served]:
            raise MethodNotAllowed(request.method, request.path, self._methods(served))
        check_access_token(self.settings, request.headers.get("Authorization"))
        if served == "/v1/chat/completions":
            return self.openai.chat_completions(request, self._read_body(request), log)
        if served == "/v1/models":
            return self.openai.models(request, log)
        if served == "/v1/models/{model}":
            return self.openai.model(request, log, request.path.removeprefix(MODEL_PATH))

        chat = apply_limits(self.settings, parse_chat_request(self._read_body(request)))
        log.model = chat.model
        route, upstream_model = self.router.route(chat.model)
        api_key = choose_key(self.settings, chat.api_key, route)

        body = replace(chat, model=upstream_model).upstream_body(stream_usage=self.settings.stream_usage)
        client_socket = request.environ.get("gunicorn.socket")
        with stop_if_client_leaves(client_socket):
            response = self.upstreams[route.prefix].open_chat_stream(api_key, body)
        log.upstream_status = response.status_code
        reply = ReplyStream(
            response,
            TextStream(chat.model),
            log=log,
            settings=self.settings,
            secrets=(api_key,),
            client_socket=client_socket,
        )
        return stream_response(reply)

    def _methods(self, path: str) -> tuple[str, ...]:
        methods = (*ENDPOINTS[path], "OPTIONS")
        if self.page is not None and self.page.serves(path):
            return (*PAGE_METHODS, *methods)
        return methods

    def _preflight(self, request: flask.Request, origin: str | None, log: RequestLog) -> flask.Response:
        log.finish(204, "ok")
        response = empty_response(204, {"Allow": ", ".join(self._methods(endpoint(request.path)))})
        if origin is not None:
            response.headers.update(
                cors.preflight_headers(
                    origin,
                    request.headers.get("Access-Control-Request-Headers"),
                    private_network=request.headers.get("Access-Control-Request-Private-Network") == "true",
                )
            )
        return response

    def _read_body(self, request: flask.Request) -> bytes:
        limit = self.settings.max_body_bytes
        # A body that stops arriving is answered 408 after REQUEST_BODY_TIMEOUT, so a stalled upload
        # does not hold one of the worker's connections for ever (gunicorn bounds only the head).
        timeout = self.settings.body_timeout
        client_socket = request.environ.get("gunicorn.socket")
        try:
            with read_timeout(client_socket, timeout):
                body = request.get_data(cache=True)
        except RequestEntityTooLarge:
            raise PayloadTooLarge(limit) from None
        except ParseException as error:  # gunicorn's: a chunked body with bad framing
            if has_left(client_socket):  # or one cut short where a CRLF was due
                raise ClientGone() from None
            raise BadRequest(
                f"The request body's chunked framing is invalid ({type(error).__name__}); "
                "send it with Content-Length, or as valid chunks."
            ) from None
        except (ClientDisconnected, NoMoreData, OSError) as error:
            # Werkzeug reports a failed read, the socket's timeout included, as a disconnect.
            cause = error.__context__ if isinstance(error, ClientDisconnected) else error
            if isinstance(cause, TimeoutError):
                raise BodyTimeout(timeout) from None
            raise ClientGone() from None
        declared = request.content_length
        if declared is not None and len(body) < declared:
            raise ClientGone()  # gunicorn ends a body cut short by the client without an error
        # Werkzeug refuses a declared length over the maximum (set one byte above the
        # limit in __call__) before reading, but cuts a chunked body at the maximum
        # without a word: the byte more tells.
        if len(body) > limit:
            raise PayloadTooLarge(limit)
        return body


def _outcome(error: RelayError) -> str:
    if isinstance(error, ClientGone):
        return "client_gone"
    if isinstance(error, ClientError):
        return "rejected"
    if isinstance(error, UpstreamTimeout):
        return "timeout"
    return "upstream_error"
