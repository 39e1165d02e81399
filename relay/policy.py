"""Who may spend the server's key, on what: access tokens, client keys, models, token limits."""

from __future__ import annotations

import dataclasses
import hmac
from fnmatch import fnmatchcase

from relay.chat_request import DEFAULT_MAX_TOKENS, ChatRequest
from relay.config import Settings
from relay.errors import BadRequest, MissingApiKey, Unauthorized


def check_access_token(settings: Settings, authorization: str | None) -> None:
    """With ACCESS_TOKENS set, require `Authorization: Bearer <one of them>`."""
    if not settings.access_tokens:
        return
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(token_sent=bool(authorization))
    sent = token.encode()
    # Compare with every token, in constant time, so timing tells nothing about any of them.
    matched = False
    for allowed in settings.access_tokens:
        matched |= hmac.compare_digest(sent, allowed.encode())
    if not matched:
        raise Unauthorized(token_sent=True)


def apply_limits(settings: Settings, chat: ChatRequest) -> ChatRequest:
    """Refuse a model or a token count the owner does not allow; cap the default token count."""
    if settings.allowed_models and not any(
        fnmatchcase(chat.model, pattern) for pattern in settings.allowed_models
    ):
        raise BadRequest(
            f'Model "{chat.model}" is not allowed on this relay; allowed: '
            f"{', '.join(settings.allowed_models)} (ALLOWED_MODELS)."
        )
    limit = settings.max_tokens_limit
    if limit is None:
        return chat
    if chat.max_tokens_given:
        if chat.options["max_tokens"] > limit:
            raise BadRequest(f'"max_tokens" must be at most {limit} on this relay (MAX_TOKENS_LIMIT).')
        return chat
    # The original default (2048) may be above the owner's limit; the limit wins.
    return dataclasses.replace(chat, options={**chat.options, "max_tokens": min(DEFAULT_MAX_TOKENS, limit)})


def choose_key(settings: Settings, chat: ChatRequest) -> str:
    """The caller's own key when sent and allowed, else the server's; else the original 400."""
    if chat.api_key:
        if not settings.allow_client_keys:
            raise BadRequest(
                'This relay does not accept your own API key: remove "apiKey" from the request '
                "(its owner set ALLOW_CLIENT_KEYS=false)."
            )
        return chat.api_key
    if settings.openai_api_key:
        return settings.openai_api_key
    raise MissingApiKey()
