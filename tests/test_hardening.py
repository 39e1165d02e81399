"""Hostile and unlucky cases: bodies that could crash or flood the relay, clients that vanish or stall."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import pytest

from relay.config import load_settings
from relay.upstream.failures import describe_transport_error
from tests.chat_client import USER, chat
from tests.conftest import ACCESS_TOKEN, CLIENT_KEY, RelayFactory
from tests.fake_upstream import PACKET, FakeUpstream, Pause, Reply, Step, chunk, openai_stream, sse
from tests.relay_server import RelayServer


def status_line(port: int, head: bytes, timeout: float = 5.0) -> bytes:
    """Send a request head (and a few body bytes, never the rest); return the status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        answer = b""
        while b"\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    return answer.split(b"\r\n", 1)[0]


@pytest.mark.parametrize(
    ("request_line", "extra", "status"),
    [
        pytest.param(b"POST /api/chat", b"", b"401", id="no-token"),
        pytest.param(b"PUT /api/chat", b"", b"405", id="wrong-method"),
        pytest.param(b"POST /elsewhere", b"", b"404", id="wrong-path"),
        pytest.param(b"POST /api/chat", b"Origin: https://evil.example\r\n", b"403", id="wrong-origin"),
        pytest.param(
            b"POST /api/chat", f"Authorization: Bearer {ACCESS_TOKEN}\r\n".encode(), b"413", id="too-large"
        ),
        pytest.param(b"POST /v1/responses/compact", b"", b"401", id="compaction-no-token"),
        pytest.param(
            b"POST /v1/responses/compact",
            f"Authorization: Bearer {ACCESS_TOKEN}\r\n".encode(),
            b"413",
            id="compaction-too-large",
        ),
        pytest.param(
            b"POST /v1/responses/resp_1/cancel",
            f"Authorization: Bearer {ACCESS_TOKEN}\r\n".encode(),
            b"413",
            id="cancel-too-large",
        ),
        pytest.param(
            b"PUT /v1/responses/resp_1",
            f"Authorization: Bearer {ACCESS_TOKEN}\r\n".encode(),
            b"405",
            id="stored-wrong-method",
        ),
        pytest.param(
            b"GET /v1/responses/resp_1",
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n",
            b"426",
            id="websocket",
        ),
    ],
)
def test_a_refused_request_is_answered_without_reading_its_body(
    relay_factory: RelayFactory, request_line: bytes, extra: bytes, status: bytes
) -> None:
    relay = relay_factory(
        ACCESS_TOKENS=ACCESS_TOKEN, MAX_BODY_BYTES="1000", ALLOWED_ORIGINS="https://app.example"
    )
    head = request_line + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"Content-Length: 300000000\r\n\r\n{"
    # The 300 MB never come: if the relay (or its framework) waited for them, this would time out.
    assert status_line(relay.port, head).split(b" ")[1] == status


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            b'{"model":"m","messages":[{"role":"user","content":"\\u00e9"}],"temperature":1'
            + b"0" * 400
            + b"}",
            '"temperature" must be a number from 0 to 2',
            id="400-digit-number",
        ),
        pytest.param(
            b'{"model":"\\u00e9","messages":' + deep(100_000) + b"}",
            "not valid JSON",
            id="nested-100000-with-escape",
        ),
        pytest.param(b'{"model":"m","messages":' + deep(5_000) + b"}", "not valid JSON", id="nested-5000"),
        pytest.param(
            b'{"model":"m","messages":[{"role":"user","content":[{"type":"text","x":'
            + deep(1_000)
            + b"}]}]}",
            '"messages[0]" is nested more than 32 levels deep',
            id="deep-content-part",
        ),
        pytest.param(
            json.dumps({"model": "m", "messages": USER, "apiKey": "sk-cl\u00e9ntKEY"}).encode(),
            '"apiKey" must be an API key',
            id="non-ascii-key",
        ),
        pytest.param(
            json.dumps({"model": "m", "messages": USER, "apiKey": "sk-clientKEY\nX"}).encode(),
            '"apiKey" must be an API key',
            id="key-with-newline",
        ),
        pytest.param(
            json.dumps({"model": "m", "messages": USER, "max_tokens": 10**30}).encode(),
            None,
            id="huge-integer",
        ),
    ],
)
def test_odd_bodies_are_4xx_never_5xx(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client, body: bytes, message: str | None
) -> None:
    fake.replies["*"] = Reply(body=openai_stream(["ok"]))
    response = client.post(relay.url + "/api/chat", content=body)
    assert response.status_code < 500, response.text
    if message is not None:
        assert response.status_code == 400
        assert message in response.text
        assert "KEY" not in response.text  # the refused key is not quoted back
        assert fake.requests == []


def test_client_leaving_while_chunks_carry_no_text_frees_the_upstream(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client
) -> None:
    # A reasoning model: after the first text, chunks without content for a while.
    thinking: list[Step] = [
        Pause(0.05),
        sse({"model": "m", "choices": [{"delta": {"reasoning_content": "hmm"}}]}),
    ] * 60
    fake.replies["gpt-test"] = Reply(body=[sse(chunk("a")), *thinking, sse(chunk("b")), sse("[DONE]")])
    with client.stream(
        "POST", relay.url + "/api/chat", json={"model": "gpt-test", "messages": USER}
    ) as response:
        for data in response.iter_raw():
            if data.startswith(b'{"model"'):
                break  # the reply has begun; the model thinks on
        time.sleep(0.2)
    left = time.monotonic()
    assert fake.wait_for(lambda: fake.requests[0].client_closed is not None, timeout=3)
    closed = fake.requests[0].client_closed
    assert closed is not None
    # At once (the client watch); 2 s is a busy machine's margin, where the original read on to the end.
    assert closed - left < 2, f"freed {closed - left:.2f} s after the client left"


def test_client_that_stops_reading_is_let_go(fake: FakeUpstream, relay_factory: RelayFactory) -> None:
    relay = relay_factory(STREAM_MAX_SECONDS="2", UPSTREAM_IDLE_TIMEOUT="1")
    big = "y" * 20_000
    fake.replies["gpt-stall"] = Reply(body=openai_stream([big] * 2_000, pace=0.001))
    body = json.dumps({"model": "gpt-stall", "messages": USER}).encode()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", relay.port))
        sock.sendall(
            b"POST /api/chat HTTP/1.1\r\nHost: x\r\nUser-Agent: hardening/stops-reading\r\n"
            b"Content-Type: application/json\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        sock.recv(1024)  # the status line arrived; from now on this client reads nothing
        started = time.monotonic()
        assert fake.wait_for(
            lambda: bool(fake.requests) and fake.requests[0].client_closed is not None, timeout=10
        )
        waited = time.monotonic() - started
    assert waited < 6, f"the upstream stayed open {waited:.1f} s for a client that stopped reading"
    # One INFO line says the client went away; no traceback from the server (a client that
    # stops reading is not the server's error).
    (entry,) = relay.request_logs_of("hardening/stops-reading")
    assert (entry["outcome"], entry["severity"]) == ("client_gone", "INFO")
    assert "Traceback" not in relay.output() and "Socket error" not in relay.output()


def test_first_token_time_is_the_first_text_not_the_role_chunk(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client
) -> None:
    fake.replies["gpt-test"] = Reply(
        body=[sse(chunk("", role="assistant")), Pause(0.6), sse(chunk("late")), sse("[DONE]")]
    )
    reply = chat(client, relay.url)
    assert relay.log_of(reply.request_id)["first_token_ms"] >= 600


# -- the upstream client, on its own ------------------------------------------------------------


def test_transport_error_text_never_carries_a_key() -> None:
    settings = load_settings({})
    error = httpx.LocalProtocolError(f"Illegal header value b'Bearer {CLIENT_KEY}'")
    failure = describe_transport_error(error, settings.default_route, settings, (CLIENT_KEY,))
    assert CLIENT_KEY not in failure.message
    assert "[redacted]" in failure.message


def test_a_refused_model_with_a_lone_surrogate_is_a_400_the_page_can_read(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    relay = relay_factory(ALLOWED_MODELS="gpt-*", ALLOWED_ORIGINS="https://app.example")
    body = b'{"model":"x\\ud83d","messages":[{"role":"user","content":"x"}]}'  # half an emoji
    for path in ("/api/chat", "/v1/chat/completions"):
        response = client.post(relay.url + path, content=body, headers={"Origin": "https://app.example"})
        assert response.status_code == 400, response.text
        assert "is not allowed on this relay" in response.text
        assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "x\ufffd" in client.post(relay.url + "/api/chat", content=body).text  # as a browser encodes it
    assert fake.requests == []


def raw_exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes, then read the answer until the server closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and b"Content-Length: " in answer:
                    head, _, rest = answer.partition(b"\r\n\r\n")
                    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                    if len(rest) >= length:
                        break
        except TimeoutError:
            pass
    return answer


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param(b"zz\r\nabc\r\n0\r\n\r\n", id="size-not-hex"),
        pytest.param(b"3\r\nabcX\r\n0\r\n\r\n", id="data-without-crlf"),
    ],
)
def test_a_badly_chunked_request_body_is_a_400(
    fake: FakeUpstream, relay: RelayServer, path: str, chunks: bytes
) -> None:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
    answer = raw_exchange(relay.port, head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"chunked framing is invalid" in answer
    assert fake.requests == []


@pytest.mark.parametrize(
    ("framing", "sent"),
    [
        pytest.param(b"Content-Length: 100\r\n", b'{"mo', id="short-of-its-length"),
        pytest.param(b"Transfer-Encoding: chunked\r\n", b'5\r\n{"mod', id="chunk-without-its-crlf"),
        pytest.param(b"Transfer-Encoding: chunked\r\n", b'5\r\n{"mod\r\n0\r\n', id="before-the-last-crlf"),
    ],
)
def test_a_client_that_leaves_mid_body_is_logged_as_gone_not_as_a_relay_error(
    fake: FakeUpstream, relay: RelayServer, framing: bytes, sent: bytes
) -> None:
    agent = f"hardening/leaves-mid-body/{len(sent)}"
    head = (
        b"POST /api/chat HTTP/1.1\r\nHost: x\r\nUser-Agent: " + agent.encode() + b"\r\n" + framing + b"\r\n"
    )
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
        sock.sendall(head + sent)
    lines = relay.request_logs_of(agent)
    assert [entry["outcome"] for entry in lines] == ["client_gone"]
    assert "Unexpected error" not in relay.output()
    assert fake.requests == []


def test_a_stalled_request_body_is_answered_408_and_let_go(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    relay = relay_factory(REQUEST_BODY_TIMEOUT="1")
    head = b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
        sock.sendall(head + b'{"mo')  # the other 96 bytes never come
        answer = b""
        while data := sock.recv(65536):  # until the server closes the connection
            answer += data
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"REQUEST_BODY_TIMEOUT" in answer
    assert time.monotonic() - started < 4  # answered and let go after 1 s, not held
    assert fake.requests == []


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        pytest.param(Reply(body=[]), "stream", id="empty-event-stream"),
        pytest.param(Reply(body=[sse("[DONE]")]), "stream", id="only-done"),
        pytest.param(
            Reply(body=[b'{"error":{"message":"quota"}}']), "stream", id="error-object-not-sent-as-an-event"
        ),
        pytest.param(
            Reply(headers={"Content-Type": "application/json"}, body=[b"{}"]),
            "answer",
            id="json-without-choices",
        ),
    ],
)
def test_a_200_with_nothing_in_it_says_so_instead_of_an_empty_reply(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client, reply: Reply, kind: str
) -> None:
    fake.replies["*"] = reply
    response = chat(client, relay.url)
    assert response.status == 200
    assert response.text == (
        f"\n\n[Error: the upstream's {kind} ended with nothing to relay, though its status was 200]"
    )
    assert relay.log_of(response.request_id)["outcome"] == "upstream_error"


def test_an_empty_reply_with_its_choice_is_an_empty_reply_not_an_error(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client
) -> None:
    # A reasoning model that spent its tokens thinking: a choice, no text. Nothing is missing.
    answer = {"model": "m", "choices": [{"index": 0, "message": {"content": ""}, "finish_reason": "length"}]}
    for reply, text in (
        (
            Reply(headers={"Content-Type": "application/json"}, body=[json.dumps(answer).encode()]),
            b'{"model":"m"}',
        ),
        (Reply(body=[sse(chunk("", role="assistant")), sse(chunk(finish="length")), sse("[DONE]")]), PACKET),
    ):
        fake.replies["*"] = reply
        agent = f"hardening/empty-reply/{len(text)}"
        response = chat(client, relay.url, headers={"User-Agent": agent})
        assert (response.status, response.body) == (200, text)
        assert [entry["outcome"] for entry in relay.request_logs_of(agent)] == ["ok"]


NOTHING_IN_STREAM = "the upstream's stream ended with nothing to relay, though its status was 200"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        pytest.param(Reply(body=[]), NOTHING_IN_STREAM, id="empty-event-stream"),
        pytest.param(Reply(body=[sse("[DONE]")]), NOTHING_IN_STREAM, id="only-done"),
        pytest.param(
            Reply(headers={"Content-Type": "application/json"}, body=[b'{"choices":[]}']),
            "the upstream's answer ended with nothing to relay, though its status was 200",
            id="json-without-choices",
        ),
    ],
)
def test_an_empty_openai_stream_ends_with_an_error_event_not_a_bare_done(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client, reply: Reply, message: str
) -> None:
    fake.replies["*"] = reply
    response = client.post(
        relay.url + "/v1/chat/completions", json={"model": "gpt-test", "messages": USER, "stream": True}
    )
    assert response.status_code == 200
    assert response.text.startswith('data: {"error":{"message":"')
    assert message in response.text
    assert "[DONE]" not in response.text


def send_then_leave(port: int, path: str, body: dict[str, Any], agent: str, after: float) -> float:
    """Send a request on a raw socket, close the connection `after` seconds later; return when."""
    data = json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: {agent}\r\nContent-Type: application/json\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode() + b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
        time.sleep(after)
    return time.monotonic()


@pytest.mark.parametrize(
    ("path", "stream"),
    [("/api/chat", None), ("/v1/chat/completions", True), ("/v1/chat/completions", False)],
)
def test_a_client_that_leaves_while_the_upstream_thinks_frees_it_at_once(
    fake: FakeUpstream, relay: RelayServer, path: str, stream: bool | None
) -> None:
    # A reasoning model thinks for 3 s before its first byte; the user presses Stop after 0.3 s.
    fake.replies["gpt-test"] = Reply(delay_headers=3.0, body=openai_stream(["late"]))
    body: dict[str, Any] = {"model": "gpt-test", "messages": USER}
    if stream is not None:
        body["stream"] = stream
    agent = f"hardening/leaves-waiting{path}/{stream}"
    left = send_then_leave(relay.port, path, body, agent, after=0.3)
    assert fake.wait_for(
        lambda: bool(fake.requests) and fake.requests[0].client_closed is not None, timeout=5
    )
    closed = fake.requests[0].client_closed
    assert closed is not None
    # At once; 2 s is a busy machine's margin, where it used to wait out the upstream's 3 s.
    assert closed - left < 2, f"the upstream was freed {closed - left:.2f} s after the client left"
    assert [entry["outcome"] for entry in relay.request_logs_of(agent)] == ["client_gone"]


def test_under_gthread_a_client_that_leaves_mid_stream_frees_the_upstream_at_the_next_read(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    # A thread cannot be interrupted, but it peeks at the client's socket at each upstream read.
    # The upstream sends only comments for 10 s (a model "thinking" as OpenRouter shows it): no
    # write to the client would fail, so only the peek can tell that it left.
    relay = relay_factory(SERVER_WORKER="gthread", THREADS="4")
    thinking = [step for _ in range(200) for step in (Pause(0.05), b": thinking\n\n")]
    stream = openai_stream(["done"])
    fake.replies["gpt-test"] = Reply(body=[stream[0], *thinking, *stream[1:]])
    body = {"model": "gpt-test", "messages": USER, "stream": True}
    agent = "hardening/gthread-leaves-mid-stream"
    left = send_then_leave(relay.port, "/v1/chat/completions", body, agent, after=0.5)
    assert fake.wait_for(
        lambda: bool(fake.requests) and fake.requests[0].client_closed is not None, timeout=8
    ), "the upstream was read on after the client left"
    closed = fake.requests[0].client_closed
    assert closed is not None
    assert closed - left < 2, f"freed {closed - left:.2f} s after the client left"
    assert [entry["outcome"] for entry in relay.request_logs_of(agent)] == ["client_gone"]


def test_a_client_that_leaves_during_a_retry_wait_gets_no_retry(
    fake: FakeUpstream, relay: RelayServer
) -> None:
    fake.replies["gpt-test"] = Reply(
        status=503, headers={"Content-Type": "application/json", "Retry-After": "2"}, body=[b"{}"]
    )
    agent = "hardening/leaves-during-retry-wait"
    send_then_leave(relay.port, "/api/chat", {"model": "gpt-test", "messages": USER}, agent, after=0.5)
    assert [entry["outcome"] for entry in relay.request_logs_of(agent)] == ["client_gone"]
    time.sleep(2)  # past the Retry-After: no second attempt was made
    assert len(fake.requests) == 1
