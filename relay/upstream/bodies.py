"""Reading what the upstream answered: the kind of body, and a whole body, bounded in size and time.

Streams are read by relay/serving/relayed_stream.py as they arrive; this reads answers that
come whole (a completion, a model list, an error) up to a size and within a deadline,
so no upstream can make the relay hold more than that, or wait longer. Bodies are
never compressed (relay/upstream/client.py asks for none and refuses any).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

from relay.upstream.failures import UpstreamError, UpstreamTimeout, UpstreamUnreachable
from relay.waits import within

JSON = "application/json"
EVENT_STREAM = "text/event-stream"
# Enough of an error body for any real error object; an HTML error page is cut here.
ERROR_BODY_LIMIT = 64 * 1024
# An error body is read for this long at most: it is only there to be quoted.
ERROR_BODY_SECONDS = 10.0
# A whole (not streamed) answer, or a model list, is read up to this: a long completion with
# logprobs is a few MiB; more would let one upstream fill an instance's memory.
WHOLE_BODY_LIMIT = 8 * 1024 * 1024
# The upstream's headers an SDK acts on, passed on with its answer: these names only, each
# value short and printable, so an upstream cannot fill or break the caller's head. OpenAI's,
# then Anthropic's (its SDKs read `request-id`; Claude Code shows the rate limits).
PASSED_HEADERS = frozenset(
    {
        "retry-after",
        "retry-after-ms",
        "x-request-id",
        "openai-processing-ms",
        "openai-version",
        "x-should-retry",
        *(
            f"x-ratelimit-{kind}-{unit}"
            for kind in ("limit", "remaining", "reset")
            for unit in ("requests", "tokens")
        ),
        "request-id",
        *(
            f"anthropic-ratelimit-{unit}-{kind}"
            for kind in ("limit", "remaining", "reset")
            for unit in ("requests", "tokens", "input-tokens", "output-tokens")
        ),
    }
)
OPENAI_API = "OpenAI API"  # how a message names the upstream's API, unless told another
PASSED_VALUE_LIMIT = 256
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


def body_kind(response: httpx.Response) -> str:
    """ "stream" (server-sent events), "json" (one whole answer), or "other" (not a reply at all)."""
    # No content type is taken as a stream: some local servers send none.
    content_type: str = response.headers.get("content-type", EVENT_STREAM).lower()
    if content_type.startswith(JSON):
        return "json"
    return "stream" if content_type.startswith(EVENT_STREAM) else "other"


def read_bounded(response: httpx.Response, limit: int, seconds: float, api: str = OPENAI_API) -> bytes:
    """A whole body, up to `limit` bytes in all and within `seconds`; a failure is an UpstreamError."""
    host = response.request.url.host
    parts: list[bytes] = []
    size = 0
    late = UpstreamTimeout(f"{api} error: {host} took too long to send its whole answer.")
    try:
        with within(seconds, late):
            for chunk in response.iter_raw():
                size += len(chunk)
                if size > limit:
                    raise UpstreamUnreachable(
                        f"{api} error: the answer of {host} is larger than the relay passes on "
                        f"({limit // 1024} KiB)."
                    )
                parts.append(chunk)
    except httpx.TimeoutException:
        raise UpstreamTimeout(f"{api} error: {host} stopped sending its answer part way.") from None
    except httpx.HTTPError:
        raise UpstreamUnreachable(
            f"{api} error: {host} closed the connection part way through its answer."
        ) from None
    return b"".join(parts)


@dataclass(frozen=True)
class Answer:
    """A whole answer from the upstream: a completion, a model list, or an error."""

    status: int
    reason: str  # the status line's phrase ("" under HTTP/2)
    content_type: str
    body: bytes
    host: str
    headers: tuple[tuple[str, str], ...]  # the ones an SDK acts on (PASSED_HEADERS)


def read_answer(response: httpx.Response, seconds: float, api: str = OPENAI_API) -> Answer:
    """Read a whole answer (within WHOLE_BODY_LIMIT and `seconds`) and close the response."""
    try:
        body = read_bounded(response, WHOLE_BODY_LIMIT, seconds, api)
    finally:
        response.close()
    return _answer(response, body)


def read_error(response: httpx.Response) -> Answer:
    """An error answer, whose body is only there to be quoted: b"" when it is too long or too slow."""
    try:
        body = read_bounded(response, ERROR_BODY_LIMIT, ERROR_BODY_SECONDS)
    except UpstreamError:
        body = b""
    finally:
        response.close()
    return _answer(response, body)


def _answer(response: httpx.Response, body: bytes) -> Answer:
    return Answer(
        response.status_code,
        response.reason_phrase,
        response.headers.get("content-type", JSON),
        body,
        response.request.url.host,
        passed_headers(response.headers),
    )


def passed_headers(headers: httpx.Headers) -> tuple[tuple[str, str], ...]:
    """The upstream's headers an SDK acts on (retry advice, rate limits, the request id), if well-formed.

    Each name at most once; a value with a control character or over PASSED_VALUE_LIMIT is
    dropped, since it would break the caller's head or carry what is not a header's business.
    """
    passed: dict[str, str] = {}
    for name, value in headers.items():
        well_formed = len(value) <= PASSED_VALUE_LIMIT and _PRINTABLE.fullmatch(value)
        if name in PASSED_HEADERS and name not in passed and well_formed:
            passed[name] = value
    return tuple(passed.items())
