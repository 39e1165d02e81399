"""The chat page the function serves at GET / (relay/static/), unless SERVE_PAGE=false."""

from __future__ import annotations

from pathlib import Path

from relay.config import Settings
from relay.serving.writer import Writer, Written

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
    """The page's files, read once at start-up (its settings: relay/endpoints/page_config.py)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._files = {
            path: ((STATIC / name).read_bytes(), content_type)
            for path, (name, content_type) in PAGE_FILES.items()
        }

    def serves(self, path: str) -> bool:
        return path in self._files

    def serve(self, path: str, writer: Writer) -> Written:
        body, content_type = self._files[path]
        return writer.fixed(200, body, content_type, PAGE_HEADERS.items(), outcome="ok")
