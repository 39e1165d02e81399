"""Settings, read once from the environment into a frozen dataclass.

A bad value fails at start-up with a message that names the variable, so a
misconfigured deployment never starts serving.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload
from urllib.parse import urlsplit

from relay.routes import Route

DEFAULT_BASE_URL = "https://api.openai.com/v1"

# Cloud Run and Cloud Functions (2nd gen) end any request at 60 minutes. The relay
# must end its longest reply itself, with a note, a minute before that.
PLATFORM_REQUEST_LIMIT = 3600
LONGEST_REQUEST_ALLOWED = PLATFORM_REQUEST_LIMIT - 60

# What may stand alone in an HTTP header value such as a key or a token: visible ASCII,
# no spaces (RFC 6750's b64token, widened so that any generated secret fits).
HEADER_TOKEN = re.compile(r"[\x21-\x7e]+")
HEADER_TEXT = re.compile(r"[\x20-\x7e]*")  # any other header value: visible ASCII and spaces
SERVER_WORKERS = ("gevent", "gthread")
_ORIGIN = re.compile(r"https?://[^/\s?#]+", re.IGNORECASE)


class ConfigError(ValueError):
    """An environment variable holds a value the relay cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything the relay reads from its environment."""

    # repr=False keeps secrets out of any log line or traceback that prints settings.
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str = DEFAULT_BASE_URL
    openai_org_id: str | None = None
    openai_project_id: str | None = None
    access_tokens: tuple[str, ...] = field(default=(), repr=False)
    allow_client_keys: bool = True
    allowed_origins: tuple[str, ...] = ("*",)
    allowed_models: tuple[str, ...] = ()  # empty: any model
    max_tokens_limit: int | None = None
    connect_timeout: float = 10.0
    first_byte_timeout: float = 120.0
    idle_timeout: float = 60.0
    stream_max_seconds: float = 900.0
    body_timeout: float = 30.0  # the longest silence while the request body arrives
    max_body_bytes: int = 1024 * 1024
    stream_usage: bool = False
    serve_page: bool = True
    max_connections: int = 1000
    google_cloud_project: str | None = None
    routes: tuple[Route, ...] = ()  # UPSTREAMS, beside the default route
    retries: int = 2
    retry_max_wait: float = 8.0
    # How functions-framework's gunicorn serves the function (relay/server.py).
    server_worker: str = "gevent"
    workers: int = 1
    threads: int = 1000  # concurrent requests per worker process

    @property
    def default_route(self) -> Route:
        """OPENAI_BASE_URL with OPENAI_API_KEY: where a model no UPSTREAMS prefix claims goes."""
        headers = []
        if self.openai_org_id:
            headers.append(("OpenAI-Organization", self.openai_org_id))
        if self.openai_project_id:
            headers.append(("OpenAI-Project", self.openai_project_id))
        return Route(
            prefix="", base_url=self.openai_base_url, api_key=self.openai_api_key, headers=tuple(headers)
        )

    @property
    def longest_request_seconds(self) -> float:
        """The longest a request usually lasts, and the bound the deploy timeout is built on.

        Until the upstream answers: connect plus first byte. After: the stream cap counted
        from the request's arrival, checked at each read. Either way, one more silent gap
        (a read or a write to the client) that the idle timeout ends.

        Not counted, so not a hard bound: an attempt started near the end of the
        first-byte budget may run up to one connect timeout past it (its connect and read
        timeouts are each cut to what is left), and once the cap has passed, the write of
        the text already read and then the closing note may each wait up to the idle
        timeout for a client that reads slowly.
        """
        waiting = self.connect_timeout + self.first_byte_timeout
        return max(waiting, self.stream_max_seconds) + self.idle_timeout


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read the relay's settings from `environ`; raise ConfigError naming a bad variable."""
    threads = _positive_int(environ, "THREADS", 1000)
    settings = Settings(
        openai_api_key=_header_value(environ, "OPENAI_API_KEY"),
        openai_base_url=_base_url(environ, "OPENAI_BASE_URL"),
        openai_org_id=_header_value(environ, "OPENAI_ORG_ID"),
        openai_project_id=_header_value(environ, "OPENAI_PROJECT_ID"),
        access_tokens=_tokens(environ, "ACCESS_TOKENS"),
        allow_client_keys=_boolean(environ, "ALLOW_CLIENT_KEYS", True),
        allowed_origins=_origins(environ, "ALLOWED_ORIGINS"),
        allowed_models=_list(environ, "ALLOWED_MODELS"),
        max_tokens_limit=_positive_int(environ, "MAX_TOKENS_LIMIT", None),
        connect_timeout=_seconds(environ, "UPSTREAM_CONNECT_TIMEOUT", 10.0),
        first_byte_timeout=_seconds(environ, "UPSTREAM_FIRST_BYTE_TIMEOUT", 120.0),
        idle_timeout=_seconds(environ, "UPSTREAM_IDLE_TIMEOUT", 60.0),
        stream_max_seconds=_seconds(environ, "STREAM_MAX_SECONDS", 900.0),
        body_timeout=_seconds(environ, "REQUEST_BODY_TIMEOUT", 30.0),
        max_body_bytes=_positive_int(environ, "MAX_BODY_BYTES", 1024 * 1024),
        stream_usage=_boolean(environ, "STREAM_USAGE", False),
        serve_page=_boolean(environ, "SERVE_PAGE", True),
        # As many upstream connections as the worker has requests in flight.
        max_connections=_positive_int(environ, "UPSTREAM_MAX_CONNECTIONS", threads),
        google_cloud_project=_text(environ, "GOOGLE_CLOUD_PROJECT"),
        routes=_upstreams(environ, "UPSTREAMS"),
        retries=_count(environ, "UPSTREAM_RETRIES", 2),
        retry_max_wait=_seconds(environ, "UPSTREAM_RETRY_MAX_WAIT", 8.0),
        server_worker=_choice(environ, "SERVER_WORKER", SERVER_WORKERS),
        workers=_positive_int(environ, "WORKERS", 1),
        threads=threads,
    )
    if settings.max_connections < settings.threads:
        raise ConfigError(
            f"UPSTREAM_MAX_CONNECTIONS ({settings.max_connections}) must be at least THREADS "
            f"({settings.threads}), or requests beyond it wait for a connection and time out."
        )
    longest = settings.longest_request_seconds
    if longest > LONGEST_REQUEST_ALLOWED:
        raise ConfigError(
            "the longest request, max(UPSTREAM_CONNECT_TIMEOUT + UPSTREAM_FIRST_BYTE_TIMEOUT, "
            f"STREAM_MAX_SECONDS) + UPSTREAM_IDLE_TIMEOUT, is {longest:g} s; it must be at most "
            f"{LONGEST_REQUEST_ALLOWED} s, so the relay ends its longest reply itself before the "
            f"platform's {PLATFORM_REQUEST_LIMIT} s request limit cuts it."
        )
    return settings


def _text(environ: Mapping[str, str], name: str) -> str | None:
    # An empty or blank variable means "not set": deploy tools often export NAME="".
    value = environ.get(name, "").strip()
    return value or None


def _list(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    value = _text(environ, name)
    if value is None:
        return ()
    items = tuple(item.strip() for item in value.split(","))
    if not all(items):
        raise ConfigError(f"{name} has an empty item; write a comma-separated list such as 'a,b'.")
    return items


def _header_value(environ: Mapping[str, str], name: str) -> str | None:
    value = _text(environ, name)
    if value is not None and not HEADER_TOKEN.fullmatch(value):
        # Never quote the value: it may be a secret.
        raise ConfigError(
            f"{name} has a character that cannot travel in an HTTP header (visible ASCII only)."
        )
    return value


def _count(environ: Mapping[str, str], name: str, default: int) -> int:
    """A whole number, 0 or more."""
    value = _text(environ, name)
    return default if value is None else _whole_number(value, name, zero_allowed=True)


def _upstreams(environ: Mapping[str, str], name: str) -> tuple[Route, ...]:
    """UPSTREAMS: see relay/routes.py for the format."""
    value = _text(environ, name)
    if value is None:
        return ()
    text = value
    if not value.startswith("["):
        path = Path(value)
        if not path.is_file():
            raise ConfigError(f"{name} is neither a JSON list nor the path of a file: {value!r}.")
        text = path.read_text()
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{name} is not valid JSON: {error}.") from None
    if not isinstance(entries, list):
        raise ConfigError(f"{name} must be a JSON list of routes.")
    routes: list[Route] = []
    for position, entry in enumerate(entries):
        routes.append(_route(environ, f"{name}[{position}]", entry, routes))
    return tuple(routes)


def _route(environ: Mapping[str, str], where: str, entry: object, earlier: list[Route]) -> Route:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an object with prefix, base_url and key_env.")
    unknown = set(entry) - {"prefix", "base_url", "key_env", "headers"}
    if unknown:
        raise ConfigError(f"{where} has unknown field(s): {', '.join(sorted(unknown))}.")
    prefix = entry.get("prefix")
    if not isinstance(prefix, str) or not prefix:
        raise ConfigError(f'{where}.prefix must be a non-empty string such as "openrouter/".')
    if any(route.prefix == prefix for route in earlier):
        raise ConfigError(f"{where}.prefix {prefix!r} is listed twice.")
    base_url = _checked_base_url(entry.get("base_url"), f"{where}.base_url")
    key_env = entry.get("key_env")
    api_key = None
    if key_env is not None:
        if not isinstance(key_env, str) or not key_env:
            raise ConfigError(f"{where}.key_env must be the name of an environment variable, or null.")
        api_key = _header_value(environ, key_env)
        if api_key is None:
            raise ConfigError(f"{where}.key_env names {key_env}, which is not set.")
    headers = entry.get("headers") or {}
    if not isinstance(headers, dict):
        raise ConfigError(f"{where}.headers must be an object of header names to strings.")
    for header, header_value in headers.items():
        if not isinstance(header_value, str) or not HEADER_TEXT.fullmatch(header_value):
            raise ConfigError(f"{where}.headers[{header!r}] must be a string of visible ASCII.")
        if not HEADER_TOKEN.fullmatch(header) or header.lower() in (
            "authorization",
            "host",
            "content-length",
        ):
            raise ConfigError(f"{where}.headers may not set {header!r} (the key goes in key_env).")
    return Route(
        prefix=prefix,
        base_url=base_url,
        api_key=api_key,
        needs_key=key_env is not None,
        headers=tuple(headers.items()),
    )


def _choice(environ: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = (_text(environ, name) or choices[0]).lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}.")
    return value


def _tokens(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    tokens = _list(environ, name)
    for position, token in enumerate(tokens, start=1):
        if not HEADER_TOKEN.fullmatch(token):
            # Never quote the token: it is a secret.
            raise ConfigError(
                f"{name}: token {position} has a character that cannot travel in an Authorization "
                "header; use letters, digits and punctuation only (no spaces)."
            )
    return tokens


def _origins(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    origins = _list(environ, name) or ("*",)
    if origins == ("*",):
        return origins
    for origin in origins:
        if origin == "*":
            raise ConfigError(f"{name}: '*' must stand alone, not in a list of origins.")
        if not _ORIGIN.fullmatch(origin):
            raise ConfigError(
                f"{name}: {origin!r} is not an origin; write scheme://host[:port] with no path or "
                "trailing slash, such as https://chat.example.com."
            )
    return tuple(_as_browsers_send(origin) for origin in origins)


def _as_browsers_send(origin: str) -> str:
    """An origin as a browser's Origin header has it: lower case, no default port."""
    origin = origin.lower()
    default_port = ":443" if origin.startswith("https://") else ":80"
    return origin.removesuffix(default_port)


def _boolean(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = _text(environ, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}.")


def _base_url(environ: Mapping[str, str], name: str) -> str:
    value = _text(environ, name)
    return DEFAULT_BASE_URL if value is None else _checked_base_url(value, name)


def _checked_base_url(value: object, what: str) -> str:
    """An API's base URL (OPENAI_BASE_URL, a route's base_url): http(s), a host, no query or fragment."""
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{what} must be an http:// or https:// URL such as {DEFAULT_BASE_URL}, got {value!r}."
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{what} must not carry a query string or fragment, got {value!r}.")
    return str(value)


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    value = _text(environ, name)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}.") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}.")
    return seconds


@overload
def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int: ...
@overload
def _positive_int(environ: Mapping[str, str], name: str, default: None) -> int | None: ...
def _positive_int(environ: Mapping[str, str], name: str, default: int | None) -> int | None:
    value = _text(environ, name)
    return default if value is None else _whole_number(value, name, zero_allowed=False)


def _whole_number(value: str, name: str, *, zero_allowed: bool) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}.") from None
    if number < 0 or (number == 0 and not zero_allowed):
        least = "0 or more" if zero_allowed else "greater than zero"
        raise ConfigError(f"{name} must be {least}, got {value!r}.")
    return number
