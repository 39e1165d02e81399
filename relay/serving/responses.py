"""HTTP responses: the one place errors are rendered, and the stream's headers."""

from __future__ import annotations

from collections.abc import Iterable

import flask
from werkzeug.exceptions import HTTPException

from relay.errors import RelayError, openai_error
from relay.formats import jsoncodec
from relay.formats.original import encode_text

TEXT = "text/plain; charset=utf-8"
EVENT_STREAM = "text/event-stream; charset=utf-8"

STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    # nginx and some proxies buffer responses unless told not to.
    "X-Accel-Buffering": "no",
    "X-Content-Type-Options": "nosniff",
}


def fixed_response(body: bytes, status: int, content_type: str | None = TEXT) -> flask.Response:
    """A response with a body known in full, that never makes the server read the request's body.

    functions-framework reads the whole request body after any response that is not
    streamed, with no size limit: a 401 to an unauthenticated 300 MB POST would first
    buffer 300 MB. An iterator body counts as streamed, so that read is skipped; the
    Content-Length keeps it a plain, unchunked response.
    """
    response = flask.Response(iter([body]), status=status, content_type=content_type)
    response.headers["Content-Length"] = str(len(body))
    return response


def json_error_body(message: str, status: int) -> bytes:
    return jsoncodec.dumps(openai_error(message, status))


def error_response(error: RelayError, openai: bool = False) -> flask.Response:
    """Render any RelayError: its status, its message (plain text, or OpenAI's JSON on /v1/), its headers."""
    if openai:
        response = fixed_response(
            json_error_body(error.message, error.status), error.status, "application/json"
        )
    else:
        # The message may quote the caller's input, a lone surrogate included ("x\ud83d").
        response = fixed_response(encode_text(error.message), error.status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    for name, value in error.headers().items():
        response.headers[name] = value
    return response


# Where a caller who reached a path the relay does not serve should go instead.
ENDPOINTS_HINT = (
    "The endpoints are POST /api/chat (or POST /), and the OpenAI API's POST /v1/chat/completions, "
    "POST /v1/responses, POST /v1/embeddings and GET /v1/models."
)


def framework_error_response(error: HTTPException) -> flask.Response:
    """Plain text for an error the framework raises before the function runs."""
    status = error.code or 500
    message = f"{status} {error.name}: {flask.request.method} {flask.request.path} is not served here."
    if status == 404:
        message += " " + ENDPOINTS_HINT
    response = fixed_response(message.encode(), status)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def empty_response(status: int, headers: dict[str, str]) -> flask.Response:
    """A response with no body, such as a preflight's 204."""
    response = fixed_response(b"", status, content_type=None)
    del response.headers["Content-Type"]
    response.headers.update(headers)
    return response


def stream_response(body: Iterable[bytes], content_type: str = TEXT) -> flask.Response:
    """A 200 whose body is written as it is produced."""
    response = flask.Response(body, status=200, content_type=content_type, direct_passthrough=True)
    response.headers.update(STREAM_HEADERS)
    return response
