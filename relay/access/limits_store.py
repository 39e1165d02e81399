"""Where the limits are counted, and every wait for it bounded: the `limits` package's store.

In Redis (REDIS_URL: shared by every instance) or in this worker process. Every call, one or
several at once, admission or settlement, is bounded by LIMITS_STORE_TIMEOUT in all; a store that
is slow or unreachable is one WARNING line naming it (by REDIS_URL's host), never a traceback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gevent  # type: ignore[import-untyped]
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from relay.config.limit_settings import Limit, LimitSettings
from relay.waits import under_gevent

logger = logging.getLogger(__name__)


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


class LimitsStore:
    """The counters of one worker process, made when first needed; calls to them, bounded."""

    def __init__(self, settings: LimitSettings) -> None:
        self.settings = settings
        self._windows: FixedWindowRateLimiter | None = None
        self._making: Any = None  # a lock, made in the worker process: after gevent patched threading

    def windows(self) -> FixedWindowRateLimiter:
        """The counters: made on first use in each worker process."""
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

    def together(self, jobs: Sequence[Callable[[], Counted]], then: str) -> list[Counted] | None:
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


def count(windows: FixedWindowRateLimiter, check: Check, cost: int, *, window_end: bool = False) -> Counted:
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
