"""A whole answer passed on as it arrives (embeddings: tens of MiB of vectors), never held whole.

Each read of the upstream's body is a write (a Source of relay/serving/writer.py, which
redacts and counts it), under the same watch and deadline as a stream: a client that
leaves frees the upstream, an answer that outlasts STREAM_MAX_SECONDS is cut (the caller's
JSON parser then says it ended short). The upstream is closed whatever happens.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator

import httpx

from relay.errors import ClientGone, ShuttingDown
from relay.serving.client_connection import ClientWatch


class PassedBody:
    """The upstream's body, read by read; `close` closes the upstream."""

    def __init__(self, response: httpx.Response, *, client: ClientWatch, deadline: float) -> None:
        self._response = response
        self._client = client
        self._deadline = deadline
        self.outcome = "client_gone"  # until the body ends some other way
        self.detail: str | None = None
        self._reads = self._pass()

    def __iter__(self) -> Iterator[bytes]:
        return self._reads

    def _pass(self) -> Generator[bytes, None, None]:
        client = self._client
        chunks = self._response.iter_raw()
        try:
            while True:
                with client.interruptible():  # a client that leaves, or the server's end, ends the wait
                    chunk = next(chunks, None)
                if chunk is None:
                    break
                yield chunk
                if time.monotonic() > self._deadline:
                    self.outcome, self.detail = "timeout", "answer reached STREAM_MAX_SECONDS"
                    return
        except ClientGone:
            return  # outcome stays client_gone
        except ShuttingDown:
            self.outcome, self.detail = "shutdown", "server shutting down (SIGTERM)"
            return  # the caller's JSON is cut short: its parser says so
        except httpx.HTTPError:
            self.outcome, self.detail = "upstream_error", "upstream connection lost mid-answer"
            return
        self.outcome = "ok"

    def cut(self, reason: str) -> bytes:
        return b""  # a JSON answer has no room for a note: cut short, its parser says so

    def close(self) -> None:
        try:
            self._reads.close()
        finally:
            self._response.close()
