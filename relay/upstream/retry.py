"""When to try the upstream again, and how long to wait first: pure policy, no I/O.

Only before any byte reached the caller (docs/openai-api.md, "Retries"): a connection failure or a
429/500/502/503/504, with exponential backoff and jitter, honouring the upstream's
Retry-After (or OpenAI's retry-after-ms) up to a cap. A first-byte timeout is not retried:
waiting again would only double the wait.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping

RETRY_BASE_SECONDS = 0.5
MIN_ATTEMPT_SECONDS = 0.5  # an attempt with less time than this left is not started


def retry_wait(
    attempt: int,
    retries: int,
    max_wait: float,
    headers: Mapping[str, str] | None,
    retryable_failure: bool = True,
) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None not to retry.

    `headers` are those of a retryable status (None after a connection failure);
    `retryable_failure` is False for a failure another attempt would only repeat.
    """
    if attempt >= retries or not retryable_failure:
        return None
    backoff = RETRY_BASE_SECONDS * 2.0**attempt * random.uniform(0.5, 1.0)  # noqa: S311 - jitter
    asked = retry_after_seconds(headers, time.time()) if headers is not None else None
    if asked is None:
        return backoff
    return asked if asked <= max_wait else None


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """How long the upstream asked to wait: retry-after-ms, or Retry-After in seconds or as a date."""
    if "retry-after-ms" in headers:
        try:
            return max(0.0, float(headers["retry-after-ms"]) / 1000.0)
        except ValueError:
            pass  # unreadable: Retry-After may still say
    try:
        value = headers.get("retry-after", "").strip()
        if not value:
            return None
        if value.replace(".", "", 1).isdigit():
            return float(value)
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
    except (ValueError, TypeError):
        return None
