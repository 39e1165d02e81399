"""The HTTP function: route, read and validate, pick the key, open the upstream, stream back."""

from __future__ import annotations

import logging

import flask
from werkzeug.exceptions import RequestEntityTooLarge

from relay.chat_request import parse_chat_request
from relay.config import Settings
from relay.errors import (
    ClientError,
    MethodNotAllowed,
    MissingApiKey,
    NotFound,
    PayloadTooLarge,
    RelayError,
    UpstreamHTTPError,
    UpstreamTimeout,
)
from relay.reply import ReplyStream
from relay.request_log import RequestLog
from relay.responses import error_response, stream_response
from relay.upstream import Upstream
from relay.wire import TextStream

logger = logging.getLogger(__name__)

CHAT_PATHS = ("/", "/api/chat")


class ChatRelay:
    """Serves the original route's endpoint; one instance per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.upstream = Upstream(settings)

    def __call__(self, request: flask.Request) -> flask.Response:
        log = RequestLog(
            method=request.method,
            path=request.path,
            user_agent=request.headers.get("User-Agent", ""),
        )
        try:
            return self._serve(request, log)
        except RelayError as error:
            if isinstance(error, UpstreamHTTPError):
                log.upstream_status = error.status
            log.finish(error.status, _outcome(error))
            return error_response(error)
        except Exception:
            # A bug: say so in the log (type only) and give the caller a plain 500.
            logger.exception("Unexpected error while serving %s %s", request.method, request.path)
            log.finish(500, "error")
            return error_response(RelayError("Internal error in the relay; the request was not completed."))

    def _serve(self, request: flask.Request, log: RequestLog) -> flask.Response:
        if request.path not in CHAT_PATHS:
            raise NotFound(f"Not found: {request.path}. The chat endpoint is POST /api/chat (or POST /).")
        if request.method != "POST":
            raise MethodNotAllowed(request.method, request.path, ("POST",))

        chat = parse_chat_request(self._read_body(request))
        log.model = chat.model
        api_key = chat.api_key or self.settings.openai_api_key
        if not api_key:
            raise MissingApiKey()

        secrets = (api_key,)
        response = self.upstream.open_chat_stream(api_key, chat.upstream_body())
        log.upstream_status = response.status_code
        body = ReplyStream(response, TextStream(chat.model), log, self.settings, secrets)
        return stream_response(body)

    def _read_body(self, request: flask.Request) -> bytes:
        limit = self.settings.max_body_bytes
        # Werkzeug refuses a declared length over the maximum before reading, but cuts a
        # chunked body at the maximum without a word: read one byte more to tell.
        request.max_content_length = limit + 1
        try:
            body = request.get_data(cache=True)
        except RequestEntityTooLarge:
            raise PayloadTooLarge(limit) from None
        if len(body) > limit:
            raise PayloadTooLarge(limit)
        return body


def _outcome(error: RelayError) -> str:
    if isinstance(error, ClientError):
        return "rejected"
    if isinstance(error, UpstreamTimeout):
        return "timeout"
    return "upstream_error"
