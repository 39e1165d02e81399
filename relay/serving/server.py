"""How the function is served: functions-framework's gunicorn, with gevent workers.

functions-framework runs the function in gunicorn's gthread worker: one thread
per open stream, `THREADS` of them (default 4 per CPU, so 8 streams on 2 cores).
A relay spends nearly all its time waiting on two sockets, so it runs gunicorn's
gevent worker instead: one greenlet per stream, `THREADS` of them per worker
process (gunicorn's `worker_connections`). Measured on 2 cores with 500 paced
streams starting at once, gthread with 1,000 threads gave a first-byte p99 of
1.1-3.1 s and 228-328 µs of CPU per token, gevent 0.84-1.4 s and 176-212 µs
(docs/design.md, "Serving").

functions-framework starts gunicorn itself and reads only WORKERS, THREADS and a
few other variables, on Cloud Functions and Cloud Run alike, so the worker class
is set here: `relay.startup.start`, run when `main.py` is imported, calls
`configure_gunicorn` before the framework builds its gunicorn application.
`SERVER_WORKER=gthread` keeps the framework's own worker. Either way each worker
process logs, once started, the worker class that actually serves, so a framework
upgrade that bypassed this would show (the end-to-end tests read that line).
"""

from __future__ import annotations

import logging
import math
import select
import signal
import types
from collections.abc import Callable
from functools import partial
from typing import Any

import flask
import httpcore._utils
import werkzeug.routing
from functions_framework._http import gunicorn as framework_gunicorn
from gevent import monkey  # type: ignore[import-untyped]

from relay.config import Settings
from relay.serving.shutdown import SHUTDOWN

logger = logging.getLogger("relay.serving.server")

# The request head a caller may send (gunicorn's own defaults, set explicitly: functions-framework
# turns the line's limit off, and an unbounded line stalls a gevent worker while gunicorn rescans
# it). Over them gunicorn answers 414 or 431 before the function runs.
LIMIT_REQUEST_LINE = 4094  # bytes: method, path and query; the longest path served is a model's name
LIMIT_REQUEST_FIELDS = 100  # headers
LIMIT_REQUEST_FIELD_SIZE = 8190  # bytes per header: a long access token or identity token fits


def configure_gunicorn(settings: Settings) -> None:
    """Make functions-framework's gunicorn use the configured worker class."""
    # Private to functions-framework, which requirements.txt pins.
    application = framework_gunicorn.GunicornApplication
    framework_load_config: Callable[[Any], None] = getattr(
        application, "_framework_load_config", application.load_config
    )

    def load_config(self: Any) -> None:
        framework_load_config(self)
        self.cfg.set("limit_request_line", LIMIT_REQUEST_LINE)
        self.cfg.set("limit_request_fields", LIMIT_REQUEST_FIELDS)
        self.cfg.set("limit_request_field_size", LIMIT_REQUEST_FIELD_SIZE)
        if settings.server_worker == "gevent":
            self.cfg.set("worker_class", "gevent")
            self.cfg.set("worker_connections", settings.threads)
        # A second over the relay's own grace: gunicorn then lets the requests it ended finish their
        # ending (relay/serving/shutdown.py), and still exits before Cloud Run's SIGKILL at 10 s.
        self.cfg.set("graceful_timeout", math.floor(settings.shutdown_grace) + 1)
        self.cfg.set("post_worker_init", partial(_worker_started, grace=settings.shutdown_grace))

    setattr(application, "_framework_load_config", framework_load_config)  # noqa: B010
    setattr(application, "load_config", load_config)  # noqa: B010


def route_websocket_handshakes() -> None:
    """Let a WebSocket handshake reach the function, which answers it 426 (relay/app.py).

    functions-framework's routes take plain HTTP only, and werkzeug answers a request with
    `Connection: Upgrade` and `Upgrade: websocket` that matches none of them with a 400 before
    the function runs: to Codex, which tries a WebSocket on /v1/responses first, a 400 is
    fatal, where a 426 sends it to POST at once. The same routes for WebSocket requests, added
    to the app functions-framework is importing `main.py` for (Flask's current app, then),
    bring the handshake to the relay, with its log line and CORS headers like every answer.
    """
    try:
        url_map = flask.current_app.url_map
    except RuntimeError:  # imported outside functions-framework's app (a test importing main.py)
        logger.warning("No Flask app while starting: a WebSocket handshake is answered 400, not 426")
        return
    url_map.add(werkzeug.routing.Rule("/", defaults={"path": ""}, endpoint="run", websocket=True))
    url_map.add(werkzeug.routing.Rule("/<path:path>", endpoint="run", websocket=True))


def _worker_started(worker: Any, grace: float) -> None:
    logging.getLogger("gunicorn.error").addFilter(_client_went_away)
    on_term_before = signal.getsignal(signal.SIGTERM)  # gunicorn's: it stops listening within a second

    def on_term(number: int, frame: Any) -> None:
        if callable(on_term_before):
            on_term_before(number, frame)
        SHUTDOWN.begin(grace)

    signal.signal(signal.SIGTERM, on_term)
    kind = type(worker).__name__
    gevent = kind == "GeventWorker"
    if gevent:
        unpatch_idle_connection_check()
    logger.info(
        "Worker %d serving with %s, %d connections",
        worker.pid,
        kind,
        worker.cfg.worker_connections if gevent else worker.cfg.threads,
    )


def unpatch_idle_connection_check() -> None:
    """Give httpcore's idle-connection check the operating system's poll back.

    Each time a request starts or a response closes, httpcore asks of every kept-alive
    connection of the pool whether the server closed it, with `select.poll()` and a
    zero timeout. gevent's patched poll turns each of those into a trip through its
    event loop: with a few hundred idle connections after a burst, a request cost
    several times the CPU (the profile: bench/results/profile-idle-check.txt). The
    operating system's poll with a zero timeout never blocks, so it is safe in a
    gevent worker and costs a system call. httpcore reads `select` from its module
    at each call; the pinned httpcore (requirements.txt) is what this was written for.
    """
    if not isinstance(getattr(httpcore._utils, "select", None), types.ModuleType):
        logger.warning(
            "httpcore no longer polls through httpcore._utils.select; its idle check stays on gevent's loop"
        )
        return
    httpcore._utils.select = types.SimpleNamespace(  # type: ignore[attr-defined,assignment]
        poll=monkey.get_original("select", "poll"),
        select=monkey.get_original("select", "select"),
        POLLIN=select.POLLIN,
    )


def _client_went_away(record: logging.LogRecord) -> bool:
    """Drop gunicorn's traceback for a write to a client that stopped reading (the write timed out).

    The relay's own line for that request already says `client_gone`, at INFO; a client that
    leaves is not the server's error.
    """
    failure = record.exc_info[1] if record.exc_info else None
    return not (isinstance(failure, TimeoutError) and record.getMessage().startswith("Socket error"))
