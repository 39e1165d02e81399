"""Fuzzing the real server: any method, path, headers and body. Never a 5xx, never a hang;
every refusal a 4xx with a message, and nothing reaches the upstream for a refused request."""

from __future__ import annotations

import json
import string
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ACCESS_TOKEN, RecordingTransport, RelayFactory, assert_no_secret
from tests.fake_upstream import FakeUpstream, RecordedRequest, Reply, openai_stream
from tests.relay_server import RelayServer

APP = "https://app.example"

# What a client can put in a header: printable ASCII, no surrounding whitespace.
header_text = st.text(alphabet=string.printable.strip("\r\n\x0b\x0c"), max_size=40).map(str.strip)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.integers().map(lambda n: n * 10**400)  # beyond any float
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)

messages = st.one_of(
    st.just([{"role": "user", "content": "hi"}]),
    st.lists(
        st.fixed_dictionaries(
            {
                "role": st.sampled_from(["user", "system", "assistant", "", 3]),
                "content": json_values | st.text(max_size=20),
            }
        ),
        max_size=3,
    ),
    json_values,
)
chat_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["gpt-4o", "gpt-x", "claude", ""]) | json_values,
        "messages": messages,
        "temperature": json_values | st.floats(-1, 3),
        "max_tokens": json_values | st.integers(-5, 5000),
        "top_p": json_values,
        "frequency_penalty": json_values,
        "presence_penalty": json_values,
        "stop": json_values,
        "apiKey": st.sampled_from(["", "sk-fuzz-client", "sk-cl\u00e9nt", "sk-a\nb", "sk a"])
        | json_values
        | st.text(max_size=12),
    },
)


def nested(depth: int, escape: bool) -> bytes:
    """A chat body whose content part nests `depth` lists deep, with or without a \\u escape."""
    inner = b"[" * depth + b"]" * depth
    model = b"\\u00e9" if escape else b"m"
    return b'{"model":"' + model + b'","messages":[{"role":"user","content":[' + inner + b"]}]}"


bodies = st.one_of(
    chat_bodies.map(lambda body: json.dumps(body).encode()),
    st.builds(nested, st.integers(1, 3000), st.booleans()),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=200),
    st.just(b"x" * 5000),  # over MAX_BODY_BYTES
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Origin": st.sampled_from([APP, "https://evil.example", "null"]) | header_text,
        "Authorization": st.sampled_from([f"Bearer {ACCESS_TOKEN}", "Bearer nope", "Basic x"]) | header_text,
        "x-api-key": st.sampled_from([ACCESS_TOKEN, "nope", "sk-fuzz-client"]) | header_text,  # Anthropic's
        "anthropic-version": st.sampled_from(["2023-06-01", ""]) | header_text,
        "anthropic-beta": header_text,
        "Content-Type": st.sampled_from(["application/json", "text/plain", "multipart/form-data"])
        | header_text,
        "Access-Control-Request-Headers": header_text,
        "X-Cloud-Trace-Context": header_text,
        "traceparent": header_text,
    },
)
methods = st.sampled_from(
    ["POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "PROPFIND"]
)
paths = st.sampled_from(
    [
        "/",
        "/api/chat",
        "/api/chat/",
        "/chat.js",
        "/v1/chat/completions",
        "/v1/models",
        "/favicon.ico",
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/messages?beta=true",
    ]
)  # fmt: skip | st.text(alphabet=string.ascii_letters + string.digits + "/-_.%", max_size=20).map(lambda path: "/" + path)


def answer_as_asked(request: RecordedRequest) -> Reply:
    """A stream when the caller asked for one (as OpenAI does), else a whole JSON completion."""
    try:
        streamed = json.loads(request.body).get("stream") is True
    except (ValueError, AttributeError):
        streamed = False
    if streamed:
        return Reply(body=openai_stream(["ok"]))
    body = {
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"content": "ok"}}],
    }
    return Reply(headers={"Content-Type": "application/json"}, body=[json.dumps(body).encode()])


@pytest.fixture(scope="module", params=["guarded", "open"])
def target(request: pytest.FixtureRequest, relay_factory: RelayFactory) -> RelayServer:
    if request.param == "open":  # any origin, no tokens, client keys allowed: the defaults
        return relay_factory(MAX_BODY_BYTES="4096")
    return relay_factory(
        ACCESS_TOKENS=ACCESS_TOKEN,
        ALLOWED_ORIGINS=APP,
        ALLOWED_MODELS="gpt-*",
        MAX_TOKENS_LIMIT="1000",
        MAX_BODY_BYTES="4096",
    )


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=methods, path=paths, headers=headers, body=bodies)
def test_fuzz(
    fake: FakeUpstream, target: RelayServer, method: str, path: str, headers: dict[str, str], body: bytes
) -> None:
    fake.replies["*"] = answer_as_asked
    upstream_before = len(fake.requests)
    transport = RecordingTransport()
    with httpx.Client(transport=transport, timeout=10) as http:  # a hang fails the example
        response = http.request(method, target.url + path, headers=headers, content=body)
    assert_no_secret(b"".join(transport.seen), "a response")
    reached_upstream = len(fake.requests) - upstream_before
    note: dict[str, Any] = {"status": response.status_code, "text": response.text[:200]}

    assert response.status_code < 500, note
    openai_path = path.startswith("/v1/")
    if response.status_code >= 400:
        assert reached_upstream == 0, note
        if method != "HEAD":
            if openai_path and response.headers["content-type"] == "application/json":
                message = response.json()["error"]["message"]  # OpenAI's error shape, or Anthropic's
            else:
                assert response.headers["content-type"] == "text/plain; charset=utf-8", note
                message = response.text
            assert len(message.split()) >= 4, note  # a sentence, not a bare status
    elif method == "POST":
        assert response.status_code == 200, note
        assert reached_upstream == 1, note
        assert b"ok" in response.content, note
    elif (method, path) == ("GET", "/v1/models"):
        assert response.json()["object"] == "list", note
        assert reached_upstream >= 1, note
    elif method in ("GET", "HEAD"):
        # One of the page's files ("//" is "/" to the server).
        assert response.status_code == 200, note
        assert response.headers["content-type"].split(";")[0] in (
            "text/html",
            "text/javascript",
            "text/css",
        ), note
        assert reached_upstream == 0, note
    else:
        assert (method, response.status_code) == ("OPTIONS", 204), note
