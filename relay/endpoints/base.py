"""What every endpoint shares: the call it serves, what it supplies, the choice of route, sending.

An endpoint answers a `Call` with a `Written`, which only the call's Writer makes
(relay/serving/writer.py). One that calls an upstream supplies an `Outgoing` request, which
carries its `Encoding`: how its answer is to be encoded, all that differs between endpoints
(relay/endpoints/course.py does the rest, the same way for each).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import flask
import httpx

from relay.access.callers import Caller
from relay.access.policy import check_model
from relay.config import Route, Settings
from relay.config.upstreams import Api
from relay.errors import Dialect
from relay.formats.encoding import KEEPALIVE_COMMENT, Encoder
from relay.serving.client_connection import CLIENT_WRITE_SECONDS, ClientWatch
from relay.serving.request_body import read_request_body
from relay.serving.request_log import RequestLog
from relay.serving.shutdown import SHUTDOWN
from relay.serving.writer import Writer, Written
from relay.upstream.bodies import EVENT_STREAM, JSON
from relay.upstream.client import Upstream
from relay.upstream.routes import Router

logger = logging.getLogger(__name__)


@dataclass
class Call:
    """One request, as an endpoint sees it: what it asked, its log line, and the one way to answer it."""

    request: flask.Request
    log: RequestLog
    settings: Settings
    caller: Caller | None = None  # known once the access token is checked
    dialect: Dialect = "openai"  # the API its path speaks: its errors' shape, where its token may be
    writer: Writer = field(init=False, repr=False)
    _client: ClientWatch | None = field(default=None, repr=False)
    _ends: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.writer = Writer(self.log, self._end, self.dialect)

    @property
    def client(self) -> ClientWatch:
        """The watch on the client's socket; made once the request body has been read."""
        if self._client is None:
            socket = self.request.environ.get("gunicorn.socket")  # None under another server
            # A write to a client that stopped reading waits no longer than a silent upstream would,
            # and at most a minute: the upstream's silence may be minutes (a thinking model), a
            # client's has no such reason.
            write_timeout = min(self.settings.idle_timeout, CLIENT_WRITE_SECONDS)
            self._client = ClientWatch(socket, write_timeout=write_timeout)
            SHUTDOWN.watch(self._client)  # ended, told why, if the instance stops first
        return self._client

    def on_end(self, action: Callable[[], None]) -> None:
        """Do this once the request is over, its log line written (a stream's, when it closes)."""
        self._ends.append(action)

    def _end(self) -> None:
        if self._client is not None:
            self._client.release()
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

    @property
    def api_key(self) -> str | None:
        """Anthropic's x-api-key header, on its endpoints only: a caller's access token or own key."""
        return self.request.headers.get("x-api-key") if self.dialect == "anthropic" else None

    def body(self) -> bytes:
        """The request body, read whole within MAX_BODY_BYTES and REQUEST_BODY_TIMEOUT."""
        return read_request_body(self.request, self.settings.max_body_bytes, self.settings.body_timeout)


class Endpoint(Protocol):
    """Serves one path (or a family of paths) for these methods; OPTIONS is the app's."""

    methods: tuple[str, ...]
    needs_token: bool  # ACCESS_TOKENS applies (all but /page-config.json)

    def serve(self, call: Call) -> Written: ...


@dataclass(frozen=True)
class Encoding:
    """How an endpoint's answer is encoded for its caller: everything that differs between endpoints."""

    # What the upstream answers: how to read its events and its whole answer.
    upstream: Literal["chat", "responses", "embeddings", "messages"]
    encoder: Callable[[], Encoder] | None = None  # a stream's encoder (relay/formats)
    content_type: str = JSON  # of a streamed answer
    # The caller's whole answer made from the upstream's (a JSON object); None: passed on as it came.
    whole: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
    refusal: Literal["text", "passed"] = "passed"  # the original route's words, or the upstream's own JSON
    sdk_headers: bool = True  # the upstream's headers an SDK acts on go along (relay/upstream/bodies.py)
    as_it_arrives: bool = False  # a whole answer passed on read by read, never held (embeddings)
    # The relay retries an upstream's 429 and 5xx itself, for callers that do not (the 2023 client);
    # else they reach the caller at once, whose SDK retries them as the upstream's Retry-After says.
    retry_statuses: bool = False
    # Written when a stream has been silent for STREAM_KEEPALIVE_SECONDS: an SSE comment, or the
    # format's own (Anthropic's ping event). None: never (the original format's body is the text).
    keepalive: bytes | None = KEEPALIVE_COMMENT
    free: bool = False  # the upstream bills nothing for it (count_tokens): no tokens reserved or counted


@dataclass(frozen=True)
class Outgoing:
    """A request for the upstream, as an endpoint built it, and how its answer is to be encoded."""

    route: Route
    path: str  # under the route's base URL, such as "/chat/completions" (a query, if any, checked)
    api_key: str | None
    body: bytes  # b"": none (a GET, a DELETE)
    model: str  # as the caller named it ("" where the request names none: a stored response's paths)
    stream: bool  # the caller asked for a stream
    encoding: Encoding
    most_output: int | None = None  # the reply's tokens at most, as asked or capped (None: not said)
    headers: tuple[tuple[str, str], ...] = ()  # the caller's headers the upstream needs (anthropic-version)
    method: str = "POST"

    @property
    def accept(self) -> str:
        return EVENT_STREAM if self.stream else JSON


class Upstreams:
    """Every route's upstream, and the choice of route for a model."""

    def __init__(self, settings: Settings) -> None:
        self.router = Router(settings.default_route, settings.routes, settings.anthropic_route)
        self._by_route = {(route.api, route.prefix): Upstream(settings, route) for route in self.router.every}

    def route(self, call: Call, model: str, api: Api = "openai") -> tuple[Route, str]:
        """The route for a model the owner allows, and the model's name there; the model is logged."""
        call.log.model = model
        check_model(call.settings, model)
        return self.router.route(model, api)

    def of(self, route: Route) -> Upstream:
        return self._by_route[route.api, route.prefix]

    def send(self, call: Call, outgoing: Outgoing) -> httpx.Response:
        """Send; if the client leaves during the wait for the answer, stop waiting (ClientGone)."""
        with call.client.interruptible():
            response = self.of(outgoing.route).send(
                outgoing.method,
                outgoing.path,
                outgoing.api_key,
                outgoing.body or None,
                accept=outgoing.accept,
                retry_statuses=outgoing.encoding.retry_statuses,
                headers=outgoing.headers,
            )
        call.log.upstream_status = response.status_code
        return response
