"""An incremental decoder for server-sent events, bytes in, `data` payloads out.

It follows the WHATWG HTML "event stream interpretation" rules, and does no I/O:
- a line ends at CRLF, CR or LF and nowhere else; `bytes.splitlines` splits at
  exactly those three (unlike `str.splitlines`, which also splits at U+2028,
  U+2029, U+0085 and others that may sit inside a JSON string);
- `data` lines of one event are joined with LF; one space after the colon is
  dropped; a line without a colon is a field with an empty value;
- comments (`:` lines) and the `event`, `id` and `retry` fields are ignored;
- a blank line dispatches the event; an event with no `data` line is dropped;
- a UTF-8 byte order mark at the start of the stream is skipped.

Input may be split at any byte, a CR/LF pair and a multi-byte character
included: only complete lines are interpreted, and lines are bytes, so no
character is ever decoded from half of its bytes.

One departure, so that nothing the upstream sent is lost: at the end of the
stream (`flush`), an unterminated last line is still read and a pending event
is still dispatched, where the spec discards them.

Bounded: a line, and an event's data, longer than `max_event` bytes is an
EventTooLarge, so no upstream can make the relay hold more than that per stream.
"""

from __future__ import annotations

_BOM = b"\xef\xbb\xbf"
# Far above any event a chat API sends (OpenAI's response.completed, which repeats a whole long
# reply, is well under it) and small enough that a full instance of streams cannot exhaust memory.
MAX_EVENT_BYTES = 2 * 1024 * 1024


class EventTooLarge(ValueError):
    """A line or an event's data is longer than the decoder holds."""


class SSEDecoder:
    """Feed network reads; get back the `data` of every event they complete."""

    __slots__ = ("_data", "_data_size", "_max", "_pending", "_pending_size", "_skip_lf", "_started")

    def __init__(self, max_event: int = MAX_EVENT_BYTES) -> None:
        self._max = max_event
        self._pending: list[bytes] = []  # the start of a line not yet terminated
        self._pending_size = 0
        self._data: list[bytes] | None = None  # `data` values of the event being read
        self._data_size = 0  # of `_data`, LFs included; set again by each event's first data line
        self._skip_lf = False  # the last read ended in CR; an LF next is part of it
        self._started = False  # the first line has been seen (BOM check done)

    def feed(self, chunk: bytes) -> list[bytes]:
        """Decode one read; return the `data` of each event it completes, in order."""
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if not chunk:
            return []
        if b"\n" not in chunk and b"\r" not in chunk:
            # No line ends here; keep the piece and join once, so a long line
            # arriving in many small reads costs linear time, not quadratic.
            self._hold(chunk)
            return []
        if self._pending:
            self._pending.append(chunk)
            chunk = b"".join(self._pending)
            self._pending = []
            self._pending_size = 0
        lines = chunk.splitlines()
        if len(chunk) > self._max and any(len(line) > self._max for line in lines):
            raise EventTooLarge(f"a line of the upstream's stream is longer than {self._max} bytes")
        last = chunk[-1]
        if last == 13:  # CR: the line is complete, but an LF may open the next read
            self._skip_lf = True
        elif last != 10:
            self._hold(lines.pop())
        return self._interpret(lines)

    def _hold(self, piece: bytes) -> None:
        self._pending_size += len(piece)
        if self._pending_size > self._max:
            raise EventTooLarge(f"a line of the upstream's stream is longer than {self._max} bytes")
        self._pending.append(piece)

    def flush(self) -> list[bytes]:
        """End of stream: read any unterminated line and dispatch a pending event."""
        # The held line (empty if none), then a blank line that dispatches what is pending.
        lines = [b"".join(self._pending), b""]
        self._pending = []
        self._pending_size = 0
        self._skip_lf = False
        return self._interpret(lines)

    def _interpret(self, lines: list[bytes]) -> list[bytes]:
        if not self._started and lines:
            self._started = True
            if lines[0].startswith(_BOM):
                lines[0] = lines[0][3:]
        events: list[bytes] = []
        data = self._data
        for line in lines:
            if not line:
                if data is not None:
                    events.append(b"\n".join(data))
                    data = None  # the next data line starts the next event, and its size
            elif line.startswith(b"data"):
                if len(line) == 4:
                    value = b""
                elif line[4] == 58:  # "data:"
                    value = line[6:] if line[5:6] == b" " else line[5:]
                else:
                    continue  # another field whose name starts with "data"
                if data is None:
                    data = [value]
                    self._data_size = len(value)
                else:
                    data.append(value)
                    self._data_size += len(value) + 1
                if self._data_size > self._max:
                    raise EventTooLarge(f"an event of the upstream's stream is longer than {self._max} bytes")
            # Any other line is a comment or a field the relay does not use.
        self._data = data
        return events
