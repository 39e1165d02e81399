"""Cross-origin access for web frontends: which origins, and the headers that let them read replies."""

from __future__ import annotations

import re

from relay.config import Settings

# What a page may call: the endpoints, /v1/models, and a stored response (DELETE /v1/responses/{id}).
ALLOWED_METHODS = ("GET", "POST", "DELETE", "OPTIONS")
ALWAYS_ALLOWED_HEADERS = ("Content-Type", "Authorization")
# Chromium caps a cached preflight at two hours; asking for more gains nothing.
MAX_AGE_SECONDS = "7200"
# What a page may read of an answer: when to retry, the rate-limit headers of /v1, the request's
# id (the upstream's: OpenAI's X-Request-Id, Anthropic's Request-Id; the relay's own).
EXPOSED_HEADERS = ", ".join(
    [
        "Retry-After",
        "Retry-After-Ms",
        "X-Request-Id",
        "Request-Id",
        "X-Relay-Request-Id",
        "X-Should-Retry",
        *(
            f"X-Ratelimit-{kind}-{unit}"
            for kind in ("Limit", "Remaining", "Reset")
            for unit in ("Requests", "Tokens")
        ),
    ]
)
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


# Host names a DNS-rebinding page cannot make a browser send for its own origin.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


def origin_allowed(settings: Settings, origin: str, own_origin: str | None) -> bool:
    """Listed in ALLOWED_ORIGINS, or the relay's own (the chat page it serves)."""
    return (
        settings.allowed_origins == ("*",)
        or origin == own_origin
        or origin in settings.allowed_origins
        or origin in settings.public_origins
    )


def own_origin(settings: Settings, scheme: str, host: str, forwarded_proto: str | None) -> str | None:
    """The relay's origin as a browser sees it, where the Host it was called by can be trusted.

    Anyone can send any Host, and a page that rebinds its own domain to the relay's address
    makes the browser send one equal to its Origin. So the Host counts only where the platform
    routes by it (Cloud Run: a request for another name never reaches the service) or where it
    names this machine's loopback; PUBLIC_URL names the relay's origin anywhere else. Behind
    Google's front end, X-Forwarded-Proto says https.
    """
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if not (settings.host_routed or hostname.lower() in LOOPBACK_HOSTS):
        return None
    proto = (forwarded_proto or "").split(",")[0].strip() or scheme
    return f"{proto}://{host}".lower()


def response_headers(origin: str) -> dict[str, str]:
    """The headers every response to an allowed origin carries, errors and streams included."""
    return {
        # The origin itself rather than "*": valid with and without credentials.
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": EXPOSED_HEADERS,
    }


def preflight_headers(
    settings: Settings, origin: str, requested_headers: str | None, private_network: bool
) -> dict[str, str]:
    """The answer to an allowed origin's OPTIONS preflight."""
    allowed = list(ALWAYS_ALLOWED_HEADERS)
    known = {name.lower() for name in allowed}
    for item in (requested_headers or "").split(","):
        name = item.strip()
        # Whatever the page asks for (the OpenAI JS SDK sends x-stainless-*), if it is a header name.
        if _HEADER_NAME.fullmatch(name) and name.lower() not in known:
            allowed.append(name)
            known.add(name.lower())
    headers = {
        **response_headers(origin),
        "Access-Control-Allow-Methods": ", ".join(ALLOWED_METHODS),
        "Access-Control-Allow-Headers": ", ".join(allowed),
        "Access-Control-Max-Age": MAX_AGE_SECONDS,
    }
    if private_network and settings.allow_private_network:
        # Chrome's Private Network Access: a public page calling a relay on localhost or a LAN,
        # only where the owner asked for it (else any site could drive a relay on a user's machine).
        headers["Access-Control-Allow-Private-Network"] = "true"
    return headers
