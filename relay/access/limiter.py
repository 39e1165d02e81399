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
the store is bounded (relay/access/limits_store.py); a store that is slow or unreachable lets the
request go on, or refuses it with LIMITS_ON_STORE_ERROR=deny.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import partial

from relay.access.callers import Caller
from relay.access.limits_store import Check, LimitsStore, count
from relay.config.limit_settings import LimitSettings, Named
from relay.errors import RateLimited, RelayError

logger = logging.getLogger(__name__)

DEPLOYMENT = "deployment"  # the identifier of the deployment's own budget


@dataclass
class Reservation:
    """The tokens a request holds against its limits until it ends, and where."""

    tokens: int
    held: tuple[tuple[Check, float], ...] = ()  # each token limit charged, and when its window ends


class Limiter:
    def __init__(self, settings: LimitSettings) -> None:
        self.settings = settings
        self.store = LimitsStore(settings)

    def admit(self, caller: Caller, model: str, most: int) -> Reservation:
        """Count this request and reserve `most` tokens; RateLimited if it does not fit a limit."""
        requests, tokens = self.settings.for_caller(caller.name)
        token_checks = self._token_checks(caller, model, tokens)
        counted = () if requests is None else (Check(*requests, ("requests", caller.key), caller.name),)
        if not counted and not token_checks:
            return Reservation(0)
        most = max(most, 1)
        windows = self.store.windows()
        # The requests are counted; each token limit is charged the reservation, and its window's end read.
        jobs = [partial(count, windows, check, 1) for check in counted]
        jobs += [partial(count, windows, check, most, window_end=True) for check in token_checks]
        deny = self.settings.on_store_error == "deny"
        outcomes = self.store.together(
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
            windows = self.store.windows()
            jobs = [partial(count, windows, check, difference) for check, _ in reservation.held]
            self.store.together(jobs, f"{difference} tokens beyond the reservation are not counted")
        elif difference < 0:
            self._give_back(reservation.held, -difference)

    def _give_back(self, held: Sequence[tuple[Check, float]], tokens: int) -> None:
        # Only to a window with time left: one that has ended took the tokens with it.
        soon = time.time() + self.settings.store_timeout
        windows = self.store.windows()
        jobs = [partial(count, windows, check, -tokens) for check, ends in held if ends > soon]
        if jobs:
            self.store.together(jobs, f"{tokens} reserved tokens are not given back")

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
