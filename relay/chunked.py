"""An incremental decoder for HTTP/1.1's chunked transfer coding, bytes in, body bytes out.

The upstream's event stream arrives chunked (RFC 9112, section 7.1): a hex size
line (`1f;ext=1\\r\\n`), that many bytes and CRLF, ..., a `0` line, trailer lines,
and an empty line. This does no I/O. Input may be split at any byte; everything a
read completes comes back as one bytes object, so a read carrying a hundred
events is one piece of work downstream, not a hundred.

It is as strict as h11, the parser httpx uses, which it stands in for on the
streaming path (relay/raw_body.py): a size is 1 to 16 hex digits, lines end in
CRLF, a chunk's data is followed by CRLF. Anything else is a ChunkedError. (It is
stricter than h11 in two ways no known upstream meets: h11 takes sizes of up to 20
hex digits, and trailer lines ending in a bare LF. Such a stream would end with
the relay's "connection lost" note after all its text.)
`completion()` gives the bytes that would end the body from where a decoder
stands, so that h11, which saw only the start of the body, can be brought to
the end of the message and the connection kept alive.
"""

from __future__ import annotations

import re

MAX_LINE = 8 * 1024  # a size or trailer line longer than this is not HTTP/1.1 anyone sends
MAX_COMPLETION = 1024 * 1024  # filler h11 is given at most, to finish the chunk it is in

_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]*)?[ \t]*")
_DIGITS = re.compile(rb"[0-9A-Fa-f]{1,16}")

# States
_SIZE_LINE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


def _whole_chunk(data: bytes, position: int, pieces: list[bytes]) -> int | None:
    """The usual case in one step: a whole chunk (size line, data, CRLF) at `position`.

    Appends its data and returns the position after it; None for anything else
    (a chunk cut by the end of the read, the last chunk, an error), which the
    general way then takes.
    """
    line_end = data.find(b"\n", position, position + MAX_LINE)
    if line_end <= position or data[line_end - 1] != 13:  # CR
        return None
    match = _SIZE.fullmatch(data, position, line_end - 1)
    if match is None:
        return None
    size = int(match.group(1), 16)
    data_end = line_end + 1 + size
    if not size or data[data_end : data_end + 2] != b"\r\n":
        return None
    pieces.append(data[line_end + 1 : data_end])
    return data_end + 2


class ChunkedError(ValueError):
    """The body is not valid chunked transfer coding."""


class ChunkedDecoder:
    """Feed network reads; get back the body bytes they carry; `done` after the last chunk and trailers."""

    __slots__ = ("_line", "_remaining", "_state", "extra")

    def __init__(self) -> None:
        self._state = _SIZE_LINE
        self._line = b""  # the start of a size or trailer line, or of a data chunk's CRLF
        self._remaining = 0  # data bytes left in the current chunk
        self.extra = b""  # bytes that came after the end of the body

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes) -> bytes:
        """Decode one read; return the body bytes it carries (possibly empty)."""
        if self._state == _DONE:
            self.extra += data
            return b""
        pieces: list[bytes] = []
        position = 0
        end = len(data)
        while position < end:
            state = self._state
            if state == _SIZE_LINE and not self._line:
                after = _whole_chunk(data, position, pieces)
                if after is not None:
                    position = after
                    continue
            if state == _DATA:
                take = min(self._remaining, end - position)
                pieces.append(data[position : position + take])
                position += take
                self._remaining -= take
                if not self._remaining:
                    self._state = _DATA_END
            elif state == _DATA_END:
                needed = 2 - len(self._line)
                self._line += data[position : position + needed]
                position += needed
                if len(self._line) == 2:
                    if self._line != b"\r\n":
                        raise ChunkedError("a chunk's data is not followed by CRLF")
                    self._line = b""
                    self._state = _SIZE_LINE
            elif state == _DONE:
                self.extra += data[position:]
                break
            else:  # a size line or a trailer line
                line_end = data.find(b"\n", position)
                if line_end < 0:
                    self._line += data[position:]
                    if len(self._line) > MAX_LINE:
                        raise ChunkedError("a chunk size or trailer line is too long")
                    break
                line = self._line + data[position:line_end]
                self._line = b""
                position = line_end + 1
                if not line.endswith(b"\r") or len(line) > MAX_LINE:
                    raise ChunkedError("a chunk size or trailer line does not end in CRLF")
                self._end_of_line(line[:-1])
        return b"".join(pieces) if len(pieces) != 1 else pieces[0]

    def _end_of_line(self, line: bytes) -> None:
        if self._state == _TRAILER:
            if not line:
                self._state = _DONE
            elif b":" not in line:
                raise ChunkedError("a trailer line is not a header field")
            return
        match = _SIZE.fullmatch(line)
        if match is None:
            raise ChunkedError(f"a chunk size line is not hex digits: {line[:40]!r}")
        size = int(match.group(1), 16)
        if size:
            self._remaining = size
            self._state = _DATA
        else:
            self._state = _TRAILER

    def completion(self) -> bytes | None:
        """Bytes that end a valid body from here: filler for the chunk in progress, then the last chunk.

        None when the filler would be over MAX_COMPLETION bytes (the caller then lets
        the connection close rather than reuse it).
        """
        state, line = self._state, self._line
        if state == _DONE:
            return b""
        if state == _DATA_END:
            return b"\r\n"[len(line) :] + b"0\r\n\r\n"
        if state == _TRAILER:  # part of a trailer line: finish it as a header field, then end
            if not line or line == b"\r":
                return b"\r\n"[len(line) :]
            if line.endswith(b"\r"):
                return b"\n\r\n" if b":" in line else None
            if b":" in line:
                return b"\r\n\r\n"
            return None if line.endswith((b" ", b"\t")) else b":\r\n\r\n"
        if state == _DATA:
            filler, head = self._remaining, b""
        elif not line:  # at the start of a size line
            return b"0\r\n\r\n"
        else:  # part of a size line: finish it as it stands, then send the size it says
            digits = _DIGITS.match(line)
            if digits is None:
                return None
            filler = int(digits.group(), 16)
            head = b"\n" if line.endswith(b"\r") else b"\r\n"
            if not filler:
                return head + b"\r\n"  # it was the last chunk: end the (empty) trailers
        if filler > MAX_COMPLETION:
            return None
        return head + b"x" * filler + b"\r\n0\r\n\r\n"
