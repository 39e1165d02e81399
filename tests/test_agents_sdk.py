"""OpenAI's Agents SDK (openai-agents 0.24.0) through the real relay: its URL, an access token, one tool.

The SDK's default model speaks the Responses API: `Runner.run_sync` asks for whole answers,
`Runner.run_streamed` for streams. Behind the relay the fake upstream speaks the Responses API
(passed through) or only chat completions (translated, with `stream_options` where the route
takes them), and plays the model's two turns: a call of the agent's function tool, then the
answer its result allows. The agent runs its tool, and counts the tokens both turns cost as the
upstream reported them. Tracing is off (it would post to api.openai.com).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, function_tool
from agents.models.openai_responses import OpenAIResponsesModel
from openai import AsyncOpenAI

from tests.conftest import ACCESS_TOKEN, RelayFactory
from tests.fake_replies import (
    FAKE_MODEL,
    RESPONSES_USAGE,
    chat_stream,
    function_call_item,
    message_item,
    reasoning_item,
    response_object,
    responses_reply,
    tool_outputs,
)
from tests.fake_upstream import FakeUpstream, RecordedRequest, Reply
from tests.relay_server import RelayServer

pytestmark = pytest.mark.usefixtures("every_response_searched")

CHAT_USAGE = {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52,
              "completion_tokens_details": {"reasoning_tokens": 5}}  # fmt: skip
NO_TRACES = RunConfig(tracing_disabled=True)


def weather_agent(relay: RelayServer, asked: list[str]) -> Agent[Any]:
    """An agent with one tool, on the relay: the SDK's default model class, its own client."""

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        asked.append(city)
        return f"sunny in {city}, 21 C"

    client = AsyncOpenAI(base_url=relay.url + "/v1", api_key=ACCESS_TOKEN, max_retries=0)
    model = OpenAIResponsesModel(model="gpt-test", openai_client=client)
    return Agent(name="Forecaster", instructions="You tell the weather.", tools=[get_weather], model=model)


def two_turns(route: str) -> Any:
    """The model's turns as the fake plays them, streamed or whole as asked: a call, then the answer."""
    call = [
        reasoning_item("I need the weather."),
        function_call_item("call_1", "get_weather", '{"city": "Paris"}'),
    ]
    answer = [message_item("It is sunny in Paris.")]

    def reply(request: RecordedRequest) -> Reply:
        items = answer if tool_outputs(request) else call
        streamed = request.json.get("stream") is True
        if route == "passed":
            if streamed:
                return responses_reply(items)
            return json_reply(response_object(items))
        calls = [(i["call_id"], i["name"], i["arguments"]) for i in items if i["type"] == "function_call"]
        text = "".join(i["content"][0]["text"] for i in items if i["type"] == "message")
        reasoning = "".join(i["summary"][0]["text"] for i in items if i["type"] == "reasoning")
        if streamed:
            return Reply(body=chat_stream(text, reasoning=reasoning, calls=calls, usage=CHAT_USAGE))
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text or None,
            "reasoning_content": reasoning,
        }
        if calls:
            message["tool_calls"] = [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
                for call_id, name, arguments in calls
            ]
        finish = "tool_calls" if calls else "stop"
        return json_reply({"id": "c", "object": "chat.completion", "model": FAKE_MODEL, "usage": CHAT_USAGE,
                           "choices": [{"index": 0, "message": message, "finish_reason": finish}]})  # fmt: skip

    return reply


def json_reply(value: dict[str, Any]) -> Reply:
    return Reply(headers={"Content-Type": "application/json"}, body=[json.dumps(value).encode()])


def relay_for(relay_factory: RelayFactory, route: str) -> RelayServer:
    responses = "true" if route == "passed" else "false"
    return relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, OPENAI_RESPONSES_API=responses, STREAM_USAGE="true")


def expected_usage(route: str) -> tuple[int, int, int]:
    """Both turns' tokens, as the upstream reported them: (input, output, total)."""
    names = ("input_tokens", "output_tokens", "total_tokens")
    if route == "translated":
        usage: dict[str, Any] = CHAT_USAGE
        names = ("prompt_tokens", "completion_tokens", "total_tokens")
    else:
        usage = RESPONSES_USAGE
    counted = tuple(2 * int(usage[name]) for name in names)
    return counted[0], counted[1], counted[2]


def check_turns(fake: FakeUpstream, route: str, streamed: bool) -> None:
    """What the upstream was sent: the agent's tool, then the tool's result with the call it answers."""
    first, second = fake.requests
    path = "/responses" if route == "passed" else "/chat/completions"
    assert first.path.endswith(path) and second.path.endswith(path)
    if route == "passed":
        assert [tool["name"] for tool in first.json["tools"]] == ["get_weather"]
        outputs = [item for item in second.json["input"] if item.get("type") == "function_call_output"]
        assert [(item["call_id"], item["output"]) for item in outputs] == [("call_1", "sunny in Paris, 21 C")]
        return
    assert [tool["function"]["name"] for tool in first.json["tools"]] == ["get_weather"]
    assert first.json.get("stream_options") == ({"include_usage": True} if streamed else None)
    assert second.json["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "sunny in Paris, 21 C",
    }


@pytest.mark.parametrize("route", ["passed", "translated"])
def test_run_sync_calls_the_tool_and_counts_the_usage(
    fake: FakeUpstream, relay_factory: RelayFactory, route: str
) -> None:
    relay = relay_for(relay_factory, route)
    fake.replies["gpt-test"] = two_turns(route)
    asked: list[str] = []
    result = Runner.run_sync(
        weather_agent(relay, asked), "What's the weather in Paris?", run_config=NO_TRACES
    )
    assert result.final_output == "It is sunny in Paris."
    assert asked == ["Paris"]
    usage = result.context_wrapper.usage
    assert usage.requests == 2
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == expected_usage(route)
    check_turns(fake, route, streamed=False)


@pytest.mark.parametrize("route", ["passed", "translated"])
def test_run_streamed_calls_the_tool_and_counts_the_usage(
    fake: FakeUpstream, relay_factory: RelayFactory, route: str
) -> None:
    relay = relay_for(relay_factory, route)
    fake.replies["gpt-test"] = two_turns(route)
    asked: list[str] = []

    async def run() -> tuple[Any, list[Any]]:
        streamed = Runner.run_streamed(
            weather_agent(relay, asked), "What's the weather in Paris?", run_config=NO_TRACES
        )
        kinds = [
            event.data.type async for event in streamed.stream_events() if event.type == "raw_response_event"
        ]
        return streamed, kinds

    streamed, kinds = asyncio.run(run())
    assert streamed.final_output == "It is sunny in Paris."
    assert asked == ["Paris"]
    assert kinds.count("response.completed") == 2
    assert "response.reasoning_summary_text.delta" in kinds
    usage = streamed.context_wrapper.usage
    assert usage.requests == 2
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == expected_usage(route)
    assert usage.output_tokens_details.reasoning_tokens == 2 * (3 if route == "passed" else 5)
    check_turns(fake, route, streamed=True)
