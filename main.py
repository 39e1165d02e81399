"""The deployable entry point: `functions-framework --target chat`.

Settings, logging and the server's worker class are set up once per process, at
import; the relay itself lives in the `relay` package.
"""

import os

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from relay.app import ChatRelay
from relay.serving.server import route_websocket_handshakes
from relay.serving.writer import framework_error_response
from relay.startup import start

_relay: ChatRelay = start(os.environ)


@functions_framework.http
def chat(request: flask.Request) -> flask.Response:
    """Relay a chat completion stream in the original route's wire format."""
    return _relay(request)


# functions-framework answers /favicon.ico and /robots.txt itself, with an HTML 404;
# make those, like every other answer, plain text.
functions_framework.errorhandler(HTTPException)(framework_error_response)
# A WebSocket handshake (Codex tries one) reaches the function, to be answered 426, not werkzeug's 400.
route_websocket_handshakes()
