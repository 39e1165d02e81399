"""Per-caller rate limits and spend caps, counted by the `limits` package in Redis (shared) or in memory.

Reserve, then settle (docs/limits.md, "Spend caps"). Before the upstream is asked (`admit`), the
caller's requests in the window are counted, and every token limit the request falls under (the
caller's, the deployment's, the model's) is charged the most the request can cost: its prompt's
estimate and the reply's token cap. A reservation that does not fit is given back and the
request refused with 429, so requests in flight can never together pass a cap. When the request
has ended (`settle`), the difference between what was reserved and what it cost is given back
(or charged, if the upstream reported more). A cap then holds to within what estimates miss,
whatever the concurrency.

`limits` gives back with a negative weighted hit on the same key. Its fixed windows begin at the
first hit and end when the key expires, so a give-back after the window has ended would open the
next one below zero: it is made only while the reservation's own window has time left (its end
is read at admission), otherwise the old window took the reservation and is gone anyway.

Where REDIS_URL is unset the counters live in this worker process: each process of each instance
counts on its own, so a limit holds per process (docs/configuration.md says so). Every wait for
the store, one limit or several, admission or settlement, is bounded by LIMITS_STORE_TIMEOUT; a
store that is slow or unreachable lets the request go on, or refuses it with
LIMITS_ON_STORE_ERROR=deny; either way one WARNING line says so, never a traceback.
"""

from __future__ import annotations

import logging
import math
import threading
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
from relay.config.limit_settings import Limit, LimitSettings, Named
from relay.errors import RateLimited, RelayError
from relay.waits import under_gevent

logger = logging.getLogger(__name__)

DEPLOYMENT = "deployment"  # the identifier of the deployment's own budget


@dataclass(frozen=True)
class Check:
    """One limit as it applies to a request: the setting it comes from, its window, its key."""

    name: str  # the setting, for messages: RATE_LIMIT_REQUESTS, CALLER_LIMITS["alice"].tokens, ...
    limit: Limit
    identifiers: tuple[str, ...]
    who: str  # in messages: a caller's name, "this relay", a model pattern

    @property
    def item(self) -> RateLimitItemPerSecond:
        return RateLimitItemPerSecond(self.limit.count, self.limit.window)


@dataclass(frozen=True)
class Counted:
    """What the store said of one check: whether it fit, and when its window ends (epoch seconds)."""

    allowed: bool
    ends: float


@dataclass
class Reservation:
    """The tokens a request holds against its limits until it ends, and where."""

    tokens: int
    held: tuple[tuple[Check, float], ...] = ()  # each token limit charged, and when its window ends


class Limiter:
    def __init__(self, settings: LimitSettings) -> None:
        self.settings = settings
        self._windows: FixedWindowRateLimiter | None = None
        self._making: Any = None  # a lock, made in the worker process: after gevent patched threading

    def _limiter(self) -> FixedWindowRateLimiter:
        # Made on first use in each worker process: after the fork, with gevent's sockets. Under a
        # lock: making a store may switch greenlets (MemoryStorage starts a timer thread), and a
        # burst of first requests would each make a store of its own, each counting from zero.
        # The lock is gevent's there (made after the patch; nothing switches between the test and
        # the making), so a greenlet that waits for it lets the others run.
        if self._windows is not None:
            return self._windows
        if self._making is None:
            self._making = threading.Lock()
        with self._making:
            if self._windows is None:
                settings = self.settings
                storage: Any
                if settings.redis_url:
                    timeout = settings.store_timeout
                    storage = storage_from_string(
                        settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
                    )
                else:
                    storage = MemoryStorage()
                self._windows = FixedWindowRateLimiter(storage)
            return self._windows

    def admit(self, caller: Caller, model: str, most: int) -> Reservation:
        """Count this request and reserve `most` tokens; RateLimited if it does not fit a limit."""
        requests, tokens = self.settings.for_caller(caller.name)
        token_checks = self._token_checks(caller, model, tokens)
        counted = () if requests is None else (Check(*requests, ("requests", caller.key), caller.name),)
        if not counted and not token_checks:
            return Reservation(0)
        most = max(most, 1)
        windows = self._limiter()
        # The requests are counted; each token limit is charged the reservation, and its window's end read.
        jobs = [partial(_count, windows, check, 1) for check in counted]
        jobs += [partial(_count, windows, check, most, window_end=True) for check in token_checks]
        deny = self.settings.on_store_error == "deny"
        outcomes = self._together(
            jobs,
            "the request is refused (LIMITS_ON_STORE_ERROR=deny)"
            if deny
            else "the request goes on, not counted (LIMITS_ON_STORE_ERROR=allow)",
        )
        if outcomes is None:
            if deny:
                raise StoreUnavailable()
            return Reservation(0)  # not reserved: nothing to settle
        checks = (*counted, *token_checks)
        held = tuple(
            (check, outcome.ends)
            for check, outcome in zip(token_checks, outcomes[len(counted) :], strict=True)
        )
        for check, outcome in zip(checks, outcomes, strict=True):
            if not outcome.allowed:
                self._give_back(held, most)  # every reservation made: the request does not go
                raise self._refusal(check, outcome.ends, most)
        return Reservation(most, held)

    def settle(self, reservation: Reservation, tokens: int) -> None:
        """The request has ended: charge what it cost, not what was reserved."""
        if not reservation.held:
            return
        difference = tokens - reservation.tokens
        if difference > 0:
            windows = self._limiter()
            jobs = [partial(_count, windows, check, difference) for check, _ in reservation.held]
            self._together(jobs, f"{difference} tokens beyond the reservation are not counted")
        elif difference < 0:
            self._give_back(reservation.held, -difference)

    def _give_back(self, held: Sequence[tuple[Check, float]], tokens: int) -> None:
        # Only to a window with time left: one that has ended took the tokens with it.
        soon = time.time() + self.settings.store_timeout
        windows = self._limiter()
        jobs = [partial(_count, windows, check, -tokens) for check, ends in held if ends > soon]
        if jobs:
            self._together(jobs, f"{tokens} reserved tokens are not given back")

    def _token_checks(self, caller: Caller, model: str, tokens: Named | None) -> tuple[Check, ...]:
        settings = self.settings
        checks = []
        if tokens is not None:
            checks.append(Check(*tokens, ("tokens", caller.key), caller.name))
        if settings.budget is not None:
            checks.append(Check("BUDGET_TOKENS", settings.budget, ("budget", DEPLOYMENT), "this relay"))
        for pattern, limit in settings.models:
            if fnmatchcase(model, pattern):
                checks.append(
                    Check(f'MODEL_BUDGETS["{pattern}"]', limit, ("model", pattern), f"models {pattern}")
                )
                break
        return tuple(checks)

    def _together(self, jobs: Sequence[Callable[[], Counted]], then: str) -> list[Counted] | None:
        """Run the store calls at once, within LIMITS_STORE_TIMEOUT in all; None (and one line) if it failed.

        `then`: what becomes of the request if the store fails, for that line.
        """
        timeout = self.settings.store_timeout
        results: list[Counted | BaseException | None] = [None] * len(jobs)

        def run(index: int) -> None:
            try:
                results[index] = jobs[index]()
            except Exception as error:  # noqa: BLE001 - told once below, as what failed, not a traceback
                results[index] = error

        failure = None
        if under_gevent():
            greenlets = [gevent.spawn(run, index) for index in range(len(jobs))]
            gevent.joinall(greenlets, timeout=timeout)
            if not all(greenlet.ready() for greenlet in greenlets):
                gevent.killall(greenlets, block=False)
                failure = f"no answer within {timeout:g} s (LIMITS_STORE_TIMEOUT)"
        else:  # gthread: each call is bounded by the client's socket timeout only
            for index in range(len(jobs)):
                run(index)
        failed = [result for result in results if isinstance(result, BaseException)]
        if failure is None and failed:
            failure = type(failed[0]).__name__
        if failure is not None:
            logger.warning("The limits store (%s) failed: %s; %s", self.settings.store_name, failure, then)
            return None
        return [result for result in results if isinstance(result, Counted)]

    def _refusal(self, check: Check, ends: float, most: int) -> RateLimited:
        retry_after = max(1, math.ceil(ends - time.time()))
        when = _duration(retry_after)
        if check.identifiers[0] == "requests":
            message = (
                f"Rate limit: {check.who} may send {check.limit.text} requests ({check.name}); "
                f"try again in {when}."
            )
        else:
            message = (
                f"Token limit: {check.who} has used its {check.limit.text} tokens, or would with what "
                f"requests in progress may cost and this request's up to {most} ({check.name}); "
                f"the window resets in {when}."
            )
        # An SDK waits a minute at most before it retries: for a longer wait, retrying only fails again.
        return RateLimited(message, retry_after, waiting_helps=retry_after <= 60)


def _count(windows: FixedWindowRateLimiter, check: Check, cost: int, *, window_end: bool = False) -> Counted:
    """Add `cost` (negative: give back) to the check's window; whether it fits, and when the window ends.

    The end is read where it is needed: for a reservation (what may be given back later), and for
    a refusal (when to try again); else it is not asked for, which saves a round trip.
    """
    item = check.item
    allowed = windows.hit(item, *check.identifiers, cost=cost) or cost <= 0
    ends = 0.0
    if window_end or not allowed:
        ends = windows.get_window_stats(item, *check.identifiers).reset_time
    return Counted(allowed, ends)


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
