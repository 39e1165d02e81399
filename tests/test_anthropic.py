"""Anthropic's Messages API (/v1/messages, /v1/messages/count_tokens), driven by the official `anthropic`
package (2.17) and by raw requests as Claude Code sends them, against the real server.

The fake upstream speaks Anthropic's API here (tests/fake_replies.py: named events, whole Messages,
Anthropic's errors); every relay of the suite points ANTHROPIC_BASE_URL at it (tests/conftest.py).
The same without a network, byte by byte and field by field: tests/test_anthropic_wire.py.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from relay.formats.anthropic_events import (
    KEEPALIVE,
)
from tests.conftest import ACCESS_TOKEN, ANTHROPIC_KEY, CLIENT_KEY, SERVER_KEY, RelayFactory
from tests.fake_replies import (
    anthropic_error,
    anthropic_events,
    anthropic_message,
    anthropic_reply,
    anthropic_sse,
    anthropic_stream,
)
from tests.fake_upstream import FakeUpstream, Pause, RecordedRequest, Reply, Reset, Stall, error_reply
from tests.relay_server import RelayServer
from tests.test_openai_api import GOOGLE_ID_TOKEN, completion

# Whatever a test reads from the relay, through httpx or the SDK, is searched for secrets.
pytestmark = pytest.mark.usefixtures("every_response_searched")

USER: Any = [{"role": "user", "content": "Hi"}]  # Any: the SDK's param types are not the point here
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def private(relay_factory: RelayFactory) -> RelayServer:
    """A relay with access tokens and Anthropic's key: the SDK's api_key is the token; the server's key pays."""
    return relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, ANTHROPIC_API_KEY=ANTHROPIC_KEY, UPSTREAM_RETRIES="0")


def sdk_client(relay: RelayServer, api_key: str = ACCESS_TOKEN) -> anthropic.Anthropic:
    """Anthropic's SDK pointed at a relay (its base URL, as ANTHROPIC_BASE_URL), with no retries of its own."""
    return anthropic.Anthropic(base_url=relay.url, api_key=api_key, max_retries=0)


@pytest.fixture
def sdk(private: RelayServer) -> Iterator[anthropic.Anthropic]:
    with sdk_client(private) as client:
        yield client


def post(relay: RelayServer, body: Any, path: str = "/v1/messages", **headers: str) -> httpx.Response:
    """A raw request, as Claude Code sends one: the token in x-api-key, Anthropic's version header."""
    sent = {"x-api-key": ACCESS_TOKEN, "anthropic-version": "2023-06-01", **headers}
    return httpx.post(relay.url + path, json=body, headers={k: v for k, v in sent.items() if v}, timeout=30)


def sent_to_upstream(request: RecordedRequest) -> tuple[str, str | None, str | None]:
    return request.path, request.headers.get("x-api-key"), request.headers.get("authorization")


# -- the SDK ------------------------------------------------------------------------------------------


def test_a_whole_message(fake: FakeUpstream, sdk: anthropic.Anthropic, private: RelayServer) -> None:
    fake.replies["claude-test"] = anthropic_reply("Hello there")
    raw = sdk.messages.with_raw_response.create(model="claude-test", max_tokens=50, messages=USER)
    message = raw.parse()
    assert message.content[0].type == "text" and message.content[0].text == "Hello there"
    assert message.usage.input_tokens == 10
    assert raw.headers["request-id"] == "req_fake"  # the upstream's, for the SDK's request_id
    (request,) = fake.requests
    # The key as Anthropic takes it, never the caller's token; the SDK's version and body as they were.
    assert sent_to_upstream(request) == ("/v1/messages", ANTHROPIC_KEY, None)
    assert request.headers["anthropic-version"] == "2026-10-21"
    assert request.json == {"max_tokens": 50, "messages": USER, "model": "claude-test"}
    entry = private.log_of(raw.headers["x-relay-request-id"])
    assert (entry["outcome"], entry["caller"], entry["model"]) == ("ok", "token-1", "claude-test")
    assert (entry["tokens"], entry["usage_source"]) == (16, "upstream")  # 10 in, 4 out, 2 written to cache


def test_a_stream_with_thinking_and_its_usage(
    fake: FakeUpstream, sdk: anthropic.Anthropic, private: RelayServer
) -> None:
    fake.replies["claude-test"] = Reply(
        body=anthropic_stream(["Hel", "lo", "!"], thinking="Let me see.", pace=0.01)
    )
    with sdk.messages.stream(model="claude-test", max_tokens=50, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        request_id = stream.response.headers["x-relay-request-id"]
        assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert text == "Hello!"
    thinking = final.content[0]
    assert thinking.type == "thinking" and (thinking.thinking, thinking.signature) == ("Let me see.", "SIG")
    assert (final.stop_reason, final.usage.output_tokens) == ("end_turn", 4)
    assert fake.requests[0].json["stream"] is True
    entry = private.log_of(request_id)
    # message_start's usage, then message_delta's counts: 10 in, 5 read from the cache, 4 out.
    assert entry["usage"] == {"input_tokens": 10, "output_tokens": 4, "cache_read_input_tokens": 5}
    assert (entry["outcome"], entry["tokens"], entry["usage_source"]) == ("ok", 19, "upstream")


def test_the_logs_first_token_is_the_models_first_delta_not_message_start(
    fake: FakeUpstream, private: RelayServer
) -> None:
    events = [anthropic_sse(event) for event in anthropic_events(["late"])]
    fake.replies["claude-test"] = Reply(
        body=[*events[:3], Pause(0.5), *events[3:]]
    )  # start, block, ping; then
    response = post(private, {"model": "claude-test", "messages": USER, "stream": True})
    assert response.content == b"".join(events)
    assert private.log_of(response.headers["x-relay-request-id"])["first_token_ms"] >= 500


def test_the_stream_is_passed_on_event_by_event_as_it_came(fake: FakeUpstream, private: RelayServer) -> None:
    events = anthropic_events(["Hi"], tool=("get_weather", ['{"city": ', '"Paris"}']))
    fake.replies["claude-test"] = Reply(body=[anthropic_sse(event) for event in events])
    response = post(private, {"model": "claude-test", "max_tokens": 10, "messages": USER, "stream": True})
    assert response.status_code == 200
    expected = b"".join(anthropic_sse(event) for event in events)
    # Each event named, its data compact as the relay writes JSON it passes on byte for byte.
    assert [line for line in response.content.split(b"\n") if line.startswith(b"event: ")] == [
        line for line in expected.split(b"\n") if line.startswith(b"event: ")
    ]
    data = [json.loads(line[6:]) for line in response.content.split(b"\n") if line.startswith(b"data: ")]
    assert data == events


def test_a_tool_round_trip(fake: FakeUpstream, sdk: anthropic.Anthropic) -> None:
    def answer(request: RecordedRequest) -> Reply:
        last = request.json["messages"][-1]["content"]
        if isinstance(last, list) and last[0].get("type") == "tool_result":
            assert last[0]["content"] == "sunny"
            return Reply(body=anthropic_stream(["Sunny in Paris."]))
        return Reply(body=anthropic_stream([], tool=("get_weather", ['{"ci', 'ty": "Par', 'is"}'])))

    fake.replies["claude-test"] = answer
    tools: Any = [{"name": "get_weather", "description": "w", "input_schema": {"type": "object"}}]
    messages: Any = [{"role": "user", "content": "Weather in Paris?"}]
    with sdk.messages.stream(model="claude-test", max_tokens=50, messages=messages, tools=tools) as stream:
        first = stream.get_final_message()
    call = first.content[-1]
    assert call.type == "tool_use" and (call.name, call.input) == ("get_weather", {"city": "Paris"})
    messages += [
        {"role": "assistant", "content": [block.model_dump() for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]},
    ]
    second = sdk.messages.create(
        model="claude-test", max_tokens=50, messages=messages, tools=tools, stream=True
    )
    text = "".join(
        event.delta.text
        for event in second
        if event.type == "content_block_delta" and event.delta.type == "text_delta"
    )
    assert text == "Sunny in Paris."
    assert fake.requests[1].json["tools"] == tools


def test_count_tokens_costs_nothing(fake: FakeUpstream, relay_factory: RelayFactory) -> None:
    relay = relay_factory(
        ACCESS_TOKENS=ACCESS_TOKEN, ANTHROPIC_API_KEY=ANTHROPIC_KEY, RATE_LIMIT_TOKENS="1/day", WORKERS="1"
    )
    fake.replies["claude-test"] = Reply(headers=JSON, body=[b'{"input_tokens": 42}'])
    with sdk_client(relay) as sdk:
        for _ in range(3):  # a budget of one token a day: counting tokens reserves and charges none
            raw = sdk.messages.with_raw_response.count_tokens(model="claude-test", messages=USER)
            assert raw.parse().input_tokens == 42
    assert sent_to_upstream(fake.requests[0]) == ("/v1/messages/count_tokens", ANTHROPIC_KEY, None)
    entry = relay.log_of(raw.headers["x-relay-request-id"])
    assert entry["outcome"] == "ok" and "tokens" not in entry


def test_as_claude_code_sends_it(fake: FakeUpstream, private: RelayServer) -> None:
    # The token in x-api-key, the beta form of the API, its betas, and a "system" turn in messages.
    fake.replies["claude-opus-test"] = Reply(body=anthropic_stream(["hi"]))
    body = {
        "model": "claude-opus-test", "max_tokens": 64, "stream": True,
        "messages": [{"role": "user", "content": "say hi"}, {"role": "system", "content": "# Environment"}],
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    }  # fmt: skip
    betas = "claude-code-20250219,interleaved-thinking-2025-05-14"
    response = httpx.post(
        private.url + "/v1/messages?beta=true",
        json=body,
        headers={"x-api-key": ACCESS_TOKEN, "anthropic-version": "2023-06-01", "anthropic-beta": betas,
                 "x-app": "cli", "anthropic-dangerous-direct-browser-access": "true"},
    )  # fmt: skip
    assert response.status_code == 200 and b"event: message_stop" in response.content
    (request,) = fake.requests
    assert sent_to_upstream(request) == ("/v1/messages?beta=true", ANTHROPIC_KEY, None)
    assert (request.headers["anthropic-version"], request.headers["anthropic-beta"]) == ("2023-06-01", betas)
    assert (
        "x-app" not in request.headers and "anthropic-dangerous-direct-browser-access" not in request.headers
    )
    assert request.json == body


def test_without_a_version_header_the_first_is_sent_and_a_hostile_header_is_refused(
    fake: FakeUpstream, private: RelayServer
) -> None:
    fake.replies["claude-test"] = anthropic_reply("ok")
    assert (
        post(private, {"model": "claude-test", "messages": USER}, **{"anthropic-version": ""}).status_code
        == 200
    )
    assert fake.requests[0].headers["anthropic-version"] == "2023-06-01"
    for name, value in (("anthropic-beta", "x" * 3000), ("anthropic-version", "2023-06-01\tbeta")):
        refused = post(private, {"model": "claude-test", "messages": USER}, **{name: value})
        assert refused.status_code == 400
        assert refused.json()["error"]["type"] == "invalid_request_error"
        assert f'The "{name}" header must be at most 2048 characters' in refused.json()["error"]["message"]
    assert len(fake.requests) == 1


def test_a_whole_answer_where_a_stream_was_asked_and_a_stream_where_a_whole_one_was(
    fake: FakeUpstream, sdk: anthropic.Anthropic
) -> None:
    # An upstream that ignores `stream`: the caller gets what it asked for, nothing of the reply lost.
    fake.replies["claude-whole"] = anthropic_reply("made a stream", tool=("f", {"a": [1, 2]}))
    with sdk.messages.stream(model="claude-whole", max_tokens=50, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "made a stream"
    assert final.content[1].type == "tool_use" and final.content[1].input == {"a": [1, 2]}
    assert final.usage.output_tokens == 4
    fake.replies["claude-streams"] = Reply(
        body=anthropic_stream(["made ", "whole"], thinking="hm", tool=("f", ['{"a"', ": 1}"]))
    )
    message = sdk.messages.create(model="claude-streams", max_tokens=50, messages=USER)
    assert [block.type for block in message.content] == ["thinking", "text", "tool_use"]
    assert message.content[1].text == "made whole"  # type: ignore[union-attr]
    assert message.content[2].input == {"a": 1}  # type: ignore[union-attr]
    assert (message.stop_reason, message.usage.output_tokens) == ("tool_use", 4)


# -- access, who pays, routes -------------------------------------------------------------------------


def test_without_a_token_the_sdk_raises_authentication_error_in_anthropics_shape(
    fake: FakeUpstream, private: RelayServer
) -> None:
    with (
        sdk_client(private, api_key="wrong-token") as sdk,
        pytest.raises(anthropic.AuthenticationError) as raised,
    ):
        sdk.messages.create(model="claude-test", max_tokens=5, messages=USER)
    assert raised.value.status_code == 401
    response = post(private, {"model": "claude-test", "messages": USER}, **{"x-api-key": ""})
    assert response.status_code == 401
    assert response.json() == {
        "type": "error",
        "error": {
            "type": "authentication_error",
            "message": 'Unauthorized: this relay needs an access token. Send the header "x-api-key: <token>" '
            '(or "Authorization: Bearer <token>") with one of the access tokens its owner set in ACCESS_TOKENS.',
        },
    }
    assert fake.requests == []


# Each row of docs/anthropic.md's "Who pays": settings, the caller's x-api-key or bearer, what the upstream gets.
@pytest.mark.parametrize(
    ("settings", "sent", "upstream_key"),
    [
        pytest.param({"ACCESS_TOKENS": ACCESS_TOKEN}, {"x-api-key": ACCESS_TOKEN}, ANTHROPIC_KEY, id="token-in-x-api-key"),
        pytest.param({"ACCESS_TOKENS": ACCESS_TOKEN}, {"Authorization": f"Bearer {ACCESS_TOKEN}"}, ANTHROPIC_KEY, id="token-as-bearer"),
        pytest.param({"ACCESS_TOKENS": ACCESS_TOKEN, "ANTHROPIC_API_KEY": None}, {"x-api-key": ACCESS_TOKEN}, None, id="tokens-no-server-key-401"),
        pytest.param({}, {"x-api-key": CLIENT_KEY}, CLIENT_KEY, id="client-key-pays"),
        pytest.param({}, {"Authorization": f"Bearer {CLIENT_KEY}"}, CLIENT_KEY, id="client-key-as-bearer-pays"),
        pytest.param({}, {}, ANTHROPIC_KEY, id="no-key-sent-server-pays"),
        pytest.param({"ALLOW_CLIENT_KEYS": "false"}, {"x-api-key": CLIENT_KEY}, ANTHROPIC_KEY, id="client-keys-off-server-pays"),
        pytest.param({"ANTHROPIC_API_KEY": None}, {"x-api-key": CLIENT_KEY}, CLIENT_KEY, id="no-server-key-client-pays"),
        pytest.param({"ANTHROPIC_API_KEY": None}, {}, None, id="no-key-anywhere-401"),
        pytest.param({"ANTHROPIC_API_KEY": None, "ALLOW_CLIENT_KEYS": "false"}, {"x-api-key": CLIENT_KEY}, None, id="nothing-allowed-401"),
        pytest.param({}, {"Authorization": f"Bearer {GOOGLE_ID_TOKEN}"}, ANTHROPIC_KEY, id="google-identity-token-not-a-key"),
        pytest.param({}, {"Authorization": f"Bearer {GOOGLE_ID_TOKEN}", "x-api-key": CLIENT_KEY}, CLIENT_KEY, id="behind-iam-with-own-key"),
    ],
)  # fmt: skip
def test_who_pays(
    fake: FakeUpstream,
    relay_factory: RelayFactory,
    settings: dict[str, str | None],
    sent: dict[str, str],
    upstream_key: str | None,
) -> None:
    relay = relay_factory(**{"ANTHROPIC_API_KEY": ANTHROPIC_KEY, **settings})
    fake.replies["claude-test"] = anthropic_reply("paid")
    response = httpx.post(
        relay.url + "/v1/messages", json={"model": "claude-test", "messages": USER}, headers=sent
    )
    if upstream_key is None:
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"
        assert fake.requests == []
    else:
        assert response.status_code == 200, response.text
        assert sent_to_upstream(fake.requests[0]) == ("/v1/messages", upstream_key, None)


def test_no_key_at_all_names_anthropics_setting(fake: FakeUpstream, relay_factory: RelayFactory) -> None:
    relay = relay_factory(ANTHROPIC_API_KEY=None)
    response = httpx.post(relay.url + "/v1/messages", json={"model": "claude-test", "messages": USER})
    assert response.status_code == 401
    assert (
        "ask the relay's owner to set one (ANTHROPIC_API_KEY, UPSTREAMS)"
        in response.json()["error"]["message"]
    )
    assert fake.requests == []


@pytest.fixture
def routed(fake: FakeUpstream, relay_factory: RelayFactory) -> RelayServer:
    routes = [
        {"prefix": "work/", "base_url": fake.origin, "key_env": "WORK_KEY", "api": "anthropic",
         "headers": {"X-Route-Token": "route-SECRET-1f3e5d7c9b2a4c6e"}},
        {"prefix": "local/", "base_url": fake.base_url, "key_env": None},
    ]  # fmt: skip
    return relay_factory(
        UPSTREAMS=json.dumps(routes), WORK_KEY="sk-ant-work-SECRET-8d6b4f2a0c", ACCESS_TOKENS=ACCESS_TOKEN,
        ANTHROPIC_API_KEY=ANTHROPIC_KEY, UPSTREAM_RETRIES="0",
    )  # fmt: skip


def test_a_model_goes_to_its_anthropic_route_and_a_model_of_the_other_api_is_refused(
    fake: FakeUpstream, routed: RelayServer
) -> None:
    fake.replies["claude-x"] = anthropic_reply("from work")
    assert (
        post(routed, {"model": "work/claude-x", "messages": USER}).json()["content"][0]["text"] == "from work"
    )
    request = fake.requests[0]
    assert sent_to_upstream(request) == ("/v1/messages", "sk-ant-work-SECRET-8d6b4f2a0c", None)
    assert request.headers["x-route-token"] == "route-SECRET-1f3e5d7c9b2a4c6e"
    assert request.json["model"] == "claude-x"  # its prefix taken off
    refused = post(routed, {"model": "local/llama", "messages": USER})
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "type": "invalid_request_error",
        "message": '"model" \'local/llama\' goes to the route "local/", which speaks the OpenAI API: send it to '
        "POST /v1/chat/completions or /v1/responses. This relay does not translate between the two APIs.",
    }
    chat = httpx.post(
        routed.url + "/v1/chat/completions",
        json={"model": "work/claude-x", "messages": USER},
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
    )
    assert chat.status_code == 400
    assert "which speaks the Anthropic API: send it to POST /v1/messages" in chat.json()["error"]["message"]
    assert len(fake.requests) == 1


def test_allowed_models_applies(fake: FakeUpstream, relay_factory: RelayFactory) -> None:
    relay = relay_factory(ANTHROPIC_API_KEY=ANTHROPIC_KEY, ALLOWED_MODELS="claude-haiku-*")
    with sdk_client(relay, api_key=CLIENT_KEY) as sdk, pytest.raises(anthropic.BadRequestError) as raised:
        sdk.messages.create(model="claude-opus-9", max_tokens=5, messages=USER)
    assert 'Model "claude-opus-9" is not allowed on this relay' in str(raised.value)
    counted = post(relay, {"model": "claude-opus-9", "messages": USER}, path="/v1/messages/count_tokens")
    assert counted.status_code == 400
    assert fake.requests == []


# -- MAX_TOKENS_LIMIT ---------------------------------------------------------------------------------


@pytest.fixture
def capped(relay_factory: RelayFactory) -> RelayServer:
    return relay_factory(
        ACCESS_TOKENS=ACCESS_TOKEN, ANTHROPIC_API_KEY=ANTHROPIC_KEY, MAX_TOKENS_LIMIT="100",
        ALLOWED_FIELDS="web_fetch,speed",
    )  # fmt: skip


CLIENT_TOOLS: list[dict[str, Any]] = [
    {"name": "Bash", "description": "run", "input_schema": {"type": "object"}},
    {"name": "DeferredToolPlaceholder", "input_schema": {"type": "object"}, "defer_loading": True},
    {"type": "custom", "name": "f", "input_schema": {"type": "object"}},
    {"type": "bash_20250124", "name": "bash"},
    {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
    {"type": "computer_20250124", "name": "computer", "display_width_px": 1024, "display_height_px": 768},
    {"type": "memory_20250818", "name": "memory"},
    {"type": "web_fetch_20250910", "name": "web_fetch"},  # allowed by ALLOWED_FIELDS, without its date
]


def test_under_the_cap_max_tokens_is_set_and_client_tools_pass(
    fake: FakeUpstream, capped: RelayServer
) -> None:
    fake.replies["claude-test"] = anthropic_reply("ok")
    body = {
        "model": "claude-test", "messages": USER, "tools": CLIENT_TOOLS, "speed": "fast",
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "service_tier": "standard_only", "thinking": {"type": "enabled", "budget_tokens": 50},
    }  # fmt: skip
    assert post(capped, body).status_code == 200
    assert fake.requests[0].json == {**body, "max_tokens": 100}
    assert post(capped, {**body, "max_tokens": 100}).status_code == 200


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("max_tokens", 128000, '"max_tokens" must be at most 100 on this relay (MAX_TOKENS_LIMIT).'),
        ("max_tokens", "many", '"max_tokens" must be a positive whole number, got a string.'),
        ("tools", [{"type": "web_search_20250305", "name": "web_search"}], '"tools[0].type" is "web_search_20250305": a tool the upstream runs itself'),
        ("tools", [CLIENT_TOOLS[0], {"type": "code_execution_20250825", "name": "c"}], '"tools[1].type" is "code_execution_20250825"'),
        ("tools", [{"type": "mcp_toolset", "mcp_server_name": "x"}], '"tools[0].type" is "mcp_toolset"'),
        ("tools", {"name": "f"}, '"tools" must be a list of tools, got an object.'),
        ("mcp_servers", [{"type": "url", "url": "https://mcp.example", "name": "m"}], '"mcp_servers" is not passed on by this relay while it caps tokens'),
        ("container", "container_1", '"container" is not passed on'),
        ("inference_geo", "us", '"inference_geo" is not passed on'),
        ("service_tier", "priority", '"service_tier" must be auto or standard_only on this relay'),
        ("service_tier", {"x": 1}, '"service_tier" must be auto or standard_only'),
        ("context_management", {"edits": [{"type": "compact_20260112"}]}, '"context_management.edits[0].type" is "compact_20260112": only edits that clear context pass'),
        ("context_management", [], '"context_management" must be an object with a list of "edits", got an empty list.'),
    ],
)  # fmt: skip
def test_the_cap_holds_against_every_length_or_cost_field(
    fake: FakeUpstream, capped: RelayServer, field: str, value: Any, said: str
) -> None:
    response = post(capped, {"model": "claude-test", "messages": USER, field: value})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert said in response.json()["error"]["message"]
    assert fake.requests == []


def test_count_tokens_is_not_capped(fake: FakeUpstream, capped: RelayServer) -> None:
    # It runs nothing: a server tool or a long max_tokens in the body it counts costs nothing.
    body = {"model": "claude-test", "messages": USER, "tools": [{"type": "web_search_20250305", "name": "w"}]}
    assert post(capped, body, path="/v1/messages/count_tokens").status_code == 200
    assert fake.requests[0].json == body


# -- errors ---------------------------------------------------------------------------------------------


def test_the_upstreams_error_is_passed_on_with_its_status_and_headers(
    fake: FakeUpstream, sdk: anthropic.Anthropic
) -> None:
    fake.replies["claude-test"] = anthropic_error(
        529, "overloaded_error", "Overloaded", headers={"retry-after": "3",
                                                          "anthropic-ratelimit-requests-remaining": "0", "x-secret-other": "x"}
    )  # fmt: skip
    with pytest.raises(anthropic.OverloadedError) as raised:
        sdk.messages.create(model="claude-test", max_tokens=5, messages=USER)
    response = raised.value.response
    assert response.status_code == 529 and raised.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert (response.headers["retry-after"], response.headers["anthropic-ratelimit-requests-remaining"]) == (
        "3",
        "0",
    )
    assert "x-secret-other" not in response.headers
    fake.replies["claude-test"] = anthropic_error(429, "rate_limit_error", "Slow down")
    with pytest.raises(anthropic.RateLimitError):
        sdk.messages.create(model="claude-test", max_tokens=5, messages=USER)


def test_an_error_page_or_a_redirect_becomes_anthropics_json(
    fake: FakeUpstream, private: RelayServer
) -> None:
    fake.replies["claude-test"] = error_reply(503, b"<html>down</html>", "text/html")
    response = post(private, {"model": "claude-test", "messages": USER})
    assert response.status_code == 503
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "overloaded_error"
    assert response.json()["error"]["message"] == "The upstream (127.0.0.1) answered 503 without a JSON body."
    fake.replies["claude-test"] = Reply(
        status=302, headers={"Location": "https://elsewhere.example"}, body=[]
    )
    moved = post(private, {"model": "claude-test", "messages": USER})
    assert moved.status_code == 502
    assert "check ANTHROPIC_BASE_URL (or the route's base_url)" in moved.json()["error"]["message"]


def test_the_relays_own_errors_are_in_anthropics_shape(relay_factory: RelayFactory) -> None:
    relay = relay_factory(
        ANTHROPIC_API_KEY=ANTHROPIC_KEY, ANTHROPIC_BASE_URL="http://127.0.0.1:9", MAX_BODY_BYTES="1000",
        UPSTREAM_RETRIES="0",
    )  # fmt: skip
    unreachable = post(relay, {"model": "claude-test", "messages": USER})
    assert unreachable.status_code == 502
    assert unreachable.json()["error"]["type"] == "api_error"
    assert unreachable.json()["error"]["message"].startswith(
        "Anthropic API error: could not connect to 127.0.0.1:9"
    )
    too_large = post(relay, {"model": "claude-test", "messages": [{"role": "user", "content": "x" * 2000}]})
    assert (too_large.status_code, too_large.json()["error"]["type"]) == (413, "request_too_large")
    unknown = post(relay, {}, path="/v1/messages/batches")
    assert (unknown.status_code, unknown.json()["error"]["type"]) == (404, "not_found_error")
    wrong_method = httpx.get(relay.url + "/v1/messages")
    assert (wrong_method.status_code, wrong_method.json()["error"]["type"]) == (405, "invalid_request_error")
    assert wrong_method.json()["error"]["message"] == "Method GET is not allowed on /v1/messages; use POST."
    not_json = httpx.post(relay.url + "/v1/messages", content=b"{", headers=JSON)
    assert not_json.json()["error"] == {
        "type": "invalid_request_error",
        "message": "The request body is not valid JSON; send a JSON object with model, messages and max_tokens.",
    }
    no_messages = post(relay, {"model": "claude-test", "messages": "hi"})
    assert (
        no_messages.json()["error"]["message"]
        == '"messages" must be a non-empty list of messages, got a string.'
    )


def test_the_upstream_silent_is_a_504_in_anthropics_shape(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    relay = relay_factory(
        ANTHROPIC_API_KEY=ANTHROPIC_KEY, UPSTREAM_FIRST_BYTE_TIMEOUT="1", UPSTREAM_RETRIES="0"
    )
    fake.replies["claude-test"] = Reply(delay_headers=5, body=anthropic_stream(["late"]))
    response = post(relay, {"model": "claude-test", "messages": USER})
    assert response.status_code == 504
    assert response.json()["error"] == {
        "type": "timeout_error",
        "message": "Anthropic API error: 127.0.0.1:" + str(fake.port) + " did not answer within 1 s "
        "(UPSTREAM_FIRST_BYTE_TIMEOUT).",
    }


def error_events(body: bytes) -> list[dict[str, Any]]:
    """The data of each `event: error` in a stream."""
    events = body.split(b"\n\n")
    return [
        json.loads(event.split(b"data: ", 1)[1]) for event in events if event.startswith(b"event: error\n")
    ]


def test_the_upstreams_error_event_is_passed_on_and_the_sdk_raises_it(
    fake: FakeUpstream, sdk: anthropic.Anthropic, private: RelayServer
) -> None:
    events = [
        *anthropic_events(["Hel"])[:5],
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    ]
    fake.replies["claude-test"] = Reply(body=[*(anthropic_sse(event) for event in events), Stall()])
    seen = len(private.request_logs())
    with (
        pytest.raises(anthropic.APIStatusError) as raised,
        sdk.messages.stream(model="claude-test", max_tokens=5, messages=USER) as stream,
    ):
        "".join(stream.text_stream)
    assert "Overloaded" in str(raised.value)
    # The relay stops reading at the error: the upstream that would stall on is let go.
    assert fake.wait_for(lambda: fake.requests[0].client_closed is not None)
    (entry,) = private.request_logs_since(seen, 1)
    assert (entry["outcome"], entry["detail"]) == ("upstream_error", "error event in the stream")


@pytest.mark.parametrize(
    ("ending", "message", "detail"),
    [
        pytest.param([Reset()], "the upstream closed the connection before the reply was complete", "upstream connection lost mid-stream", id="reset"),
        pytest.param([], "the upstream's stream ended before message_stop; the reply is incomplete", "error event in the stream", id="no-message-stop"),
        pytest.param([b"event: content_block_delta\ndata: " + b"x" * (3 * 1024 * 1024)], "the upstream sent an event larger than this relay passes on; the reply is cut", "upstream event over the size limit", id="event-too-large"),
    ],
)  # fmt: skip
def test_a_stream_that_fails_mid_way_ends_with_anthropics_error_event(
    fake: FakeUpstream, private: RelayServer, ending: list[Any], message: str, detail: str
) -> None:
    begun = [anthropic_sse(event) for event in anthropic_events(["Hel"])[:5]]  # message_start .. a delta
    fake.replies["claude-test"] = Reply(body=[*begun, *ending])
    response = post(private, {"model": "claude-test", "messages": USER, "stream": True})
    assert response.status_code == 200
    assert response.content.startswith(b"".join(begun))
    assert error_events(response.content) == [
        {"type": "error", "error": {"type": "api_error", "message": message}}
    ]
    entry = private.log_of(response.headers["x-relay-request-id"])
    assert entry["detail"] == detail


def test_a_stream_the_upstream_went_silent_in_ends_with_an_error_event(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    relay = relay_factory(ANTHROPIC_API_KEY=ANTHROPIC_KEY, UPSTREAM_IDLE_TIMEOUT="1")
    fake.replies["claude-test"] = Reply(body=[anthropic_sse(anthropic_events(["a"])[0]), Stall()])
    response = post(relay, {"model": "claude-test", "messages": USER, "stream": True})
    assert (
        error_events(response.content)[0]["error"]["message"]
        == "the upstream sent nothing for 1 s; the reply is incomplete"
    )
    assert relay.log_of(response.headers["x-relay-request-id"])["outcome"] == "timeout"


# -- the client leaving, the keep-alive ----------------------------------------------------------------


def test_a_client_that_leaves_mid_stream_frees_the_upstream(fake: FakeUpstream, private: RelayServer) -> None:
    fake.replies["claude-test"] = Reply(body=anthropic_stream([f" t{i}" for i in range(200)], pace=0.05))
    data = json.dumps({"model": "claude-test", "messages": USER, "stream": True, "max_tokens": 10}).encode()
    with socket.create_connection(("127.0.0.1", private.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: %s\r\nContent-Type: application/json\r\n"
            b"User-Agent: leaving-client\r\nContent-Length: %d\r\n\r\n%s"
            % (ACCESS_TOKEN.encode(), len(data), data)
        )
        received = b""
        while b"event: message_start" not in received:
            received += sock.recv(65536)
        time.sleep(0.3)
    left = time.monotonic()
    assert fake.wait_for(lambda: fake.requests[0].client_closed is not None, timeout=5)
    assert fake.requests[0].client_closed - left < 2  # type: ignore[operator]  # not the reply's 10 s
    (entry,) = private.request_logs_of("leaving-client")
    assert entry["outcome"] == "client_gone"


def test_a_silent_stream_gets_anthropics_ping_which_the_sdk_skips(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    # After STREAM_KEEPALIVE_SECONDS without a write the stream loop writes this format's keep-alive,
    # Anthropic's own ping (not an SSE comment): the SDK skips it, as it skips Anthropic's.
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, STREAM_KEEPALIVE_SECONDS="0.5")
    assert KEEPALIVE == b'event: ping\ndata: {"type": "ping"}\n\n'
    events = [anthropic_sse(event) for event in anthropic_events(["kept ", "alive"])]
    fake.replies["claude-test"] = Reply(
        body=[Pause(1.2), events[0], Pause(1.2), *events[1:]]
    )  # thinks, twice
    with (
        sdk_client(relay) as sdk,
        sdk.messages.stream(model="claude-test", max_tokens=5, messages=USER) as stream,
    ):
        assert "".join(stream.text_stream) == "kept alive"
    response = post(relay, {"model": "claude-test", "messages": USER, "stream": True})
    assert response.content.count(KEEPALIVE) >= 3 and b": keep-alive" not in response.content
    # Between events, never inside one (the upstream's own ping is the same bytes).
    assert response.content.replace(KEEPALIVE, b"") == b"".join(
        event for event in events if event != KEEPALIVE
    )
    # Before the model's first word: the log's first token is not a ping.
    assert relay.log_of(response.headers["x-relay-request-id"])["first_token_ms"] >= 2000


def test_the_openai_endpoints_keep_their_own_error_shape_and_token_header(
    fake: FakeUpstream, private: RelayServer
) -> None:
    # x-api-key is Anthropic's: on the OpenAI endpoints it is no access token.
    response = httpx.post(
        private.url + "/v1/chat/completions",
        json={"model": "gpt-test", "messages": USER},
        headers={"x-api-key": ACCESS_TOKEN},
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error" and "type" not in response.json()
    fake.replies["gpt-test"] = completion("still OpenAI's")
    ok = httpx.post(
        private.url + "/v1/chat/completions",
        json={"model": "gpt-test", "messages": USER},
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
    )
    assert ok.json()["choices"][0]["message"]["content"] == "still OpenAI's"
    assert fake.requests[0].headers["authorization"] == f"Bearer {SERVER_KEY}"


def test_anthropic_message_is_what_the_sdk_parses() -> None:
    # The fake's whole Message is one the SDK takes as it is (so the tests above test the relay).
    message = anthropic.types.Message.model_validate(anthropic_message("x", tool=("f", {"a": 1})))
    assert [block.type for block in message.content] == ["text", "tool_use"]
