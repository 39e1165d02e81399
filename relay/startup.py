"""Process start-up: read the settings, set up logging and the server, warn about risky settings."""

from __future__ import annotations

import logging
import resource
from collections.abc import Mapping

from relay.app import ChatRelay
from relay.config import ConfigError, Settings, load_settings
from relay.config.known_settings import foreign
from relay.config.review import notes, store_warning, warnings
from relay.serving.request_log import configure_logging, redact_from_logs
from relay.serving.server import configure_gunicorn

logger = logging.getLogger("relay")


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
    say_what_to_know(settings, environ)
    logger.info(
        "Relay ready: upstreams %s, %s worker, %s",
        ", ".join(route.host for route in settings.all_routes),
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


def say_what_to_know(settings: Settings, environ: Mapping[str, str]) -> None:
    """Log what a reviewer of these settings should know (relay/config/review.py), and check the store."""
    for warning in warnings(settings):
        logger.warning("%s", warning)
    for note in notes(settings):
        logger.info("%s", note)
    others = foreign(environ, also=settings.key_envs)
    if others:
        logger.info(
            "Not settings of this relay (other programs may read them): %s",
            ", ".join(f"{name} (did you mean {meant}?)" for name, meant in others),
        )
    problem = store_warning(settings.limits)
    if problem:
        logger.warning("%s", problem)
