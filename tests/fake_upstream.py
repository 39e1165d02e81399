"""A fake OpenAI API: a real HTTP/1.1 server on a local port that sends exactly the bytes a test asks for.

It speaks raw HTTP over asyncio so that it can produce what a well-behaved
framework would not: one-byte writes, a character split between two writes, a
reset or an early close mid-stream, a stall, a body without `data: [DONE]`.

A test registers a `Reply` (tests/fake_replies.py: what the fake can send) for a
model name (or for "*", any other model); a request for that model gets it.
Otherwise: an ordinary OpenAI-style stream (the demo's reply). Every request is
recorded with its headers and body, and the server counts open connections and
notes when a client closed its connection early.

Run it alone for the demo: `python -m tests.fake_upstream --port 8081`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

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
    chunk,
    error_reply,
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
# again with its own backlog, 100 unless given: connections beyond it wait a second to be retried.)
BACKLOG = 4096


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


# --- the server ------------------------------------------------------------------------------


class FakeUpstream:
    """The server; `start()` runs it on a thread of its own, `stop()` ends it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None):
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.replies: dict[str, Reply | Callable[[RecordedRequest], Reply]] = {}
        self.requests: list[RecordedRequest] = []
        # Counted over the whole life of the server, which tests share: a test counts its own
        # requests' connections instead (connections_of, still_open).
        self.open_connections = 0
        self.total_connections = 0
        self._open: set[int] = set()  # the numbers of the connections open now
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    # -- control, from the test's thread --

    @property
    def base_url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        host = "localhost" if self.ssl_context else self.host
        return f"{scheme}://{host}:{self.port}/v1"

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
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        sock = socket.create_server((self.host, self.port), backlog=BACKLOG)
        self.port = sock.getsockname()[1]
        self._server = loop.run_until_complete(
            asyncio.start_server(self._serve, sock=sock, ssl=self.ssl_context, limit=1 << 20, backlog=BACKLOG)
        )
        ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        self.total_connections += 1
        connection = self.total_connections
        self._open.add(connection)
        try:
            leftover: bytes | None = b""
            while leftover is not None:
                leftover = await self._serve_one(reader, writer, leftover, connection)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self.open_connections -= 1
            self._open.discard(connection)
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve_one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, leftover: bytes, connection: int
    ) -> bytes | None:
        """Read one request and answer it; return None to close, else bytes already read of the next."""
        head = leftover + await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, path, _ = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        request = RecordedRequest(method, path, headers, body, connection)
        self.requests.append(request)
        reply = self._reply_for(request)

        closed = asyncio.ensure_future(reader.read(1))  # b"" when the client hangs up
        try:
            keep_open = await self._send(reply, writer, closed)
        except ConnectionError:
            request.client_closed = time.monotonic()
            await _stop_watch(closed)
            return None
        if _hung_up(closed):
            request.client_closed = time.monotonic()
            return None
        next_bytes = await _stop_watch(closed)  # may hold the first byte of the next request
        if not keep_open:
            return None
        request.finished = time.monotonic()
        return next_bytes

    def _reply_for(self, request: RecordedRequest) -> Reply:
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
        try:
            model = request.json.get("model", "")
        except ValueError:
            model = ""
        reply = self.replies.get(model, self.replies.get("*"))  # "*": any model not listed
        if reply is None:
            return Reply(body=openai_stream(tokenize(DEMO_REPLY), pace=0.05))
        return reply(request) if callable(reply) else reply

    async def _send(self, reply: Reply, writer: asyncio.StreamWriter, closed: asyncio.Future[bytes]) -> bool:
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


def _hung_up(closed: asyncio.Future[bytes]) -> bool:
    """The hang-up watch saw the client close or reset the connection."""
    if not closed.done() or closed.cancelled():
        return False
    return closed.exception() is not None or closed.result() == b""


async def _stop_watch(closed: asyncio.Future[bytes]) -> bytes:
    """Cancel the hang-up watch; return what it read, if it read anything."""
    closed.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionError):
        return await closed
    return b""


async def _client_left(closed: asyncio.Future[bytes], seconds: float) -> bool:
    """Wait `seconds`; return True at once if the client closes meanwhile."""
    done, _ = await asyncio.wait({closed}, timeout=seconds)
    return bool(done)


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    fake = FakeUpstream(args.host, args.port).start()
    print(f"fake upstream listening on {fake.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
