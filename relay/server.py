"""How the function is served: functions-framework's gunicorn, with gevent workers.

functions-framework runs the function in gunicorn's gthread worker: one thread
per open stream, `THREADS` of them (default 4 per CPU, so 8 streams on 2 cores).
A relay spends nearly all its time waiting on two sockets, so it runs gunicorn's
gevent worker instead: one greenlet per stream, `THREADS` of them per worker
process (gunicorn's `worker_connections`). Measured on 2 cores with 500 paced
streams, gthread with 1,000 threads gave a 2 s p99 time to first byte, gevent
20 ms (see README, "Serving").

functions-framework starts gunicorn itself and reads only WORKERS, THREADS and a
few other variables, on Cloud Functions and Cloud Run alike, so the worker class
is set here: `main.py` calls `use_configured_worker` at import, which is before
the framework builds its gunicorn application. `SERVER_WORKER=gthread` keeps the
framework's own worker. The framework version is pinned in requirements.txt, and
the end-to-end tests check which worker actually serves.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from functions_framework._http import gunicorn as framework_gunicorn

from relay.config import ConfigError

WORKERS = ("gevent", "gthread")
DEFAULT_CONNECTIONS = 1000


def worker_kind(environ: Mapping[str, str]) -> str:
    value = environ.get("SERVER_WORKER", "").strip().lower() or "gevent"
    if value not in WORKERS:
        raise ConfigError(f"SERVER_WORKER must be one of {', '.join(WORKERS)}, got {value!r}.")
    return value


def worker_connections(environ: Mapping[str, str]) -> int:
    """Concurrent requests per worker process: THREADS, as Cloud Run's guides name it."""
    value = environ.get("THREADS", "").strip()
    if not value:
        return DEFAULT_CONNECTIONS
    try:
        connections = int(value)
    except ValueError:
        raise ConfigError(f"THREADS must be a whole number, got {value!r}.") from None
    if connections <= 0:
        raise ConfigError(f"THREADS must be greater than zero, got {value!r}.")
    return connections


def use_configured_worker(environ: Mapping[str, str] = os.environ) -> str:
    """Make functions-framework's gunicorn use the configured worker class; return its name."""
    kind = worker_kind(environ)
    connections = worker_connections(environ)
    if kind == "gthread":
        return kind
    # Private to functions-framework (pinned); the end-to-end tests notice if it moves.
    application = framework_gunicorn.GunicornApplication
    if getattr(application, "_relay_worker", None) == kind:
        return kind  # already set up in this process
    framework_load_config: Callable[[Any], None] = application.load_config

    def load_config(self: Any) -> None:
        framework_load_config(self)
        self.cfg.set("worker_class", "gevent")
        self.cfg.set("worker_connections", connections)

    setattr(application, "load_config", load_config)  # noqa: B010
    setattr(application, "_relay_worker", kind)  # noqa: B010
    return kind
