"""POST /v1/responses: OpenAI's Responses API, on every route.

A route whose upstream speaks it (api.openai.com, or a route with "responses": true) gets the
body as it is and its events passed on as they arrive (relay/formats/responses_passthrough.py).
A route whose upstream speaks only chat completions (most OpenAI-compatible servers) gets the
request translated (relay/validation/responses_to_chat.py) and its stream or answer translated
back (relay/formats/responses_events.py), so the same clients work on any route. Access rules,
limits, timeouts, cancellation and logs are every endpoint's.
"""

from __future__ import annotations

from functools import partial

from relay.access.policy import bearer_key, token_cap
from relay.endpoints.base import Call, Encoding, Outgoing
from relay.endpoints.chat_completions import key_or_401, most_output, token_field
from relay.endpoints.course import UpstreamEndpoint
from relay.formats import jsoncodec
from relay.formats.responses_events import ChatToResponses, as_response
from relay.formats.responses_object import ECHOED
from relay.formats.responses_passthrough import ResponsesPassThrough
from relay.serving.writer import EVENT_STREAM_UTF8
from relay.upstream.bodies import WHOLE_BODY_LIMIT
from relay.validation.chat_body import check_fields
from relay.validation.responses_body import RESPONSES_FIELDS, ResponsesRequest, check_tools, parse_responses
from relay.validation.responses_to_chat import as_chat_completions


class Responses(UpstreamEndpoint):
    def prepare(self, call: Call) -> Outgoing:
        settings = self.settings
        request = parse_responses(call.body())
        route, upstream_model = self.upstreams.route(call, request.model)
        self._limit_tokens(request)
        api_key = key_or_401(settings, bearer_key(settings, call.authorization), route)
        data = {**request.data, "model": upstream_model}
        if route.responses_api:
            encoding = Encoding(
                "responses", partial(ResponsesPassThrough, request.model), content_type=EVENT_STREAM_UTF8
            )
            body = jsoncodec.dumps(data)
            most = most_output(data, ("max_output_tokens",))
            return Outgoing(route, "/responses", api_key, body, request.model, request.stream, encoding, most)
        chat = as_chat_completions(data, token_field(route))
        if request.stream and route.stream_usage:
            chat["stream_options"] = {"include_usage": True}
        echo = {name: request.data.get(name) for name in ECHOED}
        encoding = Encoding(
            "chat",
            partial(ChatToResponses, request.model, echo),
            content_type=EVENT_STREAM_UTF8,
            whole=partial(as_response, model=request.model, request=echo, limit=WHOLE_BODY_LIMIT),
        )
        body = jsoncodec.dumps(chat)
        most = most_output(data, ("max_output_tokens",))
        return Outgoing(
            route, "/chat/completions", api_key, body, request.model, request.stream, encoding, most
        )

    def _limit_tokens(self, request: ResponsesRequest) -> None:
        """MAX_TOKENS_LIMIT caps max_output_tokens, and sets it where the caller set none."""
        limit = self.settings.max_tokens_limit
        if limit is None:
            return
        check_fields(request.data, RESPONSES_FIELDS, self.settings.allowed_fields)
        check_tools(request.data, self.settings.allowed_fields)
        request.data["max_output_tokens"] = token_cap(
            limit, "max_output_tokens", request.asked_tokens(), None
        )
