"""UPSTREAMS: the APIs beside the default ones, each chosen by a model-name prefix.

UPSTREAMS is JSON, or the path of a JSON file, listing routes:

    [{"prefix": "openrouter/", "base_url": "https://openrouter.ai/api/v1",
      "key_env": "OPENROUTER_API_KEY", "headers": {"X-Title": "My chat"}},
     {"prefix": "local/", "base_url": "http://localhost:11434/v1", "key_env": null},
     {"prefix": "work/", "base_url": "https://api.anthropic.com", "key_env": "WORK_ANTHROPIC_KEY",
      "api": "anthropic"}]

A route speaks the OpenAI API (the default) or, with "api": "anthropic", Anthropic's Messages
API. A route's key is read once, from the variable `key_env` names, and only ever sent
to its own host; `key_env: null` is a server that needs no key (a local one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from relay.config.environment import (
    HEADER_TEXT,
    HEADER_TOKEN,
    ConfigError,
    checked_base_url,
    header_value,
    text,
)

ROUTE_FIELDS = frozenset({"prefix", "base_url", "key_env", "headers", "responses", "stream_usage", "api"})
# The APIs a route may speak: what its upstream is sent, and which endpoints may use it.
Api = Literal["openai", "anthropic"]
APIS: tuple[Api, ...] = ("openai", "anthropic")
# How each is named in messages, and the setting that holds its default route's base URL.
API_NAMES: dict[Api, str] = {"openai": "OpenAI API", "anthropic": "Anthropic API"}
BASE_URL_SETTINGS: dict[Api, str] = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}
KEY_SETTINGS: dict[Api, str] = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
# Upstreams known to speak the Responses API (POST /responses); any other speaks chat completions
# only, unless its route says "responses": true.
RESPONSES_HOSTS = frozenset({"api.openai.com"})
# Headers a route may not set: the key travels only through key_env (Anthropic's in x-api-key).
RESERVED_HEADERS = frozenset({"authorization", "host", "content-length"})
RESERVED_ANTHROPIC_HEADERS = RESERVED_HEADERS | {"x-api-key"}


@dataclass(frozen=True)
class Route:
    """One upstream: where models with this prefix go, with which key and headers."""

    prefix: str  # "" for a default route (OPENAI_BASE_URL, ANTHROPIC_BASE_URL)
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    needs_key: bool = True  # False: a server that takes no key
    key_env: str | None = None  # the variable its key was read from (not a setting, the owner's name)
    headers: tuple[tuple[str, str], ...] = ()
    responses_api: bool = False  # it speaks the Responses API; else /v1/responses is translated
    stream_usage: bool = False  # it takes stream_options.include_usage (token counts at a stream's end)
    api: Api = "openai"  # the API it speaks: OpenAI's, or Anthropic's Messages API

    @property
    def secrets(self) -> tuple[str, ...]:
        """What this route sends that its upstream could echo and no caller may see: key, secret headers."""
        return tuple(
            filter(
                None, (self.api_key, *(value for name, value in self.headers if secret_header(name, value)))
            )
        )

    @property
    def host(self) -> str:
        """The upstream's host and port, safe to show in a message."""
        return urlsplit(self.base_url).netloc.rpartition("@")[2]

    @property
    def api_name(self) -> str:
        """The API, as messages name it: "OpenAI API error: ..." """
        return API_NAMES[self.api]

    @property
    def base_url_setting(self) -> str:
        """Where its base URL is set, for messages that say to check it."""
        return f"{BASE_URL_SETTINGS[self.api]} (or the route's base_url)"

    def url(self, path: str) -> str:
        """`path` (such as "/chat/completions") under the base URL, as the API's SDKs join it."""
        return self.base_url.rstrip("/") + path


def read_upstreams(environ: Mapping[str, str], name: str, stream_usage: bool | None) -> tuple[Route, ...]:
    value = text(environ, name)
    if value is None:
        return ()
    source = value
    if not value.startswith("["):
        path = Path(value)
        if not path.is_file():
            # Not quoted: it may hold a route's secret header.
            raise ConfigError(
                f"{name} is neither a JSON list nor the path of a file (a list starts with '[')."
            )
        source = path.read_text()
    try:
        entries = json.loads(source)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{name} is not valid JSON: {error}.") from None
    if not isinstance(entries, list):
        raise ConfigError(f"{name} must be a JSON list of routes.")
    routes: list[Route] = []
    for position, entry in enumerate(entries):
        routes.append(_route(environ, f"{name}[{position}]", entry, routes, stream_usage))
    return tuple(routes)


def _route(
    environ: Mapping[str, str], where: str, entry: object, earlier: list[Route], stream_usage: bool | None
) -> Route:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an object with prefix, base_url and key_env.")
    unknown = set(entry) - ROUTE_FIELDS
    if unknown:
        raise ConfigError(f"{where} has unknown field(s): {', '.join(sorted(unknown))}.")
    prefix = entry.get("prefix")
    if not isinstance(prefix, str) or not prefix:
        raise ConfigError(f'{where}.prefix must be a non-empty string such as "openrouter/".')
    if any(route.prefix == prefix for route in earlier):
        raise ConfigError(f"{where}.prefix {prefix!r} is listed twice.")
    base_url = checked_base_url(entry.get("base_url"), f"{where}.base_url")
    key_env = entry.get("key_env")
    api_key = None
    if key_env is not None:
        if not isinstance(key_env, str) or not key_env:
            raise ConfigError(f"{where}.key_env must be the name of an environment variable, or null.")
        api_key = header_value(environ, key_env)
        if api_key is None:
            raise ConfigError(f"{where}.key_env names {key_env}, which is not set.")
    api = entry.get("api", "openai")
    if api not in APIS:
        raise ConfigError(f'{where}.api must be "openai" (the default) or "anthropic" (the Messages API).')
    headers = entry.get("headers") or {}
    if not isinstance(headers, dict):
        raise ConfigError(f"{where}.headers must be an object of header names to strings.")
    reserved = RESERVED_ANTHROPIC_HEADERS if api == "anthropic" else RESERVED_HEADERS
    for header, value in headers.items():
        if not isinstance(value, str) or not HEADER_TEXT.fullmatch(value):
            raise ConfigError(f"{where}.headers[{header!r}] must be a string of visible ASCII.")
        if not HEADER_TOKEN.fullmatch(header) or header.lower() in reserved:
            raise ConfigError(f"{where}.headers may not set {header!r} (the key goes in key_env).")
    responses = entry.get("responses")
    if responses is not None and not isinstance(responses, bool):
        raise ConfigError(f"{where}.responses must be true or false (whether it speaks the Responses API).")
    usage = entry.get("stream_usage")
    if usage is not None and not isinstance(usage, bool):
        raise ConfigError(f"{where}.stream_usage must be true or false (whether it takes include_usage).")
    anthropic = api == "anthropic"
    if anthropic and (responses is not None or usage is not None):
        raise ConfigError(
            f'{where} speaks the Anthropic API: "responses" and "stream_usage" are for OpenAI routes.'
        )
    return Route(
        prefix=prefix,
        base_url=base_url,
        api_key=api_key,
        needs_key=key_env is not None,
        key_env=key_env,
        headers=tuple(headers.items()),
        responses_api=not anthropic and (speaks_responses(base_url) if responses is None else responses),
        stream_usage=not anthropic
        and (takes_stream_usage(base_url, stream_usage) if usage is None else usage),
        api="anthropic" if anthropic else "openai",
    )


# A header whose name says it carries a credential (X-Api-Key, X-Auth-Token, Cookie, ...).
_SECRET_NAME = re.compile(r"key|token|secret|auth|passw|signature|cookie|session|credential", re.IGNORECASE)


def secret_header(name: str, value: str) -> bool:
    """Whether a route's header carries a secret: by its name, or by a value that looks like a credential.

    Not a title or a URL (X-Title: My chat, HTTP-Referer: https://...): redacting those would
    change replies that mention them.
    """
    return bool(_SECRET_NAME.search(name)) or (" " not in value and "://" not in value and len(value) >= 20)


def takes_stream_usage(base_url: str, setting: bool | None) -> bool:
    """STREAM_USAGE where it is set; else known by the host (OpenAI's API takes it)."""
    return speaks_responses(base_url) if setting is None else setting


def speaks_responses(base_url: str) -> bool:
    """Whether an upstream is known to speak the Responses API, by its host."""
    return (urlsplit(base_url).hostname or "") in RESPONSES_HOSTS
