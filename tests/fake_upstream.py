"""A fake OpenAI API: a real HTTP/1.1 server on a local port that sends exactly the bytes a test asks for.

It speaks raw HTTP over asyncio so that it can produce what a well-behaved
framework would not: one-byte writes, a character split between two writes, a
reset or an early close mid-stream, a stall, a body without `data: [DONE]`.

A test registers a `Reply` for a model name (or for "*", any other model); a
request for that model gets it. Otherwise a load model name gets its load reply
(tests/fake_replies.py, `load_reply`: short, paced, bulk and error replies, cheap
to send by the thousand), a request to Anthropic's /v1/messages (or its
count_tokens) Anthropic's answer, and any other name an ordinary OpenAI-style
stream (the demo's reply). Every request is recorded with its headers and body, and the
server counts open connections and notes when a client closed its connection early.

Each connection is an asyncio protocol that reads its requests itself: a load
reply is written from there, or by a shared ticker, with no task per connection,
so that a thousand streams starting at once cost the fake little; a test's reply
is sent step by step by a task of its own.

Run it in a process of its own (the benchmark does; on uvloop where installed):
`python -m tests.fake_upstream --port 8081`. `GET /stats` then answers its open
connections and, per model, when a client last left a reply mid-way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

# What the fake sends, defined in tests/fake_replies.py; the tests import these names from here.
from tests.fake_replies import (
    DEMO_REPLY,
    FAKE_MODEL,
    PACKET,
    Close,
    Pause,
    Reply,
    Reset,
    Stall,
    Step,
    anthropic_answer,
    chunk,
    error_reply,
    load_reply,
    openai_stream,
    responses_stream,
    sse,
    tokenize,
    wire_frame,
    wire_head,
)

__all__ = [
    "FAKE_MODEL",
    "PACKET",
    "Close",
    "FakeUpstream",
    "Pause",
    "RecordedRequest",
    "Reply",
    "Reset",
    "Stall",
    "Step",
    "chunk",
    "error_reply",
    "openai_stream",
    "peak_concurrency",
    "responses_stream",
    "sse",
    "tokenize",
]

# Connections waiting to be accepted: a thousand streams start at once. (asyncio's server listens
# again with its own backlog, 100 unless given, which refuses connections beyond it for a second.)
BACKLOG = 4096
MAX_HEAD = 1 << 20  # bytes of a request's line and headers; a longer head closes the connection


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int = 0  # which of the fake's connections carried it (numbered from 1)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None  # the reply was sent to the end
    client_closed: float | None = None  # the client closed the connection mid-reply

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def ended(self) -> float | None:
        """When the reply ended, sent whole or left by the client."""
        return self.finished or self.client_closed


def peak_concurrency(requests: Iterable[RecordedRequest]) -> int:
    """The most of these requests the fake was answering at once."""
    moments = []
    for request in requests:
        moments.append((request.started, 1))
        moments.append((request.ended or float("inf"), -1))
    peak = current = 0
    for _, change in sorted(moments):  # at a tie, an end (-1) sorts before a start
        current += change
        peak = max(peak, current)
    return peak


class FakeUpstream:
    """The server; `start()` runs it on a thread of its own, `stop()` ends it.

    `record=False` keeps no request (a process of its own under load would keep them all, with
    their bodies); `new_loop` makes its event loop (uvloop's, for load).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        *,
        record: bool = True,
        new_loop: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
    ):
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.record = record
        self.new_loop = new_loop
        self.replies: dict[str, Reply | Callable[[RecordedRequest], Reply]] = {}
        self.requests: list[RecordedRequest] = []
        # Per model, when a client last closed its connection mid-reply (time.monotonic(), which
        # compares across processes on one machine): what GET /stats answers, with open_connections.
        self.closed_by_client: dict[str, float] = {}
        # Counted over the whole life of the server, which tests share: a test counts its own
        # requests' connections instead (connections_of, still_open).
        self.open_connections = 0
        self.total_connections = 0
        self._open: set[int] = set()  # the numbers of the connections open now
        self._tickers: dict[float, _Ticker] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    # -- control, from the test's thread --

    @property
    def base_url(self) -> str:
        """As OPENAI_BASE_URL: the OpenAI SDKs join /chat/completions onto it."""
        return self.origin + "/v1"

    @property
    def origin(self) -> str:
        """As ANTHROPIC_BASE_URL: Anthropic's SDKs join /v1/messages onto it."""
        scheme = "https" if self.ssl_context else "http"
        host = "localhost" if self.ssl_context else self.host
        return f"{scheme}://{host}:{self.port}"

    def start(self) -> FakeUpstream:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="fake-upstream", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake upstream did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def reset(self) -> None:
        """Forget replies and recorded requests (connections stay counted)."""
        self.replies.clear()
        self.requests.clear()

    def connections_of(self, requests: Iterable[RecordedRequest]) -> set[int]:
        """The connections that carried these requests."""
        return {request.connection for request in requests}

    def still_open(self, connections: set[int]) -> set[int]:
        """Those of these connections that are open now."""
        return connections & self._open

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Poll until `predicate()` holds; return whether it did within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    # -- the server, on its own loop --

    def _run(self, ready: threading.Event) -> None:
        loop = self.new_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        sock = socket.create_server((self.host, self.port), backlog=BACKLOG)
        self.port = sock.getsockname()[1]
        self._server = loop.run_until_complete(
            loop.create_server(lambda: _Connection(self), sock=sock, ssl=self.ssl_context, backlog=BACKLOG)
        )
        ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            loop.close()

    def _opened(self) -> int:
        """Count a new connection; its number."""
        self.open_connections += 1
        self.total_connections += 1
        self._open.add(self.total_connections)
        return self.total_connections

    def _closed(self, connection: int) -> None:
        self.open_connections -= 1
        self._open.discard(connection)

    def _answer(self, connection: _Connection, request: RecordedRequest) -> None:
        """Begin the reply to a request read whole; the connection reads no more until it ends."""
        if self.record:
            self.requests.append(request)
        model = _model_of(request)
        reply = self._reply_for(request, model)
        if reply.one_write:
            connection.write(reply.rendered)
            request.finished = time.monotonic()
            connection.reply_ended(keep_open=reply.chunked)
        elif reply.tick:
            ticker = self._tickers.get(reply.tick) or self._tickers.setdefault(
                reply.tick, _Ticker(reply.tick)
            )
            ticker.add(connection, reply, lambda: self._client_closed(request, model))
        else:
            connection.task = asyncio.ensure_future(self._answer_in_steps(connection, request, model, reply))

    async def _answer_in_steps(
        self, connection: _Connection, request: RecordedRequest, model: str, reply: Reply
    ) -> None:
        closed = connection.watch()  # b"" when the client hangs up
        keep_open = False
        try:
            keep_open = await self._send(reply, connection, closed)
        except ConnectionError:
            self._client_closed(request, model)
        else:
            if _hung_up(closed):
                self._client_closed(request, model)
                keep_open = False
            elif keep_open:
                request.finished = time.monotonic()
        finally:
            if closed.done():
                closed.exception()  # retrieved: a reset noticed after the reply is no error
            connection.reply_ended(keep_open=keep_open)

    def _client_closed(self, request: RecordedRequest, model: str) -> None:
        request.client_closed = self.closed_by_client[model] = time.monotonic()

    def _reply_for(self, request: RecordedRequest, model: str) -> Reply:
        if request.path.endswith("/stats"):
            stats = {"open": self.open_connections, "closed_by_client": self.closed_by_client}
            return Reply(
                headers={"Content-Type": "application/json"}, chunked=False, body=[json.dumps(stats).encode()]
            )
        if request.path.endswith("/models"):
            if "/models" in self.replies:  # a test's own answer to the model list
                listed = self.replies["/models"]
                return listed(request) if callable(listed) else listed
            return Reply(
                headers={"Content-Type": "application/json"},
                chunked=False,
                body=[
                    json.dumps({"object": "list", "data": [{"id": "gpt-fake", "object": "model"}]}).encode()
                ],
            )
        reply = self.replies.get(model, self.replies.get("*"))  # "*": any model not listed
        if reply is None and "/messages" in request.path:
            try:
                body = request.json
            except ValueError:
                body = None
            return anthropic_answer(request.path, body)
        if reply is None:
            return load_reply(model) or Reply(body=openai_stream(tokenize(DEMO_REPLY), pace=0.05))
        return reply(request) if callable(reply) else reply

    async def _send(self, reply: Reply, writer: _Connection, closed: asyncio.Future[bytes]) -> bool:
        if reply.delay_headers and await _client_left(closed, reply.delay_headers):
            return False
        if reply.hang_up:
            _reset(writer)
            return False
        for step in reply.preamble:
            if closed.done():
                return False
            if isinstance(step, Pause):
                if await _client_left(closed, step.seconds):
                    return False
            elif isinstance(step, bytes):
                writer.write(step)
                await writer.drain()
        writer.write(wire_head(reply))
        await writer.drain()
        for step in reply.body:
            if closed.done():
                return False
            if isinstance(step, Pause):
                if await _client_left(closed, step.seconds):
                    return False
            elif isinstance(step, Reset):
                _reset(writer)
                return False
            elif isinstance(step, Close):
                await writer.drain()
                writer.close()
                return False
            elif isinstance(step, Stall):
                await closed
                return False
            elif reply.one_byte_writes:
                for index in range(len(step)):
                    writer.write(wire_frame(step[index : index + 1], reply.chunked))
                    await writer.drain()
                    await asyncio.sleep(0.001)
            else:
                writer.write(wire_frame(step, reply.chunked))
                await writer.drain()
        if reply.chunked:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        await writer.drain()
        writer.close()
        return False


class _Connection(asyncio.Protocol):
    """One client's connection: it reads the requests, one at a time, and carries their replies.

    It is also the writer a reply's steps are sent through (write, drain, close, as a
    StreamWriter's), and its watch is a future that a hang-up (b"" or the reset) or any byte the
    client sends mid-reply completes.
    """

    transport: asyncio.Transport

    def __init__(self, server: FakeUpstream) -> None:
        self.server = server
        self.number = 0
        self.buffer = bytearray()
        self.replying = False
        self.gone = False  # the client closed or reset the connection
        self.gone_error: Exception | None = None
        self.lost = False  # the connection is closed
        self.closed: asyncio.Future[bytes] | None = None  # the watch of a reply sent in steps
        self.on_gone: Callable[[], None] | None = None  # called when the client leaves a ticked reply
        self.task: asyncio.Future[None] | None = None
        self.paused = False
        self.drain_waiters: list[asyncio.Future[None]] = []

    # -- asyncio's calls --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.number = self.server._opened()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.replying:
            self._read_request()
        elif self.closed is not None and not self.closed.done():
            self.closed.set_result(data)

    def eof_received(self) -> bool:
        self._leave(None)
        return False  # close the connection

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._leave(exc)
        self.server._closed(self.number)
        for waiter in self.drain_waiters:
            if not waiter.done():
                waiter.set_result(None)  # drain() raises, since the connection is gone

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        for waiter in self.drain_waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- the writer a reply is sent through --

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    async def drain(self) -> None:
        """Wait while the client is not taking what was written; ConnectionResetError once it is gone."""
        if self.transport.is_closing():
            await asyncio.sleep(0)
        if not self.lost and self.paused:
            waiter = asyncio.get_running_loop().create_future()
            self.drain_waiters.append(waiter)
            try:
                await waiter
            finally:
                self.drain_waiters.remove(waiter)
        if self.lost:
            raise ConnectionResetError("Connection lost")

    def close(self) -> None:
        self.transport.close()

    def get_extra_info(self, name: str) -> Any:
        return self.transport.get_extra_info(name)

    # -- requests and replies --

    def watch(self) -> asyncio.Future[bytes]:
        """A future completed when the client hangs up (b"", or the reset) or sends a byte mid-reply."""
        self.closed = asyncio.get_running_loop().create_future()
        if self.gone:
            self._complete_watch()
        return self.closed

    def reply_ended(self, *, keep_open: bool) -> None:
        """The reply is over: read the next request, or close."""
        self.replying = False
        self.closed = self.on_gone = self.task = None
        if not keep_open or self.gone:
            self.transport.close()
        elif self.buffer:
            self._read_request()

    def _read_request(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self.transport.close()
            return
        try:
            request_line, *header_lines = self.buffer[:end].decode("latin-1").split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers: dict[str, str] = {}
            for line in header_lines:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
        except ValueError:
            self.transport.close()
            return
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        self.replying = True
        self.server._answer(self, RecordedRequest(method, path, headers, body, self.number))

    def _leave(self, exc: Exception | None) -> None:
        if self.gone:
            return
        self.gone = True
        self.gone_error = exc
        if self.closed is not None:
            self._complete_watch()
        if self.on_gone is not None:
            self.on_gone()

    def _complete_watch(self) -> None:
        assert self.closed is not None
        if self.closed.done():
            return
        if self.gone_error is not None:
            self.closed.set_exception(self.gone_error)
        else:
            self.closed.set_result(b"")


class _Ticker:
    """Sends every stream of one tick its next step at each tick: thousands of paced streams, one timer.

    Steps are written without waiting for the client to take them (a paced stream is small), so
    that a tick costs one write per stream and nothing more.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.streams: dict[_Connection, _Ticked] = {}
        self.running = False

    def add(self, connection: _Connection, reply: Reply, client_left: Callable[[], None]) -> None:
        """Send the head and first step now, the others by ticks; `client_left()` if it leaves first."""
        steps = reply.framed
        if len(steps) < 2:
            connection.write(reply.rendered)
            connection.reply_ended(keep_open=reply.chunked)
            return
        if connection.gone:  # the request came with the client's goodbye
            client_left()
            connection.reply_ended(keep_open=False)
            return
        connection.write(reply.rendered_head + steps[0])
        self.streams[connection] = _Ticked(steps, reply.chunked)

        def left() -> None:
            if self.streams.pop(connection, None) is not None:
                client_left()

        connection.on_gone = left
        if not self.running:
            self.running = True
            asyncio.get_running_loop().call_later(self.seconds, self.tick)

    def tick(self) -> None:
        try:
            for connection, stream in list(self.streams.items()):
                data = stream.steps[stream.sent]
                stream.sent += 1
                if stream.sent < len(stream.steps):
                    transport = connection.transport
                    if not transport.is_closing():
                        transport.write(data)
                    continue
                del self.streams[connection]
                connection.write(data + b"0\r\n\r\n" if stream.chunked else data)
                connection.reply_ended(keep_open=stream.chunked)  # may begin the next request's reply
        finally:  # whatever one reply did, the other streams go on
            if self.streams:
                asyncio.get_running_loop().call_later(self.seconds, self.tick)
            else:
                self.running = False


@dataclass
class _Ticked:
    """A stream on a ticker: its framed steps, and how many of them were sent."""

    steps: list[bytes]
    chunked: bool
    sent: int = 1  # the first, with the head


def _model_of(request: RecordedRequest) -> str:
    """The model a request names, or "" (no JSON object, no model)."""
    try:
        model = request.json.get("model", "")
    except (ValueError, AttributeError):
        return ""
    return model if isinstance(model, str) else ""


def _hung_up(closed: asyncio.Future[bytes]) -> bool:
    """The hang-up watch saw the client close or reset the connection."""
    if not closed.done() or closed.cancelled():
        return False
    return closed.exception() is not None or closed.result() == b""


async def _client_left(closed: asyncio.Future[bytes], seconds: float) -> bool:
    """Wait `seconds`; return True at once if the client closes meanwhile."""
    done, _ = await asyncio.wait({closed}, timeout=seconds)
    return bool(done)


def _reset(writer: _Connection) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def fast_event_loop() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's event loop where it is installed (requirements-dev.txt has it), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0: any free port (the line printed names it)")
    args = parser.parse_args()
    fake = FakeUpstream(args.host, args.port, record=False, new_loop=fast_event_loop()).start()
    print(f"fake upstream listening on {fake.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
