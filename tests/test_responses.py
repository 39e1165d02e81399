# The SDK types a stream's events, and a request's input items, as unions the tests narrow at run
# time by their `type`, as the SDK's users do:
# mypy: disable-error-code="union-attr,list-item,misc,arg-type"
"""POST /v1/responses and /v1/embeddings, driven by the official `openai` package, against the real server.

On a route whose upstream speaks only chat completions (the fake, by default) the relay
translates; on one that speaks the Responses API (OPENAI_RESPONSES_API=true) it passes
requests and events through. Either way the SDK's users write the same code.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import ACCESS_TOKEN, SERVER_KEY, RelayFactory
from tests.fake_upstream import (
    FakeUpstream,
    Reply,
    chunk,
    openai_stream,
    responses_stream,
    sse,
)
from tests.relay_server import RelayServer

pytestmark = pytest.mark.usefixtures("every_response_searched")

TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
def chat_route(relay_factory: RelayFactory) -> RelayServer:
    """A relay whose upstream (the fake) speaks chat completions only, as most servers do."""
    return relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="0", STREAM_USAGE="true")


@pytest.fixture
def responses_route(relay_factory: RelayFactory) -> RelayServer:
    """A relay whose upstream speaks the Responses API, as api.openai.com does."""
    return relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="0", OPENAI_RESPONSES_API="true")


def sdk(relay: RelayServer, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=relay.url + "/v1", api_key=ACCESS_TOKEN, **{"max_retries": 0, **options})


@pytest.fixture
def client(chat_route: RelayServer) -> Iterator[openai.OpenAI]:
    with sdk(chat_route) as instance:
        yield instance


def tool_call_stream(name: str, arguments: list[str], call_id: str = "call_1") -> list[Any]:
    first = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
    steps: list[Any] = [
        sse({"model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [first]}}]})
    ]
    for piece in arguments:
        delta = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
        steps.append(sse({"model": "m", "choices": [{"index": 0, "delta": delta}]}))
    steps.append(sse({"model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}))
    steps.append(sse("[DONE]"))
    return steps


# -- a chat-only upstream: the relay translates --------------------------------------------------------


def test_a_whole_response_from_a_chat_upstream(fake: FakeUpstream, client: openai.OpenAI) -> None:
    answer = {
        "id": "chatcmpl-1",
        "model": "gpt-fake",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
    }
    fake.replies["gpt-test"] = Reply(
        headers={"Content-Type": "application/json"}, body=[json.dumps(answer).encode()]
    )
    response = client.responses.create(
        model="gpt-test", instructions="Be brief.", input="Hi", max_output_tokens=50
    )
    assert response.output_text == "Hello!"
    assert response.status == "completed"
    assert response.usage is not None and (response.usage.input_tokens, response.usage.output_tokens) == (
        7,
        2,
    )
    (request,) = fake.requests
    assert request.path.endswith("/chat/completions")
    assert request.json["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert request.json["max_tokens"] == 50
    assert request.headers["authorization"] == f"Bearer {SERVER_KEY}"


def test_a_streamed_response_from_a_chat_upstream(fake: FakeUpstream, client: openai.OpenAI) -> None:
    usage = {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}
    fake.replies["gpt-test"] = Reply(body=openai_stream(["Hel", "lo", "!"], usage=usage))
    events = list(client.responses.create(model="gpt-test", input="Hi", stream=True))
    types = [event.type for event in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert "".join(event.delta for event in events if event.type == "response.output_text.delta") == "Hello!"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    final = events[-1].response
    assert final.output_text == "Hello!"
    assert final.usage is not None and final.usage.total_tokens == 7
    assert fake.requests[0].json["stream"] is True


def test_a_streamed_response_async(fake: FakeUpstream, chat_route: RelayServer) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["as", "ync"]))

    async def read() -> str:
        async with openai.AsyncOpenAI(
            base_url=chat_route.url + "/v1", api_key=ACCESS_TOKEN, max_retries=0
        ) as aclient:
            stream = await aclient.responses.create(model="gpt-test", input="Hi", stream=True)
            return "".join(
                [event.delta async for event in stream if event.type == "response.output_text.delta"]
            )

    assert asyncio.run(read()) == "async"


def test_function_tools_round_trip_on_a_chat_upstream(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.replies["gpt-test"] = Reply(body=tool_call_stream("get_weather", ['{"ci', 'ty": "Paris"}']))
    events = list(client.responses.create(model="gpt-test", input="Weather?", tools=[TOOL], stream=True))
    done = [event.item for event in events if event.type == "response.output_item.done"]
    (call,) = done
    assert (call.type, call.name, call.arguments, call.call_id) == (
        "function_call",
        "get_weather",
        '{"city": "Paris"}',
        "call_1",
    )
    deltas = [event.delta for event in events if event.type == "response.function_call_arguments.delta"]
    assert "".join(deltas) == '{"city": "Paris"}'
    assert fake.requests[0].json["tools"] == [
        {"type": "function", "function": {k: v for k, v in TOOL.items() if k != "type"}}
    ]

    # The caller runs the tool and sends its output back with the conversation so far.
    fake.replies["gpt-test"] = Reply(body=openai_stream(["Sunny."]))
    response = client.responses.create(
        model="gpt-test",
        tools=[TOOL],
        input=[
            {"role": "user", "content": "Weather?"},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city": "Paris"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny, 21 C"},
        ],
        stream=True,
    )
    assert "".join(e.delta for e in response if e.type == "response.output_text.delta") == "Sunny."
    messages = fake.requests[1].json["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"}


def test_images_and_turns_are_translated(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["A cat."]))
    client.responses.create(
        model="gpt-test",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is it?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
                ],
            },
            {"role": "assistant", "content": [{"type": "output_text", "text": "A dog?"}]},
            {"role": "user", "content": "Look again."},
        ],
    )
    assert fake.requests[0].json["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is it?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
            ],
        },
        {"role": "assistant", "content": "A dog?"},
        {"role": "user", "content": "Look again."},
    ]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        pytest.param({"previous_response_id": "resp_1"}, "previous_response_id", id="previous-response"),
        pytest.param({"store": True}, "store", id="store"),
        pytest.param({"background": True}, "background", id="background"),
        pytest.param(
            {"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type", id="item-reference"
        ),
        pytest.param(
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0]",
            id="file",
        ),
    ],
)
def test_what_a_chat_upstream_cannot_honour_is_refused_by_name(
    fake: FakeUpstream, client: openai.OpenAI, fields: dict[str, Any], named: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-test", **{"input": "Hi", **fields})
    assert f'"{named}' in caught.value.message
    assert fake.requests == []


def test_an_upstream_that_runs_out_of_tokens_is_incomplete(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.replies["gpt-test"] = Reply(
        body=[sse(chunk("Once upon")), sse(chunk(finish="length")), sse("[DONE]")]
    )
    events = list(client.responses.create(model="gpt-test", input="A story", stream=True))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


def test_a_stream_that_fails_midway_ends_failed(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.replies["gpt-test"] = Reply(
        body=[sse(chunk("partial")), sse({"error": {"message": "overloaded", "code": "busy"}})]
    )
    events = list(client.responses.create(model="gpt-test", input="Hi", stream=True))
    assert [event.type for event in events][-2:] == ["error", "response.failed"]
    assert events[-1].response.error.message == "overloaded"


def test_the_token_cap_holds_on_max_output_tokens(fake: FakeUpstream, relay_factory: RelayFactory) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, MAX_TOKENS_LIMIT="100")
    fake.replies["gpt-test"] = Reply(body=openai_stream(["ok"]))
    with sdk(relay) as capped:
        with pytest.raises(openai.BadRequestError, match="max_output_tokens"):
            capped.responses.create(model="gpt-test", input="Hi", max_output_tokens=101)
        capped.responses.create(model="gpt-test", input="Hi")
    assert fake.requests[0].json["max_tokens"] == 100  # the cap, where the caller set none


# -- an upstream that speaks the Responses API: passed through ----------------------------------------


def test_the_token_cap_keeps_tools_the_upstream_runs_from_it_unless_allowed(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    """A web search or a code container is billed beyond the tokens MAX_TOKENS_LIMIT caps: left out
    (and logged), or refused where the owner says so; sent where the owner allows its type."""
    capped = {"ACCESS_TOKENS": ACCESS_TOKEN, "OPENAI_RESPONSES_API": "true", "MAX_TOKENS_LIMIT": "100"}
    fake.replies["gpt-test"] = Reply(body=responses_stream(["ok"]))
    with sdk(relay_factory(**capped, UNSUPPORTED_TOOLS="refuse")) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            client.responses.create(model="gpt-test", input="Hi", tools=[TOOL, {"type": "web_search"}])
        assert caught.value.message == (
            'Error code: 400 - "tools[1].type" is "web_search": a tool the upstream runs itself, billed '
            "beyond the tokens this relay caps (MAX_TOKENS_LIMIT). Its owner can allow that type "
            '(ALLOWED_FIELDS); "function" and "custom" tools, and namespaces of them, pass.'
        )
        assert fake.requests == []
        list(client.responses.create(model="gpt-test", input="Hi", tools=[TOOL], stream=True))
    assert fake.requests[0].json["tools"] == [TOOL]
    relay = relay_factory(**capped)
    with sdk(relay) as client:
        stream = client.responses.create(  # type: ignore[call-overload]
            model="gpt-test",
            input="Hi",
            tools=[TOOL, {"type": "web_search"}],
            tool_choice="auto",
            stream=True,
        )
        list(stream)
    assert fake.requests[1].json["tools"] == [TOOL]
    assert relay.log_of(stream.response.headers["x-relay-request-id"])["omitted_tools"] == "web_search"
    with sdk(relay_factory(**capped, ALLOWED_FIELDS="web_search")) as allowed:
        list(
            allowed.responses.create(
                model="gpt-test", input="Hi", tools=[{"type": "web_search"}], stream=True
            )
        )
    assert fake.requests[2].json["tools"] == [{"type": "web_search"}]


def test_a_responses_upstream_gets_the_request_and_its_events_pass_on(
    fake: FakeUpstream, responses_route: RelayServer
) -> None:
    fake.replies["gpt-test"] = Reply(body=responses_stream(["Hel", "lo"]))
    with sdk(responses_route) as client:
        events = list(client.responses.create(model="gpt-test", input="Hi", stream=True, store=False))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Hello"
    (request,) = fake.requests
    assert request.path.endswith("/responses")
    assert request.json == {"model": "gpt-test", "input": "Hi", "stream": True, "store": False}


def test_a_responses_upstream_whole_answer_passes_as_it_is(
    fake: FakeUpstream, responses_route: RelayServer
) -> None:
    answer = {"id": "resp_1", "object": "response", "created_at": 1, "model": "m", "status": "completed",
              "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                          "content": [{"type": "output_text", "text": "Hi there", "annotations": []}]}]}  # fmt: skip
    fake.replies["gpt-test"] = Reply(
        headers={"Content-Type": "application/json"}, body=[json.dumps(answer).encode()]
    )
    with sdk(responses_route) as client:
        assert client.responses.create(model="gpt-test", input="Hi").output_text == "Hi there"


# -- embeddings ------------------------------------------------------------------------------------


def test_embeddings_pass_through(fake: FakeUpstream, client: openai.OpenAI) -> None:
    vectors = {"object": "list", "model": "emb", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
               "usage": {"prompt_tokens": 2, "total_tokens": 2}}  # fmt: skip
    fake.replies["text-embedding-3-small"] = Reply(
        headers={"Content-Type": "application/json"}, body=[json.dumps(vectors).encode()]
    )
    result = client.embeddings.create(model="text-embedding-3-small", input="hello", encoding_format="float")
    assert result.data[0].embedding == [0.1, 0.2]
    (request,) = fake.requests
    assert request.path.endswith("/embeddings")
    assert request.headers["authorization"] == f"Bearer {SERVER_KEY}"


def test_embeddings_keep_the_access_rules(fake: FakeUpstream, relay_factory: RelayFactory) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, ALLOWED_MODELS="gpt-*")
    with sdk(relay) as client, pytest.raises(openai.BadRequestError, match="ALLOWED_MODELS"):
        client.embeddings.create(model="text-embedding-3-small", input="hello")
    stranger = openai.OpenAI(base_url=relay.url + "/v1", api_key="wrong-token", max_retries=0)
    with stranger, pytest.raises(openai.AuthenticationError):
        stranger.embeddings.create(model="gpt-embed", input="hello")
    assert fake.requests == []


@pytest.mark.parametrize("path", ["/v1/embeddings", "/v1/responses"])
@pytest.mark.parametrize(
    ("body", "said"),
    [(b"", "The request body is empty"), (b"{", "The request body is not valid JSON")],
)
def test_a_body_that_is_no_json_object_is_told_what_this_endpoint_needs(
    fake: FakeUpstream, relay_factory: RelayFactory, path: str, body: bytes, said: str
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN)
    response = httpx.post(
        relay.url + path,
        content=body,
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == f"{said}; send a JSON object with model and input."
    assert fake.requests == []


# -- the SDKs' conventions -----------------------------------------------------------------------


def test_an_sdk_call_costs_no_more_than_the_sdks_own_attempts(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    # The SDK retries a 429 twice by default; the relay twice too: 9 upstream requests, before.
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="2", UPSTREAM_RETRY_MAX_WAIT="1")
    fake.replies["gpt-test"] = Reply(
        status=429,
        headers={"Content-Type": "application/json", "retry-after-ms": "10"},
        body=[b'{"error": {"message": "slow down"}}'],
    )
    client = openai.OpenAI(
        base_url=relay.url + "/v1", api_key=ACCESS_TOKEN, max_retries=2
    )  # the SDK's default
    with client, pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model="gpt-test", input="Hi")
    assert "x-should-retry" not in caught.value.response.headers  # the SDK retried it as it always does
    assert len(fake.requests) == 3  # its 3 attempts, and the relay's none


def test_the_upstreams_request_id_reaches_a_stream(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.replies["gpt-test"] = Reply(
        headers={"Content-Type": "text/event-stream", "x-request-id": "req_abc123"},
        body=openai_stream(["hi"]),
    )
    stream = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    assert stream.response.headers["x-request-id"] == "req_abc123"
    assert "".join(e.choices[0].delta.content or "" for e in stream if e.choices) == "hi"
    fake.replies["gpt-test"] = Reply(
        headers={"Content-Type": "text/event-stream", "x-request-id": "req_def"}, body=openai_stream(["x"])
    )
    responses_stream_ = client.responses.create(model="gpt-test", input="Hi", stream=True)
    assert responses_stream_.response.headers["x-request-id"] == "req_def"
    list(responses_stream_)


@pytest.mark.parametrize("path", ["chat", "responses"])
def test_a_data_line_that_is_not_json_is_skipped_on_v1(
    fake: FakeUpstream, client: openai.OpenAI, chat_route: RelayServer, path: str
) -> None:
    fake.replies["gpt-test"] = Reply(
        body=[sse(chunk("be")), b"data: {not json\n\n", sse(chunk("fore")), sse("[DONE]")]
    )
    if path == "chat":
        stream = client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
        text = "".join(e.choices[0].delta.content or "" for e in stream if e.choices)
        request_id = stream.response.headers["x-relay-request-id"]
    else:
        events = client.responses.create(model="gpt-test", input="Hi", stream=True)
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        request_id = events.response.headers["x-relay-request-id"]
    assert text == "before"
    entry = chat_route.log_of(request_id)
    assert (entry["outcome"], entry["skipped"]) == ("ok", 1)


def test_the_endpoints_are_listed_in_a_404(chat_route: RelayServer) -> None:
    answer = httpx.get(
        chat_route.url + "/v1/nothing-here", headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}
    )
    assert answer.status_code == 404
    assert "/v1/responses" in answer.text and "/v1/embeddings" in answer.text
