"""POST /v1/embeddings: passed through to the model's upstream, with the chat endpoints' access rules.

The answer, which can be tens of MiB of vectors, is passed on as it arrives
(relay/serving/passed_body.py), never held whole; an error answer as on the chat endpoints.
"""

from __future__ import annotations

import flask
import httpx

from relay.access.policy import bearer_key
from relay.access.redaction import redactor_for
from relay.endpoints.answers import answer_response
from relay.endpoints.base import Call, Outgoing, UpstreamEndpoint, read_whole, safe_headers
from relay.endpoints.chat_completions import key_or_401
from relay.errors import BadRequest
from relay.formats import jsoncodec
from relay.serving.passed_body import PassedBody
from relay.serving.responses import stream_response
from relay.upstream.bodies import JSON, body_kind, passed_headers
from relay.validation.json_values import check_depth, kind, model_name, parse_json_object


class Embeddings(UpstreamEndpoint):
    def prepare(self, call: Call) -> Outgoing:
        data = parse_json_object(call.body(), "model and input")
        model = model_name(data)
        given = data.get("input")
        if not (isinstance(given, (str, list)) and given):
            raise BadRequest(f'"input" must be a non-empty string or list, got {kind(given)}.')
        for name, value in data.items():
            check_depth(value, name)
        route, data["model"] = self.upstreams.route(call, model)
        api_key = key_or_401(self.settings, bearer_key(self.settings, call.authorization), route)
        return Outgoing(route, "/embeddings", api_key, jsoncodec.dumps(data), model, stream=False)

    def answer(self, call: Call, outgoing: Outgoing, response: httpx.Response) -> flask.Response:
        if not (response.is_success and body_kind(response) == "json"):
            return answer_response(read_whole(call, response), call.log, outgoing.api_key)
        redactor = redactor_for((outgoing.api_key,))
        deadline = call.log.started + call.settings.stream_max_seconds
        body = PassedBody(
            response, log=call.log, redactor=redactor, client=call.client, deadline=deadline, ended=call.end
        )
        call.streaming = True
        passed = stream_response(body, content_type=JSON)  # chunked: a redaction may change its length
        passed.headers.extend(safe_headers(passed_headers(response.headers), redactor))
        return passed
