"""What an encoder is, and how the upstream's event payloads reach one: pure, no I/O.

An encoder turns the upstream's events into the bytes its caller reads, and nothing else:
no I/O, no log counters. Its `events`, `done`, `end` and `note` append writes to `out`, a
list the caller owns, so that what an encoder made before a failure is written before the
note that tells it. Each entry of `out` is one write to the client.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from relay.formats import jsoncodec

DONE = b"[DONE]"
# An event stream's keep-alive: a comment, which every SSE reader skips (WHATWG: a line that
# begins with a colon), so that no SDK sees it.
KEEPALIVE_COMMENT = b": keep-alive\n\n"

# An event as encoders get it: the upstream's data as it came, and that data parsed.
Event = tuple[bytes, dict[str, Any]]


class Encoder(Protocol):
    """Events in, the caller's bytes out (relay/formats/original_text.py, chat_events.py, ...)."""

    packet: bytes | None  # a write that is not yet the reply (the original format's model packet)
    finished: bool  # the reply is over for the caller: nothing more is read from the upstream
    replied: bool  # the upstream began a reply
    error: str | None  # the upstream ended the reply with an error (already told in the caller's format)

    def events(self, events: Sequence[Event], out: list[bytes]) -> None: ...

    def done(self, out: list[bytes]) -> None:
        """The upstream's [DONE]."""

    def end(self, out: list[bytes]) -> None:
        """The upstream's body ended (after [DONE], or without it)."""

    def note(self, message: str, out: list[bytes]) -> None:
        """A failure the relay found after the reply began, told in the caller's format."""


@dataclass
class Tally:
    """What the upstream's events were, for the request's log line."""

    chunks: int = 0  # JSON objects read
    skipped: int = 0  # data that was not a JSON object, skipped


def encode(
    encoder: Encoder,
    payloads: Sequence[bytes],
    out: list[bytes],
    tally: Tally,
    observe: Callable[[dict[str, Any]], None],
) -> None:
    """Give the encoder what these payloads hold; `observe` sees every event (the reply's usage).

    Data that is not a JSON object is logged by its size and skipped, as an SDK would fail on it
    and lose the rest of the reply; [DONE] ends the reply.
    """
    events: list[Event] = []
    done = False
    for payload in payloads:
        if payload == DONE:
            done = True
            break
        value = jsoncodec.event_object(payload)
        if value is None:
            tally.skipped += bool(payload)
            continue
        tally.chunks += 1
        observe(value)
        events.append((payload, value))
    if events:
        encoder.events(events, out)
    if done and not encoder.finished:
        encoder.done(out)


def named(kind: str | None, payload: bytes) -> bytes:
    """One SSE event: its name, if it has a printable one, then its data (data that came on several
    lines goes out on several again)."""
    if b"\n" in payload:
        payload = payload.replace(b"\n", b"\ndata: ")
    name = kind.encode() if kind is not None and kind.isascii() and kind.isprintable() else None
    return (b"event: " + name + b"\n" if name else b"") + b"data: " + payload + b"\n\n"
