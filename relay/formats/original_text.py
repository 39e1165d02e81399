"""The original route's wire format: chat.completion.chunk events in, plain text out; pure, no I/O.

The body the 2023 client reads is `{"model":"<model>"}` (as JavaScript's JSON.stringify writes
it, and as a write of its own, because that client parses its first network read as JSON),
then every `delta.content`, nothing between them.

Fixed here against the original: chunks without choices (Azure's prompt filter results, the
usage chunk) are skipped instead of ending the stream; a delta with both `role` and `content`
keeps its content; an `{"error": ...}` object ends the stream with a note saying what it said.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from relay.formats import jsoncodec


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
    """Translates one upstream stream into the original's text (an Encoder)."""

    __slots__ = ("error", "finished", "model", "packet", "replied", "requested_model")

    def __init__(self, requested_model: str) -> None:
        self.requested_model = requested_model
        self.model: str | None = None  # set when the model packet is made
        self.finished = False  # [DONE] or an error event was read
        self.error: str | None = None  # the message of an in-stream error event, told as a note
        self.packet: bytes | None = None  # the model packet, once known
        self.replied = False  # a chunk with a choice was read: a reply, empty or not

    def events(self, events: Sequence[tuple[bytes, dict[str, Any]]], out: list[bytes]) -> None:
        """The writes for these chunks: the model packet alone (once), then their text as one."""
        parts: list[str] = []
        packet_made = self.packet is not None  # by an earlier call
        for _, chunk in events:
            if "error" in chunk and chunk["error"] is not None:
                self.error = describe_error(chunk["error"])
                self.finished = True
                break
            content = self._content(chunk)
            if content:
                parts.append(content)
        if not packet_made and self.packet is not None:
            out.append(self.packet)
        if parts:
            out.append(encode_text("".join(parts)))
        if self.error is not None:
            out.append(error_note(self.error))

    def done(self, out: list[bytes]) -> None:
        self.finished = True

    def end(self, out: list[bytes]) -> None:
        """A stream that ended without [DONE]: nothing to add in this format."""

    def note(self, message: str, out: list[bytes]) -> None:
        """The last text of a stream that failed after it began."""
        out.append(error_note(message))

    def _content(self, chunk: dict[str, Any]) -> str | None:
        choices = chunk.get("choices")
        if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
            return None  # no choice: a prompt-filter or usage chunk
        self.replied = True
        delta = choices[0].get("delta")
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
