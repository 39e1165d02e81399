"""The response body: the upstream's event stream relayed as it arrives, and always closed.

An encoder says what the caller receives (relay/formats: the original text, or OpenAI's
events). Every upstream read becomes at most one write (two for the read that carries
the model packet), sent as soon as it is read. Whatever happens, the upstream response
is closed: at the end, on an error, at the stream's time cap, or when the client goes
away, which the client watch (relay/serving/client_connection.py) tells at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any, Protocol

import httpx

from relay.access.redaction import Redactor
from relay.config import Settings
from relay.errors import ClientGone, UpstreamError
from relay.formats.sse import EventTooLarge, SSEDecoder
from relay.serving.batches import Batches
from relay.serving.client_connection import ClientWatch
from relay.serving.request_log import RequestLog
from relay.upstream.bodies import body_kind, read_answer_body

logger = logging.getLogger(__name__)

# After the end the relay needs ([DONE]), the upstream's last bytes (normally only the chunked
# terminator, often read already) are read for this long and this many reads at most, so its
# connection can serve the next request; what has not come by then is not waited for: the
# connection is closed instead. (Under gthread, where a read cannot be interrupted, the reads'
# count is the bound.)
DRAIN_SECONDS = 0.25
DRAIN_READS = 2


class Encoder(Protocol):
    """Turns decoded SSE payloads into the caller's bytes (relay/formats)."""

    packet: bytes | None  # a write that is not yet text (the original format's model packet)
    finished: bool
    error: str | None
    chunks: int
    skipped: int
    usage: dict[str, Any] | None
    text_chars: int  # the reply's text, for an estimate of its tokens where the upstream gives none

    @property
    def replied(self) -> bool:
        """The upstream sent a reply (a choice; an event), empty or not."""

    def translate(self, payloads: list[bytes]) -> list[bytes]: ...

    def end(self) -> list[bytes]: ...

    def note(self, message: str) -> bytes: ...


class ReplyStream:
    """An iterable WSGI body whose `close` always closes the upstream response and writes the log line."""

    def __init__(
        self,
        response: httpx.Response,
        text: Encoder,
        *,
        log: RequestLog,
        settings: Settings,
        redactor: Redactor,
        client: ClientWatch,
        ended: Callable[[], None] = lambda: None,
    ) -> None:
        self._response = response
        self._text = text
        self._log = log
        self._settings = settings
        self._redactor = redactor  # whatever the upstream sends, its key never reaches the caller
        self._client = client
        self._ended = ended  # the request's end: its accounting, once its log line is written
        self._deadline = log.started + settings.stream_max_seconds
        self._whole = body_kind(response) == "json"  # one answer, not an event stream
        self._chunks: Iterator[bytes] = iter(()) if self._whole else response.iter_raw()
        self._batches = Batches(self._chunks, client)
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
            if self._outcome == "ok" and not self._whole and self._text.finished:
                self._drain()
            self._batches.close()
        finally:
            try:
                self._response.close()
            finally:
                self._client.release()
                log = self._log
                log.chunks = self._text.chunks
                log.skipped = self._text.skipped
                log.usage = self._text.usage
                log.text_chars = self._text.text_chars
                log.finish(200, self._outcome)
                self._ended()

    def _relay(self) -> Generator[bytes, None, None]:
        # gunicorn sends the status and headers on the first write, even an empty one:
        # the caller learns at once that the upstream accepted, not at the first token.
        yield b""
        try:
            yield from self._relay_events()
        except ClientGone:
            return  # outcome stays client_gone; close() frees the upstream
        except httpx.TimeoutException:
            self._failed("timeout", "upstream silent mid-stream")
            yield self._note(
                f"the upstream sent nothing for {self._settings.idle_timeout:g} s; the reply is incomplete"
            )
        except httpx.TransportError:
            # Reset, early close, or a body cut mid-chunk: the reply is incomplete.
            self._failed("upstream_error", "upstream connection lost mid-stream")
            yield self._note("the upstream closed the connection before the reply was complete")
        except EventTooLarge:
            self._failed("upstream_error", "upstream event over the size limit")
            yield self._note("the upstream sent an event larger than this relay passes on; the reply is cut")
        except UpstreamError as failure:
            self._failed(failure.outcome, "upstream answer could not be read whole")
            yield self._note(failure.message)
        except Exception:
            logger.exception("Unexpected error while relaying a stream")
            self._failed("error", "relay error mid-stream")
            yield self._note("the relay failed while streaming this reply")

    def _relay_events(self) -> Iterator[bytes]:
        text = self._text
        if self._whole:
            with self._client.interruptible():
                body = read_answer_body(self._response, self._deadline - time.monotonic())
            yield from self._send(text.translate([body]))
            if text.replied:
                yield from self._send(text.end())
        else:
            decoder = SSEDecoder()
            client = self._client
            deadline = self._deadline
            for chunk in self._batches:
                if client.gone():
                    return  # outcome stays client_gone; close() frees the upstream
                payloads = decoder.feed(chunk)
                if payloads:
                    yield from self._send(text.translate(payloads))
                    if text.finished:
                        break
                if time.monotonic() > deadline:
                    limit = self._settings.stream_max_seconds
                    self._failed("timeout", "stream reached STREAM_MAX_SECONDS")
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
            self._failed("upstream_error", "error event in the stream")
            yield self._note(text.error)

    def _send(self, writes: list[bytes]) -> Iterator[bytes]:
        log = self._log
        redact = self._redactor.redact_bytes
        for write in writes:
            if write is not self._text.packet:
                log.mark_first_token()
            sent = redact(write)
            log.bytes_sent += len(sent)
            yield sent

    def _failed(self, outcome: str, detail: str) -> None:
        self._outcome = outcome
        self._log.detail = detail

    def _nothing_to_relay(self, kind: str) -> bytes:
        # A 200 with no reply in it (an empty body, only [DONE], an error object not sent as an
        # event, a JSON answer without a choice) would look like an empty reply; say so instead.
        self._failed("upstream_error", f"upstream {kind} held nothing to relay")
        return self._note(f"the upstream's {kind} ended with nothing to relay, though its status was 200")

    def _note(self, message: str) -> bytes:
        note = self._text.note(self._redactor.redact(message))
        self._log.bytes_sent += len(note)
        return note

    def _drain(self) -> None:
        # The caller has its whole reply; the upstream's last bytes (normally just the chunked
        # terminator, often read already) let the pool reuse the connection and save the next
        # request a TCP and TLS handshake. They are not waited for beyond DRAIN_SECONDS.
        self._batches.finish(DRAIN_SECONDS, DRAIN_READS)
