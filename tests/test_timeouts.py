"""Every timeout, before the stream (504) and after it began (a note, and the reply ends)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.chat_client import chat
from tests.conftest import RelayFactory
from tests.fake_upstream import PACKET, FakeUpstream, Reply, Stall, chunk, openai_stream, sse


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose listen queue is full: a new connection's SYN is dropped, so connecting times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):  # the kernel accepts backlog + 1 before it starts dropping
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.1)
    yield port
    for filler in fillers:
        filler.close()
    listener.close()


def test_connect_timeout_is_504(
    relay_factory: RelayFactory, client: httpx.Client, unanswered_port: int
) -> None:
    relay = relay_factory(
        OPENAI_BASE_URL=f"http://127.0.0.1:{unanswered_port}/v1", UPSTREAM_CONNECT_TIMEOUT="0.5"
    )
    started = time.monotonic()
    reply = chat(client, relay.url)
    assert reply.status == 504
    assert reply.text == f"OpenAI API error: could not connect to 127.0.0.1:{unanswered_port} within 0.5 s."
    assert time.monotonic() - started < 5


def test_first_byte_timeout_is_504(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    relay = relay_factory(UPSTREAM_FIRST_BYTE_TIMEOUT="0.5", UPSTREAM_IDLE_TIMEOUT="5")
    fake.replies["gpt-test"] = Reply(body=openai_stream(["late"]), delay_headers=2)
    reply = chat(client, relay.url)
    assert reply.status == 504
    assert "did not answer within 0.5 s (UPSTREAM_FIRST_BYTE_TIMEOUT)" in reply.text
    assert fake.wait_for(lambda: fake.requests[0].client_closed is not None)


def test_first_byte_and_idle_timeouts_are_separate(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    # A slow first answer within UPSTREAM_FIRST_BYTE_TIMEOUT is fine even though it is
    # longer than UPSTREAM_IDLE_TIMEOUT, which only applies once the stream has begun.
    relay = relay_factory(UPSTREAM_FIRST_BYTE_TIMEOUT="3", UPSTREAM_IDLE_TIMEOUT="0.5")
    fake.replies["gpt-test"] = Reply(body=openai_stream(["slow", " start"]), delay_headers=1.2)
    reply = chat(client, relay.url)
    assert reply.status == 200
    assert reply.body == PACKET + b"slow start"


def test_idle_timeout_mid_stream_ends_with_a_note(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    relay = relay_factory(UPSTREAM_IDLE_TIMEOUT="1")
    fake.replies["gpt-test"] = Reply(body=[sse(chunk("partial")), Stall()])
    reply = chat(client, relay.url)
    assert (
        reply.body
        == PACKET + b"partial\n\n[Error: the upstream sent nothing for 1 s; the reply is incomplete]"
    )
    assert fake.wait_for(lambda: fake.requests[0].client_closed is not None)


def test_stream_cap_cuts_a_long_reply_with_a_note(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    relay = relay_factory(STREAM_MAX_SECONDS="1")
    fake.replies["gpt-test"] = Reply(body=openai_stream([f" t{i}" for i in range(100)], pace=0.05))
    reply = chat(client, relay.url)
    assert reply.status == 200
    text = reply.body.decode()
    assert text.endswith(
        "\n\n[Error: the reply reached this relay's limit of 1 s (STREAM_MAX_SECONDS) and was cut]"
    )
    assert " t5" in text and " t99" not in text
    # Cut at the first read past the cap: after 1 s, and well before the reply's own end at 5 s.
    assert 1.0 <= reply.reads[-1][0] < 4.0
    assert fake.wait_for(lambda: fake.requests[0].client_closed is not None)
    assert relay.log_of(reply.request_id)["outcome"] == "timeout"
