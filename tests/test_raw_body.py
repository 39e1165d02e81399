"""The hot path (relay/raw_body.py): the body read from the socket, and the connection still kept alive."""

from __future__ import annotations

import gzip
import time

import httpx
import pytest

from relay import jsoncodec
from relay import upstream as upstream_module
from relay.config import load_settings
from relay.raw_body import raw_chunks
from relay.upstream import Upstream
from tests.fake_upstream import Close, FakeUpstream, Reply, openai_stream, sse

BODY = jsoncodec.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "stream": True})


def upstream_for(fake: FakeUpstream) -> Upstream:
    settings = load_settings({"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-raw"})
    return Upstream(settings, settings.default_route)


def expected_body(reply: Reply) -> bytes:
    return b"".join(step for step in reply.body if isinstance(step, bytes))


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply(body=openai_stream(["a", "b", "c"], pace=0.01)), id="paced: many reads"),
        pytest.param(Reply(body=openai_stream(["all", " at once"])), id="whole body read with the head"),
    ],
)
def test_the_pinned_httpx_and_httpcore_take_the_socket_path_and_keep_the_connection(
    fake: FakeUpstream, reply: Reply
) -> None:
    fake.replies["gpt-test"] = reply
    upstream = upstream_for(fake)
    before = fake.total_connections
    for _ in range(3):
        response = upstream.open_chat_stream("sk-raw", BODY)
        chunks = raw_chunks(response, idle_timeout=5)
        assert chunks is not None, "httpx or httpcore changed: the relay fell back to the slow path"
        assert b"".join(chunks) == expected_body(reply)
        response.close()
    assert fake.total_connections - before == 1  # one connection, kept alive across the three


def test_a_stream_left_part_way_closes_its_connection(fake: FakeUpstream) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["x"] * 50, pace=0.01))
    upstream = upstream_for(fake)
    before = fake.total_connections
    response = upstream.open_chat_stream("sk-raw", BODY)
    chunks = raw_chunks(response, idle_timeout=5)
    assert chunks is not None
    next(chunks)
    chunks.close()
    response.close()
    fake.replies["gpt-test"] = Reply(body=openai_stream(["next"]))
    response = upstream.open_chat_stream("sk-raw", BODY)
    response.read()
    response.close()
    assert fake.total_connections - before == 2  # the half-read one was not reused


@pytest.mark.parametrize(
    ("reply", "idle_timeout", "error"),
    [
        pytest.param(
            Reply(body=[sse({"choices": []}), Close()]), 5.0, httpx.RemoteProtocolError, id="cut-short"
        ),
        pytest.param(Reply(body=openai_stream(["slow"], pace=2.0)), 0.3, httpx.ReadTimeout, id="silent"),
    ],
)
def test_a_failure_mid_body_is_the_httpx_error_the_relay_reports(
    fake: FakeUpstream, reply: Reply, idle_timeout: float, error: type[Exception]
) -> None:
    fake.replies["gpt-test"] = reply
    response = upstream_for(fake).open_chat_stream("sk-raw", BODY)
    chunks = raw_chunks(response, idle_timeout=idle_timeout)
    assert chunks is not None
    with pytest.raises(error):
        b"".join(chunks)
    response.close()


def test_a_compressed_body_is_left_to_httpx(fake: FakeUpstream) -> None:
    fake.replies["gpt-test"] = Reply(
        headers={"Content-Type": "text/event-stream", "Content-Encoding": "gzip"},
        body=[gzip.compress(sse("[DONE]"))],
    )
    response = upstream_for(fake).open_chat_stream("sk-raw", BODY)
    assert raw_chunks(response, idle_timeout=5) is None
    assert response.read() == sse("[DONE]")  # httpx decompresses it
    response.close()


def test_a_body_not_chunked_is_left_to_httpx(fake: FakeUpstream) -> None:
    fake.replies["gpt-test"] = Reply(body=[sse("[DONE]")], chunked=False)
    response = upstream_for(fake).open_chat_stream("sk-raw", BODY)
    assert raw_chunks(response, idle_timeout=5) is None
    assert response.read() == sse("[DONE]")
    response.close()


def test_pools_a_burst_filled_close_their_connections_once_idle(
    fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upstream_module, "KEEPALIVE_SECONDS", 0.3)
    monkeypatch.setattr(upstream_module, "SWEEP_SECONDS", 0.0)
    fake.replies["gpt-test"] = Reply(body=openai_stream(["burst"]))
    upstream = upstream_for(fake)  # pools of 4 connections: the burst of 8 fills two
    open_before = fake.open_connections
    burst = [upstream.open_chat_stream("sk-raw", BODY) for _ in range(8)]
    for response in burst:
        response.read()
        response.close()
    assert fake.open_connections - open_before == 8  # kept alive for the next requests
    time.sleep(0.5)
    response = upstream.open_chat_stream("sk-raw", BODY)
    response.read()
    response.close()
    # The pool this request did not use is closed; in the one it used, httpcore closed the expired.
    assert fake.wait_for(lambda: fake.open_connections - open_before == 1)


def test_a_body_httpx_has_read_is_not_read_again(fake: FakeUpstream) -> None:
    fake.replies["gpt-test"] = Reply(headers={"Content-Type": "application/json"}, body=[b'{"ok": true}'])
    response = upstream_for(fake).open_chat_stream("sk-raw", BODY)
    assert response.read() == b'{"ok": true}'
    assert raw_chunks(response, idle_timeout=5) is None  # the connection may already serve another request
    response.close()
