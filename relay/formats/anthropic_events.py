"""Anthropic's Messages stream passed on as the upstream sent it, one event at a time: pure, no I/O.

Each event goes out named by its type (`event: content_block_delta`, then its `data:` line), as
Anthropic sends them and as its SDKs need them (they drop an event without an `event:` line),
one write per upstream read; `message_stop` or `error` ends the reply. A failure the relay finds
after the stream began, or a stream that ends before `message_stop`, is told as Anthropic tells
one: an `error` event, which the SDKs raise and Claude Code retries.

Also here, for an upstream that answers whole where a stream was asked, or streams where a whole
answer was: a whole Message as its stream's events, and a stream's events as the whole Message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from relay.formats import jsoncodec
from relay.formats.encoding import Event, named
from relay.formats.error_shapes import anthropic_error

# What Anthropic sends while a reply is slow to come, and its clients ignore (the SDKs skip it,
# Claude Code's stream watchdog counts it as life): the stream loop's keep-alive for this format.
KEEPALIVE = b'event: ping\ndata: {"type": "ping"}\n\n'
# The events that end a reply: nothing follows them.
ENDS = frozenset({"message_stop", "error"})
CUT_SHORT = "the upstream's stream ended before message_stop; the reply is incomplete"


def error_event(message: str) -> bytes:
    """Anthropic's error event, an `api_error`: a failure of the relay's or the upstream's mid-stream."""
    return named("error", jsoncodec.dumps(anthropic_error(message, 500)))


class MessagesPassThrough:
    """Re-frames the upstream's Messages events for the caller (an Encoder)."""

    __slots__ = ("_begun", "error", "finished", "packet", "replied")

    def __init__(self) -> None:
        # What came before the model's first delta (message_start, a block's start, pings): not yet
        # the reply, so the log's first_token_ms is the time to the first thing the model wrote.
        self.packet: bytes | None = None
        self._begun = False  # a content_block_delta was passed on
        self.finished = False  # an ending event was passed on
        self.error: str | None = None  # the reply ended in an error, told in the caller's format
        self.replied = False  # an event was passed on

    def events(self, events: Sequence[Event], out: list[bytes]) -> None:
        """One write for all the events of one upstream read, each as it came (two for the read where
        the model's first delta comes: what came before it, then the rest)."""
        framed: list[bytes] = []
        for payload, value in events:
            kind = value.get("type")
            kind = kind if isinstance(kind, str) else None
            if kind == "error" and self.error is None:
                self.error = "error event in the stream"
            if kind == "content_block_delta" and not self._begun:
                if framed:
                    self._write(framed, out)  # the packet: what came before
                    framed = []
                self._begun = True
            framed.append(named(kind, payload))
            if kind in ENDS:
                self.finished = True
                break
        if framed:
            self._write(framed, out)

    def _write(self, framed: list[bytes], out: list[bytes]) -> None:
        write = b"".join(framed)
        if not self._begun:
            self.packet = write
        self.replied = True
        out.append(write)

    def done(self, out: list[bytes]) -> None:
        """A [DONE], which is not Anthropic's: the end of the upstream's reply, as its body's end is."""
        self.end(out)

    def end(self, out: list[bytes]) -> None:
        """The upstream's body ended: without message_stop, the reply is cut short, and the caller told."""
        if self.replied and not self.finished:
            self.finished = True
            self.error = "stream ended before message_stop"
            out.append(error_event(CUT_SHORT))

    def note(self, message: str, out: list[bytes]) -> None:
        out.append(error_event(message))


# -- a whole Message and its stream ---------------------------------------------------------------

# Blocks whose content streams as deltas, with the block's empty form in content_block_start.
_STREAMED = {"text": ("text", "text_delta"), "thinking": ("thinking", "thinking_delta")}


def message_as_events(message: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A whole Message as the events Anthropic streams it in; None if it is not one."""
    content = message.get("content")
    if message.get("type") != "message" or not isinstance(content, list):
        return None
    usage = message.get("usage")
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(content):
        if not isinstance(block, dict):
            continue
        events.extend(_block_events(index, block))
    delta = {"stop_reason": message.get("stop_reason"), "stop_sequence": message.get("stop_sequence")}
    events.append(
        {"type": "message_delta", "delta": delta, **({"usage": usage} if usage is not None else {})}
    )
    events.append({"type": "message_stop"})
    return events


def _block_events(index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
    kind = block.get("type")
    deltas: list[dict[str, Any]] = []
    shell = block
    if isinstance(kind, str) and kind in _STREAMED:
        field, delta_type = _STREAMED[kind]
        text = block.get(field)
        shell = {**block, field: ""}
        if isinstance(text, str) and text:
            deltas.append({"type": delta_type, field: text})
        signature = shell.pop("signature", None)
        if isinstance(signature, str):
            deltas.append({"type": "signature_delta", "signature": signature})
    elif kind == "tool_use" and isinstance(block.get("input"), dict):
        shell = {**block, "input": {}}
        try:
            deltas.append(
                {"type": "input_json_delta", "partial_json": jsoncodec.dumps(block["input"]).decode()}
            )
        except ValueError:  # nested too deeply to write back: sent whole in the block instead
            shell = block
    return [
        {"type": "content_block_start", "index": index, "content_block": shell},
        *({"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas),
        {"type": "content_block_stop", "index": index},
    ]


def message_of(events: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The whole Message a stream's events make; None if they hold none (or end in an error)."""
    message: dict[str, Any] | None = None
    blocks: dict[int, dict[str, Any]] = {}
    inputs: dict[int, list[str]] = {}  # a tool's input, in the pieces it came in
    for event in events:
        kind, index = event.get("type"), event.get("index")
        if kind == "error":
            return None
        if kind == "message_start" and isinstance(event.get("message"), dict):
            message = dict(event["message"])
        elif message is None:
            continue  # before the message began
        elif kind == "message_delta":
            if isinstance(event.get("delta"), dict):
                message.update(event["delta"])
            if isinstance(event.get("usage"), dict):
                usage = message.get("usage")
                message["usage"] = {**(usage if isinstance(usage, dict) else {}), **event["usage"]}
        elif not isinstance(index, int):
            continue  # no block's
        elif kind == "content_block_start" and isinstance(event.get("content_block"), dict):
            blocks[index] = dict(event["content_block"])
        elif kind == "content_block_delta" and index in blocks:
            _apply(blocks[index], inputs.setdefault(index, []), event.get("delta"))
    if message is None:
        return None
    for index, pieces in inputs.items():
        if pieces:
            try:
                blocks[index]["input"] = jsoncodec.loads("".join(pieces))
            except jsoncodec.JSONDecodeError:
                blocks[index]["input"] = "".join(pieces)  # as it came: never lost
    message["content"] = [blocks[index] for index in sorted(blocks)]
    return message


def _apply(block: dict[str, Any], pieces: list[str], delta: Any) -> None:
    """One delta, added to its block."""
    if not isinstance(delta, dict):
        return
    for field in ("text", "thinking", "partial_json", "signature"):
        value = delta.get(field)
        if not isinstance(value, str):
            continue
        if field == "partial_json":
            pieces.append(value)
        elif field == "signature":
            block["signature"] = value
        else:
            previous = block.get(field)
            block[field] = (previous if isinstance(previous, str) else "") + value
    citation = delta.get("citation")
    if citation is not None:
        citations = block.get("citations")
        block["citations"] = [*(citations if isinstance(citations, list) else []), citation]
