"""HTTP responses: the one place errors are rendered, and the stream's headers."""

from __future__ import annotations

from collections.abc import Iterable

import flask
from werkzeug.exceptions import HTTPException

from relay.errors import PayloadTooLarge, RelayError

TEXT = "text/plain; charset=utf-8"

STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    # nginx and some proxies buffer responses unless told not to.
    "X-Accel-Buffering": "no",
    "X-Content-Type-Options": "nosniff",
}


def error_response(error: RelayError) -> flask.Response:
    """Render any RelayError: its status, its message as plain text, its headers."""
    body: bytes | Iterable[bytes] = error.message.encode()
    if isinstance(error, PayloadTooLarge):
        # An iterable body marks the response as streamed, so functions-framework
        # does not read the oversized request body to the end before answering.
        body = iter([error.message.encode()])
    response = flask.Response(body, status=error.status, content_type=TEXT)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    for name, value in error.headers().items():
        response.headers[name] = value
    return response


def framework_error_response(error: HTTPException) -> flask.Response:
    """Plain text for an error the framework raises before the function runs."""
    status = error.code or 500
    response = flask.Response(f"{status} {error.name}".encode(), status=status, content_type=TEXT)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def empty_response(status: int, headers: dict[str, str]) -> flask.Response:
    """A response with no body, such as a preflight's 204."""
    response = flask.Response(b"", status=status)
    response.headers.update(headers)
    return response


def stream_response(body: Iterable[bytes]) -> flask.Response:
    """A 200 whose body is written as it is produced."""
    response = flask.Response(body, status=200, content_type=TEXT, direct_passthrough=True)
    response.headers.update(STREAM_HEADERS)
    return response
