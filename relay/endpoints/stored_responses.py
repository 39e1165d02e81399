"""A stored response, by its id: GET and DELETE /v1/responses/{id}, POST .../cancel, GET .../input_items.

Only an upstream that speaks the Responses API keeps responses, and the request names no model
to choose a route by. So an id goes to the default route (OPENAI_BASE_URL) where it speaks the
Responses API, else to the one route of UPSTREAMS that does; with none, or with several and the
default not one of them, the answer is a 404 that says why. The default route is where a
model no prefix claims goes (api.openai.com, as a rule), so it is where most stored responses
are; a deployment whose stored responses live elsewhere makes that route the default.

The id is checked before it becomes part of the upstream's path (letters, digits, `_` and `-`:
what OpenAI's ids are made of; nothing that could climb to another path), and so is the query
string passed with a GET (`stream`, `include`, `after`, ...). The rest is every endpoint's:
access tokens, the key of the route's upstream (a caller's own key only where its chat would
send it: the default route), redaction, bounds, the log line. Nothing here runs the model, so
the per-caller limits take nothing; a retrieved stream (`?stream=true`) is passed on as it comes.
"""

from __future__ import annotations

import re
from functools import partial
from urllib.parse import parse_qs

from relay.access.policy import bearer_key
from relay.config import Route
from relay.endpoints.base import Call, Encoding, Outgoing
from relay.endpoints.chat_completions import key_or_401
from relay.endpoints.course import UpstreamEndpoint
from relay.errors import BadRequest, MethodNotAllowed, NotFound
from relay.formats.responses_passthrough import ResponsesPassThrough
from relay.serving.writer import EVENT_STREAM_UTF8

STORED_PATH = "/v1/responses/"
# What OpenAI's response ids are made of ("resp_" and hex), with room for other upstreams' ids.
RESPONSE_ID = re.compile(r"[A-Za-z0-9_-]{1,256}")
# A GET's query, passed on as it came: what RFC 3986 allows in one (no "#", no space or control
# character: nothing that ends it or splits the request), at most this long.
QUERY = re.compile(rb"[A-Za-z0-9._~%!$&'()*+,;=:@/?\[\]-]{0,1024}")
# {id} and what may follow it: the methods each takes.
ACTIONS: dict[str, tuple[str, ...]] = {"": ("GET", "DELETE"), "cancel": ("POST",), "input_items": ("GET",)}


class StoredResponse(UpstreamEndpoint):
    methods: tuple[str, ...] = ("GET", "POST", "DELETE")

    def prepare(self, call: Call) -> Outgoing:
        request = call.request
        response_id, _, action = request.path.removeprefix(STORED_PATH).partition("/")
        if not RESPONSE_ID.fullmatch(response_id):
            raise BadRequest(
                "The response id in the path must be 1 to 256 letters, digits, '_' or '-' (such as "
                '"resp_67ccd2bed1ec8190"), as the Responses API gives them.'
            )
        if action not in ACTIONS:
            raise NotFound(
                f"Not found: {request.path[:256]}. A stored response's paths are /v1/responses/{{id}}, "
                "/v1/responses/{id}/cancel and /v1/responses/{id}/input_items."
            )
        if request.method not in ACTIONS[action]:
            raise MethodNotAllowed(request.method, request.path[:256], (*ACTIONS[action], "OPTIONS"))
        query = request.query_string if request.method == "GET" else b""
        if not QUERY.fullmatch(query):
            raise BadRequest(
                "The query string must be URL-encoded names and values (such as stream=true), at most "
                "1024 characters."
            )
        # Read (within MAX_BODY_BYTES and REQUEST_BODY_TIMEOUT, as every body is) and dropped: none of
        # these takes one, and a body left unread would be the framework's to read, unbounded.
        call.body()
        route = self._route()
        api_key = key_or_401(
            self.settings,
            bearer_key(self.settings, call.authorization) if route.prefix == "" else None,
            route,
        )
        path = f"/responses/{response_id}" + (f"/{action}" if action else "")
        if query:
            path += "?" + query.decode("ascii")
        stream = action == "" and "true" in parse_qs(query.decode("ascii")).get("stream", ())
        # Nothing is generated: no tokens to reserve or count (a stored reply's usage is not spent now),
        # and admit, below, counts no request either.
        encoding = Encoding(
            "responses", partial(ResponsesPassThrough, ""), content_type=EVENT_STREAM_UTF8, free=True
        )
        return Outgoing(route, path, api_key, b"", "", stream, encoding, 0, method=request.method)

    def admit(self, call: Call, outgoing: Outgoing) -> None:
        """Nothing to reserve: a stored response is read, listed, cancelled or deleted, not made."""

    def _route(self) -> Route:
        """The route that keeps responses: the default if it speaks the Responses API, else the one that
        does (see the module's docstring)."""
        router = self.upstreams.router
        default, *others = router.all
        if default.responses_api:
            return default
        speaking = [route for route in others if route.responses_api]
        if len(speaking) == 1:
            return speaking[0]
        why = (
            "none of this relay's upstreams speaks the Responses API"
            if not speaking
            else "several of this relay's upstreams speak the Responses API, and the default one does not"
        )
        raise NotFound(
            f"No upstream of this relay keeps stored responses for this path: {why}, so which one "
            "holds this id is not known. Chat-only upstreams keep no responses: send the whole "
            'conversation in "input" instead.'
        )
