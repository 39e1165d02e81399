"""The OpenAI API's streams passed on event by event, and a whole completion as its chunks and back.

relay/formats/chat_events.py (chat completions), relay/formats/responses_passthrough.py (the
Responses API), relay/formats/chat_chunks.py (a completion as chunks, chunks as a completion),
each fed as the relay's loop feeds an encoder (relay/formats/encoding.py). No network.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.access.usage import Usage
from relay.endpoints.course import whole_as_events
from relay.formats import jsoncodec
from relay.formats.chat_chunks import chunks_as_completion, completion_as_chunks, reasoning_of
from relay.formats.chat_events import DONE_EVENT, ChatEvents, error_event
from relay.formats.encoding import Encoder, Tally, encode
from relay.formats.responses_passthrough import ENDS, ResponsesPassThrough
from tests.fake_upstream import chunk


def payload(value: Any) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()


class Relayed:
    """An encoder fed as the relay's loop feeds it: its writes, the log's counts, the reply's usage."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.tally = Tally()
        self.usage = Usage()
        responses = isinstance(encoder, ResponsesPassThrough)
        self.observe = self.usage.responses_event if responses else self.usage.chat_chunk

    def read(self, *values: Any) -> list[bytes]:
        """The writes for one upstream read of these payloads (JSON values, or bytes as they are)."""
        out: list[bytes] = []
        encode(self.encoder, [payload(value) for value in values], out, self.tally, self.observe)
        return out

    def end(self) -> list[bytes]:
        out: list[bytes] = []
        self.encoder.end(out)
        return out

    def note(self, message: str) -> list[bytes]:
        out: list[bytes] = []
        self.encoder.note(message, out)
        return out


def chat(*, hide_usage: bool = False) -> Relayed:
    return Relayed(ChatEvents(hide_usage=hide_usage))


def usage_chunk(total: int = 3) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": {"total_tokens": total}}


# -- chat completions ---------------------------------------------------------------------------


def test_each_event_goes_out_as_the_upstream_wrote_it_in_one_write_per_read() -> None:
    first, second = payload(chunk("Hel", role="assistant")), payload(chunk("lo"))
    stream = chat()
    assert stream.read(first, second) == [b"data: " + first + b"\n\ndata: " + second + b"\n\n"]
    assert stream.read(b'{"x": 1 }') == [b'data: {"x": 1 }\n\n']  # bytes untouched
    assert stream.tally == Tally(chunks=3, skipped=0)
    assert stream.encoder.replied


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(usage_chunk(), id="usage-chunk"),
        pytest.param({"choices": [], "prompt_filter_results": [{"index": 0}]}, id="empty-choices"),
        pytest.param({"error": {"message": "Rate limit", "type": "x"}}, id="error-event"),
        pytest.param(
            {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": "f"}}]}}]},
            id="tool-call-delta",
        ),
    ],
)
def test_events_the_original_route_drops_are_passed_on(value: dict[str, Any]) -> None:
    stream = chat()
    # An error event is the caller's to read, as it came: no note of the relay's after it.
    assert stream.read(value) == [b"data: " + payload(value) + b"\n\n"]
    # It is kept for the log's outcome only.
    assert stream.encoder.error == ("error event in the stream" if "error" in value else None)


def test_an_error_field_of_null_is_no_error() -> None:
    stream = chat()
    stream.read({**chunk("a"), "error": None})
    assert stream.encoder.error is None


def test_the_first_error_event_is_the_one_kept() -> None:
    stream = chat()
    stream.encoder.error = "kept"
    stream.read({"error": {"message": "second"}})
    assert stream.encoder.error == "kept"


def test_data_on_several_lines_goes_out_on_several_lines() -> None:
    assert chat().read(b'{"a":\n1}') == [b'data: {"a":\ndata: 1}\n\n']


def test_done_is_passed_on_and_ends_the_stream() -> None:
    stream = chat()
    writes = stream.read(chunk("a"), b"[DONE]", chunk("after"))
    assert writes == [b"data: " + payload(chunk("a")) + b"\n\n", DONE_EVENT]
    assert stream.encoder.finished is True
    assert stream.tally.chunks == 1  # what follows [DONE] is not read
    assert stream.end() == []  # no second [DONE]


def test_done_before_any_event_writes_nothing() -> None:
    # The relay tells the caller there was nothing to relay; a bare [DONE] would read as an empty reply.
    stream = chat()
    assert stream.read(b"[DONE]") == []
    assert stream.encoder.finished is True
    assert stream.encoder.replied is False
    assert stream.end() == []


def test_a_stream_that_ends_without_done_gets_one() -> None:
    stream = chat()
    stream.read(chunk("a"))
    assert stream.encoder.finished is False
    assert stream.end() == [DONE_EVENT]
    assert stream.encoder.finished is True
    assert stream.end() == []  # once


def test_a_stream_that_ends_with_nothing_gets_no_done() -> None:
    stream = chat()
    assert stream.end() == []
    assert (stream.encoder.finished, stream.encoder.replied) == (False, False)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b"{not json", id="broken"),
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b"null", id="null"),
        pytest.param(b"\xff", id="not-utf8"),
    ],
)
def test_data_that_is_not_a_json_object_is_skipped_counted_and_logged_by_size(
    bad: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    stream = chat()
    with caplog.at_level(logging.WARNING, logger="relay.formats.jsoncodec"):
        writes = stream.read(bad, chunk("a"), bad)
    assert writes == [b"data: " + payload(chunk("a")) + b"\n\n"]
    assert stream.tally == Tally(chunks=1, skipped=2)
    # The size only: the payload may hold the user's conversation.
    expected = f"Skipped an upstream event that is not a JSON object ({len(bad)} bytes)"
    assert [record.getMessage() for record in caplog.records] == [expected, expected]


def test_empty_data_is_neither_passed_on_nor_counted(caplog: pytest.LogCaptureFixture) -> None:
    stream = chat()
    with caplog.at_level(logging.WARNING, logger="relay.formats.jsoncodec"):
        assert stream.read(b"") == []
    assert (stream.tally, stream.encoder.replied) == (Tally(chunks=0, skipped=0), False)
    assert caplog.records == []


def test_a_read_of_nothing_writes_nothing() -> None:
    stream = chat()
    assert stream.read() == []
    assert stream.encoder.replied is False


@pytest.mark.parametrize(
    ("hide_usage", "value", "passed"),
    [
        pytest.param(False, usage_chunk(), True, id="asked-usage-chunk-passed"),
        pytest.param(True, usage_chunk(), False, id="hidden-usage-chunk-dropped"),
        pytest.param(True, {**chunk("a"), "usage": {"total_tokens": 3}}, True, id="usage-on-a-choice-passed"),
        pytest.param(True, {"choices": [], "usage": None}, True, id="null-usage-passed"),
        pytest.param(True, {"choices": []}, True, id="no-usage-passed"),
    ],
)
def test_hide_usage_drops_only_the_usage_chunk(hide_usage: bool, value: dict[str, Any], passed: bool) -> None:
    """The relay asked for usage the caller did not: the log has it, the caller does not see it."""
    stream = chat(hide_usage=hide_usage)
    writes = stream.read(value, chunk("b"))
    expected = (b"data: " + payload(value) + b"\n\n" if passed else b"") + b"data: " + payload(chunk("b"))
    assert writes == [expected + b"\n\n"]
    assert stream.usage.reported == (value["usage"] if isinstance(value.get("usage"), dict) else None)
    assert stream.tally.chunks == 2  # counted, hidden or not


def test_the_usage_chunk_is_passed_on_unless_hidden() -> None:
    assert Relayed(ChatEvents()).read(usage_chunk()) == [b"data: " + payload(usage_chunk()) + b"\n\n"]


def test_a_read_of_only_the_hidden_usage_chunk_writes_nothing() -> None:
    stream = chat(hide_usage=True)
    assert stream.read(chunk("a")) == [b"data: " + payload(chunk("a")) + b"\n\n"]
    assert stream.read(usage_chunk(7)) == []
    assert stream.usage.reported == {"total_tokens": 7}
    assert stream.read(b"[DONE]") == [DONE_EVENT]


def test_a_stream_of_only_the_hidden_usage_chunk_is_no_reply() -> None:
    # Nothing reached the caller: the relay says there was nothing to relay, not a bare [DONE].
    stream = chat(hide_usage=True)
    assert stream.read(usage_chunk(7), b"[DONE]") == []
    assert (stream.encoder.replied, stream.encoder.finished) == (False, True)
    assert stream.usage.reported == {"total_tokens": 7}


def test_note_is_an_error_event_the_sdks_raise() -> None:
    expected = b'data: {"error":{"message":"cut","type":"api_error","param":null,"code":null}}\n\n'
    assert error_event("cut") == expected
    stream = chat()
    stream.read(chunk("a"))
    assert stream.note("cut") == [expected]
    assert stream.encoder.error is None  # the relay's own failure: its outcome is the relay's to say


def test_no_model_packet_and_no_usage_before_any_event() -> None:
    stream = chat()
    assert (stream.encoder.packet, stream.encoder.error) == (None, None)
    assert (stream.encoder.finished, stream.encoder.replied) == (False, False)
    assert stream.tally == Tally(chunks=0, skipped=0)
    assert (stream.usage.reported, stream.usage.written) == (None, 0)


# -- the Responses API (ResponsesPassThrough) ----------------------------------------------------


def responses() -> Relayed:
    return Relayed(ResponsesPassThrough("my-model"))


def delta_event(text: str, sequence: int) -> dict[str, Any]:
    return {"type": "response.output_text.delta", "delta": text, "sequence_number": sequence}


def completed(usage: Any = None, kind: str = "response.completed") -> dict[str, Any]:
    response: dict[str, Any] = {"id": "resp_1", "status": "completed"}
    if usage is not None:
        response["usage"] = usage
    return {"type": kind, "response": response, "sequence_number": 9}


def test_responses_events_go_out_named_by_their_type() -> None:
    first, second = payload(delta_event("Hi", 1)), payload({"type": "response.created", "sequence_number": 0})
    stream = responses()
    assert stream.read(second, first) == [
        b"event: response.created\ndata: " + second + b"\n\n"
        b"event: response.output_text.delta\ndata: " + first + b"\n\n"
    ]
    assert stream.tally == Tally(chunks=2, skipped=0)
    assert stream.encoder.replied is True
    assert stream.encoder.packet is None


def test_responses_nothing_passed_on_before_any_event() -> None:
    stream = responses()
    assert (stream.encoder.packet, stream.encoder.finished, stream.encoder.error) == (None, False, None)
    assert stream.encoder.replied is False
    assert stream.read(b"not json", b"") == []
    assert stream.encoder.replied is False


def test_responses_data_on_several_lines_goes_out_on_several_lines() -> None:
    assert responses().read(b'{"type":"x",\n"a":1}') == [b'event: x\ndata: {"type":"x",\ndata: "a":1}\n\n']


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(None, id="no-type"),
        pytest.param(7, id="type-not-a-string"),
        pytest.param("", id="empty-type"),
        pytest.param("a\nevent: forged", id="type-with-a-line-end"),
        pytest.param("a\rb", id="type-with-a-cr"),
        pytest.param("a\x00b", id="type-with-a-control-character"),
        pytest.param("réponse.créée", id="type-not-ascii"),
        pytest.param(["response.completed"], id="type-a-list"),
        pytest.param({"response.completed": 1}, id="type-an-object"),
    ],
)
def test_an_event_without_a_usable_type_goes_out_unnamed(kind: Any) -> None:
    """A type that could not be one `event:` line is not written as one: no forged fields."""
    value: dict[str, Any] = {"sequence_number": 1} if kind is None else {"type": kind, "sequence_number": 1}
    stream = responses()
    assert stream.read(value) == [b"data: " + payload(value) + b"\n\n"]
    assert (stream.encoder.finished, stream.encoder.error) == (False, None)  # and it ends nothing


@pytest.mark.parametrize("kind", sorted(ENDS))
def test_responses_last_event_ends_the_stream_with_its_usage(kind: str) -> None:
    assert {"response.completed", "response.incomplete", "response.failed"} == ENDS
    stream = responses()
    last = payload(completed({"input_tokens": 1, "output_tokens": 2}, kind))
    writes = stream.read(delta_event("a", 1), last, delta_event("after", 10))
    assert writes == [
        b"event: response.output_text.delta\ndata: " + payload(delta_event("a", 1)) + b"\n\n"
        b"event: " + kind.encode() + b"\ndata: " + last + b"\n\n"
    ]
    assert stream.encoder.finished is True
    assert stream.usage.reported == {"input_tokens": 1, "output_tokens": 2}
    assert stream.end() == []


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        pytest.param("error", "error event in the stream", id="error"),
        pytest.param("response.failed", "response.failed event in the stream", id="failed"),
        pytest.param("response.incomplete", None, id="incomplete-is-no-error"),
        pytest.param("response.output_text.delta", None, id="delta"),
    ],
)
def test_responses_failures_are_passed_on_as_they_came_and_kept_for_the_log(
    kind: str, error: str | None
) -> None:
    stream = responses()
    value = {"type": kind, "sequence_number": 3, "message": "upstream says"}
    assert stream.read(value) == [b"event: " + kind.encode() + b"\ndata: " + payload(value) + b"\n\n"]
    assert stream.encoder.error == error
    assert stream.encoder.finished is (kind in ENDS)


def test_responses_keeps_the_first_failure() -> None:
    stream = responses()
    stream.read({"type": "error", "sequence_number": 1}, {"type": "response.failed", "sequence_number": 2})
    assert stream.encoder.error == "error event in the stream"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(completed(), id="no-usage"),
        pytest.param(completed("many"), id="usage-not-an-object"),
        pytest.param({"type": "response.completed", "response": "x"}, id="response-not-an-object"),
    ],
)
def test_responses_last_event_without_usable_usage(value: dict[str, Any]) -> None:
    stream = responses()
    stream.read(value)
    assert stream.encoder.finished is True
    assert stream.usage.reported is None


def test_responses_usage_is_read_only_from_the_last_event() -> None:
    # A chat-shaped `usage` on another event is not the reply's usage.
    stream = responses()
    stream.read(
        {"type": "response.in_progress", "usage": {"total_tokens": 5}},
        {"type": "response.in_progress", "response": {"usage": {"total_tokens": 6}}},
    )
    assert stream.usage.reported is None
    assert stream.encoder.finished is False


def test_responses_stream_has_no_done() -> None:
    stream = responses()
    stream.read(delta_event("a", 1))
    assert stream.end() == []  # ended without its last event: no [DONE] is invented
    assert stream.read(b"[DONE]") == []
    assert stream.encoder.finished is True


def failure(message: str, sequence: int) -> bytes:
    return (
        b'event: error\ndata: {"type":"error","code":"server_error","message":"'
        + message.encode()
        + b'","param":null,"sequence_number":'
        + str(sequence).encode()
        + b"}\n\n"
    )


def parse_events(writes: list[bytes]) -> list[dict[str, Any]]:
    """Each write is one event: `event: <type>`, one `data:` line of JSON, a blank line."""
    parsed = []
    for write in writes:
        name, data, end = write.split(b"\n", 2)
        assert end == b"\n"
        value = json.loads(data.removeprefix(b"data: "))
        assert name == b"event: " + value["type"].encode()
        parsed.append(value)
    return parsed


RESPONSE_ID = re.compile(r"resp_[0-9a-f]{24}")


@pytest.mark.parametrize(
    ("values", "sequence"),
    [
        pytest.param([], 0, id="before-any-event"),
        pytest.param([delta_event("a", 4), delta_event("b", 5)], 6, id="after-the-last-seen"),
        pytest.param([delta_event("a", 5), delta_event("b", 3)], 6, id="after-the-highest-seen"),
        pytest.param(
            [delta_event("a", 4), {"type": "x", "sequence_number": "7"}], 5, id="not-an-int-ignored"
        ),
        pytest.param([delta_event("a", 4), {"type": "x", "sequence_number": True}], 5, id="bool-ignored"),
        pytest.param([delta_event("a", 4), {"type": "x"}], 5, id="missing-ignored"),
        pytest.param(
            [{"type": "response.created", "response": "x", "sequence_number": 0}],
            1,
            id="created-not-an-object",
        ),
    ],
)
def test_responses_note_without_a_response_created_begins_the_reply_then_fails_it(
    values: list[Any], sequence: int
) -> None:
    """The caller's SDK needs the reply to have begun before it can fail: the relay begins it."""
    stream = responses()
    stream.read(*values)
    writes = stream.note("cut")
    assert writes[1] == failure("cut", sequence + 1)
    created, error, failed = parse_events(writes)
    assert [e["sequence_number"] for e in (created, error, failed)] == [sequence, sequence + 1, sequence + 2]
    reply = created["response"]
    assert RESPONSE_ID.fullmatch(reply["id"])
    assert failed["response"]["id"] == reply["id"]
    assert {name: value for name, value in reply.items() if name != "created_at"} == {
        "id": reply["id"],
        "model": "my-model",
        "object": "response",
        "status": "in_progress",
        "output": [],
        "error": None,
    }
    assert {name: value for name, value in failed["response"].items() if name != "created_at"} == {
        "id": reply["id"],
        "model": "my-model",
        "object": "response",
        "status": "failed",
        "output": [],
        "error": {"code": "server_error", "message": "cut"},
    }
    assert (created["type"], failed["type"]) == ("response.created", "response.failed")


def test_responses_note_after_the_upstreams_response_created_fails_that_reply() -> None:
    stream = responses()
    created = {
        "type": "response.created",
        "response": {"id": "resp_up", "created_at": 1700000000, "model": "up-model", "status": "in_progress"},
        "sequence_number": 0,
    }
    stream.read(created, delta_event("a", 1), delta_event("b", 2))
    writes = stream.note("the upstream closed")
    assert writes == [
        failure("the upstream closed", 3),
        b'event: response.failed\ndata: {"type":"response.failed","response":{"id":"resp_up",'
        b'"created_at":1700000000,"model":"up-model","object":"response","status":"failed","output":[],'
        b'"error":{"code":"server_error","message":"the upstream closed"}},"sequence_number":4}\n\n',
    ]


# -- a whole completion, for an upstream that ignored `stream` ------------------------------------


def stream_of(body: bytes) -> bytes:
    """What the caller of a stream gets for a whole answer: its chunks through ChatEvents, then [DONE]."""
    stream = chat()
    writes = stream.read(*whole_as_events(body))
    return b"".join(writes + stream.end())


def events_of(body: bytes) -> list[Any]:
    """The data of each event in a stream body, [DONE] as the string."""
    assert body.endswith(DONE_EVENT)
    parts = body.split(b"\n\n")
    assert parts[-1] == b""
    assert all(part.startswith(b"data: ") and b"\n" not in part for part in parts[:-1])
    return [part[6:].decode() if part == b"data: [DONE]" else json.loads(part[6:]) for part in parts[:-1]]


BASE = {
    "id": "chatcmpl-1",
    "created": 1700000000,
    "model": "m",
    "system_fingerprint": "fp",
    "service_tier": "default",
    "object": "chat.completion.chunk",
}


def test_a_whole_completion_becomes_its_stream() -> None:
    completion = {
        **BASE,
        "object": "chat.completion",
        "extra": "not in chunks",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi"},
                "logprobs": {"content": []},
                "finish_reason": "stop",
            }
        ],
        "usage": {"total_tokens": 3},
    }
    assert events_of(stream_of(payload(completion))) == [
        {
            **BASE,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": "Hi"},
                    "logprobs": {"content": []},
                    "finish_reason": None,
                }
            ],
        },
        {**BASE, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]},
        {**BASE, "choices": [], "usage": {"total_tokens": 3}},
        "[DONE]",
    ]


def test_chunks_carry_only_the_fields_a_chunk_has() -> None:
    completion = {"object": "chat.completion", "extra": 1, "choices": [{"message": {"content": "x"}}]}
    first, second, done = events_of(stream_of(payload(completion)))
    assert first == {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": "x"}, "logprobs": None, "finish_reason": None}],
    }
    assert second["choices"][0]["finish_reason"] is None  # none given
    assert done == "[DONE]"


def test_every_choice_gets_its_chunks_with_its_index() -> None:
    completion = {
        "choices": [
            {"message": {"content": "a"}, "finish_reason": "stop"},  # no index: its position
            {"index": 5, "message": "not an object", "finish_reason": "length"},
        ],
        "usage": "not an object",
    }
    chunks = events_of(stream_of(payload(completion)))
    assert [event["choices"] if event != "[DONE]" else event for event in chunks] == [
        [{"index": 0, "delta": {"content": "a"}, "logprobs": None, "finish_reason": None}],
        [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
        [{"index": 5, "delta": {}, "logprobs": None, "finish_reason": None}],
        [{"index": 5, "delta": {}, "logprobs": None, "finish_reason": "length"}],
        "[DONE]",
    ]


def test_tool_calls_are_numbered_as_stream_deltas_are() -> None:
    calls = [{"id": "a", "type": "function"}, "odd", {"id": "b", "type": "function"}]
    completion = {"choices": [{"message": {"tool_calls": calls}, "finish_reason": "tool_calls"}]}
    first = events_of(stream_of(payload(completion)))[0]
    assert first["choices"][0]["delta"]["tool_calls"] == [
        {"index": 0, "id": "a", "type": "function"},
        "odd",
        {"index": 2, "id": "b", "type": "function"},
    ]


def test_a_choice_that_is_not_an_object_is_skipped() -> None:
    # Read by type, as everything the upstream sends: the choices that are objects are the reply.
    later = completion_as_chunks({"choices": [3, {"message": {"content": "a"}}]})
    assert later is not None
    assert [chunk["choices"][0]["index"] for chunk in later] == [1, 1]  # its place, where it has no index
    chunks = completion_as_chunks({"choices": [{"message": {"content": "a"}}, 3]})
    assert chunks == [
        {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "a"}, "logprobs": None, "finish_reason": None}]},
        {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": None}]},
    ]  # fmt: skip


def test_the_completion_is_not_changed_by_its_chunks() -> None:
    message = {"content": "x", "tool_calls": [{"id": "a"}]}
    completion = {"choices": [{"message": message}]}
    chunks = completion_as_chunks(completion)
    assert chunks is not None
    assert chunks[0]["choices"][0]["delta"]["tool_calls"] == [{"index": 0, "id": "a"}]
    assert message == {"content": "x", "tool_calls": [{"id": "a"}]}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"[]", id="not-an-object"),
        pytest.param(b"{}", id="no-choices"),
        pytest.param(b'{"choices": {}}', id="choices-not-a-list"),
        pytest.param(b'{"choices": []}', id="empty-choices"),
        pytest.param(b'{"choices": [3, "x"]}', id="no-choice-an-object"),
        pytest.param(b'{"choices": [], "usage": {"total_tokens": 3}}', id="usage-only"),
    ],
)
def test_a_body_that_is_not_a_completion_is_no_reply(body: bytes) -> None:
    # Nothing reaches the caller: the relay says the answer held nothing to relay (not a bare [DONE]).
    stream = chat()
    assert stream.read(*whole_as_events(body)) == []
    assert stream.end() == []
    assert stream.encoder.replied is False
    assert stream.tally.skipped == (1 if body == b"{not json" else 0)  # logged by size, as a stream's


@pytest.mark.parametrize(
    "completion",
    [
        pytest.param({}, id="no-choices"),
        pytest.param({"choices": {}}, id="choices-not-a-list"),
        pytest.param({"choices": []}, id="empty-choices"),
        pytest.param({"choices": [3, "x", None]}, id="no-choice-an-object"),
        pytest.param({"choices": [], "usage": {"total_tokens": 3}}, id="usage-only"),
    ],
)
def test_a_completion_without_a_choice_has_no_chunks(completion: dict[str, Any]) -> None:
    assert completion_as_chunks(completion) is None


def test_a_whole_error_answer_is_passed_on_as_it_came() -> None:
    body = b'{"error": {"message": "overloaded"}}'
    assert whole_as_events(body) == [body]
    stream = chat()
    assert stream.read(*whole_as_events(body)) == [b"data: " + body + b"\n\n"]
    assert stream.encoder.error == "error event in the stream"


# -- a stream's chunks as one completion (a caller that asked for a whole answer) ---------------


def call(index: Any, *, call_id: Any = None, name: Any = None, arguments: Any = None) -> dict[str, Any]:
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    value: dict[str, Any] = {"index": index, "function": function}
    if call_id is not None:
        value.update(id=call_id, type="function")
    return value


def choice(index: Any, delta: Any, finish: Any = None) -> dict[str, Any]:
    return {"index": index, "delta": delta, "finish_reason": finish}


def test_interleaved_tool_calls_and_several_choices_are_one_completion() -> None:
    head = {
        "id": "c1",
        "created": 1,
        "model": "m",
        "system_fingerprint": "fp",
        "object": "chat.completion.chunk",
    }
    usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    chunks: list[dict[str, Any]] = [
        {**head, "choices": [choice(0, {"role": "assistant", "content": "Hel"})]},
        {**head, "id": "c2", "model": "other", "choices": [choice(1, {"role": "assistant", "content": "Oth"})]},
        {"choices": [choice(0, {"tool_calls": [call(0, call_id="a", name="f", arguments="")]})]},
        {"choices": [choice(0, {"tool_calls": [call(1, call_id="b", name="g", arguments="{")]}),
                     choice(1, {"content": "er"})]},
        {"choices": [choice(0, {"tool_calls": [call(0, arguments='{"x":')]})]},
        {"choices": [choice(0, {"content": "lo", "tool_calls": [call(1, arguments="}"), call(0, arguments=" 1}")]})]},
        {"choices": [choice(1, {}, "stop"), choice(0, {}, "tool_calls")]},
        {"choices": [], "usage": usage},
    ]  # fmt: skip
    assert chunks_as_completion(chunks) == {
        "id": "c1", "created": 1, "model": "m", "system_fingerprint": "fp",  # the first chunk's
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hello", "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
                {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
            ]}, "logprobs": None, "finish_reason": "tool_calls"},
            {"index": 1, "message": {"role": "assistant", "content": "Other"}, "logprobs": None, "finish_reason": "stop"},
        ],
        "usage": usage,
    }  # fmt: skip


def test_every_piece_of_a_call_is_joined() -> None:
    completion = chunks_as_completion(
        [
            {"choices": ["not a choice", choice(0, {"tool_calls": [call(0, call_id="a", name="ge", arguments="{")]})]},
            {"choices": [choice(0, {"tool_calls": [call(0, name="t", arguments="}")]})]},
        ]
    )  # fmt: skip
    assert completion is not None
    assert completion["choices"][0]["message"]["tool_calls"] == [
        {"id": "a", "type": "function", "function": {"name": "get", "arguments": "{}"}}
    ]


def test_choices_are_in_the_order_of_their_index_not_of_arrival() -> None:
    completion = chunks_as_completion(
        [{"choices": [choice(2, {"content": "c"}), choice(0, {"content": "a"})]}]
    )
    assert completion is not None
    assert [(c["index"], c["message"]["content"]) for c in completion["choices"]] == [(0, "a"), (2, "c")]


def test_what_else_the_model_wrote_is_kept_by_field() -> None:
    completion = chunks_as_completion(
        [
            {"choices": [choice(0, {"reasoning_content": "Thin", "reasoning": "R"})]},
            {"choices": [choice(0, {"reasoning_content": "king", "refusal": "No"})]},
            {"choices": [choice(0, {"refusal": "pe.", "role": "tool"}, "stop")]},
        ]
    )
    assert completion == {
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "tool",
                    "content": None,
                    "reasoning_content": "Thinking",
                    "reasoning": "R",
                    "refusal": "Nope.",
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
    }


@pytest.mark.parametrize(
    ("chunks", "message"),
    [
        pytest.param([{"choices": [choice(0, {"content": 5, "role": 1, "refusal": ["x"]})]}],
                     {"role": "assistant", "content": None}, id="texts-not-strings"),
        pytest.param([{"choices": [choice(0, "Hi")]}], {"role": "assistant", "content": None}, id="delta-not-an-object"),
        pytest.param([{"choices": [choice(0, {"tool_calls": {"index": 0}})]}], {"role": "assistant", "content": None},
                     id="tool-calls-not-a-list"),
        pytest.param([{"choices": [choice(0, {"tool_calls": ["x", call(0, call_id=5, name=6, arguments={"a": 1})]})]}],
                     {"role": "assistant", "content": None,
                      "tool_calls": [{"id": "", "type": "function", "function": {"name": "", "arguments": ""}}]},
                     id="call-fields-not-strings"),
        pytest.param([{"choices": [choice(0, {"tool_calls": [{"index": 0, "id": "a", "function": "f"}]})]}],
                     {"role": "assistant", "content": None,
                      "tool_calls": [{"id": "a", "type": "function", "function": {"name": "", "arguments": ""}}]},
                     id="function-not-an-object"),
        pytest.param([{"choices": [choice(0, {"tool_calls": [call("0", call_id="a"), call(True, call_id="b"),
                                                             call(-1, call_id="c")]})]}],
                     {"role": "assistant", "content": None, "tool_calls": [
                         {"id": cid, "type": "function", "function": {"name": "", "arguments": ""}} for cid in "abc"]},
                     id="call-index-not-a-count-is-its-position"),
    ],
)  # fmt: skip
def test_fields_of_the_wrong_type_are_taken_as_absent(chunks: list[Any], message: dict[str, Any]) -> None:
    completion = chunks_as_completion(chunks)
    assert completion is not None
    assert completion["choices"] == [
        {"index": 0, "message": message, "logprobs": None, "finish_reason": None}
    ]


@pytest.mark.parametrize(
    "index", [pytest.param("1", id="string"), pytest.param(-1, id="negative"), pytest.param(True, id="bool")]
)
def test_a_choice_index_that_is_not_a_count_is_the_first(index: Any) -> None:
    completion = chunks_as_completion(
        [{"choices": [choice(index, {"content": "a"}), choice(0, {"content": "b"})]}]
    )
    assert completion is not None
    assert [(c["index"], c["message"]["content"]) for c in completion["choices"]] == [(0, "ab")]


def test_a_choice_without_an_index_is_the_first() -> None:
    completion = chunks_as_completion([{"choices": [{"delta": {"content": "a"}, "finish_reason": "stop"}]}])
    assert completion is not None
    assert completion["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "a"},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([], id="nothing"),
        pytest.param([{"choices": []}, {"choices": [], "usage": {"total_tokens": 3}}], id="no-choice"),
        pytest.param([{"choices": "x"}, {"choices": ["x", 3]}], id="choices-of-the-wrong-type"),
        pytest.param([{"choices": None}, {"choices": 5}, {"choices": {"0": {}}}], id="choices-not-a-list"),
        pytest.param(
            [{"choices": [choice(0, {"content": "a"})]}, {"error": {"message": "x"}}], id="error-event"
        ),
        pytest.param([{"error": "x"}, {"choices": [choice(0, {"content": "a"})]}], id="error-first"),
    ],
)
def test_chunks_without_a_reply_are_no_completion(chunks: list[dict[str, Any]]) -> None:
    assert chunks_as_completion(chunks) is None


def test_a_null_error_and_a_later_usage_are_read() -> None:
    completion = chunks_as_completion(
        [
            {"choices": [choice(0, {"content": "a"})], "error": None, "usage": {"total_tokens": 1}},
            {"choices": [], "usage": "x"},
            {"choices": [], "usage": {"total_tokens": 2}},
        ]
    )
    assert completion is not None and completion["usage"] == {"total_tokens": 2}


_texts = st.text(max_size=5)
_calls = st.lists(
    st.fixed_dictionaries(
        {
            "id": _texts,
            "type": st.just("function"),
            "function": st.fixed_dictionaries({"name": _texts, "arguments": _texts}),
        }
    ),
    min_size=1,
    max_size=3,
)
_messages = st.fixed_dictionaries(
    {"role": st.just("assistant"), "content": st.none() | _texts},
    optional={"refusal": _texts, "reasoning_content": _texts, "tool_calls": _calls},
)


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "message": _messages,
                "finish_reason": st.none() | st.sampled_from(["stop", "length", "tool_calls"]),
            }
        ),
        min_size=1,
        max_size=3,
    ),
    st.none() | st.fixed_dictionaries({"total_tokens": st.integers(0, 99)}),
)
def test_a_completion_made_chunks_and_back_is_the_same(choices: list[dict[str, Any]], usage: Any) -> None:
    completion: dict[str, Any] = {
        "id": "c",
        "model": "m",
        "object": "chat.completion",
        "choices": [{"index": n, **c, "logprobs": None} for n, c in enumerate(choices)],
    }
    if usage is not None:
        completion["usage"] = usage
    chunks = completion_as_chunks(completion)
    assert chunks is not None
    # As the relay reads them: each chunk through JSON.
    assert chunks_as_completion([jsoncodec.loads(jsoncodec.dumps(c)) for c in chunks]) == completion


# -- reasoning, as the servers that send it name it ------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        pytest.param({"reasoning_content": "a"}, "a", id="deepseek-vllm"),
        pytest.param({"reasoning": "b"}, "b", id="openrouter"),
        pytest.param({"reasoning_content": "a", "reasoning": "b"}, "a", id="reasoning-content-first"),
        pytest.param({"reasoning_content": "", "reasoning": "b"}, "b", id="empty-is-none"),
        pytest.param({"reasoning_content": 5, "reasoning": "b"}, "b", id="not-a-string-is-none"),
        pytest.param({"reasoning": "b", "reasoning_details": [{"text": "c"}]}, "b", id="string-before-details"),
        pytest.param({"reasoning_details": [{"type": "reasoning.text", "text": "c"},
                                            {"type": "reasoning.summary", "summary": "d"},
                                            {"type": "reasoning.encrypted", "data": "e"}]}, "cd", id="details"),
        pytest.param({"reasoning_details": [{"text": "c", "summary": "d"}]}, "cd", id="text-then-summary"),
        pytest.param({"reasoning_details": ["c", {"text": 5}, None, {"summary": ["d"]}]}, "", id="details-of-the-wrong-type"),
        pytest.param({"reasoning_details": {"text": "c"}}, "", id="details-not-a-list"),
        pytest.param({"content": "x"}, "", id="none"),
    ],
)  # fmt: skip
def test_reasoning_of_a_delta(delta: dict[str, Any], text: str) -> None:
    assert reasoning_of(delta) == text


def test_reasoning_details_of_every_chunk_are_kept_in_order() -> None:
    first = {"type": "reasoning.text", "text": "Let me"}
    second = {"type": "reasoning.summary", "summary": " think."}
    completion = chunks_as_completion(
        [
            {"choices": [choice(0, {"reasoning_details": [first]})]},
            {"choices": [choice(0, {"reasoning_details": [second], "content": "Hi"}, "stop")]},
        ]
    )
    assert completion is not None
    assert completion["choices"][0]["message"]["reasoning_details"] == [first, second]
