"""The response body: the upstream's event stream relayed as it arrives.

An encoder says what the caller receives: the original wire format (wire.TextStream)
or the OpenAI format passed through (chat_events.EventPassThrough). Every upstream
read becomes at most one write (two for the read that carries the model packet),
sent as soon as it is read. Whatever happens, the upstream
response is closed: at the end, on an error, at the stream's time cap, or when
the client goes away. Before each upstream read is relayed, the client's socket
is checked (relay/serving/client_connection.py), so a client that left frees its
upstream at the next upstream chunk at the latest, text or not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Iterator
from typing import Any, Protocol

import httpx

from relay.access.redaction import redact
from relay.config import Settings
from relay.errors import UpstreamError
from relay.formats.sse import SSEDecoder
from relay.serving.client_connection import ClientConnection
from relay.serving.request_log import RequestLog
from relay.upstream.bodies import WHOLE_BODY_LIMIT, body_kind, read_body

logger = logging.getLogger(__name__)

# After [DONE], read at most this much of what remains, so the connection can be reused.
_DRAIN_LIMIT = 64 * 1024


class Encoder(Protocol):
    """Turns decoded SSE payloads into the caller's bytes (formats.original, formats.chat_events)."""

    packet: bytes | None  # a write that is not yet text (the original format's model packet)
    finished: bool
    error: str | None
    chunks: int
    skipped: int
    usage: dict[str, Any] | None

    @property
    def replied(self) -> bool:
        """The upstream sent a reply (a choice; an event), empty or not."""

    def translate(self, payloads: list[bytes]) -> list[bytes]: ...

    def end(self) -> list[bytes]: ...

    def note(self, message: str) -> bytes: ...


class ReplyStream:
    """An iterable WSGI body with a `close` that always closes the upstream response."""

    def __init__(
        self,
        response: httpx.Response,
        text: Encoder,
        *,
        log: RequestLog,
        settings: Settings,
        secrets: tuple[str | None, ...],
        client_socket: Any = None,
    ) -> None:
        self._response = response
        self._text = text
        self._log = log
        self._settings = settings
        self._secrets = secrets
        self._client = ClientConnection(client_socket, write_timeout=settings.idle_timeout)
        self._deadline = log.started + settings.stream_max_seconds
        self._whole = body_kind(response) == "json"  # one answer (read_body), not an event stream
        self._chunks: Iterator[bytes] = iter(()) if self._whole else response.iter_bytes()
        self._outcome = "client_gone"  # until the body ends some other way
        self._closed = False
        self._body = self._relay()

    def __iter__(self) -> Iterator[bytes]:
        return self._body

    def close(self) -> None:
        """Called by the server when the response is over, finished or not."""
        if self._closed:
            return
        self._closed = True
        try:
            self._body.close()
            if not self._whole and self._outcome == "ok" and self._text.finished and self._text.error is None:
                self._drain()
        finally:
            try:
                self._response.close()
            finally:
                self._client.release()
                log = self._log
                log.chunks = self._text.chunks
                log.skipped = self._text.skipped
                log.usage = self._text.usage
                log.finish(200, self._outcome)

    def _relay(self) -> Generator[bytes, None, None]:
        # gunicorn sends the status and headers on the first write, even an empty one:
        # the caller learns at once that the upstream accepted, not at the first token.
        yield b""
        try:
            yield from self._relay_events()
        except httpx.TimeoutException:
            self._outcome = "timeout"
            self._log.detail = "upstream silent mid-stream"
            yield self._note(
                f"the upstream sent nothing for {self._settings.idle_timeout:g} s; the reply is incomplete"
            )
        except httpx.TransportError:
            # Reset, early close, or a body cut mid-chunk: the reply is incomplete.
            self._outcome = "upstream_error"
            self._log.detail = "upstream connection lost mid-stream"
            yield self._note("the upstream closed the connection before the reply was complete")
        except httpx.HTTPError:
            # The body could not be decoded (a broken gzip stream, say).
            self._outcome = "upstream_error"
            self._log.detail = "upstream body could not be decoded"
            yield self._note("the upstream sent a reply that could not be decoded")
        except UpstreamError as failure:
            self._outcome = "upstream_error"
            self._log.detail = "upstream answer could not be read whole"
            yield self._note(failure.message)
        except Exception:
            logger.exception("Unexpected error while relaying a stream")
            self._outcome = "error"
            self._log.detail = "relay error mid-stream"
            yield self._note("the relay failed while streaming this reply")

    def _relay_events(self) -> Iterator[bytes]:
        text = self._text
        if self._whole:
            yield from self._send(text.translate([read_body(self._response, WHOLE_BODY_LIMIT)]))
        else:
            decoder = SSEDecoder()
            client = self._client
            deadline = self._deadline
            for chunk in self._chunks:
                if client.gone():
                    return  # outcome stays client_gone; close() frees the upstream
                payloads = decoder.feed(chunk)
                if payloads:
                    yield from self._send(text.translate(payloads))
                    if text.finished:
                        break
                if time.monotonic() > deadline:
                    self._outcome = "timeout"
                    self._log.detail = "stream reached STREAM_MAX_SECONDS"
                    limit = self._settings.stream_max_seconds
                    yield self._note(
                        f"the reply reached this relay's limit of {limit:g} s "
                        "(STREAM_MAX_SECONDS) and was cut"
                    )
                    return
            else:  # the upstream's body ended
                yield from self._send(text.translate(decoder.flush()))
                if text.replied:
                    yield from self._send(text.end())
        if not text.replied and text.error is None:
            yield self._nothing_to_relay("answer" if self._whole else "stream")
            return
        self._outcome = "ok"
        if text.error is not None:
            self._outcome = "upstream_error"
            self._log.detail = "error event in the stream"
            yield self._note(text.error)

    def _send(self, writes: list[bytes]) -> Iterator[bytes]:
        log = self._log
        for write in writes:
            if write is not self._text.packet:
                log.mark_first_token()
            log.bytes_sent += len(write)
            yield write

    def _nothing_to_relay(self, kind: str) -> bytes:
        # A 200 with no reply in it (an empty body, only [DONE], an error object not sent as an
        # event, a JSON answer without a choice) would look like an empty reply; say so instead.
        self._outcome = "upstream_error"
        self._log.detail = f"upstream {kind} held nothing to relay"
        return self._note(f"the upstream's {kind} ended with nothing to relay, though its status was 200")

    def _note(self, message: str) -> bytes:
        note = self._text.note(redact(message, self._secrets))
        self._log.bytes_sent += len(note)
        return note

    def _drain(self) -> None:
        # The caller has its whole reply; reading the upstream's last bytes (normally
        # just the chunked terminator) lets the pool reuse the connection, and saves
        # the next request a TCP and TLS handshake.
        size = 0
        try:
            for chunk in self._chunks:
                size += len(chunk)
                if size > _DRAIN_LIMIT:
                    break
        except httpx.HTTPError:
            pass
