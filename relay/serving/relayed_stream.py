"""A reply relayed as it arrives: the upstream's events decoded, encoded for the caller, always closed.

The one loop every streamed reply goes through, whatever the endpoint: each upstream read
(a batch, relay/serving/batches.py) is decoded (relay/formats/sse.py), its events counted
and watched for usage, and encoded by the endpoint's encoder into writes, which the
Writer redacts and sends. A whole answer where a stream was asked (an upstream that
ignored `stream`) comes as one read of events. Whatever happens, the failure is told in
the caller's format (the encoder's note) and the upstream response is closed: at the end,
on an error, at the stream's time cap, or when the client goes away, which the client
watch (relay/serving/client_connection.py) tells at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

import httpx

from relay.config import Settings
from relay.errors import ClientGone, ShuttingDown
from relay.formats.encoding import Encoder, Tally, encode
from relay.formats.sse import EventTooLarge, SSEDecoder
from relay.serving.batches import Batches
from relay.serving.client_connection import ClientWatch
from relay.serving.request_log import RequestLog
from relay.upstream.failures import UpstreamError

logger = logging.getLogger(__name__)

# After the end the relay needs ([DONE]), the upstream's last bytes (normally only the chunked
# terminator, often read already) are read for this long and this many reads at most, so its
# connection can serve the next request; what has not come by then is not waited for: the
# connection is closed instead. (Under gthread, where a read cannot be interrupted, the reads'
# count is the bound.)
DRAIN_SECONDS = 0.25
DRAIN_READS = 2


def event_reads(batches: Batches) -> Iterator[list[bytes]]:
    """The event payloads of each upstream read, and at the end those of an unterminated last line."""
    decoder = SSEDecoder()
    for chunk in batches:
        yield decoder.feed(chunk)
    yield decoder.flush()


class RelayedStream:
    """The writes of one reply (a Source of relay/serving/writer.py); `close` frees the upstream."""

    def __init__(
        self,
        response: httpx.Response,
        encoder: Encoder,
        observe: Callable[[dict[str, Any]], None],
        *,
        log: RequestLog,
        client: ClientWatch,
        settings: Settings,
        whole: Sequence[bytes] | None = None,
        keepalive: bytes | None = None,
    ) -> None:
        self._response = response
        self._encoder = encoder
        self._observe = observe  # sees every event: the reply's usage
        self._log = log
        self._client = client
        self._settings = settings
        self._deadline = log.started + settings.stream_max_seconds
        self._tally = Tally()
        # Written after STREAM_KEEPALIVE_SECONDS without a write (the format's comment or ping).
        self._keepalive = keepalive if settings.keepalive is not None else None
        self._keepalive_seconds = settings.keepalive or 0.0
        self._written = time.monotonic()  # the last write to the client
        self._batches: Batches | None = None
        if whole is None:
            tick = settings.keepalive if self._keepalive is not None else None
            self._batches = Batches(response.iter_raw(), client, tick)
            self._reads: Iterator[Sequence[bytes]] = event_reads(self._batches)
        else:  # a whole answer, read already: its events as one read
            self._reads = iter((whole,))
        self.outcome = "client_gone"  # until the body ends some other way
        self.detail: str | None = None
        self._writes = self._relay()

    def __iter__(self) -> Iterator[bytes]:
        return self._writes

    def _relay(self) -> Generator[bytes, None, None]:
        out: list[bytes] = []
        try:
            yield from self._relay_events(out)
        except ClientGone:
            return  # outcome stays client_gone; close() frees the upstream
        except ShuttingDown:
            yield from self._failed(out, "shutdown", "server shutting down (SIGTERM)",
                                    "the server is restarting; send the request again")  # fmt: skip
        except httpx.TimeoutException:
            idle = self._settings.idle_timeout
            yield from self._failed(
                out,
                "timeout",
                "upstream silent mid-stream",
                f"the upstream sent nothing for {idle:g} s; the reply is incomplete",
            )
        except httpx.TransportError:
            # Reset, early close, or a body cut mid-chunk: the reply is incomplete.
            yield from self._failed(
                out,
                "upstream_error",
                "upstream connection lost mid-stream",
                "the upstream closed the connection before the reply was complete",
            )
        except EventTooLarge:
            yield from self._failed(
                out,
                "upstream_error",
                "upstream event over the size limit",
                "the upstream sent an event larger than this relay passes on; the reply is cut",
            )
        except UpstreamError as failure:
            yield from self._failed(
                out, failure.outcome, "upstream answer could not be read whole", failure.message
            )
        except Exception:
            logger.exception("Unexpected error while relaying a stream")
            yield from self._failed(
                out, "error", "relay error mid-stream", "the relay failed while streaming this reply"
            )

    def _relay_events(self, out: list[bytes]) -> Iterator[bytes]:
        encoder, client, tally, observe = self._encoder, self._client, self._tally, self._observe
        for payloads in self._reads:
            if client.gone():
                return  # outcome stays client_gone; close() frees the upstream
            if client.ended_by is not None:
                raise client.ended_by  # the server is shutting down
            if payloads:
                encode(encoder, payloads, out, tally, observe)
                yield from self._take(out)
                if encoder.finished:
                    break
            if self._keepalive is not None and time.monotonic() - self._written >= self._keepalive_seconds:
                # Silent so long (a model thinking, or only what is not passed on): a proxy or a
                # client's watchdog would take the stream for a dead one. Not the reply: no first token.
                self._written = time.monotonic()
                yield self._keepalive
            if time.monotonic() > self._deadline:
                limit = self._settings.stream_max_seconds
                yield from self._failed(
                    out,
                    "timeout",
                    "stream reached STREAM_MAX_SECONDS",
                    f"the reply reached this relay's limit of {limit:g} s (STREAM_MAX_SECONDS) and was cut",
                )
                return
        encoder.end(out)  # the upstream's body ended, or [DONE] came: what closes the reply, if anything
        yield from self._take(out)
        if not encoder.replied and encoder.error is None:
            # A 200 with no reply in it (an empty body, only [DONE], a JSON answer without a choice)
            # would look like an empty reply; say so instead.
            kind = "stream" if self._batches is not None else "answer"
            yield from self._failed(
                out,
                "upstream_error",
                f"upstream {kind} held nothing to relay",
                f"the upstream's {kind} ended with nothing to relay, though its status was 200",
            )
            return
        if encoder.error is not None:
            self.outcome, self.detail = "upstream_error", "error event in the stream"
        else:
            self.outcome = "ok"

    def _take(self, out: list[bytes], *, reply: bool = True) -> Iterator[bytes]:
        """The writes made so far; the first that is the reply (not a packet, not a note) is timed."""
        writes = out[:]
        out.clear()
        if writes:
            self._written = time.monotonic()
        if reply and any(write is not self._encoder.packet for write in writes):
            self._log.mark_first_token()
        return iter(writes)

    def _failed(self, out: list[bytes], outcome: str, detail: str, message: str) -> Iterator[bytes]:
        """What the encoder made before the failure, then the note that tells it."""
        self.outcome, self.detail = outcome, detail
        self._encoder.note(message, out)
        return self._take(out, reply=False)

    def cut(self, reason: str) -> bytes:
        out: list[bytes] = []
        self._encoder.note(reason, out)
        return b"".join(out)

    def close(self) -> None:
        """Stop reading (after the upstream's last bytes, if the reply is complete) and close the upstream."""
        try:
            self._writes.close()
            if self._batches is not None:
                if self.outcome == "ok" and self._encoder.finished:
                    # The caller has its whole reply; the upstream's last bytes (normally just the
                    # chunked terminator, often read already) let the pool reuse the connection.
                    self._batches.finish(DRAIN_SECONDS, DRAIN_READS)
                self._batches.close()
        finally:
            try:
                self._response.close()
            finally:
                self._log.chunks, self._log.skipped = self._tally.chunks, self._tally.skipped
