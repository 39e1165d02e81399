"""POST /v1/chat/completions: the OpenAI API, for the official SDKs and anything that speaks it.

The body passes through as it is, only the model's route prefix taken off; a stream comes back
event by event (relay/formats/chat_events.py); a whole answer, or an upstream's error, keeps
its status, JSON body and rate-limit headers, so the SDKs raise their usual exceptions and back
off as asked.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from relay.access.policy import bearer_key, choose_key, token_cap
from relay.config import Route, Settings
from relay.config.upstreams import KEY_SETTINGS
from relay.endpoints.base import Call, Encoding, Outgoing
from relay.endpoints.course import UpstreamEndpoint
from relay.errors import KeyRequired, MissingApiKey
from relay.formats import jsoncodec
from relay.formats.chat_events import ChatEvents
from relay.serving.writer import EVENT_STREAM_UTF8
from relay.validation.chat_body import (
    CHAT_FIELDS,
    ChatCompletionsRequest,
    check_fields,
    check_one_choice,
    parse_chat_completions,
)
from relay.validation.json_values import is_number


class ChatCompletions(UpstreamEndpoint):
    def prepare(self, call: Call) -> Outgoing:
        settings = self.settings
        request = parse_chat_completions(call.body())
        route, request.data["model"] = self.upstreams.route(call, request.model)
        self._limit_tokens(request, route)
        api_key = key_or_401(settings, bearer_key(settings, call.authorization), route)
        hide_usage = False
        if request.stream and route.stream_usage and settings.limits.any:
            # The limits count what a reply cost: ask for the usage chunk, and keep it from a
            # caller who did not ask for it.
            options = request.data.get("stream_options")
            options = options if isinstance(options, dict) else {}
            if options.get("include_usage") is not True:
                request.data["stream_options"] = {**options, "include_usage": True}
                hide_usage = True
        body = jsoncodec.dumps(request.data)
        encoding = Encoding(
            "chat", partial(ChatEvents, hide_usage=hide_usage), content_type=EVENT_STREAM_UTF8
        )
        return Outgoing(
            route, "/chat/completions", api_key, body, request.model, request.stream, encoding,
            most_output=most_output(request.data, ("max_tokens", "max_completion_tokens"), "n"),
        )  # fmt: skip

    def _limit_tokens(self, request: ChatCompletionsRequest, route: Route) -> None:
        """MAX_TOKENS_LIMIT, as on the original endpoint: per reply, so one choice per request."""
        limit = self.settings.max_tokens_limit
        if limit is None:
            return
        check_fields(request.data, CHAT_FIELDS, self.settings.allowed_fields)
        asked = request.asked_tokens()
        for name, value in asked.items():
            request.data[name] = token_cap(limit, name, value, None)
        check_one_choice(request.data)
        if not asked:
            # The owner's cap, where the caller set none. OpenAI's reasoning models refuse
            # max_tokens; other OpenAI-compatible servers may not know max_completion_tokens.
            request.data[token_field(route)] = limit


def most_output(data: dict[str, Any], fields: tuple[str, ...], choices: str | None = None) -> int | None:
    """The reply's tokens at most, as the body asks (every choice's); None where it does not say.

    Read leniently: a field of the wrong type is the upstream's to refuse (or MAX_TOKENS_LIMIT's).
    """
    asked = [data[name] for name in fields if is_number(data.get(name)) and data[name] >= 1]
    if not asked:
        return None
    count: Any = data.get(choices) if choices else 1
    return int(max(asked)) * (int(count) if is_number(count) and count >= 1 else 1)


def token_field(route: Route) -> str:
    host = route.host.split(":")[0]
    return "max_completion_tokens" if host.endswith(("openai.com", "openai.azure.com")) else "max_tokens"


def key_or_401(settings: Settings, client_key: str | None, route: Route) -> str | None:
    """Who pays, as on the original endpoint; no key at all is a 401 naming the route's API's key
    setting (the SDKs' AuthenticationError)."""
    try:
        return choose_key(settings, client_key, route)
    except MissingApiKey:
        raise KeyRequired(KEY_SETTINGS[route.api]) from None
