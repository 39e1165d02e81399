"""Every field, of any JSON type, from a caller or from an upstream: a 4xx naming it, or a well-formed answer.

Valid bodies and answers, with one value anywhere in them (a field, an item of a list, a
part of a part) replaced by a JSON value of another type. The caller's side runs the whole
front half of every endpoint in process (the app, its validation, the owner's rules under
MAX_TOKENS_LIMIT), with an upstream that refuses connections: a 400 names what is wrong, a
502 says the upstream is not there, never a 500. The upstream's side runs every encoder and
translator on the mutated events and answers: never an exception, and the Responses events
always begin with response.created and are numbered 0, 1, 2... in the order they are sent.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from typing import Any

import flask
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.access.usage import Usage
from relay.app import ChatRelay
from relay.config import load_settings
from relay.endpoints.base import Encoding
from relay.endpoints.course import answer_value, whole_as_events
from relay.formats.anthropic_events import MessagesPassThrough, message_as_events, message_of
from relay.formats.chat_chunks import chunks_as_completion, completion_as_chunks
from relay.formats.chat_events import ChatEvents
from relay.formats.encoding import Encoder, Tally, encode
from relay.formats.original_text import TextStream
from relay.formats.responses_events import ChatToResponses, as_response
from relay.formats.responses_passthrough import ResponsesPassThrough
from relay.validation.responses_to_chat import as_chat_completions
from tests.fake_replies import anthropic_events, anthropic_message
from tests.fake_upstream import chunk, responses_stream

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def paths(value: Any, where: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON value: each key of an object, each item of a list, at every depth."""
    children = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    )
    for key, child in children:
        yield (*where, key)
        yield from paths(child, (*where, key))


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    value = copy.deepcopy(value)
    target = value
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return value


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """`base` with one value, anywhere in it, of another JSON type (or of the same)."""
    places = list(paths(base))
    return replaced(base, draw(st.sampled_from(places)), draw(json_values))


# -- the caller's side: every endpoint's front half, in process ------------------------------------

USER = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
RESPONSES_TOOL = {"type": "function", "name": "f", "parameters": {"type": "object"}}
# What Codex sends besides: a namespace of its own tools, a freeform (custom) tool, tools in the input.
NAMESPACE = {"type": "namespace", "name": "ns", "description": "d",
             "tools": [RESPONSES_TOOL, {"type": "custom", "name": "c", "format": {"type": "grammar", "definition": "x"}}]}  # fmt: skip
CUSTOM = {"type": "custom", "name": "apply_patch", "description": "d", "format": {"type": "text"}}
BODIES: dict[str, dict[str, Any]] = {
    "/api/chat": {"model": "m", "messages": USER, "temperature": 0.5, "max_tokens": 10, "stop": ["x"]},
    "/v1/chat/completions": {
        "model": "m",
        "messages": USER,
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [TOOL],
        "n": 1,
        "max_tokens": 10,
        "service_tier": "auto",
    },
    "/v1/responses": {
        "model": "m",
        "input": [
            {
                "role": "user",
                "content": [{"type": "input_text", "text": "hi"}, {"type": "input_image", "image_url": "u"}],
            },
            {"type": "additional_tools", "role": "developer", "tools": [NAMESPACE]},
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "d", "name": "f", "namespace": "ns", "arguments": "{}"},
            {"type": "custom_tool_call", "call_id": "e", "name": "apply_patch", "input": "p"},
            {"type": "function_call_output", "call_id": "c", "output": "ok"},
            {"type": "function_call_output", "call_id": "d", "output": "ok"},
            {
                "type": "custom_tool_call_output",
                "call_id": "e",
                "output": [{"type": "input_text", "text": "ok"}],
            },
        ],
        "instructions": "be brief",
        "tools": [RESPONSES_TOOL, NAMESPACE, CUSTOM],
        "tool_choice": {"type": "function", "name": "f"},
        "client_metadata": {"thread_id": "t"},
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "k",
        "store": False,
        "text": {"format": {"type": "json_schema", "name": "s", "schema": {}}},
        "reasoning": {"effort": "low"},
        "max_output_tokens": 10,
        "service_tier": "auto",
        "stream": True,
    },
    "/v1/embeddings": {"model": "m", "input": ["a", "b"]},
    "/v1/messages": {
        "model": "m",
        "max_tokens": 10,
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]},
            {"role": "system", "content": "# Environment"},
        ],
        "tools": [
            {"name": "f", "input_schema": {"type": "object"}},
            {"type": "bash_20250124", "name": "bash"},
        ],
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 5},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "service_tier": "auto",
        "speed": "standard",
        "stream": True,
    },
    "/v1/messages/count_tokens": {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": []},
    # A route of its own (r/), which speaks the Responses API: compaction is only that API's.
    "/v1/responses/compact": {
        "model": "r/m",
        "input": [{"role": "user", "content": "hi"}],
        "instructions": "x",
    },
}


@pytest.fixture(scope="module", params=[{}, {"MAX_TOKENS_LIMIT": "100"}], ids=["plain", "max-tokens-limit"])
def app(request: pytest.FixtureRequest) -> Iterator[ChatRelay]:
    logging.getLogger("relay").handlers[:] = [logging.NullHandler()]
    responses_route = {
        "prefix": "r/",
        "base_url": "http://127.0.0.1:9/v1",
        "key_env": None,
        "responses": True,
    }
    environ = {
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "OPENAI_API_KEY": "sk-test",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "UPSTREAM_RETRIES": "0",
        "UPSTREAMS": json.dumps([responses_route]),
    }
    yield ChatRelay(load_settings({**environ, **request.param}))


def status_of(app: ChatRelay, path: str, body: Any) -> tuple[int, bytes]:
    with flask.Flask(__name__).test_request_context(path, method="POST", data=json.dumps(body)):
        response = app(flask.request)
        return response.status_code, b"".join(response.response)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", list(BODIES))
def test_the_valid_bodies_reach_the_upstream(app: ChatRelay, path: str) -> None:
    status, _ = status_of(app, path, BODIES[path])
    assert status == 502  # nothing listens there: the body itself was taken


@pytest.mark.parametrize("path", list(BODIES))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_type_anywhere_in_a_body_is_a_400_or_reaches_the_upstream(
    app: ChatRelay, path: str, data: st.DataObject
) -> None:
    body = data.draw(mutated(BODIES[path]))
    status, text = status_of(app, path, body)
    assert status in (400, 502), (status, text)
    if status == 400:
        assert text  # says what is wrong


# -- the upstream's side: every encoder and translator, on mutated events and answers --------------

CHUNKS = [
    chunk("", role="assistant"),
    {**chunk("Hel"), "choices": [{"index": 0, "delta": {"content": "Hel", "reasoning_content": "hm"}}]},
    {
        "id": "c",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{}"}},
                        {
                            "index": 1,
                            "id": "call_2",
                            "function": {"name": "apply_patch", "arguments": '{"input":"p"}'},
                        },
                        {
                            "index": 2,
                            "id": "call_3",
                            "function": {"name": "ns__c", "arguments": '{"input":"q"}'},
                        },
                    ]
                },
                "finish_reason": None,
            }
        ],
    },
    chunk(finish="stop"),
    {"id": "c", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}},
]
COMPLETION = {
    "id": "c",
    "object": "chat.completion",
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "hi",
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "apply_patch", "arguments": '{"input":"p"}'},
                    },
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3, "completion_tokens_details": {}},
}
# What the functions of /v1/responses's body stand for, on a chat-only route.
TOOL_NAMES = as_chat_completions({**BODIES["/v1/responses"], "tool_choice": None}, "max_tokens").tools
RESPONSES_EVENTS = [
    json.loads(step.split(b"data: ", 1)[1])
    for step in responses_stream(["Hi", " there"])
    if isinstance(step, bytes) and b"data: {" in step
]


def encoders() -> list[tuple[str, Encoder]]:
    return [
        ("text", TextStream("m")),
        ("chat", ChatEvents(hide_usage=True)),
        ("translated", ChatToResponses("m", {"tools": [RESPONSES_TOOL]})),
        ("translated", ChatToResponses("m", {}, tools=TOOL_NAMES)),  # calls of a custom and a namespaced tool
    ]


def check_responses_events(writes: list[bytes]) -> None:
    events = [
        json.loads(line[6:]) for write in writes for line in write.split(b"\n") if line.startswith(b"data: ")
    ]
    if events:
        assert events[0]["type"] == "response.created"
        assert [event["sequence_number"] for event in events] == list(range(len(events)))


def run_stream(encoder: Encoder, events: list[Any]) -> list[bytes]:
    out: list[bytes] = []
    usage = Usage()
    payloads = [json.dumps(event).encode() for event in events]
    encode(encoder, payloads, out, Tally(), usage.chat_chunk)
    encoder.end(out)
    encoder.note("the upstream went away", out)
    usage.tokens(10)
    return out


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_type_anywhere_in_an_upstream_stream_is_read_without_a_failure(data: st.DataObject) -> None:
    events = data.draw(mutated(CHUNKS))
    for name, encoder in encoders():
        writes = run_stream(encoder, events)
        if name == "translated":
            check_responses_events(writes)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_type_anywhere_in_a_whole_answer_is_read_without_a_failure(data: st.DataObject) -> None:
    completion = data.draw(mutated(COMPLETION))
    body = json.dumps(completion).encode()
    for name, encoder in encoders():  # a whole answer where a stream was asked
        out: list[bytes] = []
        encode(encoder, whole_as_events(body), out, Tally(), Usage().chat_chunk)
        encoder.end(out)
        if name == "translated":
            check_responses_events(out)
    Usage().chat_completion(completion)
    as_response(completion, "m", {}, 1 << 20)
    as_response(completion, "m", {}, 1 << 20, TOOL_NAMES)
    chunks_as_completion(completion_as_chunks(completion) or [])
    for upstream in ("chat", "responses"):
        answer_value(body, "json", Encoding(upstream))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_type_anywhere_in_a_responses_stream_is_passed_on_without_a_failure(data: st.DataObject) -> None:
    events = data.draw(mutated(RESPONSES_EVENTS))
    encoder = ResponsesPassThrough("m")
    out: list[bytes] = []
    usage = Usage()
    encode(encoder, [json.dumps(event).encode() for event in events], out, Tally(), usage.responses_event)
    encoder.note("cut", out)
    usage.tokens(1)
    stream = b"".join(out)
    answer_value(stream, "stream", Encoding("responses"))
    for event in events:
        response = event.get("response") if isinstance(event, dict) else None
        Usage().response_object(response if isinstance(response, dict) else {})


MESSAGES_EVENTS = anthropic_events(["Hi", " there"], thinking="hm", tool=("f", ['{"a"', ": 1}"]))


def check_named_events(writes: list[bytes]) -> None:
    """Anthropic's stream as its SDKs read it: each event named by its type, data that parses."""
    for event in b"".join(writes).split(b"\n\n")[:-1]:
        name, _, data = event.partition(b"\n")
        assert name.startswith(b"event: ") or name.startswith(b"data: "), event
        if name.startswith(b"event: ") and data.startswith(b"data: {"):
            assert json.loads(data.replace(b"\ndata: ", b"\n")[6:])["type"] == name[7:].decode()


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_type_anywhere_in_a_messages_stream_is_passed_on_without_a_failure(data: st.DataObject) -> None:
    events = data.draw(mutated(MESSAGES_EVENTS))
    encoder = MessagesPassThrough()
    out: list[bytes] = []
    usage = Usage()
    encode(encoder, [json.dumps(event).encode() for event in events], out, Tally(), usage.messages_event)
    encoder.end(out)
    encoder.note("cut", out)
    usage.tokens(1)
    check_named_events(out)
    message_of([event for event in events if isinstance(event, dict)])
    answer_value(b"".join(out), "stream", Encoding("messages"))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_type_anywhere_in_a_whole_message_is_read_without_a_failure(data: st.DataObject) -> None:
    message = data.draw(mutated(anthropic_message("hi", tool=("f", {"a": [1]}))))
    Usage().message_object(message)
    message_as_events(message)
    body = json.dumps(message).encode()
    encoder = MessagesPassThrough()  # a whole answer where a stream was asked
    out: list[bytes] = []
    encode(encoder, whole_as_events(body, "messages"), out, Tally(), Usage().messages_event)
    encoder.end(out)
    check_named_events(out)
    answer_value(body, "json", Encoding("messages"))
