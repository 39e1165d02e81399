"""The upstream side: pooled HTTP transports per route, retries, and opening a chat stream.

The stream is opened before the relay answers, so the upstream's status decides
the relay's: an error status, a refused connection or a timeout becomes an
UpstreamError while the caller can still be told with an honest status.
"""

from __future__ import annotations

import email.utils
import http
import logging
import random
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpcore  # noqa: F401 - imported here, at start-up: httpx imports it at the first request
import httpx

from relay import jsoncodec
from relay.config import Route, Settings
from relay.errors import UpstreamError, UpstreamHTTPError, UpstreamTimeout, UpstreamUnreachable
from relay.redaction import redact

logger = logging.getLogger(__name__)

USER_AGENT = "openai-stream-relay/0.1 (+httpx)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_BASE_SECONDS = 0.5
MIN_ATTEMPT_SECONDS = 0.5  # an attempt with less time than this left is not started
CONNECTION_FAILURES = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)

# Enough of an error body for any real error object; an HTML error page is cut here.
ERROR_BODY_LIMIT = 64 * 1024
# A whole (not streamed) answer, or a model list, is read up to this.
WHOLE_BODY_LIMIT = 16 * 1024 * 1024

# httpcore's pool does work proportional to (idle connections x all connections) each
# time a request starts or a response closes: with 500 kept-alive connections in one
# pool, 500 streams ending together took 5 s of CPU to close. With pools of 32, a
# request after a burst of 150 streams still cost 2.9-5.1 ms of CPU; with pools of 4,
# 1.8-2.0 ms, as on a fresh relay (bench/results/profile-idle-check.txt).
CONNECTIONS_PER_POOL = 4
# Under real threads (SERVER_WORKER=gthread) a pool holds one connection, so that no two requests
# ever share one: httpcore 1.0's pool can close a kept-alive connection that another thread has
# just begun to stream on (it decides "expired", is preempted, then closes; encode/httpcore#1110),
# and that reply ends cut short. gevent switches only where I/O waits, never between the two.
CONNECTIONS_PER_THREADED_POOL = 1
# A kept-alive connection idle this long is closed (httpx's default). httpcore only looks
# when its pool is used, so the pools a burst filled and nothing uses since are closed
# whole, at most once a second, when a later request finds them idle this long.
KEEPALIVE_SECONDS = 5.0
SWEEP_SECONDS = 1.0


class TransportPools:
    """One upstream's HTTP transports, each a small pool, together as large as the server's concurrency.

    The relay sends through `httpx.HTTPTransport` directly, not `httpx.Client`: a
    client's cookie jar would keep the cookies one user's reply set (OpenAI sets
    Cloudflare's) and send them with everyone's later requests, and its auth,
    redirect and cookie handling cost about a fifth of a request's time for nothing.

    A request takes the first transport with a free connection, so a quiet relay keeps
    reusing the kept-alive connections of the first one, and the transports a burst
    opened are closed once idle for KEEPALIVE_SECONDS. Created on first use in each
    process, because the server may fork workers after import and may monkey-patch
    sockets and SSL in each (gevent): a pool made at import would be shared across
    processes and hold unpatched SSL state.
    """

    def __init__(self, settings: Settings, route: Route) -> None:
        self.settings = settings
        self.route = route
        per_pool = (
            CONNECTIONS_PER_THREADED_POOL if settings.server_worker == "gthread" else CONNECTIONS_PER_POOL
        )
        count = -(-settings.max_connections // per_pool)  # ceiling division
        self._size = -(-settings.max_connections // count)
        self._transports: list[httpx.HTTPTransport | None] = [None] * count
        self._busy = [0] * count  # open responses per transport
        self._used = [0.0] * count  # when each transport last gave back a request (the sweep skips busy ones)
        self._next_sweep = 0.0
        self._lock = threading.Lock()

    def take(self) -> int:
        """Reserve a connection; return the index of the transport to use."""
        idle: list[httpx.HTTPTransport] = []
        with self._lock:
            busy = self._busy
            index = next((i for i, n in enumerate(busy) if n < self._size), None)
            if index is None:
                index = busy.index(min(busy))  # all full: httpcore queues the request
            busy[index] += 1
            now = time.monotonic()
            if now >= self._next_sweep:
                self._next_sweep = now + SWEEP_SECONDS
                idle = self._take_out_idle(now)
        for transport in idle:
            transport.close()
        return index

    def _take_out_idle(self, now: float) -> list[httpx.HTTPTransport]:
        """Remove the transports no request used for KEEPALIVE_SECONDS: their connections have expired."""
        idle = []
        for index, transport in enumerate(self._transports):
            if (
                transport is not None
                and not self._busy[index]
                and now - self._used[index] > KEEPALIVE_SECONDS
            ):
                idle.append(transport)
                self._transports[index] = None
        return idle

    def transport(self, index: int) -> httpx.HTTPTransport:
        transport = self._transports[index]
        if transport is None:
            with self._lock:
                transport = self._transports[index]
                if transport is None:
                    transport = make_transport(self.route, self._size, shared_ssl_context())
                    self._transports[index] = transport
        return transport

    def give_back(self, index: int) -> None:
        with self._lock:
            self._busy[index] -= 1
            self._used[index] = time.monotonic()  # its connection is idle from now


class Upstream:
    """One OpenAI-compatible API (a route): sending to it, with retries before any byte is relayed."""

    def __init__(self, settings: Settings, route: Route) -> None:
        self.settings = settings
        self.route = route
        self.pools = TransportPools(settings, route)
        self._urls: dict[str, httpx.URL] = {}  # parsed once per path
        self._headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", **dict(route.headers)}

    def send(
        self, method: str, path: str, api_key: str | None, body: bytes | None, accept: str
    ) -> httpx.Response:
        """Send a request; return the (streaming) response, whatever its status.

        Connection failures and 429/500/502/503/504 are retried, with exponential backoff
        and jitter, honouring Retry-After up to UPSTREAM_RETRY_MAX_WAIT, at most
        UPSTREAM_RETRIES times, and only while the wait for the upstream stays within
        UPSTREAM_FIRST_BYTE_TIMEOUT: nothing has reached the caller yet, so nothing is
        lost or sent twice. A failure that remains is raised as an UpstreamError.
        """
        settings = self.settings
        # One budget for every attempt: the wait of a single one (relay/config.py counts on it).
        deadline = time.monotonic() + settings.connect_timeout + settings.first_byte_timeout
        attempt = 0
        while True:
            try:
                response = self._send_once(method, path, api_key, body, accept, deadline)
            except UpstreamError as failure:
                wait = self._retry_wait(attempt, None, failure)
                if wait is None or time.monotonic() + wait >= deadline - MIN_ATTEMPT_SECONDS:
                    raise
                reason = failure.message
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                wait = self._retry_wait(attempt, response, None)
                if wait is None or time.monotonic() + wait >= deadline - MIN_ATTEMPT_SECONDS:
                    return response
                response.close()
                reason = f"status {response.status_code}"
            logger.warning(
                "Upstream %s attempt %d of %d failed (%s); retrying in %.2f s",
                self.route.host,
                attempt + 1,
                settings.retries + 1,
                redact(reason, (api_key,)),
                wait,
            )
            time.sleep(wait)  # cooperative under gevent
            attempt += 1

    def open_chat_stream(self, api_key: str | None, body: bytes) -> httpx.Response:
        """The original endpoint's request: a stream, or an UpstreamError in its words."""
        response = self.send("POST", "/chat/completions", api_key, body, accept="text/event-stream")
        if response.is_success and body_kind(response) != "other":
            return response
        try:
            if response.is_success:
                raise UpstreamUnreachable(
                    f"OpenAI API error: {self.route.host} answered {response.status_code} with "
                    f"{response.headers.get('content-type')}, not an event stream; check its base URL."
                )
            raise http_error(response, (api_key,))
        finally:
            response.close()

    def _send_once(  # noqa: PLR0917 - send's arguments, and its deadline
        self, method: str, path: str, api_key: str | None, body: bytes | None, accept: str, deadline: float
    ) -> httpx.Response:
        settings = self.settings
        remaining = max(deadline - time.monotonic(), MIN_ATTEMPT_SECONDS)
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self.route.url(path))
        headers = {**self._headers, "Accept": accept}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        timeouts = {
            "connect": min(settings.connect_timeout, remaining),
            "read": min(settings.first_byte_timeout, remaining),  # until the status line
            "write": min(settings.connect_timeout, remaining),
            "pool": min(settings.connect_timeout, remaining),
        }
        request = httpx.Request(method, url, headers=headers, content=body, extensions={"timeout": timeouts})
        pool = self.pools.take()
        try:
            response = self.pools.transport(pool).handle_request(request)
            response.request = request
            response.stream = _GivenBackOnClose(response.stream, self.pools, pool)
        except BaseException as error:
            self.pools.give_back(pool)
            if isinstance(error, httpx.TransportError):
                raise describe_transport_error(error, self.route, settings, (api_key,)) from None
            raise
        # From here on, the longest silence between two reads. httpcore reads this
        # request's timeouts when the body's iteration begins, which is after this.
        timeouts["read"] = settings.idle_timeout
        return response

    def _retry_wait(
        self, attempt: int, response: httpx.Response | None, failure: UpstreamError | None
    ) -> float | None:
        """Seconds to wait before the next attempt, or None not to retry."""
        if attempt >= self.settings.retries:
            return None
        if failure is not None and not failure.retryable:
            return None  # the upstream was slow to answer: waiting again would only double the wait
        backoff = RETRY_BASE_SECONDS * 2.0**attempt * random.uniform(0.5, 1.0)  # noqa: S311 - jitter
        asked = retry_after_seconds(response) if response is not None else None
        if asked is None:
            return backoff
        return asked if asked <= self.settings.retry_max_wait else None


class _GivenBackOnClose(httpx.SyncByteStream):
    """A response body that returns its connection's place to the pools when closed."""

    def __init__(
        self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, pools: TransportPools, index: int
    ) -> None:
        if not isinstance(stream, httpx.SyncByteStream):
            raise TypeError("the relay's upstream client is synchronous")
        self._stream = stream
        self._pools = pools
        self._index: int | None = index

    @property
    def inner(self) -> httpx.SyncByteStream:
        """httpx's own stream, for relay/raw_body.py."""
        return self._stream

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._stream)

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            if self._index is not None:
                self._pools.give_back(self._index)
                self._index = None


def make_transport(route: Route, connections: int, ssl_context: ssl.SSLContext) -> httpx.HTTPTransport:
    """One transport with a keep-alive pool of `connections`, through the environment's proxy if any."""
    return httpx.HTTPTransport(
        verify=ssl_context,
        limits=httpx.Limits(
            max_connections=connections,
            max_keepalive_connections=connections,
            keepalive_expiry=KEEPALIVE_SECONDS,
        ),
        proxy=environment_proxy(route.base_url),
        # h11 writes a request's head and body separately: without TCP_NODELAY, Nagle's
        # algorithm holds the body until the head is acknowledged.
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )


def environment_proxy(url: str) -> str | None:
    """HTTPS_PROXY, HTTP_PROXY or ALL_PROXY for this URL unless NO_PROXY exempts it (as httpx.Client does)."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if not proxies or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxies.get(parts.scheme) or proxies.get("all")


def http_error(response: httpx.Response, secrets: tuple[str | None, ...]) -> UpstreamError:
    """The original route's error text for an upstream error status.

    `OpenAI API error: <status> <reason> <the upstream's JSON body, compact, or {}>`;
    the 2023 client shows it and looks for "429 Too Many Requests" in it.
    """
    body = _read_error_body(response)
    try:
        payload = jsoncodec.dumps(jsoncodec.loads(body)).decode()
    except jsoncodec.JSONDecodeError:
        payload = "{}"
    status = response.status_code
    # HTTP/2 has no reason phrase; httpx then gives the standard one, or "" if unknown.
    reason = response.reason_phrase or _standard_reason(status)
    message = redact(f"OpenAI API error: {status} {reason} {payload}", secrets)
    if 400 <= status <= 599:
        return UpstreamHTTPError(status, message, _retry_after(response))
    # A redirect or another status the relay cannot pass on: the base URL is likely wrong.
    return UpstreamUnreachable(f"{message} (unexpected status from the upstream; check OPENAI_BASE_URL)")


def describe_transport_error(
    error: httpx.TransportError, route: Route, settings: Settings, secrets: tuple[str | None, ...]
) -> UpstreamError:
    """A 502 or 504 that says what happened, naming the host but never a secret."""
    failure = _describe_transport_error(error, route.host, settings)
    failure.message = redact(failure.message, secrets)
    # No connection, or one closed before any answer: safe and worth trying again.
    failure.retryable = isinstance(error, CONNECTION_FAILURES)
    return failure


def _describe_transport_error(error: httpx.TransportError, host: str, settings: Settings) -> UpstreamError:
    if isinstance(error, httpx.ConnectTimeout):
        return UpstreamTimeout(
            f"OpenAI API error: could not connect to {host} within {settings.connect_timeout:g} s."
        )
    if isinstance(error, httpx.PoolTimeout):
        return UpstreamTimeout(
            f"OpenAI API error: no free connection to {host} within {settings.connect_timeout:g} s "
            "(UPSTREAM_MAX_CONNECTIONS reached)."
        )
    if isinstance(error, httpx.TimeoutException):
        return UpstreamTimeout(
            f"OpenAI API error: {host} did not answer within {settings.first_byte_timeout:g} s "
            "(UPSTREAM_FIRST_BYTE_TIMEOUT)."
        )
    if isinstance(error, httpx.RemoteProtocolError):
        return UpstreamUnreachable(f"OpenAI API error: {host} closed the connection without answering.")
    if isinstance(error, httpx.ConnectError):
        return UpstreamUnreachable(f"OpenAI API error: could not connect to {host}: {_reason(error)}.")
    return UpstreamUnreachable(f"OpenAI API error: the request to {host} failed: {_reason(error)}.")


def body_kind(response: httpx.Response) -> str:
    """ "stream" (server-sent events), "json" (one whole answer), or "other" (not a reply at all)."""
    # No content type is taken as a stream: some local servers send none.
    content_type: str = response.headers.get("content-type", "text/event-stream").lower()
    if content_type.startswith("application/json"):
        return "json"
    return "stream" if content_type.startswith("text/event-stream") else "other"


def read_body(response: httpx.Response, limit: int) -> bytes:
    """A whole (not streamed) body, up to `limit` bytes; a failure while reading is an UpstreamError."""
    parts: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            parts.append(chunk)
            size += len(chunk)
            if size > limit:
                raise UpstreamUnreachable(
                    f"OpenAI API error: the answer of {response.request.url.host} is larger than "
                    f"the relay passes on ({limit // (1024 * 1024)} MiB)."
                )
    except httpx.TimeoutException:
        raise UpstreamTimeout(
            f"OpenAI API error: {response.request.url.host} stopped sending its answer part way."
        ) from None
    except httpx.HTTPError:
        raise UpstreamUnreachable(
            f"OpenAI API error: {response.request.url.host} closed the connection part way through "
            "its answer."
        ) from None
    return b"".join(parts)


def _read_error_body(response: httpx.Response) -> bytes:
    try:
        return read_body(response, ERROR_BODY_LIMIT)
    except UpstreamError:
        return b""  # cut or too long: the error is shown without the upstream's body


def _retry_after(response: httpx.Response) -> str | None:
    value = response.headers.get("retry-after", "").strip()
    # Seconds or an HTTP date; anything else is not passed on.
    return value if value and len(value) <= 64 and value.isprintable() else None


def retry_after_seconds(response: httpx.Response) -> float | None:
    """How long the upstream asked to wait: OpenAI's retry-after-ms, or Retry-After (seconds or a date)."""
    headers = response.headers
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000.0)
        value = headers.get("retry-after", "").strip()
        if not value:
            return None
        if value.replace(".", "", 1).isdigit():
            return float(value)
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (ValueError, TypeError):
        return None


_SSL: list[ssl.SSLContext] = []  # one for every pool of the process: loading the CA bundle takes ~20 ms
_SSL_LOCK = threading.Lock()


def shared_ssl_context() -> ssl.SSLContext:
    with _SSL_LOCK:
        if not _SSL:
            _SSL.append(httpx.create_ssl_context())  # honours SSL_CERT_FILE and SSL_CERT_DIR
        return _SSL[0]


def _standard_reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _reason(error: Exception) -> str:
    # httpx wraps the OS error; its text ("[Errno 111] Connection refused",
    # "Name or service not known", a certificate failure) is what an operator needs.
    text = str(error) or type(error).__name__
    return text.rstrip(".")
