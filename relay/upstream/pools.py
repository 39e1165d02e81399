"""Pooled HTTP transports to one upstream: many small pools, created per worker process, swept when idle.

The relay sends through `httpx.HTTPTransport` rather than `httpx.Client`: a client's
cookie jar would hand one user's cookies (OpenAI sets Cloudflare's) to everyone's
later requests, and its auth, redirect and cookie layers do nothing here.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx

from relay.config import Route, Settings

# httpcore's pool does work proportional to idle x all connections each time a request starts
# or ends, so one pool of hundreds of kept-alive connections made a request after a burst cost
# several times its usual CPU; pools of 4 do not (bench/results/profile-idle-check.txt).
CONNECTIONS_PER_POOL = 4
# Under real threads (SERVER_WORKER=gthread) a pool holds one connection, so no two requests share
# one: httpcore 1.0 can close a kept-alive connection another thread has just begun to stream on
# (encode/httpcore#1110). gevent switches only where I/O waits, never between its check and close.
CONNECTIONS_PER_THREADED_POOL = 1
# A kept-alive connection idle this long is closed (httpx's default). httpcore only looks when
# its pool is used, so pools a burst filled and nothing used since are closed whole, at most
# once every SWEEP_SECONDS, by a later request that finds them idle this long.
KEEPALIVE_SECONDS = 5.0
SWEEP_SECONDS = 1.0


class TransportPools:
    """One upstream's transports, each a small pool, together as large as the server's concurrency.

    A request takes the first transport with a free connection, so a quiet relay keeps reusing
    the first one's connections. Transports are made on first use in each process: the server
    forks workers after import and gevent patches sockets and SSL in each.
    """

    def __init__(self, settings: Settings, route: Route) -> None:
        self.route = route
        per_pool = (
            CONNECTIONS_PER_THREADED_POOL if settings.server_worker == "gthread" else CONNECTIONS_PER_POOL
        )
        count = -(-settings.max_connections // per_pool)  # ceiling division
        self._size = -(-settings.max_connections // count)
        self._transports: list[httpx.HTTPTransport | None] = [None] * count
        self._busy = [0] * count  # open responses per transport
        self._used = [0.0] * count  # when each last gave back a request (the sweep skips busy ones)
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

    def send(self, request: httpx.Request) -> httpx.Response:
        """Send on a pooled connection; the response's close gives the connection's place back."""
        index = self.take()
        try:
            response = self.transport(index).handle_request(request)
        except BaseException:
            self.give_back(index)
            raise
        response.request = request
        response.stream = GivenBackOnClose(response.stream, self, index)
        return response


class GivenBackOnClose(httpx.SyncByteStream):
    """A response body that returns its connection's place to the pools when closed."""

    def __init__(
        self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, pools: TransportPools, index: int
    ) -> None:
        if not isinstance(stream, httpx.SyncByteStream):
            raise TypeError("the relay's upstream client is synchronous")
        self._stream = stream
        self._pools = pools
        self._index: int | None = index

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


_SSL: list[ssl.SSLContext] = []  # one for every pool of the process: loading the CA bundle takes ~20 ms
_SSL_LOCK = threading.Lock()


def shared_ssl_context() -> ssl.SSLContext:
    with _SSL_LOCK:
        if not _SSL:
            _SSL.append(httpx.create_ssl_context())  # honours SSL_CERT_FILE and SSL_CERT_DIR
        return _SSL[0]
