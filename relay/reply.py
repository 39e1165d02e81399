"""The response body: the upstream's event stream relayed as the original wire format.

Every upstream read becomes at most one write (two for the read that carries the
model packet), sent as soon as it is read. Whatever happens, the upstream
response is closed: at the end, on an error, at the stream's time cap, or when
the client goes away. A client that left is seen before the next write (its
socket has been closed: a peek reads end-of-file), so its upstream is freed at
the next upstream chunk at the latest, not after more writes fail.
"""

from __future__ import annotations

import _socket
import os
import socket
import time
from collections.abc import Generator, Iterator

import httpx

from relay.config import Settings
from relay.redaction import redact
from relay.request_log import RequestLog
from relay.sse import SSEDecoder
from relay.wire import TextStream, error_note

# After [DONE], read at most this much of what remains, so the connection can be reused.
_DRAIN_LIMIT = 64 * 1024
# A non-streamed answer (an upstream that ignored `stream: true`) is read whole, up to this.
_JSON_BODY_LIMIT = 16 * 1024 * 1024
_PEEK_FLAGS = socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0)


class ReplyStream:
    """An iterable WSGI body with a `close` that always closes the upstream response."""

    def __init__(
        self,
        response: httpx.Response,
        text: TextStream,
        *,
        log: RequestLog,
        settings: Settings,
        secrets: tuple[str | None, ...],
        client_socket: socket.socket | None = None,
    ) -> None:
        self._response = response
        self._text = text
        self._log = log
        self._settings = settings
        self._secrets = secrets
        self._client = _ClientWatch(client_socket)
        self._deadline = log.started + settings.stream_max_seconds
        self._chunks = response.iter_bytes()
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
            if self._outcome == "ok" and self._text.finished and self._text.error is None:
                self._drain()
        finally:
            self._response.close()
            self._client.release()
            log = self._log
            log.chunks = self._text.chunks
            log.usage = self._text.usage
            log.finish(200, self._outcome)

    def _relay(self) -> Generator[bytes, None, None]:
        # gunicorn sends the status and headers on the first write, even an empty one:
        # the caller learns at once that the upstream accepted, not at the first token.
        yield b""
        text = self._text
        log = self._log
        client = self._client
        deadline = self._deadline
        try:
            if _is_event_stream(self._response):
                decoder = SSEDecoder()
                for chunk in self._chunks:
                    payloads = decoder.feed(chunk)
                    if payloads:
                        writes = text.translate(payloads)
                        if writes and client.gone():
                            return  # outcome stays client_gone; close() frees the upstream
                        for write in writes:
                            log.mark_first_token()
                            log.bytes_sent += len(write)
                            yield write
                        if text.finished:
                            break
                    if time.monotonic() > deadline:
                        self._outcome = "timeout"
                        log.detail = "stream reached STREAM_MAX_SECONDS"
                        limit = self._settings.stream_max_seconds
                        yield self._note(
                            f"the reply reached this relay's limit of {limit:g} s "
                            "(STREAM_MAX_SECONDS) and was cut"
                        )
                        return
                else:
                    for write in text.translate(decoder.flush()):
                        log.bytes_sent += len(write)
                        yield write
            else:
                for write in text.translate([self._read_whole_body()]):
                    log.bytes_sent += len(write)
                    yield write
            self._outcome = "ok"
            if text.error is not None:
                self._outcome = "upstream_error"
                log.detail = "error event in the stream"
                yield self._note(text.error)
        except httpx.TimeoutException:
            self._outcome = "timeout"
            log.detail = "upstream silent mid-stream"
            yield self._note(
                f"the upstream sent nothing for {self._settings.idle_timeout:g} s; the reply is incomplete"
            )
        except httpx.TransportError:
            # Reset, early close, or a body cut mid-chunk: the reply is incomplete.
            self._outcome = "upstream_error"
            log.detail = "upstream connection lost mid-stream"
            yield self._note("the upstream closed the connection before the reply was complete")

    def _note(self, message: str) -> bytes:
        note = error_note(redact(message, self._secrets))
        self._log.bytes_sent += len(note)
        return note

    def _read_whole_body(self) -> bytes:
        parts: list[bytes] = []
        size = 0
        for chunk in self._chunks:
            parts.append(chunk)
            size += len(chunk)
            if size > _JSON_BODY_LIMIT:
                break
        return b"".join(parts)

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


class _ClientWatch:
    """Tells whether the client closed its connection, without blocking and without reading.

    It peeks at the server's socket for the client (gunicorn puts it in the WSGI
    environ) through a plain `_socket.socket` on a duplicate of its descriptor:
    gevent's socket would wait for data instead of answering at once, and a
    duplicate can be closed, even by the garbage collector, without touching the
    server's connection.
    """

    __slots__ = ("_peer",)

    def __init__(self, client_socket: socket.socket | None) -> None:
        self._peer: _socket.socket | None = None
        if client_socket is not None:
            try:
                self._peer = _socket.socket(fileno=os.dup(client_socket.fileno()))
            except (OSError, ValueError, AttributeError):
                self._peer = None

    def gone(self) -> bool:
        peer = self._peer
        if peer is None:
            return False
        try:
            return peer.recv(1, _PEEK_FLAGS) == b""  # end of file: the client closed
        except (BlockingIOError, InterruptedError):
            return False  # open, nothing to read: the usual case
        except OSError:
            return True  # reset

    def release(self) -> None:
        if self._peer is not None:
            self._peer.close()
            self._peer = None


def _is_event_stream(response: httpx.Response) -> bool:
    content_type = response.headers.get("content-type", "text/event-stream")
    return not content_type.lower().startswith("application/json")
