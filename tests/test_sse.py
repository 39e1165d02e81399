"""The SSE decoder, byte by byte, without a network."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.formats.sse import EventTooLarge, SSEDecoder


def decode(*reads: bytes, flush: bool = True) -> list[bytes]:
    decoder = SSEDecoder()
    events: list[bytes] = []
    for read in reads:
        events += decoder.feed(read)
    if flush:
        events += decoder.flush()
    return events


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        pytest.param(b"data: a\n\n", [b"a"], id="lf"),
        pytest.param(b"data: a\r\n\r\n", [b"a"], id="crlf"),
        pytest.param(b"data: a\r\r", [b"a"], id="cr"),
        pytest.param(b"data: a\r\n\ndata: b\r\rdata: c\n\r\n", [b"a", b"b", b"c"], id="mixed-line-ends"),
        pytest.param(b"data:a\n\n", [b"a"], id="no-space-after-colon"),
        pytest.param(b"data:  a\n\n", [b" a"], id="only-one-space-dropped"),
        pytest.param(b"data: a\ndata: b\n\n", [b"a\nb"], id="multi-line-data-joined-with-lf"),
        pytest.param(b"data\n\n", [b""], id="field-without-colon-is-empty"),
        pytest.param(b"data:\n\n", [b""], id="empty-data"),
        pytest.param(b": keep-alive\n\ndata: a\n\n", [b"a"], id="comment-ignored"),
        pytest.param(b":\n\n", [], id="bare-comment"),
        pytest.param(b"event: delta\nid: 7\nretry: 100\ndata: a\n\n", [b"a"], id="other-fields-ignored"),
        pytest.param(b"dataX: a\ndata: b\n\n", [b"b"], id="field-name-starting-with-data"),
        pytest.param(b"data : a\n\n", [], id="space-before-colon-is-another-field"),
        pytest.param(b"event: x\n\n", [], id="event-without-data-dropped"),
        pytest.param(b"\n\n\ndata: a\n\n\n\n", [b"a"], id="extra-blank-lines"),
        pytest.param(b"\xef\xbb\xbfdata: a\n\n", [b"a"], id="bom-skipped"),
        pytest.param(b"data: a\n\n\xef\xbb\xbfdata: b\n\n", [b"a"], id="bom-only-at-start"),
        pytest.param(b"\n\xef\xbb\xbfdata: a\n\n", [], id="bom-after-a-blank-line-is-not-skipped"),
        pytest.param(
            'data: {"c":"x\u2028y\u2029z\u0085w\x0bv\x0cu\x1cs"}\n\n'.encode(),
            ['{"c":"x\u2028y\u2029z\u0085w\x0bv\x0cu\x1cs"}'.encode()],
            id="unicode-and-ascii-separators-are-not-line-ends",
        ),
        pytest.param("data: é😀中\n\n".encode(), ["é😀中".encode()], id="multibyte"),
        pytest.param(b"data: [DONE]\n\n", [b"[DONE]"], id="done-is-just-data"),
    ],
)
def test_one_read(stream: bytes, expected: list[bytes]) -> None:
    # Each stream ends in a blank line: its events come from the read itself, flush adds none.
    assert decode(stream, flush=False) == expected
    assert decode(stream) == expected


@pytest.mark.parametrize(
    ("reads", "expected"),
    [
        pytest.param([b"data: a\r", b"\n\r\n"], [b"a"], id="crlf-split-between-reads"),
        pytest.param([b"data: a\r", b"\r"], [b"a"], id="cr-then-cr-is-a-blank-line"),
        pytest.param([b"data: a\r", b"\n", b"\n"], [b"a"], id="lf-alone-after-cr"),
        pytest.param([b"data: a\r", b"\ndata: b\n\n"], [b"a\nb"], id="crlf-split-then-same-event"),
        pytest.param([b"da", b"ta: ", b"a", b"\n", b"\n"], [b"a"], id="field-name-split"),
        pytest.param(
            ["data: 😀\n\n".encode()[:8], "data: 😀\n\n".encode()[8:]], ["😀".encode()], id="char-split"
        ),
        pytest.param([b"\xef\xbb", b"\xbfdata: a\n\n"], [b"a"], id="bom-split"),
        # Only the stream's first bytes may be a BOM: one at the start of a later read is a
        # character of a field name, so that line is not data.
        pytest.param([b"data: a\n\n", b"\xef\xbb\xbfdata: b\n\n"], [b"a"], id="bom-only-at-the-first-read"),
        pytest.param([b"data: a\n", b"\n", b"data: b\n\n"], [b"a", b"b"], id="blank-line-alone"),
        pytest.param([b"", b"data: a\n\n", b""], [b"a"], id="empty-reads"),
    ],
)
def test_split_reads(reads: list[bytes], expected: list[bytes]) -> None:
    assert decode(*reads) == expected


def test_events_are_returned_by_the_read_that_completes_them() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\ndata: b\n\ndata: c") == [b"a", b"b"]
    assert decoder.feed(b"\n\n") == [b"c"]


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        pytest.param(b"data: a\n", [b"a"], id="no-blank-line-at-end"),
        pytest.param(b"data: a", [b"a"], id="unterminated-last-line"),
        pytest.param(b"data: a\r", [b"a"], id="cr-at-end"),
        pytest.param(b": comment", [], id="comment-at-end"),
        pytest.param((b"data: a", b"b", b"c"), [b"abc"], id="unterminated-line-in-several-reads"),
    ],
)
def test_flush_keeps_what_the_upstream_sent_at_the_end(
    stream: bytes | tuple[bytes, ...], expected: list[bytes]
) -> None:
    # The spec would discard these; the relay keeps them (see relay/formats/sse.py).
    reads = stream if isinstance(stream, tuple) else (stream,)
    assert decode(*reads, flush=False) == []
    assert decode(*reads) == expected


# -- bounds: a line and an event's data, at most max_event bytes ------------------------------

LIMIT = 10


@pytest.mark.parametrize(
    ("reads", "expected"),
    [
        # A line held across reads (no line end yet) is counted over all its pieces.
        pytest.param([b"data: abcd"], [b"abcd"], id="line-of-exactly-the-limit-in-one-piece"),
        pytest.param([b"data: ", b"abcd"], [b"abcd"], id="line-of-exactly-the-limit-in-two-pieces"),
        pytest.param([b"data: a\n\ndata: ", b"abcd"], [b"a", b"abcd"], id="each-line-counted-from-its-start"),
        pytest.param(
            [b"data: a", b"\ndata: ", b"abcd"], [b"a\nabcd"], id="count-restarts-when-a-held-line-ends"
        ),
        # An event's data joined over several lines, LFs included, is counted as a whole.
        # Lines of 9 and 10 bytes (no space after the colon), data of 10 with the LF between them.
        pytest.param([b"data:abcd\ndata:efghi\n"], [b"abcd\nefghi"], id="data-of-exactly-the-limit"),
        pytest.param([b"data\n" * (LIMIT + 1)], [b"\n" * LIMIT], id="empty-data-lines-count-their-lf"),
    ],
)
def test_up_to_the_limit_passes(reads: list[bytes], expected: list[bytes]) -> None:
    decoder = SSEDecoder(max_event=LIMIT)
    events: list[bytes] = []
    for read in reads:
        events += decoder.feed(read)
    assert events + decoder.feed(b"\n\n") + decoder.flush() == expected


@pytest.mark.parametrize(
    ("reads", "message"),
    [
        pytest.param(
            [b"data: ", b"abcde"], "a line of the upstream's stream", id="line-one-over-in-two-pieces"
        ),
        pytest.param([b"data: a\ndata: ", b"abcde"], "a line", id="line-one-over-held-after-a-line-end"),
        pytest.param(
            [b"data:abcd\ndata:efghi\ndata:\n"], "an event of the upstream's stream", id="data-one-over"
        ),
        pytest.param([b"data\n" * (LIMIT + 2)], "an event", id="empty-data-lines-one-over"),
    ],
)
def test_over_the_limit_is_refused(reads: list[bytes], message: str) -> None:
    decoder = SSEDecoder(max_event=LIMIT)
    with pytest.raises(EventTooLarge, match=f"^{message}.* longer than {LIMIT} bytes$"):
        for read in reads:
            decoder.feed(read)


def test_flush_leaves_no_partial_line_behind() -> None:
    """After flush, what is fed starts a new line, bounded afresh (flush resets the held line)."""
    decoder = SSEDecoder(max_event=LIMIT)
    assert decoder.feed(b"data: abc") == []
    assert decoder.flush() == [b"abc"]
    assert decoder.feed(b"data: ") == []
    assert decoder.feed(b"wxyz") == []  # the new line holds exactly the limit
    assert decoder.feed(b"\n\n") == [b"wxyz"]


# -- every split gives the same events ----------------------------------------------------------

# Pieces of JSON text, "\\n" (an escaped newline) and characters that are line ends elsewhere.
_text = st.lists(
    st.sampled_from([*'ab {}":,é中😀\u2028\u2029\u0085\t', "\\n"]),
    max_size=12,
).map("".join)
_line_end = st.sampled_from([b"\n", b"\r", b"\r\n"])


@st.composite
def event_streams(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """A stream of events with mixed line ends, comments and fields, and the data it carries."""
    stream = b""
    expected: list[bytes] = []

    def end() -> bytes:
        # A blank line right after a CR must not start with LF: CR LF would be one line end.
        line_end = draw(_line_end)
        return b"\r\n" if stream.endswith(b"\r") and line_end == b"\n" else line_end

    for _ in range(draw(st.integers(0, 6))):
        lines = draw(st.lists(_text, min_size=1, max_size=3))
        for line in lines:
            if draw(st.booleans()):
                stream += b": " + line.encode() + end()
            if draw(st.booleans()):
                stream += b"event: delta" + end()
            # "data:" without the space only where the value does not itself start with one.
            spaced = draw(st.booleans()) or line.startswith(" ")
            stream += (b"data: " if spaced else b"data:") + line.encode() + end()
        stream += end()
        expected.append("\n".join(lines).encode())
    return stream, expected


@given(event_streams(), st.lists(st.integers(0, 400), max_size=20))
def test_every_split_gives_the_same_events(case: tuple[bytes, list[bytes]], cuts: list[int]) -> None:
    stream, expected = case
    points = sorted({min(cut, len(stream)) for cut in cuts})
    reads = [stream[start:end] for start, end in zip([0, *points], [*points, len(stream)], strict=True)]
    assert decode(*reads) == expected
    assert decode(*(stream[i : i + 1] for i in range(len(stream)))) == expected


@pytest.mark.parametrize(
    "reads",
    [
        pytest.param([b"data: " + b"x" * 50 + b"\n\n"], id="a-whole-line-in-one-read"),
        pytest.param([b"data: " + b"x" * 8, b"x" * 40 + b"\n\n"], id="held-then-ended-by-a-long-read"),
        pytest.param([b": " + b"x" * 50 + b"\n"], id="a-long-comment"),
    ],
)
def test_no_line_longer_than_the_limit_passes_however_it_arrives(reads: list[bytes]) -> None:
    decoder = SSEDecoder(max_event=20)
    with pytest.raises(EventTooLarge, match=r"^a line of the upstream's stream is longer than 20 bytes$"):
        for read in reads:
            decoder.feed(read)
