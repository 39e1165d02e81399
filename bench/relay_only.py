"""The measures of the current relay alone: what counting limits costs, memory per stream, streams
aborted mid-way, and a soak. All but the aborted streams start a relay of their own, so that only
their own requests are in it.
"""

from __future__ import annotations

import shutil
import statistics
import time
from typing import Any

from bench.load_runs import run_load
from bench.measured_servers import Servers, pids_of
from bench.process_tree import PeakRSS, cpu_seconds, rss_mb, threads_and_files
from bench.side_by_side import PACE_MS, median, scaled
from relay.upstream.pools import KEEPALIVE_SECONDS, SWEEP_SECONDS
from tests.fake_replies import PACKET, load_tokens
from tests.redis_server import Redis


def limits(servers: Servers, rounds: int, quick: bool) -> dict[str, Any]:
    """The cost of counting per-caller limits, off and on (in process, and in Redis), side by side.

    Relays of their own, with limits no request reaches; requests one after another, so that
    each relay's CPU per request and added first byte are its own. Redis where redis-server is.
    """
    count = 50 if quick else 300
    on = {"RATE_LIMIT_REQUESTS": "1000000/minute", "RATE_LIMIT_TOKENS": "1000000000/day"}
    store = Redis().start() if shutil.which("redis-server") else None
    variants = {"off": {}, "in_process": on}
    if store is not None:
        variants["redis"] = {**on, "REDIS_URL": store.url}
    relays = {name: servers.start_relay(extra=extra) for name, extra in variants.items()}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in relays}
    try:
        for relay in relays.values():
            run_load(relay.url + "/api/chat", "relay", "short", sequential=20)  # warm
        for _ in range(rounds):
            for name, relay in relays.items():
                pids = pids_of(relay)
                before = cpu_seconds(pids)
                result = run_load(relay.url + "/api/chat", "relay", "short", sequential=count)
                result["cpu_ms_per_request"] = 1000 * (cpu_seconds(pids) - before) / count
                runs[name].append(result)
    finally:
        for relay in relays.values():
            relay.stop()
        if store is not None:
            store.stop()
    return {
        "requests": count,
        **{
            f"{name}_{figure}": value
            for name, results in runs.items()
            for figure, value in (
                ("failures", sum(r["failures"] + r["wrong"] for r in results)),
                ("cpu_ms_per_request", median([r["cpu_ms_per_request"] for r in results])),
                ("ttfb_p50_ms", scaled(1000, [r["ttfb_p50"] for r in results])),
                ("ttfb_p99_ms", scaled(1000, [r["ttfb_p99"] for r in results])),
            )
        },
    }


def memory(servers: Servers, quick: bool) -> dict[str, Any]:
    """RSS per concurrent stream, with small request bodies and with bodies of 1 MiB.

    A relay of its own, so that only these streams are in it: its idle RSS first, then the
    peak while all the streams are open (each a paced reply of two seconds).
    """
    streams = 50 if quick else 200
    figures: dict[str, Any] = {"streams": streams}
    relay = servers.start_relay()
    try:
        pids = pids_of(relay)
        url = relay.url + "/api/chat"
        run_load(url, "relay", "paced:5:10", streams=20)  # warm: pools, imports
        for name, size in (("small", 0), ("1mib", 1024 * 1024)):
            idle = rss_mb(pids)
            with PeakRSS(pids) as peak:
                result = run_load(url, "relay", f"paced:40:{PACE_MS}", streams=streams, body_bytes=size)
            figures[f"{name}_failures"] = result["failures"] + result["wrong"]
            figures[f"{name}_idle_mb"] = idle
            figures[f"{name}_peak_mb"] = peak.peak
            figures[f"{name}_mb_per_stream"] = (peak.peak - idle) / streams
    finally:
        relay.stop()
    return figures


def aborted(servers: Servers) -> dict[str, Any]:
    """Streams whose clients hang up after three tokens: when the relay let go of each upstream."""
    streams = 100
    model = f"paced:400:{PACE_MS}"
    before = servers.upstream.stats()["closed_by_client"]
    result = run_load(
        servers.relay_url, "relay", model, streams=streams, ids=True,
        abort_after=len(PACKET) + len("".join(load_tokens(3))),
    )  # fmt: skip
    time.sleep(4 * PACE_MS / 1000 + 0.5)
    closed = servers.upstream.stats()["closed_by_client"]
    lags = []
    for index, aborted_at in result["aborted_at"].items():
        stream = f"{model}:{index}"  # each stream's model names it (ids=True)
        if stream in closed and closed[stream] != before.get(stream):
            lags.append(closed[stream] - aborted_at)
    return {
        "streams": streams,
        "aborted": len(result["aborted_at"]),
        "upstreams_freed": len(lags),
        "lag_p50_ms": 1000 * statistics.median(lags) if lags else None,
        "lag_max_ms": 1000 * max(lags) if lags else None,
        "token_interval_ms": PACE_MS,
    }


def soak(servers: Servers, quick: bool) -> dict[str, Any]:
    """A relay of its own, warmed up with one round of the mix; then the mix, many times."""
    total = 2_000 if quick else 20_000
    batch = 200
    mix = ["short", "paced:10:10", "bulk:200", "error", "paced:100:20"]
    relay = servers.start_relay()
    pids = pids_of(relay)
    url = relay.url + "/api/chat"

    def run_mix(count: int) -> int:
        failures = sent = 0
        while sent < count:
            model = mix[(sent // batch) % len(mix)]
            abort = 60 if model == "paced:100:20" else None
            options: dict[str, Any] = {"streams": batch} | ({"abort_after": abort} if abort else {})
            result = run_load(url, "relay", model, **options)
            # The 429s are the upstream's error relayed: expected, not failures.
            if model != "error":
                failures += result["failures"] + result["wrong"]
            sent += batch
        return failures

    def settle() -> None:
        # Past the keep-alive expiry, the next requests let each worker close the pools
        # a burst filled (relay/upstream/pools.py), as a live relay's next requests would.
        time.sleep(KEEPALIVE_SECONDS + SWEEP_SECONDS + 0.5)
        run_load(url, "relay", "short", sequential=10)

    try:
        run_mix(batch * len(mix))  # warm: pools, imports, the allocator
        settle()
        rss_before = rss_mb(pids)
        threads_before, files_before = threads_and_files(pids)
        open_before = servers.upstream.stats()["open"]
        started = time.monotonic()
        failures = run_mix(total)
        seconds = time.monotonic() - started
        settle()
        threads_after, files_after = threads_and_files(pids)
        rss_after = rss_mb(pids)
        open_after = servers.upstream.stats()["open"]
    finally:
        relay.stop()
    return {
        "requests": total,
        "seconds": seconds,
        "settle_s": KEEPALIVE_SECONDS + SWEEP_SECONDS + 0.5,
        "failures": failures,
        "rss_before_mb": rss_before,
        "rss_after_mb": rss_after,
        "threads_before": threads_before,
        "threads_after": threads_after,
        "files_before": files_before,
        "files_after": files_after,
        # All open upstream connections (the main relay's idle ones do not change meanwhile).
        "upstream_open_before": open_before,
        "upstream_open_after": open_after,
    }
