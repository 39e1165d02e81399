"""The OpenAI-compatible stream: the upstream's events passed on one by one, as they arrive.

Each event goes out as `data: <json>\\n\\n`, as the upstream wrote it (tool-call
deltas, usage chunks, empty-choice chunks, error events untouched), and the stream
ends with `data: [DONE]\\n\\n`. A failure after the stream began ends it with an
event the OpenAI SDKs raise: `data: {"error": {...}}`. No I/O here.
"""

from __future__ import annotations

from typing import Any

from relay.errors import openai_error
from relay.formats import jsoncodec
from relay.formats.original import DONE

DONE_EVENT = b"data: [DONE]\n\n"


def error_event(message: str) -> bytes:
    """What ends a stream that failed after it began; the OpenAI SDKs raise it as an APIError."""
    return b"data: " + jsoncodec.dumps(openai_error(message, 502)) + b"\n\n"


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
        for data in payloads:
            payload = data
            if payload == DONE:
                self.finished = True
                if self.replied:  # else the relay says there was nothing, instead of a bare [DONE]
                    out.append(DONE_EVENT)
                break
            if not payload:
                continue
            self.chunks += 1
            if b'"usage":{' in payload:  # the usage chunk; parsed only for the log
                self._note_usage(payload)
            if b"\n" in payload:
                # Data that came on several `data:` lines goes out on several again.
                payload = payload.replace(b"\n", b"\ndata: ")
            out.append(b"data: " + payload + b"\n\n")
        return [b"".join(out)] if out else []

    @property
    def replied(self) -> bool:
        """An event was passed on."""
        return self.chunks > 0

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


# A whole completion's fields that its stream's chunks carry too.
_CHUNK_FIELDS = ("id", "created", "model", "system_fingerprint", "service_tier")


def completion_as_events(body: bytes) -> bytes | None:
    """A whole chat.completion as the stream the caller asked for; None if the body is not one.

    For an upstream that ignored `stream`: per choice, one chunk whose delta is the whole
    message (tool calls numbered, as stream deltas are), one with its finish reason; then the
    usage, if any; then [DONE]. The SDKs read it as they read a stream.
    """
    try:
        completion = jsoncodec.loads(body)
    except jsoncodec.JSONDecodeError:
        return None
    if not isinstance(completion, dict) or not isinstance(completion.get("choices"), list):
        return None
    if not completion["choices"]:
        return None  # no reply in it: the caller is told so, not sent a bare [DONE]
    base: dict[str, Any] = {name: completion[name] for name in _CHUNK_FIELDS if name in completion}
    base["object"] = "chat.completion.chunk"
    chunks: list[dict[str, Any]] = []
    for position, choice in enumerate(completion["choices"]):
        if not isinstance(choice, dict):
            return None
        message = choice.get("message")
        delta = dict(message) if isinstance(message, dict) else {}
        if isinstance(delta.get("tool_calls"), list):
            delta["tool_calls"] = [
                {"index": number, **call} if isinstance(call, dict) else call
                for number, call in enumerate(delta["tool_calls"])
            ]
        index = choice.get("index", position)
        for part in (
            {"index": index, "delta": delta, "logprobs": choice.get("logprobs"), "finish_reason": None},
            {"index": index, "delta": {}, "logprobs": None, "finish_reason": choice.get("finish_reason")},
        ):
            chunks.append({**base, "choices": [part]})
    if isinstance(completion.get("usage"), dict):
        chunks.append({**base, "choices": [], "usage": completion["usage"]})
    return b"".join(b"data: " + jsoncodec.dumps(chunk) + b"\n\n" for chunk in chunks) + DONE_EVENT
