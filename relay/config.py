"""Settings, read once from the environment into a frozen dataclass.

A bad value fails at start-up with a message that names the variable, so a
misconfigured deployment never starts serving.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class ConfigError(ValueError):
    """An environment variable holds a value the relay cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything the relay reads from its environment."""

    # repr=False keeps the key out of any log line or traceback that prints settings.
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str = DEFAULT_BASE_URL
    openai_org_id: str | None = None
    openai_project_id: str | None = None
    connect_timeout: float = 10.0
    idle_timeout: float = 60.0
    max_body_bytes: int = 1024 * 1024
    max_connections: int = 1000

    @property
    def completions_url(self) -> str:
        """The chat completions URL, joined the way the OpenAI SDKs join it."""
        return self.openai_base_url.rstrip("/") + "/chat/completions"

    @property
    def upstream_host(self) -> str:
        """The upstream's host and port, safe to show in a message."""
        return urlsplit(self.openai_base_url).netloc.rpartition("@")[2]


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read the relay's settings from `environ`; raise ConfigError naming a bad variable."""
    return Settings(
        openai_api_key=_text(environ, "OPENAI_API_KEY"),
        openai_base_url=_base_url(environ, "OPENAI_BASE_URL"),
        openai_org_id=_text(environ, "OPENAI_ORG_ID"),
        openai_project_id=_text(environ, "OPENAI_PROJECT_ID"),
        connect_timeout=_seconds(environ, "UPSTREAM_CONNECT_TIMEOUT", 10.0),
        idle_timeout=_seconds(environ, "UPSTREAM_IDLE_TIMEOUT", 60.0),
        max_body_bytes=_positive_int(environ, "MAX_BODY_BYTES", 1024 * 1024),
        max_connections=_positive_int(environ, "UPSTREAM_MAX_CONNECTIONS", 1000),
    )


def _text(environ: Mapping[str, str], name: str) -> str | None:
    # An empty or blank variable means "not set": deploy tools often export NAME="".
    value = environ.get(name, "").strip()
    return value or None


def _base_url(environ: Mapping[str, str], name: str) -> str:
    value = _text(environ, name)
    if value is None:
        return DEFAULT_BASE_URL
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{name} must be an http:// or https:// URL such as {DEFAULT_BASE_URL}, got {value!r}."
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{name} must not carry a query string or fragment, got {value!r}.")
    return value


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


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = _text(environ, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}.") from None
    if number <= 0:
        raise ConfigError(f"{name} must be greater than zero, got {value!r}.")
    return number
