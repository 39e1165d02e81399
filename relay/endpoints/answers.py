"""An upstream's whole answer passed on to an OpenAI SDK: its status, its JSON, the headers SDKs act on."""

from __future__ import annotations

from typing import Any

import flask

from relay.access.redaction import redactor_for
from relay.endpoints.base import safe_headers
from relay.errors import RETRIED_STATUSES
from relay.formats import jsoncodec
from relay.serving.request_log import RequestLog
from relay.serving.responses import fixed_response, json_error_body
from relay.upstream.bodies import JSON, Answer


def answer_response(
    answer: Answer, log: RequestLog, api_key: str | None, *, count_usage: bool = False
) -> flask.Response:
    """The answer as it came; JSON even where the upstream sent none, so the SDKs raise the right error."""
    status, content_type, body = answer.status, answer.content_type, answer.body
    redactor = redactor_for((api_key,))
    if not (200 <= status < 300 or 400 <= status <= 599):
        # A redirect, or a status no client knows: the base URL likely points somewhere else.
        status, content_type = 502, JSON
        body = json_error_body(
            f"The upstream ({answer.host}) answered {answer.status}, which the relay cannot pass on; "
            "check OPENAI_BASE_URL (or the route's base_url).",
            status,
        )
    elif not content_type.lower().startswith(JSON):
        # An HTML error page or the like.
        status = status if status >= 400 else 502
        body = json_error_body(
            f"The upstream ({answer.host}) answered {answer.status} without a JSON body.", status
        )
        content_type = JSON
    else:
        # OpenAI's 401 quotes the refused key, masked: not for the caller to see, in any answer.
        body = redactor.redact_bytes(body)
        if count_usage and status < 300:
            log.usage, log.text_chars = usage_of(body), len(body)
    log.finish(status, "ok" if status < 400 else "upstream_error")
    response = fixed_response(body, status, content_type)
    response.headers.extend(safe_headers(answer.headers, redactor))
    if status in RETRIED_STATUSES:
        # The relay retried as far as UPSTREAM_RETRIES allows: one SDK call costs at most
        # 1 + UPSTREAM_RETRIES upstream requests, not that many times the SDK's own retries.
        response.headers["x-should-retry"] = "false"
    return response


def usage_of(body: bytes) -> dict[str, Any] | None:
    """The usage object of a whole JSON answer, if it has one."""
    try:
        answer = jsoncodec.loads(body)
    except jsoncodec.JSONDecodeError:
        return None
    usage = answer.get("usage") if isinstance(answer, dict) else None
    return usage if isinstance(usage, dict) else None
