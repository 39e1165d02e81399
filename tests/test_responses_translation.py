"""The Responses API on a chat-only upstream, pure: requests to chat completions, chat streams to events."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.errors import BadRequest
from relay.formats.responses import ChatToResponses, as_response, streamed_as_response
from relay.formats.responses_reply import response_usage
from relay.formats.sse import SSEDecoder
from relay.validation.responses_body import check_tools, parse_responses
from relay.validation.responses_to_chat import as_chat_completions


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
    response = streamed_as_response(body, "my-model", {"temperature": 0.5})
    assert response is not None
    assert normalised(response, {}, 0) == response_object(
        "completed", [message("Hello", "completed")], temperature=0.5,
        usage=None if done else {
            "input_tokens": 1, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 2, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 3,
        },
    )  # fmt: skip


def test_a_whole_chat_stream_without_a_reply_is_none() -> None:
    assert streamed_as_response(b'data: {"choices": []}\n\ndata: [DONE]\n\n', "m", {}) is None
    assert streamed_as_response(b"", "m", {}) is None


def test_a_failure_is_an_error_event_then_failed_once() -> None:
    translator = ChatToResponses("m", {})
    translator.translate([json.dumps(chunk({"content": "part"})).encode()])
    note = translator.note("the upstream closed the connection")
    assert b"event: error\n" in note and b"event: response.failed\n" in note
    assert translator.note("again") == b""  # told once


# -- the events, exactly as OpenAI sends them ---------------------------------------------------

GENERATED_ID = re.compile(r"(resp|msg|fc|call)_[0-9a-f]{24}")


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
    """Each event of the writes: `event: <type>` then one `data:` line of JSON, then a blank line."""
    body = b"".join(writes)
    assert body.endswith(b"\n\n") or not body
    parsed = []
    for block in body.split(b"\n\n")[:-1]:
        name, data = block.split(b"\n")
        payload = json.loads(data.removeprefix(b"data: "))
        assert name == b"event: " + payload["type"].encode()
        parsed.append(payload)
    return parsed


class Translation:
    """A ChatToResponses fed JSON payloads, its output parsed with ids and times made comparable."""

    def __init__(self, request: dict[str, Any] | None = None, model: str = "my-model") -> None:
        self.since = int(time.time())
        self.ids: dict[str, str] = {}
        self.translator = ChatToResponses(model, request or {})

    def feed(self, *payloads: Any) -> list[dict[str, Any]]:
        encoded = [p if isinstance(p, bytes) else json.dumps(p).encode() for p in payloads]
        return self.parsed(self.translator.translate(encoded))

    def end(self) -> list[dict[str, Any]]:
        return self.parsed(self.translator.end())

    def note(self, message: str) -> list[dict[str, Any]]:
        return self.parsed([self.translator.note(message)])

    def response(self) -> Any:
        return normalised(self.translator.response(), self.ids, self.since)

    def parsed(self, writes: list[bytes]) -> list[dict[str, Any]]:
        assert len(writes) <= 1  # one write per call
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
    assert reply.translator.usage == CHAT_USAGE  # the log gets the upstream's own words
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


def test_a_whole_message_in_one_chunk_that_ran_out_of_tokens() -> None:
    """`message` for `delta` (an upstream that sent one completion); calls without an index by position."""
    reply = Translation()
    whole = {"role": "assistant", "content": "Hi",
             "tool_calls": [{"id": "call_a", "function": {"name": "f", "arguments": "{}"}},
                            {"id": 7, "function": None}]}  # fmt: skip
    events = reply.feed({"choices": [{"index": 0, "message": whole, "finish_reason": "length"}]})
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
    assert reply.translator.end() == []  # no empty write either


def test_a_stream_with_no_choice_starts_but_does_not_complete() -> None:
    """Nothing was replied: the relay says so (relay/serving/reply.py), not an empty response.completed."""
    reply = Translation()
    assert reply.feed({"choices": [], "usage": CHAT_USAGE}, b"[DONE]") == numbered(STARTED)
    assert (reply.translator.replied, reply.translator.finished) == (False, True)
    assert reply.translator.usage == CHAT_USAGE
    assert reply.translator.end() == []
    assert reply.translator.translate([json.dumps(chunk({"content": "late"})).encode()]) == []


def test_a_batch_that_says_nothing_writes_nothing() -> None:
    translator = ChatToResponses("m", {})
    assert translator.translate([]) == []
    assert translator.translate([b""]) == []
    assert translator.translate([b"not json"]) == []
    assert translator.chunks == 0


def test_counts_for_the_log(caplog: pytest.LogCaptureFixture) -> None:
    translator = ChatToResponses("m", {})
    assert (translator.chunks, translator.skipped, translator.text_chars) == (0, 0, 0)
    assert (translator.usage, translator.error, translator.packet, translator.replied) == (
        None,
        None,
        None,
        False,
    )
    with caplog.at_level(logging.WARNING, logger="relay.formats.jsoncodec"):
        translator.translate([b"[1]", json.dumps(chunk({"content": "é中"})).encode(), b"{bad"])
        translator.translate([json.dumps(chunk({"content": "😀"})).encode(), b""])
    assert (translator.chunks, translator.skipped, translator.text_chars) == (2, 2, 3)
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
        pytest.param("plain", "server_error", '"plain"', id="string"),
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
    assert reply.translator.note("and then the relay failed") == b""  # told once


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
    assert reply.translator.note("again") == b""
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
    ],
)  # fmt: skip
def test_usage_in_the_responses_apis_words(usage: dict[str, Any], expected: dict[str, Any]) -> None:
    details = {"input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}
    assert response_usage(usage) == {**details, **expected}


def test_usage_that_is_not_an_object_is_none() -> None:
    assert response_usage([1]) is None
    assert response_usage(None) is None


@pytest.mark.parametrize(
    "completion",
    [
        pytest.param([], id="not-an-object"),
        pytest.param({}, id="no-choices"),
        pytest.param({"choices": {"0": {}}}, id="choices-not-a-list"),
        pytest.param({"choices": []}, id="empty-choices"),
        pytest.param({"choices": ["x"]}, id="choice-not-an-object"),
    ],
)
def test_a_body_that_holds_no_completion_is_no_response(completion: Any) -> None:
    assert as_response(completion, "m", {}) is None


def test_a_whole_completion_is_the_response_the_stream_would_end_with() -> None:
    completion = {"model": "upstream-name", "choices": [{"message": {"content": "Hi"}, "finish_reason": "stop"}],
                  "usage": CHAT_USAGE}  # fmt: skip
    response = as_response(completion, "my-model", {"user": "u1"})
    assert normalised(response, {}, int(time.time()) - 1) == response_object(
        "completed", [message("Hi", "completed")], usage=RESPONSES_USAGE, user="u1"
    )


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
        as_chat_completions({"model": "m", "input": "Hi", **fields}, "max_tokens")
    assert named in caught.value.message


@pytest.mark.parametrize(
    ("tools", "allowed", "message"),
    [
        pytest.param([{"type": "function", "name": "f"}, {"type": "custom", "name": "g"}], (), None, id="token-only"),
        pytest.param(None, (), None, id="no-tools"),
        pytest.param([{"type": "code_interpreter"}], ("code_interpreter",), None, id="allowed-by-type"),
        pytest.param([{"type": "function", "name": "f"}, {"type": "image_generation"}], ("tools",),
                     '"tools[1].type" is "image_generation": a tool the upstream runs itself, billed beyond the '
                     "tokens this relay caps (MAX_TOKENS_LIMIT). Its owner can allow that type (ALLOWED_FIELDS); "
                     '"function" and "custom" tools pass.', id="built-in"),
        pytest.param([{"name": "f"}], (), '"tools[0].type" is missing: a tool', id="type-missing"),
        pytest.param({"type": "function"}, (), '"tools" must be a list of tools, got an object.', id="not-a-list"),
        pytest.param([["function"]], (), '"tools[0]" must be a tool object, got a list.', id="tool-not-an-object"),
    ],
)  # fmt: skip
def test_under_a_token_cap_only_tools_that_cost_tokens_pass(
    tools: Any, allowed: tuple[str, ...], message: str | None
) -> None:
    data = {"model": "m", "input": "Hi", "tools": tools}
    if message is None:
        check_tools(data, allowed)
        return
    with pytest.raises(BadRequest) as caught:
        check_tools(data, allowed)
    assert caught.value.message.startswith(message)


def chat_of(**fields: Any) -> dict[str, Any]:
    """The chat completions body for a request with these fields (model "m", input "Hi" unless given)."""
    return as_chat_completions({"model": "m", "input": "Hi", **fields}, "max_completion_tokens")


def refusal(**fields: Any) -> str:
    with pytest.raises(BadRequest) as caught:
        chat_of(**fields)
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
                     "function calls and their outputs.", id="item-type"),
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
                     "\"tools[1].type\" is \"web_search\"; this model's upstream speaks only chat completions, "
                     'which take "function" tools only.', id="built-in-tool"),
        pytest.param({"tools": [{"type": 5, "name": "f"}]}, "\"tools[0].type\" is a number; this model's upstream "
                     'speaks only chat completions, which take "function" tools only.', id="tool-type-a-number"),
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
                     "chat completions (this model's upstream speaks only those); send messages, function calls "
                     "and their outputs.", id="long-item-type-cut"),
        pytest.param({"input": [{"role": "user", "content": [{"type": LONG}]}]}, f'"input[0].content[0].type" is '
                     f"\"{LONG[:64]}\"; this model's upstream (chat completions) takes text and image parts only "
                     '("input_text", "input_image").', id="long-part-type-cut"),
        pytest.param({"tools": [{"type": LONG}]}, f'"tools[0].type" is "{LONG[:64]}"; this model\'s upstream speaks '
                     'only chat completions, which take "function" tools only.', id="long-tool-type-cut"),
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
    assert as_chat_completions(data, "max_tokens")["max_tokens"] == 9


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
