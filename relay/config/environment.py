"""Readers for environment variables: each returns a typed value or raises ConfigError naming the variable.

An empty or blank variable means "not set" (deploy tools often export NAME="").
A message never quotes a value that may be a secret.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Anthropic's, as its SDKs read ANTHROPIC_BASE_URL: they join /v1/messages onto it.
DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com"

# What may stand alone in an HTTP header value such as a key or a token: visible ASCII,
# no spaces (RFC 6750's b64token, widened so that any generated secret fits).
HEADER_TOKEN = re.compile(r"[\x21-\x7e]+")
HEADER_TEXT = re.compile(r"[\x20-\x7e]*")  # any other header value: visible ASCII and spaces
_ORIGIN = re.compile(r"https?://[^/\s?#]+", re.IGNORECASE)


class ConfigError(ValueError):
    """An environment variable holds a value the relay cannot use."""


def text(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def items(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list; an empty item is an error."""
    value = text(environ, name)
    if value is None:
        return ()
    listed = tuple(item.strip() for item in value.split(","))
    if not all(listed):
        raise ConfigError(f"{name} has an empty item; write a comma-separated list such as 'a,b'.")
    return listed


def header_value(environ: Mapping[str, str], name: str) -> str | None:
    """A secret or identifier that travels alone in an HTTP header."""
    value = text(environ, name)
    if value is not None and not HEADER_TOKEN.fullmatch(value):
        raise ConfigError(
            f"{name} has a character that cannot travel in an HTTP header (visible ASCII only)."
        )
    return value


def choice(environ: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices`, the first by default."""
    value = (text(environ, name) or choices[0]).lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}.")
    return value


def boolean(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = text(environ, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}.")


def optional_boolean(environ: Mapping[str, str], name: str) -> bool | None:
    """true, false, or None when unset (the relay then decides)."""
    return None if text(environ, name) is None else boolean(environ, name, False)


def seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    value = text(environ, name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}.") from None
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}.")
    return number


def seconds_or_off(environ: Mapping[str, str], name: str, default: float | None) -> float | None:
    """A positive number of seconds, or None for `0` or `off`."""
    value = text(environ, name)
    if value is None:
        return default
    return None if value.lower() in ("0", "off") else seconds(environ, name, 0.0)


def positive_int(environ: Mapping[str, str], name: str, default: int | None) -> int | None:
    """A whole number above zero, or `default` when unset."""
    value = text(environ, name)
    return default if value is None else whole_number(value, name, zero_allowed=False)


def count(environ: Mapping[str, str], name: str, default: int) -> int:
    """A whole number, 0 or more."""
    value = text(environ, name)
    return default if value is None else whole_number(value, name, zero_allowed=True)


def whole_number(value: str, name: str, *, zero_allowed: bool) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}.") from None
    if number < 0 or (number == 0 and not zero_allowed):
        least = "0 or more" if zero_allowed else "greater than zero"
        raise ConfigError(f"{name} must be {least}, got {value!r}.")
    return number


def base_url(environ: Mapping[str, str], name: str, default: str = DEFAULT_BASE_URL) -> str:
    value = text(environ, name)
    return default if value is None else checked_base_url(value, name)


def checked_base_url(value: object, what: str) -> str:
    """An API's base URL (OPENAI_BASE_URL, a route's base_url): http(s), a host, no query or fragment."""
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        shown = masked_url(value) if isinstance(value, str) else value
        raise ConfigError(
            f"{what} must be an http:// or https:// URL such as {DEFAULT_BASE_URL}, got {shown!r}."
        )
    if parts.query or parts.fragment:
        raise ConfigError(
            f"{what} must not carry a query string or fragment, got {masked_url(str(value))!r}."
        )
    return str(value)


def masked_url(url: str) -> str:
    """A URL as it may be shown: a password in it (https://user:password@host) masked, a query left out."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "(a value that is not a URL)"
    netloc = parts.netloc.replace(f":{password}@", ":***@") if password else parts.netloc
    query = "?..." if parts.query else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}" if parts.scheme else url.split("?", maxsplit=1)[0]


_TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


def named_tokens(environ: Mapping[str, str], name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Secrets for an Authorization header, each with the name logs and limits know it by.

    An item is `NAME:TOKEN`, or a plain token, named by its position ("token-2"). Never quoted.
    """
    tokens, names = [], []
    for position, item in enumerate(items(environ, name), start=1):
        label, colon, secret = item.partition(":")
        if not (colon and secret and _TOKEN_NAME.fullmatch(label)):
            label, secret = f"token-{position}", item
        if not HEADER_TOKEN.fullmatch(secret):
            raise ConfigError(
                f"{name}: token {position} has a character that cannot travel in an Authorization "
                "header; use letters, digits and punctuation only (no spaces)."
            )
        if label in names:
            raise ConfigError(f"{name}: the name {label!r} is given to two tokens.")
        tokens.append(secret)
        names.append(label)
    return tuple(tokens), tuple(names)


def origins(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    """`*`, or web origins as browsers send them."""
    listed = items(environ, name) or ("*",)
    if listed == ("*",):
        return listed
    for origin in listed:
        if origin == "*":
            raise ConfigError(f"{name}: '*' must stand alone, not in a list of origins.")
        if not _ORIGIN.fullmatch(origin):
            raise ConfigError(
                f"{name}: {origin!r} is not an origin; write scheme://host[:port] with no path or "
                "trailing slash, such as https://chat.example.com."
            )
    return tuple(as_browsers_send(origin) for origin in listed)


def as_browsers_send(origin: str) -> str:
    """An origin as a browser's Origin header has it: lower case, no default port."""
    origin = origin.lower()
    default_port = ":443" if origin.startswith("https://") else ":80"
    return origin.removesuffix(default_port)


def url_origins(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    """The origins of comma-separated URLs (https://relay.example.com/path gives https://relay.example.com)."""
    found = []
    for url in items(environ, name):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{name}: {url!r} is not an http:// or https:// URL.")
        found.append(as_browsers_send(f"{parts.scheme}://{parts.netloc}"))
    return tuple(found)
