"""Reading a request's body: bounded in size and in time, every failure told in the caller's terms."""

from __future__ import annotations

from typing import Any

import flask
from gunicorn.http.errors import NoMoreData, ParseException  # type: ignore[import-untyped]
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from relay.errors import BadRequest, BodyTimeout, ClientGone, PayloadTooLarge
from relay.serving.client_connection import has_left, read_timeout
from relay.waits import within


def limit_body(request: flask.Request, limit: int) -> None:
    """Whatever reads the body from here on, the framework included, stops past `limit`."""
    # One byte above: Werkzeug refuses a declared length over the maximum before reading, but
    # cuts a chunked body at the maximum without a word; the byte more tells.
    request.max_content_length = limit + 1


def read_request_body(request: flask.Request, limit: int, timeout: float) -> bytes:
    """The whole body, or the error that says why not (413, 408, 400 for broken framing, gone).

    Read once and not kept by the request (the caller drops it once it is parsed), within
    `timeout` for the whole of it: a body sent a byte now and then would otherwise hold one of
    the worker's connections for ever (gunicorn bounds only the head). Each read waits at most
    as long too, the whole body's bound where a wait cannot be interrupted (gthread).
    """
    client_socket: Any = request.environ.get("gunicorn.socket")
    try:
        with read_timeout(client_socket, timeout), within(timeout, TimeoutError()):
            body = request.get_data(cache=False)
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
    if len(body) > limit:
        raise PayloadTooLarge(limit)
    return body
