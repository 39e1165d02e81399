"""The wire format: upstream chunk payloads in, the original route's bytes out. No network."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.formats import jsoncodec
from relay.formats.original import TextStream, describe_error, error_note
from relay.formats.sse import SSEDecoder
from tests.fake_upstream import chunk, openai_stream, sse


def payload(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def translate(*values: Any, model: str = "gpt-asked") -> tuple[list[bytes], TextStream]:
    text = TextStream(model)
    payloads = [value if isinstance(value, bytes) else payload(value) for value in values]
    return text.translate(payloads), text


def test_model_packet_is_a_write_of_its_own_then_the_text() -> None:
    writes, text = translate(chunk("", role="assistant"), chunk("Hel"), chunk("lo"))
    assert writes == [b'{"model":"gpt-fake-0613"}', b"Hello"]
    assert text.model == "gpt-fake-0613"
    assert text.chunks == 3


def test_later_batches_carry_only_text() -> None:
    text = TextStream("gpt-asked")
    assert text.translate([payload(chunk("a"))]) == [b'{"model":"gpt-fake-0613"}', b"a"]
    assert text.translate([payload(chunk("b")), payload(chunk("c"))]) == [b"bc"]
    assert text.translate([payload(chunk(finish="stop"))]) == []


def test_bare_role_announcement_is_not_the_first_packet() -> None:
    writes, _ = translate(chunk(role="assistant", model="first"), chunk("Hi", model="second"))
    assert writes == [b'{"model":"second"}', b"Hi"]


def test_delta_with_role_and_content_keeps_its_content() -> None:
    # The original dropped any delta that had a role, content and all.
    writes, _ = translate(chunk("Hello", role="assistant"), chunk(" world"))
    assert writes == [b'{"model":"gpt-fake-0613"}', b"Hello world"]


def test_model_missing_from_chunk_falls_back_to_the_requested_model() -> None:
    writes, _ = translate({"choices": [{"delta": {"content": "x"}}]})
    assert writes == [b'{"model":"gpt-asked"}', b"x"]
    writes, _ = translate({"model": "", "choices": [{"delta": {"content": "x"}}]})
    assert writes == [b'{"model":"gpt-asked"}', b"x"]  # an empty name names nothing


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"id": "x", "choices": [], "prompt_filter_results": [{"index": 0}]}, id="azure-filter"),
        pytest.param({"choices": [], "usage": {"total_tokens": 3}}, id="usage"),
        pytest.param({"object": "chat.completion.chunk"}, id="no-choices-key"),
        pytest.param({"choices": None}, id="choices-null"),
        pytest.param({"choices": ["x"]}, id="choice-not-object"),
    ],
)
def test_chunks_without_a_usable_choice_are_skipped(value: Any) -> None:
    writes, text = translate(value, chunk("after"))
    assert writes == [b'{"model":"gpt-fake-0613"}', b"after"]
    assert text.finished is False


def test_usage_is_kept_for_the_log() -> None:
    _, text = translate(chunk("a"), {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}})
    assert text.usage == {"prompt_tokens": 1, "completion_tokens": 2}


def test_a_stream_without_usage_leaves_none_for_the_log() -> None:
    # The request log reports usage only when it `is not None` and estimates tokens otherwise.
    _, text = translate(chunk("a"), chunk(finish="stop"), b"[DONE]")
    assert text.usage is None


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
    _, text = translate(*values)
    assert text.replied is replied


def test_text_chars_counts_characters_over_every_batch() -> None:
    """The reply's length in characters (not bytes), summed over calls, for the token estimate."""
    text = TextStream("gpt-asked")
    assert text.text_chars == 0
    text.translate([payload(chunk("é中")), payload(chunk("😀"))])
    text.translate([payload(chunk("ab"))])
    text.translate([b"[DONE]"])
    assert text.text_chars == 5


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
        writes, text = translate(chunk("a"), bad, chunk("b"), bad)
    assert writes == [b'{"model":"gpt-fake-0613"}', b"ab"]
    assert text.skipped == 2
    # The log says what happened and the size only: the payload may hold the user's conversation.
    expected = f"Skipped an upstream event that is not a JSON object ({len(bad)} bytes)"
    assert [record.getMessage() for record in caplog.records] == [expected, expected]


def test_done_ends_the_stream_and_what_follows_is_ignored() -> None:
    writes, text = translate(chunk("a"), b"[DONE]", chunk("after"))
    assert writes == [b'{"model":"gpt-fake-0613"}', b"a"]
    assert text.finished and text.error is None


def test_error_event_ends_the_stream_keeping_the_text_before_it() -> None:
    writes, text = translate(chunk("partial"), {"error": {"message": "Rate limit reached", "type": "x"}})
    assert writes == [b'{"model":"gpt-fake-0613"}', b"partial"]
    assert text.finished
    assert text.error == "Rate limit reached"


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
    assert TextStream("m").note("the upstream closed") == b"\n\n[Error: the upstream closed]"


def test_non_streamed_completion_is_relayed() -> None:
    completion = {
        "object": "chat.completion",
        "model": "gpt-whole",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "All at once."}}],
    }
    writes, _ = translate(completion)
    assert writes == [b'{"model":"gpt-whole"}', b"All at once."]


@pytest.mark.parametrize(
    "delta",
    [pytest.param("x", id="string"), pytest.param(None, id="null"), pytest.param([], id="list")],
)
def test_delta_that_is_not_an_object_adds_no_text(delta: Any) -> None:
    writes, text = translate({"model": "m", "choices": [{"delta": delta}]}, chunk("a"))
    assert writes == [b'{"model":"m"}', b"a"]
    assert text.replied


@pytest.mark.parametrize(
    "content",
    [pytest.param(None, id="null"), pytest.param(123, id="number"), pytest.param(["x"], id="list")],
)
def test_content_that_is_not_a_string_adds_no_text(content: Any) -> None:
    value = chunk("x")
    value["choices"][0]["delta"]["content"] = content
    writes, text = translate(value)
    assert writes == [b'{"model":"gpt-fake-0613"}']
    assert text.model == "gpt-fake-0613"


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

    decoder, text = SSEDecoder(), TextStream("asked")
    writes: list[bytes] = []
    for read in reads:
        writes += text.translate(decoder.feed(read))
    writes += text.translate(decoder.flush())

    assert writes[0] == b'{"model":"gpt-fake-0613"}'
    assert b"".join(writes[1:]) == "".join(tokens).encode()
    for write in writes:
        write.decode("utf-8")  # each write is whole characters: the 2023 client decodes each read alone
    assert text.finished


def test_sse_helper_round_trip() -> None:
    # The fake's own encoder, checked once so the property above rests on it.
    assert sse({"a": "é"}) == 'data: {"a": "é"}\n\n'.encode()
    assert sse("[DONE]") == b"data: [DONE]\n\n"
