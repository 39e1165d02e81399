"""POST /api/chat (and POST /): the original route, in big-agi's 2023 wire format.

The body is validated field by field (relay/validation/original_body.py); the upstream is
asked for a stream and its reply relayed as `{"model":…}` and then plain text
(relay/formats/original_text.py); an upstream's refusal is told in the original's words:
`OpenAI API error: <status> <reason> <the upstream's JSON body, compact, or {}>`.
"""

from __future__ import annotations

from functools import partial

from relay.access.policy import choose_key, token_cap
from relay.endpoints.base import Call, Encoding, Outgoing
from relay.endpoints.course import UpstreamEndpoint
from relay.formats.original_text import TextStream
from relay.serving.writer import TEXT
from relay.validation.original_body import DEFAULT_MAX_TOKENS, parse_chat_request


class OriginalChat(UpstreamEndpoint):
    def prepare(self, call: Call) -> Outgoing:
        settings = self.settings
        chat = parse_chat_request(call.body())
        route, model = self.upstreams.route(call, chat.model)
        max_tokens = token_cap(settings.max_tokens_limit, "max_tokens", chat.max_tokens, DEFAULT_MAX_TOKENS)
        api_key = choose_key(settings, chat.api_key, route)
        body = chat.upstream_body(model, max_tokens or DEFAULT_MAX_TOKENS, stream_usage=route.stream_usage)
        # The 2023 client reads text, and an upstream's refusal in its own words; it has no SDK to
        # act on headers or retry, so the relay retries a 429 or 5xx for it.
        encoding = Encoding(
            "chat",
            partial(TextStream, chat.model),
            content_type=TEXT,
            refusal="text",
            sdk_headers=False,
            retry_statuses=True,
            keepalive=None,  # its body is the model's text: nothing else may be in it
        )
        most = max_tokens or DEFAULT_MAX_TOKENS
        return Outgoing(
            route, "/chat/completions", api_key, body, chat.model, True, encoding, most_output=most
        )
