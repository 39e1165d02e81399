"""What a reviewer of a deployment's settings wants to know: each setting, where it came from, the risks.

One place for both readers: the relay says the warnings at start-up (relay/startup.py), and
`python3 -m relay.config` prints them with every setting. Standard library only: the deploy runs
it on a machine without the relay's dependencies.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from relay.config.environment import masked_url
from relay.config.known_settings import SETTINGS
from relay.config.limit_settings import LimitSettings, store_place
from relay.config.placeholders import MIN_SECRET, is_secret
from relay.config.settings import PLATFORM_GRACE, Settings

# Shorter tokens can be guessed; 16 random characters cannot.
SHORT_TOKEN = 16
# The longest the start-up and the report wait for REDIS_URL to answer a PING.
STORE_CHECK_SECONDS = 2.0


def shown(name: str, value: str) -> str:
    """A setting's value as the report shows it: a secret by its length only, a URL without its password."""
    if name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "REDIS_URL", "PUBLIC_URL"):
        return masked_url(value)
    if SETTINGS.get(name):
        return f"(set, {len(value)} characters)"
    if name == "UPSTREAMS":
        return "(set: its routes are listed below)"
    return value


def listing(environ: Mapping[str, str], settings: Settings) -> list[tuple[str, str, str]]:
    """Every setting: its name, where it came from, and its value as shown (a default as it is in effect)."""
    effective = in_effect(settings)
    rows = []
    for name in SETTINGS:
        value = environ.get(name, "").strip()
        rows.append(
            (name, "environment", shown(name, value)) if value else (name, "default", effective[name])
        )
    return rows


def in_effect(settings: Settings) -> dict[str, str]:
    """Each setting's value in `settings`, in the words of docs/configuration.md's defaults."""
    s, limits, route = settings, settings.limits, settings.default_route
    values: dict[str, object] = {
        "OPENAI_API_KEY": None,
        "OPENAI_BASE_URL": masked_url(s.openai_base_url),
        "OPENAI_ORG_ID": s.openai_org_id,
        "OPENAI_PROJECT_ID": s.openai_project_id,
        "OPENAI_RESPONSES_API": f"{_text(route.responses_api)} (by host)",
        "ANTHROPIC_API_KEY": None,
        "ANTHROPIC_BASE_URL": masked_url(s.anthropic_base_url),
        "UPSTREAMS": None,
        "UPSTREAM_RETRIES": s.retries,
        "UPSTREAM_RETRY_MAX_WAIT": s.retry_max_wait,
        "STREAM_USAGE": f"{_text(route.stream_usage)} (by host)",
        "ACCESS_TOKENS": "unset: no token asked",
        "ALLOW_CLIENT_KEYS": s.allow_client_keys,
        "ALLOWED_ORIGINS": s.allowed_origins,
        "PUBLIC_URL": None,
        "ALLOW_PRIVATE_NETWORK": s.allow_private_network,
        "ALLOWED_MODELS": "unset: any model",
        "MAX_TOKENS_LIMIT": s.max_tokens_limit,
        "ALLOWED_FIELDS": s.allowed_fields,
        "UNSUPPORTED_TOOLS": s.unsupported_tools,
        "MAX_BODY_BYTES": s.max_body_bytes,
        "MAX_REQUESTS_PER_CALLER": "unset: no share",
        "CLIENT_IP_HOPS": s.client_ip_hops,
        "RATE_LIMIT_REQUESTS": None,
        "RATE_LIMIT_TOKENS": None,
        "CALLER_LIMITS": None,
        "BUDGET_TOKENS": None,
        "MODEL_BUDGETS": None,
        "REDIS_URL": "unset: counted in each process",
        "LIMITS_STORE_TIMEOUT": limits.store_timeout,
        "LIMITS_ON_STORE_ERROR": limits.on_store_error,
        "UPSTREAM_CONNECT_TIMEOUT": s.connect_timeout,
        "UPSTREAM_FIRST_BYTE_TIMEOUT": s.first_byte_timeout,
        "UPSTREAM_IDLE_TIMEOUT": s.idle_timeout,
        "STREAM_MAX_SECONDS": s.stream_max_seconds,
        "REQUEST_BODY_TIMEOUT": s.body_timeout,
        "STREAM_KEEPALIVE_SECONDS": "off" if s.keepalive is None else s.keepalive,
        "SHUTDOWN_GRACE_SECONDS": s.shutdown_grace,
        "SERVER_WORKER": s.server_worker,
        "WORKERS": s.workers,
        "THREADS": s.threads,
        "UPSTREAM_MAX_CONNECTIONS": s.max_connections,
        "SERVE_PAGE": s.serve_page,
        "GOOGLE_CLOUD_PROJECT": s.google_cloud_project,
    }
    return {name: _text(value) for name, value in values.items()}


def _text(value: object) -> str:
    if value is None or value == ():
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def warnings(settings: Settings) -> list[str]:
    """The risks in these settings, in words an owner can act on; empty when there is none."""
    said = []
    paid = [route for route in settings.all_routes if route.api_key or not route.needs_key]  # the relay pays
    if not settings.openai_api_key:
        said.append(
            "OPENAI_API_KEY has not been provided in this deployment environment. "
            "Will use the optional keys incoming from the client, which is not recommended."
        )
    if any(route.api_key for route in paid) and not settings.access_tokens:
        public = (
            " (the URL is public: K_SERVICE or PUBLIC_URL is set)"
            if settings.host_routed or settings.public_origins
            else ""
        )
        said.append(
            "!!! A server key is set (OPENAI_API_KEY, ANTHROPIC_API_KEY or an UPSTREAMS route's) and "
            "ACCESS_TOKENS is not"
            f"{public}: ANYONE WHO FINDS THIS URL CAN SPEND THE KEY. Set ACCESS_TOKENS to one or more long "
            "random secrets and send one as 'Authorization: Bearer <token>' "
            "(docs/configuration.md, 'A private deployment')."
        )
    if any(len(token) < SHORT_TOKEN for token in settings.access_tokens):
        said.append(
            f"ACCESS_TOKENS has a token shorter than {SHORT_TOKEN} characters; a short token can be guessed. "
            "Generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if not settings.allow_client_keys and not paid:
        said.append(
            "ALLOW_CLIENT_KEYS=false and no server key on any upstream: every chat request will be refused."
        )
    limits = settings.limits
    if limits.any and not limits.redis_url:
        said.append(
            "Rate limits or budgets are set and REDIS_URL is not: each worker process of each instance "
            f"counts on its own (WORKERS={settings.workers}), so a limit holds per process, not per "
            "deployment (docs/limits.md, 'Where the counters live')."
        )
    if settings.shutdown_grace + 1 >= PLATFORM_GRACE:
        said.append(
            f"SHUTDOWN_GRACE_SECONDS is {settings.shutdown_grace:g}: with the second gunicorn adds, longer "
            f"than the {PLATFORM_GRACE} s Cloud Run waits between SIGTERM and SIGKILL; streams are then cut "
            "without a word at a rollout."
        )
    return said


def notes(settings: Settings) -> list[str]:
    """What the relay made of these settings that is no risk but worth knowing."""
    return [
        f"The key of {route.host} looks like a placeholder, not a secret (under {MIN_SECRET} characters, or "
        "a word such as 'ollama'): it is sent as it is, and replies that mention it are not redacted."
        for route in settings.all_routes
        if route.api_key and not is_secret(route.api_key)
    ]


def store_warning(limits: LimitSettings) -> str | None:
    """When a limit is set and REDIS_URL does not answer now: what that means for requests. Else None.

    Found at start-up rather than request by request, where each failure is logged too.
    """
    if not (limits.any and limits.redis_url):
        return None
    problem = store_problem(limits.redis_url, STORE_CHECK_SECONDS)
    if problem is None:
        return None
    meanwhile = "served uncounted" if limits.on_store_error == "allow" else "refused with a 503"
    setting = f"LIMITS_ON_STORE_ERROR={limits.on_store_error}"
    return f"{problem}: until it does, each request is {meanwhile} ({setting})."


def store_problem(url: str, timeout: float) -> str | None:
    """Whether the limits store answers a PING within `timeout`: None if it does, else what went wrong.

    Said by REDIS_URL's host, never its password. A Unix socket, TLS and a password are tried as
    the relay's store client would.
    """
    parts = urlsplit(url)
    where = store_place(url)
    try:
        if parts.scheme == "redis+unix":
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.settimeout(timeout)
            connection.connect(parts.path)
        else:
            connection = socket.create_connection((parts.hostname or "", parts.port or 6379), timeout=timeout)
            if parts.scheme == "rediss":
                connection = ssl.create_default_context().wrap_socket(
                    connection, server_hostname=parts.hostname
                )
        with connection:
            connection.settimeout(timeout)
            if parts.password:
                words = [b"AUTH", *([unquote(parts.username).encode()] if parts.username else []),
                         unquote(parts.password).encode()]  # fmt: skip
                connection.sendall(_command(words))
                if not connection.recv(256).startswith(b"+OK"):
                    return f"REDIS_URL at {where} refused its password"
            connection.sendall(_command([b"PING"]))
            answer = connection.recv(256)
    except OSError as error:
        return f"REDIS_URL at {where} did not answer within {timeout:g} s: {type(error).__name__}"
    if not answer.startswith(b"+PONG"):
        return f"REDIS_URL at {where} answered a PING with {answer[:40]!r}"
    return None


def _command(words: list[bytes]) -> bytes:
    """A Redis command in its wire form (RESP): an array of bulk strings."""
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(word), word) for word in words)
