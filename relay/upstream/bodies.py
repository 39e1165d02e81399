"""Reading what the upstream answered: the kind of body, and a whole body, bounded in size.

Streams are read by relay/serving/reply.py as they arrive; this reads answers that
come whole (a completion, a model list, an error) up to a limit, so no upstream can
make the relay hold more than that.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from relay.errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable

JSON = "application/json"
EVENT_STREAM = "text/event-stream"
# Enough of an error body for any real error object; an HTML error page is cut here.
ERROR_BODY_LIMIT = 64 * 1024
# A whole (not streamed) answer, or a model list, is read up to this.
WHOLE_BODY_LIMIT = 16 * 1024 * 1024
# The upstream's headers an SDK acts on, passed on with its answer.
PASSED_HEADERS = ("retry-after", "retry-after-ms", "x-request-id", "openai-processing-ms")
PASSED_HEADER_PREFIX = "x-ratelimit-"


def body_kind(response: httpx.Response) -> str:
    """ "stream" (server-sent events), "json" (one whole answer), or "other" (not a reply at all)."""
    # No content type is taken as a stream: some local servers send none.
    content_type: str = response.headers.get("content-type", EVENT_STREAM).lower()
    if content_type.startswith(JSON):
        return "json"
    return "stream" if content_type.startswith(EVENT_STREAM) else "other"


def read_body(response: httpx.Response, limit: int) -> bytes:
    """A whole body, up to `limit` bytes; a failure while reading is an UpstreamError."""
    host = response.request.url.host
    parts: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            parts.append(chunk)
            size += len(chunk)
            if size > limit:
                raise UpstreamUnreachable(
                    f"OpenAI API error: the answer of {host} is larger than the relay passes on "
                    f"({limit // (1024 * 1024)} MiB)."
                )
    except httpx.TimeoutException:
        raise UpstreamTimeout(f"OpenAI API error: {host} stopped sending its answer part way.") from None
    except httpx.HTTPError:
        raise UpstreamUnreachable(
            f"OpenAI API error: {host} closed the connection part way through its answer."
        ) from None
    return b"".join(parts)


def read_error_body(response: httpx.Response) -> bytes:
    """An error's body, or nothing when it is cut or too long (the error is told without it)."""
    try:
        return read_body(response, ERROR_BODY_LIMIT)
    except UpstreamError:
        return b""


@dataclass(frozen=True)
class Answer:
    """A whole answer from the upstream: a completion, a model list, or an error."""

    status: int
    content_type: str
    body: bytes
    host: str
    headers: tuple[tuple[str, str], ...]  # the ones an SDK acts on (PASSED_HEADERS)


def read_answer(response: httpx.Response) -> Answer:
    """Read a whole answer and close the response."""
    try:
        body = read_body(response, WHOLE_BODY_LIMIT)
    finally:
        response.close()
    return Answer(
        response.status_code,
        response.headers.get("content-type", JSON),
        body,
        response.request.url.host,
        passed_headers(response.headers),
    )


def passed_headers(headers: httpx.Headers) -> tuple[tuple[str, str], ...]:
    """The upstream's headers an SDK acts on (retry advice, rate limits, the request id)."""
    return tuple(
        (name, value)
        for name, value in headers.items()
        if name in PASSED_HEADERS or name.startswith(PASSED_HEADER_PREFIX)
    )
