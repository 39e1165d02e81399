"""The one writer (relay/serving/writer.py), without a server: what every answer goes through.

Every byte and header value redacted with the request's secrets, a stream as one text; every
body and write within WRITE_LIMIT; the bytes the caller got counted; the log line written once,
with the outcome, and then the request's ends. The end-to-end side is tests/test_reply_path.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import flask
import pytest
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from relay.access.usage import Usage
from relay.errors import ENDPOINTS_HINT, BadRequest, Dialect, RateLimited, RelayError, ShuttingDown
from relay.serving import writer as writer_module
from relay.serving.request_log import RequestLog
from relay.serving.writer import (
    EVENT_STREAM_UTF8,
    TEXT,
    WRITE_LIMIT,
    Writer,
    Written,
    framework_error_response,
)
from relay.upstream.failures import UpstreamHTTPError, UpstreamTimeout

KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXyZ0QPO0"
RUN = KEY[8:16]  # eight characters of it after its public prefix


class Ends:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def made(log: RequestLog | None = None, dialect: Dialect = "openai") -> tuple[Writer, RequestLog, Ends]:
    log = log or RequestLog(method="POST", path="/v1/chat/completions", user_agent="test")
    ends = Ends()
    return Writer(log, ends, dialect), log, ends


def body_of(written: Written) -> bytes:
    response = written.response
    try:
        return b"".join(response.response)  # type: ignore[arg-type]
    finally:
        response.close()


def fields(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [record.json_fields for record in caplog.records if record.name == "relay.request"]  # type: ignore[attr-defined]


# -- a body known in full ----------------------------------------------------------------------------


def test_a_fixed_answer_is_redacted_counted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="relay.request")
    writer, _, ends = made()
    writer.keep_secret(KEY, None, "ollama")
    written = writer.fixed(
        401, f"bad key {KEY}".encode(), "application/json", (("x-a", "1"),), outcome="upstream_error"
    )
    assert body_of(written) == b"bad key [redacted]"
    assert written.response.status_code == 401
    assert written.response.headers["Content-Length"] == str(len(b"bad key [redacted]"))
    assert written.response.headers["x-a"] == "1"
    ((line,),) = [fields(caplog)]
    assert (line["bytes"], line["outcome"]) == (len(b"bad key [redacted]"), "upstream_error")
    assert ends.count == 1
    writer.finish(500, "error")  # a second end changes nothing: one line, one run of the ends
    assert len(fields(caplog)) == 1 and ends.count == 1


def test_before_any_secret_is_known_nothing_is_changed() -> None:
    writer, _, _ = made()
    page = b"Incorrect API key provided: sk-abc***xyz; use sk-... here" + KEY.encode()
    assert body_of(writer.fixed(200, page, "text/html", outcome="ok")) == page


def test_a_header_that_holds_a_secret_is_dropped_whole() -> None:
    writer, _, _ = made()
    writer.keep_secret(KEY)
    headers = (("x-request-id", f"req-{RUN}"), ("retry-after", "3"), ("x-title", "reply path"))
    response = writer.fixed(200, b"{}", "application/json", headers, outcome="ok").response
    assert "x-request-id" not in response.headers
    assert (response.headers["retry-after"], response.headers["x-title"]) == ("3", "reply path")


def test_no_content_type_where_none_is_given() -> None:
    writer, _, _ = made()
    response = writer.fixed(204, b"", None, (("Allow", "GET"),), outcome="ok").response
    assert "Content-Type" not in response.headers
    assert response.headers["Content-Length"] == "0"


def test_a_body_over_the_write_limit_is_a_502_and_logged_as_the_relays_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    writer, _, _ = made()
    written = writer.fixed(200, b"x" * (WRITE_LIMIT + 1), "application/json", outcome="ok")
    assert written.response.status_code == 502
    assert body_of(written) == b"The answer is larger than this relay passes on."
    assert fields(caplog)[0]["outcome"] == "error"
    exact, _, _ = made()  # at the limit: taken
    assert exact.fixed(200, b"x" * WRITE_LIMIT, "application/json", outcome="ok").response.status_code == 200


def test_an_error_is_plain_text_or_openais_json_with_its_headers() -> None:
    writer, _, _ = made(dialect="original")
    writer.keep_secret(KEY)
    error = UpstreamHTTPError(429, f"OpenAI API error: 429 Too Many Requests quoting {KEY}", "7")
    response = writer.error(error).response
    assert body_of(writer.error(error)) == b"OpenAI API error: 429 Too Many Requests quoting [redacted]"
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")
    assert response.headers["Content-Type"] == TEXT
    assert response.headers["Cache-Control"] == "no-store"
    other, log, _ = made()
    limited = RateLimited("Rate limit: over", 30, waiting_helps=True)
    response = other.error(limited).response
    assert body_of(other.error(limited)).startswith(b'{"error":{"message":"Rate limit: over"')
    assert response.headers["x-should-retry"] == "true"
    assert log.upstream_status is None
    upstream, log, _ = made()
    upstream.error(error)
    assert log.upstream_status == 429


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (RateLimited("Rate limit: over", 30, waiting_helps=True), "rate_limit_error"),
        (ShuttingDown(), "overloaded_error"),
        (UpstreamTimeout("Anthropic API error: api.anthropic.com did not answer"), "timeout_error"),
        (UpstreamHTTPError(401, f"bad key {KEY}"), "authentication_error"),
    ],
)
def test_an_error_on_anthropics_endpoints_is_in_anthropics_shape(error: RelayError, kind: str) -> None:
    writer, _, _ = made(dialect="anthropic")
    writer.keep_secret(KEY)
    written = writer.error(error)
    body = json.loads(body_of(written))
    assert body == {
        "type": "error",
        "error": {"type": kind, "message": error.message.replace(KEY, "[redacted]")},
    }
    assert written.response.status_code == error.status
    assert written.response.headers["Content-Type"] == "application/json"


def test_a_reply_that_reached_the_upstream_logs_what_it_cost(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="relay.request")
    writer, log, _ = made()
    log.upstream_status, log.prompt_bytes = 200, 40
    writer.usage = Usage()
    writer.usage.written = 60
    writer.fixed(200, b"{}", "application/json", outcome="ok")
    line = fields(caplog)[0]
    assert (line["tokens"], line["usage_source"]) == (25, "estimated")  # (40 + 60) / 4
    refused, log, _ = made()
    log.upstream_status = 400
    refused.usage = Usage()
    refused.fixed(400, b"{}", "application/json", outcome="upstream_error")
    assert "tokens" not in fields(caplog)[1]


# -- a body written as it is made -------------------------------------------------------------------


class Source:
    """A stream's writes, as relay/serving/relayed_stream.py makes them, and how it ended."""

    def __init__(self, writes: list[bytes], outcome: str = "ok", detail: str | None = None) -> None:
        self.writes = writes
        self.final_outcome, self.final_detail = outcome, detail
        self.outcome = "client_gone"
        self.detail: str | None = None
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        yield from self.writes
        self.outcome, self.detail = self.final_outcome, self.final_detail

    def close(self) -> None:
        self.closed += 1

    def cut(self, reason: str) -> bytes:
        return f"[cut: {reason}]".encode()


def test_a_stream_goes_out_as_one_text_redacted_however_its_writes_split_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="relay.request")
    writer, _, ends = made()
    writer.keep_secret(KEY)
    source = Source([b"key ", RUN[:3].encode(), RUN[3:].encode(), b" then\n"])
    written = writer.stream(source, EVENT_STREAM_UTF8, (("x-request-id", "r1"),))
    response = written.response
    chunks = [bytes(chunk) for chunk in response.response]  # type: ignore[arg-type]
    assert chunks[0] == b""  # the head goes out at once
    assert b"".join(chunks) == b"key [redacted] then\n"
    assert (response.headers["Cache-Control"], response.headers["X-Accel-Buffering"]) == ("no-cache", "no")
    assert response.headers["x-request-id"] == "r1"
    assert ends.count == 0  # not before the body closes
    response.close()
    response.close()
    assert source.closed == 1 and ends.count == 1
    line = fields(caplog)[0]
    assert (line["bytes"], line["outcome"]) == (len(b"key [redacted] then\n"), "ok")


def test_a_stream_closed_before_its_end_logs_its_sources_outcome_and_what_the_client_got(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="relay.request")
    writer, _, _ = made()
    source = Source([b"one\n", b"two\n", b"three\n"])
    response = writer.stream(source, TEXT).response
    body = iter(response.response)
    assert (next(body), next(body)) == (b"", b"one\n")
    response.close()  # the server closes the body before its end: its client left
    # The outcome is the source's ("client_gone" until it ends otherwise: relay/serving/relayed_stream.py);
    # the writer's part is to log it, with the bytes sent. End to end: tests/test_hardening.py.
    line = fields(caplog)[0]
    assert (line["outcome"], line["bytes"]) == ("client_gone", 4)


def test_a_write_over_the_limit_is_cut_with_the_formats_note_and_logged(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(writer_module, "WRITE_LIMIT", 10)
    writer, _, _ = made()
    source = Source([b"small\n", b"x" * 11, b"never\n"])
    response = writer.stream(source, TEXT).response
    body = b"".join(response.response)  # type: ignore[arg-type]
    response.close()
    assert body == b"small\n[cut: the relay made a reply larger than it sends; the reply is cut]"
    line = fields(caplog)[-1]
    assert (line["outcome"], line["detail"]) == ("error", "relay made a write over WRITE_LIMIT")
    assert any("A write of 11 bytes" in record.getMessage() for record in caplog.records)


def test_a_streams_detail_goes_to_its_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="relay.request")
    writer, _, _ = made()
    response = writer.stream(Source([b"a\n"], "timeout", "stream reached STREAM_MAX_SECONDS"), TEXT).response
    list(response.response)
    response.close()
    line = fields(caplog)[0]
    assert (line["outcome"], line["detail"]) == ("timeout", "stream reached STREAM_MAX_SECONDS")


def test_the_secrets_kept_are_every_one_given_once() -> None:
    writer, _, _ = made()
    writer.keep_secret(KEY, None, "")
    writer.keep_secret(KEY, "hdr-SECRET-4c6e8a0b2d4f6a8c0e")
    body = f"{RUN} and 4c6e8a0b2d4f".encode()
    assert body_of(writer.fixed(200, body, TEXT, outcome="ok")) == b"[redacted] and [redacted]"


# -- what the mutation run found untested ------------------------------------------------------------


def test_an_answers_status_is_its_log_lines_and_an_errors_outcome_its_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="relay.request")
    writer, _, _ = made()
    writer.fixed(404, b"{}", "application/json", outcome="refused")
    limited, _, _ = made()
    limited.error(RateLimited("Rate limit: over", 30, waiting_helps=True))
    streamed, _, _ = made()
    response = streamed.stream(Source([b"a\n"]), TEXT).response
    list(response.response)
    response.close()
    lines = fields(caplog)
    assert [(line["httpRequest"]["status"], line["outcome"]) for line in lines] == [  # type: ignore[index]
        (404, "refused"),
        (429, "limited"),
        (200, "ok"),
    ]


def test_a_stream_is_a_200_of_its_content_type_passed_through_as_written() -> None:
    writer, _, _ = made()
    response = writer.stream(Source([b"data: x\n\n"]), EVENT_STREAM_UTF8).response
    assert (response.status_code, response.headers["Content-Type"]) == (200, EVENT_STREAM_UTF8)
    assert response.direct_passthrough is True  # werkzeug leaves the writes as they are
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    response.close()


def test_the_upstreams_own_usage_goes_to_the_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="relay.request")
    writer, log, _ = made()
    log.upstream_status = 200
    writer.usage = Usage()
    writer.usage.reported = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    writer.fixed(200, b"{}", "application/json", outcome="ok")
    plain, log, _ = made()  # no reply was read: nothing to count, and no failure for it
    log.upstream_status = 200
    plain.fixed(200, b"{}", "application/json", outcome="ok")
    first, second = fields(caplog)
    assert (first["usage"], first["tokens"], first["usage_source"]) == (
        {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        7,
        "upstream",
    )
    assert "usage" not in second and "tokens" not in second


def test_what_a_stream_holds_back_at_its_end_is_sent_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """The carry that catches a secret split between writes is flushed when the stream ends."""
    caplog.set_level(logging.INFO, logger="relay.request")
    writer, _, _ = made()
    writer.keep_secret(KEY)
    tail = RUN[:5].encode()  # could begin a run of the key: held back until the text goes on or ends
    response = writer.stream(Source([b"first\n", b"ends with " + tail]), TEXT).response
    body = b"".join(response.response)  # type: ignore[arg-type]
    response.close()
    assert body == b"first\nends with " + tail
    assert fields(caplog)[0]["bytes"] == len(body)


class FailingSource(Source):
    """A stream that ends in its format's error note: nothing after it is sent."""

    def __iter__(self) -> Iterator[bytes]:
        yield self.writes[0]
        self.outcome = "error"
        yield self.writes[1]
        yield b"never"


def test_a_stream_that_failed_ends_after_its_note_with_what_it_held() -> None:
    writer, _, _ = made()
    writer.keep_secret(KEY)
    tail = RUN[:5].encode()
    source = FailingSource([b"text\n", b"[Error: the upstream failed] " + tail])
    response = writer.stream(source, TEXT).response
    body = b"".join(response.response)  # type: ignore[arg-type]
    response.close()
    assert body == b"text\n[Error: the upstream failed] " + tail


def test_the_limits_messages_and_a_write_at_the_limit(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    writer, _, _ = made()
    writer.fixed(200, b"x" * (WRITE_LIMIT + 1), "application/json", outcome="ok")
    said = [record.getMessage() for record in caplog.records if record.name == "relay.serving.writer"]
    assert said == [f"An answer of {WRITE_LIMIT + 1} bytes was made; the relay sends at most {WRITE_LIMIT}"]
    monkeypatch.setattr(writer_module, "WRITE_LIMIT", 10)
    caplog.clear()
    streamed, _, _ = made()
    response = streamed.stream(Source([b"x" * 10, b"y" * 11]), TEXT).response
    body = b"".join(response.response)  # type: ignore[arg-type]
    response.close()
    assert body.startswith(b"x" * 10 + b"[cut:")  # ten bytes are within a limit of ten
    said = [record.getMessage() for record in caplog.records if record.name == "relay.serving.writer"]
    assert said == ["A write of 11 bytes was made; the relay sends at most 10"]


def test_errors_are_openais_shape_unless_a_dialect_says_otherwise() -> None:
    expected = {"error": {"message": "nope", "type": "invalid_request_error", "param": None, "code": None}}
    assert json.loads(writer_module.json_error_body("nope", 400)) == expected
    log = RequestLog(method="POST", path="/v1/chat/completions", user_agent="test")
    written = Writer(log, Ends()).error(BadRequest("nope"))
    assert json.loads(body_of(written)) == expected


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (NotFound(), f"404 Not Found: GET /nowhere is not served here. {ENDPOINTS_HINT}"),
        (MethodNotAllowed(), "405 Method Not Allowed: GET /nowhere is not served here."),
        (HTTPException(), "500 Unknown Error: GET /nowhere is not served here."),
    ],
)
def test_an_error_the_framework_raises_is_plain_text_naming_the_request(
    error: HTTPException, said: str
) -> None:
    with flask.Flask(__name__).test_request_context("/nowhere", method="GET"):
        response = framework_error_response(error)
    body = b"".join(response.response)  # type: ignore[arg-type]
    assert body == said.encode()
    assert response.status_code == int(said[:3])
    assert (response.headers["Content-Type"], response.headers["Content-Length"]) == (TEXT, str(len(body)))
    assert response.headers["X-Content-Type-Options"] == "nosniff"
