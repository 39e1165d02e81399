"""The OpenAI-compatible stream: the upstream's events passed on one by one, as they arrive.

Each event goes out as `data: <json>\\n\\n`, as the upstream wrote it (tool-call
deltas, usage chunks, empty-choice chunks, error events untouched), and the stream
ends with `data: [DONE]\\n\\n`. A failure after the stream began ends it with an
event the OpenAI SDKs raise: `data: {"error": {...}}`. No I/O here.
"""

from __future__ import annotations

from typing import Any

from relay import jsoncodec

DONE = b"[DONE]"
DONE_EVENT = b"data: [DONE]\n\n"


def error_event(message: str, kind: str = "api_error") -> bytes:
    payload = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return b"data: " + jsoncodec.dumps(payload) + b"\n\n"


class EventPassThrough:
    """Re-frames the upstream's events; keeps what the request log reports (same face as wire.TextStream)."""

    __slots__ = ("chunks", "error", "finished", "packet", "skipped", "usage")

    def __init__(self) -> None:
        self.packet: bytes | None = None  # this format has no model packet
        self.finished = False  # [DONE] was read
        self.error: str | None = None  # never set: an upstream error event is passed on as is
        self.chunks = 0
        self.skipped = 0
        self.usage: dict[str, Any] | None = None

    def translate(self, payloads: list[bytes]) -> list[bytes]:
        """One write for all the events of one upstream read."""
        out: list[bytes] = []
        for payload in payloads:
            if payload == DONE:
                self.finished = True
                out.append(DONE_EVENT)
                break
            if not payload:
                continue
            self.chunks += 1
            if b'"usage":{' in payload:  # the usage chunk; parsed only for the log
                self._note_usage(payload)
            out.append(b"data: " + payload + b"\n\n")
        return [b"".join(out)] if out else []

    def end(self) -> list[bytes]:
        """An upstream that ended without [DONE]: the caller still gets one."""
        return [] if self.finished else [DONE_EVENT]

    def note(self, message: str) -> bytes:
        return error_event(message)

    def _note_usage(self, payload: bytes) -> None:
        try:
            chunk = jsoncodec.loads(payload)
        except jsoncodec.JSONDecodeError:
            return
        if isinstance(chunk, dict) and isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
