"""POST /v1/embeddings: passed through to the model's upstream, with every endpoint's access rules.

The answer, which can be tens of MiB of vectors, is passed on as it arrives
(relay/serving/passed_body.py), never held whole; an error answer as on every /v1/ endpoint.
"""

from __future__ import annotations

from relay.access.policy import bearer_key
from relay.endpoints.base import Call, Encoding, Outgoing
from relay.endpoints.chat_completions import key_or_401
from relay.endpoints.course import UpstreamEndpoint
from relay.errors import BadRequest
from relay.formats import jsoncodec
from relay.validation.json_values import check_depths, kind, model_name, parse_json_object

PASSED_AS_IT_ARRIVES = Encoding("embeddings", as_it_arrives=True)


class Embeddings(UpstreamEndpoint):
    def prepare(self, call: Call) -> Outgoing:
        data = parse_json_object(call.body(), "model and input")
        model = model_name(data)
        given = data.get("input")
        if not (isinstance(given, (str, list)) and given):
            raise BadRequest(f'"input" must be a non-empty string or list, got {kind(given)}.')
        check_depths(data)
        route, data["model"] = self.upstreams.route(call, model)
        api_key = key_or_401(self.settings, bearer_key(self.settings, call.authorization), route)
        body = jsoncodec.dumps(data)
        # An embedding is its input's tokens alone: nothing more to reserve than the prompt's.
        return Outgoing(
            route, "/embeddings", api_key, body, model, False, PASSED_AS_IT_ARRIVES, most_output=0
        )
