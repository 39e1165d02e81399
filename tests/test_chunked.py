"""The chunked transfer-coding decoder (relay/chunked.py): split anywhere, strict as h11, and h11 brought to the end."""

from __future__ import annotations

import random

import h11
import pytest

from relay.chunked import MAX_LINE, ChunkedDecoder, ChunkedError

FIRST = b'data: {"a": "\xe4\xbd\xa0\xe5\xa5\xbd"}\n\n'  # CJK: multi-byte characters
BODY = (
    b"%x\r\n%s\r\n" % (len(FIRST), FIRST)
    + b"5;name=value\r\nhello\r\n"  # a chunk extension
    + b"A \r\n0123456789\r\n"  # upper-case hex, whitespace before CRLF
    + b"0\r\nX-Trailer: yes\r\n\r\n"
)
DECODED = FIRST + b"hello0123456789"


def decode(pieces: list[bytes]) -> tuple[bytes, ChunkedDecoder]:
    decoder = ChunkedDecoder()
    return b"".join(decoder.feed(piece) for piece in pieces), decoder


def test_whole_body_in_one_read() -> None:
    data, decoder = decode([BODY])
    assert data == DECODED
    assert decoder.done
    assert decoder.extra == b""


@pytest.mark.parametrize("split", range(1, len(BODY)))
def test_split_at_every_byte(split: int) -> None:
    data, decoder = decode([BODY[:split], BODY[split:]])
    assert data == DECODED
    assert decoder.done


def test_one_byte_at_a_time() -> None:
    data, decoder = decode([BODY[i : i + 1] for i in range(len(BODY))])
    assert data == DECODED
    assert decoder.done


def test_bytes_after_the_end_are_kept_apart() -> None:
    data, decoder = decode([b"3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200"])
    assert data == b"abc"
    assert decoder.done
    assert decoder.extra == b"HTTP/1.1 200"


def test_not_done_before_the_last_chunk() -> None:
    data, decoder = decode([b"3\r\nabc\r\n"])
    assert data == b"abc"
    assert not decoder.done


@pytest.mark.parametrize(
    ("body", "says"),
    [
        pytest.param(b"zz\r\nabc\r\n", "not hex", id="size-not-hex"),
        pytest.param(b"\r\nabc\r\n", "not hex", id="size-empty"),
        pytest.param(b"3\nabc\r\n", "CRLF", id="size-line-bare-LF"),
        pytest.param(b"3\r\nabcX\r\n", "CRLF", id="data-too-long"),
        pytest.param(b"11111111111111111\r\n", "not hex", id="size-over-16-digits"),
        pytest.param(b"0\r\nno colon here\r\n\r\n", "header", id="bad-trailer"),
        pytest.param(b"1" * (MAX_LINE + 1), "too long", id="endless-size-line"),
    ],
)
def test_malformed_bodies_are_refused(body: bytes, says: str) -> None:
    with pytest.raises(ChunkedError, match=says):
        ChunkedDecoder().feed(body)


def h11_reaches_the_end(start: bytes, completion: bytes) -> bool:
    """Does h11, given a response head, `start` and then `completion`, end the message cleanly?"""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="POST", target="/", headers=[("Host", "x"), ("Content-Length", "0")]))
    client.send(h11.EndOfMessage())
    client.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + start)
    assert isinstance(client.next_event(), h11.Response)
    if completion:
        client.receive_data(completion)
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA:
            return False
        if isinstance(event, h11.EndOfMessage):
            return client.their_state is h11.DONE and client.trailing_data == (b"", False)


@pytest.mark.parametrize("split", range(len(BODY) + 1))
def test_completion_ends_the_message_for_h11_wherever_the_start_stops(split: int) -> None:
    start = BODY[:split]
    decoder = ChunkedDecoder()
    decoder.feed(start)
    completion = decoder.completion()
    assert completion is not None
    assert h11_reaches_the_end(start, completion)


def test_completion_of_random_bodies() -> None:
    rng = random.Random(7)
    for _ in range(300):
        chunks = [
            bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))) for _ in range(rng.randrange(4))
        ]
        body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        start = body[: rng.randrange(len(body) + 1)]
        decoder = ChunkedDecoder()
        decoder.feed(start)
        completion = decoder.completion()
        assert completion is not None
        assert h11_reaches_the_end(start, completion), (body, start, completion)


def test_no_completion_for_a_huge_chunk_in_progress() -> None:
    decoder = ChunkedDecoder()
    decoder.feed(b"ffffff\r\nabc")
    assert decoder.completion() is None  # the connection is closed rather than fed 16 MiB
