"""Each defect of the 2023 route (../shared/seed/README.md), as a test that route would fail.

Run end to end: the real server, the fake upstream producing the stream that
tripped the original.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.chat_client import USER, chat
from tests.conftest import RelayFactory
from tests.fake_upstream import (
    PACKET,
    Close,
    FakeUpstream,
    Pause,
    Reply,
    Reset,
    chunk,
    error_reply,
    openai_stream,
    sse,
)
from tests.relay_server import RelayServer, free_port

LOST = b"\n\n[Error: the upstream closed the connection before the reply was complete]"


def test_character_split_across_reads_arrives_intact(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client
) -> None:
    """Was: a multi-byte character split across two reads arrived as U+FFFD."""
    event = sse(chunk("Grüße 😀 中文"))
    cut = event.index("😀".encode()) + 2
    fake.replies["gpt-test"] = Reply(body=[event[:cut], Pause(0.2), event[cut:], sse("[DONE]")])
    reply = chat(client, relay.url)
    assert reply.text == '{"model":"gpt-fake-0613"}Grüße 😀 中文'
    assert "\ufffd" not in reply.text


@pytest.mark.parametrize(
    "odd_event",
    [
        pytest.param(
            sse({"id": "", "choices": [], "prompt_filter_results": [{"prompt_index": 0}]}), id="azure-filter"
        ),
        pytest.param(sse({"choices": [], "usage": {"total_tokens": 6}}), id="usage-chunk"),
        pytest.param(b"data: {this is not json\n\n", id="not-json"),
    ],
)
def test_event_without_choices_or_not_json_does_not_end_the_stream(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client, odd_event: bytes
) -> None:
    """Was: such an event ended the stream with an empty or cut body and no message."""
    fake.replies["gpt-test"] = Reply(
        body=[sse(chunk("before ")), odd_event, sse(chunk("after")), sse("[DONE]")]
    )
    reply = chat(client, relay.url)
    assert reply.status == 200
    assert reply.body == PACKET + b"before after"


def test_delta_with_role_and_content_keeps_its_content(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client
) -> None:
    """Was: a delta that carried both role and content lost its content."""
    fake.replies["gpt-test"] = Reply(
        body=[sse(chunk("Hello", role="assistant")), sse(chunk("!")), sse("[DONE]")]
    )
    assert chat(client, relay.url).body == PACKET + b"Hello!"


@pytest.mark.parametrize(
    ("ending", "tail"),
    [
        pytest.param([], b"", id="no-done"),
        pytest.param([Close()], LOST, id="close-mid-stream"),
        pytest.param([Reset()], LOST, id="reset-mid-stream"),
    ],
)
def test_stream_that_ends_badly_still_ends(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client, ending: list[Close | Reset], tail: bytes
) -> None:
    """Was: no [DONE], or a close or reset mid-stream, left the client waiting forever."""
    fake.replies["gpt-test"] = Reply(body=[sse(chunk("partial")), Pause(0.1), *ending])
    reply = chat(client, relay.url)  # the test's timeout fails it if this hangs
    assert reply.body == PACKET + b"partial" + tail


def test_client_leaving_stops_the_upstream(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client
) -> None:
    """Was: the upstream was read to the end, and paid for, after the client left."""
    fake.replies["gpt-test"] = Reply(body=openai_stream([f" t{i}" for i in range(200)], pace=0.05))
    with client.stream(
        "POST", relay.url + "/api/chat", json={"model": "gpt-test", "messages": USER}
    ) as response:
        request_id = response.headers["x-relay-request-id"]
        received = b""
        for data in response.iter_raw():
            received += data
            if received.count(b" t") >= 3:
                break
    assert fake.wait_for(lambda: fake.requests[0].client_closed is not None, timeout=2)
    assert fake.requests[0].finished is None  # not read to the end
    assert relay.log_of(request_id)["outcome"] == "client_gone"


@pytest.mark.parametrize(
    ("method", "content", "status", "message"),
    [
        pytest.param("POST", b"{not json", 400, "The request body is not valid JSON", id="invalid-json"),
        pytest.param("POST", b"", 400, "The request body is empty", id="empty-body"),
        pytest.param("GET", b"", 405, "Method GET is not allowed on /api/chat; use POST.", id="get"),
        pytest.param("PUT", b"{}", 405, "Method PUT is not allowed on /api/chat; use POST.", id="put"),
    ],
)
def test_bad_input_is_a_4xx_with_a_message_not_a_bare_500(
    fake: FakeUpstream,
    relay: RelayServer,
    client: httpx.Client,
    method: str,
    content: bytes,
    status: int,
    message: str,
) -> None:
    """Was: invalid JSON, an empty body or GET answered a bare 500; any method was accepted."""
    response = client.request(method, relay.url + "/api/chat", content=content)
    assert response.status_code == status
    assert message in response.text
    assert fake.requests == []


def test_unreachable_upstream_is_a_502_with_a_message(
    relay_factory: RelayFactory, client: httpx.Client
) -> None:
    """Was: an unreachable upstream answered a bare 500 Internal Server Error."""
    port = free_port()
    relay = relay_factory(OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1")
    reply = chat(client, relay.url)
    assert reply.status == 502
    assert reply.text.startswith(f"OpenAI API error: could not connect to 127.0.0.1:{port}")


def test_upstream_error_keeps_its_status(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client
) -> None:
    """Was: upstream errors came back with HTTP 200 (the text is kept as the 2023 client reads it)."""
    fake.replies["gpt-test"] = error_reply(429, b'{"error":{"message":"Rate limit reached"}}')
    reply = chat(client, relay.url)
    assert reply.status == 429
    assert reply.text == 'OpenAI API error: 429 Too Many Requests {"error":{"message":"Rate limit reached"}}'


def test_headers_are_set_and_sent_before_the_first_token(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client
) -> None:
    """Was: no Content-Type or Cache-Control; status and headers held back until the first token."""
    fake.replies["gpt-test"] = Reply(body=[Pause(3.0), *openai_stream(["late"])])
    reply = chat(client, relay.url)
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert reply.headers["cache-control"] == "no-cache"
    # Sent at once (milliseconds), long before the token 3 s later; the margin is for a busy machine.
    assert reply.headers_at < 1.5
    assert reply.reads[-1][0] >= 3.0


def test_long_reply_in_one_read_is_relayed_whole_and_fast(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client
) -> None:
    """Was: the parser slowed with the square of a read's size (20,000 tokens: 5 s, 73 x reading directly).

    Measured side by side in this run, so a slow machine slows both: through the relay
    the same 20,000-token read must take well under the original's 73 times as long
    as reading it from the upstream directly. (The decoder's linear cost is also
    checked on its own, as ratios, in test_sse.py.)
    """
    tokens = [f" t{index}" for index in range(20_000)]
    body = b"".join(step for step in openai_stream(tokens) if isinstance(step, bytes))
    fake.replies["gpt-test"] = Reply(body=[body])
    payload = {"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]}

    def best_of_three(url: str) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            with client.stream("POST", url, json=payload) as response:
                response.read()
            best = min(best, time.perf_counter() - started)
        return best

    direct = best_of_three(fake.base_url + "/chat/completions")
    relayed = best_of_three(relay.url + "/api/chat")
    assert chat(client, relay.url).body == PACKET + "".join(tokens).encode()
    assert relayed < 20 * direct + 0.1, f"relayed {relayed * 1000:.0f} ms, direct {direct * 1000:.0f} ms"
