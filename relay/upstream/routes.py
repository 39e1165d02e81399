"""Several upstreams: which OpenAI-compatible API serves a model, chosen by the model name's prefix.

UPSTREAMS (JSON, or the path of a JSON file; read by config.py) lists routes:

    [{"prefix": "openrouter/", "base_url": "https://openrouter.ai/api/v1",
      "key_env": "OPENROUTER_API_KEY", "headers": {"X-Title": "My chat"}},
     {"prefix": "local/", "base_url": "http://localhost:11434/v1", "key_env": null}]

`openrouter/meta-llama/llama-3.3-70b` goes to the first with the prefix stripped; a
model that no prefix claims goes to OPENAI_BASE_URL with OPENAI_API_KEY. A route's
key is read once, from the variable `key_env` names, and only ever sent to its own
host. `key_env: null` is a server that needs no key (a local one).
"""

from __future__ import annotations

from relay.config import Route
from relay.errors import BadRequest


class Router:
    """Chooses the route for a model: the longest prefix that matches, else the default."""

    def __init__(self, default: Route, routes: tuple[Route, ...]) -> None:
        self.default = default
        # Longest first, so "openrouter/anthropic/" wins over "openrouter/".
        self.routes = tuple(sorted(routes, key=lambda route: len(route.prefix), reverse=True))

    @property
    def all(self) -> tuple[Route, ...]:
        return (self.default, *self.routes)

    def route(self, model: str) -> tuple[Route, str]:
        """The route for `model`, and the model's name as that upstream knows it."""
        for route in self.routes:
            if model.startswith(route.prefix):
                name = model[len(route.prefix) :]
                if not name:
                    raise BadRequest(f'"model" names no model after the prefix "{route.prefix}".')
                return route, name
        return self.default, model
