"""A worker's shutdown: what happens between the platform's SIGTERM and its SIGKILL (10 s on Cloud Run).

On SIGTERM the relay takes no new request (a 503 that says to send it again, while gunicorn stops
listening), and lets those in progress go on for SHUTDOWN_GRACE_SECONDS. Then it ends each one
properly, through its client watch: a request still waiting for the upstream is told, with a 503,
that the server is restarting; a stream gets its format's ending (the original route's `[Error: …]`
note, an error event, `response.failed`). Every log line is written (outcome `shutdown`) and every
upstream connection closed, so no reply nobody reads is billed. gunicorn's graceful timeout is a
second over the grace (relay/serving/server.py), so it never cuts what the relay ends itself.

One per worker process: a signal is the process's.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

import gevent  # type: ignore[import-untyped]

from relay.errors import ShuttingDown
from relay.waits import under_gevent

logger = logging.getLogger(__name__)


class Shutdown:
    """Whether this process is shutting down, and the requests in progress to end when its grace is over."""

    def __init__(self) -> None:
        self.draining = False  # SIGTERM came: no new request is taken
        self._watches: weakref.WeakSet[Any] = weakref.WeakSet()  # the ClientWatch of each request in progress

    def watch(self, client: Any) -> None:
        """A request in progress, to be ended at the grace's end (its ClientWatch)."""
        self._watches.add(client)

    def begin(self, grace: float) -> None:
        """SIGTERM: from now on no new request; in `grace` seconds, every one still in progress ended.

        Called from a signal handler: it only sets a flag and schedules what takes time.
        """
        if self.draining:
            return
        self.draining = True
        if under_gevent():
            gevent.spawn(self._announce, grace)
            gevent.spawn_later(grace, self.end_all)
        else:  # gthread: a thread cannot be interrupted; each stream sees the end at its next read
            timer = threading.Timer(grace, self.end_all)
            timer.daemon = True
            timer.start()

    def _announce(self, grace: float) -> None:
        logger.warning(
            "SIGTERM: taking no new request; the %d in progress have %g s (SHUTDOWN_GRACE_SECONDS) to end",
            len(self._watches),
            grace,
        )

    def end_all(self) -> None:
        """The grace is over: every request still in progress is ended, told why in its own format."""
        watches = list(self._watches)
        if watches:
            logger.warning("Shutting down: ending the %d requests still in progress", len(watches))
        for client in watches:
            client.interrupt(ShuttingDown())


SHUTDOWN = Shutdown()
