"""A light HTTP/1.1 load client on asyncio: many concurrent chat streams, each timed read by read.

Raw sockets rather than an HTTP library, so that a thousand streams cost the
client little and every byte and every gap between reads is seen as it arrives.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StreamResult:
    status: int = 0
    body: bytes = b""
    first_byte: float | None = None  # seconds from sending the request to the first body byte
    read_times: list[float] = field(default_factory=list)  # seconds, one per body read
    error: str | None = None
    aborted_at: float | None = None  # time.monotonic() when the client hung up on purpose

    @property
    def gaps(self) -> list[float]:
        return [later - earlier for earlier, later in zip(self.read_times, self.read_times[1:], strict=False)]


def chat_request(
    host: str, port: int, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> bytes:
    body = json.dumps(payload).encode()
    lines = [
        "POST /api/chat HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def stream_once(
    host: str, port: int, request: bytes, abort_after_bytes: int | None = None, timeout: float = 60.0
) -> StreamResult:
    """Send one request; read the chunked reply to the end, or hang up after `abort_after_bytes`."""
    result = StreamResult()
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as error:
        result.error = f"connect: {error!r}"
        return result
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        result.status = int(head.split(b" ", 2)[1])
        chunked = b"transfer-encoding: chunked" in head.lower()
        body = bytearray()
        while True:
            if chunked:
                size_line = await asyncio.wait_for(reader.readline(), timeout)
                size = int(size_line.strip() or b"0", 16)
                if size == 0:
                    break
                data = await asyncio.wait_for(reader.readexactly(size + 2), timeout)
                data = data[:-2]
            else:
                data = await asyncio.wait_for(reader.read(65536), timeout)
                if not data:
                    break
            now = time.monotonic() - started
            if result.first_byte is None:
                result.first_byte = now
            result.read_times.append(now)
            body += data
            if abort_after_bytes is not None and len(body) >= abort_after_bytes:
                result.aborted_at = time.monotonic()
                break
        result.body = bytes(body)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
        result.error = repr(error)
    finally:
        writer.close()
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


def run_streams(
    host: str, port: int, requests: list[bytes], abort_after_bytes: int | None = None, timeout: float = 60.0
) -> list[StreamResult]:
    return asyncio.run(stream_many(host, port, requests, abort_after_bytes, timeout))


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
