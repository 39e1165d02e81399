"""OpenAI's chat completions stream for the caller, passed on one event at a time: pure, no I/O.

Each event goes out as `data: <json>\\n\\n`, as the upstream wrote it (tool-call deltas, usage
chunks, empty-choice chunks, error events untouched), one write per upstream read, and the
stream ends with `data: [DONE]\\n\\n`; a failure after the stream began ends it with an event
the OpenAI SDKs raise: `data: {"error": {...}}`.
"""

from __future__ import annotations

from collections.abc import Sequence

from relay.formats import jsoncodec
from relay.formats.encoding import Event, named
from relay.formats.error_shapes import openai_error

DONE_EVENT = b"data: [DONE]\n\n"


def error_event(message: str) -> bytes:
    """What ends a stream that failed after it began; the OpenAI SDKs raise it as an APIError."""
    return b"data: " + jsoncodec.dumps(openai_error(message, 502)) + b"\n\n"


class ChatEvents:
    """Re-frames the upstream's chunks for the caller (an Encoder)."""

    __slots__ = ("_hide_usage", "error", "finished", "packet", "replied")

    def __init__(self, *, hide_usage: bool = False) -> None:
        self._hide_usage = hide_usage  # the relay asked for the usage chunk, the caller did not
        self.packet: bytes | None = None  # this format has none
        self.finished = False  # [DONE] was read
        self.error: str | None = None  # an error event passed on: the caller's SDK raises it
        self.replied = False  # an event was passed on

    def events(self, events: Sequence[Event], out: list[bytes]) -> None:
        """One write for all the events of one upstream read."""
        framed: list[bytes] = []
        for payload, value in events:
            if self._hide_usage and isinstance(value.get("usage"), dict) and not value.get("choices"):
                continue  # the usage chunk its caller did not ask for
            if value.get("error") is not None and self.error is None:
                self.error = "error event in the stream"
            framed.append(named(None, payload))
        if framed:
            self.replied = True
            out.append(b"".join(framed))

    def done(self, out: list[bytes]) -> None:
        self.finished = True
        if self.replied:  # else the relay says there was nothing
            out.append(DONE_EVENT)

    def end(self, out: list[bytes]) -> None:
        """An upstream that ended without [DONE]: the caller still gets one."""
        if not self.finished and self.replied:
            self.finished = True
            out.append(DONE_EVENT)

    def note(self, message: str, out: list[bytes]) -> None:
        out.append(error_event(message))
