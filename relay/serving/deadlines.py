"""A deadline for a whole wait that may be made of many reads: the upstream's head, a whole answer, a body.

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

from relay.serving.client_connection import under_gevent


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
