"""CPU per upstream read of the ways to read a streamed body, side by side in one run.

  python -m bench.read_paths

One process, no server: the fake upstream (tests/fake_upstream.py) sends tokens 1 ms apart (one read each)
and a bulk stream; each way reads the same streams, interleaved, three rounds.
- iter_bytes: `Response.iter_bytes()`, httpx's decoded body;
- iter_raw: `Response.iter_raw()`, the body as sent, no content decoding (what the relay reads);
- recv: the socket's `recv` alone, no HTTP parsing at all (the floor; not a way to read).
Every way but recv is httpx's public API.
"""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Callable, Iterator

import httpx

from bench.measured_servers import FakeUpstreamProcess

PACED_TOKENS = 400
BULK_TOKENS = 20_000


def main() -> None:
    upstream = FakeUpstreamProcess()
    transport = httpx.HTTPTransport()

    def open_stream(model: str) -> httpx.Response:
        request = httpx.Request(
            "POST",
            upstream.base_url + "/chat/completions",
            json={"model": model},
            extensions={"timeout": {"connect": 5, "read": 60, "write": 5, "pool": 5}},
        )
        raw = transport.handle_request(request)
        return httpx.Response(
            raw.status_code, headers=raw.headers, stream=raw.stream, extensions=raw.extensions
        )

    def via_iter_bytes(response: httpx.Response) -> Iterator[bytes]:
        return response.iter_bytes()

    def via_iter_raw(response: httpx.Response) -> Iterator[bytes]:
        return response.iter_raw()

    def via_recv(response: httpx.Response) -> Iterator[bytes]:
        sock: socket.socket = response.extensions["network_stream"].get_extra_info("socket")
        while True:
            data = sock.recv(65536)
            yield data
            if not data or data.endswith(b"0\r\n\r\n"):
                return

    ways: dict[str, Callable[[httpx.Response], Iterator[bytes]]] = {
        "iter_bytes": via_iter_bytes,
        "iter_raw": via_iter_raw,
        "recv": via_recv,
    }
    results: dict[tuple[str, str], list[float]] = {}
    try:
        for _ in range(3):
            for name, way in ways.items():
                for model, tokens in (
                    (f"paced:{PACED_TOKENS}:1", PACED_TOKENS),
                    (f"bulk:{BULK_TOKENS}", BULK_TOKENS),
                ):
                    response = open_stream(model)
                    reads = 0
                    started = time.process_time()
                    for _chunk in way(response):
                        reads += 1
                    cpu = time.process_time() - started
                    response.close()
                    kind = "paced" if model.startswith("paced") else "bulk"
                    per = reads if kind == "paced" else tokens
                    results.setdefault((name, kind), []).append(1e6 * cpu / per)
    finally:
        upstream.stop()
    print("| read path | CPU per paced read (µs) | CPU per bulk event (µs) |")
    print("|---|---|---|")
    for name in ways:
        paced = statistics.median(results[(name, "paced")])
        bulk = statistics.median(results[(name, "bulk")])
        print(f"| {name} | {paced:.1f} | {bulk:.2f} |")


if __name__ == "__main__":
    main()
