"""POST /v1/responses and POST /v1/responses/compact: OpenAI's Responses API, on every route.

A route whose upstream speaks it (api.openai.com, or a route with "responses": true) gets the
body as it is and its events passed on as they arrive (relay/formats/responses_passthrough.py).
A route whose upstream speaks only chat completions (most OpenAI-compatible servers) gets the
request translated (relay/validation/responses_to_chat.py) and its stream or answer translated
back (relay/formats/responses_events.py), so the same clients work on any route; the tools it
left out are named in the request's log line. A compaction is the Responses API's own: passed
through where the route speaks it, refused with a 400 that says why where it does not. Access
rules, limits, timeouts, cancellation and logs are every endpoint's.
"""

from __future__ import annotations

from functools import partial

from relay.access.policy import bearer_key, token_cap
from relay.endpoints.base import Call, Encoding, Outgoing
from relay.endpoints.chat_completions import key_or_401, most_output, token_field
from relay.endpoints.course import UpstreamEndpoint
from relay.errors import BadRequest
from relay.formats import jsoncodec
from relay.formats.responses_events import ChatToResponses, as_response
from relay.formats.responses_object import ECHOED
from relay.formats.responses_passthrough import ResponsesPassThrough
from relay.serving.writer import EVENT_STREAM_UTF8
from relay.upstream.bodies import WHOLE_BODY_LIMIT
from relay.validation.chat_body import check_fields
from relay.validation.json_values import check_depths, model_name, parse_json_object
from relay.validation.responses_body import (
    RESPONSES_FIELDS,
    ResponsesRequest,
    leave_out_billed_tools,
    note_omitted,
    parse_responses,
)
from relay.validation.responses_to_chat import as_chat_completions

COMPACT_PATH = "/v1/responses/compact"


class Responses(UpstreamEndpoint):
    def prepare(self, call: Call) -> Outgoing:
        settings = self.settings
        request = parse_responses(call.body())
        route, upstream_model = self.upstreams.route(call, request.model)
        omitted = self._limit_tokens(request)
        call.log.omitted_tools = omitted
        api_key = key_or_401(settings, bearer_key(settings, call.authorization), route)
        data = {**request.data, "model": upstream_model}
        most = most_output(data, ("max_output_tokens",))
        if route.responses_api:
            encoding = Encoding(
                "responses", partial(ResponsesPassThrough, request.model), content_type=EVENT_STREAM_UTF8
            )
            body = jsoncodec.dumps(data)
            return Outgoing(route, "/responses", api_key, body, request.model, request.stream, encoding, most)
        translation = as_chat_completions(data, token_field(route), settings.unsupported_tools)
        for tool_type in translation.omitted:
            note_omitted(omitted, tool_type)
        chat = translation.body
        if request.stream and route.stream_usage:
            chat["stream_options"] = {"include_usage": True}
        echo = {name: request.data.get(name) for name in ECHOED}
        encoding = Encoding(
            "chat",
            partial(ChatToResponses, request.model, echo, tools=translation.tools),
            content_type=EVENT_STREAM_UTF8,
            whole=partial(
                as_response,
                model=request.model,
                request=echo,
                limit=WHOLE_BODY_LIMIT,
                tools=translation.tools,
            ),
        )
        body = jsoncodec.dumps(chat)
        return Outgoing(
            route, "/chat/completions", api_key, body, request.model, request.stream, encoding, most
        )

    def _limit_tokens(self, request: ResponsesRequest) -> list[str]:
        """MAX_TOKENS_LIMIT caps max_output_tokens, and sets it where the caller set none; the fields that
        pass are RESPONSES_FIELDS and the tools that cost tokens only. The types of tools left out."""
        settings = self.settings
        limit = settings.max_tokens_limit
        if limit is None:
            return []
        check_fields(request.data, RESPONSES_FIELDS, settings.allowed_fields)
        omitted = leave_out_billed_tools(request.data, settings.allowed_fields, settings.unsupported_tools)
        request.data["max_output_tokens"] = token_cap(
            limit, "max_output_tokens", request.asked_tokens(), None
        )
        return omitted


class ResponsesCompact(UpstreamEndpoint):
    """POST /v1/responses/compact: a conversation made short by the model, for a Responses API route.

    Its answer is the upstream's (a compaction item only that API can read back), passed on. It has
    no field to cap its length: under MAX_TOKENS_LIMIT its fields are held to RESPONSES_FIELDS,
    and the limits reserve an unstated reply's tokens for it, as for any request that states none.
    """

    def prepare(self, call: Call) -> Outgoing:
        settings = self.settings
        data = parse_json_object(call.body(), "model and input")
        model = model_name(data)
        check_depths(data)
        route, data["model"] = self.upstreams.route(call, model)
        if settings.max_tokens_limit is not None:
            check_fields(data, RESPONSES_FIELDS, settings.allowed_fields)
        if not route.responses_api:
            raise BadRequest(
                f"{COMPACT_PATH} needs an upstream that speaks the Responses API; the upstream of "
                f'"{model[:64]}" ({route.host}) speaks only chat completions. Compact the conversation '
                "yourself, with POST /v1/responses (Codex does, with a custom model provider)."
            )
        api_key = key_or_401(settings, bearer_key(settings, call.authorization), route)
        encoding = Encoding("responses")
        body = jsoncodec.dumps(data)
        return Outgoing(route, "/responses/compact", api_key, body, model, False, encoding)
