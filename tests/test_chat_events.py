"""The OpenAI API's streams passed on event by event (relay/formats/chat_events.py). No network."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from relay.formats.chat_events import DONE_EVENT, EventPassThrough, completion_as_events, error_event
from tests.fake_upstream import chunk


def payload(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def usage_chunk(total: int = 3) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": {"total_tokens": total}}


# -- chat completions ---------------------------------------------------------------------------


def test_each_event_goes_out_as_the_upstream_wrote_it_in_one_write_per_read() -> None:
    first, second = payload(chunk("Hel", role="assistant")), payload(chunk("lo"))
    stream = EventPassThrough()
    assert stream.translate([first, second]) == [b"data: " + first + b"\n\ndata: " + second + b"\n\n"]
    assert stream.translate([b'{"x": 1 }']) == [b'data: {"x": 1 }\n\n']  # bytes untouched
    assert stream.chunks == 3
    assert stream.replied


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
    stream = EventPassThrough()
    assert stream.translate([payload(value)]) == [b"data: " + payload(value) + b"\n\n"]
    assert stream.error is None  # an error event is the caller's to read, not the relay's note


def test_data_on_several_lines_goes_out_on_several_lines() -> None:
    assert EventPassThrough().translate([b'{"a":\n1}']) == [b'data: {"a":\ndata: 1}\n\n']


def test_done_is_passed_on_and_ends_the_stream() -> None:
    stream = EventPassThrough()
    writes = stream.translate([payload(chunk("a")), b"[DONE]", payload(chunk("after"))])
    assert writes == [b"data: " + payload(chunk("a")) + b"\n\n" + DONE_EVENT]
    assert stream.finished is True
    assert stream.end() == []  # no second [DONE]


def test_done_before_any_event_writes_nothing() -> None:
    # The relay tells the caller there was nothing to relay; a bare [DONE] would read as an empty reply.
    stream = EventPassThrough()
    assert stream.translate([b"[DONE]"]) == []
    assert stream.finished is True
    assert stream.replied is False


def test_a_stream_that_ends_without_done_gets_one() -> None:
    stream = EventPassThrough()
    stream.translate([payload(chunk("a"))])
    assert stream.finished is False
    assert stream.end() == [DONE_EVENT]


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
    stream = EventPassThrough()
    with caplog.at_level(logging.WARNING, logger="relay.formats.jsoncodec"):
        writes = stream.translate([bad, payload(chunk("a")), bad])
    assert writes == [b"data: " + payload(chunk("a")) + b"\n\n"]
    assert (stream.skipped, stream.chunks) == (2, 1)
    # The size only: the payload may hold the user's conversation.
    expected = f"Skipped an upstream event that is not a JSON object ({len(bad)} bytes)"
    assert [record.getMessage() for record in caplog.records] == [expected, expected]


def test_empty_data_is_neither_passed_on_nor_counted(caplog: pytest.LogCaptureFixture) -> None:
    stream = EventPassThrough()
    with caplog.at_level(logging.WARNING, logger="relay.formats.jsoncodec"):
        assert stream.translate([b""]) == []
    assert (stream.skipped, stream.chunks, stream.replied) == (0, 0, False)
    assert caplog.records == []


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
    stream = EventPassThrough(hide_usage=hide_usage)
    writes = stream.translate([payload(value), payload(chunk("b"))])
    expected = (b"data: " + payload(value) + b"\n\n" if passed else b"") + b"data: " + payload(chunk("b"))
    assert writes == [expected + b"\n\n"]
    assert stream.usage == (value["usage"] if isinstance(value.get("usage"), dict) else None)


def test_a_batch_of_only_the_hidden_usage_chunk_writes_nothing() -> None:
    stream = EventPassThrough(hide_usage=True)
    assert stream.translate([payload(usage_chunk(7))]) == []
    assert stream.usage == {"total_tokens": 7}
    assert stream.replied  # the event was read: a reply, and [DONE] follows
    assert stream.translate([b"[DONE]"]) == [DONE_EVENT]


@pytest.mark.parametrize(
    ("value", "chars"),
    [
        pytest.param(chunk("é中😀"), 3, id="characters-not-bytes"),
        pytest.param(chunk(role="assistant"), 0, id="no-content"),
        pytest.param({"choices": [{"delta": {"content": 12}}]}, 0, id="content-not-a-string"),
        pytest.param({"choices": [{"delta": "abc"}]}, 0, id="delta-not-an-object"),
        pytest.param({"choices": [{"message": {"content": "abc"}}]}, 0, id="message-not-a-delta"),
        pytest.param({"choices": ["abc"]}, 0, id="choice-not-an-object"),
        pytest.param({"choices": []}, 0, id="no-choice"),
        pytest.param({"choices": "abc"}, 0, id="choices-not-a-list"),
        pytest.param(
            {"choices": [{"delta": {"content": "ab"}}, {"delta": {"content": "cdef"}}]}, 2, id="first-choice"
        ),
    ],
)
def test_text_chars_counts_the_first_choices_content(value: dict[str, Any], chars: int) -> None:
    stream = EventPassThrough()
    stream.translate([payload(value)])
    stream.translate([payload(chunk("xy"))])
    assert stream.text_chars == chars + 2


def test_note_is_an_error_event_the_sdks_raise() -> None:
    expected = b'data: {"error":{"message":"cut","type":"api_error","param":null,"code":null}}\n\n'
    assert error_event("cut") == expected
    assert EventPassThrough().note("cut") == expected


def test_no_model_packet_and_no_usage_before_any_event() -> None:
    stream = EventPassThrough()
    assert (stream.packet, stream.usage, stream.error) == (None, None, None)
    assert (stream.chunks, stream.skipped, stream.text_chars) == (0, 0, 0)


# -- the Responses API (responses=True) ---------------------------------------------------------


def delta_event(text: str, sequence: int) -> dict[str, Any]:
    return {"type": "response.output_text.delta", "delta": text, "sequence_number": sequence}


def completed(usage: Any = None, kind: str = "response.completed") -> dict[str, Any]:
    response: dict[str, Any] = {"id": "resp_1", "status": "completed"}
    if usage is not None:
        response["usage"] = usage
    return {"type": kind, "response": response, "sequence_number": 9}


def test_responses_events_go_out_named_by_their_type() -> None:
    first, second = payload(delta_event("Hi", 1)), payload({"type": "response.created", "sequence_number": 0})
    stream = EventPassThrough(responses=True)
    assert stream.translate([second, first]) == [
        b"event: response.created\ndata: " + second + b"\n\n"
        b"event: response.output_text.delta\ndata: " + first + b"\n\n"
    ]
    assert stream.chunks == 2


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(None, id="no-type"),
        pytest.param(7, id="type-not-a-string"),
        pytest.param("", id="empty-type"),
        pytest.param("a\nevent: forged", id="type-with-a-line-end"),
        pytest.param("a\rb", id="type-with-a-cr"),
        pytest.param("a\x00b", id="type-with-a-control-character"),
    ],
)
def test_an_event_without_a_usable_type_goes_out_unnamed(kind: Any) -> None:
    """A type that could not be one `event:` line is not written as one: no forged fields."""
    value: dict[str, Any] = {"sequence_number": 1} if kind is None else {"type": kind, "sequence_number": 1}
    assert EventPassThrough(responses=True).translate([payload(value)]) == [
        b"data: " + payload(value) + b"\n\n"
    ]


@pytest.mark.parametrize(
    "kind", [pytest.param("response.completed"), pytest.param("response.incomplete"), "response.failed"]
)
def test_responses_last_event_ends_the_stream_with_its_usage(kind: str) -> None:
    stream = EventPassThrough(responses=True)
    last = payload(completed({"input_tokens": 1, "output_tokens": 2}, kind))
    writes = stream.translate([payload(delta_event("a", 1)), last, payload(delta_event("after", 10))])
    assert writes == [
        b"event: response.output_text.delta\ndata: " + payload(delta_event("a", 1)) + b"\n\n"
        b"event: " + kind.encode() + b"\ndata: " + last + b"\n\n"
    ]
    assert stream.finished is True
    assert stream.usage == {"input_tokens": 1, "output_tokens": 2}
    assert stream.end() == []


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(completed(), id="no-usage"),
        pytest.param(completed("many"), id="usage-not-an-object"),
        pytest.param({"type": "response.completed", "response": "x"}, id="response-not-an-object"),
    ],
)
def test_responses_last_event_without_usable_usage(value: dict[str, Any]) -> None:
    stream = EventPassThrough(responses=True)
    stream.translate([payload(value)])
    assert stream.finished is True
    assert stream.usage is None


def test_responses_usage_is_read_only_from_the_last_event() -> None:
    # A chat-shaped `usage` on another event is not the reply's usage.
    stream = EventPassThrough(responses=True)
    stream.translate([payload({"type": "response.in_progress", "usage": {"total_tokens": 5}})])
    assert stream.usage is None
    assert stream.finished is False


def test_responses_stream_has_no_done() -> None:
    stream = EventPassThrough(responses=True)
    stream.translate([payload(delta_event("a", 1))])
    assert stream.end() == []  # ended without its last event: no [DONE] is invented
    assert stream.translate([b"[DONE]"]) == []
    assert stream.finished is True


@pytest.mark.parametrize(
    ("value", "chars"),
    [
        pytest.param(delta_event("é中😀", 1), 3, id="characters-not-bytes"),
        pytest.param({"type": "response.output_text.delta", "delta": 5}, 0, id="delta-not-a-string"),
        pytest.param({"type": "response.output_text.done", "text": "abc"}, 0, id="done-not-counted"),
        pytest.param({"type": "response.refusal.delta", "delta": "abc"}, 0, id="other-delta"),
    ],
)
def test_responses_text_chars_count_the_text_deltas(value: dict[str, Any], chars: int) -> None:
    stream = EventPassThrough(responses=True)
    stream.translate([payload(value), payload(delta_event("xy", 2))])
    assert stream.text_chars == chars + 2


def failure(message: str, sequence: int) -> bytes:
    return (
        b'event: error\ndata: {"type":"error","code":"server_error","message":"'
        + message.encode()
        + b'","param":null,"sequence_number":'
        + str(sequence).encode()
        + b"}\n\n"
    )


@pytest.mark.parametrize(
    ("values", "sequence"),
    [
        pytest.param([], 0, id="before-any-event"),
        pytest.param([delta_event("a", 4), delta_event("b", 5)], 6, id="after-the-last-seen"),
        pytest.param(
            [delta_event("a", 4), {"type": "x", "sequence_number": "7"}], 5, id="not-an-int-ignored"
        ),
        pytest.param([delta_event("a", 4), {"type": "x"}], 5, id="missing-ignored"),
    ],
)
def test_responses_note_is_an_error_event_numbered_after_the_last(values: list[Any], sequence: int) -> None:
    stream = EventPassThrough(responses=True)
    stream.translate([payload(value) for value in values])
    assert stream.note("cut") == failure("cut", sequence)
    assert stream.note("again") == failure("again", sequence + 1)


# -- a whole completion, for an upstream that ignored `stream` ------------------------------------


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
    assert events_of(completion_as_events(payload(completion)) or b"") == [
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
    first, second, done = events_of(completion_as_events(payload(completion)) or b"")
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
    chunks = events_of(completion_as_events(payload(completion)) or b"")
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
    first = events_of(completion_as_events(payload(completion)) or b"")[0]
    assert first["choices"][0]["delta"]["tool_calls"] == [
        {"index": 0, "id": "a", "type": "function"},
        "odd",
        {"index": 2, "id": "b", "type": "function"},
    ]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"[]", id="not-an-object"),
        pytest.param(b"{}", id="no-choices"),
        pytest.param(b'{"choices": {}}', id="choices-not-a-list"),
        pytest.param(b'{"choices": []}', id="empty-choices"),
        pytest.param(b'{"choices": [{"message": {"content": "a"}}, 3]}', id="a-choice-not-an-object"),
    ],
)
def test_a_body_that_is_not_a_completion_is_none(body: bytes) -> None:
    # None: the relay sends the caller an error event saying the JSON holds no reply.
    assert completion_as_events(body) is None
