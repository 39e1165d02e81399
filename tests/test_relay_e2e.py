"""End to end: the real functions-framework server, relaying the fake upstream's streams."""

from __future__ import annotations

import itertools
import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.chat_client import USER, chat
from tests.conftest import CLIENT_KEY, SERVER_KEY, RelayFactory
from tests.fake_upstream import (
    PACKET,
    Close,
    FakeUpstream,
    Pause,
    Reply,
    Reset,
    Stall,
    chunk,
    error_reply,
    openai_stream,
    sse,
)
from tests.relay_server import RelayServer


def stream_of(*steps: bytes | Pause | Reset | Close | Stall, **options: object) -> Reply:
    return Reply(body=list(steps), **options)  # type: ignore[arg-type]


# -- the ordinary path --------------------------------------------------------------------------


def test_streams_the_original_wire_format(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client
) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["Hel", "lo", " world"]))
    reply = chat(client, relay.url)

    assert reply.status == 200
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert reply.headers["cache-control"] == "no-cache"
    assert reply.headers["x-accel-buffering"] == "no"
    assert reply.body == PACKET + b"Hello world"
    assert reply.reads[0][1] == PACKET  # the 2023 client parses its first read as JSON


def test_upstream_receives_the_validated_request(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client
) -> None:
    chat(client, relay.url, temperature=1, max_tokens=5, top_p=0.5, stop="END", extra="dropped")
    (request,) = fake.requests
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {SERVER_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.json == {
        "model": "gpt-test",
        "messages": USER,
        "temperature": 1,
        "max_tokens": 5,
        "top_p": 0.5,
        "stop": "END",
        "stream": True,
        "n": 1,
    }
    assert "openai-organization" not in request.headers
    assert "openai-project" not in request.headers


def test_root_path_is_the_same_endpoint(fake: FakeUpstream, relay: RelayServer, client: httpx.Client) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["root"]))
    assert chat(client, relay.url, path="/").body == PACKET + b"root"


def test_organization_and_project_headers(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    relay = relay_factory(OPENAI_ORG_ID="org-123", OPENAI_PROJECT_ID="proj_456")
    chat(client, relay.url)
    (request,) = fake.requests
    assert request.headers["openai-organization"] == "org-123"
    assert request.headers["openai-project"] == "proj_456"


def test_client_key_is_used_when_sent(fake: FakeUpstream, relay: RelayServer, client: httpx.Client) -> None:
    chat(client, relay.url, apiKey=CLIENT_KEY)
    assert fake.requests[0].headers["authorization"] == f"Bearer {CLIENT_KEY}"


def test_no_key_anywhere_is_the_original_400(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    relay = relay_factory(OPENAI_API_KEY=None)
    reply = chat(client, relay.url, apiKey="")
    assert reply.status == 400
    assert reply.text == (
        "Error: missing OpenAI API Key. Add it on the client side (Settings icon) "
        "or server side (your deployment)."
    )
    assert fake.requests == []
    warnings = [entry for entry in relay.log_entries() if entry["severity"] == "WARNING"]
    assert any("OPENAI_API_KEY has not been provided" in entry["message"] for entry in warnings)


TOKENS = ["one", " two", " three", " four"]


def test_text_arrives_token_by_token(fake: FakeUpstream, relay: RelayServer, client: httpx.Client) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(TOKENS, pace=0.2))
    reply = chat(client, relay.url)
    assert reply.body == PACKET + b"one two three four"
    text_reads = [(at, data) for at, data in reply.reads if data != PACKET]
    # Each token goes out when it comes; its last characters may wait for the next one, while
    # they could begin a run of the key (at most 7: docs/design.md, "Redaction").
    for token, (_, data) in zip(TOKENS, text_reads, strict=False):
        assert token[0].encode() in data
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(text_reads[:4])]
    assert all(gap > 0.1 for gap in gaps), gaps  # each token was sent when it came, not batched


def test_with_a_placeholder_key_text_arrives_exactly_as_the_upstream_split_it(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    relay = relay_factory(OPENAI_API_KEY="ollama")
    fake.replies["gpt-test"] = Reply(body=openai_stream(TOKENS, pace=0.2))
    reply = chat(client, relay.url)
    assert [data for _, data in reply.reads if data != PACKET] == [token.encode() for token in TOKENS]


# -- every stream an upstream can send ----------------------------------------------------------

# Line and paragraph separators inside JSON strings are not line ends for SSE.
SEPARATORS = "one\u2028two\u2029three\u0085four"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param(
            Reply(body=openai_stream(["a", "é", "😀"]), one_byte_writes=True),
            PACKET + "aé😀".encode(),
            id="one-byte-reads",
        ),
        pytest.param(
            Reply(body=openai_stream([SEPARATORS, " 😀"])),
            PACKET + (SEPARATORS + " 😀").encode(),
            id="unicode-separators-in-content",
        ),
        pytest.param(
            stream_of(b"".join(s for s in openai_stream(["cr", "lf"]) if isinstance(s, bytes)).replace(b"\n", b"\r")),
            PACKET + b"crlf",
            id="cr-line-ends",
        ),
        pytest.param(
            stream_of(b"".join(s for s in openai_stream(["cr", "lf"]) if isinstance(s, bytes)).replace(b"\n", b"\r\n")),
            PACKET + b"crlf",
            id="crlf-line-ends",
        ),
        pytest.param(
            stream_of(b": OPENROUTER PROCESSING\n\n", *openai_stream(["x"])[:2], b": ping\n\n", sse("[DONE]")),
            PACKET + b"x",
            id="comments",
        ),
        pytest.param(
            stream_of(sse(chunk("a")), sse("[DONE]"), sse(chunk("after done"))),
            PACKET + b"a",
            id="done-ends-it",
        ),
        pytest.param(
            stream_of(sse(chunk("partial")), sse({"error": {"message": "The server had an error", "type": "server_error"}})),
            PACKET + b"partial\n\n[Error: The server had an error]",
            id="in-stream-error",
        ),
        pytest.param(
            Reply(
                headers={"Content-Type": "application/json"},
                body=[json.dumps({"model": "gpt-whole", "choices": [{"message": {"content": "whole"}}]}).encode()],
            ),
            b'{"model":"gpt-whole"}whole',
            id="non-streamed-json-answer",
        ),
        pytest.param(
            Reply(headers={}, body=openai_stream(["no", " type"])),
            PACKET + b"no type",
            id="no-content-type",
        ),
        pytest.param(
            Reply(body=openai_stream(["closed", " framing"]), chunked=False),
            PACKET + b"closed framing",
            id="connection-close-framing",
        ),
    ],
)  # fmt: skip
def test_stream_cases(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client, reply: Reply, expected: bytes
) -> None:
    fake.replies["gpt-test"] = reply
    result = chat(client, relay.url)
    assert result.status == 200
    assert result.body == expected
    for _, data in result.reads:
        data.decode("utf-8")  # every read is whole characters


def test_malformed_line_is_logged_without_its_text(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client
) -> None:
    fake.replies["gpt-test"] = stream_of(sse(chunk("a")), b"data: {secret words\n\n", sse("[DONE]"))
    entry = relay.log_of(chat(client, relay.url).request_id)
    assert entry["outcome"] == "ok"
    assert entry["skipped"] == 1
    skipped = [e for e in relay.log_entries() if "not a JSON object" in e["message"]]
    assert skipped and all("secret words" not in json.dumps(e) for e in relay.log_entries())


# -- upstream failures after the stream began ---------------------------------------------------


# -- upstream failures before the stream began --------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "status", "text"),
    [
        pytest.param(
            error_reply(
                429, b'{"error": {"message": "Rate limit reached", "type": "requests", "code": null}}'
            ),
            429,
            'OpenAI API error: 429 Too Many Requests {"error":{"message":"Rate limit reached","type":"requests","code":null}}',
            id="429-json",
        ),
        pytest.param(
            error_reply(500, b"<html><body>Internal error</body></html>", "text/html"),
            500,
            "OpenAI API error: 500 Internal Server Error {}",
            id="500-html",
        ),
        pytest.param(
            error_reply(503, b""), 503, "OpenAI API error: 503 Service Unavailable {}", id="503-empty"
        ),
        pytest.param(
            error_reply(400, b'{"error": {"message": "bad"}}', reason=""),
            400,
            'OpenAI API error: 400 Bad Request {"error":{"message":"bad"}}',
            id="no-reason-phrase",
        ),
        pytest.param(
            error_reply(404, b'{"error": {"message": "The model `x` does not exist"}}', reason="Not Found"),
            404,
            'OpenAI API error: 404 Not Found {"error":{"message":"The model `x` does not exist"}}',
            id="404-model",
        ),
        pytest.param(
            Reply(status=302, headers={"Location": "https://elsewhere/"}, body=[]),
            502,
            "OpenAI API error: 302 Found {} (unexpected status from the upstream; check OPENAI_BASE_URL)",
            id="redirect",
        ),
        pytest.param(
            Reply(headers={"Content-Type": "text/html"}, body=[b"<html>login</html>"]),
            502,
            "answered 200 with text/html, not an event stream; check its base URL.",
            id="200-html",
        ),
    ],
)
def test_upstream_error_status_is_relayed_with_the_original_text(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client, reply: Reply, status: int, text: str
) -> None:
    fake.replies["gpt-test"] = reply
    result = chat(client, relay.url)
    assert result.status == status
    assert result.headers["content-type"] == "text/plain; charset=utf-8"
    assert text in result.text


def test_masked_key_in_an_upstream_401_is_redacted(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client
) -> None:
    masked = SERVER_KEY[:6] + "*" * 12 + SERVER_KEY[-4:]
    message = (
        f"Incorrect API key provided: {masked}. You can find your API key at https://platform.openai.com."
    )
    fake.replies["gpt-test"] = error_reply(401, json.dumps({"error": {"message": message}}).encode())
    result = chat(client, relay.url)
    assert result.status == 401
    assert result.text.startswith("OpenAI API error: 401 Unauthorized ")
    assert "Incorrect API key provided: [redacted]." in result.text
    assert SERVER_KEY[-4:] not in result.text


def test_upstream_silent_before_answering_is_504(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    relay = relay_factory(UPSTREAM_FIRST_BYTE_TIMEOUT="1")
    fake.replies["gpt-test"] = Reply(body=openai_stream(["late"]), delay_headers=3)
    result = chat(client, relay.url)
    assert result.status == 504
    assert result.text == (
        f"OpenAI API error: 127.0.0.1:{fake.port} did not answer within 1 s (UPSTREAM_FIRST_BYTE_TIMEOUT)."
    )


def test_upstream_dns_failure_is_502(relay_factory: RelayFactory, client: httpx.Client) -> None:
    relay = relay_factory(OPENAI_BASE_URL="http://no-such-host.invalid/v1")
    result = chat(client, relay.url)
    assert result.status == 502
    assert result.text.startswith("OpenAI API error: could not connect to no-such-host.invalid: ")


# -- bad requests never reach the upstream ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow", "use"),
    [
        *[(method, "/api/chat", "POST, OPTIONS", "POST") for method in ("GET", "PUT", "DELETE", "PATCH")],
        # "/" also serves the chat page (SERVE_PAGE): GET is taken there.
        *[(method, "/", "GET, HEAD, POST, OPTIONS", "GET or POST") for method in ("PUT", "DELETE", "PATCH")],
    ],
)
def test_other_methods_are_405_with_allow(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client, method: str, path: str, allow: str, use: str
) -> None:
    response = client.request(method, relay.url + path, content=b"{}")
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert f"Method {method} is not allowed on {path}; use {use}." == response.text
    assert fake.requests == []


def test_unknown_path_is_404(relay: RelayServer, client: httpx.Client) -> None:
    response = client.post(relay.url + "/v2/whatever", content=b"{}")
    assert response.status_code == 404
    assert "POST /api/chat" in response.text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"", "The request body is empty", id="empty"),
        pytest.param(b"{oops", "The request body is not valid JSON", id="invalid-json"),
        pytest.param(
            b'{"model": "m", "messages": [], "temperature": 9}', '"messages" must be', id="bad-field"
        ),
    ],
)
def test_bad_input_is_400_with_a_message(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client, content: bytes, message: str
) -> None:
    response = client.post(relay.url + "/api/chat", content=content)
    assert response.status_code == 400
    assert message in response.text
    assert fake.requests == []


def test_body_over_the_limit_is_413(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    relay = relay_factory(MAX_BODY_BYTES="1000")
    big = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 2000}]}).encode()
    response = client.post(relay.url + "/api/chat", content=big)
    assert response.status_code == 413
    assert "the limit is 1000 bytes (MAX_BODY_BYTES)" in response.text

    def chunked() -> Iterator[bytes]:
        yield big[:500]
        yield big[500:]

    response = client.post(relay.url + "/api/chat", content=chunked())  # no Content-Length
    assert response.status_code == 413
    assert fake.requests == []
    assert client.post(relay.url + "/api/chat", content=b"{}").status_code == 400  # still serving


def test_huge_declared_body_is_refused_without_reading_it(relay_factory: RelayFactory) -> None:
    relay = relay_factory(MAX_BODY_BYTES="1000")
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
        sock.sendall(b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n{")
        answer = b""
        while b"MAX_BODY_BYTES" not in answer and (data := sock.recv(65536)):
            answer += data
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"the limit is 1000 bytes (MAX_BODY_BYTES)" in answer


# -- secrets ------------------------------------------------------------------------------------


def test_keys_never_appear_in_logs(fake: FakeUpstream, relay: RelayServer, client: httpx.Client) -> None:
    chat(client, relay.url)
    chat(client, relay.url, apiKey=CLIENT_KEY)
    fake.replies["gpt-test"] = error_reply(
        401, json.dumps({"error": {"message": f"bad key {CLIENT_KEY}"}}).encode()
    )
    result = chat(client, relay.url, apiKey=CLIENT_KEY)
    assert CLIENT_KEY not in result.text
    relay.log_of(result.request_id)
    output = relay.output()
    assert SERVER_KEY not in output and CLIENT_KEY not in output


def test_upstream_connection_is_reused_across_requests(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    relay = relay_factory(OPENAI_ORG_ID="org-keepalive")  # a server of its own: a pool no other test used
    fake.replies["gpt-test"] = Reply(body=openai_stream(["same", " connection"]))
    for _ in range(3):
        assert chat(client, relay.url).body == PACKET + b"same connection"
    assert len(fake.requests) == 3
    assert len(fake.connections_of(fake.requests)) == 1


def test_an_upstream_cookie_is_never_sent_with_a_later_request(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    # OpenAI sets Cloudflare cookies; a shared cookie jar would hand one user's to everyone.
    relay = relay_factory(OPENAI_ORG_ID="org-cookies")
    fake.replies["gpt-test"] = Reply(
        headers={"Content-Type": "text/event-stream", "Set-Cookie": "__cf_bm=user-one; Path=/; HttpOnly"},
        body=openai_stream(["a"]),
    )
    chat(client, relay.url)
    chat(client, relay.url)
    assert [request.headers.get("cookie") for request in fake.requests] == [None, None]
