"""What every endpoint shares: the call it serves, the choice of route, sending, and opening the reply.

An endpoint reads its body (relay/validation), applies the owner's rules
(relay/access), builds an Outgoing request, sends it with `send`, and answers
with `stream_reply` or a whole answer. Any failure is a RelayError, which the
app renders and logs with the status and outcome the error carries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import flask
import httpx

from relay.access.callers import Caller
from relay.access.limiter import Limiter
from relay.access.policy import check_model
from relay.access.redaction import Redactor, redactor_for
from relay.config import Route, Settings
from relay.serving.client_connection import ClientWatch
from relay.serving.reply import Encoder, ReplyStream
from relay.serving.request_body import read_body
from relay.serving.request_log import RequestLog
from relay.serving.responses import TEXT, stream_response
from relay.upstream.bodies import EVENT_STREAM, JSON, Answer, passed_headers, read_answer
from relay.upstream.client import Upstream
from relay.upstream.routes import Router

logger = logging.getLogger(__name__)


@dataclass
class Call:
    """One request, as an endpoint sees it."""

    request: flask.Request
    log: RequestLog
    settings: Settings
    _client: ClientWatch | None = field(default=None, repr=False)
    streaming: bool = False  # a ReplyStream or PassedBody owns the client watch and the ends from now on
    caller: Caller | None = None  # known once the access token is checked
    _ends: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def client_socket(self) -> Any:
        """gunicorn's socket to the client (None under another server)."""
        return self.request.environ.get("gunicorn.socket")

    @property
    def client(self) -> ClientWatch:
        """The watch on the client's socket; made once the request body has been read."""
        if self._client is None:
            self._client = ClientWatch(self.client_socket, write_timeout=self.settings.idle_timeout)
        return self._client

    def release(self) -> None:
        """The request is answered: stop watching its client, unless a stream still needs it."""
        if not self.streaming:
            if self._client is not None:
                self._client.release()
            self.end()

    def on_end(self, action: Callable[[], None]) -> None:
        """Do this once the request is over, its log line written (a stream's, when it closes)."""
        self._ends.append(action)

    def end(self) -> None:
        ends, self._ends = self._ends, []
        for action in ends:
            try:
                action()
            except Exception:
                logger.exception("Failed to finish a request's accounting")

    def seconds_left(self) -> float:
        """Until STREAM_MAX_SECONDS from the request's arrival: the longest any answer may take."""
        return self.log.started + self.settings.stream_max_seconds - time.monotonic()

    @property
    def authorization(self) -> str | None:
        return self.request.headers.get("Authorization")

    def body(self) -> bytes:
        """The request body, read whole within MAX_BODY_BYTES and REQUEST_BODY_TIMEOUT."""
        return read_body(self.request, self.settings.max_body_bytes, self.settings.body_timeout)


class Endpoint(Protocol):
    """Serves one path (or a family of paths) for these methods; OPTIONS is the app's."""

    methods: tuple[str, ...]

    def serve(self, call: Call) -> flask.Response: ...


@dataclass(frozen=True)
class Outgoing:
    """A request for the upstream, as an endpoint built it, and what its answer needs to know."""

    route: Route
    path: str  # under the route's base URL, such as "/chat/completions"
    api_key: str | None
    body: bytes
    model: str  # as the caller named it
    stream: bool  # the caller asked for a stream
    # For /v1/responses on a chat-only upstream: what the Response object repeats of the request.
    translate: dict[str, Any] | None = None
    hide_usage: bool = False  # the relay asked for the usage chunk; the caller did not

    @property
    def accept(self) -> str:
        return EVENT_STREAM if self.stream else JSON


class UpstreamEndpoint:
    """The shape of every endpoint that calls an upstream: prepare the request, send it, answer.

    `prepare` reads and checks the body and applies the owner's rules; what it parsed is
    dropped when it returns, so a stream holds none of it (only the bytes to send, until
    the upstream answers). `answer` turns the upstream's response into the caller's.
    """

    methods: tuple[str, ...] = ("POST",)

    def __init__(self, settings: Settings, upstreams: Upstreams, limiter: Limiter) -> None:
        self.settings = settings
        self.upstreams = upstreams
        self.limiter = limiter

    def serve(self, call: Call) -> flask.Response:
        outgoing = self.prepare(call)
        call.log.prompt_bytes = len(outgoing.body)
        self.admit(call, outgoing.model)
        response = self.upstreams.send(call, outgoing)
        return self.answer(call, outgoing, response)

    def admit(self, call: Call, model: str) -> None:
        """The owner's rate limits and spend caps, before anything is sent (429 over one)."""
        if call.caller is None or not self.settings.limits.any:
            return
        spend = self.limiter.admit(call.caller, model)
        if spend.tokens:
            call.on_end(lambda: self.limiter.settle(spend, call.log.tokens or 0))

    def prepare(self, call: Call) -> Outgoing:
        raise NotImplementedError

    def answer(self, call: Call, outgoing: Outgoing, response: httpx.Response) -> flask.Response:
        raise NotImplementedError


class Upstreams:
    """Every route's upstream, and the choice of route for a model."""

    def __init__(self, settings: Settings) -> None:
        self.router = Router(settings.default_route, settings.routes)
        self._by_prefix = {route.prefix: Upstream(settings, route) for route in self.router.all}

    def route(self, call: Call, model: str) -> tuple[Route, str]:
        """The route for a model the owner allows, and the model's name there; the model is logged."""
        call.log.model = model
        check_model(call.settings, model)
        return self.router.route(model)

    def of(self, route: Route) -> Upstream:
        return self._by_prefix[route.prefix]

    def send(self, call: Call, outgoing: Outgoing) -> httpx.Response:
        """Send; if the client leaves during the wait for the answer, stop waiting (ClientGone)."""
        with call.client.interruptible():
            response = self.of(outgoing.route).send(
                "POST", outgoing.path, outgoing.api_key, outgoing.body, accept=outgoing.accept
            )
        call.log.upstream_status = response.status_code
        return response


def stream_reply(
    call: Call,
    response: httpx.Response,
    encoder: Encoder,
    api_key: str | None,
    content_type: str = TEXT,
    *,
    pass_headers: bool = False,
) -> flask.Response:
    """A 200 whose body relays the upstream's stream through `encoder`; the upstream is closed at its end.

    With `pass_headers`, the upstream's headers an SDK reads (its request id, rate limits) go
    along, as on a whole answer.
    """
    redactor = redactor_for((api_key,))
    reply = ReplyStream(
        response,
        encoder,
        log=call.log,
        settings=call.settings,
        redactor=redactor,
        client=call.client,
        ended=call.end,
    )
    call.streaming = True
    streamed = stream_response(reply, content_type=content_type)
    if pass_headers:
        streamed.headers.extend(safe_headers(passed_headers(response.headers), redactor))
    return streamed


def safe_headers(headers: Iterable[tuple[str, str]], redactor: Redactor) -> list[tuple[str, str]]:
    """The headers whose values hold nothing secret (an upstream could echo its key in any)."""
    return [(name, value) for name, value in headers if redactor.redact(value) == value]


def read_whole(call: Call, response: httpx.Response) -> Answer:
    """The upstream's whole answer, read while the client is there and the request has time left."""
    with call.client.interruptible():
        return read_answer(response, call.seconds_left())
