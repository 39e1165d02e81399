"""The response body: the upstream's event stream relayed as the original wire format.

Every upstream read becomes at most one write (two for the read that carries the
model packet), sent as soon as it is read. Whatever happens, the upstream
response is closed: at the end, on an error, or when the client goes away (the
server then closes this body, which raises GeneratorExit at the pending yield).
"""

from __future__ import annotations

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


class ReplyStream:
    """An iterable WSGI body with a `close` that always closes the upstream response."""

    def __init__(
        self,
        response: httpx.Response,
        text: TextStream,
        log: RequestLog,
        settings: Settings,
        secrets: tuple[str | None, ...],
    ) -> None:
        self._response = response
        self._text = text
        self._log = log
        self._settings = settings
        self._secrets = secrets
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
        try:
            if _is_event_stream(self._response):
                decoder = SSEDecoder()
                for chunk in self._chunks:
                    payloads = decoder.feed(chunk)
                    if payloads:
                        for write in text.translate(payloads):
                            log.mark_first_token()
                            log.bytes_sent += len(write)
                            yield write
                        if text.finished:
                            break
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


def _is_event_stream(response: httpx.Response) -> bool:
    content_type = response.headers.get("content-type", "text/event-stream")
    return not content_type.lower().startswith("application/json")
