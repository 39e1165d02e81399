"""GET /page-config.json: what a chat page may offer, for any page that points at this relay.

Nothing secret: whether a caller's own key is accepted, and whether an access token is needed.
It answers like every endpoint (CORS headers, preflights, a refused origin's 403), and whether
or not this relay serves the page itself (SERVE_PAGE): a page elsewhere reads it too. It needs
no access token, since a page asks it to know whether to ask for one.
"""

from __future__ import annotations

from relay.config import Settings
from relay.endpoints.base import Call
from relay.formats import jsoncodec
from relay.serving.writer import Written
from relay.upstream.bodies import JSON

CONFIG_PATH = "/page-config.json"


def page_config(settings: Settings) -> dict[str, bool]:
    """The page's settings that depend on the relay's: the body of /page-config.json."""
    return {"clientKeys": settings.allow_client_keys, "accessTokens": bool(settings.access_tokens)}


class PageConfig:
    methods: tuple[str, ...] = ("GET", "HEAD")
    needs_token = False

    def __init__(self, settings: Settings) -> None:
        self._body = jsoncodec.dumps(page_config(settings))

    def serve(self, call: Call) -> Written:
        # A deploy may change it: revalidated each time, as the page's files are.
        return call.writer.fixed(200, self._body, JSON, (("Cache-Control", "no-cache"),), outcome="ok")
