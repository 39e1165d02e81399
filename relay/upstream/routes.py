"""Several upstreams: which API serves a model, chosen by the model name's prefix.

UPSTREAMS (JSON, or the path of a JSON file; read by config.py) lists routes:

    [{"prefix": "openrouter/", "base_url": "https://openrouter.ai/api/v1",
      "key_env": "OPENROUTER_API_KEY", "headers": {"X-Title": "My chat"}},
     {"prefix": "local/", "base_url": "http://localhost:11434/v1", "key_env": null}]

`openrouter/meta-llama/llama-3.3-70b` goes to the first with the prefix stripped; a
model that no prefix claims goes to its API's default route: OPENAI_BASE_URL with
OPENAI_API_KEY, or on Anthropic's endpoints ANTHROPIC_BASE_URL with ANTHROPIC_API_KEY.
A route speaks one API: a model its route serves on the other API's endpoints is refused,
since the relay does not translate between them. A route's key is read once, from the
variable `key_env` names, and only ever sent to its own host. `key_env: null` is a server
that needs no key (a local one).
"""

from __future__ import annotations

from relay.config import Route
from relay.config.upstreams import Api
from relay.errors import BadRequest

# Where a model of each API is served, for the message that refuses it on the other's endpoints.
ENDPOINTS_OF: dict[Api, str] = {
    "openai": "POST /v1/chat/completions or /v1/responses",
    "anthropic": "POST /v1/messages",
}


class Router:
    """Chooses the route for a model: the longest prefix that matches, else its API's default."""

    def __init__(self, default: Route, routes: tuple[Route, ...], anthropic: Route | None = None) -> None:
        self.default = default
        self.defaults: dict[Api, Route] = {"openai": default}
        if anthropic is not None:
            self.defaults["anthropic"] = anthropic
        # Longest first, so "openrouter/anthropic/" wins over "openrouter/".
        self.routes = tuple(sorted(routes, key=lambda route: len(route.prefix), reverse=True))

    @property
    def all(self) -> tuple[Route, ...]:
        """The OpenAI API's routes, the default first: those /v1/models lists."""
        return (self.default, *(route for route in self.routes if route.api == "openai"))

    @property
    def every(self) -> tuple[Route, ...]:
        """Every route of every API."""
        return (*self.defaults.values(), *self.routes)

    def route(self, model: str, api: Api = "openai") -> tuple[Route, str]:
        """The route for `model` on an endpoint of `api`, and the model's name as that upstream knows it."""
        for route in self.routes:
            if model.startswith(route.prefix):
                if route.api != api:
                    raise BadRequest(
                        f'"model" {model[:128]!r} goes to the route "{route.prefix}", which speaks the '
                        f"{route.api_name}: send it to {ENDPOINTS_OF[route.api]}. This relay does not "
                        "translate between the two APIs."
                    )
                name = model[len(route.prefix) :]
                if not name:
                    raise BadRequest(f'"model" names no model after the prefix "{route.prefix}".')
                return route, name
        return self.defaults[api], model
