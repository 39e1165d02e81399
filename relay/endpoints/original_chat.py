"""POST /api/chat (and POST /): the original route, in big-agi's 2023 wire format.

The body is validated field by field (relay/validation/original_body.py); the upstream
is asked for a stream and its reply relayed as `{"model":…}` and then plain text
(relay/formats/original.py); an upstream's refusal is told in the original's words:
`OpenAI API error: <status> <reason> <the upstream's JSON body, compact, or {}>`.
"""

from __future__ import annotations

import http

import flask
import httpx

from relay.access.policy import choose_key, token_cap
from relay.access.redaction import redact, redactor_for
from relay.endpoints.base import Call, Outgoing, UpstreamEndpoint, safe_headers, stream_reply
from relay.errors import UpstreamError, UpstreamHTTPError, UpstreamUnreachable
from relay.formats import jsoncodec
from relay.formats.original import TextStream
from relay.upstream.bodies import body_kind, passed_headers, read_error_body
from relay.validation.original_body import DEFAULT_MAX_TOKENS, parse_chat_request


class OriginalChat(UpstreamEndpoint):
    def prepare(self, call: Call) -> Outgoing:
        settings = self.settings
        chat = parse_chat_request(call.body())
        route, model = self.upstreams.route(call, chat.model)
        max_tokens = token_cap(settings.max_tokens_limit, "max_tokens", chat.max_tokens, DEFAULT_MAX_TOKENS)
        api_key = choose_key(settings, chat.api_key, route)
        body = chat.upstream_body(model, max_tokens or DEFAULT_MAX_TOKENS, stream_usage=route.stream_usage)
        return Outgoing(route, "/chat/completions", api_key, body, chat.model, stream=True)

    def answer(self, call: Call, outgoing: Outgoing, response: httpx.Response) -> flask.Response:
        if not response.is_success or body_kind(response) == "other":
            try:
                raise refusal(response, outgoing.api_key)
            finally:
                response.close()
        return stream_reply(call, response, TextStream(outgoing.model), outgoing.api_key)


def refusal(response: httpx.Response, api_key: str | None) -> UpstreamError:
    """What the caller is told of an upstream that did not answer with a reply."""
    host = response.request.url.host
    if response.is_success:
        return UpstreamUnreachable(
            f"OpenAI API error: {host} answered {response.status_code} with "
            f"{response.headers.get('content-type')}, not an event stream; check its base URL."
        )
    body = read_error_body(response)
    try:
        payload = jsoncodec.dumps(jsoncodec.loads(body)).decode()
    except jsoncodec.JSONDecodeError:
        payload = "{}"
    status = response.status_code
    # HTTP/2 has no reason phrase; httpx then gives the standard one, or "" if unknown.
    reason = response.reason_phrase or _standard_reason(status)
    # The 2023 client shows this text, and looks for "429 Too Many Requests" in it.
    message = redact(f"OpenAI API error: {status} {reason} {payload}", (api_key,))
    if 400 <= status <= 599:
        # Seconds or an HTTP date, printable and short, as any header passed on; never one holding the key.
        passed = safe_headers(passed_headers(response.headers), redactor_for((api_key,)))
        return UpstreamHTTPError(status, message, dict(passed).get("retry-after"))
    # A redirect or another status the relay cannot pass on: the base URL is likely wrong.
    return UpstreamUnreachable(f"{message} (unexpected status from the upstream; check OPENAI_BASE_URL)")


def _standard_reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""
