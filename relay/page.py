"""The chat page the function serves at GET / (relay/static/), unless SERVE_PAGE=false."""

from __future__ import annotations

import json
from pathlib import Path

import flask

from relay.config import Settings
from relay.serving.responses import fixed_response

STATIC = Path(__file__).parent / "static"

# path -> (file, content type)
PAGE_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/chat.js": ("chat.js", "text/javascript; charset=utf-8"),
    "/markdown.js": ("markdown.js", "text/javascript; charset=utf-8"),
    "/errors.js": ("errors.js", "text/javascript; charset=utf-8"),
    "/chat.css": ("chat.css", "text/css; charset=utf-8"),
    # The page's icon, named by <link rel="icon">: /favicon.ico never reaches the function
    # (functions-framework answers it with a 404 itself).
    "/icon.svg": ("icon.svg", "image/svg+xml"),
}

# What the page may offer, so that it shows only the settings this relay uses: no secret, only
# whether a caller's own key is accepted and whether an access token is needed.
CONFIG_PATH = "/page-config.json"

PAGE_HEADERS = {
    # Everything comes from this function; fetch may go to any relay URL the user sets.
    "Content-Security-Policy": (
        "default-src 'self'; connect-src *; img-src 'self' data:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Small files, changed by a deploy: revalidate each time rather than serve a stale page.
    "Cache-Control": "no-cache",
}


def page_config(settings: Settings) -> dict[str, bool]:
    """The page's settings that depend on the relay's: the body of /page-config.json."""
    return {"clientKeys": settings.allow_client_keys, "accessTokens": bool(settings.access_tokens)}


class Page:
    """The page's files, read once at start-up, and its config, computed once from the settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._files = {
            path: ((STATIC / name).read_bytes(), content_type)
            for path, (name, content_type) in PAGE_FILES.items()
        }
        self._files[CONFIG_PATH] = (json.dumps(page_config(settings)).encode(), "application/json")

    def serves(self, path: str) -> bool:
        return path in self._files

    def response(self, path: str) -> flask.Response:
        body, content_type = self._files[path]
        response = fixed_response(body, 200, content_type)
        response.headers.update(PAGE_HEADERS)
        return response
