"""Sending to one upstream (a route): the request built once, retried before any byte is relayed.

The upstream's answer is awaited before the relay answers, so its status decides the
relay's: an error status, a refused connection or a timeout becomes something the
caller can be told with an honest status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import httpcore  # noqa: F401 - imported here, at start-up: httpx imports it at the first request
import httpx

from relay.config import Route, Settings
from relay.upstream.failures import (
    RETRIED_STATUSES,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnreachable,
    describe_transport_error,
)
from relay.upstream.pools import TransportPools
from relay.upstream.retry import MIN_ATTEMPT_SECONDS, retry_wait
from relay.waits import within

logger = logging.getLogger(__name__)

USER_AGENT = "openai-stream-relay/0.1 (+httpx)"
# At most this many parsed URLs are kept per upstream: enough for every fixed path (/chat/completions,
# /responses, /embeddings, /models, ...). A stored response's paths each hold an id: past this many,
# a path is parsed each time it is sent (a few microseconds) rather than kept without bound.
KEPT_URLS = 16


class Upstream:
    """One upstream API (OpenAI-compatible, or Anthropic's): its pools, and sending to it with retries."""

    def __init__(self, settings: Settings, route: Route) -> None:
        self.settings = settings
        self.route = route
        self.pools = TransportPools(settings, route)
        self._urls: dict[str, httpx.URL] = {}  # parsed once per path, up to KEPT_URLS of them
        # No compression: the relay reads bodies as they come, and a small compressed body can
        # expand without bound (a "zip bomb"); a chat stream gains little from it anyway.
        self._headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **dict(route.headers)}

    def send(  # noqa: PLR0917 - what to send, and whether to retry a status
        self,
        method: str,
        path: str,
        api_key: str | None,
        body: bytes | None,
        accept: str,
        retry_statuses: bool = False,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> httpx.Response:
        """Send a request; return the (streaming) response, whatever its status.

        A connection refused, reset or closed before any answer is retried as
        relay/upstream/retry.py says, while the wait stays within UPSTREAM_CONNECT_TIMEOUT +
        UPSTREAM_FIRST_BYTE_TIMEOUT: nothing has reached the caller yet, so nothing is lost or
        sent twice, and no SDK can see it to retry. An upstream's 429 or 5xx is retried only with
        `retry_statuses` (for callers that do not retry, the 2023 client): an SDK retries those
        itself, as the upstream's Retry-After says. A failure that remains is an UpstreamError.
        `headers`: the caller's headers this request needs besides the route's (anthropic-version).
        """
        settings = self.settings
        # One budget for every attempt: the wait of a single one (relay/config counts on it).
        deadline = time.monotonic() + settings.connect_timeout + settings.first_byte_timeout
        attempt = 0
        while True:
            try:
                response = self._send_once(method, path, api_key, body, accept, deadline, headers=headers)
            except UpstreamError as failure:
                wait = retry_wait(attempt, settings.retries, settings.retry_max_wait, None, failure.retryable)
                if wait is None or time.monotonic() + wait >= deadline - MIN_ATTEMPT_SECONDS:
                    raise
                reason = failure.message
            else:
                if not retry_statuses or response.status_code not in RETRIED_STATUSES:
                    return response
                wait = retry_wait(attempt, settings.retries, settings.retry_max_wait, response.headers)
                if wait is None or time.monotonic() + wait >= deadline - MIN_ATTEMPT_SECONDS:
                    return response
                response.close()
                reason = f"status {response.status_code}"
            logger.warning(
                "Upstream %s attempt %d of %d failed (%s); retrying in %.2f s",
                self.route.host,
                attempt + 1,
                settings.retries + 1,
                reason,  # a transport error's text, redacted as it was made (failures.py)
                wait,
            )
            time.sleep(wait)  # cooperative under gevent
            attempt += 1

    def _send_once(  # noqa: PLR0917 - send's arguments, and its deadline
        self,
        method: str,
        path: str,
        api_key: str | None,
        body: bytes | None,
        accept: str,
        deadline: float,
        *,
        headers: tuple[tuple[str, str], ...],
    ) -> httpx.Response:
        settings = self.settings
        remaining = max(deadline - time.monotonic(), MIN_ATTEMPT_SECONDS)
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(self.route.url(path))
            if len(self._urls) < KEPT_URLS:
                self._urls[path] = url
        # Host is the request's own (httpx adds it only to bodies it builds itself).
        sent = {"Host": url.netloc.decode("ascii"), **self._headers, **dict(headers), "Accept": accept}
        content = None
        if body is not None:
            sent["Content-Type"] = "application/json"
            sent["Content-Length"] = str(len(body))
            content = SentOnce(body)
        if api_key and self.route.api == "anthropic":
            sent["x-api-key"] = api_key  # as Anthropic's API takes it
        elif api_key:
            sent["Authorization"] = f"Bearer {api_key}"
        timeouts = {
            "connect": min(settings.connect_timeout, remaining),
            "read": min(settings.first_byte_timeout, remaining),  # until the status line
            "write": min(settings.connect_timeout, remaining),
            "pool": min(settings.connect_timeout, remaining),
        }
        request = httpx.Request(method, url, headers=sent, stream=content, extensions={"timeout": timeouts})
        # Each read has its timeout; the whole wait for the head has this one (an upstream can send
        # informational 1xx heads, each within the read timeout, for ever).
        late = UpstreamTimeout(
            f"{self.route.api_name} error: {self.route.host} did not answer within "
            f"{settings.first_byte_timeout:g} s (UPSTREAM_FIRST_BYTE_TIMEOUT)."
        )
        try:
            with within(remaining, late):
                response = self.pools.send(request)
        except httpx.TransportError as error:
            raise describe_transport_error(error, self.route, settings, (api_key,)) from None
        if content is not None:
            content.release()  # sent: not held for the length of the reply
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            response.close()
            raise UpstreamUnreachable(
                f"{self.route.api_name} error: {self.route.host} answered with a compressed body (Content-"
                f"Encoding: {encoding[:40]}), which the relay did not ask for and does not decompress."
            )
        # From here on, the longest silence between two reads of the body: httpcore takes the
        # request's timeouts when the body's iteration begins, which is after this.
        timeouts["read"] = settings.idle_timeout
        return response


class SentOnce(httpx.SyncByteStream):
    """A request body that lets go of its bytes once sent.

    httpx keeps a request, and so its body, for as long as the response is read: a 1 MiB
    conversation would stay in memory for the whole reply. (The caller keeps the bytes for
    another attempt; each attempt sends its own SentOnce.)
    """

    def __init__(self, body: bytes) -> None:
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        yield self._body

    def release(self) -> None:
        self._body = b""
