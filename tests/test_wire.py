"""The wire format: upstream chunk payloads in, the original route's bytes out. No network."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.access.usage import Usage
from relay.formats import jsoncodec
from relay.formats.chat_chunks import completion_as_chunks
from relay.formats.encoding import Tally, encode
from relay.formats.original_text import TextStream, describe_error, error_note
from relay.formats.sse import SSEDecoder
from tests.fake_upstream import chunk, openai_stream, sse


def payload(value: Any) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value, ensure_ascii=False).encode()


class Relayed:
    """A TextStream fed as the relay's loop feeds it (relay/formats/encoding.py): its writes, counts, usage."""

    def __init__(self, model: str = "gpt-asked") -> None:
        self.text = TextStream(model)
        self.tally = Tally()
        self.usage = Usage()

    def read(self, *values: Any) -> list[bytes]:
        """The writes for one upstream read of these payloads (JSON values, or bytes as they are)."""
        out: list[bytes] = []
        encode(self.text, [payload(value) for value in values], out, self.tally, self.usage.chat_chunk)
        return out


def translate(*values: Any, model: str = "gpt-asked") -> tuple[list[bytes], Relayed]:
    relayed = Relayed(model)
    return relayed.read(*values), relayed


def test_model_packet_is_a_write_of_its_own_then_the_text() -> None:
    writes, relayed = translate(chunk("", role="assistant"), chunk("Hel"), chunk("lo"))
    assert writes == [b'{"model":"gpt-fake-0613"}', b"Hello"]
    assert relayed.text.model == "gpt-fake-0613"
    assert relayed.text.packet == b'{"model":"gpt-fake-0613"}'
    assert relayed.tally == Tally(chunks=3, skipped=0)


def test_later_batches_carry_only_text() -> None:
    relayed = Relayed()
    assert relayed.read(chunk("a")) == [b'{"model":"gpt-fake-0613"}', b"a"]
    assert relayed.read(chunk("b"), chunk("c")) == [b"bc"]
    assert relayed.read(chunk(finish="stop")) == []


def test_bare_role_announcement_is_not_the_first_packet() -> None:
    writes, relayed = translate(chunk(role="assistant", model="first"), chunk("Hi", model="second"))
    assert writes == [b'{"model":"second"}', b"Hi"]
    assert relayed.text.replied  # the announcement was a choice all the same


def test_a_bare_role_announcement_alone_makes_no_packet() -> None:
    relayed = Relayed()
    assert relayed.read(chunk(role="assistant")) == []
    assert (relayed.text.packet, relayed.text.model) == (None, None)
    assert relayed.read(chunk("x")) == [b'{"model":"gpt-fake-0613"}', b"x"]


def test_delta_with_role_and_content_keeps_its_content() -> None:
    # The original dropped any delta that had a role, content and all.
    writes, _ = translate(chunk("Hello", role="assistant"), chunk(" world"))
    assert writes == [b'{"model":"gpt-fake-0613"}', b"Hello world"]


def test_model_missing_from_chunk_falls_back_to_the_requested_model() -> None:
    writes, _ = translate({"choices": [{"delta": {"content": "x"}}]})
    assert writes == [b'{"model":"gpt-asked"}', b"x"]
    writes, _ = translate({"model": "", "choices": [{"delta": {"content": "x"}}]})
    assert writes == [b'{"model":"gpt-asked"}', b"x"]  # an empty name names nothing
    writes, _ = translate({"model": 7, "choices": [{"delta": {"content": "x"}}]})
    assert writes == [b'{"model":"gpt-asked"}', b"x"]  # nor does a number


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"id": "x", "choices": [], "prompt_filter_results": [{"index": 0}]}, id="azure-filter"),
        pytest.param({"choices": [], "usage": {"total_tokens": 3}}, id="usage"),
        pytest.param({"object": "chat.completion.chunk"}, id="no-choices-key"),
        pytest.param({"choices": None}, id="choices-null"),
        pytest.param({"choices": {"0": {"delta": {"content": "x"}}}}, id="choices-not-a-list"),
        pytest.param({"choices": ["x"]}, id="choice-not-object"),
    ],
)
def test_chunks_without_a_usable_choice_are_skipped(value: Any) -> None:
    writes, relayed = translate(value, chunk("after"))
    assert writes == [b'{"model":"gpt-fake-0613"}', b"after"]
    assert relayed.text.finished is False


def test_usage_is_kept_for_the_log() -> None:
    _, relayed = translate(chunk("a"), {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}})
    assert relayed.usage.reported == {"prompt_tokens": 1, "completion_tokens": 2}


def test_a_stream_without_usage_leaves_none_for_the_log() -> None:
    # The request log reports usage only when it `is not None` and estimates tokens otherwise.
    _, relayed = translate(chunk("a"), chunk(finish="stop"), b"[DONE]")
    assert relayed.usage.reported is None


@pytest.mark.parametrize(
    ("values", "replied"),
    [
        pytest.param([], False, id="nothing"),
        pytest.param([{"choices": [], "usage": {"total_tokens": 3}}, b"nope"], False, id="no-choice"),
        pytest.param([{"error": {"message": "x"}}], False, id="error-only"),
        pytest.param([chunk(finish="stop")], True, id="empty-choice-is-a-reply"),
        pytest.param([chunk("a")], True, id="text"),
    ],
)
def test_replied_once_a_chunk_with_a_choice_was_read(values: list[Any], replied: bool) -> None:
    # The relay tells the caller there was nothing to relay when no choice ever came.
    _, relayed = translate(*values)
    assert relayed.text.replied is replied


def test_the_characters_written_are_counted_over_every_read() -> None:
    """The reply's length in characters (not bytes), summed over reads, for the token estimate."""
    relayed = Relayed()
    assert relayed.usage.written == 0
    relayed.read(chunk("é中"), chunk("😀"))
    relayed.read(chunk("ab"))
    relayed.read(b"[DONE]")
    assert relayed.usage.written == 5


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b"{not json", id="broken"),
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b'"text"', id="string"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"NaN", id="nan"),
    ],
)
def test_payload_that_is_not_a_json_object_is_skipped_and_counted(
    bad: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="relay.formats.jsoncodec"):
        writes, relayed = translate(chunk("a"), bad, chunk("b"), bad)
    assert writes == [b'{"model":"gpt-fake-0613"}', b"ab"]
    assert relayed.tally == Tally(chunks=2, skipped=2)
    # The log says what happened and the size only: the payload may hold the user's conversation.
    expected = f"Skipped an upstream event that is not a JSON object ({len(bad)} bytes)"
    assert [record.getMessage() for record in caplog.records] == [expected, expected]


def test_done_ends_the_stream_and_what_follows_is_ignored() -> None:
    writes, relayed = translate(chunk("a"), b"[DONE]", chunk("after"))
    assert writes == [b'{"model":"gpt-fake-0613"}', b"a"]
    assert relayed.text.finished and relayed.text.error is None
    assert relayed.tally.chunks == 1  # what follows [DONE] is not read at all
    out: list[bytes] = []
    relayed.text.end(out)
    assert out == []  # nothing to add after [DONE] in this format


def test_a_stream_that_ends_without_done_gets_nothing_added() -> None:
    relayed = Relayed()
    relayed.read(chunk("a"))
    out: list[bytes] = []
    relayed.text.end(out)
    assert out == []
    assert relayed.text.finished is False


def test_error_event_ends_the_stream_keeping_the_text_before_it() -> None:
    writes, relayed = translate(
        chunk("partial"), {"error": {"message": "Rate limit reached", "type": "x"}}, chunk("after")
    )
    # The note is the encoder's own now: the text before it, then what the upstream said.
    assert writes == [b'{"model":"gpt-fake-0613"}', b"partial", b"\n\n[Error: Rate limit reached]"]
    assert relayed.text.finished
    assert relayed.text.error == "Rate limit reached"


def test_error_event_in_a_later_read_is_noted_after_that_reads_text() -> None:
    relayed = Relayed()
    assert relayed.read(chunk("a")) == [b'{"model":"gpt-fake-0613"}', b"a"]
    assert relayed.read(chunk("b"), {"error": "overloaded"}) == [b"b", b"\n\n[Error: overloaded]"]
    assert (relayed.text.finished, relayed.text.error) == (True, "overloaded")


def test_error_event_before_any_text_is_the_note_alone() -> None:
    writes, relayed = translate({"error": {"message": "nope"}})
    assert writes == [b"\n\n[Error: nope]"]
    assert (relayed.text.packet, relayed.text.replied, relayed.text.error) == (None, False, "nope")


def test_an_error_field_of_null_is_no_error() -> None:
    writes, relayed = translate({**chunk("a"), "error": None}, chunk("b"))
    assert writes == [b'{"model":"gpt-fake-0613"}', b"ab"]
    assert (relayed.text.error, relayed.text.finished) == (None, False)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        pytest.param({"message": "boom", "code": 500}, "boom", id="openai-shape"),
        pytest.param("plain text", "plain text", id="string"),
        pytest.param({"code": 503}, '{"code":503}', id="object-without-message"),
        pytest.param({"message": ""}, '{"message":""}', id="empty-message"),
    ],
)
def test_describe_error(error: Any, message: str) -> None:
    assert describe_error(error) == message


def test_error_note_is_recognisable_text() -> None:
    assert error_note("the upstream closed") == b"\n\n[Error: the upstream closed]"
    out: list[bytes] = [b"before"]
    TextStream("m").note("the upstream closed", out)
    assert out == [b"before", b"\n\n[Error: the upstream closed]"]  # appended, as one write


def test_non_streamed_completion_is_relayed() -> None:
    """An upstream that ignored `stream`: its completion is made the chunks of its stream first."""
    completion = {
        "object": "chat.completion",
        "model": "gpt-whole",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "All at once."}}],
    }
    writes, relayed = translate(*(completion_as_chunks(completion) or []))
    assert writes == [b'{"model":"gpt-whole"}', b"All at once."]
    assert relayed.text.replied


def test_the_encoder_reads_deltas_only() -> None:
    # A `message` where a chunk has its delta is not read as one: a whole completion is turned into
    # chunks before any encoder sees it (relay/endpoints/course.py, whole_as_events).
    writes, relayed = translate({"model": "m", "choices": [{"message": {"content": "x"}}]})
    assert writes == [b'{"model":"m"}']
    assert relayed.text.replied


@pytest.mark.parametrize(
    "delta",
    [pytest.param("x", id="string"), pytest.param(None, id="null"), pytest.param([], id="list")],
)
def test_delta_that_is_not_an_object_adds_no_text(delta: Any) -> None:
    writes, relayed = translate({"model": "m", "choices": [{"delta": delta}]}, chunk("a"))
    assert writes == [b'{"model":"m"}', b"a"]
    assert relayed.text.replied


@pytest.mark.parametrize(
    "content",
    [pytest.param(None, id="null"), pytest.param(123, id="number"), pytest.param(["x"], id="list")],
)
def test_content_that_is_not_a_string_adds_no_text(content: Any) -> None:
    value = chunk("x")
    value["choices"][0]["delta"]["content"] = content
    writes, relayed = translate(value)
    assert writes == [b'{"model":"gpt-fake-0613"}']
    assert relayed.text.model == "gpt-fake-0613"


def test_lone_surrogate_becomes_replacement_character_as_in_a_browser() -> None:
    writes, _ = translate(b'{"model":"m","choices":[{"delta":{"content":"a\\ud83db"}}]}')
    assert writes == [b'{"model":"m"}', "a\ufffdb".encode()]


# The expected bytes were produced by Node.js: JSON.stringify({model: value}).
@pytest.mark.parametrize(
    ("model", "expected"),
    [
        pytest.param("gpt-4", '{"model":"gpt-4"}', id="plain"),
        pytest.param('a"b\\c', '{"model":"a\\"b\\\\c"}', id="quote-backslash"),
        pytest.param("tab\there\nnl\r\b\f", '{"model":"tab\\there\\nnl\\r\\b\\f"}', id="short-escapes"),
        pytest.param("\x00\x01\x1f\x7f", '{"model":"\\u0000\\u0001\\u001f\x7f"}', id="control-chars"),
        pytest.param("\u2028\u2029", '{"model":"\u2028\u2029"}', id="line-separators-raw"),
        pytest.param("é中😀", '{"model":"é中😀"}', id="non-ascii-raw"),
        pytest.param("\ud83d", '{"model":"\\ud83d"}', id="lone-surrogate-escaped"),
        pytest.param("</script>", '{"model":"</script>"}', id="slash-not-escaped"),
    ],
)
def test_model_packet_matches_javascript_json_stringify(model: str, expected: str) -> None:
    assert jsoncodec.dumps({"model": model}) == expected.encode("utf-8", "surrogatepass")


def test_json_loads_accepts_lone_surrogates_and_refuses_nan() -> None:
    assert jsoncodec.loads(b'"\\ud83d"') == "\ud83d"
    assert jsoncodec.loads(b'{"a": 1}') == {"a": 1}
    for bad in (b"NaN", b"[Infinity]", b"{", b"", b"\xff"):
        with pytest.raises(jsoncodec.JSONDecodeError):
            jsoncodec.loads(bad)


@pytest.mark.parametrize(
    "number", [2**64, -(2**64) - 1, 123456789012345678901234567890, 10**400, 2**63 - 1, 18446744073709551615]
)
def test_json_keeps_every_integer_exact_beyond_64_bits(number: int) -> None:
    # orjson alone would read these as floats (1.2345678901234568e+29), changing the digits.
    text = f'{{"seed": {number}}}'
    for data in (text.encode(), text):
        assert jsoncodec.loads(data) == {"seed": number}
    assert jsoncodec.dumps(jsoncodec.loads(f"[{number}]".encode())) == f"[{number}]".encode()
    quoted = b'{"text": "order 12345678901234567890123 shipped", "n": 1.5}'  # long digits in a string
    assert jsoncodec.loads(quoted) == {"text": "order 12345678901234567890123 shipped", "n": 1.5}


# -- decoder and wire format together, under every split ------------------------------------

_tokens = st.lists(
    st.lists(st.sampled_from([*'ab \n"\\é中😀\u2028\u0085\r', "👩‍💻"]), max_size=6).map("".join),
    min_size=1,
    max_size=12,
)


@given(_tokens, st.lists(st.integers(0, 2000), max_size=30), st.booleans())
def test_every_split_gives_the_same_body_and_every_write_is_whole_utf8(
    tokens: list[str], cuts: list[int], crlf: bool
) -> None:
    stream = b"".join(step for step in openai_stream(tokens) if isinstance(step, bytes))
    if crlf:
        stream = stream.replace(b"\n", b"\r\n")
    points = sorted({min(cut, len(stream)) for cut in cuts})
    reads = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]

    decoder, relayed = SSEDecoder(), Relayed("asked")
    writes: list[bytes] = []
    for read in reads:
        writes += relayed.read(*decoder.feed(read))
    writes += relayed.read(*decoder.flush())
    relayed.text.end(writes)

    assert writes[0] == b'{"model":"gpt-fake-0613"}'
    assert b"".join(writes[1:]) == "".join(tokens).encode()
    for write in writes:
        write.decode("utf-8")  # each write is whole characters: the 2023 client decodes each read alone
    assert relayed.text.finished
    assert relayed.tally == Tally(chunks=len(tokens) + 2, skipped=0)  # the role chunk, the tokens, the finish
    assert relayed.usage.written == len("".join(tokens))


def test_sse_helper_round_trip() -> None:
    # The fake's own encoder, checked once so the property above rests on it.
    assert sse({"a": "é"}) == 'data: {"a": "é"}\n\n'.encode()
    assert sse("[DONE]") == b"data: [DONE]\n\n"


# -- the relay's loop around every encoder (relay/formats/encoding.py) ----------------------------


class Recorder:
    """An encoder that says what it was given."""

    def __init__(self, *, finished: bool = False) -> None:
        self.packet: bytes | None = None
        self.finished = finished
        self.replied = False
        self.error: str | None = None
        self.calls: list[Any] = []

    def events(self, events: Any, out: list[bytes]) -> None:
        self.calls.append(("events", list(events)))
        out.append(b"events")

    def done(self, out: list[bytes]) -> None:
        self.calls.append("done")
        out.append(b"done")

    def end(self, out: list[bytes]) -> None:
        self.calls.append("end")

    def note(self, message: str, out: list[bytes]) -> None:
        self.calls.append(("note", message))


def test_encode_gives_one_reads_objects_at_once_as_they_came_and_parsed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder, out, tally = Recorder(), [b"before"], Tally()
    seen: list[dict[str, Any]] = []
    with caplog.at_level(logging.WARNING, logger="relay.formats.jsoncodec"):
        encode(recorder, [b'{"a": 1}', b"", b"[1]", b'{"b":\n2}', b"[done]"], out, tally, seen.append)
    assert recorder.calls == [("events", [(b'{"a": 1}', {"a": 1}), (b'{"b":\n2}', {"b": 2})])]
    assert seen == [{"a": 1}, {"b": 2}]  # what the reply's usage is read from
    assert out == [b"before", b"events"]  # appended to what the caller had
    assert tally == Tally(chunks=2, skipped=2)  # the empty data is not counted
    assert len(caplog.records) == 2


def test_encode_of_a_read_without_an_object_gives_the_encoder_nothing() -> None:
    recorder, out = Recorder(), list[bytes]()
    encode(recorder, [b"", b"not json"], out, Tally(), lambda _: None)
    encode(recorder, [], out, Tally(), lambda _: None)
    assert (recorder.calls, out) == ([], [])


def test_encode_stops_at_done_and_reads_nothing_after_it(caplog: pytest.LogCaptureFixture) -> None:
    recorder, out, tally = Recorder(), list[bytes](), Tally()
    seen: list[dict[str, Any]] = []
    with caplog.at_level(logging.WARNING, logger="relay.formats.jsoncodec"):
        encode(recorder, [b'{"a": 1}', b"[DONE]", b'{"b": 2}', b"not json"], out, tally, seen.append)
    assert recorder.calls == [("events", [(b'{"a": 1}', {"a": 1})]), "done"]
    assert out == [b"events", b"done"]
    assert (tally, seen, caplog.records) == (Tally(chunks=1, skipped=0), [{"a": 1}], [])


def test_encode_of_done_alone_is_done_alone() -> None:
    recorder, out = Recorder(), list[bytes]()
    encode(recorder, [b"[DONE]"], out, Tally(), lambda _: None)
    assert (recorder.calls, out) == (["done"], [b"done"])


def test_done_is_not_given_to_an_encoder_already_finished() -> None:
    recorder, out = Recorder(finished=True), list[bytes]()
    encode(recorder, [b'{"a": 1}', b"[DONE]"], out, Tally(), lambda _: None)
    assert recorder.calls == [("events", [(b'{"a": 1}', {"a": 1})])]
