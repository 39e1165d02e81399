"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API, for its SDKs and Claude Code.

The body passes through as it is, only the model's route prefix taken off, to the model's route
among those that speak Anthropic's API (else ANTHROPIC_BASE_URL), with the key as `x-api-key`
and the caller's `anthropic-version` and `anthropic-beta` headers. A stream comes back event by
event (relay/formats/anthropic_events.py); a whole answer, or an upstream's error, keeps its
status, JSON body and rate-limit headers, so the SDKs raise their usual errors and back off as
asked. Access tokens (from `x-api-key` or `Authorization: Bearer`), who pays, ALLOWED_MODELS,
MAX_TOKENS_LIMIT, the per-caller limits, bounds, cancellation and logs are every endpoint's; the
relay's own errors come in Anthropic's shape (relay/serving/writer.py).
"""

from __future__ import annotations

from relay.access.policy import anthropic_key, token_cap
from relay.config.environment import HEADER_TEXT
from relay.endpoints.base import Call, Encoding, Outgoing
from relay.endpoints.chat_completions import key_or_401, most_output
from relay.endpoints.course import UpstreamEndpoint
from relay.errors import BadRequest
from relay.formats import jsoncodec
from relay.formats.anthropic_events import KEEPALIVE, MessagesPassThrough
from relay.serving.writer import EVENT_STREAM_UTF8
from relay.validation.messages_body import MessagesRequest, check_messages_fields, parse_messages

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
# The caller's headers the upstream needs: the version of the API its body is written for, and
# the beta features it uses (Claude Code sends eight). Any other header of the caller's stays here.
PASSED_REQUEST_HEADERS = ("anthropic-version", "anthropic-beta")
# The version a caller that names none (curl) is taken to write for: the API's first, which every
# client knows; Anthropic refuses a request without one.
DEFAULT_VERSION = "2023-06-01"
# Characters of one such header, all its lines joined; Claude Code's betas are about 250.
REQUEST_HEADER_LIMIT = 2048

# Its keep-alive is Anthropic's own ping: the SDKs skip it, Claude Code's stream watchdog counts it.
STREAMED = Encoding("messages", MessagesPassThrough, content_type=EVENT_STREAM_UTF8, keepalive=KEEPALIVE)
COUNTED = Encoding("messages", free=True)  # count_tokens: the upstream bills nothing for it


class Messages(UpstreamEndpoint):
    def prepare(self, call: Call) -> Outgoing:
        request = parse_messages(call.body())
        self._limit_tokens(request)
        most = most_output(request.data, ("max_tokens",))
        return outgoing(self, call, request, MESSAGES_PATH, encoding=STREAMED, most=most)

    def _limit_tokens(self, request: MessagesRequest) -> None:
        """MAX_TOKENS_LIMIT caps max_tokens (set where the caller set none); only what it bounds passes."""
        limit = self.settings.max_tokens_limit
        if limit is None:
            return
        check_messages_fields(request.data, self.settings.allowed_fields)
        request.data["max_tokens"] = token_cap(limit, "max_tokens", request.asked_tokens(), None)


class CountTokens(UpstreamEndpoint):
    """A request's input tokens, counted: free upstream, so no tokens are reserved or counted."""

    def prepare(self, call: Call) -> Outgoing:
        request = parse_messages(call.body())
        return outgoing(self, call, request, COUNT_TOKENS_PATH, encoding=COUNTED, most=0)


def outgoing(
    endpoint: UpstreamEndpoint,
    call: Call,
    request: MessagesRequest,
    path: str,
    *,
    encoding: Encoding,
    most: int | None,
) -> Outgoing:
    """The request for the model's Anthropic route: its key, the caller's headers, the body as it came."""
    settings = endpoint.settings
    route, upstream_model = endpoint.upstreams.route(call, request.model, "anthropic")
    api_key = key_or_401(settings, anthropic_key(settings, call.authorization, call.api_key), route)
    body = jsoncodec.dumps({**request.data, "model": upstream_model})
    # Claude Code calls the beta form of the API (?beta=true), as it would Anthropic's own.
    if call.request.args.get("beta") == "true":
        path += "?beta=true"
    headers = request_headers(call)
    return Outgoing(
        route, path, api_key, body, request.model, request.stream, encoding, most_output=most, headers=headers
    )


def request_headers(call: Call) -> tuple[tuple[str, str], ...]:
    """The caller's anthropic-version and anthropic-beta, each a line of visible ASCII within its bound."""
    headers = []
    for name in PASSED_REQUEST_HEADERS:
        value = ",".join(line.strip() for line in call.request.headers.getlist(name) if line.strip())
        if not value:
            continue
        if len(value) > REQUEST_HEADER_LIMIT or not HEADER_TEXT.fullmatch(value):
            raise BadRequest(
                f'The "{name}" header must be at most {REQUEST_HEADER_LIMIT} characters of visible ASCII.'
            )
        headers.append((name, value))
    if not headers or headers[0][0] != "anthropic-version":
        headers.insert(0, ("anthropic-version", DEFAULT_VERSION))
    return tuple(headers)
