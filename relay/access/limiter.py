"""Per-caller rate limits and spend caps, counted by the `limits` package in Redis (shared) or in memory.

Before the upstream is asked (`admit`): the caller's requests in the window are counted,
and its tokens, the deployment's and the model's, are checked against what is left. The
store is asked once per limit that applies, all at once, so the wait is one round trip.
After the reply (`settle`): the tokens it cost are counted, the same way: a stream's when it
closes (the caller has its last byte); a whole answer's just before it is sent, so that the
caller's next request finds them counted (one round trip). Nothing is counted per token.

Where REDIS_URL is unset the counters live in this worker process: each process of each
instance counts on its own, so a limit holds per process (docs/configuration.md says so).
A store that is slow or unreachable (LIMITS_STORE_TIMEOUT) lets the request go on, or
refuses it with LIMITS_ON_STORE_ERROR=deny; either way it is logged, never a 500.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import partial
from typing import Any

import gevent  # type: ignore[import-untyped]
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from relay.access.callers import Caller
from relay.config.limit_settings import Limit, LimitSettings
from relay.errors import RateLimited, RelayError
from relay.waits import under_gevent

logger = logging.getLogger(__name__)

DEPLOYMENT = "deployment"  # the identifier of the deployment's own budget


@dataclass(frozen=True)
class Check:
    """One limit as it applies to a request: what it is called, its window, under which key."""

    name: str  # the setting, for messages: RATE_LIMIT_REQUESTS, BUDGET_TOKENS, ...
    limit: Limit
    identifiers: tuple[str, ...]
    who: str  # in messages: a caller's name, "this relay", a model pattern

    @property
    def item(self) -> RateLimitItemPerSecond:
        return RateLimitItemPerSecond(self.limit.count, self.limit.window)


@dataclass
class Spend:
    """What a request counts against, to settle once its tokens are known."""

    tokens: tuple[Check, ...]
    store_error: bool = False  # the store failed at admission: settling would likely fail too


class Limiter:
    def __init__(self, settings: LimitSettings) -> None:
        self.settings = settings
        self._windows: FixedWindowRateLimiter | None = None

    def _limiter(self) -> FixedWindowRateLimiter:
        # Made on first use in each worker process: after the fork, with gevent's sockets.
        if self._windows is None:
            settings = self.settings
            storage: Any = MemoryStorage()
            if settings.redis_url:
                timeout = settings.store_timeout
                storage = storage_from_string(
                    settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
                )
            self._windows = FixedWindowRateLimiter(storage)
        return self._windows

    def admit(self, caller: Caller, model: str) -> Spend:
        """Count this request; raise RateLimited if the caller or the deployment is over a limit."""
        requests, tokens = self.settings.for_caller(caller.name)
        token_checks = self._token_checks(caller, model, tokens)
        counted = (
            ()
            if requests is None
            else (Check("RATE_LIMIT_REQUESTS", requests, ("requests", caller.key), caller.name),)
        )
        if not counted and not token_checks:
            return Spend(token_checks)
        windows = self._limiter()
        # The requests are counted now (hit); the tokens only checked (test): they count when
        # settled. Each call is bound to its own check: they run later, on greenlets of their own.
        calls = [partial(windows.hit, check.item, *check.identifiers) for check in counted]
        calls += [partial(windows.test, check.item, *check.identifiers) for check in token_checks]
        outcomes = self._together(calls)
        if outcomes is None:
            return self._store_failed(token_checks)
        for check, allowed in zip((*counted, *token_checks), outcomes, strict=True):
            if not allowed:
                raise self._refusal(check)
        return Spend(token_checks)

    def settle(self, spend: Spend, tokens: int) -> None:
        """Count the tokens a request cost against its caller's, the deployment's and the model's limits."""
        if not spend.tokens or tokens <= 0 or spend.store_error:
            return
        windows = self._limiter()
        calls = [partial(windows.hit, check.item, *check.identifiers, cost=tokens) for check in spend.tokens]
        if self._together(calls) is None:
            logger.warning("The limits store did not take this request's %d tokens", tokens)

    def _token_checks(self, caller: Caller, model: str, tokens: Limit | None) -> tuple[Check, ...]:
        settings = self.settings
        checks = []
        if tokens is not None:
            checks.append(Check("RATE_LIMIT_TOKENS", tokens, ("tokens", caller.key), caller.name))
        if settings.budget is not None:
            checks.append(Check("BUDGET_TOKENS", settings.budget, ("budget", DEPLOYMENT), "this relay"))
        for pattern, limit in settings.models:
            if fnmatchcase(model, pattern):
                checks.append(Check("MODEL_BUDGETS", limit, ("model", pattern), f"models {pattern}"))
                break
        return tuple(checks)

    def _together(self, calls: Sequence[Callable[[], bool]]) -> list[bool] | None:
        """Run the store calls at once (one round trip of waiting); None if the store failed or was slow."""
        timeout = self.settings.store_timeout
        try:
            if not under_gevent() or len(calls) == 1:
                return [call() for call in calls]
            jobs = [gevent.spawn(call) for call in calls]
            gevent.joinall(jobs, timeout=timeout)
            if not all(job.ready() for job in jobs):
                gevent.killall(jobs, block=False)
                raise TimeoutError(f"no answer within {timeout:g} s")
            return [job.get() for job in jobs]
        except Exception as error:  # noqa: BLE001 - any failure of the store is the same to the caller
            logger.warning("The limits store failed: %s (LIMITS_ON_STORE_ERROR=%s)", type(error).__name__,
                           self.settings.on_store_error)  # fmt: skip
            return None

    def _store_failed(self, token_checks: tuple[Check, ...]) -> Spend:
        if self.settings.on_store_error == "deny":
            raise StoreUnavailable()
        return Spend(token_checks, store_error=True)

    def _refusal(self, check: Check) -> RateLimited:
        retry_after = self._seconds_to_reset(check)
        when = _duration(retry_after)
        if check.name == "RATE_LIMIT_REQUESTS":
            message = (
                f"Rate limit: {check.who} may send {check.limit.text} requests ({check.name}); "
                f"try again in {when}."
            )
        else:
            message = (
                f"Token limit: {check.who} has used its {check.limit.text} tokens ({check.name}); "
                f"the window resets in {when}."
            )
        # An SDK waits a minute at most before it retries: for a longer wait, retrying only fails again.
        return RateLimited(message, retry_after, waiting_helps=retry_after <= 60)

    def _seconds_to_reset(self, check: Check) -> int:
        try:
            stats = self._limiter().get_window_stats(check.item, *check.identifiers)
            return max(1, math.ceil(stats.reset_time - time.time()))
        except Exception:  # noqa: BLE001 - the refusal stands; only its timing is unknown
            return check.limit.window


class StoreUnavailable(RelayError):
    """503: the limits store did not answer, and the owner chose to refuse rather than not count."""

    status = 503
    outcome = "limited"

    def __init__(self) -> None:
        super().__init__(
            "This relay's rate-limit store did not answer, and its owner chose to refuse requests then "
            "(LIMITS_ON_STORE_ERROR=deny). Try again shortly."
        )

    def headers(self) -> dict[str, str]:
        # Waiting may well help: the store is likely back within seconds.
        return {"Retry-After": "5", "x-should-retry": "true"}


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
