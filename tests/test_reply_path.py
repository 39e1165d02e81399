"""One reply path: every answer of every endpoint is made by the one Writer (relay/serving/writer.py).

Structurally, only the writer makes a response. In behaviour, an upstream that echoes what it
was sent (the route's key, its secret header, both in base64, OpenAI's masked key) on every
endpoint and in every kind of answer (a stream, a whole answer, a stream made from a whole
answer, an error, a body passed on as it arrives, the model list) never gets any of it to the
caller, and every request has one log line that counts the bytes the caller got.
"""

from __future__ import annotations

import ast
import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RelayFactory
from tests.fake_replies import anthropic_events, anthropic_message, anthropic_sse, named_sse
from tests.fake_upstream import FakeUpstream, RecordedRequest, Reply, Step, chunk, sse
from tests.relay_server import ROOT, RelayServer

ECHO_KEY = "sk-echo-SECRET-1b3d5f7a9c2e4g6i8k"
ROUTE_SECRET = "hdr-SECRET-4c6e8a0b2d4f6a8c0e"
PUBLIC_HEADER = "reply path test"


def forms(secret: str) -> list[bytes]:
    """The secret, and what an upstream could echo of it: base64 at three alignments, both alphabets."""
    found = [secret.encode()]
    for skip in range(3):
        encoded = base64.b64encode(b"\0" * skip + secret.encode() + b"\0\0")
        middle = encoded[4 : 4 + len(secret) - 4]  # well inside what the secret's bytes alone make
        found += [middle, middle.replace(b"+", b"-").replace(b"/", b"_")]
    return found


def leaked(data: bytes) -> list[bytes]:
    """Any 8 characters in a row of a secret's part after its prefix, or of its base64 forms."""
    found = []
    for secret in (ECHO_KEY, ROUTE_SECRET):
        for form in forms(secret.split("-", 1)[1]) + forms(secret)[1:]:
            found += [form[i : i + 8] for i in range(len(form) - 7) if form[i : i + 8] in data]
    return found


def echo_text(request: RecordedRequest) -> str:
    """Everything the upstream was sent that it should keep to itself, as an upstream could echo it."""
    bearer = request.headers.get("authorization", "")
    # An Anthropic route's key comes in x-api-key, its secret header in X-Route-Token.
    anthropic = "/messages" in request.path
    key = request.headers.get("x-api-key", "") if anthropic else bearer.removeprefix("Bearer ")
    route_header = request.headers.get("x-route-token" if anthropic else "x-api-key", "")
    return (
        f"auth {bearer} | key {key} | header {route_header} | title {request.headers.get('x-title')} | "
        f"b64 {base64.b64encode(bearer.encode()).decode()} | b64url {base64.urlsafe_b64encode(b'x' + key.encode()).decode()} "
        f"| masked {key[:8]}****{key[-4:]}"
    )


def echoing(request: RecordedRequest) -> Reply:
    """The fake's answer to any request: the secrets it got, in the kind of answer that was asked."""
    text = echo_text(request)
    echoed = {"x-request-id": request.headers.get("authorization", ""), "Retry-After": "1"}
    wanted = json.loads(request.body) if request.body else {}
    model = wanted.get("model", "")
    if model.endswith("refuse"):
        refusal = json.dumps({"error": {"message": f"Incorrect API key provided: {text}", "type": "x"}})
        return Reply(
            status=401, headers={"Content-Type": "application/json", **echoed}, body=[refusal.encode()]
        )
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": text, "arguments": text}}
    if "/messages" in request.path:
        return anthropic_echo(request, wanted, text, echoed)
    if request.path.endswith("/embeddings"):
        embedded = json.dumps({"object": "list", "data": [{"embedding": [0.1], "index": 0}], "model": text})
        return Reply(headers={"Content-Type": "application/json", **echoed}, body=[embedded.encode()])
    if "/responses" in request.path:  # a reply, a compaction, a stored response (streamed: ?stream=true)
        item = {"type": "message", "id": "m", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": text}]}  # fmt: skip
        response = {"id": "r", "object": "response", "status": "completed", "output": [item], "model": text}
        if not (wanted.get("stream") or request.path.endswith("stream=true")):
            return Reply(
                headers={"Content-Type": "application/json", **echoed}, body=[json.dumps(response).encode()]
            )
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": {**response, "status": "in_progress", "output": []}},
            {"type": "response.output_text.delta", "item_id": "m", "output_index": 0, "delta": text},
            {"type": "response.completed", "response": response},
        ]
        return Reply(headers={"Content-Type": "text/event-stream", **echoed},
                     body=[named_sse(event, number) for number, event in enumerate(events)])  # fmt: skip
    if wanted.get("stream") and not model.endswith("whole"):
        chunks: list[dict[str, Any]] = [
            chunk(text, role="assistant"),
            {**chunk(None), "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]},
        ]
        body: list[Step] = [*(sse(value) for value in chunks), sse(chunk(finish="stop")), sse("[DONE]")]
        return Reply(headers={"Content-Type": "text/event-stream", **echoed}, body=body)
    completion = {"id": "c", "object": "chat.completion", "model": text,
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "tool_calls": [call]},
                               "finish_reason": "tool_calls"}]}  # fmt: skip
    return Reply(
        headers={"Content-Type": "application/json", **echoed}, body=[json.dumps(completion).encode()]
    )


def anthropic_echo(
    request: RecordedRequest, wanted: dict[str, Any], text: str, echoed: dict[str, str]
) -> Reply:
    """Anthropic's answers, each echoing what the upstream was sent: a count, a stream, a whole Message."""
    json_headers = {"Content-Type": "application/json", **echoed, "request-id": echoed["x-request-id"]}
    if request.path.startswith("/v1/messages/count_tokens"):
        return Reply(headers=json_headers, body=[json.dumps({"input_tokens": 3, "echo": text}).encode()])
    if wanted.get("stream"):
        events = anthropic_events([text], thinking=text, tool=(text, [json.dumps({"q": text})]))
        return Reply(
            headers={"Content-Type": "text/event-stream", **echoed}, body=[anthropic_sse(e) for e in events]
        )
    return Reply(
        headers=json_headers, body=[json.dumps(anthropic_message(text, tool=(text, {"q": text}))).encode()]
    )


@pytest.fixture
def echo_relay(fake: FakeUpstream, relay_factory: RelayFactory) -> RelayServer:
    headers = {"X-Api-Key": ROUTE_SECRET, "X-Title": PUBLIC_HEADER}
    routes = [
        {"prefix": "echo/", "base_url": fake.base_url, "key_env": "ECHO_KEY", "headers": headers},
        {
            "prefix": "echor/",
            "base_url": fake.base_url,
            "key_env": "ECHO_KEY",
            "headers": headers,
            "responses": True,
        },
        {
            "prefix": "echoa/",
            "base_url": fake.origin,
            "key_env": "ECHO_KEY",
            "headers": {"X-Route-Token": ROUTE_SECRET, "X-Title": PUBLIC_HEADER},
            "api": "anthropic",
        },
    ]
    fake.replies["*"] = echoing
    fake.replies["/models"] = lambda request: Reply(
        headers={"Content-Type": "application/json"},
        chunked=False,
        body=[
            json.dumps(
                {
                    "object": "list",
                    "data": [
                        {"id": echo_text(request), "object": "model"},
                        {
                            "id": "x",
                            "object": "model",
                            "owned_by": echo_text(request),
                        },  # GET /v1/models/echo/x finds it
                    ],
                }
            ).encode()
        ],
    )
    return relay_factory(UPSTREAMS=json.dumps(routes), ECHO_KEY=ECHO_KEY)


CHAT = [{"role": "user", "content": "hi"}]
# (what is asked, the body): each endpoint, each kind of answer. No body: a GET.
ASKED: list[tuple[str, str, dict[str, Any] | None]] = [
    ("original stream", "/api/chat", {"model": "echo/m", "messages": CHAT}),
    ("original made from a whole answer", "/api/chat", {"model": "echo/whole", "messages": CHAT}),
    ("original refused", "/api/chat", {"model": "echo/refuse", "messages": CHAT}),
    ("chat stream", "/v1/chat/completions", {"model": "echo/m", "messages": CHAT, "stream": True}),
    (
        "chat stream from a whole answer",
        "/v1/chat/completions",
        {"model": "echo/whole", "messages": CHAT, "stream": True},
    ),
    ("chat whole", "/v1/chat/completions", {"model": "echo/m", "messages": CHAT}),
    ("chat refused", "/v1/chat/completions", {"model": "echo/refuse", "messages": CHAT}),
    ("translated stream", "/v1/responses", {"model": "echo/m", "input": "hi", "stream": True}),
    (
        "translated from a whole answer",
        "/v1/responses",
        {"model": "echo/whole", "input": "hi", "stream": True},
    ),
    ("translated whole", "/v1/responses", {"model": "echo/m", "input": "hi"}),
    ("translated refused", "/v1/responses", {"model": "echo/refuse", "input": "hi"}),
    ("responses stream", "/v1/responses", {"model": "echor/m", "input": "hi", "stream": True}),
    ("responses whole", "/v1/responses", {"model": "echor/m", "input": "hi"}),
    ("embeddings", "/v1/embeddings", {"model": "echo/m", "input": "hi"}),
    ("embeddings refused", "/v1/embeddings", {"model": "echo/refuse", "input": "hi"}),
    ("anthropic stream", "/v1/messages", {"model": "echoa/m", "messages": CHAT, "stream": True}),
    ("anthropic whole", "/v1/messages", {"model": "echoa/m", "messages": CHAT, "max_tokens": 5}),
    ("anthropic refused", "/v1/messages", {"model": "echoa/refuse", "messages": CHAT}),
    ("anthropic tokens counted", "/v1/messages/count_tokens", {"model": "echoa/m", "messages": CHAT}),
    ("model list", "/v1/models", None),
    ("one model", "/v1/models/echo/x", None),
    ("compaction", "/v1/responses/compact", {"model": "echor/m", "input": "hi"}),
    ("compaction refused", "/v1/responses/compact", {"model": "echor/refuse", "input": "hi"}),
    # A stored response's paths go to the one route that speaks the Responses API (echor/).
    ("stored response", "/v1/responses/resp_1", None),
    ("stored response streamed", "/v1/responses/resp_1?stream=true", None),
    ("stored response's input items", "/v1/responses/resp_1/input_items?limit=2", None),
    ("stored response cancelled", "/v1/responses/resp_1/cancel", {}),
    ("stored response deleted", "DELETE /v1/responses/resp_1", None),
]


@pytest.mark.parametrize(("what", "path", "body"), ASKED, ids=[what for what, _, _ in ASKED])
def test_no_answer_carries_what_the_upstream_was_sent_and_each_has_its_log_line(
    echo_relay: RelayServer, client: httpx.Client, what: str, path: str, body: dict[str, Any] | None
) -> None:
    if path.startswith("DELETE "):
        response = client.delete(echo_relay.url + path.removeprefix("DELETE "))
    elif body is None:
        response = client.get(echo_relay.url + path)
    else:
        response = client.post(echo_relay.url + path, json=body)
    received = response.content + repr(response.headers.raw).encode()
    assert leaked(received) == [], what
    assert ROUTE_SECRET.encode() not in received and ECHO_KEY.encode() not in received
    if "refused" not in what:
        assert response.status_code == 200, what
        assert PUBLIC_HEADER.encode() in response.content, "a header that is no secret is left as it was"
    entry = echo_relay.log_of(response.headers["X-Relay-Request-Id"])
    assert entry["bytes"] == len(response.content)
    assert entry["httpRequest"]["status"] == response.status_code


def test_only_the_writer_makes_a_response() -> None:
    """No module of the relay but the writer builds a flask.Response: every answer goes through it."""
    makers = []
    for path in sorted((ROOT / "relay").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
                if name in ("Response", "make_response", "Written"):
                    makers.append((str(path.relative_to(ROOT)), name))
    assert set(makers) == {("relay/serving/writer.py", "Response"), ("relay/serving/writer.py", "Written")}


def every_endpoint_module() -> list[Path]:
    return sorted((ROOT / "relay" / "endpoints").glob("*.py"))


@pytest.mark.parametrize("module", every_endpoint_module(), ids=lambda path: path.name)
def test_no_endpoint_writes_to_the_client_itself(module: Path) -> None:
    """An endpoint imports nothing that writes: no flask response, no socket, no stream of its own."""
    source = module.read_text()
    for forbidden in ("flask.Response", "fixed_response", "stream_response", "WrittenBody", ".write("):
        assert forbidden not in source, f"{module.name} uses {forbidden}"
