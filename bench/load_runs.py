"""One load run of the benchmark: tests/load_client.py's streams, in a process of its own, summed up.

The benchmark calls `run_load`, which runs this module in a process of its own (on uvloop where
installed) so that the client's work is never counted as a server's:
  python -m bench.load_runs --url http://127.0.0.1:8080/api/chat --target relay --model paced:50:50 --streams 500
It prints one JSON object: failures, wrong replies, time to first byte and gaps between reads.
Every reply is checked byte for byte against what tests/fake_replies.py's load reply for the
model should become: the fake's own bytes when it is read directly, the relay's `/api/chat`
reply when it comes through the relay.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from tests.fake_replies import PACKET, load_reply, load_tokens
from tests.fake_upstream import fast_event_loop
from tests.load_client import StreamResult, chat_request, stream_in_turn, stream_many
from tests.relay_server import ROOT


def run_load(url: str, target: str, model: str, **options: Any) -> dict[str, Any]:
    """One run of this module with these options (`streams=100`: --streams 100); its summary."""
    command = [sys.executable, "-m", "bench.load_runs", "--url", url, "--target", target, "--model", model]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        command += [flag] if value is True else [flag, str(value)]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=True)
    return dict(json.loads(completed.stdout))


def expected_body(target: str, model: str) -> bytes:
    """What a client should read: the fake's events directly, or the relay's /api/chat text."""
    reply = load_reply(model)
    if reply is None:
        raise ValueError(f"{model!r} is not a load model name (tests/fake_replies.py, load_reply)")
    if target == "direct":
        return b"".join(step for step in reply.body if isinstance(step, bytes))
    return PACKET + "".join(load_tokens(tokens_of(model))).encode()


def tokens_of(model: str) -> int:
    """The tokens of a load model's reply: N of paced:N:MS and bulk:N, one for short."""
    return int(model.split(":")[1]) if ":" in model else 1


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summary(results: list[StreamResult], wall: float, expected: bytes, tokens: int) -> dict[str, Any]:
    failures = [r for r in results if r.error or r.status != 200]
    complete = [r for r in results if r not in failures and r.aborted_at is None]
    # Gaps between reads after the first (which holds the head or the model packet).
    gaps = [gap for r in complete for gap in r.gaps[1:]]
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
        # Which streams hung up on purpose, and when (time.monotonic()), by their index.
        "aborted_at": {str(i): r.aborted_at for i, r in enumerate(results) if r.aborted_at is not None},
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
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a stream may take")
    parser.add_argument("--body-bytes", type=int, default=0, help="pad each request body to this size")
    args = parser.parse_args()

    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    # A large body is one long string, as a base64 image in a message is.
    content = "bench" if args.body_bytes <= 100 else "A" * (args.body_bytes - 100)
    count = args.sequential or args.streams
    models = [f"{args.model}:{i}" if args.ids else args.model for i in range(count)]
    requests = [
        chat_request(
            host, port, {"model": model, "messages": [{"role": "user", "content": content}]}, path=parts.path
        )
        for model in models
    ]

    async def timed() -> tuple[list[StreamResult], float]:
        # Timed on the running loop: its start (signal handlers and all) is no stream's time.
        started = time.monotonic()
        if args.sequential:
            results = await stream_in_turn(host, port, requests, args.timeout)
        else:
            results = await stream_many(host, port, requests, args.abort_after, args.timeout)
        return results, time.monotonic() - started

    with asyncio.Runner(loop_factory=fast_event_loop()) as runner:
        results, wall = runner.run(timed())
    expected = expected_body(args.target, args.model)
    print(json.dumps(summary(results, wall, expected, tokens_of(args.model))))


if __name__ == "__main__":
    main()
