"""The floor for the benchmark: the same server, a function that relays the upstream's bytes untouched.

Served exactly as the relay is (functions-framework, relay/server.py's gevent
worker, deploy/server.env), it opens a socket to the upstream per request, sends
the chat request, and yields every read as it comes until the last chunk: no validation, no httpx, no
decoding, no log line. What it costs is what the server and the platform cost;
what the relay costs above it is the relay's own code. Its replies keep the
upstream's chunk framing, so the benchmark times them but does not check them.

  functions-framework --target chat --source bench/passthrough.py
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import flask
import functions_framework

from relay.config import load_settings
from relay.serving.server import configure_gunicorn

_UPSTREAM = urlsplit(os.environ["OPENAI_BASE_URL"])
configure_gunicorn(load_settings(os.environ))


@functions_framework.http
def chat(request: flask.Request) -> flask.Response:
    body = request.get_data()
    upstream = socket.create_connection((_UPSTREAM.hostname or "127.0.0.1", _UPSTREAM.port or 80))
    upstream.sendall(
        b"POST %s/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
        % (_UPSTREAM.path.encode(), (_UPSTREAM.netloc or "").encode(), len(body), body)
    )

    def relay() -> Iterator[bytes]:
        try:
            while data := upstream.recv(65536):
                yield data
                if data.endswith(b"\r\n0\r\n\r\n"):  # the fake upstream's last write ends the body
                    return
        finally:
            upstream.close()

    return flask.Response(relay(), mimetype="text/plain")
