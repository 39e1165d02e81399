"""Every environment variable the relay reads, and a misspelt one found before it is silently ignored.

A setting that is misspelt (`MAX_TOKEN_LIMIT`, `ACESS_TOKENS`) would otherwise leave the relay
without the limit its owner meant, and nothing would say so. So a variable that looks like one of
the relay's (close to a setting's name, or with a prefix only the relay's settings use) but is not
one stops the relay at start-up, naming the nearest setting. Variables of other programs that
share the relay's environment (`OPENAI_LOG` for the OpenAI SDK) are only said in the report of
`python3 -m relay.config`, with the setting they may have been meant for. docs/configuration.md
describes each setting; tests/test_config.py keeps this list, the docs and `load_settings` equal.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

# name -> whether its value is a secret (never shown; masked in the report), in docs/configuration.md's order
SETTINGS: dict[str, bool] = {
    "OPENAI_API_KEY": True,
    "OPENAI_BASE_URL": False,  # may hold a password: shown masked (masked_url)
    "OPENAI_ORG_ID": False,
    "OPENAI_PROJECT_ID": False,
    "OPENAI_RESPONSES_API": False,
    "ANTHROPIC_API_KEY": True,
    "ANTHROPIC_BASE_URL": False,  # may hold a password: shown masked (masked_url)
    "UPSTREAMS": False,  # its routes' headers may be secrets: shown by route, headers masked
    "UPSTREAM_RETRIES": False,
    "UPSTREAM_RETRY_MAX_WAIT": False,
    "STREAM_USAGE": False,
    "ACCESS_TOKENS": True,
    "ALLOW_CLIENT_KEYS": False,
    "ALLOWED_ORIGINS": False,
    "PUBLIC_URL": False,
    "ALLOW_PRIVATE_NETWORK": False,
    "ALLOWED_MODELS": False,
    "MAX_TOKENS_LIMIT": False,
    "ALLOWED_FIELDS": False,
    "UNSUPPORTED_TOOLS": False,
    "MAX_BODY_BYTES": False,
    "MAX_REQUESTS_PER_CALLER": False,
    "CLIENT_IP_HOPS": False,
    "RATE_LIMIT_REQUESTS": False,
    "RATE_LIMIT_TOKENS": False,
    "CALLER_LIMITS": False,
    "BUDGET_TOKENS": False,
    "MODEL_BUDGETS": False,
    "REDIS_URL": True,  # may hold a password: shown masked
    "LIMITS_STORE_TIMEOUT": False,
    "LIMITS_ON_STORE_ERROR": False,
    "UPSTREAM_CONNECT_TIMEOUT": False,
    "UPSTREAM_FIRST_BYTE_TIMEOUT": False,
    "UPSTREAM_IDLE_TIMEOUT": False,
    "STREAM_MAX_SECONDS": False,
    "REQUEST_BODY_TIMEOUT": False,
    "STREAM_KEEPALIVE_SECONDS": False,
    "SERVER_WORKER": False,
    "WORKERS": False,
    "THREADS": False,
    "UPSTREAM_MAX_CONNECTIONS": False,
    "SHUTDOWN_GRACE_SECONDS": False,
    "SERVE_PAGE": False,
    "GOOGLE_CLOUD_PROJECT": False,
}
# Set by the platform, read by the relay too (K_SERVICE: it runs on Cloud Run).
PLATFORM = frozenset({"K_SERVICE"})

# Prefixes only the relay's settings use: a variable with one that is not a setting is a mistake.
_OURS = re.compile(
    r"(RATE_LIMIT|LIMITS|UPSTREAM|ALLOWED|ALLOW|STREAM|SHUTDOWN|ACCESS_TOKEN|BUDGET|MODEL_BUDGET|CALLER_LIMIT"
    r"|MAX_TOKEN|MAX_REQUEST|MAX_BODY|REQUEST_BODY|SERVE_PAGE|CLIENT_IP|SERVER_WORKER)"
)
# Prefixes the relay shares with other programs (the OpenAI SDK reads OPENAI_LOG, many a program
# REDIS_HOST): worth a word in the report, not a refusal.
_SHARED = re.compile(r"(OPENAI|ANTHROPIC|REDIS)_")
# The platform's own names (GOOGLE_CLOUD_REGION, K_REVISION, FUNCTION_TARGET): never a misspelling of ours.
_PLATFORMS = re.compile(r"(GOOGLE|K|CLOUDSDK|FUNCTION|X_GOOGLE)_")
CLOSE = 0.85  # difflib's ratio: MAX_TOKEN_LIMIT to MAX_TOKENS_LIMIT is 0.97, OPENAI_LOG to OPENAI_ORG_ID 0.78


def nearest(name: str) -> str:
    """The setting `name` is most likely meant for."""
    return max(SETTINGS, key=lambda setting: difflib.SequenceMatcher(None, name, setting).ratio())


def refusal(found: list[tuple[str, str]], where: str = "") -> str:
    """The start-up error for misspelt variables: each with the setting it is likely meant to be."""
    named = "; ".join(
        f"{name}{where} is not a setting of this relay: did you mean {meant}?" for name, meant in found
    )
    return (
        f"{named} (python3 -m relay.config --help lists every setting; docs/configuration.md describes each)"
    )


def misspelt(environ: Mapping[str, str], also: Iterable[str] = ()) -> list[tuple[str, str]]:
    """The variables that look like settings and are none, each with the nearest setting.

    `also`: variables the settings name (a route's `key_env`), which are the owner's to call.
    """
    allowed = {*SETTINGS, *PLATFORM, *also}
    found = []
    for name in sorted(environ):
        if name in allowed or _PLATFORMS.match(name):
            continue
        if _OURS.match(name) or difflib.get_close_matches(name, SETTINGS, n=1, cutoff=CLOSE):
            found.append((name, nearest(name)))
    return found


def foreign(environ: Mapping[str, str], also: Iterable[str] = ()) -> list[tuple[str, str]]:
    """Variables of a prefix the relay shares with other programs that are none of its settings."""
    allowed = {*SETTINGS, *also}
    return [(name, nearest(name)) for name in sorted(environ) if _SHARED.match(name) and name not in allowed]
