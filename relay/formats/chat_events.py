"""The OpenAI API's streams, passed on one event at a time, as they arrive: pure, no I/O.

Chat completions: each event goes out as `data: <json>\\n\\n`, as the upstream wrote it
(tool-call deltas, usage chunks, empty-choice chunks, error events untouched), and the
stream ends with `data: [DONE]\\n\\n`; a failure after the stream began ends it with an
event the OpenAI SDKs raise: `data: {"error": {...}}`. The Responses API (`responses=True`):
each event named by its type (`event: response.output_text.delta`), as OpenAI sends them,
no [DONE]; a failure is an `error` event. Either way a `data:` line that is not a JSON
object is logged (its size) and skipped, as on the original route: an SDK would fail on it
and lose the rest of the reply.
"""

from __future__ import annotations

from typing import Any

from relay.errors import openai_error
from relay.formats import jsoncodec
from relay.formats.original import DONE
from relay.formats.responses_reply import event

DONE_EVENT = b"data: [DONE]\n\n"
# The Responses API's events that end a reply.
RESPONSES_ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})


def error_event(message: str) -> bytes:
    """What ends a stream that failed after it began; the OpenAI SDKs raise it as an APIError."""
    return b"data: " + jsoncodec.dumps(openai_error(message, 502)) + b"\n\n"


class EventPassThrough:
    """Re-frames the upstream's events; keeps what the request log reports (a relay/serving/reply encoder)."""

    __slots__ = (
        "_hide_usage",
        "_responses",
        "_sequence",
        "chunks",
        "error",
        "finished",
        "packet",
        "skipped",
        "text_chars",
        "usage",
    )

    def __init__(self, *, responses: bool = False, hide_usage: bool = False) -> None:
        self._responses = responses
        self._hide_usage = hide_usage  # the relay asked for the usage chunk, the caller did not
        self.text_chars = 0
        self._sequence = -1  # the last sequence_number seen (Responses events carry one)
        self.packet: bytes | None = None  # this format has no model packet
        self.finished = False  # [DONE], or the Responses API's last event, was read
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
                if self.replied and not self._responses:  # else the relay says there was nothing
                    out.append(DONE_EVENT)
                break
            value = jsoncodec.event_object(payload)
            if value is None:
                self.skipped += bool(payload)
                continue
            self.chunks += 1
            if b"\n" in payload:
                # Data that came on several `data:` lines goes out on several again.
                payload = payload.replace(b"\n", b"\ndata: ")  # noqa: PLW2901 - the same event, re-framed
            if self._responses:
                out.append(self._named(value, payload))
                if self.finished:
                    break
            else:
                usage = value.get("usage")
                if isinstance(usage, dict):
                    self.usage = usage
                    if self._hide_usage and not value.get("choices"):
                        continue  # the usage chunk its caller did not ask for
                self.text_chars += _content_length(value)
                out.append(b"data: " + payload + b"\n\n")
        return [b"".join(out)] if out else []

    def _named(self, value: dict[str, Any], payload: bytes) -> bytes:
        kind = value.get("type")
        if kind == "response.output_text.delta" and isinstance(value.get("delta"), str):
            self.text_chars += len(value["delta"])
        if isinstance(value.get("sequence_number"), int):
            self._sequence = value["sequence_number"]
        if kind in RESPONSES_ENDS:
            self.finished = True
            response = value.get("response")
            if isinstance(response, dict) and isinstance(response.get("usage"), dict):
                self.usage = response["usage"]
        name = kind.encode() if isinstance(kind, str) and kind.isprintable() else None
        return (b"event: " + name + b"\n" if name else b"") + b"data: " + payload + b"\n\n"

    @property
    def replied(self) -> bool:
        """An event was passed on."""
        return self.chunks > 0

    def end(self) -> list[bytes]:
        """An upstream that ended without [DONE]: the caller still gets one (chat completions)."""
        return [] if self.finished or self._responses else [DONE_EVENT]

    def note(self, message: str) -> bytes:
        if self._responses:
            self._sequence += 1
            failure = {"type": "error", "code": "server_error", "message": message, "param": None}
            return event({**failure, "sequence_number": self._sequence})
        return error_event(message)


def _content_length(chunk: dict[str, Any]) -> int:
    choices = chunk.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        delta = choices[0].get("delta")
        if isinstance(delta, dict) and isinstance(delta.get("content"), str):
            return len(delta["content"])
    return 0


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
