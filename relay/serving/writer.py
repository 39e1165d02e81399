"""Every byte a client gets, and the request's log line: the one writer every answer goes through.

Whatever the relay answers (a page file, a preflight, an error, a whole answer, a stream, a body
passed on as it arrives), it is made here and nowhere else, so what every answer needs happens
once for all:
- redaction: the body and every header value, with the secrets of the request's route once the
  endpoint has chosen one (the key the request is sent with, the route's header values);
- bounds: a whole body, and each write of a stream, is at most WRITE_LIMIT;
- the log line: the bytes the client got, when the reply's first byte went, what the reply
  cost (relay/access/usage.py) and the outcome, written once: when a fixed answer is made, or
  when a stream's body closes; then the request's ends run (its limits settled, its place in
  the worker given back).
Only this module makes a flask.Response. An endpoint returns a `Written`, which only a Writer
makes, so it cannot answer any other way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Protocol

import flask
from werkzeug.exceptions import HTTPException

from relay.access.redaction import Redactor, redactor_for
from relay.access.usage import Usage
from relay.errors import ENDPOINTS_HINT, Dialect, RelayError
from relay.formats import jsoncodec
from relay.formats.error_shapes import anthropic_error, openai_error
from relay.formats.original_text import encode_text
from relay.serving.request_log import RequestLog
from relay.upstream.bodies import EVENT_STREAM, JSON, WHOLE_BODY_LIMIT

logger = logging.getLogger(__name__)

NO_SECRETS = Redactor(())

TEXT = "text/plain; charset=utf-8"
EVENT_STREAM_UTF8 = f"{EVENT_STREAM}; charset=utf-8"
# The most the relay sends in one piece: a whole answer, or one write of a stream. Encoders make
# far smaller writes (each event within MAX_EVENT_BYTES); past it is a bug, cut and logged.
WRITE_LIMIT = WHOLE_BODY_LIMIT

STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    # nginx and some proxies buffer responses unless told not to.
    "X-Accel-Buffering": "no",
    "X-Content-Type-Options": "nosniff",
}
ERROR_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

Headers = Iterable[tuple[str, str]]


class Written:
    """An answer a Writer made: the only thing an endpoint can return."""

    __slots__ = ("response",)

    def __init__(self, response: flask.Response) -> None:
        self.response = response


class Source(Protocol):
    """A streamed body's writes (relay/serving/relayed_stream.py, passed_body.py), and how it ended."""

    outcome: str  # for the log line; "client_gone" until the body ends some other way
    detail: str | None

    def __iter__(self) -> Iterator[bytes]: ...

    def close(self) -> None:
        """Stop reading the upstream, and close it."""

    def cut(self, reason: str) -> bytes:
        """The last write of a stream the relay cuts, in the caller's format (b"" for none)."""


def json_error_body(message: str, status: int, dialect: Dialect = "openai") -> bytes:
    """An error as JSON: Anthropic's shape on its endpoints, OpenAI's on every other."""
    shaped = anthropic_error if dialect == "anthropic" else openai_error
    return jsoncodec.dumps(shaped(message, status))


class Writer:
    """One request's answer and log line; see the module's docstring.

    `dialect`: the API the request's path speaks, which shapes its errors.
    """

    def __init__(self, log: RequestLog, ended: Callable[[], None], dialect: Dialect = "openai") -> None:
        self.log = log
        self.dialect = dialect
        self._ended = ended
        self._secrets: tuple[str | None, ...] = ()
        self._redactor = NO_SECRETS
        self.usage: Usage | None = None  # what the reply cost, where an upstream replied
        self._finished = False

    def keep_secret(self, *secrets: str | None) -> None:
        """From now on, none of these reaches the client (the route's key and header values)."""
        added = tuple(secret for secret in secrets if secret and secret not in self._secrets)
        if added:
            self._secrets = tuple(sorted((*self._secrets, *added), key=str))
            self._redactor = redactor_for(self._secrets)

    @property
    def redactor(self) -> Redactor:
        return self._redactor

    def _headers(self, headers: Headers) -> list[tuple[str, str]]:
        # An upstream could echo a secret in any header it sends: such a header is dropped whole.
        redact = self._redactor.redact
        return [(name, value) for name, value in headers if redact(value) == value]

    # -- answers whose body is known in full --

    def fixed(
        self, status: int, body: bytes, content_type: str | None, headers: Headers = (), *, outcome: str
    ) -> Written:
        """A body known in full; it never makes the server read the request's body.

        functions-framework reads the whole request body after any response that is not
        streamed, with no size limit: a 401 to an unauthenticated 300 MB POST would first
        buffer 300 MB. An iterator body counts as streamed, so that read is skipped; the
        Content-Length keeps it a plain, unchunked response.
        """
        if len(body) > WRITE_LIMIT:
            logger.error("An answer of %d bytes was made; the relay sends at most %d", len(body), WRITE_LIMIT)
            status, outcome, content_type = 502, "error", TEXT
            body = b"The answer is larger than this relay passes on."
        sent = self._redactor.redact_bytes(body)
        response = flask.Response(iter([sent]), status=status, content_type=content_type)
        response.headers["Content-Length"] = str(len(sent))
        if content_type is None:
            del response.headers["Content-Type"]
        response.headers.extend(self._headers(headers))
        self.log.bytes_sent += len(sent)
        self.finish(status, outcome)
        return Written(response)

    def error(self, error: RelayError) -> Written:
        """Any RelayError: its status, its message (plain text, or the API's JSON on /v1/), its headers."""
        if error.upstream_status is not None:
            self.log.upstream_status = error.upstream_status
        if self.dialect != "original":
            body, content_type = self.error_body(error.message, error.status), JSON
        else:
            # The message may quote the caller's input, a lone surrogate included ("x\ud83d").
            body, content_type = encode_text(error.message), TEXT
        headers = {**ERROR_HEADERS, **error.headers()}
        return self.fixed(error.status, body, content_type, headers.items(), outcome=error.outcome)

    def error_body(self, message: str, status: int) -> bytes:
        """An error's JSON body, in the shape the request's API gives its errors."""
        return json_error_body(message, status, self.dialect)

    # -- answers written as they are made --

    def stream(self, source: Source, content_type: str, headers: Headers = ()) -> Written:
        """A 200 whose body is the source's writes, each redacted and counted as it goes."""
        body = WrittenBody(source, self)
        response = flask.Response(body, status=200, content_type=content_type, direct_passthrough=True)
        response.headers.update(STREAM_HEADERS)
        response.headers.extend(self._headers(headers))
        return Written(response)

    def finish(self, status: int, outcome: str) -> None:
        """Write the request's log line (once), then run the request's ends."""
        if self._finished:
            return
        self._finished = True
        log = self.log
        usage = self.usage
        if usage is not None and log.upstream_status is not None and log.upstream_status < 300:
            log.usage = usage.reported
            log.tokens, log.usage_source = usage.tokens(log.prompt_bytes)
        try:
            log.finish(status, outcome)
        finally:
            self._ended()


class WrittenBody:
    """An iterable WSGI body over a Source; `close` closes the source and finishes the log line."""

    def __init__(self, source: Source, writer: Writer) -> None:
        self._source = source
        self._writer = writer
        self._closed = False
        self._body = self._write()

    def __iter__(self) -> Iterator[bytes]:
        return self._body

    def _write(self) -> Generator[bytes, None, None]:
        # gunicorn sends the status and headers on the first write, even an empty one:
        # the caller learns at once that the upstream accepted, not at the first token.
        yield b""
        log = self._writer.log
        redaction = self._writer.redactor.stream()  # one text, however the writes split it
        for write in self._source:
            if len(write) > WRITE_LIMIT:
                logger.error(
                    "A write of %d bytes was made; the relay sends at most %d", len(write), WRITE_LIMIT
                )
                self._source.outcome, self._source.detail = "error", "relay made a write over WRITE_LIMIT"
                write = self._source.cut("the relay made a reply larger than it sends; the reply is cut")  # noqa: PLW2901
                if not write:
                    return
            sent = redaction.feed(write)
            if sent:
                log.bytes_sent += len(sent)
                yield sent
            if self._source.outcome == "error":
                break
        held = redaction.flush()
        if held:
            log.bytes_sent += len(held)
            yield held

    def close(self) -> None:
        """Called by the server when the response is over, finished or not."""
        if self._closed:
            return
        self._closed = True
        source = self._source
        try:
            self._body.close()
        finally:
            try:
                source.close()
            finally:
                if source.detail:
                    self._writer.log.detail = source.detail
                self._writer.finish(200, source.outcome)


def framework_error_response(error: HTTPException) -> flask.Response:
    """Plain text for an error the framework raises before the function runs (no request of ours)."""
    status = error.code or 500
    message = f"{status} {error.name}: {flask.request.method} {flask.request.path} is not served here."
    if status == 404:
        message += " " + ENDPOINTS_HINT
    body = message.encode()
    response = flask.Response(iter([body]), status=status, content_type=TEXT)
    response.headers["Content-Length"] = str(len(body))
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
