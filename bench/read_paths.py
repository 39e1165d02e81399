"""CPU per upstream read of the ways to read a streamed body, side by side in one run.

  python -m bench.read_paths

One process, no server: bench/upstream.py sends tokens 1 ms apart (one read each)
and a bulk stream; each way reads the same streams, interleaved, three rounds.
- httpx: `Response.iter_bytes()`, what the relay used before relay/raw_body.py;
- relay: relay.raw_body.raw_chunks, the socket and relay/chunked.py;
- recv: the socket's `recv` alone, no decoding (the floor).
The numbers chose the relay's read path (bench/results/profile-paced-tokens.txt).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator

import httpx

from bench.__main__ import Upstream
from relay.raw_body import raw_chunks

PACED_TOKENS = 400
BULK_TOKENS = 20_000


def main() -> None:
    upstream = Upstream()
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

    def via_httpx(response: httpx.Response) -> Iterator[bytes]:
        return response.iter_bytes()

    def via_relay(response: httpx.Response) -> Iterator[bytes]:
        chunks = raw_chunks(response, 60)
        assert chunks is not None
        return chunks

    def via_recv(response: httpx.Response) -> Iterator[bytes]:
        sock = response.extensions["network_stream"].get_extra_info("socket")
        while True:
            data = sock.recv(65536)
            yield data
            if not data or data.endswith(b"0\r\n\r\n"):
                return

    ways: dict[str, Callable[[httpx.Response], Iterator[bytes]]] = {
        "httpx": via_httpx,
        "relay": via_relay,
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
