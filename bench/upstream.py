"""A fast fake OpenAI upstream for the benchmark: asyncio protocols on uvloop, paced by shared tickers.

tests/fake_upstream.py can produce any byte sequence, one coroutine per stream;
here the point is to cost as little as possible, so that on a 2-core machine the
relay, not the fake, is what gets measured. Every stream with the same pace is
advanced by one timer (one wake-up per tick for all of them), and every reply's
bytes are built once.

The model name chooses the reply:
  short                  the role chunk, one token, [DONE], at once
  paced:N:MS[:ID]        the role chunk at once, then N tokens MS milliseconds apart
  bulk:N                 N tokens as fast as the connection takes them
  error                  a 429 with an OpenAI error body
`GET /stats` answers JSON: open connections, and per ID when its stream was closed
by the client (time.monotonic(), comparable across processes on one machine).

Run: python -m bench.upstream --port 8081
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from functools import cache
from typing import cast

MODEL = "gpt-bench"


def event(payload: bytes) -> bytes:
    data = b"data: " + payload + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


def token_text(index: int) -> str:
    return f" t{index}"


@cache
def token_event(index: int) -> bytes:
    # The shape and size of a real OpenAI chunk (about 200 bytes).
    payload = (
        '{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,'
        f'"model":"{MODEL}","system_fingerprint":"fp_bench","choices":[{{"index":0,'
        f'"delta":{{"content":"{token_text(index)}"}},"logprobs":null,"finish_reason":null}}]}}'
    )
    return event(payload.encode())


ROLE = event(
    b'{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"'
    + MODEL.encode()
    + b'","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}'
)
FINISH = (
    event(
        b'{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"'
        + MODEL.encode()
        + b'","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}'
    )
    + event(b"[DONE]")
    + b"0\r\n\r\n"
)
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
ERROR_BODY = b'{"error":{"message":"Rate limit reached (bench)","type":"requests","code":"rate_limit"}}'
ERROR = (
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    % (
        len(ERROR_BODY),
        ERROR_BODY,
    )
)


@cache
def bulk_body(tokens: int) -> bytes:
    return HEAD + ROLE + b"".join(token_event(i) for i in range(tokens)) + FINISH


def expected_text(tokens: int) -> str:
    """What a client of the relay should receive after the model packet."""
    return "".join(token_text(i) for i in range(tokens))


class Stats:
    def __init__(self) -> None:
        self.open = 0
        self.closed_by_client: dict[str, float] = {}


class Ticker:
    """Advances every paced stream of one pace by one token per tick."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.streams: set[Connection] = set()
        asyncio.get_running_loop().call_later(interval, self.tick)

    def tick(self) -> None:
        for stream in list(self.streams):
            stream.send_next_token()
        asyncio.get_running_loop().call_later(self.interval, self.tick)


class Connection(asyncio.Protocol):
    tickers: dict[float, Ticker] = {}  # noqa: RUF012 - one set per server process

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.remaining = 0
        self.sent = 0
        self.stream_id: str | None = None
        self.ticker: Ticker | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.stats.open += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.open -= 1
        if self.ticker is not None:
            self.ticker.streams.discard(self)
            if self.stream_id is not None:
                self.stats.closed_by_client[self.stream_id] = time.monotonic()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self.answer(head.split(" ", 2)[1], body)

    def answer(self, path: str, body: bytes) -> None:
        transport = self.transport
        assert transport is not None
        if path.endswith("/stats"):
            stats = json.dumps(
                {
                    "open": self.stats.open,
                    "closed_by_client": self.stats.closed_by_client,
                }
            ).encode()
            transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(stats), stats))
            return
        model = json.loads(body or b"{}").get("model", "short")
        kind, *args = model.split(":")
        if kind == "error":
            transport.write(ERROR)
        elif kind == "bulk":
            transport.write(bulk_body(int(args[0])))
        elif kind == "paced":
            self.remaining = int(args[0])
            self.sent = 0
            self.stream_id = args[2] if len(args) > 2 else None
            interval = int(args[1]) / 1000
            self.ticker = self.tickers.get(interval) or self.tickers.setdefault(interval, Ticker(interval))
            transport.write(HEAD + ROLE)
            self.ticker.streams.add(self)
        else:
            transport.write(HEAD + ROLE + token_event(0) + FINISH)

    def send_next_token(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(token_event(self.sent))
        self.sent += 1
        if self.sent >= self.remaining:
            transport.write(FINISH)
            if self.ticker is not None:
                self.ticker.streams.discard(self)
            self.ticker = None


async def serve(host: str, port: int) -> None:
    stats = Stats()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(stats), host, port, backlog=4096)
    print(f"ready on {host}:{server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


def use_uvloop() -> None:
    """uvloop's event loop where installed (requirements-dev.txt has it): the benchmark's own processes cost less."""
    try:
        import uvloop
    except ImportError:
        return
    uvloop.install()


def main() -> None:
    parser = argparse.ArgumentParser(description="the benchmark's fake OpenAI upstream")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    use_uvloop()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
