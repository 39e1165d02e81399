"""The Responses API on a chat-only upstream, pure: requests to chat completions, chat streams to events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.errors import BadRequest
from relay.formats.responses import ChatToResponses, as_response
from relay.formats.sse import SSEDecoder
from relay.validation.responses import as_chat_completions


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "c", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def sse_bytes(payloads: list[Any]) -> bytes:
    return b"".join(
        b"data: " + (p if isinstance(p, bytes) else json.dumps(p).encode()) + b"\n\n" for p in payloads
    )


def events_of(stream: bytes, cuts: list[int] | None = None) -> list[dict[str, Any]]:
    """Translate a chat stream read in pieces; the Responses events it becomes, parsed."""
    points = sorted({min(cut, len(stream)) for cut in cuts or []})
    reads = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    decoder, translator, out = SSEDecoder(), ChatToResponses("my-model", {"instructions": "x"}), b""
    for read in reads:
        for write in translator.translate(decoder.feed(read)):
            out += write
    for write in translator.translate(decoder.flush()) + translator.end():
        out += write
    parsed = []
    for block in out.split(b"\n\n"):
        if block:
            name, data = block.split(b"\n", 1)
            payload = json.loads(data.removeprefix(b"data: "))
            assert name == b"event: " + payload["type"].encode()  # named as OpenAI names them
            parsed.append(payload)
    return parsed


def check_sequence(events: list[dict[str, Any]]) -> None:
    """What every Responses stream holds: order, numbering, items added before their deltas and done after."""
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1]["type"] in ("response.completed", "response.incomplete", "response.failed")
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    open_items: set[str] = set()
    for e in events[2:-1]:
        if e["type"] == "response.output_item.added":
            open_items.add(e["item"]["id"])
        elif e["type"] == "response.output_item.done":
            open_items.remove(e["item"]["id"])
        elif "item_id" in e:
            assert e["item_id"] in open_items, e
    assert not open_items


tokens = st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=12)


@given(tokens, st.lists(st.integers(0, 2000), max_size=12), st.booleans())
def test_any_chat_stream_split_any_way_is_a_valid_sequence_with_the_same_text(
    words: list[str], cuts: list[int], with_usage: bool
) -> None:
    payloads: list[Any] = [chunk({"role": "assistant", "content": ""})]
    payloads += [chunk({"content": word}) for word in words]
    payloads.append(chunk({}, finish="stop"))
    if with_usage:
        payloads.append(
            {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}
        )
    payloads.append(b"[DONE]")
    events = events_of(sse_bytes(payloads), cuts)
    check_sequence(events)
    text = "".join(words)
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == text
    (done,) = [e for e in events if e["type"] == "response.output_text.done"]
    assert done["text"] == text
    final = events[-1]["response"]
    assert final["status"] == "completed" and final["model"] == "my-model" and final["instructions"] == "x"
    assert final["output"][0]["content"][0]["text"] == text
    assert final["usage"] == ({"input_tokens": 3, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 4,
                               "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 7} if with_usage else None)  # fmt: skip


def call_delta(
    index: int, *, call_id: str | None = None, name: str | None = None, arguments: str = ""
) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id:
        call.update(id=call_id, type="function")
    if name:
        call["function"]["name"] = name
    return {"tool_calls": [call]}


@pytest.mark.parametrize(
    ("payloads", "expected"),
    [
        pytest.param(
            [chunk(call_delta(0, call_id="a", name="f", arguments='{"x"')), chunk(call_delta(0, arguments=": 1}")),
             chunk({}, finish="tool_calls"), b"[DONE]"],
            [("function_call", "a", "f", '{"x": 1}')],
            id="one-call-in-pieces",
        ),
        pytest.param(
            [chunk(call_delta(0, call_id="a", name="f")), chunk(call_delta(1, call_id="b", name="g")),
             chunk(call_delta(1, arguments="{}")), chunk(call_delta(0, arguments='{"y": 2}')),
             chunk({}, finish="tool_calls"), b"[DONE]"],
            [("function_call", "a", "f", '{"y": 2}'), ("function_call", "b", "g", "{}")],
            id="parallel-calls-interleaved",
        ),
        pytest.param(
            [chunk({"content": "Let me look."}), chunk(call_delta(0, call_id="a", name="f", arguments="{}")),
             chunk({}, finish="tool_calls"), b"[DONE]"],
            [("message", "Let me look."), ("function_call", "a", "f", "{}")],
            id="text-then-a-call",
        ),
    ],
)  # fmt: skip
def test_tool_calls_become_function_call_items(payloads: list[Any], expected: list[tuple[str, ...]]) -> None:
    events = events_of(sse_bytes(payloads))
    check_sequence(events)
    output = events[-1]["response"]["output"]
    described = [
        ("message", item["content"][0]["text"]) if item["type"] == "message"
        else (item["type"], item["call_id"], item["name"], item["arguments"])
        for item in output
    ]  # fmt: skip
    assert described == expected
    for item in output:
        assert item["status"] == "completed"


def test_a_whole_completion_is_a_response_object() -> None:
    completion = {
        "id": "c",
        "model": "m",
        "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Once",
                     "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }  # fmt: skip
    response = as_response(completion, "my-model", {"max_output_tokens": 2})
    assert response is not None
    assert (response["status"], response["incomplete_details"]) == (
        "incomplete",
        {"reason": "max_output_tokens"},
    )
    assert [item["type"] for item in response["output"]] == ["message", "function_call"]
    assert response["max_output_tokens"] == 2 and response["usage"]["output_tokens"] == 2
    assert as_response({"choices": []}, "m", {}) is None


def test_a_failure_is_an_error_event_then_failed_once() -> None:
    translator = ChatToResponses("m", {})
    translator.translate([json.dumps(chunk({"content": "part"})).encode()])
    note = translator.note("the upstream closed the connection")
    assert b"event: error\n" in note and b"event: response.failed\n" in note
    assert translator.note("again") == b""  # told once


# -- the request ---------------------------------------------------------------------------------


def test_a_request_becomes_a_chat_completions_request() -> None:
    chat = as_chat_completions(
        {
            "model": "m",
            "instructions": "Be brief.",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{}"},
                {"type": "function_call", "call_id": "b", "name": "g", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "a", "output": "one"},
                {
                    "type": "function_call_output",
                    "call_id": "b",
                    "output": [{"type": "input_text", "text": "two"}],
                },
            ],
            "stream": True,
            "max_output_tokens": 30,
            "temperature": 0.2,
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}],
            "tool_choice": {"type": "function", "name": "f"},
            "text": {
                "format": {
                    "type": "json_schema",
                    "name": "answer",
                    "schema": {"type": "object"},
                    "strict": True,
                }
            },
            "reasoning": {"effort": "low"},
            "metadata": {"ignored": "by a chat upstream"},
        },
        "max_tokens",
    )
    assert chat == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
            ]},
            {"role": "tool", "tool_call_id": "a", "content": "one"},
            {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "two"}]},
        ],
        "stream": True,
        "max_tokens": 30,
        "temperature": 0.2,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strict": True}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True}},
        "reasoning_effort": "low",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        pytest.param({"conversation": "conv_1"}, '"conversation"', id="conversation"),
        pytest.param({"prompt": {"id": "pmpt_1"}}, '"prompt"', id="prompt-template"),
        pytest.param({"tools": [{"type": "file_search"}]}, '"tools[0]"', id="file-search"),
        pytest.param({"input": [{"role": "robot", "content": "x"}]}, '"input[0].role"', id="role"),
        pytest.param({"input": [{"type": "function_call", "call_id": 5, "name": "f", "arguments": "{}"}]},
                     '"input[0].call_id"', id="call-id"),
        pytest.param({"text": {"format": {"type": "xml"}}}, '"text.format.type"', id="format"),
        pytest.param({"tool_choice": {"type": "web_search"}}, '"tool_choice"', id="tool-choice"),
    ],
)  # fmt: skip
def test_what_chat_completions_cannot_carry_is_refused_by_name(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(BadRequest) as caught:
        as_chat_completions({"model": "m", "input": "Hi", **fields}, "max_tokens")
    assert named in caught.value.message
