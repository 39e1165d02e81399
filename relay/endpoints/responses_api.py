"""POST /v1/responses: OpenAI's Responses API, on every route.

A route whose upstream speaks it (api.openai.com, or a route with "responses": true)
gets the body as it is and its events passed on as they arrive. A route whose upstream
speaks only chat completions (most OpenAI-compatible servers) gets the request
translated (relay/validation/responses_to_chat.py) and its stream or answer translated back
(relay/formats/responses.py), so the same clients work on any route. Access rules,
limits, timeouts, cancellation and logs are the chat endpoints'.
"""

from __future__ import annotations

import flask
import httpx

from relay.access.policy import bearer_key, token_cap
from relay.access.redaction import redactor_for
from relay.endpoints.answers import answer_response
from relay.endpoints.base import Call, Outgoing, UpstreamEndpoint, read_whole, safe_headers, stream_reply
from relay.endpoints.chat_completions import key_or_401, token_field
from relay.errors import UpstreamUnreachable
from relay.formats import jsoncodec
from relay.formats.chat_events import EventPassThrough
from relay.formats.responses import ChatToResponses, as_response, streamed_as_response
from relay.formats.responses_reply import ECHOED
from relay.serving.responses import EVENT_STREAM, fixed_response
from relay.upstream.bodies import JSON, body_kind
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
            return Outgoing(
                route, "/responses", api_key, jsoncodec.dumps(data), request.model, request.stream
            )
        chat = as_chat_completions(data, token_field(route))
        if request.stream and route.stream_usage:
            chat["stream_options"] = {"include_usage": True}
        echo = {name: request.data.get(name) for name in (*ECHOED, "parallel_tool_calls", "text")}
        body = jsoncodec.dumps(chat)
        return Outgoing(
            route, "/chat/completions", api_key, body, request.model, request.stream, translate=echo
        )

    def answer(self, call: Call, outgoing: Outgoing, response: httpx.Response) -> flask.Response:
        api_key = outgoing.api_key
        echo = outgoing.translate
        kind = body_kind(response)
        if echo is None:  # the upstream speaks the Responses API: its events and answers as they are
            if outgoing.stream and response.is_success and kind == "stream":
                passed = EventPassThrough(responses=True)
                return stream_reply(call, response, passed, api_key, EVENT_STREAM, pass_headers=True)
            return answer_response(read_whole(call, response), call.log, api_key, count_usage=True)
        if outgoing.stream and response.is_success and kind in ("stream", "json"):
            translated = ChatToResponses(outgoing.model, echo)
            return stream_reply(call, response, translated, api_key, EVENT_STREAM, pass_headers=True)
        answer = read_whole(call, response)
        streamed = answer.content_type.lower().startswith("text/event-stream")
        if answer.status >= 300 or not (streamed or answer.content_type.lower().startswith(JSON)):
            return answer_response(answer, call.log, api_key)
        return self._as_response(call, answer.body, streamed, outgoing, answer.headers)

    def _as_response(
        self,
        call: Call,
        body: bytes,
        streamed: bool,
        outgoing: Outgoing,
        headers: tuple[tuple[str, str], ...],
    ) -> flask.Response:
        echo = outgoing.translate or {}
        if streamed:  # an upstream that streamed what was asked whole: the reply is the same
            translated = streamed_as_response(body, outgoing.model, echo)
        else:
            try:
                translated = as_response(jsoncodec.loads(body), outgoing.model, echo)
            except jsoncodec.JSONDecodeError:
                translated = None
        if translated is None:
            raise UpstreamUnreachable(
                f"OpenAI API error: {outgoing.route.host} answered with JSON that holds no chat completion."
            )
        call.log.usage = translated.get("usage")
        call.log.finish(200, "ok")
        response = fixed_response(jsoncodec.dumps(translated), 200, JSON)
        response.headers.extend(safe_headers(headers, redactor_for((outgoing.api_key,))))
        return response

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
