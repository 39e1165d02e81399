"""A light HTTP/1.1 load client on asyncio: many concurrent chat streams, each timed read by read.

Raw sockets and asyncio protocols rather than an HTTP library, so that a thousand
streams cost the client little and every byte and every gap between reads is seen
as it arrives. The tests drive the relay with it (tests/test_concurrency.py), and
so does the benchmark, from a process of its own on uvloop (bench/load_runs.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any, cast


@dataclass
class StreamResult:
    status: int = 0
    body: bytes = b""  # the body as sent, its chunked framing taken off
    first_byte: float | None = None  # seconds from sending the request to the first body byte
    read_times: list[float] = field(default_factory=list)  # time.monotonic() of each read with body bytes
    error: str | None = None
    aborted_at: float | None = None  # time.monotonic() when the client hung up on purpose

    @property
    def gaps(self) -> list[float]:
        return [later - earlier for earlier, later in zip(self.read_times, self.read_times[1:], strict=False)]


def chat_request(
    host: str,
    port: int,
    payload: dict[str, Any],
    headers: dict[str, str] | None = None,
    *,
    path: str = "/api/chat",
) -> bytes:
    body = json.dumps(payload).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Stream(asyncio.Protocol):
    """One request and its reply, read as it arrives: chunked, of a Content-Length, or up to the close."""

    def __init__(self, request: bytes, abort_after_bytes: int | None, result: StreamResult) -> None:
        self.request = request
        self.abort_after_bytes = abort_after_bytes
        self.result = result
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0
        self.head = bytearray()
        self.framing = ""  # "chunked", "length" or "close", once the head is read
        self.remaining = 0  # of a Content-Length body; of a chunk cut between reads, its data and CRLF
        self.pending = bytearray()  # chunked bytes not yet decoded (a size line cut between reads)
        self.body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.sent_at = time.monotonic()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if not self.framing:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            data = bytes(self.head[end + 4 :])
            try:
                has_body = self._read_head(bytes(self.head[:end]))
            except (ValueError, IndexError):
                self._finish(f"bad head: {bytes(self.head[:200])!r}")
                return
            if not has_body or not data:
                return
        before = len(self.body)
        try:
            complete = self._take(data)
        except ValueError as error:
            self._finish(f"bad chunking: {error}")
            return
        if len(self.body) > before:
            if self.result.first_byte is None:
                self.result.first_byte = now - self.sent_at
            self.result.read_times.append(now)
        if self.abort_after_bytes is not None and len(self.body) >= self.abort_after_bytes:
            self.result.aborted_at = time.monotonic()
            self._finish()
        elif complete:
            self._finish()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.framing == "close" and exc is None:
            self._finish()
        else:
            self._finish(f"connection lost: {exc!r}")

    def _read_head(self, head: bytes) -> bool:
        """Note the status and how the body ends; False if the reply has no body (finished)."""
        status_line, *lines = head.decode("latin-1").split("\r\n")
        self.result.status = int(status_line.split(" ", 2)[1])
        headers = {
            name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in lines)
        }
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.framing = "chunked"
        elif "content-length" in headers:
            self.framing, self.remaining = "length", int(headers["content-length"])
            if not self.remaining:
                self._finish()
                return False
        else:
            self.framing = "close"
        return True

    def _take(self, data: bytes) -> bool:
        """Add a read's body bytes; whether the body is complete."""
        if self.framing == "chunked":
            return self._dechunk(data)
        self.body += data
        if self.framing == "length":
            self.remaining -= len(data)
            return self.remaining <= 0
        return False

    def _dechunk(self, data: bytes) -> bool:
        """Take a read's body bytes out of the chunked framing; whether the last chunk came."""
        buffer = self.pending
        buffer += data
        body, length, position = self.body, len(buffer), 0
        if self.remaining:  # the rest of a chunk cut between reads: its data, then CRLF
            taken = min(self.remaining, length)
            body += buffer[: max(0, min(taken, self.remaining - 2))]
            self.remaining -= taken
            position = taken
        # Local names and a memoryview, no copy per chunk: a bulk stream is tens of thousands of
        # chunks, and the client must cost less than the servers it measures.
        view = memoryview(buffer)
        try:
            while position < length:
                end = buffer.find(b"\r\n", position)
                if end < 0:
                    break
                size = int(buffer[position:end], 16)
                if size == 0:
                    return True  # the last chunk (trailers, if any, are not read)
                start = end + 2
                stop = start + size
                if stop + 2 > length:  # cut between reads
                    body += view[start : min(stop, length)]
                    self.remaining = stop + 2 - length
                    position = length
                    break
                if buffer[stop] != 13 or buffer[stop + 1] != 10:
                    raise ValueError(f"no CRLF after a chunk of {size} bytes")
                body += view[start:stop]
                position = stop + 2
        finally:
            view.release()
        del buffer[:position]
        return False

    def _finish(self, error: str | None = None) -> None:
        if self.done.done():
            return
        self.result.body = bytes(self.body)
        self.result.error = error
        if self.transport is not None:
            self.transport.close()
        self.done.set_result(None)


async def stream_once(
    host: str, port: int, request: bytes, abort_after_bytes: int | None = None, timeout: float = 60.0
) -> StreamResult:
    """Send one request; read the reply to the end, or hang up after `abort_after_bytes` of its body.

    `timeout`: the seconds the whole stream may take, from connecting to its last byte.
    """
    result = StreamResult()
    stream = _Stream(request, abort_after_bytes, result)
    try:
        async with asyncio.timeout(timeout):  # a deadline, not a task more per stream
            await asyncio.get_running_loop().create_connection(lambda: stream, host, port)
            await stream.done
    except (OSError, TimeoutError) as error:
        result.error = repr(error)
    finally:
        if stream.transport is not None:
            stream.transport.close()
    return result


async def stream_many(
    host: str, port: int, requests: list[bytes], abort_after_bytes: int | None = None, timeout: float = 60.0
) -> list[StreamResult]:
    """Open every stream at once and wait for all of them."""
    return list(
        await asyncio.gather(
            *(stream_once(host, port, request, abort_after_bytes, timeout) for request in requests)
        )
    )


async def stream_in_turn(
    host: str, port: int, requests: list[bytes], timeout: float = 60.0
) -> list[StreamResult]:
    """One stream after another, each to its end."""
    return [await stream_once(host, port, request, None, timeout) for request in requests]


def run_streams(
    host: str, port: int, requests: list[bytes], abort_after_bytes: int | None = None, timeout: float = 60.0
) -> list[StreamResult]:
    return asyncio.run(stream_many(host, port, requests, abort_after_bytes, timeout))
