"""The upstream's connection pools: kept alive across requests, never reused after a stream left part way,
and closed once a burst's extra pools are idle. Each test has an upstream of its own, so counts are its own."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from relay.config import load_settings
from relay.upstream import pools
from relay.upstream.client import Upstream
from tests.fake_upstream import FakeUpstream, Reply, openai_stream

BODY = b'{"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "stream": true}'


@pytest.fixture
def own_fake() -> Iterator[FakeUpstream]:
    server = FakeUpstream().start()
    yield server
    server.stop()


def upstream_for(fake: FakeUpstream) -> Upstream:
    settings = load_settings({"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-pools"})
    return Upstream(settings, settings.default_route)


def stream(upstream: Upstream) -> httpx.Response:
    return upstream.send("POST", "/chat/completions", "sk-pools", BODY, accept="text/event-stream")


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply(body=openai_stream(["a", "b", "c"], pace=0.01)), id="paced: many reads"),
        pytest.param(Reply(body=openai_stream(["all", " at once"])), id="whole body read with the head"),
    ],
)
def test_a_stream_read_to_its_end_keeps_its_connection(own_fake: FakeUpstream, reply: Reply) -> None:
    own_fake.replies["gpt-test"] = reply
    upstream = upstream_for(own_fake)
    expected = b"".join(step for step in reply.body if isinstance(step, bytes))
    for _ in range(3):
        response = stream(upstream)
        assert b"".join(response.iter_bytes()) == expected
        response.close()
    assert own_fake.total_connections == 1  # one connection, kept alive across the three


def test_a_stream_left_part_way_closes_its_connection(own_fake: FakeUpstream) -> None:
    own_fake.replies["gpt-test"] = Reply(body=openai_stream(["x"] * 50, pace=0.01))
    upstream = upstream_for(own_fake)
    response = stream(upstream)
    next(response.iter_bytes())
    response.close()
    own_fake.replies["gpt-test"] = Reply(body=openai_stream(["next"]))
    response = stream(upstream)
    response.read()
    response.close()
    assert own_fake.total_connections == 2  # the half-read one was not reused
    assert own_fake.wait_for(lambda: own_fake.open_connections == 1)


def test_pools_a_burst_filled_close_their_connections_once_idle(
    own_fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pools, "KEEPALIVE_SECONDS", 0.3)
    monkeypatch.setattr(pools, "SWEEP_SECONDS", 0.0)
    own_fake.replies["gpt-test"] = Reply(body=openai_stream(["burst"]))
    upstream = upstream_for(own_fake)  # pools of 4 connections: the burst of 8 fills two
    burst = [stream(upstream) for _ in range(8)]
    for response in burst:
        response.read()
        response.close()
    assert own_fake.open_connections == 8  # kept alive for the next requests
    time.sleep(0.5)
    response = stream(upstream)
    response.read()
    response.close()
    # The pool this request did not use is closed; in the one it used, httpcore closed the expired.
    assert own_fake.wait_for(lambda: own_fake.open_connections == 1)


def test_a_connection_place_is_given_back_whatever_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "UPSTREAM_RETRIES": "0"})
    upstream = Upstream(settings, settings.default_route)
    with pytest.raises(Exception, match="could not connect"):
        stream(upstream)

    def broken_handle_request(*args: object, **kwargs: object) -> None:
        raise ValueError("a fault a real server cannot produce")

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", broken_handle_request)
    with pytest.raises(ValueError, match="a fault"):
        stream(upstream)
    assert sum(upstream.pools._busy) == 0
