"""The upstream's body in batches: everything that arrived while the last batch was being relayed.

httpx yields a streamed body one HTTP chunk at a time, and a fast upstream sends many chunks
in one network read; relaying each on its own would cost a write to the client per event.
Under gevent a reader greenlet pulls chunks as they come (it switches only when it has to
wait for the network) while the request's greenlet relays: each time it comes back for more
it takes all that arrived meanwhile, as one. A paced stream's token is still relayed the
moment it arrives; a burst becomes one write. The reader holds at most HOLD_BYTES: a client
that reads slowly slows the reading of the upstream, never grows the relay's memory.
With a `tick`, an empty batch comes after that long without one, so that the relay can
write a keep-alive while a model thinks in silence. (Under gthread each chunk is its own batch,
read when the relay asks for it, and there is no tick: a blocked read cannot be interrupted.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gevent  # type: ignore[import-untyped]
from gevent.event import Event  # type: ignore[import-untyped]

from relay.errors import ClientGone
from relay.serving.client_connection import ClientWatch
from relay.waits import under_gevent

HOLD_BYTES = 256 * 1024


class Batches:
    """Iterate for the body's bytes, a batch at a time; `finish` and `close` end the reading."""

    def __init__(self, chunks: Iterator[bytes], client: ClientWatch, tick: float | None = None) -> None:
        self._chunks = chunks
        self._client = client
        self._tick = tick  # an empty batch after this long without one (a chance for a keep-alive)
        self._arrived: list[bytes] = []
        self._held = 0
        self._ended = False
        self._failure: BaseException | None = None
        self._ready: Any = Event()
        self._room: Any = Event()
        self._room.set()
        self._reader: Any = gevent.spawn(self._read) if under_gevent() else None

    def _read(self) -> None:
        ready, room = self._ready, self._room
        try:
            for chunk in self._chunks:
                self._arrived.append(chunk)
                self._held += len(chunk)
                ready.set()
                if self._held >= HOLD_BYTES:
                    room.clear()
                    room.wait()  # until the relaying greenlet takes what is held
        except Exception as error:  # noqa: BLE001 - told to the relaying greenlet, which reports it
            self._failure = error
        finally:
            self._ended = True
            ready.set()

    def __iter__(self) -> Iterator[bytes]:
        if self._reader is None:
            yield from self._unbatched()
            return
        ready, room, client, tick = self._ready, self._room, self._client, self._tick
        while True:
            if client.left:
                raise ClientGone()
            if client.ended_by is not None:
                raise client.ended_by  # the server is shutting down
            client.waiting = True  # a client that leaves now, or the server's end, interrupts the wait
            ready.wait(tick)
            client.waiting = False
            ready.clear()
            arrived, self._arrived, self._held = self._arrived, [], 0
            room.set()
            if arrived:
                yield arrived[0] if len(arrived) == 1 else b"".join(arrived)
            elif not self._ended:
                yield b""  # `tick` seconds and nothing: the relay may keep the client's connection alive
            if self._ended and not self._arrived:
                if self._failure is not None:
                    raise self._failure
                return

    def _unbatched(self) -> Iterator[bytes]:
        client = self._client
        chunks = self._chunks
        while True:
            if client.left:
                raise ClientGone()
            if client.ended_by is not None:
                raise client.ended_by
            client.waiting = True
            chunk = next(chunks, None)
            client.waiting = False
            if chunk is None:
                return
            yield chunk

    def finish(self, seconds: float, reads: int) -> None:
        """Let the body end by itself (its last bytes let the connection be kept), for so long at most.

        Under gevent the reader reads on, within `seconds`; under gthread at most `reads` more
        reads are made. What has not ended by then is closed.
        """
        if self._reader is not None:
            self._reader.join(timeout=seconds)
            return
        try:
            for _ in range(reads):
                if next(self._chunks, None) is None:
                    return
        except Exception:  # noqa: BLE001 - the reply is complete; the connection just closes
            return

    def close(self) -> None:
        """Stop reading: the reader is ended where it waits (httpcore then closes the connection)."""
        if self._reader is not None and not self._reader.dead:
            self._reader.kill(block=True, timeout=1)
