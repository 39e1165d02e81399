"""Process start-up: read the settings, set up logging and the server, warn about risky settings."""

from __future__ import annotations

import logging
import resource
from collections.abc import Mapping

from relay.access.redaction import MIN_SECRET, is_secret
from relay.app import ChatRelay
from relay.config import ConfigError, Settings, load_settings
from relay.serving.request_log import configure_logging, redact_from_logs
from relay.serving.server import configure_gunicorn

logger = logging.getLogger("relay")

# Shorter tokens can be guessed; 16 random characters cannot.
SHORT_TOKEN = 16


def start(environ: Mapping[str, str]) -> ChatRelay:
    """Build the process's relay from the environment, or exit with a message naming the bad variable."""
    configure_logging()
    try:
        settings = load_settings(environ)
    except ConfigError as error:
        logger.critical("Configuration error: %s", error)
        raise SystemExit(f"Configuration error: {error}") from None
    redact_from_logs(settings.secrets)
    configure_gunicorn(settings)
    raise_open_file_limit(settings)
    warn_about_risks(settings)
    logger.info(
        "Relay ready: upstreams %s, %s worker, %s",
        ", ".join(route.host for route in (settings.default_route, *settings.routes)),
        settings.server_worker,
        f"{len(settings.access_tokens)} access token(s)" if settings.access_tokens else "no access tokens",
    )
    return ChatRelay(settings)


def raise_open_file_limit(settings: Settings) -> None:
    """Let each worker hold THREADS streams: two sockets each (client, upstream), and some spare.

    The usual soft limit is 1,024 open files, which 500 streams in one worker reach.
    Worker processes inherit the limit from this one, which forks them.
    """
    needed = 2 * settings.threads + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = raised
    if soft != resource.RLIM_INFINITY and soft < needed:
        logger.warning(
            "The open-file limit is %d, below the %d that THREADS=%d streams need; lower THREADS.",
            soft,
            needed,
            settings.threads,
        )


def warn_about_risks(settings: Settings) -> None:
    routes = (settings.default_route, *settings.routes)
    # A route the relay pays for: its own key, or a server that takes none (a local model).
    paid = [route for route in routes if route.api_key or not route.needs_key]
    if not settings.openai_api_key:
        logger.warning(
            "OPENAI_API_KEY has not been provided in this deployment environment. "
            "Will use the optional keys incoming from the client, which is not recommended."
        )
    if any(route.api_key for route in paid) and not settings.access_tokens:
        logger.warning(
            "!!! A server key is set (OPENAI_API_KEY or an UPSTREAMS route's) and ACCESS_TOKENS is not: "
            "ANYONE WHO FINDS THIS URL CAN SPEND THE KEY. Set ACCESS_TOKENS to one or more long random "
            "secrets and send one as 'Authorization: Bearer <token>' "
            "(docs/configuration.md, 'A private deployment')."
        )
    if any(len(token) < SHORT_TOKEN for token in settings.access_tokens):
        logger.warning(
            "ACCESS_TOKENS has a token shorter than %d characters; a short token can be guessed. "
            "Generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'",
            SHORT_TOKEN,
        )
    for route in routes:
        if route.api_key and not is_secret(route.api_key):
            logger.info(
                "The key of %s looks like a placeholder, not a secret (under %d characters, or a word "
                "such as 'ollama'): it is sent as it is, and replies that mention it are not redacted.",
                route.host,
                MIN_SECRET,
            )
    if not settings.allow_client_keys and not paid:
        logger.warning(
            "ALLOW_CLIENT_KEYS=false and no server key on any upstream: every chat request will be refused."
        )
