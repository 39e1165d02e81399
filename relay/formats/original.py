"""The original route's wire format: chat.completion.chunk events in, plain text out.

The body the 2023 client reads is `{"model":"<model>"}` (as JavaScript's
JSON.stringify writes it, and as a write of its own, because that client parses
its first network read as JSON), then every `delta.content`, nothing between
them. This module turns decoded SSE `data` payloads into those bytes; it does
no I/O.

Fixed here against the original: chunks without choices (Azure's prompt filter
results, the usage chunk) are skipped instead of ending the stream; a delta with
both `role` and `content` keeps its content; a payload that is not JSON is
logged and skipped; an `{"error": ...}` object ends the stream with a note.
"""

from __future__ import annotations

from typing import Any

from relay.formats import jsoncodec

DONE = b"[DONE]"


def error_note(message: str) -> bytes:
    """The last text of a stream that failed after it began."""
    return encode_text(f"\n\n[Error: {message}]")


def encode_text(text: str) -> bytes:
    """UTF-8, with a lone surrogate turned into U+FFFD as a browser's TextEncoder does."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return jsoncodec.LONE_SURROGATE.sub("\ufffd", text).encode()


def describe_error(error: Any) -> str:
    """A readable message from an OpenAI-style `error` value."""
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, str) and message:
            return message
    if isinstance(error, str) and error:
        return error
    return jsoncodec.dumps(error).decode()


class TextStream:
    """Translates one upstream stream; holds what the request log reports about it."""

    __slots__ = (
        "chunks",
        "error",
        "finished",
        "model",
        "packet",
        "replied",
        "requested_model",
        "skipped",
        "text_chars",
        "usage",
    )

    def __init__(self, requested_model: str) -> None:
        self.requested_model = requested_model
        self.model: str | None = None  # set when the model packet is written
        self.finished = False  # [DONE] or an error event was read
        self.error: str | None = None  # the message of an in-stream error event
        self.chunks = 0  # chunk objects read
        self.skipped = 0  # payloads that were not a JSON object
        self.usage: dict[str, Any] | None = None
        self.packet: bytes | None = None  # the model packet, once known
        self.replied = False  # a chunk with a choice was read: a reply, empty or not
        self.text_chars = 0

    def note(self, message: str) -> bytes:
        """The last text of a stream that failed after it began."""
        return error_note(message)

    def end(self) -> list[bytes]:
        """The writes that close a stream that ended without [DONE]: none in this format."""
        return []

    def translate(self, payloads: list[bytes]) -> list[bytes]:
        """Return the writes for these payloads: the model packet alone, then text."""
        writes: list[bytes] = []
        parts: list[str] = []
        packet_written = self.packet is not None  # by an earlier call
        for payload in payloads:
            if payload == DONE:
                self.finished = True
                break
            chunk = jsoncodec.event_object(payload)
            if chunk is None:
                self.skipped += bool(payload)
                continue
            self.chunks += 1
            if "error" in chunk and chunk["error"] is not None:
                self.error = describe_error(chunk["error"])
                self.finished = True
                break
            usage = chunk.get("usage")
            if isinstance(usage, dict):
                self.usage = usage
            content = self._content(chunk)
            if content:
                parts.append(content)
        if parts:
            text = "".join(parts)
            self.text_chars += len(text)
            writes.append(encode_text(text))
        if not packet_written and self.packet is not None:
            writes.insert(0, self.packet)
        return writes

    def _content(self, chunk: dict[str, Any]) -> str | None:
        choices = chunk.get("choices")
        if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
            return None  # no choice: a prompt-filter or usage chunk
        choice = choices[0]
        self.replied = True
        # `message` instead of `delta`: an upstream that ignored `stream` and sent one completion.
        delta = choice.get("delta", choice.get("message"))
        if not isinstance(delta, dict):
            delta = {}
        content = delta.get("content")
        if self.model is None:
            if content is None and delta.get("role") is not None:
                return None  # a bare role announcement: not yet the first packet
            model = chunk.get("model")
            self.model = model if isinstance(model, str) and model else self.requested_model
            self.packet = jsoncodec.dumps({"model": self.model})
        return content if isinstance(content, str) else None
