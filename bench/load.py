"""The benchmark's load client: many concurrent chat streams on asyncio protocols (uvloop), each timed.

Run in a process of its own, so that its work is not counted as the relay's:
  python -m bench.load --url http://127.0.0.1:8080/api/chat --target relay --model paced:50:50 --streams 500
It prints one JSON object: failures, wrong replies, time to first byte and gaps between reads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

from bench.upstream import HEAD, MODEL, bulk_body, expected_text, use_uvloop


@dataclass
class Result:
    status: int = 0
    body: bytes = b""
    first_byte: float | None = None
    reads: list[float] = field(default_factory=list)
    error: str | None = None
    aborted_at: float | None = None
    stream_id: str | None = None


class Stream(asyncio.Protocol):
    def __init__(self, request: bytes, done: asyncio.Future[Result], abort_after: int | None, result: Result):
        self.request = request
        self.done = done
        self.abort_after = abort_after
        self.result = result
        self.head = b""
        self.raw = bytearray()
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.sent_at = time.monotonic()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if not self.result.status:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            self.result.status = int(self.head.split(b" ", 2)[1])
            data = self.head[end + 4 :]
            if not data:
                return
        self.raw += data
        if self.result.first_byte is None:
            self.result.first_byte = now - self.sent_at
        self.result.reads.append(now)
        if self.abort_after is not None and len(self.raw) >= self.abort_after:
            self.result.aborted_at = time.monotonic()
            self.finish()
        elif self.raw.endswith(b"\r\n0\r\n\r\n") or self.raw == b"0\r\n\r\n":
            self.finish()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.result.error = f"connection lost: {exc!r}"
            self.done.set_result(self.result)

    def finish(self) -> None:
        try:
            self.result.body = dechunk(bytes(self.raw))
        except ValueError as error:
            self.result.error = f"bad chunking: {error}"
        if self.transport is not None:
            self.transport.close()
        if not self.done.done():
            self.done.set_result(self.result)


def dechunk(raw: bytes) -> bytes:
    body = bytearray()
    position = 0
    while position < len(raw):
        end = raw.index(b"\r\n", position)
        size = int(raw[position:end], 16)
        if size == 0:
            break
        body += raw[end + 2 : end + 2 + size]
        position = end + 2 + size + 2
    return bytes(body)


def build_request(url: str, model: str, body_bytes: int = 0) -> bytes:
    parts = urlsplit(url)
    # A large body is one long string, as a base64 image in a message is.
    content = "bench" if body_bytes <= 100 else "A" * (body_bytes - 100)
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": content}]}).encode()
    lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: application/json"]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def one(
    url: str,
    model: str,
    abort_after: int | None,
    timeout: float,
    stream_id: str | None,
    *,
    body_bytes: int = 0,
) -> Result:
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    result = Result(stream_id=stream_id)
    done: asyncio.Future[Result] = loop.create_future()
    request = build_request(url, model, body_bytes)
    try:
        await loop.create_connection(
            lambda: Stream(request, done, abort_after, result),
            parts.hostname or "127.0.0.1",
            parts.port or 80,
        )
        return await asyncio.wait_for(done, timeout)
    except (OSError, TimeoutError) as error:
        result.error = repr(error)
        return result


def expected_body(target: str, tokens: int) -> bytes:
    if target == "direct":
        return dechunk(bulk_body(tokens)[len(HEAD) :])
    return ('{"model":"' + MODEL + '"}' + expected_text(tokens)).encode()


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(args: argparse.Namespace) -> dict[str, object]:
    tokens = int(args.model.split(":")[1]) if ":" in args.model else 1
    started = time.monotonic()
    if args.sequential:
        results = [await one(args.url, args.model, None, args.timeout, None) for _ in range(args.sequential)]
    else:
        models = [f"{args.model}:{i}" if args.ids else args.model for i in range(args.streams)]
        results = list(
            await asyncio.gather(
                *(
                    one(args.url, model, args.abort_after, args.timeout, str(i), body_bytes=args.body_bytes)
                    for i, model in enumerate(models)
                )
            )
        )
    wall = time.monotonic() - started
    expected = expected_body(args.target, tokens)
    failures = [r for r in results if r.error or r.status != 200]
    complete = [r for r in results if r not in failures and r.aborted_at is None]
    gaps = [
        later - earlier for r in complete for earlier, later in zip(r.reads[1:], r.reads[2:], strict=False)
    ]
    ttfb = [r.first_byte for r in results if r.first_byte is not None]
    wrong = [r for r in complete if r.body != expected]
    return {
        "streams": len(results),
        "wall": wall,
        "failures": len(failures),
        "failure_examples": [r.error or r.status for r in failures[:3]],
        "wrong": len(wrong),
        # The end of the first few wrong replies, where a relay's note would be.
        "wrong_examples": [r.body[-160:].decode(errors="replace") for r in wrong[:3]],
        "ttfb_p50": percentile(ttfb, 0.5),
        "ttfb_p99": percentile(ttfb, 0.99),
        "gap_p99": percentile(gaps, 0.99),
        "aborted_at": {r.stream_id: r.aborted_at for r in results if r.aborted_at is not None},
        "tokens": tokens * len(complete),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--target", choices=["relay", "direct"], required=True)
    parser.add_argument("--model", default="short")
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--sequential", type=int, default=0, help="this many requests one after another")
    parser.add_argument("--abort-after", type=int, default=None, help="hang up after this many body bytes")
    parser.add_argument("--ids", action="store_true", help="give each stream an ID in its model name")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--body-bytes", type=int, default=0, help="pad each request body to this size")
    args = parser.parse_args()
    use_uvloop()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
