"""Bounds: nothing one caller or one upstream controls can stall or exhaust an instance.

A hostile upstream (tests/fake_upstream.py sends exactly the bytes a test asks for) and
hostile clients of our own, on loopback, each bounded in time. Every bound is one the
README names; each test is what an attacker or an unlucky production day sends. The
time limits asserted are several times what the relay needs and far below what the
unbounded relay took (seconds against minutes, or for ever).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.chat_client import USER, chat
from tests.conftest import ACCESS_TOKEN, ANTHROPIC_KEY, SERVER_KEY, RelayFactory
from tests.fake_replies import anthropic_sse
from tests.fake_upstream import (
    PACKET,
    FakeUpstream,
    Pause,
    Reply,
    Stall,
    Step,
    chunk,
    error_reply,
    openai_stream,
    sse,
)
from tests.relay_server import RelayServer, shipped_server_env


class PeakMemory:
    """The most memory a relay (all its processes) held while the block ran, above what it held before."""

    def __init__(self, relay: RelayServer) -> None:
        self.relay = relay
        self.before = self.peak = relay.rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.relay.rss_mb())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def grew_mb(self) -> float:
        return self.peak - self.before


def raw_request(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes (ignoring a server that stops reading them); return what came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # the server answered and closed before reading it all
            sock.sendall(data)
        answer = b""
        try:
            while chunk_ := sock.recv(65536):
                answer += chunk_
        except OSError:
            pass
    return answer


class WatchedStream:
    """A paced /api/chat stream read on a thread of its own: the time between its reads, and its bytes.

    For the tests that prove one request cannot stall the other streams of its worker.
    """

    def __init__(self, relay: RelayServer, model: str) -> None:
        self.gaps: list[float] = []
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._read, args=(relay, model))
        self.thread.start()

    def _read(self, relay: RelayServer, model: str) -> None:
        body = {"model": model, "messages": USER}
        with httpx.stream("POST", relay.url + "/api/chat", json=body, timeout=30) as response:
            last = time.monotonic()
            for data in response.iter_raw():
                now = time.monotonic()
                self.gaps.append(now - last)
                self.received.append(data)
                last = now


@pytest.fixture
def one_worker(relay_factory: RelayFactory) -> RelayServer:
    """The shipped server with one worker process, so that every request shares it."""
    return relay_factory(**{**shipped_server_env(), "WORKERS": "1"})


# -- what a caller sends ----------------------------------------------------------------------------


def test_a_huge_request_line_is_414_at_once_and_stalls_no_stream(
    fake: FakeUpstream, one_worker: RelayServer
) -> None:
    # Was: gunicorn rescanned a multi-megabyte line on every read without yielding, so every
    # stream of the worker stalled for seconds.
    fake.replies["gpt-test"] = Reply(body=openai_stream([f" t{i}" for i in range(40)], pace=0.05))
    watched = WatchedStream(one_worker, "gpt-test")
    time.sleep(0.3)
    for _ in range(3):
        answer = raw_request(one_worker.port, b"GET /" + b"a" * 4_000_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 414 "), answer[:80]
    watched.thread.join(30)
    gaps = watched.gaps
    assert b"".join(watched.received).endswith(b" t39")  # the whole reply
    assert len(gaps) > 10  # in many reads (a busy machine may join a few tokens into one)
    # Tokens 50 ms apart: a gap of 3 s is a busy machine's margin; unbounded, each line stalled seconds.
    assert max(gaps[2:]) < 3.0, f"a token waited {max(gaps[2:]):.2f} s while the long lines were refused"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param("".join(f"X-Filler-{n}: x\r\n" for n in range(200)), id="too-many"),
        pytest.param("X-Filler: " + "x" * 20_000 + "\r\n", id="too-large"),
    ],
)
def test_too_many_or_too_large_headers_are_431(relay: RelayServer, headers: str) -> None:
    answer = raw_request(relay.port, f"GET /v1/models HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]


def test_a_body_trickled_a_byte_at_a_time_is_408_at_the_whole_bodys_deadline(
    relay_factory: RelayFactory,
) -> None:
    # Was: REQUEST_BODY_TIMEOUT bounded each silence, so a byte every so often held the
    # connection for ever.
    relay = relay_factory(REQUEST_BODY_TIMEOUT="1.5")
    body = json.dumps({"model": "gpt-test", "messages": USER}).encode()
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as sock:
        sock.sendall(b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
        answer = b""
        for byte in body:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break  # answered and closed
            sock.settimeout(0.3)
            try:
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            if answer:
                break
        sock.settimeout(5)
        while b"(REQUEST_BODY_TIMEOUT)" not in answer and (data := sock.recv(65536)):
            answer += data
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert time.monotonic() - started < 6  # 1.5 s (and a busy machine's margin), not the body's 28 s
    assert b"did not arrive whole within 1.5 s (REQUEST_BODY_TIMEOUT)" in answer


def test_a_caller_controls_no_more_than_a_bounded_log_line(relay: RelayServer, client: httpx.Client) -> None:
    agent = "agent/" + "x" * 7000  # a header the server takes (under 8 KiB)
    response = client.post(
        relay.url + "/api/chat",
        json={"model": "m" * 5000, "messages": USER},
        headers={"User-Agent": agent},
    )
    entry = relay.log_of(response.headers["x-relay-request-id"])
    assert len(entry["httpRequest"]["userAgent"]) <= 512
    assert entry["httpRequest"]["userAgent"].endswith("…[cut]")
    assert len(json.dumps(entry)) < 4096


# -- what an upstream sends -----------------------------------------------------------------------


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


MEGABYTE = b"x" * (1024 * 1024)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([b"data: ", *[MEGABYTE] * 60], id="a-line-without-end"),
        pytest.param([b"data: x\n" * 100_000] * 30, id="an-event-without-end"),
    ],
)
def test_an_endless_line_or_event_ends_the_stream_without_filling_memory(
    fake: FakeUpstream, one_worker: RelayServer, client: httpx.Client, body: list[Any]
) -> None:
    # Was: the SSE decoder kept the pending line whole: 60 MB here, hundreds of MB in the wild.
    fake.replies["gpt-test"] = Reply(body=[sse(chunk("before ")), *body, Stall()])
    with PeakMemory(one_worker) as memory:
        reply = chat(client, one_worker.url)
    assert reply.status == 200
    assert reply.text.endswith(
        "[Error: the upstream sent an event larger than this relay passes on; the reply is cut]"
    )
    assert reply.body.startswith(PACKET + b"before ")
    assert memory.grew_mb < 30, f"the relay grew by {memory.grew_mb:.0f} MB"
    assert fake.wait_for(lambda: fake.requests[0].client_closed is not None)


def test_after_done_an_upstream_that_trickles_on_is_let_go_at_once(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client
) -> None:
    # Was: the relay read on for as long as the upstream sent a byte now and then.
    fake.replies["gpt-test"] = Reply(
        body=[*openai_stream(["done"]), *[step for _ in range(60) for step in (Pause(0.5), b" ")]]
    )
    started = time.monotonic()
    reply = chat(client, relay.url)
    assert reply.body == PACKET + b"done"
    assert relay.log_of(reply.request_id)["outcome"] == "ok"
    assert fake.wait_for(lambda: fake.requests[0].client_closed is not None, timeout=5)
    assert fake.requests[0].client_closed - started < 5  # type: ignore[operator]  # not the trickle's 30 s


def test_a_whole_answer_that_never_ends_is_cut_at_the_stream_cap(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, STREAM_MAX_SECONDS="2", UPSTREAM_RETRIES="0")
    fake.replies["gpt-test"] = Reply(
        headers={"Content-Type": "application/json"},
        body=[b"{", *[step for _ in range(200) for step in (Pause(0.2), b" ")]],
    )
    started = time.monotonic()
    response = httpx.post(
        relay.url + "/v1/chat/completions",
        json={"model": "gpt-test", "messages": USER},
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 504
    assert "took too long to send its whole answer" in response.json()["error"]["message"]
    assert time.monotonic() - started < 6
    assert fake.wait_for(lambda: fake.requests[0].client_closed is not None)


def test_informational_heads_without_end_are_cut_at_the_first_byte_deadline(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    # The whole wait for the head is bounded by UPSTREAM_CONNECT_TIMEOUT + UPSTREAM_FIRST_BYTE_TIMEOUT.
    relay = relay_factory(UPSTREAM_CONNECT_TIMEOUT="1", UPSTREAM_FIRST_BYTE_TIMEOUT="1", UPSTREAM_RETRIES="0")
    fake.replies["gpt-test"] = Reply(
        preamble=[step for _ in range(100) for step in (b"HTTP/1.1 100 Continue\r\n\r\n", Pause(0.2))],
        body=openai_stream(["late"]),
    )
    started = time.monotonic()
    reply = chat(client, relay.url)
    assert reply.status == 504
    assert "UPSTREAM_FIRST_BYTE_TIMEOUT" in reply.text
    assert time.monotonic() - started < 5  # 2 s, where the unbounded wait lasted all 20 s


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions", "/v1/messages"])
def test_a_whole_answer_trickled_after_the_client_left_is_let_go(
    fake: FakeUpstream, relay_factory: RelayFactory, path: str
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN)
    fake.replies["gpt-test"] = Reply(
        headers={"Content-Type": "application/json"},
        body=[b"{", *[step for _ in range(200) for step in (Pause(0.1), b" ")]],
    )
    data = json.dumps({"model": "gpt-test", "messages": USER}).encode()
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
        sock.sendall(
            b"POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (path.encode(), ACCESS_TOKEN.encode(), len(data), data)
        )
        time.sleep(0.5)  # the upstream has begun its answer
    left = time.monotonic()
    assert fake.wait_for(lambda: fake.requests[0].client_closed is not None, timeout=5)
    assert fake.requests[0].client_closed - left < 2  # type: ignore[operator]  # not the answer's 20 s


def test_upstream_headers_are_passed_on_only_well_formed_and_few(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="0")
    headers = {
        "Content-Type": "application/json",
        "Retry-After": "5\x85",  # obs-text: h11 takes it, a caller's head must not carry it
        "X-Request-Id": "req_123",
        "X-Ratelimit-Remaining-Requests": "9",
        **{f"X-Ratelimit-Junk-{n}": "y" * 20 for n in range(1000)},
    }
    fake.replies["gpt-test"] = Reply(status=429, headers=headers, body=[b'{"error": {"message": "slow"}}'])
    for path in ("/api/chat", "/v1/chat/completions"):
        response = httpx.post(
            relay.url + path,
            json={"model": "gpt-test", "messages": USER},
            headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
        )
        assert response.status_code == 429, response.text
        assert "retry-after" not in response.headers
        assert not [name for name in response.headers if name.startswith("x-ratelimit-junk")]
        assert sum(len(name) + len(value) for name, value in response.headers.items()) < 2048
    assert response.headers["x-request-id"] == "req_123"
    assert response.headers["x-ratelimit-remaining-requests"] == "9"


# -- what must never come back: a key, in any form ------------------------------------------------


def leaked(text: str, secret: str = SERVER_KEY, window: int = 5) -> list[str]:
    """Every run of `window` characters of the secret's random part that `text` holds."""
    secret_part = secret.removeprefix("sk-server-").removeprefix("sk-ant-api03-")
    return [
        secret_part[i : i + window]
        for i in range(len(secret_part) - window + 1)
        if secret_part[i : i + window] in text
    ]


ESCAPED = "".join(f"\\u{ord(c):04x}" for c in SERVER_KEY)


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(f"Incorrect API key provided: {SERVER_KEY[:14]}...{SERVER_KEY[-4:]}.", id="dots"),
        pytest.param(f"Incorrect API key provided: ****…{SERVER_KEY[-9:]}.", id="stars-and-a-long-end"),
        pytest.param(f"the key {SERVER_KEY} and again {SERVER_KEY}", id="twice"),
        pytest.param(f"the key {SERVER_KEY[10:]}", id="without-its-prefix"),
    ],
)
def test_an_upstream_error_quoting_the_key_in_any_form_is_redacted(
    fake: FakeUpstream, relay_factory: RelayFactory, message: str
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="0")
    fake.replies["gpt-test"] = error_reply(401, json.dumps({"error": {"message": message}}).encode())
    for path in ("/api/chat", "/v1/chat/completions"):
        response = httpx.post(
            relay.url + path,
            json={"model": "gpt-test", "messages": USER},
            headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
        )
        assert response.status_code == 401
        assert leaked(response.text) == [], response.text
        assert "[redacted]" in response.text


@pytest.fixture
def v1(relay_factory: RelayFactory) -> Iterator[httpx.Client]:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="0")
    with httpx.Client(
        base_url=relay.url + "/v1", headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}
    ) as http:
        yield http


def test_the_key_echoed_escaped_in_a_200_body_is_redacted(fake: FakeUpstream, v1: httpx.Client) -> None:
    answer = {"choices": [{"message": {"content": "ok"}}], "debug": f"sent with {SERVER_KEY}"}
    body = json.dumps(answer).encode().replace(SERVER_KEY.encode(), ESCAPED.encode())
    fake.replies["gpt-test"] = Reply(headers={"Content-Type": "application/json"}, body=[body])
    response = v1.post("/chat/completions", json={"model": "gpt-test", "messages": USER})
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "ok"  # still JSON
    assert leaked(json.dumps(response.json())) == []


def test_the_key_echoed_in_a_whole_answer_where_a_stream_was_asked_is_redacted(
    fake: FakeUpstream, v1: httpx.Client, relay_factory: RelayFactory
) -> None:
    # An upstream that ignores `stream` and answers whole: the caller gets it as a stream, redacted.
    answer = {"choices": [{"message": {"content": f"ok {SERVER_KEY}"}}], "usage": {"total_tokens": 7}}
    fake.replies["gpt-test"] = Reply(
        headers={"Content-Type": "application/json"}, body=[json.dumps(answer).encode()]
    )
    response = v1.post("/chat/completions", json={"model": "gpt-test", "messages": USER, "stream": True})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert "ok sk-server-[redacted]" in response.text  # a stream's public prefix is not secret
    assert leaked(response.text) == []
    # Its usage counted, as for any whole answer (the limits charge it).
    entry = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="0").log_of(
        response.headers["x-relay-request-id"]
    )
    assert (entry["tokens"], entry["usage_source"]) == (7, "upstream")


def test_the_key_in_a_header_is_not_passed_on(fake: FakeUpstream, v1: httpx.Client) -> None:
    fake.replies["gpt-test"] = Reply(
        headers={"Content-Type": "text/event-stream", "X-Request-Id": f"req-{SERVER_KEY}"},
        body=openai_stream(["ok"]),
    )
    with v1.stream(
        "POST", "/chat/completions", json={"model": "gpt-test", "messages": USER, "stream": True}
    ) as response:
        body = response.read().decode()
    assert "x-request-id" not in response.headers
    assert "ok" in body


def test_the_key_in_any_event_of_a_stream_is_redacted(
    fake: FakeUpstream, relay: RelayServer, v1: httpx.Client, client: httpx.Client
) -> None:
    # Not only an {"error": ...} event: Responses-style errors, and text itself.
    fake.replies["gpt-test"] = Reply(
        body=[
            sse(chunk(f"text {SERVER_KEY} ")),
            sse(b'{"type": "error", "message": "bad key ' + ESCAPED.encode() + b'"}'),
            sse("[DONE]"),
        ]
    )
    with v1.stream(
        "POST", "/chat/completions", json={"model": "gpt-test", "messages": USER, "stream": True}
    ) as response:
        body = response.read().decode()
    assert leaked(body) == [] and body.count("[redacted]") == 2
    reply = chat(client, relay.url)
    assert leaked(reply.text) == [] and "text sk-server-[redacted]" in reply.text


ANTHROPIC_ESCAPED = "".join(f"\\u{ord(c):04x}" for c in ANTHROPIC_KEY)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(
            error_reply(401, json.dumps({"type": "error", "error": {"type": "authentication_error",
                        "message": f"invalid x-api-key: {ANTHROPIC_KEY[:16]}...{ANTHROPIC_KEY[-4:]}"}}).encode()),
            id="masked-in-an-error",
        ),
        pytest.param(
            Reply(headers={"Content-Type": "application/json"},
                  body=[json.dumps({"type": "message", "content": [{"type": "text", "text": "ok"}],
                                    "debug": f"sent with {ANTHROPIC_KEY}"}).encode()
                        .replace(ANTHROPIC_KEY.encode(), ANTHROPIC_ESCAPED.encode())]),
            id="escaped-in-a-whole-answer",
        ),
        pytest.param(
            Reply(body=[anthropic_sse({"type": "message_start", "message": {"id": f"msg {ANTHROPIC_KEY}"}}),
                        anthropic_sse({"type": "message_stop"})]),
            id="in-an-event",
        ),
        pytest.param(
            Reply(headers={"Content-Type": "text/event-stream", "request-id": f"req-{ANTHROPIC_KEY}"},
                  body=[anthropic_sse({"type": "message_stop"})]),
            id="in-a-header",
        ),
    ],
)  # fmt: skip
def test_an_anthropic_upstream_quoting_its_key_in_any_form_gets_none_of_it_out(
    fake: FakeUpstream, relay_factory: RelayFactory, answer: Reply
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="0")
    fake.replies["claude-test"] = answer
    response = httpx.post(
        relay.url + "/v1/messages",
        json={
            "model": "claude-test",
            "messages": USER,
            "stream": answer.headers["Content-Type"] != "application/json",
        },
        headers={"x-api-key": ACCESS_TOKEN},
    )
    received = response.text + repr(response.headers.raw)
    if response.headers["content-type"] == "application/json":  # as a client reads it: escapes undone
        received += json.dumps(response.json(), ensure_ascii=False)
    assert leaked(received, ANTHROPIC_KEY, window=4) == [], received
    assert fake.requests[0].headers["x-api-key"] == ANTHROPIC_KEY
    assert "request-id" not in response.headers


# -- MAX_TOKENS_LIMIT on /v1/: every field that sets a length or a price ----------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_predict", 100_000),  # llama.cpp
        ("max_new_tokens", 100_000),  # text-generation-inference
        ("min_tokens", 100_000),  # vLLM
        ("ignore_eos", True),  # vLLM, llama.cpp
        ("best_of", 20),
        ("prediction", {"type": "content", "content": "x" * 1000}),
        ("options", {"num_predict": 100_000}),  # Ollama
        ("service_tier", "priority"),
    ],
)
def test_the_token_cap_holds_against_every_length_or_cost_field(
    fake: FakeUpstream, relay_factory: RelayFactory, field: str, value: Any
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, MAX_TOKENS_LIMIT="100")
    response = httpx.post(
        relay.url + "/v1/chat/completions",
        json={"model": "gpt-test", "messages": USER, field: value},
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
    )
    assert response.status_code == 400
    assert f'"{field}"' in response.json()["error"]["message"]
    assert fake.requests == []


def test_a_field_the_owner_allows_passes_under_the_cap(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    relay = relay_factory(
        ACCESS_TOKENS=ACCESS_TOKEN, MAX_TOKENS_LIMIT="100", ALLOWED_FIELDS="n_predict,cache_prompt"
    )
    fake.replies["gpt-test"] = Reply(headers={"Content-Type": "application/json"}, body=[b'{"choices": []}'])
    response = httpx.post(
        relay.url + "/v1/chat/completions",
        json={"model": "gpt-test", "messages": USER, "n_predict": 50, "cache_prompt": True, "seed": 1},
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
    )
    assert response.status_code == 200
    assert fake.requests[0].json["n_predict"] == 50


def test_the_key_in_a_model_list_or_a_retry_after_is_not_passed_on(
    fake: FakeUpstream, relay_factory: RelayFactory, v1: httpx.Client
) -> None:
    listing = {
        "object": "list",
        "data": [{"id": "gpt-x", "object": "model", "owned_by": f"key {SERVER_KEY}"}],
    }
    fake.replies["/models"] = Reply(
        headers={"Content-Type": "application/json"}, body=[json.dumps(listing).encode()]
    )
    models = v1.get("/models")
    assert models.status_code == 200
    assert leaked(models.text) == [] and models.json()["data"][0]["id"] == "gpt-x"
    fake.replies["gpt-test"] = Reply(
        status=429, headers={"Content-Type": "application/json", "Retry-After": SERVER_KEY}, body=[b"{}"]
    )
    relay = relay_factory(UPSTREAM_RETRIES="0")
    refused = httpx.post(relay.url + "/api/chat", json={"model": "gpt-test", "messages": USER})
    assert refused.status_code == 429
    assert "retry-after" not in refused.headers


def test_bodies_of_a_megabyte_waiting_for_a_slow_upstream_cost_about_their_size(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    # Was: the request's JSON, parsed into tens of thousands of objects, was held while the
    # upstream thought: about 24 MB for each 1 MB body. Now the bytes to send (and let go once sent).
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, WORKERS="1", UPSTREAM_RETRIES="0")
    answer = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]
    }
    fake.replies["gpt-test"] = Reply(
        delay_headers=3.0, headers={"Content-Type": "application/json"}, body=[json.dumps(answer).encode()]
    )
    body = json.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": "x"}] * 30_000}).encode()
    assert 900_000 < len(body) < 1024 * 1024
    statuses: list[int] = []

    def send() -> None:
        response = httpx.post(
            relay.url + "/v1/chat/completions",
            content=body,
            headers={"Authorization": f"Bearer {ACCESS_TOKEN}", "Content-Type": "application/json"},
            timeout=30,
        )
        statuses.append(response.status_code)

    def peak_growth(count: int) -> float:
        senders = [threading.Thread(target=send) for _ in range(count)]
        with PeakMemory(relay) as memory:
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join(30)
        return memory.grew_mb

    # What each more request waiting at once costs (one parse's passing memory is in both runs).
    few, many = peak_growth(5), peak_growth(15)
    assert statuses == [200] * 20
    each = (many - few) / 10
    assert each < 6, f"{each:.1f} MB for each more request waiting (before: about 14)"


# -- a translated reply (/v1/responses on a chat-only route): bounded as every other -----------------


def responses_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.split("\n") if line.startswith("data: ")]


def test_a_translated_stream_of_50_mib_of_text_is_cut_at_its_bound_not_kept(
    fake: FakeUpstream, one_worker: RelayServer
) -> None:
    # Was: the whole text kept and grown with +=, then repeated in four closing events: 10.9 s,
    # +434 MB, 258 MB out and a 51.5 MB event, against 0.27 s and +0 MB on /v1/chat/completions.
    piece = "x" * (128 * 1024)
    fake.replies["gpt-test"] = Reply(body=[*(sse(chunk(piece)) for _ in range(400)), sse("[DONE]")])
    started = time.monotonic()
    with PeakMemory(one_worker) as memory:
        response = httpx.post(
            one_worker.url + "/v1/responses",
            json={"model": "gpt-test", "input": "hi", "stream": True},
            timeout=60,
        )
    took = time.monotonic() - started
    events = responses_events(response.text)
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created"
    assert [event["type"] for event in events[-2:]] == ["error", "response.failed"]
    assert "larger than this relay translates" in events[-1]["response"]["error"]["message"]
    assert max(len(line) for line in response.text.split("\n")) <= 2 * 1024 * 1024  # MAX_EVENT_BYTES
    assert len(response.content) < 8 * 1024 * 1024, f"{len(response.content)} bytes out"
    assert memory.grew_mb < 60, f"the relay grew by {memory.grew_mb:.0f} MB"
    assert took < 10, f"{took:.1f} s"
    assert fake.wait_for(lambda: fake.requests[0].client_closed is not None)  # the upstream let go


def test_30000_tool_calls_in_a_translated_reply_stall_no_other_stream(
    fake: FakeUpstream, one_worker: RelayServer
) -> None:
    # Was: items.index() on every event held every other stream of the worker for 12.4 s.
    calls = [
        {"index": number, "id": f"call_{number}", "function": {"name": "f", "arguments": "{}"}}
        for number in range(30_000)
    ]
    batches = [calls[start : start + 1000] for start in range(0, len(calls), 1000)]
    fake.replies["gpt-calls"] = Reply(
        body=[
            *(sse({"choices": [{"index": 0, "delta": {"tool_calls": batch}}]}) for batch in batches),
            sse("[DONE]"),
        ]
    )
    fake.replies["gpt-paced"] = Reply(body=openai_stream([f" t{i}" for i in range(60)], pace=0.05))
    paced = WatchedStream(one_worker, "gpt-paced")
    time.sleep(0.5)
    response = httpx.post(
        one_worker.url + "/v1/responses",
        json={"model": "gpt-calls", "input": "hi", "stream": True},
        timeout=60,
    )
    paced.thread.join(30)
    gaps = paced.gaps
    events = responses_events(response.text)
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    assert events[-1]["type"] == "response.failed"
    assert "more than 1000 output items" in events[-1]["response"]["error"]["message"]
    assert max(gaps) < 1.0, f"a paced stream of the same worker waited {max(gaps):.2f} s"


def test_a_whole_answer_over_8_mib_in_small_pieces_is_refused(fake: FakeUpstream, v1: httpx.Client) -> None:
    # The bound holds for the answer's whole size, not for each piece of it (8 MiB, WHOLE_BODY_LIMIT).
    content = "x" * (9 * 1024 * 1024)
    body = json.dumps({"choices": [{"index": 0, "message": {"content": content}}]}).encode()
    pieces: list[Step] = [body[start : start + 64 * 1024] for start in range(0, len(body), 64 * 1024)]
    fake.replies["gpt-test"] = Reply(headers={"Content-Type": "application/json"}, body=pieces)
    response = v1.post("/chat/completions", json={"model": "gpt-test", "messages": USER}, timeout=30)
    assert response.status_code == 502
    assert "larger than the relay passes on (8192 KiB)" in response.json()["error"]["message"]
    just_under = json.dumps({"choices": [{"index": 0, "message": {"content": "x" * (7 * 1024 * 1024)}}]})
    fake.replies["gpt-test"] = Reply(headers={"Content-Type": "application/json"}, body=[just_under.encode()])
    assert (
        v1.post("/chat/completions", json={"model": "gpt-test", "messages": USER}, timeout=30).status_code
        == 200
    )


def test_an_embeddings_answer_is_cut_at_the_stream_cap(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, STREAM_MAX_SECONDS="2", UPSTREAM_RETRIES="0")
    fake.replies["emb-slow"] = Reply(
        headers={"Content-Type": "application/json"},
        body=[b'{"data": [', *[step for _ in range(100) for step in (Pause(0.1), b"0.1, ")], b"0]}"],
    )
    started = time.monotonic()
    response = httpx.post(
        relay.url + "/v1/embeddings",
        json={"model": "emb-slow", "input": "hi"},
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
        timeout=30,
    )
    assert time.monotonic() - started < 6  # not the answer's 10 s
    assert not response.content.endswith(b"0]}")  # cut short: the caller's JSON parser says so
    entry = relay.log_of(response.headers["X-Relay-Request-Id"])
    assert (entry["outcome"], entry["detail"]) == ("timeout", "answer reached STREAM_MAX_SECONDS")
    assert fake.wait_for(lambda: fake.requests[0].client_closed is not None)


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions", "/v1/messages"])
def test_an_error_body_trickled_after_the_client_left_is_let_go(
    fake: FakeUpstream, relay_factory: RelayFactory, path: str
) -> None:
    # Was: an error body was read for its 10 s (ERROR_BODY_SECONDS) whether the client was there or not.
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="0")
    fake.replies["gpt-test"] = Reply(
        status=400,
        headers={"Content-Type": "application/json"},
        body=[b"{", *[step for _ in range(200) for step in (Pause(0.1), b" ")]],
    )
    data = json.dumps({"model": "gpt-test", "messages": USER}).encode()
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
        sock.sendall(
            b"POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (path.encode(), ACCESS_TOKEN.encode(), len(data), data)
        )
        time.sleep(0.5)  # the upstream has begun its error body
    left = time.monotonic()
    assert fake.wait_for(lambda: fake.requests[0].client_closed is not None, timeout=5)
    assert fake.requests[0].client_closed - left < 2  # type: ignore[operator]  # not ERROR_BODY_SECONDS


def test_the_callers_own_key_pays_for_embeddings_too(fake: FakeUpstream, relay: RelayServer) -> None:
    # Without ACCESS_TOKENS and with ALLOW_CLIENT_KEYS (the defaults), a caller's bearer is its key.
    fake.replies["emb"] = Reply(headers={"Content-Type": "application/json"}, body=[b'{"data": []}'])
    response = httpx.post(
        relay.url + "/v1/embeddings",
        json={"model": "emb", "input": "hi"},
        headers={"Authorization": "Bearer sk-client-own-key-0123456789abcdef"},
    )
    assert response.status_code == 200
    assert fake.requests[0].headers["authorization"] == "Bearer sk-client-own-key-0123456789abcdef"


# -- the Responses API's other paths, and what agents offer ------------------------------------------


def leave_after(port: int, request: bytes, after: float) -> float:
    """Send a request on a raw socket, close the connection `after` seconds later; return when."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        time.sleep(after)
    return time.monotonic()


@pytest.mark.parametrize(
    ("request_line", "body", "status"),
    [
        pytest.param(
            b"POST /v1/responses/compact", b'{"model": "gpt-test", "input": "x"}', 200, id="compaction"
        ),
        pytest.param(b"GET /v1/responses/resp_1", b"", 200, id="stored"),
        pytest.param(b"GET /v1/responses/resp_1/input_items", b"", 400, id="stored-refused"),
    ],
)
def test_a_whole_answer_or_error_trickled_after_the_client_left_is_let_go_on_the_responses_paths(
    fake: FakeUpstream, relay_factory: RelayFactory, request_line: bytes, body: bytes, status: int
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, OPENAI_RESPONSES_API="true", UPSTREAM_RETRIES="0")
    fake.replies["*"] = Reply(
        status=status,
        headers={"Content-Type": "application/json"},
        body=[b"{", *[step for _ in range(200) for step in (Pause(0.1), b" ")]],
    )
    head = (
        request_line + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ACCESS_TOKEN.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    left = leave_after(relay.port, head + body, after=0.5)  # the upstream has begun its answer
    assert fake.wait_for(
        lambda: bool(fake.requests) and fake.requests[0].client_closed is not None, timeout=5
    )
    assert fake.requests[0].client_closed - left < 2  # type: ignore[operator]  # not the answer's 20 s


def test_a_stored_responses_id_and_query_are_bounded_before_they_reach_a_url(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, OPENAI_RESPONSES_API="true")
    headers = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
    for path in (
        "/v1/responses/" + "r" * 257,
        "/v1/responses/resp_1?" + "a=1&" * 300,
        "/v1/responses/%2e%2e",
    ):
        refused = httpx.get(relay.url + path, headers=headers)
        assert refused.status_code == 400, path
    longest = httpx.get(
        relay.url + "/v1/responses/" + "r" * 3900, headers=headers
    )  # near the request line's 4094
    assert longest.status_code == 400
    assert fake.requests == []


def test_what_a_request_offers_is_bounded_in_what_the_relay_makes_of_it(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    """Hundreds of tools of other types, namespaces with names far over any limit: the made names fit,
    and the log line names a few of the tools left out, each cut."""
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN)
    fake.replies["gpt-test"] = Reply(body=openai_stream(["ok"]))
    hosted = [{"type": f"hosted_{number}_" + "x" * 500} for number in range(400)]
    namespaces = [
        {
            "type": "namespace",
            "name": "n" * 2000 + str(number),
            "tools": [{"type": "function", "name": "f" * 2000}],
        }
        for number in range(200)
    ]
    response = client.post(
        relay.url + "/v1/responses",
        json={"model": "gpt-test", "input": "Hi", "tools": [*hosted, *namespaces]},
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
    )
    assert response.status_code == 200
    names = [tool["function"]["name"] for tool in fake.requests[0].json["tools"]]
    assert len(set(names)) == 200 and max(map(len, names)) == 64
    entry = relay.log_of(response.headers["X-Relay-Request-Id"])
    assert len(entry["omitted_tools"].split(",")) == 8
    assert len(entry["omitted_tools"]) <= 512
