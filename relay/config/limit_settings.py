"""Per-caller rate limits and spend caps, as settings: who may do how much, per which window.

A limit is written as `COUNT/WINDOW` (`60/minute`, `200000/day`, `5 per 10 seconds`), the notation
of the `limits` package that counts them (relay/access/limiter.py); this module only reads and
checks them, with the standard library, so that `python3 -m relay.config` needs nothing else.

    RATE_LIMIT_REQUESTS=60/minute          each caller's requests
    RATE_LIMIT_TOKENS=200000/day           each caller's tokens (prompt + completion)
    CALLER_LIMITS={"alice": {"requests": "600/minute", "tokens": "2000000/day"}}
    BUDGET_TOKENS=5000000/day              the whole deployment's tokens
    MODEL_BUDGETS={"gpt-4.1*": "1000000/day"}
    REDIS_URL=redis://10.0.0.3:6379        counters shared by every instance (else per process)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from relay.config.environment import ConfigError, choice, seconds, text

_LIMIT = re.compile(r"\s*(\d+)\s*(?:/|per)\s*(\d+)?\s*(second|minute|hour|day)s?\s*", re.IGNORECASE)
_WINDOW_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
ON_STORE_ERROR = ("allow", "deny")


@dataclass(frozen=True)
class Limit:
    """`count` per `window` seconds, as written (`text`, in messages and in the `limits` notation)."""

    count: int
    window: int
    text: str


Named = tuple[str, Limit]  # a limit, and the setting it comes from (for messages)


@dataclass(frozen=True)
class LimitSettings:
    requests: Limit | None = None  # per caller
    tokens: Limit | None = None  # per caller
    callers: tuple[tuple[str, Limit | None, Limit | None], ...] = ()  # name, requests, tokens
    budget: Limit | None = None  # the deployment's tokens
    models: tuple[tuple[str, Limit], ...] = ()  # model pattern, its tokens
    redis_url: str | None = field(default=None, repr=False)  # may hold a password
    store_timeout: float = 0.5
    on_store_error: str = ON_STORE_ERROR[0]

    @property
    def redis_password(self) -> str | None:
        return urlsplit(self.redis_url).password if self.redis_url else None

    @property
    def any(self) -> bool:
        return bool(self.requests or self.tokens or self.callers or self.budget or self.models)

    @property
    def store_name(self) -> str:
        """Where the counters are, for a message: REDIS_URL's host (never its password), or this process."""
        if not self.redis_url:
            return "in this process"
        return f"REDIS_URL at {store_place(self.redis_url)}"

    def for_caller(self, name: str) -> tuple[Named | None, Named | None]:
        """A caller's requests and tokens limits, each with its setting: the caller's own, else everyone's."""
        requests = ("RATE_LIMIT_REQUESTS", self.requests) if self.requests else None
        tokens = ("RATE_LIMIT_TOKENS", self.tokens) if self.tokens else None
        for caller, own_requests, own_tokens in self.callers:
            if caller == name:
                if own_requests is not None:
                    requests = (f'CALLER_LIMITS["{caller}"].requests', own_requests)
                if own_tokens is not None:
                    tokens = (f'CALLER_LIMITS["{caller}"].tokens', own_tokens)
        return requests, tokens


def parse_limit(value: str, where: str) -> Limit:
    match = _LIMIT.fullmatch(value)
    if match is None:
        raise ConfigError(f"{where} must be COUNT/WINDOW such as 60/minute or 200000/day, got {value!r}.")
    count, multiple, unit = int(match.group(1)), int(match.group(2) or 1), match.group(3).lower()
    if count < 1 or multiple < 1:
        raise ConfigError(f"{where} must count at least 1 in a window of at least 1 {unit}, got {value!r}.")
    window = f"{multiple} {unit}s" if multiple > 1 else unit
    return Limit(count, multiple * _WINDOW_SECONDS[unit], f"{count} per {window}")


def read_limits(environ: Mapping[str, str]) -> LimitSettings:
    defaults = LimitSettings()
    redis_url = text(environ, "REDIS_URL")
    if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "redis+unix://")):
        # Never quoted: it may hold a password.
        raise ConfigError("REDIS_URL must be a redis://, rediss:// or redis+unix:// URL.")
    return LimitSettings(
        requests=_optional(environ, "RATE_LIMIT_REQUESTS"),
        tokens=_optional(environ, "RATE_LIMIT_TOKENS"),
        callers=_callers(environ, "CALLER_LIMITS"),
        budget=_optional(environ, "BUDGET_TOKENS"),
        models=_models(environ, "MODEL_BUDGETS"),
        redis_url=redis_url,
        store_timeout=seconds(environ, "LIMITS_STORE_TIMEOUT", defaults.store_timeout),
        on_store_error=choice(environ, "LIMITS_ON_STORE_ERROR", ON_STORE_ERROR),
    )


def _optional(environ: Mapping[str, str], name: str) -> Limit | None:
    value = text(environ, name)
    return None if value is None else parse_limit(value, name)


def _json_object(environ: Mapping[str, str], name: str) -> dict[str, object]:
    value = text(environ, name)
    if value is None:
        return {}
    try:
        data = json.loads(value)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{name} is not valid JSON: {error}.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{name} must be a JSON object.")
    return data


def _callers(environ: Mapping[str, str], name: str) -> tuple[tuple[str, Limit | None, Limit | None], ...]:
    callers = []
    for caller, limits in _json_object(environ, name).items():
        if not isinstance(limits, dict) or not set(limits) <= {"requests", "tokens"}:
            raise ConfigError(f'{name}["{caller}"] must be an object with "requests" and/or "tokens".')
        found = []
        for kind in ("requests", "tokens"):
            given = limits.get(kind)
            if given is not None and not isinstance(given, str):
                raise ConfigError(f'{name}["{caller}"].{kind} must be a string such as "60/minute".')
            found.append(None if given is None else parse_limit(given, f'{name}["{caller}"].{kind}'))
        callers.append((caller, found[0], found[1]))
    return tuple(callers)


def _models(environ: Mapping[str, str], name: str) -> tuple[tuple[str, Limit], ...]:
    models = []
    for pattern, limit in _json_object(environ, name).items():
        if not isinstance(limit, str):
            raise ConfigError(f'{name}["{pattern}"] must be a string such as "1000000/day".')
        models.append((pattern, parse_limit(limit, f'{name}["{pattern}"]')))
    return tuple(models)


def store_place(url: str) -> str:
    """Where a REDIS_URL's store is, for a message: its socket's path or host and port, never a password."""
    parts = urlsplit(url)
    return parts.path if parts.scheme == "redis+unix" else f"{parts.hostname}:{parts.port or 6379}"
