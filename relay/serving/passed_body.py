"""A whole answer passed on as it arrives (embeddings: tens of MiB of vectors), never held whole.

Each read is redacted and written at once, under the same watch and deadline as a
stream: a client that leaves frees the upstream, an answer that outlasts
STREAM_MAX_SECONDS is cut. The response is closed and the log line written whatever
happens.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator

import httpx

from relay.access.redaction import Redactor
from relay.serving.client_connection import ClientWatch
from relay.serving.request_log import RequestLog


class PassedBody:
    """An iterable WSGI body: the upstream's body, read by read; `close` closes the upstream."""

    def __init__(
        self,
        response: httpx.Response,
        *,
        log: RequestLog,
        redactor: Redactor,
        client: ClientWatch,
        deadline: float,
        ended: Callable[[], None],
    ) -> None:
        self._response = response
        self._log = log
        self._redactor = redactor
        self._client = client
        self._deadline = deadline
        self._ended = ended
        self._outcome = "client_gone"
        self._closed = False
        self._body = self._pass()

    def __iter__(self) -> Iterator[bytes]:
        return self._body

    def _pass(self) -> Generator[bytes, None, None]:
        client = self._client
        try:
            for chunk in self._response.iter_raw():
                if client.gone():
                    return
                sent = self._redactor.redact_bytes(chunk)
                self._log.bytes_sent += len(sent)  # what the caller got, as a ReplyStream counts
                yield sent
                if time.monotonic() > self._deadline:
                    self._outcome, self._log.detail = "timeout", "answer reached STREAM_MAX_SECONDS"
                    return  # the caller's JSON is cut short: its parser says so
        except httpx.HTTPError:
            self._outcome, self._log.detail = "upstream_error", "upstream connection lost mid-answer"
            return
        self._outcome = "ok"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._body.close()
        finally:
            try:
                self._response.close()
            finally:
                self._client.release()
                self._log.finish(200, self._outcome)
                self._ended()
