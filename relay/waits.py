"""Waits: whether this process waits the gevent way, and a deadline for a whole wait.

A whole wait may be made of many reads: the upstream's head, a whole answer, a body.

Each socket read has its own timeout, but an upstream (or a client) that sends a byte now
and then never lets one expire. Under gevent a Timeout ends the whole wait wherever it is,
as gevent's own timeouts do, and whatever was reading is closed by its owner (httpcore
closes a connection it was interrupted on). Under gthread a blocked thread cannot be
interrupted, so there the per-read timeouts are the only bound.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import gevent  # type: ignore[import-untyped]
from gevent import monkey


def under_gevent() -> bool:
    """Whether this process's sockets are gevent's (the gevent worker patched them)."""
    return bool(monkey.is_module_patched("socket"))


@contextlib.contextmanager
def within(seconds: float, error: BaseException) -> Iterator[None]:
    """Raise `error` in the block if it has not ended within `seconds` (under gevent)."""
    if not under_gevent():
        yield
        return
    timeout = gevent.Timeout(max(seconds, 0.001), error)
    timeout.start()
    try:
        yield
    finally:
        timeout.close()
