# The SDK types a stream's events and a response's output items as unions the tests narrow at run
# time by their `type`, as the SDK's users do:
# mypy: disable-error-code="union-attr"
"""What coding agents ask of /v1/responses, through the real server, with the official `openai` package.

Codex offers its own tools as `namespace` and `custom` tools, and `web_search`, in every request;
on a chat-only route the relay makes the first two functions and tells their calls back, and
leaves the last out (or refuses it: UNSUPPORTED_TOOLS=refuse). Under MAX_TOKENS_LIMIT what costs
nothing (`client_metadata`, ...) passes, and the tools the upstream would bill are left out. A
reasoning model's thinking on a chat upstream becomes a reasoning item, its tokens counted. Codex
tries a WebSocket first (answered 426); compaction and a stored response's paths pass through to a
route that speaks the Responses API, and are refused, saying why, where none does. Codex and the
Agents SDK themselves drive the relay in tests/test_codex.py and tests/test_agents_sdk.py.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import ACCESS_TOKEN, CLIENT_KEY, SERVER_KEY, RelayFactory
from tests.fake_replies import (
    chat_stream,
    custom_call_item,
    function_call_item,
    message_item,
    reasoning_item,
    response_object,
    responses_reply,
)
from tests.fake_upstream import FakeUpstream, Reply, Stall
from tests.relay_server import RelayServer

pytestmark = pytest.mark.usefixtures("every_response_searched")

PATCH = '*** Begin Patch\n*** Add File: hello.txt\n+"hi" \\ there\n*** End Patch\n'
SHELL = {
    "type": "function",
    "name": "exec_command",
    "description": "Runs a command.",
    "strict": False,
    "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]},
}
NAMESPACE = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Tools for spawning and managing sub-agents.",
    "tools": [{"type": "function", "name": "close_agent", "description": "Close an agent.", "strict": False,
               "parameters": {"type": "object", "properties": {"target": {"type": "string"}}}}],
}  # fmt: skip
APPLY_PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Use the `apply_patch` tool to edit files. This is a FREEFORM tool.",
    "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch hunk+ end_patch"},
}
WEB_SEARCH = {"type": "web_search", "external_web_access": False}
CODEX_TOOLS = [SHELL, NAMESPACE, APPLY_PATCH, WEB_SEARCH]
# A request as Codex 0.171 sends it (captured), its instructions and history cut short.
CODEX_REQUEST: dict[str, Any] = {
    "model": "gpt-test",
    "stream": True,
    "input": [
        {"type": "message", "id": "msg_1", "role": "developer",
         "content": [{"type": "input_text", "text": "You are a coding agent running in the Codex CLI."}]},
        {"type": "message", "id": "msg_2", "role": "user", "content": [{"type": "input_text", "text": "say hi"}]},
    ],
    "tools": CODEX_TOOLS,
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "reasoning": {"summary": "auto"},
    "store": False,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "01a24bdb-11ee-7251-9432-518ddc64e737",
    "text": {"verbosity": "low"},
    "client_metadata": {"x-codex-installation-id": "007e8d62", "thread_id": "01a24bdb", "turn_id": "01a24bdc",
                        "x-codex-turn-metadata": '{"request_kind":"turn","sandbox":"seccomp"}'},
}  # fmt: skip
CHAT_USAGE = {
    "prompt_tokens": 40,
    "completion_tokens": 12,
    "total_tokens": 52,
    "prompt_tokens_details": {"cached_tokens": 8},
    "completion_tokens_details": {"reasoning_tokens": 5},
}
WEBSOCKET = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "OpenAI-Beta": "responses_websockets=2026-02-06",
}
AUTHORIZED = {"Authorization": f"Bearer {ACCESS_TOKEN}"}


@pytest.fixture
def chat_route(relay_factory: RelayFactory) -> RelayServer:
    """A relay whose upstream (the fake) speaks chat completions only, and takes stream_options."""
    return relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="0", STREAM_USAGE="true")


@pytest.fixture
def responses_route(relay_factory: RelayFactory) -> RelayServer:
    """A relay whose upstream speaks the Responses API, as api.openai.com does."""
    return relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="0", OPENAI_RESPONSES_API="true")


def sdk(relay: RelayServer, api_key: str = ACCESS_TOKEN) -> openai.OpenAI:
    return openai.OpenAI(base_url=relay.url + "/v1", api_key=api_key, max_retries=0)


@pytest.fixture
def client(chat_route: RelayServer) -> Iterator[openai.OpenAI]:
    with sdk(chat_route) as instance:
        yield instance


# -- Codex's tools on a chat-only upstream -------------------------------------------------------------


def test_codexs_tools_become_functions_and_their_calls_come_back_as_codex_offered_them(
    fake: FakeUpstream, chat_route: RelayServer, client: openai.OpenAI
) -> None:
    fake.replies["gpt-test"] = Reply(
        body=chat_stream(
            reasoning="I should close it, then patch.",
            calls=[
                ("call_1", "multi_agent_v1__close_agent", '{"target": "agent-7"}'),
                ("call_2", "apply_patch", json.dumps({"input": PATCH})),
                ("call_3", "exec_command", '{"cmd": "ls"}'),
            ],
            usage=CHAT_USAGE,
        )
    )
    request = {k: v for k, v in CODEX_REQUEST.items() if k not in ("model", "stream", "client_metadata")}
    stream = client.responses.create(
        model="gpt-test",
        stream=True,
        extra_body={"client_metadata": CODEX_REQUEST["client_metadata"]},
        **request,
    )
    events = list(stream)
    final = events[-1].response
    assert events[-1].type == "response.completed"
    reasoning, close, patch, shell = final.output
    assert (reasoning.type, reasoning.summary[0].text) == ("reasoning", "I should close it, then patch.")
    assert (close.type, close.namespace, close.name, close.arguments, close.call_id) == (
        "function_call", "multi_agent_v1", "close_agent", '{"target": "agent-7"}', "call_1",
    )  # fmt: skip
    assert (patch.type, patch.name, patch.input, patch.call_id, patch.namespace) == (
        "custom_tool_call", "apply_patch", PATCH, "call_2", None,
    )  # fmt: skip
    assert (shell.type, shell.name, shell.namespace) == ("function_call", "exec_command", None)
    assert [e.delta for e in events if e.type == "response.custom_tool_call_input.delta"] == [PATCH]
    assert final.usage.input_tokens == 40 and final.usage.output_tokens == 12
    assert final.usage.output_tokens_details.reasoning_tokens == 5
    assert final.usage.input_tokens_details.cached_tokens == 8

    (sent,) = fake.requests
    assert sent.path.endswith("/chat/completions")
    names = [tool["function"]["name"] for tool in sent.json["tools"]]
    assert names == ["exec_command", "multi_agent_v1__close_agent", "apply_patch"]  # no web_search
    assert sent.json["stream_options"] == {"include_usage": True}
    for name in ("client_metadata", "include", "prompt_cache_key", "store", "text", "reasoning"):
        assert name not in sent.json
    entry = chat_route.log_of(stream.response.headers["x-relay-request-id"])
    assert (entry["outcome"], entry["omitted_tools"], entry["tokens"]) == ("ok", "web_search", 52)


def test_the_next_turn_carries_the_calls_and_their_outputs_back_by_the_same_names(
    fake: FakeUpstream, client: openai.OpenAI
) -> None:
    answer = {"id": "c", "object": "chat.completion", "model": "gpt-test",
              "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Done."}}]}  # fmt: skip
    fake.replies["gpt-test"] = Reply(
        headers={"Content-Type": "application/json"}, body=[json.dumps(answer).encode()]
    )
    history = [
        *CODEX_REQUEST["input"],
        reasoning_item("I should close it."),
        function_call_item("call_1", "close_agent", '{"target": "agent-7"}', namespace="multi_agent_v1"),
        custom_call_item("call_2", "apply_patch", PATCH),
        {"type": "function_call_output", "call_id": "call_1", "output": "closed"},
        {"type": "custom_tool_call_output", "call_id": "call_2",
         "output": [{"type": "input_text", "text": "Success. Updated the following files:\nA hello.txt\n"}]},
    ]  # fmt: skip
    response = client.responses.create(model="gpt-test", input=history, tools=CODEX_TOOLS)  # type: ignore[arg-type]
    assert response.output_text == "Done."
    messages = fake.requests[0].json["messages"]
    assert messages[2:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "multi_agent_v1__close_agent", "arguments": '{"target": "agent-7"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "apply_patch", "arguments": json.dumps(
                {"input": PATCH}, separators=(",", ":"), ensure_ascii=False)}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "closed"},
        {"role": "tool", "tool_call_id": "call_2",
         "content": [{"type": "text", "text": "Success. Updated the following files:\nA hello.txt\n"}]},
    ]  # fmt: skip


def test_a_whole_answer_tells_the_calls_as_a_stream_does(fake: FakeUpstream, client: openai.OpenAI) -> None:
    call = {
        "id": "call_2",
        "type": "function",
        "function": {"name": "apply_patch", "arguments": json.dumps({"input": PATCH})},
    }
    answer = {"id": "c", "object": "chat.completion", "model": "gpt-test", "usage": CHAT_USAGE,
              "choices": [{"index": 0, "finish_reason": "tool_calls",
                           "message": {"role": "assistant", "content": None, "tool_calls": [call]}}]}  # fmt: skip
    fake.replies["gpt-test"] = Reply(
        headers={"Content-Type": "application/json"}, body=[json.dumps(answer).encode()]
    )
    response = client.responses.create(model="gpt-test", input="Patch it.", tools=CODEX_TOOLS)  # type: ignore[arg-type]
    (patch,) = response.output
    assert (patch.type, patch.name, patch.input) == ("custom_tool_call", "apply_patch", PATCH)
    assert response.usage.output_tokens_details.reasoning_tokens == 5


def test_an_owner_may_refuse_what_a_chat_upstream_cannot_run(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UNSUPPORTED_TOOLS="refuse")
    with sdk(relay) as refusing, pytest.raises(openai.BadRequestError) as caught:
        refusing.responses.create(model="gpt-test", input="Hi", tools=CODEX_TOOLS)  # type: ignore[arg-type]
    assert caught.value.message.startswith(
        'Error code: 400 - "tools[3].type" is "web_search": a tool the upstream'
    )
    assert caught.value.message.endswith("(UNSUPPORTED_TOOLS=refuse).")
    assert fake.requests == []


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", "reasoning_details"])
def test_a_chat_upstreams_reasoning_is_a_reasoning_item_before_the_message(
    fake: FakeUpstream, client: openai.OpenAI, field: str
) -> None:
    """DeepSeek and vLLM send `reasoning_content`, OpenRouter `reasoning` and `reasoning_details`."""
    fake.replies["gpt-test"] = Reply(
        body=chat_stream(
            "Hello there.", reasoning="The user greets me.", reasoning_field=field, usage=CHAT_USAGE
        )
    )
    events = list(client.responses.create(model="gpt-test", input="Hi", stream=True))
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert summary == "The user greets me."
    first_text = next(i for i, e in enumerate(events) if e.type == "response.output_text.delta")
    reasoning_done = next(i for i, e in enumerate(events) if e.type == "response.reasoning_summary_text.done")
    assert reasoning_done < first_text
    final = events[-1].response
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output_text == "Hello there."
    assert final.usage.output_tokens_details.reasoning_tokens == 5


def test_usage_is_asked_for_only_where_the_route_takes_stream_options(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    fake.replies["gpt-test"] = Reply(body=chat_stream("Hi.", usage=CHAT_USAGE))
    with sdk(relay_factory(ACCESS_TOKENS=ACCESS_TOKEN)) as unknown_host:
        events = list(unknown_host.responses.create(model="gpt-test", input="Hi", stream=True))
    assert "stream_options" not in fake.requests[0].json  # some servers refuse the field
    assert events[-1].response.usage.total_tokens == 52  # the upstream sent it all the same
    with sdk(relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, STREAM_USAGE="true")) as takes_it:
        list(takes_it.responses.create(model="gpt-test", input="Hi", stream=True))
    assert fake.requests[1].json["stream_options"] == {"include_usage": True}


# -- under MAX_TOKENS_LIMIT ----------------------------------------------------------------------------


@pytest.mark.parametrize("responses", ["true", "false"], ids=["passed-through", "translated"])
def test_under_the_token_cap_codexs_request_passes_without_what_would_cost_beyond_tokens(
    fake: FakeUpstream, relay_factory: RelayFactory, client: openai.OpenAI, responses: str
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, MAX_TOKENS_LIMIT="1000", OPENAI_RESPONSES_API=responses)
    fake.replies["gpt-test"] = (
        responses_reply([message_item("hi")]) if responses == "true" else Reply(body=chat_stream("hi"))
    )
    answer = httpx.post(relay.url + "/v1/responses", json=CODEX_REQUEST, headers=AUTHORIZED, timeout=30)
    assert answer.status_code == 200, answer.text
    assert "response.completed" in answer.text
    (sent,) = fake.requests
    if responses == "true":
        assert sent.json == {
            **CODEX_REQUEST,
            "tools": [SHELL, NAMESPACE, APPLY_PATCH],
            "max_output_tokens": 1000,
        }
    else:
        assert [tool["function"]["name"] for tool in sent.json["tools"]] == [
            "exec_command", "multi_agent_v1__close_agent", "apply_patch",
        ]  # fmt: skip
        assert sent.json["max_tokens"] == 1000
    assert relay.log_of(answer.headers["x-relay-request-id"])["omitted_tools"] == "web_search"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        pytest.param({"service_tier": "priority"}, '"service_tier" must be one of auto, default, flex', id="dearer-tier"),
        pytest.param({"max_tool_calls": 5}, '"max_tool_calls" is not passed on', id="unknown-field"),
        pytest.param({"max_output_tokens": 1001}, '"max_output_tokens" must be at most 1000', id="too-many-tokens"),
    ],
)  # fmt: skip
def test_under_the_token_cap_what_changes_the_price_is_refused_by_name(
    fake: FakeUpstream, relay_factory: RelayFactory, fields: dict[str, Any], named: str
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, MAX_TOKENS_LIMIT="1000", OPENAI_RESPONSES_API="true")
    answer = httpx.post(relay.url + "/v1/responses", json={**CODEX_REQUEST, **fields}, headers=AUTHORIZED)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"].startswith(named)
    assert fake.requests == []


# -- Codex's WebSocket attempt -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/responses", "/v1/chat/completions", "/", "/v1/responses/resp_1"])
def test_a_websocket_handshake_is_426_at_once_offering_no_websocket(
    fake: FakeUpstream, relay_factory: RelayFactory, path: str
) -> None:
    """Codex's first try: a 426 sends it to POST at once (a 400 would end it; other answers cost it seconds)."""
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, ALLOWED_ORIGINS="https://app.example")
    for headers in ({**WEBSOCKET, **AUTHORIZED}, WEBSOCKET, {**WEBSOCKET, "Origin": "https://app.example"}):
        answer = httpx.get(relay.url + path, headers=headers)
        assert answer.status_code == 426
        assert "upgrade" not in answer.headers
        assert answer.headers["connection"] != "Upgrade"
        said = f"This relay does not speak WebSocket: send the request to {path} over HTTP (POST) instead."
        assert (answer.json()["error"]["message"] if path.startswith("/v1/") else answer.text) == said
        entry = relay.log_of(answer.headers["x-relay-request-id"])
        assert (entry["httpRequest"]["status"], entry["outcome"]) == (426, "rejected")
    assert answer.headers["access-control-allow-origin"] == "https://app.example"
    assert fake.requests == []


# -- compaction ----------------------------------------------------------------------------------------

COMPACTED = {"id": "resp_c1", "object": "response.compaction", "created_at": 1700000000,
             "output": [{"type": "compaction", "id": "cmp_1", "encrypted_content": "BLOB"}],
             "usage": {"input_tokens": 30, "output_tokens": 10, "total_tokens": 40}}  # fmt: skip


def test_a_compaction_passes_through_to_a_responses_upstream(
    fake: FakeUpstream, responses_route: RelayServer
) -> None:
    fake.replies["gpt-test"] = Reply(
        headers={"Content-Type": "application/json"}, body=[json.dumps(COMPACTED).encode()]
    )
    with sdk(responses_route) as client:
        compacted = client.responses.compact(
            model="gpt-test", input="A long conversation.", instructions="Be brief."
        )
    assert compacted.output[0].type == "compaction"
    (sent,) = fake.requests
    assert (sent.method, sent.path) == ("POST", "/v1/responses/compact")
    assert sent.json == {"model": "gpt-test", "input": "A long conversation.", "instructions": "Be brief."}
    assert sent.headers["authorization"] == f"Bearer {SERVER_KEY}"


def test_a_compaction_on_a_chat_only_route_is_refused_saying_why(
    fake: FakeUpstream, client: openai.OpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.compact(model="gpt-test", input="A long conversation.")
    assert "/v1/responses/compact needs an upstream that speaks the Responses API" in caught.value.message
    assert fake.requests == []


def test_a_compaction_under_the_token_cap_keeps_to_the_known_fields(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, OPENAI_RESPONSES_API="true", MAX_TOKENS_LIMIT="100")
    fake.replies["gpt-test"] = Reply(
        headers={"Content-Type": "application/json"}, body=[json.dumps(COMPACTED).encode()]
    )
    with sdk(relay) as client:
        with pytest.raises(openai.BadRequestError, match='"background" is not passed on'):
            client.responses.compact(model="gpt-test", input="x", extra_body={"background": True})
        with pytest.raises(openai.BadRequestError, match='"service_tier" must be one of'):
            client.responses.compact(model="gpt-test", input="x", service_tier="priority")
        assert fake.requests == []
        client.responses.compact(model="gpt-test", input="x", prompt_cache_key="k")
    assert fake.requests[0].json == {"model": "gpt-test", "input": "x", "prompt_cache_key": "k"}


# -- a stored response, by its id ----------------------------------------------------------------------


def stored_reply(request: Any) -> Reply:
    """The fake as OpenAI keeps responses: what each of a stored response's paths answers."""
    if request.path.endswith("stream=true"):
        return responses_reply([message_item("stored")])
    if request.method == "DELETE":
        answer: dict[str, Any] = {"id": "resp_1", "object": "response.deleted", "deleted": True}
    elif "/input_items" in request.path:
        answer = {"object": "list", "data": [{"type": "message", "id": "msg_1", "role": "user", "status": "completed",
                  "content": [{"type": "input_text", "text": "Hi"}]}], "first_id": "msg_1", "last_id": "msg_1",
                  "has_more": False}  # fmt: skip
    else:
        answer = {**response_object([message_item("stored")]), "id": "resp_1"}
    return Reply(headers={"Content-Type": "application/json"}, body=[json.dumps(answer).encode()])


def test_a_stored_responses_paths_pass_through_to_the_upstream_that_keeps_it(
    fake: FakeUpstream, responses_route: RelayServer
) -> None:
    fake.replies["*"] = stored_reply
    seen = len(responses_route.request_logs())
    with sdk(responses_route) as client:
        assert client.responses.retrieve("resp_1").output_text == "stored"
        assert client.responses.cancel("resp_1").id == "resp_1"
        items = client.responses.input_items.list("resp_1", limit=5, order="asc")
        assert [item.id for item in items.data] == ["msg_1"]
        events = list(client.responses.retrieve("resp_1", stream=True, starting_after=2))
        assert events[-1].type == "response.completed" and events[-1].response.output_text == "stored"
        client.responses.delete("resp_1")
    assert [(sent.method, sent.path) for sent in fake.requests] == [
        ("GET", "/v1/responses/resp_1"),
        ("POST", "/v1/responses/resp_1/cancel"),
        ("GET", "/v1/responses/resp_1/input_items?limit=5&order=asc"),
        ("GET", "/v1/responses/resp_1?starting_after=2&stream=true"),
        ("DELETE", "/v1/responses/resp_1"),
    ]
    for sent in fake.requests:
        assert sent.headers["authorization"] == f"Bearer {SERVER_KEY}"
        assert sent.body == b""
    logged = responses_route.request_logs_since(seen, 5)
    assert all("/v1/responses/resp_1" in entry["message"] for entry in logged)
    assert [entry["outcome"] for entry in logged] == ["ok"] * 5
    assert not any("tokens" in entry for entry in logged)  # reading a stored reply spends nothing now


@pytest.mark.parametrize(
    ("method", "path", "status", "said"),
    [
        pytest.param("GET", "/v1/responses/resp.1", 400, "The response id in the path must be", id="dot"),
        pytest.param("GET", "/v1/responses/" + "a" * 257, 400, "The response id in the path must be", id="too-long"),
        pytest.param("GET", "/v1/responses/resp_1%00", 400, "The response id in the path must be", id="nul"),
        pytest.param("GET", "/v1/responses/resp_1?" + "a" * 1100, 400, "The query string must be", id="long-query"),
        pytest.param("GET", "/v1/responses/resp_1/messages", 404, "Not found: /v1/responses/resp_1/messages. "
                     "A stored response's paths are", id="unknown"),
        pytest.param("GET", "/v1/responses/resp_1/cancel/more", 404, "Not found: /v1/responses/resp_1/cancel/more. "
                     "A stored response's paths are", id="deeper"),
        pytest.param("GET", "/v1/responses/..%2Fmodels", 400, "The response id in the path must be", id="climbing"),
        pytest.param("POST", "/v1/responses/resp_1", 405, "Method POST is not allowed", id="post-on-the-id"),
        pytest.param("DELETE", "/v1/responses/resp_1/cancel", 405, "Method DELETE is not allowed", id="delete-cancel"),
        pytest.param("GET", "/v1/responses/compact", 405, "Method GET is not allowed", id="get-compact"),
    ],
)  # fmt: skip
def test_a_stored_responses_path_is_checked_before_it_reaches_the_upstream(
    fake: FakeUpstream, responses_route: RelayServer, method: str, path: str, status: int, said: str
) -> None:
    answer = httpx.request(method, responses_route.url + path, headers=AUTHORIZED)
    assert answer.status_code == status
    assert answer.json()["error"]["message"].startswith(said)
    assert fake.requests == []


@pytest.mark.parametrize("query", [b"x=<script>", b'x="1"', b"x=%0a y", b"x=\x7f", "x=é".encode()])
def test_a_query_that_is_not_a_urls_is_refused_before_it_reaches_the_upstream(
    fake: FakeUpstream, responses_route: RelayServer, query: bytes
) -> None:
    head = b"GET /v1/responses/resp_1?" + query + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
    with socket.create_connection(("127.0.0.1", responses_route.port), timeout=5) as sock:
        sock.sendall(head + ACCESS_TOKEN.encode() + b"\r\nConnection: close\r\n\r\n")
        answer = b""
        while data := sock.recv(65536):
            answer += data
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]  # the relay's, or gunicorn's own
    assert fake.requests == []


def test_without_an_upstream_that_keeps_responses_an_id_is_a_404_that_says_why(
    fake: FakeUpstream, client: openai.OpenAI
) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve("resp_1")
    assert "none of this relay's upstreams speaks the Responses API" in caught.value.message
    assert fake.requests == []


def test_an_id_goes_to_the_one_route_that_keeps_responses_with_that_routes_key(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    kept = {"prefix": "oa/", "base_url": fake.base_url, "key_env": "KEEPING_KEY", "responses": True}
    relay = relay_factory(
        ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAMS=json.dumps([kept]), KEEPING_KEY="sk-keeping-route-key-42"
    )
    fake.replies["*"] = stored_reply
    with sdk(relay) as client:
        assert client.responses.retrieve("resp_1").id == "resp_1"
    assert fake.requests[0].headers["authorization"] == "Bearer sk-keeping-route-key-42"
    two = [{**kept, "prefix": "a/"}, {**kept, "prefix": "b/"}]
    with (
        sdk(
            relay_factory(
                ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAMS=json.dumps(two), KEEPING_KEY="sk-keeping-route-key-42"
            )
        ) as client,
        pytest.raises(
            openai.NotFoundError, match="several of this relay's upstreams speak the Responses API"
        ),
    ):
        client.responses.retrieve("resp_1")
    assert len(fake.requests) == 1


def test_a_callers_own_key_reaches_only_the_default_route_for_an_id(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    fake.replies["*"] = stored_reply
    with sdk(relay_factory(OPENAI_RESPONSES_API="true"), api_key=CLIENT_KEY) as client:
        client.responses.retrieve("resp_1")
    assert fake.requests[0].headers["authorization"] == f"Bearer {CLIENT_KEY}"
    kept = {"prefix": "oa/", "base_url": fake.base_url, "key_env": "KEEPING_KEY", "responses": True}
    relay = relay_factory(UPSTREAMS=json.dumps([kept]), KEEPING_KEY="sk-keeping-route-key-42")
    with sdk(relay, api_key=CLIENT_KEY) as client:
        client.responses.retrieve("resp_1")
    assert fake.requests[1].headers["authorization"] == "Bearer sk-keeping-route-key-42"


def test_a_stored_response_needs_the_access_token(fake: FakeUpstream, responses_route: RelayServer) -> None:
    with sdk(responses_route, api_key="not-a-token") as stranger, pytest.raises(openai.AuthenticationError):
        stranger.responses.retrieve("resp_1")
    assert httpx.delete(responses_route.url + "/v1/responses/resp_1").status_code == 401
    assert fake.requests == []


def test_reading_a_stored_response_takes_nothing_from_the_limits_and_a_compaction_counts(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    relay = relay_factory(
        ACCESS_TOKENS=ACCESS_TOKEN, OPENAI_RESPONSES_API="true", RATE_LIMIT_REQUESTS="2/minute"
    )
    fake.replies["*"] = stored_reply
    with sdk(relay) as client:
        for _ in range(3):
            client.responses.retrieve("resp_1")  # nothing made: no request counted
        fake.replies["gpt-test"] = Reply(
            headers={"Content-Type": "application/json"}, body=[json.dumps(COMPACTED).encode()]
        )
        client.responses.compact(model="gpt-test", input="x")
        client.responses.compact(model="gpt-test", input="x")
        with pytest.raises(openai.RateLimitError):
            client.responses.compact(model="gpt-test", input="x")
    assert len(fake.requests) == 5


def send_and_leave(port: int, request: bytes, after: float) -> float:
    """Send a request on a raw socket, close the connection `after` seconds later; return when."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        time.sleep(after)
    return time.monotonic()


@pytest.mark.parametrize(
    ("request_line", "body"),
    [
        pytest.param(b"GET /v1/responses/resp_1?stream=true", b"", id="stored-stream"),
        pytest.param(b"GET /v1/responses/resp_1", b"", id="stored"),
        pytest.param(b"POST /v1/responses/compact", b'{"model": "gpt-test", "input": "x"}', id="compaction"),
    ],
)
def test_a_client_that_leaves_frees_the_upstream_at_once(
    fake: FakeUpstream, responses_route: RelayServer, request_line: bytes, body: bytes
) -> None:
    started = responses_reply([message_item("never")]).body[:2]
    fake.replies["*"] = lambda request: (
        Reply(body=[*started, Stall()])
        if b"stream" in request_line
        else Reply(delay_headers=5.0, body=[b"{}"])
    )
    agent = f"agents/leaves/{request_line.decode()}"
    head = (
        request_line + b" HTTP/1.1\r\nHost: x\r\nUser-Agent: " + agent.encode() + b"\r\n"
        b"Authorization: Bearer " + ACCESS_TOKEN.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    left = send_and_leave(responses_route.port, head + body, after=0.5)
    assert fake.wait_for(
        lambda: bool(fake.requests) and fake.requests[0].client_closed is not None, timeout=5
    )
    closed = fake.requests[0].client_closed
    assert closed is not None and closed - left < 2, "the upstream was not freed when the client left"
    assert [entry["outcome"] for entry in responses_route.request_logs_of(agent)] == ["client_gone"]
