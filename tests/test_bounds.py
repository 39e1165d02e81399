"""Bounds: nothing one caller or one upstream controls can stall or exhaust an instance.

A hostile upstream (tests/fake_upstream.py sends exactly the bytes a test asks for) and
hostile clients of our own, on loopback, each bounded in time. Every bound is one the
README names; each test is what an attacker or an unlucky production day would send.
"""

from __future__ import annotations

import gzip

import httpx
import pytest

from tests.chat_client import chat
from tests.fake_upstream import FakeUpstream, Reply, openai_stream
from tests.relay_server import RelayServer

# -- what the upstream sends ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            gzip.compress(b"".join(s for s in openai_stream(["hi"]) if isinstance(s, bytes))), id="gzip"
        ),
        # 10 MB of zeros in 10 KB: what a small compressed body can become.
        pytest.param(gzip.compress(b"data: " + b"0" * 10_000_000), id="gzip-bomb"),
    ],
)
def test_a_compressed_body_is_refused_not_decompressed(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client, body: bytes
) -> None:
    fake.replies["gpt-test"] = Reply(
        headers={"Content-Type": "text/event-stream", "Content-Encoding": "gzip"}, body=[body]
    )
    reply = chat(client, relay.url)
    assert reply.status == 502
    assert "compressed body (Content-Encoding: gzip)" in reply.text
    assert fake.requests[0].headers["accept-encoding"] == "identity"  # none was asked for
    assert relay.log_of(reply.request_id)["outcome"] == "upstream_error"


def test_the_relay_asks_for_no_compression(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client
) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["plain"]))
    assert chat(client, relay.url).status == 200
    assert fake.requests[0].headers["accept-encoding"] == "identity"
