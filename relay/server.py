"""How the function is served: functions-framework's gunicorn, with gevent workers.

functions-framework runs the function in gunicorn's gthread worker: one thread
per open stream, `THREADS` of them (default 4 per CPU, so 8 streams on 2 cores).
A relay spends nearly all its time waiting on two sockets, so it runs gunicorn's
gevent worker instead: one greenlet per stream, `THREADS` of them per worker
process (gunicorn's `worker_connections`). Measured on 2 cores with 500 paced
streams, gthread with 1,000 threads gave a 2 s p99 time to first byte, gevent
20 ms (README, "Serving").

functions-framework starts gunicorn itself and reads only WORKERS, THREADS and a
few other variables, on Cloud Functions and Cloud Run alike, so the worker class
is set here: `main.py` calls `configure_gunicorn` at import, which is before the
framework builds its gunicorn application. `SERVER_WORKER=gthread` keeps the
framework's own worker. Either way each worker process logs, once started, the
worker class that actually serves, so a framework upgrade that bypassed this
would show (the end-to-end tests read that line).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from functions_framework._http import gunicorn as framework_gunicorn

from relay.config import Settings

logger = logging.getLogger("relay.server")


def configure_gunicorn(settings: Settings) -> None:
    """Make functions-framework's gunicorn use the configured worker class."""
    # Private to functions-framework, which requirements.txt pins.
    application = framework_gunicorn.GunicornApplication
    framework_load_config: Callable[[Any], None] = getattr(
        application, "_framework_load_config", application.load_config
    )

    def load_config(self: Any) -> None:
        framework_load_config(self)
        if settings.server_worker == "gevent":
            self.cfg.set("worker_class", "gevent")
            self.cfg.set("worker_connections", settings.threads)
        self.cfg.set("post_worker_init", _log_worker)

    setattr(application, "_framework_load_config", framework_load_config)  # noqa: B010
    setattr(application, "load_config", load_config)  # noqa: B010


def _log_worker(worker: Any) -> None:
    logger.info(
        "Worker %d serving with %s, %d connections",
        worker.pid,
        type(worker).__name__,
        worker.cfg.worker_connections if type(worker).__name__ == "GeventWorker" else worker.cfg.threads,
    )
