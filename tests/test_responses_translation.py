"""The Responses API on a chat-only upstream, pure: requests to chat completions, chat streams to events."""

from __future__ import annotations

import copy
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.access.usage import Usage
from relay.endpoints.base import Encoding
from relay.endpoints.course import answer_value
from relay.errors import BadRequest
from relay.formats import jsoncodec
from relay.formats.chat_chunks import completion_as_chunks
from relay.formats.encoding import Encoder, Tally, encode
from relay.formats.responses_events import WRITE_BYTES, ChatToResponses, as_response
from relay.formats.responses_object import (
    ECHOED,
    ITEM_BYTES,
    MAX_OUTPUT_ITEMS,
    OBJECT_BYTES,
    Draft,
    TooLarge,
    response_usage,
)
from relay.formats.responses_tools import NAME_LIMIT, ToolNames, ToolRef, custom_parameters
from relay.formats.sse import MAX_EVENT_BYTES, SSEDecoder
from relay.validation.responses_body import leave_out_billed_tools, parse_responses
from relay.validation.responses_to_chat import as_chat_completions


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "c", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def sse_bytes(payloads: list[Any]) -> bytes:
    return b"".join(
        b"data: " + (p if isinstance(p, bytes) else json.dumps(p).encode()) + b"\n\n" for p in payloads
    )


def feed(encoder: Encoder, payloads: list[bytes], out: list[bytes]) -> None:
    """What the relay's loop does with one upstream read (relay/serving/relayed_stream.py)."""
    encode(encoder, payloads, out, Tally(), lambda _: None)


def events_of(stream: bytes, cuts: list[int] | None = None) -> list[dict[str, Any]]:
    """Translate a chat stream read in pieces; the Responses events it becomes, parsed."""
    points = sorted({min(cut, len(stream)) for cut in cuts or []})
    reads = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    decoder, translator = SSEDecoder(), ChatToResponses("my-model", {"instructions": "x"})
    out: list[bytes] = []
    for read in reads:
        feed(translator, decoder.feed(read), out)
    feed(translator, decoder.flush(), out)
    translator.end(out)
    return parse_events(out)


REPLY_EVENTS = {
    "response.created",
    "response.in_progress",
    "response.completed",
    "response.incomplete",
    "response.failed",
}


def check_sequence(events: list[dict[str, Any]], *, told: bool = True) -> None:
    """What every Responses stream holds: order, numbering, items added before their deltas and done after.

    And (`told`) what the last event says of the output is what the events told: its items in the
    order they were added, each with the content its deltas carried.
    """
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1]["type"] in ("response.completed", "response.incomplete", "response.failed")
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    added: list[str] = []
    open_items: set[str] = set()
    deltas: dict[str, str] = {}
    for e in events[2:-1]:
        assert e["type"] not in REPLY_EVENTS, e  # one beginning, one end
        if e["type"] == "response.output_item.added":
            assert e["output_index"] == len(added)  # items are numbered in the order they begin
            added.append(e["item"]["id"])
            open_items.add(e["item"]["id"])
        elif e["type"] == "response.output_item.done":
            open_items.remove(e["item"]["id"])
            assert e["output_index"] == added.index(e["item"]["id"])
        elif "item_id" in e:
            assert e["item_id"] in open_items, e
            assert e["output_index"] == added.index(e["item_id"])
            if e["type"].endswith(".delta"):
                deltas[e["item_id"]] = deltas.get(e["item_id"], "") + e["delta"]
        elif e["type"] == "error":
            assert events[-1]["type"] == "response.failed" and e is events[-2]
    final = events[-1]["response"]
    if final["status"] != "failed":
        assert not open_items
        assert final["error"] is None
    else:
        assert events[-2]["type"] == "error"
        assert final["error"] == {"code": events[-2]["code"], "message": events[-2]["message"]}
    if not told:
        return
    assert [item["id"] for item in final["output"]] == added
    for item in final["output"]:
        content = deltas.get(item["id"], "")
        if item["type"] == "message":
            assert item["content"][0]["text"] == content
        elif item["type"] == "reasoning":
            assert item["summary"][0]["text"] == content
        elif item["type"] == "custom_tool_call":
            assert item["input"] == content
        else:
            assert item["arguments"] == content


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
    response = as_response(completion, "my-model", {"max_output_tokens": 2}, MAX_EVENT_BYTES)
    assert response is not None
    assert (response["status"], response["incomplete_details"]) == (
        "incomplete",
        {"reason": "max_output_tokens"},
    )
    assert [item["type"] for item in response["output"]] == ["message", "function_call"]
    assert response["max_output_tokens"] == 2 and response["usage"]["output_tokens"] == 2
    assert as_response({"choices": []}, "m", {}, MAX_EVENT_BYTES) is None


def made_whole(body: bytes, request: dict[str, Any]) -> dict[str, Any] | None:
    """A chat stream where a whole answer was asked, as the relay answers it (relay/endpoints/course.py):
    the stream made one completion (chunks_as_completion), then that completion a Response."""
    completion = answer_value(body, "stream", Encoding("chat"))
    return None if completion is None else as_response(completion, "my-model", request, MAX_EVENT_BYTES)


@pytest.mark.parametrize("done", [b"data: [DONE]\n\n", b""], ids=["with-done", "ended-without-done"])
def test_a_whole_chat_stream_is_a_response_object(done: bytes) -> None:
    """An upstream that streamed what was asked whole: its events become one Response."""
    body = (
        sse_bytes([chunk({"role": "assistant", "content": "Hel"}), chunk({"content": "lo"}, "stop")]) + done
    )
    body += (
        b'data: {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}\n\n'
        if not done
        else b""
    )
    response = made_whole(body, {"temperature": 0.5})
    assert response is not None
    assert normalised(response, {}, 0) == response_object(
        "completed", [message("Hello", "completed")], temperature=0.5,
        usage=None if done else {
            "input_tokens": 1, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 2, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 3,
        },
    )  # fmt: skip


def test_a_whole_chat_stream_without_a_reply_is_none() -> None:
    assert made_whole(b'data: {"choices": []}\n\ndata: [DONE]\n\n', {}) is None
    assert made_whole(b"", {}) is None


def test_a_whole_chat_stream_keeps_the_reasoning_its_stream_would_show() -> None:
    delta = {"reasoning_details": [{"type": "reasoning.text", "text": "Hmm"}], "content": "Hi"}
    body = sse_bytes([chunk(delta, "stop"), b"[DONE]"])
    streamed = events_of(body)[-1]["response"]["output"]
    assert [item["type"] for item in streamed] == ["reasoning", "message"]
    response = made_whole(body, {})
    assert response is not None
    assert [item["type"] for item in response["output"]] == ["reasoning", "message"]


def test_a_failure_is_an_error_event_then_failed_once() -> None:
    translator = ChatToResponses("m", {})
    feed(translator, [json.dumps(chunk({"content": "part"})).encode()], [])
    out: list[bytes] = []
    translator.note("the upstream closed the connection", out)
    note = b"".join(out)
    assert b"event: error\n" in note and b"event: response.failed\n" in note
    again: list[bytes] = []
    translator.note("again", again)
    assert again == []  # told once


# -- the events, exactly as OpenAI sends them ---------------------------------------------------

GENERATED_ID = re.compile(r"(resp|msg|fc|ctc|call|rs)_[0-9a-f]{24}")


def normalised(value: Any, ids: dict[str, str], since: int) -> Any:
    """Generated ids (prefix, "_", 24 hex digits) as <prefix>#n in order of appearance; created_at checked."""
    if isinstance(value, dict):
        out = {}
        for name, item in value.items():
            if name == "created_at":
                assert isinstance(item, int) and since <= item <= time.time(), item
                out[name] = "<now>"
            else:
                out[name] = normalised(item, ids, since)
        return out
    if isinstance(value, list):
        return [normalised(item, ids, since) for item in value]
    if isinstance(value, str) and GENERATED_ID.fullmatch(value):
        if value not in ids:
            prefix = value.split("_")[0]
            ids[value] = f"{prefix}#{sum(seen.startswith(prefix + '#') for seen in ids.values()) + 1}"
        return ids[value]
    return value


def parse_events(writes: list[bytes]) -> list[dict[str, Any]]:
    """Each write is whole events, each `event: <type>` then one `data:` line of JSON, then a blank line."""
    parsed = []
    for write in writes:
        assert write.endswith(b"\n\n")
        for block in write[:-2].split(b"\n\n"):
            name, data = block.split(b"\n")
            payload = json.loads(data.removeprefix(b"data: "))
            assert name == b"event: " + payload["type"].encode()
            parsed.append(payload)
    return parsed


class Translation:
    """A ChatToResponses fed JSON payloads as the relay feeds it, its output parsed with ids and times made comparable."""

    def __init__(
        self,
        request: dict[str, Any] | None = None,
        model: str = "my-model",
        limit: int = MAX_EVENT_BYTES,
        tools: ToolNames | None = None,
    ) -> None:
        self.since = int(time.time())
        self.ids: dict[str, str] = {}
        self.translator = ChatToResponses(model, request or {}, limit, tools)
        self.tally = Tally()
        self.usage = Usage()

    def feed(self, *payloads: Any) -> list[dict[str, Any]]:
        """One upstream read of these payloads."""
        encoded = [p if isinstance(p, bytes) else json.dumps(p).encode() for p in payloads]
        out: list[bytes] = []
        encode(self.translator, encoded, out, self.tally, self.usage.chat_chunk)
        return self.parsed(out)

    def end(self) -> list[dict[str, Any]]:
        out: list[bytes] = []
        self.translator.end(out)
        return self.parsed(out)

    def note(self, message: str) -> list[dict[str, Any]]:
        out: list[bytes] = []
        self.translator.note(message, out)
        return self.parsed(out)

    def response(self) -> Any:
        return normalised(self.translator.response(), self.ids, self.since)

    def parsed(self, writes: list[bytes]) -> list[dict[str, Any]]:
        return [normalised(e, self.ids, self.since) for e in parse_events(writes)]


def response_object(
    status: str,
    output: list[Any] | None = None,
    *,
    usage: Any = None,
    error: Any = None,
    reason: str | None = None,
    **echoed: Any,
) -> dict[str, Any]:
    """A Response object as OpenAI's API returns it, for a request that set nothing it echoes."""
    return {
        "id": "resp#1",
        "object": "response",
        "created_at": "<now>",
        "status": status,
        "model": "my-model",
        "output": output or [],
        "usage": usage,
        "error": error,
        "incomplete_details": {"reason": reason} if reason else None,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "store": False,
        "text": {"format": {"type": "text"}},
        "truncation": "disabled",
        "instructions": None,
        "max_output_tokens": None,
        "temperature": None,
        "top_p": None,
        "tool_choice": "auto",
        "tools": [],
        "metadata": {},
        "user": None,
        **echoed,
    }


def numbered(events: list[dict[str, Any]], start: int = 0) -> list[dict[str, Any]]:
    return [{**e, "sequence_number": start + n} for n, e in enumerate(events)]


STARTED = [
    {"type": "response.created", "response": response_object("in_progress")},
    {"type": "response.in_progress", "response": response_object("in_progress")},
]


def message(text: str, status: str, item: str = "msg#1") -> dict[str, Any]:
    content = [] if status == "added" else [part(text)]
    return {"type": "message", "id": item, "status": "in_progress" if status == "added" else status,
            "role": "assistant", "content": content}  # fmt: skip


def part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call(item: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {"type": "function_call", "id": item, "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}  # fmt: skip


def text_done(text: str, index: int = 0, item: str = "msg#1") -> list[dict[str, Any]]:
    at = {"item_id": item, "output_index": index, "content_index": 0}
    return [
        {"type": "response.output_text.done", **at, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **at, "part": part(text)},
        {
            "type": "response.output_item.done",
            "output_index": index,
            "item": message(text, "completed", item),
        },
    ]


def text_added(index: int = 0, item: str = "msg#1") -> list[dict[str, Any]]:
    return [
        {"type": "response.output_item.added", "output_index": index, "item": message("", "added", item)},
        {"type": "response.content_part.added", "item_id": item, "output_index": index, "content_index": 0,
         "part": part("")},
    ]  # fmt: skip


def text_delta(delta: str, index: int = 0, item: str = "msg#1") -> dict[str, Any]:
    return {"type": "response.output_text.delta", "item_id": item, "output_index": index,
            "content_index": 0, "delta": delta, "logprobs": []}  # fmt: skip


CHAT_USAGE = {
    "prompt_tokens": 3,
    "completion_tokens": 2,
    "total_tokens": 5,
    "prompt_tokens_details": {"cached_tokens": 1},
    "completion_tokens_details": {"reasoning_tokens": 1},
}
RESPONSES_USAGE = {
    "input_tokens": 3,
    "input_tokens_details": {"cached_tokens": 1},
    "output_tokens": 2,
    "output_tokens_details": {"reasoning_tokens": 1},
    "total_tokens": 5,
}


def test_a_text_reply_is_the_events_openai_sends() -> None:
    reply = Translation()
    events = reply.feed(
        chunk({"role": "assistant", "content": ""}),  # a bare role: no event of its own
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, finish="stop"),
        {"id": "c", "choices": [], "usage": CHAT_USAGE},
        b"[DONE]",
    )
    done = message("Hello", "completed")
    assert events == numbered([
        *STARTED,
        *text_added(),
        text_delta("Hel"),
        text_delta("lo"),
        *text_done("Hello"),
        {"type": "response.completed", "response": response_object("completed", [done], usage=RESPONSES_USAGE)},
    ])  # fmt: skip
    assert reply.response() == response_object("completed", [done], usage=RESPONSES_USAGE)
    assert reply.usage.reported == CHAT_USAGE  # the log gets the upstream's own words
    assert (reply.translator.replied, reply.translator.finished, reply.translator.error) == (True, True, None)
    assert reply.end() == []  # nothing after the last event
    assert reply.feed(chunk({"content": "more"})) == []


def test_text_and_calls_interleaved_are_items_in_the_order_they_began() -> None:
    reply = Translation()
    events = reply.feed(
        chunk({"content": "Let me look."}),
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "g"}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"y":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 2}"}}]}),
        chunk({}, finish="tool_calls"),
        b"[DONE]",
    )  # fmt: skip
    first = function_call("fc#1", "call_a", "f", '{"y": 2}', "completed")
    second = function_call("fc#2", "call_b", "g", "{}", "completed")
    assert events == numbered([
        *STARTED,
        *text_added(),
        text_delta("Let me look."),
        {"type": "response.output_item.added", "output_index": 1, "item": function_call("fc#1", "call_a", "f", "", "in_progress")},
        {"type": "response.output_item.added", "output_index": 2, "item": function_call("fc#2", "call_b", "g", "", "in_progress")},
        {"type": "response.function_call_arguments.delta", "item_id": "fc#2", "output_index": 2, "delta": "{}"},
        {"type": "response.function_call_arguments.delta", "item_id": "fc#1", "output_index": 1, "delta": '{"y":'},
        {"type": "response.function_call_arguments.delta", "item_id": "fc#1", "output_index": 1, "delta": " 2}"},
        *text_done("Let me look."),
        {"type": "response.function_call_arguments.done", "item_id": "fc#1", "output_index": 1, "arguments": '{"y": 2}'},
        {"type": "response.output_item.done", "output_index": 1, "item": first},
        {"type": "response.function_call_arguments.done", "item_id": "fc#2", "output_index": 2, "arguments": "{}"},
        {"type": "response.output_item.done", "output_index": 2, "item": second},
        {"type": "response.completed",
         "response": response_object("completed", [message("Let me look.", "completed"), first, second])},
    ])  # fmt: skip


def test_a_whole_message_that_ran_out_of_tokens() -> None:
    """One completion (an upstream that ignored `stream`) made the chunks of its stream first
    (relay/formats/chat_chunks.py); its calls, which have no index, numbered by position there."""
    reply = Translation()
    whole = {"role": "assistant", "content": "Hi",
             "tool_calls": [{"id": "call_a", "function": {"name": "f", "arguments": "{}"}},
                            {"id": 7, "function": None}]}  # fmt: skip
    chunks = completion_as_chunks({"choices": [{"index": 0, "message": whole, "finish_reason": "length"}]})
    assert chunks is not None
    events = reply.feed(*chunks)
    first = function_call("fc#1", "call_a", "f", "{}", "completed")
    second = function_call("fc#2", "call#1", "", "", "completed")  # an id of its own, no name
    output = [message("Hi", "completed"), first, second]
    assert events == numbered([
        *STARTED,
        *text_added(),
        text_delta("Hi"),
        {"type": "response.output_item.added", "output_index": 1, "item": {**first, "arguments": "", "status": "in_progress"}},
        {"type": "response.function_call_arguments.delta", "item_id": "fc#1", "output_index": 1, "delta": "{}"},
        {"type": "response.output_item.added", "output_index": 2, "item": {**second, "status": "in_progress"}},
        *text_done("Hi"),
        {"type": "response.function_call_arguments.done", "item_id": "fc#1", "output_index": 1, "arguments": "{}"},
        {"type": "response.output_item.done", "output_index": 1, "item": first},
        {"type": "response.function_call_arguments.done", "item_id": "fc#2", "output_index": 2, "arguments": ""},
        {"type": "response.output_item.done", "output_index": 2, "item": second},
    ])  # fmt: skip
    assert reply.end() == numbered(
        [{"type": "response.incomplete", "response": response_object("incomplete", output, reason="max_output_tokens")}],
        len(events),
    )  # fmt: skip


def test_an_item_that_begins_after_others_closed_is_closed_at_the_end() -> None:
    reply = Translation()
    events = reply.feed(
        chunk({"content": "a"}, finish="stop"),
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "f", "arguments": "{}"}}]}),
        chunk({"content": "b"}),  # the message was done: text now is a new one
        b"[DONE]",
    )
    call = function_call("fc#1", "call_a", "f", "{}", "completed")
    assert [e["type"] for e in events[8:]] == [
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed",
    ]  # fmt: skip
    assert events[-1]["response"]["output"] == [
        message("a", "completed"),
        call,
        message("b", "completed", "msg#2"),
    ]
    assert events[-2] == {"type": "response.output_item.done", "output_index": 2,
                          "item": message("b", "completed", "msg#2"), "sequence_number": len(events) - 2}  # fmt: skip


@pytest.mark.parametrize(
    ("finish", "status", "reason"),
    [
        pytest.param("stop", "completed", None, id="stop"),
        pytest.param("tool_calls", "completed", None, id="tool-calls"),
        pytest.param("length", "incomplete", "max_output_tokens", id="length"),
        pytest.param("content_filter", "incomplete", "content_filter", id="content-filter"),
        pytest.param(None, "completed", None, id="no-finish-reason"),
    ],
)
def test_the_finish_reason_decides_the_last_event(
    finish: str | None, status: str, reason: str | None
) -> None:
    reply = Translation()
    events = reply.feed(chunk({"content": "a"}), chunk({}, finish=finish), b"[DONE]")
    expected = response_object(status, [message("a", "completed")], reason=reason)
    assert events[-1] == {
        "type": f"response.{status}",
        "response": expected,
        "sequence_number": len(events) - 1,
    }
    assert reply.response() == expected


def test_a_stream_that_ends_without_done_is_completed_by_end() -> None:
    reply = Translation()
    events = reply.feed(chunk({"content": "a"}))
    assert reply.translator.finished is False
    closing = reply.end()
    assert closing == numbered(
        [*text_done("a"), {"type": "response.completed", "response": response_object("completed", [message("a", "completed")])}],
        len(events),
    )  # fmt: skip
    assert reply.translator.finished is True
    assert reply.end() == []
    out: list[bytes] = []
    reply.translator.end(out)
    assert out == []  # no empty write either


def test_a_stream_with_no_choice_starts_but_does_not_complete() -> None:
    """Nothing was replied: the relay says so (relay/serving/relayed_stream.py), not an empty response.completed."""
    reply = Translation()
    assert reply.feed({"choices": [], "usage": CHAT_USAGE}, b"[DONE]") == numbered(STARTED)
    assert (reply.translator.replied, reply.translator.finished) == (False, True)
    assert reply.usage.reported == CHAT_USAGE
    assert reply.end() == []
    assert reply.feed(chunk({"content": "late"})) == []
    # The relay's note then ends the reply the caller's SDK saw begin.
    failure = {"code": "server_error", "message": "nothing to relay"}
    assert reply.note("nothing to relay") == numbered(
        [
            {"type": "error", **failure, "param": None},
            {
                "type": "response.failed",
                "response": response_object("failed", error=failure, usage=RESPONSES_USAGE),
            },
        ],
        2,
    )


def test_a_batch_that_says_nothing_writes_nothing() -> None:
    reply = Translation()
    out: list[bytes] = []
    for payloads in ([], [b""], [b"not json"]):
        encode(reply.translator, payloads, out, reply.tally, reply.usage.chat_chunk)
    assert out == []
    assert reply.tally == Tally(chunks=0, skipped=1)
    assert reply.translator.replied is False


def test_counts_for_the_log(caplog: pytest.LogCaptureFixture) -> None:
    reply = Translation()
    translator = reply.translator
    assert (reply.tally, reply.usage.written) == (Tally(chunks=0, skipped=0), 0)
    assert (reply.usage.reported, translator.error, translator.packet, translator.replied) == (
        None,
        None,
        None,
        False,
    )
    with caplog.at_level(logging.WARNING, logger="relay.formats.jsoncodec"):
        reply.feed(b"[1]", chunk({"content": "é中"}), b"{bad")
        reply.feed(chunk({"content": "😀"}), b"")
    assert (reply.tally.chunks, reply.tally.skipped, reply.usage.written) == (2, 2, 3)
    # The size only: the payload may hold the user's conversation.
    assert [r.getMessage() for r in caplog.records] == [
        "Skipped an upstream event that is not a JSON object (3 bytes)",
        "Skipped an upstream event that is not a JSON object (4 bytes)",
    ]


FAILED_PART = message("part", "in_progress")  # the item as it stood when the reply failed


@pytest.mark.parametrize(
    ("error", "code", "text"),
    [
        pytest.param({"message": "Rate limit", "code": "rate_limit_exceeded"}, "rate_limit_exceeded", "Rate limit", id="openai-shape"),
        pytest.param({"message": "boom", "code": 500}, "server_error", "boom", id="code-not-a-string"),
        pytest.param({"message": "boom"}, "server_error", "boom", id="no-code"),
        pytest.param({"message": "boom", "code": ""}, "server_error", "boom", id="empty-code"),
        pytest.param({"message": "", "code": "x"}, "x", '{"message":"","code":"x"}', id="empty-message-as-json"),
        pytest.param({"message": 5}, "server_error", '{"message":5}', id="message-not-a-string"),
        pytest.param("plain", "server_error", "plain", id="string"),  # as the original route says it
        pytest.param(["x"], "server_error", '["x"]', id="list"),
    ],
)  # fmt: skip
def test_an_error_event_is_an_error_then_the_reply_failed(error: Any, code: str, text: str) -> None:
    reply = Translation()
    events = reply.feed(chunk({"content": "part"}), {"error": error}, chunk({"content": "after"}))
    failure = {"code": code, "message": text}
    assert events[-2:] == numbered(
        [
            {"type": "error", "code": code, "message": text, "param": None},
            # Not closed: the reply stopped where it failed.
            {"type": "response.failed", "response": response_object("failed", [FAILED_PART], error=failure)},
        ],
        len(events) - 2,
    )
    assert [e["type"] for e in events[:-2]] == [e["type"] for e in STARTED] + [
        "response.output_item.added", "response.content_part.added", "response.output_text.delta"
    ]  # fmt: skip
    assert reply.translator.error == text
    # The Response object, asked for afterwards, tells the same failure as the events.
    assert (reply.response()["status"], reply.response()["error"]) == ("failed", failure)
    assert reply.end() == [] and reply.feed(b"[DONE]") == []
    assert reply.note("and then the relay failed") == []  # told once


def test_an_error_event_first_is_still_a_whole_sequence() -> None:
    reply = Translation()
    assert reply.feed({"error": {"message": "nope"}}) == numbered([
        *STARTED,
        {"type": "error", "code": "server_error", "message": "nope", "param": None},
        {"type": "response.failed", "response": response_object("failed", error={"code": "server_error", "message": "nope"})},
    ])  # fmt: skip


def test_a_failure_after_the_reply_ran_out_of_tokens_is_failed_not_incomplete() -> None:
    reply = Translation()
    events = reply.feed(chunk({"content": "a"}, finish="length"), {"error": {"message": "x"}})
    assert events[-1]["response"]["incomplete_details"] is None
    assert reply.response()["incomplete_details"] is None


@pytest.mark.parametrize(
    "started", [pytest.param(False, id="before-any-event"), pytest.param(True, id="mid-reply")]
)
def test_note_is_an_error_event_and_failed_once(started: bool) -> None:
    reply = Translation()
    before = reply.feed(chunk({"content": "part"})) if started else []
    failure = {"code": "server_error", "message": "cut"}
    assert reply.note("cut") == numbered(
        [
            *([] if started else STARTED),
            {"type": "error", "code": "server_error", "message": "cut", "param": None},
            {"type": "response.failed", "response": response_object("failed", [FAILED_PART] if started else [], error=failure)},
        ],
        len(before),
    )  # fmt: skip
    assert reply.note("again") == []
    assert reply.response()["error"] == failure


def test_the_response_repeats_what_the_request_set() -> None:
    request: dict[str, Any] = {
        "instructions": "Be brief.",
        "max_output_tokens": 30,
        "temperature": 0.2,
        "top_p": 0.9,
        "tool_choice": "required",
        "tools": [{"type": "function", "name": "f"}],
        "metadata": {"k": "v"},
        "user": "u1",
        "parallel_tool_calls": False,
        "text": {"format": {"type": "json_object"}},
        "input": "not repeated",
    }
    reply = Translation(request)
    events = reply.feed(chunk({"content": "a"}), b"[DONE]")
    echoed = {name: value for name, value in request.items() if name != "input"}
    expected = response_object("completed", [message("a", "completed")], **echoed)
    assert events[-1]["response"] == expected
    assert events[0]["response"] == {**expected, "status": "in_progress", "output": []}


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param(CHAT_USAGE, RESPONSES_USAGE, id="whole"),
        pytest.param({"prompt_tokens": 3, "completion_tokens": 4}, {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}, id="total-summed"),
        pytest.param({"completion_tokens": 4}, {"input_tokens": 0, "output_tokens": 4, "total_tokens": 4}, id="no-prompt"),
        pytest.param({"prompt_tokens": 3}, {"input_tokens": 3, "output_tokens": 0, "total_tokens": 3}, id="no-completion"),
        pytest.param({"prompt_tokens": None, "completion_tokens_details": None, "total_tokens": 9}, {"input_tokens": 0, "output_tokens": 0, "total_tokens": 9}, id="nulls"),
        pytest.param({}, {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}, id="empty"),
        pytest.param({"prompt_tokens": "3", "completion_tokens": 2.5, "total_tokens": True}, {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}, id="not-whole-numbers"),
        pytest.param({"prompt_tokens": -3, "completion_tokens": 4, "total_tokens": -1}, {"input_tokens": 0, "output_tokens": 4, "total_tokens": 4}, id="negative"),
        pytest.param({"prompt_tokens_details": {"cached_tokens": "1"}, "completion_tokens_details": [1]}, {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}, id="details-of-the-wrong-type"),
    ],
)  # fmt: skip
def test_usage_in_the_responses_apis_words(usage: dict[str, Any], expected: dict[str, Any]) -> None:
    details = {"input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}
    assert response_usage(usage) == {**details, **expected}


def test_usage_that_is_not_an_object_is_none() -> None:
    assert response_usage([1]) is None
    assert response_usage(None) is None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[]", id="not-an-object"),
        pytest.param(b"{}", id="no-choices"),
        pytest.param(b'{"choices": {"0": {}}}', id="choices-not-a-list"),
        pytest.param(b'{"choices": []}', id="empty-choices"),
        pytest.param(b'{"choices": ["x"]}', id="choice-not-an-object"),
    ],
)
def test_a_body_that_holds_no_completion_is_no_response(body: bytes) -> None:
    # As the relay reads a whole answer (relay/endpoints/course.py): a JSON object, then its Response.
    completion = answer_value(body, "json", Encoding("chat"))
    assert completion is None or as_response(completion, "m", {}, MAX_EVENT_BYTES) is None


def test_a_whole_completion_is_the_response_the_stream_would_end_with() -> None:
    completion = {"model": "upstream-name", "choices": [{"message": {"content": "Hi"}, "finish_reason": "stop"}],
                  "usage": CHAT_USAGE}  # fmt: skip
    response = as_response(completion, "my-model", {"user": "u1"}, MAX_EVENT_BYTES)
    assert normalised(response, {}, int(time.time()) - 1) == response_object(
        "completed", [message("Hi", "completed")], usage=RESPONSES_USAGE, user="u1"
    )


# -- reasoning, refusals, fields of the wrong type, the reply's bounds ---------------------------


def reasoning(text: str, item: str = "rs#1") -> dict[str, Any]:
    return {"type": "reasoning", "id": item, "summary": [{"type": "summary_text", "text": text}]}


def reasoning_added(index: int = 0, item: str = "rs#1") -> list[dict[str, Any]]:
    at = {"item_id": item, "output_index": index, "summary_index": 0}
    return [
        {"type": "response.output_item.added", "output_index": index, "item": {"type": "reasoning", "id": item, "summary": []}},
        {"type": "response.reasoning_summary_part.added", **at, "part": {"type": "summary_text", "text": ""}},
    ]  # fmt: skip


def reasoning_delta(delta: str, index: int = 0, item: str = "rs#1") -> dict[str, Any]:
    return {"type": "response.reasoning_summary_text.delta", "item_id": item, "output_index": index,
            "summary_index": 0, "delta": delta}  # fmt: skip


def reasoning_done(text: str, index: int = 0, item: str = "rs#1") -> list[dict[str, Any]]:
    at = {"item_id": item, "output_index": index, "summary_index": 0}
    return [
        {"type": "response.reasoning_summary_text.done", **at, "text": text},
        {
            "type": "response.reasoning_summary_part.done",
            **at,
            "part": {"type": "summary_text", "text": text},
        },
        {"type": "response.output_item.done", "output_index": index, "item": reasoning(text, item)},
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param({"reasoning_content": "Let me"}, {"reasoning_content": " think."}, id="reasoning-content"),
        pytest.param({"reasoning": "Let me"}, {"reasoning": " think."}, id="reasoning"),
        pytest.param({"reasoning_details": [{"type": "reasoning.text", "text": "Let me"}]},
                     {"reasoning_details": [{"type": "reasoning.summary", "summary": " think."}]}, id="reasoning-details"),
    ],
)  # fmt: skip
def test_reasoning_is_an_item_before_the_message_closed_when_text_begins(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    reply = Translation()
    events = reply.feed(
        chunk({"role": "assistant", **first}),
        chunk(second),
        chunk({"content": "Hi"}),
        chunk({}, finish="stop"),
        b"[DONE]",
    )
    output = [reasoning("Let me think."), message("Hi", "completed")]
    assert events == numbered([
        *STARTED,
        *reasoning_added(),
        reasoning_delta("Let me"),
        reasoning_delta(" think."),
        *reasoning_done("Let me think."),
        *text_added(1),
        text_delta("Hi", 1),
        *text_done("Hi", 1),
        {"type": "response.completed", "response": response_object("completed", output)},
    ])  # fmt: skip
    check_sequence(events)
    assert reply.usage.written == len("Let me think.Hi")


def test_reasoning_in_the_same_delta_as_text_comes_first() -> None:
    reply = Translation()
    events = reply.feed(chunk({"reasoning_content": "Hmm.", "content": "Yes."}, finish="stop"), b"[DONE]")
    assert [e["type"] for e in events[2:-1]] == [
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.reasoning_summary_part.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
    ]  # fmt: skip
    assert events[-1]["response"]["output"] == [reasoning("Hmm."), message("Yes.", "completed")]


def test_reasoning_is_closed_when_a_call_begins_and_more_reasoning_is_a_new_item() -> None:
    reply = Translation()
    events = reply.feed(
        chunk({"reasoning_content": "First"}),
        chunk(call_delta(0, call_id="call_a", name="f", arguments="{}")),
        chunk({"reasoning_content": "Then"}),
        chunk(call_delta(0, arguments="")),  # the same call: no new item, nothing closed
        chunk({}, finish="tool_calls"),
        b"[DONE]",
    )
    call = function_call("fc#1", "call_a", "f", "{}", "completed")
    assert events == numbered([
        *STARTED,
        *reasoning_added(),
        reasoning_delta("First"),
        *reasoning_done("First"),
        {"type": "response.output_item.added", "output_index": 1, "item": {**call, "arguments": "", "status": "in_progress"}},
        {"type": "response.function_call_arguments.delta", "item_id": "fc#1", "output_index": 1, "delta": "{}"},
        *reasoning_added(2, "rs#2"),
        reasoning_delta("Then", 2, "rs#2"),
        {"type": "response.function_call_arguments.done", "item_id": "fc#1", "output_index": 1, "arguments": "{}"},
        {"type": "response.output_item.done", "output_index": 1, "item": call},
        *reasoning_done("Then", 2, "rs#2"),
        {"type": "response.completed",
         "response": response_object("completed", [reasoning("First"), call, reasoning("Then", "rs#2")])},
    ])  # fmt: skip


def test_a_reply_of_reasoning_only_is_closed_at_the_end() -> None:
    reply = Translation()
    events = reply.feed(chunk({"reasoning": "Hmm"}))
    assert events == numbered([*STARTED, *reasoning_added(), reasoning_delta("Hmm")])
    assert reply.end() == numbered(
        [*reasoning_done("Hmm"), {"type": "response.completed", "response": response_object("completed", [reasoning("Hmm")])}],
        len(events),
    )  # fmt: skip


def test_a_refusal_is_the_replys_text() -> None:
    reply = Translation()
    events = reply.feed(
        chunk({"role": "assistant", "refusal": "I can't"}),
        chunk({"refusal": " help", "content": None}),
        chunk({"content": "!", "refusal": " with that"}),  # both: the text, then the refusal
        chunk({}, finish="stop"),
        b"[DONE]",
    )
    text = "I can't help! with that"
    assert events == numbered([
        *STARTED,
        *text_added(),
        text_delta("I can't"),
        text_delta(" help"),
        text_delta("!"),
        text_delta(" with that"),
        *text_done(text),
        {"type": "response.completed", "response": response_object("completed", [message(text, "completed")])},
    ])  # fmt: skip


def test_tool_calls_without_a_usable_index_are_numbered_by_their_place_in_the_delta() -> None:
    reply = Translation()
    events = reply.feed(
        chunk({"tool_calls": [{"id": "call_a", "function": {"name": "f", "arguments": "1"}},
                              {"index": "1", "id": "call_b", "function": {"name": "g", "arguments": "2"}},
                              {"index": True, "id": "call_c", "function": {"name": "h", "arguments": "3"}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": "+"}}]}),  # call_b's: the second's
        b"[DONE]",
    )  # fmt: skip
    assert [(i["call_id"], i["arguments"]) for i in events[-1]["response"]["output"]] == [
        ("call_a", "1"),
        ("call_b", "2+"),
        ("call_c", "3"),
    ]


def test_arguments_after_a_call_was_closed_are_not_added() -> None:
    reply = Translation()
    events = reply.feed(
        chunk(call_delta(0, call_id="call_a", name="f", arguments="{}"), finish="tool_calls"),
        chunk(call_delta(0, arguments="late")),
        b"[DONE]",
    )
    check_sequence(events)
    assert [i["arguments"] for i in events[-1]["response"]["output"]] == ["{}"]


@pytest.mark.parametrize(
    ("value", "output", "status"),
    [
        pytest.param({"choices": "x"}, None, "", id="choices-not-a-list"),
        # The choice that is no object is absent: the first choice (index 0, or none) is the one told.
        pytest.param({"choices": [5, {"delta": {"content": "later choice"}}]},
                     [message("later choice", "completed")], "completed", id="choice-not-an-object"),
        pytest.param({"choices": {"0": {"delta": {"content": "x"}}}}, None, "", id="choices-an-object"),
        pytest.param({"choices": [{"delta": "Hi"}]}, [], "completed", id="delta-not-an-object"),
        pytest.param({"choices": [{"delta": {"content": 5, "refusal": ["x"], "reasoning_content": {"a": 1},
                                             "reasoning": 2, "reasoning_details": "x"}}]},
                     [], "completed", id="texts-not-strings"),
        pytest.param({"choices": [{"delta": {"content": ""}}]}, [], "completed", id="empty-text"),
        pytest.param({"choices": [{"delta": {"tool_calls": {"index": 0}}}]}, [], "completed", id="tool-calls-not-a-list"),
        pytest.param({"choices": [{"delta": {"tool_calls": [5, "x", None]}}]}, [], "completed", id="calls-not-objects"),
        pytest.param({"choices": [{"delta": {"tool_calls": [{"id": 5, "function": "f"}]}}]},
                     [function_call("fc#1", "call#1", "", "", "completed")], "completed", id="call-fields-not-strings"),
        pytest.param({"choices": [{"delta": {"tool_calls": [{"id": "", "function": {"name": 5, "arguments": {"a": 1}}}]}}]},
                     [function_call("fc#1", "call#1", "", "", "completed")], "completed", id="call-values-not-strings"),
        pytest.param({"choices": [{"delta": {"content": "a"}, "finish_reason": 5}]},
                     [message("a", "completed")], "completed", id="finish-reason-not-a-string"),
        pytest.param({"choices": [{"delta": {"content": "a"}, "finish_reason": ""}]},
                     [message("a", "completed")], "completed", id="finish-reason-empty"),
        pytest.param({"choices": [{"delta": {"content": "a"}}], "usage": "many"},
                     [message("a", "completed")], "completed", id="usage-not-an-object"),
        pytest.param({"choices": [{"delta": {"content": "a"}}], "error": None},
                     [message("a", "completed")], "completed", id="error-null"),
    ],
)  # fmt: skip
def test_a_field_of_the_wrong_type_is_taken_as_absent(
    value: dict[str, Any], output: Any, status: str
) -> None:
    reply = Translation()
    events = reply.feed(value, b"[DONE]")
    if output is None:  # no choice: the reply began, and the relay says there was nothing
        assert events == numbered(STARTED)
        assert reply.translator.replied is False
        return
    check_sequence(events)
    assert events[-1]["response"] == response_object(status, output)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 3) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=5,
)  # fmt: skip


def mostly(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The value of the right type three times in four, else any JSON value."""
    return st.one_of(strategy, strategy, strategy, _json)


_text = mostly(st.text(max_size=4))
TOLD_NAMES = ["exec_command", "apply_patch", "multi_agent_v1__close_agent", "multi_agent_v1__script"]
_call = mostly(
    st.fixed_dictionaries(
        {},
        optional={
            "index": mostly(st.integers(0, 2)),
            "id": _text,
            "type": _text,
            "function": mostly(
                st.fixed_dictionaries(
                    {},
                    # Names of the caller's tools too: a custom tool's, a namespaced function's.
                    optional={"name": st.one_of(_text, st.sampled_from(TOLD_NAMES)), "arguments": _text},
                )
            ),
        },
    )
)
_delta = mostly(
    st.fixed_dictionaries(
        {},
        optional={
            "role": _text,
            "content": _text,
            "refusal": _text,
            "reasoning_content": _text,
            "reasoning": _text,
            "reasoning_details": mostly(
                st.lists(
                    mostly(st.fixed_dictionaries({}, optional={"text": _text, "summary": _text})), max_size=2
                )
            ),
            "tool_calls": mostly(st.lists(_call, max_size=3)),
        },
    )
)
_choice = mostly(
    st.fixed_dictionaries(
        {"delta": _delta},
        optional={
            "index": _json,
            "message": _delta,
            "finish_reason": mostly(st.sampled_from(["stop", "length", "tool_calls", "content_filter"])),
        },
    )
)
_usage = mostly(
    st.fixed_dictionaries(
        {},
        optional={
            "prompt_tokens": mostly(st.integers(0, 9)),
            "completion_tokens": mostly(st.integers(0, 9)),
            "total_tokens": mostly(st.integers(0, 9)),
            "prompt_tokens_details": _json,
            "completion_tokens_details": _json,
        },
    )
)
_chunk = st.one_of(
    st.fixed_dictionaries(
        {"choices": mostly(st.lists(_choice, min_size=1, max_size=2))}, optional={"model": _text}
    ),
    st.fixed_dictionaries({}, optional={"choices": _json, "usage": _usage, "model": _text}),
)


@settings(max_examples=300)
@given(
    st.lists(st.lists(_chunk, min_size=1, max_size=3), max_size=6),
    st.sampled_from(["done", "end", "error event", "note"]),
    _json.filter(lambda error: error is not None),
)
def test_whatever_the_upstream_sends_the_sequence_is_whole_and_numbered(
    reads: list[list[dict[str, Any]]], ending: str, error: Any
) -> None:
    """Every field read by its type: never a crash, and the caller gets a whole, numbered sequence."""
    reply = Translation(tools=codex_names())
    events: list[dict[str, Any]] = []
    for read in reads:
        events += reply.feed(*read)
    if ending == "done":
        events += reply.feed(b"[DONE]")
    elif ending == "error event":
        events += reply.feed({"error": error})
    if ending == "note":
        events += reply.note("the upstream closed the connection")
    else:
        events += reply.end()
    if not reply.translator.replied and reply.translator.error is None:
        events += reply.note("nothing to relay")  # as the relay does (relay/serving/relayed_stream.py)
    check_sequence(events)
    assert reply.feed({"choices": [{"delta": {"content": "late"}}]}) == []
    assert reply.end() == []
    if events[-1]["type"] == "response.failed":
        assert reply.note("again") == []  # told once


@pytest.mark.parametrize(
    ("request_fields", "echoed"),
    [
        pytest.param({}, {}, id="nothing-set"),
        pytest.param({"parallel_tool_calls": True}, {}, id="parallel-true"),
        pytest.param({"parallel_tool_calls": None}, {}, id="parallel-null"),
        pytest.param({"parallel_tool_calls": "no"}, {}, id="parallel-not-a-bool"),
        pytest.param({"parallel_tool_calls": False}, {"parallel_tool_calls": False}, id="parallel-false"),
        pytest.param({"text": "json"}, {}, id="text-not-an-object"),
        pytest.param({"text": {"verbosity": "low"}}, {"text": {"verbosity": "low"}}, id="text-as-sent"),
        pytest.param({"tools": {"type": "function"}}, {}, id="tools-not-a-list"),
        pytest.param({"tool_choice": ""}, {}, id="tool-choice-empty"),
        pytest.param({"metadata": ["x"]}, {}, id="metadata-not-an-object"),
    ],
)
def test_what_the_response_repeats_of_a_request_that_set_little(
    request_fields: dict[str, Any], echoed: dict[str, Any]
) -> None:
    reply = Translation(request_fields)
    events = reply.feed(chunk({"content": "a"}), b"[DONE]")
    assert events[-1]["response"] == response_object("completed", [message("a", "completed")], **echoed)


def test_a_reply_with_more_items_than_the_bound_fails() -> None:
    reply = Translation(limit=64 * 1024 * 1024)  # room for the items' content: their count is the bound
    calls = [chunk(call_delta(n, call_id=f"call_{n}", name="f")) for n in range(MAX_OUTPUT_ITEMS + 1)]
    events = reply.feed(*calls, chunk({"content": "after"}))
    message_text = (
        f"The reply has more than {MAX_OUTPUT_ITEMS} output items, more than this relay translates."
    )
    failure = {"code": "server_error", "message": message_text}
    assert [e["type"] for e in events] == [
        *(e["type"] for e in STARTED),
        *["response.output_item.added"] * MAX_OUTPUT_ITEMS,
        "error",
        "response.failed",
    ]
    check_sequence(events)
    assert events[-2] == {"type": "error", **failure, "param": None, "sequence_number": len(events) - 2}
    final = events[-1]["response"]
    assert (final["status"], final["error"], len(final["output"])) == ("failed", failure, MAX_OUTPUT_ITEMS)
    assert reply.translator.error == message_text
    assert reply.feed(b"[DONE]") == [] and reply.end() == [] and reply.note("again") == []


def test_a_reply_larger_than_its_bound_fails_after_what_it_had_sent() -> None:
    """Events are numbered as they are sent: those before the failure, in the same read too, then the failure."""
    reply = Translation(limit=8192)
    events = reply.feed(
        chunk({"content": "a", **call_delta(0, call_id="call_a", name="f")}),
        chunk(call_delta(0, arguments="x" * 8192)),
        chunk({"content": "after"}),
    )
    message_text = (
        "The reply is larger than this relay translates from chat completions "
        "(8 KiB with the request it repeats); ask for a shorter one."
    )
    failure = {"code": "server_error", "message": message_text}
    output = [message("a", "in_progress"), function_call("fc#1", "call_a", "f", "", "in_progress")]
    assert events == numbered([
        *STARTED,
        *text_added(),
        text_delta("a"),
        {"type": "response.output_item.added", "output_index": 1, "item": output[1]},
        {"type": "error", **failure, "param": None},
        {"type": "response.failed", "response": response_object("failed", output, error=failure)},
    ])  # fmt: skip
    check_sequence(events)


@settings(max_examples=50)
@given(
    st.lists(st.tuples(st.sampled_from(["content", "reasoning_content", "arguments"]), st.text(min_size=1)), min_size=1, max_size=60),
    st.text(max_size=3000),
)  # fmt: skip
def test_every_event_is_within_the_bound_or_the_reply_fails(
    pieces: list[tuple[str, str]], instructions: str
) -> None:
    """The bound counts the request the Response repeats: no event the caller gets is larger than it."""
    limit = 8192
    translator = ChatToResponses("my-model", {"instructions": instructions}, limit)
    out: list[bytes] = []
    for field, piece in pieces:
        delta = (
            call_delta(0, call_id="call_a", name="f", arguments=piece * 40)
            if field == "arguments"
            else {field: piece * 40}
        )
        feed(translator, [json.dumps(chunk(delta)).encode()], out)
    translator.end(out)
    blocks = [block for write in out for block in write.split(b"\n\n")]
    assert all(len(block) <= limit for block in blocks), max(len(block) for block in blocks)
    events = parse_events(out)
    check_sequence(events)
    if events[-1]["type"] == "response.failed":
        assert events[-2]["message"].startswith("The reply is larger than this relay translates")


def test_the_bound_is_the_limit_less_what_the_object_repeats() -> None:
    request = {"instructions": "Be brief.", "user": "u1", "input": "not repeated"}
    repeated = len(jsoncodec.dumps({name: request.get(name) for name in ECHOED}))
    text = "x" * 100
    limit = OBJECT_BYTES + repeated + ITEM_BYTES + len(jsoncodec.dumps(text))
    Draft("m", request, limit).add_text(text)  # just fits
    with pytest.raises(TooLarge):
        Draft("m", request, limit - 1).add_text(text)
    # A call's name and id are its content too.
    with pytest.raises(TooLarge):
        Draft("m", request, limit).add_call(0, "c" * 100, "f", "")
    Draft("m", request, limit).add_call(0, "c" * 80, "f", "")


def test_a_calls_name_and_arguments_take_room_as_they_are_sent() -> None:
    request: dict[str, Any] = {}
    repeated = len(jsoncodec.dumps({name: None for name in ECHOED}))
    room = OBJECT_BYTES + repeated + ITEM_BYTES
    # The id, the name and the first arguments, each as JSON ('"f"' is 3 bytes, '""' is 2).
    limit = room + len(b'"call_1"') + len(b'"f"') + len(b'""')
    Draft("m", request, limit).add_call(0, "call_1", "f", "")  # just fits
    with pytest.raises(TooLarge):
        Draft("m", request, limit).add_call(0, "call_1", "ff", "")
    with pytest.raises(TooLarge):
        Draft("m", request, limit).add_call(0, "call_1", "f", "{")
    Draft("m", request, limit + 1).add_call(0, "call_1", "ff", "")
    Draft("m", request, limit - 1).add_call(0, "call_1", None, "")  # no name: an empty one, '""'


@pytest.mark.parametrize("kind", ["arguments", "reasoning", "text"])
def test_a_piece_of_an_open_item_costs_its_content_alone(kind: str) -> None:
    """An item's own cost (ITEM_BYTES) is taken once, when it opens: 100 pieces of one item fit
    in the room of one item and 100 pieces, and the 101st does not."""
    repeated = len(jsoncodec.dumps({name: None for name in ECHOED}))
    opening = len(b'"call_1"') + len(b'"f"') + len(b'""') if kind == "arguments" else 0
    draft = Draft("m", {}, OBJECT_BYTES + repeated + ITEM_BYTES + opening + 100 * len(b'"x"'))
    add: Callable[[], object] = {
        "arguments": lambda: draft.add_call(0, None, None, "x"),
        "reasoning": lambda: draft.add_reasoning("x"),
        "text": lambda: draft.add_text("x"),
    }[kind]
    if kind == "arguments":
        draft.add_call(0, "call_1", "f", "")
    for _ in range(100):
        add()
    with pytest.raises(TooLarge, match="larger than this relay translates"):
        add()
    assert len(draft.items) == 1


@pytest.mark.parametrize("last", ["reasoning", "text", "call"])
def test_no_kind_of_item_opens_past_the_bound(last: str) -> None:
    draft = Draft("m", {}, 64 * 1024 * 1024)
    for number in range(MAX_OUTPUT_ITEMS):
        draft.add_call(number, f"call_{number}", "f", "")
    with pytest.raises(TooLarge, match=f"more than {MAX_OUTPUT_ITEMS} output items"):
        if last == "reasoning":
            draft.add_reasoning("thinking")
        elif last == "text":
            draft.add_text("hello")
        else:
            draft.add_call(MAX_OUTPUT_ITEMS, "call_x", "f", "")
    assert len(draft.items) == MAX_OUTPUT_ITEMS


def test_one_reads_events_are_written_in_pieces_of_a_bounded_size() -> None:
    """Many events from one upstream read are joined into writes, each about WRITE_BYTES at most."""
    translator = ChatToResponses("my-model", {}, 64 * 1024 * 1024)
    out: list[bytes] = []
    feed(translator, [json.dumps(chunk({"content": "x" * 100})).encode() for _ in range(10_000)], out)
    largest_event = max(len(block) for write in out for block in write.split(b"\n\n"))
    assert len(out) > 1
    assert all(len(write) <= WRITE_BYTES + largest_event + 2 for write in out), max(map(len, out))
    assert "".join(e["delta"] for e in parse_events(out) if e["type"] == "response.output_text.delta") == (
        "x" * 100 * 10_000
    )


def test_a_whole_completion_without_a_first_choice_is_no_response() -> None:
    """A Response tells the first choice only: a completion of another choice alone holds no reply."""
    completion = {"choices": [{"index": 1, "message": {"role": "assistant", "content": "second"}}]}
    assert completion_as_chunks(completion) is not None
    assert as_response(completion, "m", {}, MAX_EVENT_BYTES) is None


def test_the_request_the_response_repeats_leaves_less_room() -> None:
    def fits(request: dict[str, Any]) -> int:
        draft, pieces = Draft("m", request, 8192), 0
        try:
            while True:
                draft.add_text("x" * 100)
                pieces += 1
        except TooLarge:
            return pieces

    assert fits({"instructions": "i" * 2000, "input": "x" * 5000}) < fits({"input": "x" * 5000}) - 15


def test_the_output_is_empty_while_the_reply_is_in_progress() -> None:
    draft = Draft("m", {})
    draft.add_text("a")
    assert draft.response("in_progress")["output"] == []
    assert [item["type"] for item in draft.response("failed")["output"]] == ["message"]


def test_a_whole_completion_larger_than_the_bound_is_a_failed_response() -> None:
    completion = {"choices": [{"message": {"content": "x" * 8192}, "finish_reason": "stop"}]}
    response = as_response(completion, "my-model", {}, 8192)
    assert response is not None
    assert (response["status"], response["error"]["code"]) == ("failed", "server_error")
    assert response["error"]["message"].startswith("The reply is larger than this relay translates")


def test_an_item_that_outgrew_the_bound_as_it_opened_is_not_in_the_failed_reply() -> None:
    # The message item is opened, then its first piece does not fit: no event told it, so the
    # Response the reply failed with should not list it.
    reply = Translation(limit=8192)
    events = reply.feed(chunk({"content": "x" * 8192}))
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "error",
        "response.failed",
    ]
    assert events[-1]["response"]["output"] == []


def test_a_call_id_that_json_escapes_is_counted_as_it_is_written() -> None:
    translator = ChatToResponses("my-model", {}, 8192)
    out: list[bytes] = []
    payload = chunk({"tool_calls": [{"index": 0, "id": "\x00" * 3000, "function": {"name": "f"}}]})
    feed(translator, [json.dumps(payload).encode(), b"[DONE]"], out)
    blocks = [block for write in out for block in write.split(b"\n\n")]
    assert all(len(block) <= 8192 for block in blocks), max(len(block) for block in blocks)


def test_a_whole_completion_of_several_choices_is_the_first_choices_response() -> None:
    # The Responses API has one reply, the first choice's; before the chunks, as_response read only it.
    completion = {"choices": [{"message": {"content": "a"}}, {"index": 1, "message": {"content": "b"}}]}
    response = as_response(completion, "my-model", {}, MAX_EVENT_BYTES)
    assert response is not None
    assert [item["content"][0]["text"] for item in response["output"]] == ["a"]


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
    ).body
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
        pytest.param({"tools": [{"type": "file_search"}]}, '"tools[0].type"', id="file-search"),
        pytest.param({"input": [{"role": "robot", "content": "x"}]}, '"input[0].role"', id="role"),
        pytest.param({"input": [{"type": "function_call", "call_id": 5, "name": "f", "arguments": "{}"}]},
                     '"input[0].call_id"', id="call-id"),
        pytest.param({"text": {"format": {"type": "xml"}}}, '"text.format.type"', id="format"),
        pytest.param({"tool_choice": {"type": "web_search"}}, '"tool_choice"', id="tool-choice"),
    ],
)  # fmt: skip
def test_what_chat_completions_cannot_carry_is_refused_by_name(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(BadRequest) as caught:
        as_chat_completions({"model": "m", "input": "Hi", **fields}, "max_tokens", "refuse")
    assert named in caught.value.message


FUNCTION = {"type": "function", "name": "f"}
CODEX_NAMESPACE = {"type": "namespace", "name": "ns", "tools": [FUNCTION, {"type": "custom", "name": "g"}]}


@pytest.mark.parametrize(
    ("fields", "allowed", "sent", "omitted"),
    [
        pytest.param({"tools": [FUNCTION, {"type": "custom", "name": "g"}]}, (), None, [], id="token-only"),
        pytest.param({}, (), None, [], id="no-tools"),
        pytest.param({"tools": [{"type": "code_interpreter"}]}, ("code_interpreter",), None, [], id="allowed-by-type"),
        pytest.param({"tools": [CODEX_NAMESPACE, {"type": "tool_search", "execution": "client"}]}, (), None, [],
                     id="namespace-and-a-search-the-caller-runs"),
        pytest.param({"tools": [{"type": "local_shell"}, {"type": "apply_patch"}]}, (), None, [],
                     id="openais-tools-the-caller-runs"),
        pytest.param({"tools": [FUNCTION, {"type": "web_search"}], "tool_choice": {"type": "web_search"}}, (),
                     {"tools": [FUNCTION]}, ["web_search"], id="built-in-and-its-tool-choice"),
        pytest.param({"tools": [{"type": "tool_search"}, {"type": "tool_search", "execution": "server"}]}, (),
                     {"tools": []}, ["tool_search"], id="a-search-the-upstream-runs"),
        pytest.param({"tools": [{"type": "namespace", "name": "ns", "tools": [FUNCTION, {"type": "mcp"}]}]}, (),
                     {"tools": [{"type": "namespace", "name": "ns", "tools": [FUNCTION]}]}, ["mcp"], id="in-a-namespace"),
        pytest.param({"tools": [{"type": "namespace", "name": "ns", "tools": [CODEX_NAMESPACE]}]}, (),
                     {"tools": [{"type": "namespace", "name": "ns", "tools": []}]}, ["namespace"],
                     id="a-namespace-in-a-namespace"),
        pytest.param({"input": [{"type": "additional_tools", "tools": [FUNCTION, {"type": "image_generation"}]}]}, (),
                     {"input": [{"type": "additional_tools", "tools": [FUNCTION]}]}, ["image_generation"],
                     id="in-the-input"),
        pytest.param({"input": ["Hi", {"type": "additional_tools", "tools": [CODEX_NAMESPACE]}]}, (), None, [],
                     id="a-namespace-in-the-input-beside-a-string"),
    ],
)  # fmt: skip
def test_under_a_token_cap_a_tool_that_costs_beyond_tokens_is_left_out_or_refused(
    fields: dict[str, Any], allowed: tuple[str, ...], sent: dict[str, Any] | None, omitted: list[str]
) -> None:
    data = {"model": "m", "input": "Hi", **fields}
    assert (
        leave_out_billed_tools(copy.deepcopy(data), allowed, "refuse" if not omitted else "omit") == omitted
    )
    left = copy.deepcopy(data)
    leave_out_billed_tools(left, allowed, "omit")
    expected = {**data, **(sent or {})}
    if omitted:
        expected.pop("tool_choice", None)  # it named a tool left out
    assert left == expected
    if omitted:
        with pytest.raises(BadRequest) as caught:
            leave_out_billed_tools(copy.deepcopy(data), allowed, "refuse")
        assert caught.value.message.endswith(
            "a tool the upstream runs itself, billed beyond the tokens this relay caps (MAX_TOKENS_LIMIT). Its "
            'owner can allow that type (ALLOWED_FIELDS); "function" and "custom" tools, and namespaces of them, pass.'
        )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"tools": [FUNCTION, {"type": "web_search"}]}, '"tools[1].type" is "web_search": ', id="tools"),
        pytest.param({"input": ["Hi", {"type": "additional_tools", "tools": [{"type": "image_generation"}]}]},
                     '"input[1].tools[0].type" is "image_generation": ', id="in-the-input"),
        pytest.param({"tools": [{"type": "namespace", "name": "ns", "tools": [FUNCTION, {"type": "mcp"}]}]},
                     '"tools[0].tools[1].type" is "mcp": ', id="in-a-namespace"),
    ],
)  # fmt: skip
def test_a_refused_tool_is_named_where_it_was_offered(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        leave_out_billed_tools({"model": "m", "input": "Hi", **fields}, (), "refuse")
    assert caught.value.message.startswith(message + "a tool the upstream runs itself")


def test_a_tools_type_of_the_wrong_kind_is_named_with_its_kind() -> None:
    for unsupported in ("omit", "refuse"):
        with pytest.raises(BadRequest) as caught:
            leave_out_billed_tools(
                {"model": "m", "input": "Hi", "tools": [{"type": ["function"]}]}, (), unsupported
            )
        assert (
            caught.value.message
            == '"tools[0].type" is a list; a tool\'s type is a string such as "function".'
        )


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        pytest.param([{"name": "f"}], '"tools[0].type" is missing; a tool\'s type is a string such as "function".',
                     id="type-missing"),
        pytest.param({"type": "function"}, '"tools" must be a list of tools, got an object.', id="not-a-list"),
        pytest.param([["function"]], '"tools[0]" must be a tool object, got a list.', id="tool-not-an-object"),
        pytest.param([{"type": "namespace", "tools": 5}], '"tools[0].tools" must be a list of tools, got a number.',
                     id="namespace-tools-not-a-list"),
    ],
)  # fmt: skip
def test_under_a_token_cap_a_malformed_tool_is_refused_whatever_the_setting(tools: Any, message: str) -> None:
    for unsupported in ("omit", "refuse"):
        with pytest.raises(BadRequest) as caught:
            leave_out_billed_tools({"model": "m", "input": "Hi", "tools": tools}, (), unsupported)
        assert caught.value.message == message


def chat_of(unsupported_tools: str = "omit", **fields: Any) -> dict[str, Any]:
    """The chat completions body for a request with these fields (model "m", input "Hi" unless given)."""
    data = {"model": "m", "input": "Hi", **fields}
    return as_chat_completions(data, "max_completion_tokens", unsupported_tools).body


def refusal(**fields: Any) -> str:
    with pytest.raises(BadRequest) as caught:
        chat_of("refuse", **fields)
    assert caught.value.status == 400
    return caught.value.message


STATE_NEEDED = (
    "needs an upstream that keeps state (the Responses API); this model's upstream speaks only chat "
    'completions. Send the whole conversation in "input" instead.'
)
LONG = "x" * 100


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"previous_response_id": "resp_1"}, f'"previous_response_id" {STATE_NEEDED}', id="previous-response"),
        pytest.param({"conversation": {"id": "conv_1"}}, f'"conversation" {STATE_NEEDED}', id="conversation"),
        pytest.param({"prompt": {"id": "pmpt_1"}}, f'"prompt" {STATE_NEEDED}', id="prompt"),
        pytest.param({"background": True}, f'"background" {STATE_NEEDED}', id="background"),
        pytest.param({"store": True}, '"store": true needs an upstream that keeps responses (the Responses API); '
                     "this model's upstream speaks only chat completions. Leave it out, or set it to false.", id="store"),
        pytest.param({"instructions": 5}, '"instructions" must be a string, got a number.', id="instructions"),
        pytest.param({"input": ["Hi"]}, '"input[0]" must be an input item object, got a string.', id="item-not-object"),
        pytest.param({"input": [{"type": "file_search_call"}]}, '"input[0].type" is "file_search_call", which has no '
                     "equivalent in chat completions (this model's upstream speaks only those); send messages, "
                     "tool calls and their outputs.", id="item-type"),
        pytest.param({"input": [{"role": "tool", "content": "x"}]}, '"input[0].role" must be one of assistant, '
                     "developer, system, user.", id="role"),
        pytest.param({"input": [{"role": "user"}]}, '"input[0].content" must be a string or a list of content '
                     "parts, got null.", id="content-missing"),
        pytest.param({"input": [{"role": "user", "content": {"type": "input_text"}}]}, '"input[0].content" must be '
                     "a string or a list of content parts, got an object.", id="content-an-object"),
        pytest.param({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
                     "\"input[0].content[0].type\" is \"input_file\"; this model's upstream (chat completions) takes "
                     'text and image parts only ("input_text", "input_image").', id="file-part"),
        pytest.param({"input": [{"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}]},
                     "\"input[0].content[0].type\" is \"refusal\"; this model's upstream (chat completions) takes "
                     'text and image parts only ("input_text", "input_image").', id="refusal-not-the-users"),
        pytest.param({"input": [{"role": "user", "content": [{"text": "no type"}]}]},
                     "\"input[0].content[0].type\" is missing; this model's upstream (chat completions) takes "
                     'text and image parts only ("input_text", "input_image").', id="part-type-missing"),
        pytest.param({"input": [{"role": "user", "content": [{"type": "input_text", "text": 1}]}]},
                     '"input[0].content[0].text" must be a string, got a number.', id="text-not-a-string"),
        pytest.param({"input": [{"role": "assistant", "content": [{"type": "refusal"}]}]},
                     '"input[0].content[0].refusal" must be a string, got null.', id="refusal-missing"),
        pytest.param({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
                     '"input[0].content[0].image_url" must be a URL or a data: URL; an image by file_id needs '
                     "the Responses API's own file store, which this model's upstream does not have.", id="image-by-file-id"),
        pytest.param({"input": [{"type": "function_call", "call_id": "a", "arguments": "{}"}]},
                     '"input[0].name" must be a string, got null.', id="call-name"),
        pytest.param({"input": [{"type": "function_call", "call_id": "a", "name": "f"}]},
                     '"input[0].arguments" must be a string, got null.', id="call-arguments"),
        pytest.param({"input": [{"type": "function_call_output", "output": "x"}]},
                     '"input[0].call_id" must be a string, got null.', id="output-call-id"),
        pytest.param({"input": [{"type": "function_call_output", "call_id": "a", "output": {"x": 1}}]},
                     '"input[0].output" must be a string or a list of content parts.', id="output-object"),
        pytest.param({"input": [{"type": "function_call_output", "call_id": "a", "output": [{"type": "refusal", "refusal": "no"}]}]},
                     "\"input[0].output[0].type\" is \"refusal\"; this model's upstream (chat completions) takes "
                     'text and image parts only ("input_text", "input_image").', id="output-part"),
        pytest.param({"tools": {"type": "function"}}, '"tools" must be a list of tools, got an object.', id="tools-not-a-list"),
        pytest.param({"tools": [{"type": "function", "name": "f"}, {"type": "web_search"}]},
                     "\"tools[1].type\" is \"web_search\": a tool the upstream runs itself, which this model's "
                     "upstream (it speaks only chat completions) cannot run. Leave the tool out: this relay's owner "
                     "refuses such a request rather than send it without the tool (UNSUPPORTED_TOOLS=refuse).",
                     id="built-in-tool"),
        pytest.param({"tools": [{"type": 5, "name": "f"}]}, "\"tools[0].type\" is a number; a tool's type is a "
                     'string such as "function", "custom" or "namespace".', id="tool-type-a-number"),
        pytest.param({"tools": [{"type": "function"}]}, '"tools[0].name" must be a string, got null.', id="tool-name"),
        pytest.param({"tool_choice": {"type": "function"}}, '"tool_choice" must be "auto", "none", "required" or '
                     '{"type": "function", "name": ...} here.', id="tool-choice-without-name"),
        pytest.param({"tool_choice": {"type": "web_search", "name": "f"}}, '"tool_choice" must be "auto", "none", '
                     '"required" or {"type": "function", "name": ...} here.', id="tool-choice-built-in"),
        pytest.param({"tool_choice": 5}, '"tool_choice" must be "auto", "none", "required" or '
                     '{"type": "function", "name": ...} here.', id="tool-choice-number"),
        pytest.param({"text": {"format": {"type": "xml"}}}, '"text.format.type" must be text, json_object or '
                     "json_schema.", id="format-type"),
        pytest.param({"text": {"format": "json"}}, '"text.format.type" must be text, json_object or '
                     "json_schema.", id="format-not-an-object"),
        # What a caller sent is quoted at most 64 characters long.
        pytest.param({"input": [{"type": LONG}]}, f'"input[0].type" is "{LONG[:64]}", which has no equivalent in '
                     "chat completions (this model's upstream speaks only those); send messages, tool calls "
                     "and their outputs.", id="long-item-type-cut"),
        pytest.param({"input": [{"role": "user", "content": [{"type": LONG}]}]}, f'"input[0].content[0].type" is '
                     f"\"{LONG[:64]}\"; this model's upstream (chat completions) takes text and image parts only "
                     '("input_text", "input_image").', id="long-part-type-cut"),
        pytest.param({"tools": [{"type": LONG}]}, f'"tools[0].type" is "{LONG[:64]}": a tool the upstream runs '
                     "itself, which this model's upstream (it speaks only chat completions) cannot run. Leave the "
                     "tool out: this relay's owner refuses such a request rather than send it without the tool "
                     "(UNSUPPORTED_TOOLS=refuse).", id="long-tool-type-cut"),
    ],
)  # fmt: skip
def test_a_refusal_names_the_field_and_says_what_to_do(fields: dict[str, Any], message: str) -> None:
    assert refusal(**fields) == message


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        pytest.param({"input": [{"role": "user", "content": ["Hi"]}]}, '"input[0].content[0]" must be a content part object, got a string.', id="part-not-an-object"),
        pytest.param({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": ""}]}]},
                     '"input[0].content[0].image_url" must be', id="image-url-empty"),
        pytest.param({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": 5}]}]},
                     '"input[0].content[0].image_url" must be', id="image-url-not-a-string"),
        pytest.param({"tools": ["f"]}, '"tools[0]" must be a tool object, got a string.', id="tool-not-an-object"),
    ],
)  # fmt: skip
def test_a_value_of_the_wrong_kind_is_refused_not_a_crash(fields: dict[str, Any], named: str) -> None:
    assert refusal(**fields).startswith(named)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"previous_response_id": None, "conversation": None, "prompt": None}, id="state-null"),
        pytest.param({"background": False, "store": False}, id="background-and-store-false"),
        pytest.param({"text": "not an object"}, id="text-not-an-object-ignored"),
        pytest.param({"text": {"verbosity": "low"}}, id="text-without-format"),
        pytest.param({"text": {"format": None}}, id="format-null"),
        pytest.param({"text": {"format": {"type": "text"}}}, id="format-text"),
        pytest.param({"reasoning": "high"}, id="reasoning-not-an-object"),
        pytest.param({"reasoning": {"summary": "auto"}}, id="reasoning-without-effort"),
        pytest.param({"tools": [], "tool_choice": None}, id="no-tools"),
        pytest.param({"temperature": None, "top_p": None, "user": None, "max_output_tokens": None,
                      "parallel_tool_calls": None, "top_logprobs": None, "stream": False}, id="nulls"),
    ],
)  # fmt: skip
def test_what_asks_nothing_of_a_chat_upstream_adds_nothing(fields: dict[str, Any]) -> None:
    assert chat_of(**fields) == {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.mark.parametrize(
    ("fields", "added"),
    [
        pytest.param({"stream": True}, {"stream": True}, id="stream"),
        pytest.param({"max_output_tokens": 30}, {"max_completion_tokens": 30}, id="max-output-tokens"),
        pytest.param({"temperature": 0}, {"temperature": 0}, id="temperature-zero"),
        pytest.param({"top_p": 0.5}, {"top_p": 0.5}, id="top-p"),
        pytest.param({"parallel_tool_calls": False}, {"parallel_tool_calls": False}, id="parallel-tool-calls"),
        pytest.param({"user": "u1"}, {"user": "u1"}, id="user"),
        pytest.param({"top_logprobs": 2}, {"top_logprobs": 2, "logprobs": True}, id="top-logprobs-asks-logprobs"),
        pytest.param({"reasoning": {"effort": "high"}}, {"reasoning_effort": "high"}, id="reasoning-effort"),
        pytest.param({"tool_choice": "required"}, {"tool_choice": "required"}, id="tool-choice-string"),
        pytest.param({"tool_choice": {"type": "function", "name": "f"}},
                     {"tool_choice": {"type": "function", "function": {"name": "f"}}}, id="tool-choice-function"),
        pytest.param({"tools": [{"type": "function", "name": "f", "description": "d", "parameters": None}]},
                     {"tools": [{"type": "function", "function": {"name": "f", "description": "d"}}]}, id="tool-fields"),
        pytest.param({"text": {"format": {"type": "json_object"}}}, {"response_format": {"type": "json_object"}}, id="json-object"),
        pytest.param({"text": {"format": {"type": "json_schema", "name": "a", "description": "d", "extra": 1}}},
                     {"response_format": {"type": "json_schema", "json_schema": {"name": "a", "description": "d"}}},
                     id="json-schema-fields"),
    ],
)  # fmt: skip
def test_what_chat_completions_can_carry_is_carried(fields: dict[str, Any], added: dict[str, Any]) -> None:
    assert chat_of(**fields) == {"model": "m", "messages": [{"role": "user", "content": "Hi"}], **added}


def test_the_token_field_is_the_one_the_route_takes() -> None:
    data = {"model": "m", "input": "Hi", "max_output_tokens": 9}
    assert as_chat_completions(data, "max_tokens").body["max_tokens"] == 9


def user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(parts)}


def call(call_id: str) -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": "f", "arguments": "{}"}


def chat_call(call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "f", "arguments": "{}"}}


@pytest.mark.parametrize(
    ("items", "messages"),
    [
        pytest.param([{"role": "developer", "content": "Be brief."}, {"type": "message", "role": "user", "content": "Hi"}],
                     [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}], id="string-content"),
        pytest.param([user({"type": "input_text", "text": "a"}, {"type": "output_text", "text": "b"}, {"type": "text", "text": "c"})],
                     [{"role": "user", "content": [{"type": "text", "text": t} for t in "abc"]}], id="text-parts"),
        pytest.param([user({"type": "input_image", "image_url": "https://x/i.png", "detail": "low"},
                           {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": None})],
                     [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/i.png", "detail": "low"}},
                                                   {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]}],
                     id="image-parts"),
        # Chat completions takes only text from these roles: their parts are joined, images left out.
        pytest.param([{"role": "system", "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]}],
                     [{"role": "system", "content": "ab"}], id="system-parts-joined"),
        pytest.param([{"role": "developer", "content": [{"type": "input_text", "text": "a"},
                                                        {"type": "input_image", "image_url": "https://x/i.png"}]}],
                     [{"role": "developer", "content": "a"}], id="developer-image-left-out"),
        pytest.param([{"role": "assistant", "content": [{"type": "output_text", "text": "I "},
                                                        {"type": "refusal", "refusal": "cannot."}]}],
                     [{"role": "assistant", "content": "I cannot."}], id="assistant-refusal-is-text"),
        # Calls of one turn are one assistant message; a call after anything else begins one.
        pytest.param([call("a")], [{"role": "assistant", "content": None, "tool_calls": [chat_call("a")]}], id="call-first"),
        pytest.param([{"role": "assistant", "content": "Looking."}, call("a"), call("b")],
                     [{"role": "assistant", "content": "Looking."},
                      {"role": "assistant", "content": None, "tool_calls": [chat_call("a"), chat_call("b")]}],
                     id="calls-after-assistant-text"),
        pytest.param([call("a"), {"type": "function_call_output", "call_id": "a", "output": "1"}, call("b")],
                     [{"role": "assistant", "content": None, "tool_calls": [chat_call("a")]},
                      {"role": "tool", "tool_call_id": "a", "content": "1"},
                      {"role": "assistant", "content": None, "tool_calls": [chat_call("b")]}],
                     id="calls-of-two-turns"),
        pytest.param([{"type": "function_call_output", "call_id": "a", "output": [
                         {"type": "input_text", "text": "x"}, {"type": "input_image", "image_url": "https://x/i.png"}]}],
                     [{"role": "tool", "tool_call_id": "a", "content": [
                         {"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": "https://x/i.png"}}]}],
                     id="output-parts"),
        pytest.param([{"type": "reasoning", "id": "rs_1"}, {"role": "user", "content": "Hi"}],
                     [{"role": "user", "content": "Hi"}], id="reasoning-left-out"),
    ],
)  # fmt: skip
def test_input_items_become_messages(items: list[Any], messages: list[Any]) -> None:
    assert chat_of(input=items)["messages"] == messages


def test_instructions_come_first_then_a_string_input_as_the_users() -> None:
    assert chat_of(instructions="Be brief.", input="Hi")["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]


# -- the request body ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b'{"model": "m"}', '"input" must be a non-empty string or list of input items, got null.', id="no-input"),
        pytest.param(b'{"model": "m", "input": ""}', '"input" must be a non-empty string or list of input items, got an empty string.', id="empty-string"),
        pytest.param(b'{"model": "m", "input": []}', '"input" must be a non-empty string or list of input items, got an empty list.', id="empty-list"),
        pytest.param(b'{"model": "m", "input": {"role": "user"}}', '"input" must be a non-empty string or list of input items, got an object.', id="object"),
        pytest.param(b'{"input": "Hi"}', '"model" must be a non-empty string such as "gpt-4o-mini", got null.', id="no-model"),
        pytest.param(b"", "The request body is empty; send a JSON object with model and input.", id="empty"),
        pytest.param(b'{"model": "m", "input": "Hi", "metadata": ' + b'[' * 40 + b']' * 40 + b"}",
                     '"metadata" is nested more than 32 levels deep.', id="too-deep"),
    ],
)  # fmt: skip
def test_a_body_that_is_not_a_responses_request_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_responses(body)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("fields", "stream", "tokens"),
    [
        pytest.param({}, False, None, id="neither"),
        pytest.param({"stream": True, "max_output_tokens": 100}, True, 100, id="both"),
        pytest.param({"stream": "true", "max_output_tokens": 100.0}, False, 100, id="string-is-not-true"),
    ],
)
def test_what_the_relay_reads_of_a_responses_request(
    fields: dict[str, Any], stream: bool, tokens: int | None
) -> None:
    request = parse_responses(json.dumps({"model": "m", "input": ["x"], **fields}).encode())
    assert (request.model, request.stream, request.asked_tokens()) == ("m", stream, tokens)
    assert request.data == {"model": "m", "input": ["x"], **fields}


def test_a_token_count_that_is_not_one_is_refused() -> None:
    request = parse_responses(b'{"model": "m", "input": "Hi", "max_output_tokens": 0}')
    with pytest.raises(BadRequest, match='"max_output_tokens" must be a positive whole number, got 0'):
        request.asked_tokens()


# -- the caller's own tools, as functions: namespaces, custom tools; tools the upstream runs ---------

NAMESPACE = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Sub-agents.",
    "tools": [
        {"type": "function", "name": "close_agent", "description": "Close one.", "strict": False,
         "parameters": {"type": "object", "properties": {"target": {"type": "string"}}}},
        {"type": "custom", "name": "script", "description": "Run a script.",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
    ],
}  # fmt: skip
APPLY_PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Patch files.",
    "format": {"type": "text"},
}
SHELL = {"type": "function", "name": "exec_command", "parameters": {"type": "object"}}
CODEX_TOOLS = [SHELL, NAMESPACE, APPLY_PATCH, {"type": "web_search", "external_web_access": False}]
FREEFORM = {"type": "string"}  # the one parameter's type, its description aside


def function_tools(chat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {tool["function"]["name"]: tool["function"] for tool in chat["tools"]}


def test_codexs_tools_become_functions_a_chat_upstream_can_call() -> None:
    translation = as_chat_completions({"model": "m", "input": "Hi", "tools": CODEX_TOOLS}, "max_tokens")
    functions = function_tools(translation.body)
    assert list(functions) == [
        "exec_command",
        "multi_agent_v1__close_agent",
        "multi_agent_v1__script",
        "apply_patch",
    ]
    assert functions["exec_command"] == {"name": "exec_command", "parameters": {"type": "object"}}
    assert functions["multi_agent_v1__close_agent"] == {
        "name": "multi_agent_v1__close_agent", "description": "Sub-agents.\n\nClose one.", "strict": False,
        "parameters": {"type": "object", "properties": {"target": {"type": "string"}}},
    }  # fmt: skip
    script = functions["multi_agent_v1__script"]["parameters"]
    assert script["required"] == ["input"] and script["additionalProperties"] is False
    assert script["properties"]["input"]["type"] == "string"
    assert "lark grammar:\nstart: /.+/" in script["properties"]["input"]["description"]
    patch = functions["apply_patch"]
    assert patch["description"] == "Patch files."
    assert "grammar" not in patch["parameters"]["properties"]["input"]["description"]
    # Each function name tells back the caller's tool.
    names = translation.tools
    assert names.ref("multi_agent_v1__close_agent") == ToolRef("close_agent", "multi_agent_v1")
    assert names.ref("multi_agent_v1__script") == ToolRef("script", "multi_agent_v1", custom=True)
    assert names.ref("apply_patch") == ToolRef("apply_patch", custom=True)
    assert names.ref("exec_command") is None  # a plain function is called by its own name
    assert translation.omitted == ["web_search"]


def test_a_made_name_never_meets_another_tools_and_fits_what_chat_completions_takes() -> None:
    tools = [
        {"type": "function", "name": "ns__f"},  # the name "ns" and "f" would make
        {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "f"}]},
        {"type": "namespace", "name": "n.s", "tools": [{"type": "function", "name": "f"}]},  # fitted: n_s__f
        {"type": "namespace", "name": "n_s", "tools": [{"type": "function", "name": "f"}]},  # so is this one
        {"type": "namespace", "name": "x" * 300, "tools": [{"type": "custom", "name": "y" * 300}]},
        {"type": "namespace", "name": "x" * 300, "tools": [{"type": "custom", "name": "y" * 299 + "z"}]},
        {"type": "namespace", "name": "cx", "tools": [{"type": "function", "name": "y"}]},
        {
            "type": "custom",
            "name": "cx__y",
        },  # a custom tool's own name, after the namespace that would make it
    ]
    translation = as_chat_completions({"model": "m", "input": "Hi", "tools": tools}, "max_tokens")
    names = [tool["function"]["name"] for tool in translation.body["tools"]]
    assert len(set(names)) == len(names) == 8
    assert names[0] == "ns__f" and names[2] == "n_s__f" and names[7] == "cx__y"
    assert names[6].startswith("cx__y_") and translation.tools.ref(names[6]) == ToolRef("y", "cx")
    assert translation.tools.ref("cx__y") == ToolRef("cx__y", custom=True)
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name), name
    assert [translation.tools.ref(name) for name in names[1:6]] == [
        ToolRef("f", "ns"), ToolRef("f", "n.s"), ToolRef("f", "n_s"),
        ToolRef("y" * 300, "x" * 300, custom=True), ToolRef("y" * 299 + "z", "x" * 300, custom=True),
    ]  # fmt: skip
    assert max(map(len, names)) == NAME_LIMIT


def test_a_made_name_of_the_longest_length_is_kept_whole() -> None:
    names = ToolNames()
    exactly = names.chat_name(ToolRef("t" * 32, "n" * 30))
    assert exactly == "n" * 30 + "__" + "t" * 32  # 64 characters: it fits
    longer = names.chat_name(ToolRef("t" * 33, "n" * 30))
    assert len(longer) == 64 and longer.startswith("n" * 30 + "__" + "t" * 23 + "_")


@pytest.mark.parametrize(
    ("form", "said"),
    [
        pytest.param({"type": "grammar", "syntax": "lark", "definition": "start: /x/"},
                     "The tool's input, as plain text (this is a freeform tool). It must follow this lark grammar:\n"
                     "start: /x/", id="grammar"),
        pytest.param({"type": "grammar", "syntax": 5, "definition": "start: /x/"},
                     "The tool's input, as plain text (this is a freeform tool). It must follow this grammar:\n"
                     "start: /x/", id="grammar-of-a-syntax-not-a-string"),
        pytest.param({"type": "grammar", "definition": "start: /x/"},
                     "The tool's input, as plain text (this is a freeform tool). It must follow this grammar:\n"
                     "start: /x/", id="grammar-of-no-syntax"),
        pytest.param({"type": "text"}, "The tool's input, as plain text (this is a freeform tool).", id="text"),
        pytest.param(None, "The tool's input, as plain text (this is a freeform tool).", id="none"),
        pytest.param({"type": "grammar", "definition": 5}, "The tool's input, as plain text (this is a freeform tool).",
                     id="grammar-not-a-string"),
    ],
)  # fmt: skip
def test_a_custom_tool_is_a_function_of_one_string_its_format_said_in_words(form: Any, said: str) -> None:
    assert custom_parameters(form) == {
        "type": "object",
        "properties": {"input": {"type": "string", "description": said}},
        "required": ["input"],
        "additionalProperties": False,
    }


def test_the_made_names_are_the_same_in_every_turn() -> None:
    """An agent sends its tools again each turn: a call of an earlier turn keeps the name it was made with."""
    first = as_chat_completions({"model": "m", "input": "Hi", "tools": CODEX_TOOLS}, "max_tokens")
    again = as_chat_completions({"model": "m", "input": "Hi", "tools": CODEX_TOOLS}, "max_tokens")
    assert first.body == again.body


def test_tools_offered_in_the_input_are_offered_too() -> None:
    """Responses Lite: Codex offers the tools of newer models in an additional_tools input item."""
    offered = {"type": "additional_tools", "id": "at_1", "role": "developer", "tools": [NAMESPACE, SHELL]}
    translation = as_chat_completions(
        {"model": "m", "input": [offered, {"role": "user", "content": "Hi"}]}, "max_tokens"
    )
    assert list(function_tools(translation.body)) == [
        "multi_agent_v1__close_agent", "multi_agent_v1__script", "exec_command",
    ]  # fmt: skip
    assert translation.body["messages"] == [{"role": "user", "content": "Hi"}]


def test_earlier_calls_of_the_callers_tools_are_told_by_their_function_names() -> None:
    history = [
        {"role": "user", "content": "Go."},
        {"type": "reasoning", "id": "rs_1", "summary": [], "content": None, "encrypted_content": None},
        {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "close_agent",
         "namespace": "multi_agent_v1", "arguments": '{"target": "a"}', "status": "completed"},
        {"type": "custom_tool_call", "id": "ctc_1", "call_id": "c2", "name": "apply_patch",
         "input": "*** Begin Patch\n*** End Patch\n", "status": "completed"},
        {"type": "custom_tool_call", "call_id": "c3", "name": "script", "namespace": "multi_agent_v1",
         "input": 'print("hi")'},
        {"type": "function_call_output", "call_id": "c1", "output": "closed"},
        {"type": "custom_tool_call_output", "id": "ctco_1", "call_id": "c2",
         "output": [{"type": "input_text", "text": "Done!"}]},
        {"type": "custom_tool_call_output", "call_id": "c3", "output": "hi"},
    ]  # fmt: skip
    chat = as_chat_completions({"model": "m", "input": history, "tools": CODEX_TOOLS}, "max_tokens").body
    assert chat["messages"] == [
        {"role": "user", "content": "Go."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "multi_agent_v1__close_agent", "arguments": '{"target": "a"}'}},
            {"id": "c2", "type": "function",
             "function": {"name": "apply_patch", "arguments": '{"input":"*** Begin Patch\\n*** End Patch\\n"}'}},
            {"id": "c3", "type": "function",
             "function": {"name": "multi_agent_v1__script", "arguments": '{"input":"print(\\"hi\\")"}'}},
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "closed"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "Done!"}]},
        {"role": "tool", "tool_call_id": "c3", "content": "hi"},
    ]  # fmt: skip


def test_an_earlier_call_of_a_tool_no_longer_offered_still_has_a_name() -> None:
    call = {"type": "function_call", "call_id": "c1", "name": "gone", "namespace": "old", "arguments": "{}"}
    translation = as_chat_completions({"model": "m", "input": [call]}, "max_tokens")
    assert translation.body["messages"][0]["tool_calls"][0]["function"]["name"] == "old__gone"
    assert translation.tools.ref("old__gone") == ToolRef("gone", "old")


@pytest.mark.parametrize(
    ("choice", "chosen"),
    [
        pytest.param({"type": "custom", "name": "apply_patch"}, "apply_patch", id="custom"),
        pytest.param({"type": "function", "name": "close_agent", "namespace": "multi_agent_v1"},
                     "multi_agent_v1__close_agent", id="namespaced-function"),
        pytest.param({"type": "custom", "name": "script", "namespace": "multi_agent_v1"},
                     "multi_agent_v1__script", id="namespaced-custom"),
    ],
)  # fmt: skip
def test_a_tool_choice_names_the_function_its_tool_became(choice: dict[str, Any], chosen: str) -> None:
    chat = chat_of(tools=CODEX_TOOLS, tool_choice=choice)
    assert chat["tool_choice"] == {"type": "function", "function": {"name": chosen}}


@pytest.mark.parametrize(
    ("fields", "omitted", "where"),
    [
        pytest.param({"tools": [SHELL, {"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["v"]},
                                {"type": "web_search"}]}, ["web_search", "file_search"], "tools[1]", id="built-in"),
        pytest.param({"tools": [{"type": "namespace", "name": "ns", "tools": [SHELL, {"type": "mcp"}]}]},
                     ["mcp"], "tools[0].tools[1]", id="in-a-namespace"),
        pytest.param({"tools": [{"type": "tool_search", "execution": "client"}, SHELL]}, ["tool_search"],
                     "tools[0]", id="tool-search"),
        pytest.param({"input": [{"type": "additional_tools", "tools": [{"type": "code_interpreter"}]},
                                {"role": "user", "content": "Hi"}]},
                     ["code_interpreter"], "input[0].tools[0]", id="in-the-input"),
        pytest.param({"tools": [SHELL, {"type": "web_search"}], "tool_choice": {"type": "web_search"}},
                     ["web_search"], "tools[1]", id="and-the-tool-choice-naming-it"),
    ],
)  # fmt: skip
def test_a_tool_the_upstream_would_run_is_left_out_or_refused_by_name(
    fields: dict[str, Any], omitted: list[str], where: str
) -> None:
    data = {"model": "m", "input": "Hi", **fields}
    translation = as_chat_completions(data, "max_tokens")
    assert translation.omitted == omitted
    assert "tool_choice" not in translation.body
    for tool in translation.body.get("tools", ()):
        assert tool["type"] == "function"
    with pytest.raises(BadRequest) as caught:
        as_chat_completions(data, "max_tokens", "refuse")
    assert caught.value.message.startswith(
        f'"{where}.type" is "{omitted[0]}": a tool the upstream runs itself'
    )
    assert caught.value.message.endswith("(UNSUPPORTED_TOOLS=refuse).")


def test_the_tools_left_out_are_named_a_few_times_at_most() -> None:
    tools = [{"type": f"hosted_tool_{number}_" + "x" * 100} for number in range(50)]
    omitted = as_chat_completions({"model": "m", "input": "Hi", "tools": tools}, "max_tokens").omitted
    assert len(omitted) == 8
    assert all(len(name) == 64 for name in omitted)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"tools": [{"type": "namespace", "tools": []}]}, '"tools[0].name" must be a string, got null.',
                     id="namespace-without-name"),
        pytest.param({"tools": [{"type": "namespace", "name": "ns", "tools": "f"}]},
                     '"tools[0].tools" must be a list of tools, got a string.', id="namespace-tools-not-a-list"),
        pytest.param({"tools": [{"type": "namespace", "name": "ns", "tools": [5]}]},
                     '"tools[0].tools[0]" must be a tool object, got a number.', id="namespace-member-not-an-object"),
        pytest.param({"tools": [{"type": "custom"}]}, '"tools[0].name" must be a string, got null.', id="custom-without-name"),
        pytest.param({"input": [{"type": "additional_tools", "tools": None}]},
                     '"input[0].tools" must be a list of tools, got null.', id="additional-tools-not-a-list"),
        pytest.param({"input": [{"type": "custom_tool_call", "call_id": "c", "name": "f", "input": 5}]},
                     '"input[0].input" must be a string, got a number.', id="custom-call-input"),
        pytest.param({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}",
                                 "namespace": 5}]}, '"input[0].namespace" must be a string, got a number.',
                     id="call-namespace"),
        pytest.param({"input": [{"type": "custom_tool_call_output", "call_id": "c"}]},
                     '"input[0].output" must be a string or a list of content parts.', id="custom-output"),
        pytest.param({"tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []}},
                     '"tool_choice" must be "auto", "none", "required" or {"type": "function", "name": ...} here.',
                     id="allowed-tools"),
    ],
)  # fmt: skip
def test_a_malformed_tool_is_refused_by_name_whatever_the_setting(
    fields: dict[str, Any], message: str
) -> None:
    for unsupported in ("omit", "refuse"):
        with pytest.raises(BadRequest) as caught:
            chat_of(unsupported, **fields)
        assert caught.value.message == message


def codex_names() -> ToolNames:
    return as_chat_completions({"model": "m", "input": "Hi", "tools": CODEX_TOOLS}, "max_tokens").tools


def test_a_call_of_a_namespaced_function_is_told_with_its_namespace() -> None:
    reply = Translation(tools=codex_names())
    events = reply.feed(
        chunk(call_delta(0, call_id="call_a", name="multi_agent_v1__close_agent", arguments='{"target"')),
        chunk(call_delta(0, arguments=': "a"}')),
        chunk(call_delta(1, call_id="call_b", name="exec_command", arguments='{"cmd": "ls"}')),
        chunk({}, finish="tool_calls"),
        b"[DONE]",
    )
    check_sequence(events)
    first, second = events[-1]["response"]["output"]
    assert first == {"type": "function_call", "id": "fc#1", "call_id": "call_a", "name": "close_agent",
                     "namespace": "multi_agent_v1", "arguments": '{"target": "a"}', "status": "completed"}  # fmt: skip
    assert second == function_call("fc#2", "call_b", "exec_command", '{"cmd": "ls"}', "completed")
    added = [e["item"] for e in events if e["type"] == "response.output_item.added"]
    assert added[0]["namespace"] == "multi_agent_v1" and added[0]["name"] == "close_agent"


def test_a_custom_tools_call_is_its_input_as_the_model_wrote_it() -> None:
    patch = '*** Begin Patch\n*** Add File: a.txt\n+"hi" \\ there\n*** End Patch\n'
    arguments = json.dumps({"input": patch})
    reply = Translation(tools=codex_names())
    events = reply.feed(
        chunk({"content": "Patching."}),
        chunk(call_delta(0, call_id="call_p", name="apply_patch", arguments=arguments[:10])),
        chunk(call_delta(0, arguments=arguments[10:])),
        chunk({}, finish="tool_calls"),
        b"[DONE]",
    )
    check_sequence(events)
    call = {"type": "custom_tool_call", "id": "ctc#1", "call_id": "call_p", "name": "apply_patch", "input": patch,
            "status": "completed"}  # fmt: skip
    assert events[-1]["response"]["output"][1] == call
    where = {"item_id": "ctc#1", "output_index": 1}
    # No delta while its JSON arrives; its input whole, once, as it closes.
    told = [
        {name: value for name, value in e.items() if name != "sequence_number"}
        for e in events
        if e.get("item_id") == "ctc#1" or e.get("item", {}).get("id") == "ctc#1"
    ]
    assert told == [
        {"type": "response.output_item.added", "output_index": 1, "item": {**call, "input": "", "status": "in_progress"}},
        {"type": "response.custom_tool_call_input.delta", **where, "delta": patch},
        {"type": "response.custom_tool_call_input.done", **where, "input": patch},
        {"type": "response.output_item.done", "output_index": 1, "item": call},
    ]  # fmt: skip
    assert reply.usage.written == len("Patching.") + len("apply_patch") + len(arguments)


@pytest.mark.parametrize(
    ("arguments", "given"),
    [
        pytest.param('{"input": "x", "other": 1}', "x", id="more-than-asked"),
        pytest.param("*** Begin Patch", "*** Begin Patch", id="not-json"),
        pytest.param('{"patch": "x"}', '{"patch": "x"}', id="another-name"),
        pytest.param('{"input": 5}', '{"input": 5}', id="not-a-string"),
        pytest.param("", "", id="nothing"),
    ],
)
def test_a_custom_call_whose_arguments_are_not_as_asked_keeps_them_as_they_came(
    arguments: str, given: str
) -> None:
    reply = Translation(tools=codex_names())
    events = reply.feed(
        chunk(call_delta(0, call_id="call_p", name="multi_agent_v1__script", arguments=arguments)),
        chunk({}, finish="tool_calls"),
    )
    check_sequence([*events, *reply.end()])
    output = reply.response()["output"]
    assert output == [{"type": "custom_tool_call", "id": "ctc#1", "call_id": "call_p", "name": "script",
                       "namespace": "multi_agent_v1", "input": given, "status": "completed"}]  # fmt: skip


def test_a_whole_completion_tells_the_callers_tools_too() -> None:
    completion = {
        "id": "c", "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None,
                     "reasoning_content": "Patch it.", "tool_calls": [
                         {"id": "c1", "type": "function", "function": {"name": "apply_patch", "arguments": '{"input":"p"}'}},
                         {"id": "c2", "type": "function",
                          "function": {"name": "multi_agent_v1__close_agent", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13,
                  "completion_tokens_details": {"reasoning_tokens": 2}},
    }  # fmt: skip
    response = as_response(completion, "my-model", {}, MAX_EVENT_BYTES, codex_names())
    assert response is not None
    reasoning_, patch, close = response["output"]
    assert reasoning_["type"] == "reasoning" and reasoning_["summary"][0]["text"] == "Patch it."
    assert (patch["type"], patch["name"], patch["input"]) == ("custom_tool_call", "apply_patch", "p")
    assert (close["type"], close["namespace"], close["name"]) == (
        "function_call",
        "multi_agent_v1",
        "close_agent",
    )
    assert response["usage"]["output_tokens_details"] == {"reasoning_tokens": 2}


def test_a_name_the_relay_did_not_make_is_a_plain_function_call() -> None:
    reply = Translation(tools=codex_names())
    events = reply.feed(
        chunk(call_delta(0, call_id="c", name="multi_agent_v1.close_agent", arguments="{}")), b"[DONE]"
    )
    check_sequence(events)
    assert events[-1]["response"]["output"] == [
        function_call("fc#1", "c", "multi_agent_v1.close_agent", "{}", "completed")
    ]


# -- what the mutation run found untested ------------------------------------------------------------


def test_a_tool_choice_of_a_custom_tool_with_a_namespace_of_the_wrong_type_names_the_tool() -> None:
    body = chat_of(
        tools=[{"type": "custom", "name": "patch"}],
        tool_choice={"type": "custom", "name": "patch", "namespace": 5},
    )
    assert body["tool_choice"] == {"type": "function", "function": {"name": "patch"}}


def test_a_tool_choice_whose_type_is_not_a_string_is_refused() -> None:
    with pytest.raises(BadRequest) as caught:
        chat_of(tools=[FUNCTION], tool_choice={"type": ["function"], "name": "f"})
    assert caught.value.message == (
        '"tool_choice" must be "auto", "none", "required" or {"type": "function", "name": ...} here.'
    )


def test_a_namespaced_tools_description_that_is_not_text_is_left_out() -> None:
    member = {"type": "function", "name": "f", "description": 5, "parameters": {}}
    body = chat_of(tools=[{"type": "namespace", "name": "ns", "description": 7, "tools": [member]}])
    assert body["tools"] == [{"type": "function", "function": {"name": "ns__f", "parameters": {}}}]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"tools": [{"type": "namespace", "name": "ns", "tools": [{"type": "function"}]}]},
                     '"tools[0].tools[0].name" must be a string, got null.', id="namespaced-tool-without-a-name"),
        pytest.param({"input": [{"type": "additional_tools", "tools": 5}]},
                     '"input[0].tools" must be a list of tools, got a number.', id="additional-tools-not-a-list"),
    ],
)  # fmt: skip
def test_a_malformed_tool_is_named_where_it_stands(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        chat_of(**fields)
    assert caught.value.message == message


@pytest.mark.parametrize("arguments", ["", '{"input": ""}'])
def test_a_custom_call_with_no_input_has_no_empty_delta(arguments: str) -> None:
    reply = Translation(tools=codex_names())
    events = reply.feed(
        chunk(call_delta(0, call_id="call_p", name="apply_patch", arguments=arguments)),
        chunk({}, finish="tool_calls"),
    )
    kinds = [e["type"] for e in events if e.get("item_id") == "ctc#1"]
    assert kinds == ["response.custom_tool_call_input.done"]
