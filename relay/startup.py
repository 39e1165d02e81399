"""Process start-up: read the settings, set up logging, warn about risky settings."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from relay.config import ConfigError, load_settings
from relay.handler import ChatRelay
from relay.request_log import configure_logging

logger = logging.getLogger("relay")


def start(environ: Mapping[str, str]) -> ChatRelay:
    """Build the process's relay from the environment, or exit with a message naming the bad variable."""
    configure_logging()
    try:
        settings = load_settings(environ)
    except ConfigError as error:
        logger.critical("Configuration error: %s", error)
        raise SystemExit(f"Configuration error: {error}") from None
    if not settings.openai_api_key:
        logger.warning(
            "OPENAI_API_KEY has not been provided in this deployment environment. "
            "Will use the optional keys incoming from the client, which is not recommended."
        )
    return ChatRelay(settings)
