"""Under real threads (SERVER_WORKER=gthread): no request's upstream connection is closed under it.

httpcore 1.0's pool can decide that a kept-alive connection has expired, be preempted, and
close it after another thread has begun to stream on it (encode/httpcore#1110). The interleaving
is forced here with two pauses in httpcore's pool, on real sockets; with pools of one connection
per request (relay/upstream/pools.py) the second request never looks at the first one's connection.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpcore._sync.connection_pool as httpcore_pool
import pytest

import relay.upstream.pools
from relay.access.usage import Usage
from relay.config import Settings, load_settings
from relay.formats.original_text import TextStream
from relay.serving.client_connection import ClientWatch
from relay.serving.relayed_stream import RelayedStream
from relay.serving.request_log import RequestLog
from relay.upstream.client import Upstream
from tests.fake_upstream import PACKET, FakeUpstream, Reply, openai_stream

KEEPALIVE = 0.5  # seconds, instead of 5, to reach a connection's expiry quickly


def relayed(settings: Settings, upstream: Upstream, model: str) -> tuple[bytes, str]:
    """One chat stream through the relay's upstream side and RelayedStream: its bytes and outcome."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "x"}], "stream": True})
    stream = RelayedStream(
        upstream.send("POST", "/chat/completions", "sk-x", body.encode(), accept="text/event-stream"),
        TextStream(model),
        Usage().chat_chunk,
        log=RequestLog(method="POST", path="/api/chat", user_agent="threads"),
        client=ClientWatch(None, write_timeout=settings.idle_timeout),
        settings=settings,
    )
    try:
        return b"".join(stream), stream.outcome
    finally:
        stream.close()


def test_a_connection_is_not_closed_under_a_stream_another_thread_started(
    fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay.upstream.pools, "KEEPALIVE_SECONDS", KEEPALIVE)
    settings = load_settings(
        {
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_API_KEY": "sk-x",
            "SERVER_WORKER": "gthread",
            "THREADS": "8",
            # A request whose connection is closed under it ends within seconds, not minutes.
            "UPSTREAM_FIRST_BYTE_TIMEOUT": "2",
            "UPSTREAM_IDLE_TIMEOUT": "2",
        }
    )
    upstream = Upstream(settings, settings.default_route)
    fake.replies["first"] = Reply(body=openai_stream(["a"]))
    fake.replies["long"] = Reply(body=openai_stream([f" t{i}" for i in range(20)], pace=0.02))
    fake.replies["short"] = Reply(body=openai_stream(["b"]))
    assert relayed(settings, upstream, "first") == (PACKET + b"a", "ok")  # leaves a kept-alive connection
    kept: Any
    (kept,) = [c for t in upstream.pools._transports if t is not None for c in t._pool._connections]
    expires_at = kept._connection._expire_at

    a_has_it, b_decided = threading.Event(), threading.Event()
    waited_for_connection = httpcore_pool.PoolRequest.wait_for_connection
    close_connections = httpcore_pool.ConnectionPool._close_connections

    def wait_for_connection(self: Any, timeout: float | None = None) -> Any:
        connection = waited_for_connection(self, timeout)
        if threading.current_thread().name == "A" and connection is kept:
            a_has_it.set()
            b_decided.wait(1.5)  # A is preempted between getting the connection and using it
        return connection

    def close(self: Any, closing: Any) -> None:
        if threading.current_thread().name == "B" and kept in closing:
            b_decided.set()
            time.sleep(0.3)  # B is preempted between deciding "expired" and closing
        close_connections(self, closing)

    monkeypatch.setattr(httpcore_pool.PoolRequest, "wait_for_connection", wait_for_connection)
    monkeypatch.setattr(httpcore_pool.ConnectionPool, "_close_connections", close)
    time.sleep(max(0.0, expires_at - time.monotonic() - 0.2))
    results: dict[str, tuple[bytes, str]] = {}
    a = threading.Thread(
        name="A", target=lambda: results.__setitem__("A", relayed(settings, upstream, "long"))
    )
    a.start()
    assert a_has_it.wait(5)
    time.sleep(max(0.0, expires_at - time.monotonic() + 0.02))  # the kept connection has now expired
    b = threading.Thread(
        name="B", target=lambda: results.__setitem__("B", relayed(settings, upstream, "short"))
    )
    b.start()
    a.join(10)
    b.join(10)
    assert results.get("A") == (PACKET + "".join(f" t{i}" for i in range(20)).encode(), "ok")
    assert results.get("B") == (PACKET + b"b", "ok")
