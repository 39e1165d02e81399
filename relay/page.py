"""The chat page the function serves at GET / (relay/static/), unless SERVE_PAGE=false."""

from __future__ import annotations

from pathlib import Path

import flask

from relay.config import Settings
from relay.responses import fixed_response

STATIC = Path(__file__).parent / "static"

# path -> (file, content type)
PAGE_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/chat.js": ("chat.js", "text/javascript; charset=utf-8"),
    "/chat.css": ("chat.css", "text/css; charset=utf-8"),
}

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


class Page:
    """The page's files, read once at start-up."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._files = {
            path: ((STATIC / name).read_bytes(), content_type)
            for path, (name, content_type) in PAGE_FILES.items()
        }

    def serves(self, path: str) -> bool:
        return path in self._files

    def response(self, path: str) -> flask.Response:
        body, content_type = self._files[path]
        response = fixed_response(body, 200, content_type)
        response.headers.update(PAGE_HEADERS)
        return response
