"""One structured log line per request, in the JSON shape Cloud Logging reads from stdout.

The line says what happened (status, outcome, model, timings, sizes, token
usage) and never what was said: no message text, no key, no token.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from relay.access.redaction import Redactor
from relay.formats import jsoncodec

logger = logging.getLogger("relay.request")

REQUEST_ID_HEADER = "X-Relay-Request-Id"
# A caller controls the path, the User-Agent and the model's name; a line holds at most this much
# of each, so no caller can make a line too long for Cloud Logging (entries over 256 KB are dropped).
FIELD_LIMIT = 512
MESSAGE_LIMIT = 4096
CUT = "…[cut]"

# outcome -> severity. ok and client_gone are normal; the others say who failed.
_LEVELS = {
    "ok": logging.INFO,
    "client_gone": logging.INFO,
    "rejected": logging.WARNING,  # the caller's request was refused (4xx)
    "limited": logging.WARNING,  # over a rate limit or spend cap the owner set (429)
    "upstream_error": logging.WARNING,  # the upstream failed or refused
    "timeout": logging.WARNING,  # the upstream was too slow
    "shutdown": logging.WARNING,  # the instance was stopped (SIGTERM) before the request ended
    "error": logging.ERROR,  # the relay itself failed
}

_CLOUD_TRACE = re.compile(r"([0-9a-fA-F]{32})(?:/|$)")  # X-Cloud-Trace-Context: TRACE/SPAN;o=1
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")  # W3C


def trace_of(project: str | None, cloud_trace_context: str | None, traceparent: str | None) -> str | None:
    """The request's trace as Cloud Logging names it, so its log line joins the trace.

    From `X-Cloud-Trace-Context` (TRACE_ID/SPAN_ID;o=1), else W3C `traceparent`.
    """
    if not project:
        return None
    match = _CLOUD_TRACE.match(cloud_trace_context or "") or _TRACEPARENT.fullmatch(traceparent or "")
    return f"projects/{project}/traces/{match.group(1)}" if match else None


@dataclass
class RequestLog:
    """What the relay learns about one request while serving it."""

    method: str
    path: str
    user_agent: str
    trace: str | None = None  # projects/<project>/traces/<id>, when known
    # Names this request's line; the caller gets it as X-Relay-Request-Id, to find the line by.
    request_id: str = field(default_factory=lambda: secrets.token_hex(8))
    started: float = field(default_factory=time.monotonic)
    model: str | None = None
    upstream_status: int | None = None
    first_token_ms: float | None = None
    chunks: int = 0
    skipped: int = 0  # upstream events that were not a JSON object
    bytes_sent: int = 0
    usage: dict[str, Any] | None = None
    detail: str | None = None  # why it failed, in the relay's own words
    caller: str | None = None  # an access token's name, or the client's address
    prompt_bytes: int = 0  # the request sent upstream, for an estimate of its tokens
    tokens: int | None = None  # what the reply cost (relay/access/usage.py), for the limits too
    usage_source: str | None = None  # "upstream" (its usage object) or "estimated"
    # The types of tools a translated /v1/responses request offered that its chat-only upstream
    # cannot run, left out of what was sent (relay/validation/responses_to_chat.py): a few, each cut.
    omitted_tools: list[str] = field(default_factory=list)

    def mark_first_token(self) -> None:
        if self.first_token_ms is None:
            self.first_token_ms = round((time.monotonic() - self.started) * 1000, 1)

    def finish(self, status: int, outcome: str) -> None:
        """Write the request's log line; `outcome` is a key of _LEVELS."""
        latency = time.monotonic() - self.started
        path = bounded(self.path)
        fields: dict[str, Any] = {
            "httpRequest": {
                "requestMethod": bounded(self.method),
                "requestUrl": path,
                "status": status,
                "latency": f"{latency:.3f}s",
                "userAgent": bounded(self.user_agent),
            },
            "outcome": outcome,
            "request_id": self.request_id,
            "model": None if self.model is None else bounded(self.model),
            "upstream_status": self.upstream_status,
            "first_token_ms": self.first_token_ms,
            "chunks": self.chunks,
            "skipped": self.skipped,
            "bytes": self.bytes_sent,
        }
        if self.caller is not None:
            fields["caller"] = bounded(self.caller)
        if self.usage is not None:
            fields["usage"] = self.usage
        if self.tokens is not None:
            fields["tokens"] = self.tokens
            fields["usage_source"] = self.usage_source
        if self.detail:
            fields["detail"] = self.detail
        if self.omitted_tools:
            fields["omitted_tools"] = bounded(",".join(self.omitted_tools))
        if self.trace:
            fields["logging.googleapis.com/trace"] = self.trace
        level = _LEVELS.get(outcome, logging.WARNING)
        message = f"{bounded(self.method)} {path} {status} {outcome}"
        logger.log(level, message, extra={"json_fields": fields})


def bounded(text: str, limit: int = FIELD_LIMIT) -> str:
    """`text`, or its start and a marker when it is longer than `limit` characters."""
    return text if len(text) <= limit else text[: limit - len(CUT)] + CUT


class CloudLoggingFormatter(logging.Formatter):
    """Formats a record as one JSON line with `severity` and `message`.

    Fields passed as `extra={"json_fields": {...}}` become top-level keys, which
    Cloud Logging indexes (`httpRequest`, `logging.googleapis.com/trace`). Every
    configured key and token is redacted from the line, whatever put it there.
    """

    redactor = Redactor(())

    def format(self, record: logging.LogRecord) -> str:
        # What came from outside (a log call's arguments, of any type, a mapping's values too; a
        # request's fields) is redacted; the relay's own words are left as they are (a short
        # token could be any word of them).
        redact = self.redactor.redact

        def outside(arg: object) -> object:
            if arg is None or isinstance(arg, int | float):
                return arg  # for %d and the like; nothing secret
            return redact(arg if isinstance(arg, str) else str(arg))

        message = record.msg if isinstance(record.msg, str) else str(record.msg)
        args = record.args
        if isinstance(args, Mapping) and args:
            message %= {name: outside(value) for name, value in args.items()}
        elif args:
            message %= tuple(outside(arg) for arg in (args if isinstance(args, tuple) else (args,)))
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": bounded(message, MESSAGE_LIMIT),
            "logger": record.name,
        }
        extra = getattr(record, "json_fields", None)
        if isinstance(extra, dict):
            entry.update(_redacted(extra, redact))
        if record.exc_info and record.exc_info[0] is not None:
            # The exception's type only: its text or traceback could quote a request.
            entry["exception"] = record.exc_info[0].__name__
        return jsoncodec.dumps(entry).decode()


def _redacted(fields: dict[str, Any], redact: Callable[[str], str]) -> dict[str, Any]:
    return {
        name: redact(value)
        if isinstance(value, str)
        else _redacted(value, redact)
        if isinstance(value, dict)
        else value
        for name, value in fields.items()
    }


def redact_from_logs(secrets: tuple[str | None, ...]) -> None:
    """Keep these secrets (the configured keys and tokens) out of every log line from now on."""
    CloudLoggingFormatter.redactor = Redactor(secrets)


def configure_logging(level: int = logging.INFO) -> None:
    """Send the relay's log records to stdout as Cloud Logging JSON lines."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter())
    root = logging.getLogger("relay")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
