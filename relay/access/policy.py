"""Who may spend the server's key, on what: access tokens, client keys, models, token limits."""

from __future__ import annotations

import base64
import hmac
from fnmatch import fnmatchcase

from relay.config import HEADER_TOKEN, Route, Settings
from relay.errors import BadRequest, Dialect, MissingApiKey, Unauthorized
from relay.formats import jsoncodec


def check_access_token(
    settings: Settings, authorization: str | None, api_key: str | None = None, dialect: Dialect = "openai"
) -> str | None:
    """With ACCESS_TOKENS set, require `Authorization: Bearer <one of them>`; return its name.

    On Anthropic's endpoints `api_key`, the x-api-key header, may carry it instead (Claude Code
    sends it there; the Anthropic SDKs since 2.0 send Bearer), and wins where both come.
    """
    if not settings.access_tokens:
        return None
    token = key_header_token(api_key) or bearer_token(authorization)
    if token is None:
        raise Unauthorized(token_sent=bool(authorization or api_key), dialect=dialect)
    sent = token.encode()
    # Compare with every token, in constant time, so timing tells nothing about any of them.
    matched: str | None = None
    for allowed, name in zip(settings.access_tokens, settings.token_names, strict=True):
        if hmac.compare_digest(sent, allowed.encode()) and matched is None:
            matched = name
    if matched is None:
        raise Unauthorized(token_sent=True, dialect=dialect)
    return matched


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if that is what it is."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def key_header_token(api_key: str | None) -> str | None:
    """The token or key of an `x-api-key` header, if it holds one."""
    token = (api_key or "").strip()
    return token or None


def model_allowed(settings: Settings, model: str) -> bool:
    return not settings.allowed_models or any(
        fnmatchcase(model, pattern) for pattern in settings.allowed_models
    )


def check_model(settings: Settings, model: str) -> None:
    if not model_allowed(settings, model):
        raise BadRequest(
            f'Model "{model}" is not allowed on this relay; allowed: '
            f"{', '.join(settings.allowed_models)} (ALLOWED_MODELS)."
        )


def token_cap(limit: int | None, name: str, asked: int | None, default: int | None) -> int | None:
    """The token count to send for `name`: the caller's, within MAX_TOKENS_LIMIT; else the default.

    The limit lowers a default above it, never raises one below it; where there is no
    default (the OpenAI endpoint), the limit itself is the cap.
    """
    if asked is not None:
        if limit is not None and asked > limit:
            raise BadRequest(f'"{name}" must be at most {limit} on this relay (MAX_TOKENS_LIMIT).')
        return asked
    if limit is None or (default is not None and default <= limit):
        return default
    return limit


def choose_key(settings: Settings, client_key: str | None, route: Route) -> str | None:
    """Who pays: the caller's own key when sent and allowed, else the route's; else the original 400.

    None for a route that takes no key (a local server).
    """
    if client_key:
        if not settings.allow_client_keys:
            raise BadRequest(
                'This relay does not accept your own API key: remove "apiKey" from the request '
                "(its owner set ALLOW_CLIENT_KEYS=false)."
            )
        return client_key
    if route.api_key:
        return route.api_key
    if not route.needs_key:
        return None
    raise MissingApiKey()


def bearer_key(settings: Settings, authorization: str | None) -> str | None:
    """On the OpenAI-compatible endpoints, the caller's own key, if any.

    With ACCESS_TOKENS the bearer is an access token, not a key; with ALLOW_CLIENT_KEYS=false
    it is ignored (the SDKs always send one), so the server's key is used.
    """
    if settings.access_tokens or not settings.allow_client_keys:
        return None
    token = bearer_token(authorization)
    if token is None or google_identity_token(token):
        # An IAM-private deployment's callers send their Google identity token here: it let
        # them through Cloud Run, and is a credential no upstream may see.
        return None
    if not HEADER_TOKEN.fullmatch(token):
        raise BadRequest("The API key in the Authorization header must be visible ASCII characters.")
    return token


def anthropic_key(settings: Settings, authorization: str | None, api_key: str | None) -> str | None:
    """On Anthropic's endpoints, the caller's own key, if any: x-api-key, else the bearer.

    The same rules as `bearer_key`: with ACCESS_TOKENS either header carries the access token,
    not a key; with ALLOW_CLIENT_KEYS=false it is ignored; a Google identity token is no key.
    """
    if settings.access_tokens or not settings.allow_client_keys:
        return None
    token = key_header_token(api_key)
    if token is None:
        return bearer_key(settings, authorization)
    if not HEADER_TOKEN.fullmatch(token):
        raise BadRequest("The API key in the x-api-key header must be visible ASCII characters.")
    return token


_GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")


def google_identity_token(token: str) -> bool:
    """Whether a bearer is an identity token Google issued (a JWT; Cloud Run may drop its signature)."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].startswith("eyJ"):  # '{"' in base64url
        return False
    try:
        claims = jsoncodec.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:  # not base64url, or not JSON
        return False
    return isinstance(claims, dict) and claims.get("iss") in _GOOGLE_ISSUERS
