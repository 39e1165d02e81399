"""The benchmark: the relay as deployed against the fake upstream read directly, side by side.

  ./dev bench                  the full run (about eight minutes on 2 cores)
  ./dev bench --quick          a smoke run with small numbers
  ./dev bench --before REV     also the relay as it was at git revision REV, side by side

It starts the fake upstream (tests/fake_upstream.py), the function with
deploy/server.env (the settings every deployment ships), and the same server
running bench/passthrough.py (the floor: what serving costs before any relay code
runs); drives them with tests/load_client.py from a process of its own
(bench/load_runs.py), and writes
bench/results/latest.{md,json,png}. Timings are medians of interleaved rounds,
and each relay figure sits next to the same measurement made on the upstream
directly and on the floor, since a shared machine is noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.decoders import ratios as decoder_ratios
from bench.load_runs import run_load
from relay.upstream.pools import KEEPALIVE_SECONDS, SWEEP_SECONDS
from tests.fake_replies import PACKET, load_tokens
from tests.redis_server import Redis
from tests.relay_server import ROOT, RelayServer, framework_command, shipped_server_env

RESULTS = ROOT / "bench" / "results"
PACE_MS = 50
BENCH_THREADS = 1000
TOKENS = 50
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The same server with a function that passes the upstream's bytes through (bench/passthrough.py).
FLOOR_COMMAND = framework_command(ROOT / "bench" / "passthrough.py")


class FakeUpstreamProcess:
    """`python -m tests.fake_upstream` on a free port, in a process of its own."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_upstream", "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "fake upstream listening on http://127.0.0.1:PORT/v1"
        if not line:
            raise RuntimeError(f"the fake upstream did not start: it exited with {self.process.wait()}")
        self.base_url = line.split()[-1]

    def stats(self) -> dict[str, Any]:
        """Open connections, and per model when a client last closed its stream mid-way."""
        return dict(httpx.get(self.base_url + "/stats", timeout=10).json())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def processes(master: int) -> list[int]:
    """The relay's master and its worker processes."""
    pids = [master]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                pids.append(int(entry.name))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLOCK_TICKS


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def threads_and_files(pids: list[int]) -> tuple[int, int]:
    threads = files = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                threads += int(line.split()[1])
        files += len(list(Path(f"/proc/{pid}/fd").iterdir()))
    return threads, files


class PeakRSS:
    """Samples the relay's total RSS every 50 ms while a phase runs."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak = rss_mb(pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb(self.pids))

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


class Checkout:
    """The repository at another revision, in a worktree of its own, to run the relay as it was."""

    def __init__(self, revision: str) -> None:
        self.revision = revision
        self.path = Path(tempfile.mkdtemp(prefix="bench-before-"))
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(self.path), revision],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip

    def remove(self) -> None:
        subprocess.run(["git", "worktree", "remove", "--force", str(self.path)], cwd=ROOT, check=False)


class Bench:
    def __init__(self, rounds: int, quick: bool, before: str | None = None) -> None:
        self.rounds = rounds
        self.quick = quick
        self.upstream = FakeUpstreamProcess()
        self.relay = self.start_relay()
        self.pids = processes(self.relay.process.pid)  # type: ignore[union-attr]
        self.relay_url = self.relay.url + "/api/chat"
        self.direct_url = self.upstream.base_url + "/chat/completions"
        self.floor = self.start_relay(FLOOR_COMMAND)
        self.floor_url = self.floor.url + "/api/chat"
        self.servers = {self.relay_url: self.pids, self.floor_url: processes(self.floor.process.pid)}  # type: ignore[union-attr]
        self.checkout = Checkout(before) if before else None
        self.before: RelayServer | None = None
        if self.checkout is not None:
            source = self.checkout.path
            self.before = self.start_relay(framework_command(source / "main.py"), cwd=source)
            self.before_url = self.before.url + "/api/chat"
            self.servers[self.before_url] = processes(self.before.process.pid)  # type: ignore[union-attr]

    def start_relay(
        self, command: list[str] | None = None, cwd: Path = ROOT, extra: dict[str, str] | None = None
    ) -> RelayServer:
        env = {
            **shipped_server_env(),
            # Room for the 1,000-stream phase in one instance (deployments take fewer each:
            # deploy/server.env), and the same figures as earlier runs for the comparison.
            "THREADS": str(BENCH_THREADS),
            "MAX_REQUESTS_PER_CALLER": str(BENCH_THREADS),  # the load client is one caller
            "OPENAI_BASE_URL": self.upstream.base_url,
            "OPENAI_API_KEY": "sk-bench-7f3a9c1e5b2d",
            **(extra or {}),
        }
        relay = RelayServer(env, command, cwd=cwd).start()
        time.sleep(1.0)  # workers booted
        return relay

    def stop(self) -> None:
        self.relay.stop()
        self.floor.stop()
        if self.before is not None:
            self.before.stop()
        if self.checkout is not None:
            self.checkout.remove()
        self.upstream.stop()

    def three(
        self, run: Callable[[str, str], dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """Interleaved rounds: direct, pass-through, relay (and the relay before), direct, ..."""
        direct, floor, relayed = [], [], []
        self.before_runs: list[dict[str, Any]] = []
        for _ in range(self.rounds):
            direct.append(run(self.direct_url, "direct"))
            floor.append(run(self.floor_url, "relay"))
            relayed.append(run(self.relay_url, "relay"))
            if self.before is not None:
                self.before_runs.append(run(self.before_url, "relay"))
        return direct, floor, relayed

    def measured(self, url: str, target: str, model: str, **options: Any) -> dict[str, Any]:
        """One load run, with the server's CPU time and peak RSS while it ran (for the relay and the floor)."""
        pids = self.servers.get(url, [])
        before = cpu_seconds(pids)
        with PeakRSS(pids) as rss:
            result = run_load(url, target, model, **options)
        result["relay_cpu"] = cpu_seconds(pids) - before
        result["peak_rss_mb"] = rss.peak
        return result

    def warm_up(self) -> None:
        run_load(self.relay_url, "relay", f"paced:5:{PACE_MS}", streams=200)

    def single_stream(self) -> dict[str, Any]:
        count = 100 if self.quick else 300
        direct, floor, relayed = self.three(
            lambda url, target: run_load(url, target, "short", sequential=count)
        )
        return {
            f"{source}_{name}_ms": scaled(1000, [r[f"ttfb_{name}"] for r in runs])
            for source, runs in (("direct", direct), ("floor", floor), ("relay", relayed), *self._before())
            for name in ("p50", "p99")
        }

    def _before(self) -> list[tuple[str, list[dict[str, Any]]]]:
        return [("before", self.before_runs)] if self.before is not None else []

    def bulk(self) -> dict[str, Any]:
        tokens = 20_000 if self.quick else 100_000
        direct, floor, relayed = self.three(lambda url, target: self.measured(url, target, f"bulk:{tokens}"))
        return {
            "tokens": tokens,
            "failures": sum(r["failures"] + r["wrong"] for r in direct + relayed),
            "direct_wall_s": median([r["wall"] for r in direct]),
            "floor_wall_s": median([r["wall"] for r in floor]),
            "floor_cpu_us_per_chunk": scaled(1e6, [r["relay_cpu"] / tokens for r in floor]),
            "relay_wall_s": median([r["wall"] for r in relayed]),
            "relay_cpu_us_per_chunk": scaled(1e6, [r["relay_cpu"] / tokens for r in relayed]),
            **{
                f"{source}_{name}": value
                for source, runs in self._before()
                for name, value in (
                    ("wall_s", median([r["wall"] for r in runs])),
                    ("cpu_us_per_chunk", scaled(1e6, [r["relay_cpu"] / tokens for r in runs])),
                )
            },
        }

    def paced(self, streams: int) -> dict[str, Any]:
        model = f"paced:{TOKENS}:{PACE_MS}"
        direct, floor, relayed = self.three(
            lambda url, target: self.measured(url, target, model, streams=streams)
        )
        return {
            "streams": streams,
            "direct_wrong": sum(r["wrong"] for r in direct),
            "relay_wrong": sum(r["wrong"] for r in relayed),
            "relay_wrong_examples": [example for r in relayed for example in r["wrong_examples"]][:3],
            **paced_figures("direct", direct),
            **paced_figures("floor", floor),
            **paced_figures("relay", relayed),
            **{
                key: value
                for source, runs in self._before()
                for key, value in paced_figures(source, runs).items()
            },
        }

    def limits(self) -> dict[str, Any]:
        """The cost of counting per-caller limits, off and on (in process, and in Redis), side by side.

        Relays of their own, with limits no request reaches; requests one after another, so that
        each relay's CPU per request and added first byte are its own. Redis where redis-server is.
        """
        count = 50 if self.quick else 300
        on = {"RATE_LIMIT_REQUESTS": "1000000/minute", "RATE_LIMIT_TOKENS": "1000000000/day"}
        store = Redis().start() if shutil.which("redis-server") else None
        variants = {"off": {}, "in_process": on}
        if store is not None:
            variants["redis"] = {**on, "REDIS_URL": store.url}
        relays = {name: self.start_relay(extra=extra) for name, extra in variants.items()}
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in relays}
        try:
            for relay in relays.values():
                run_load(relay.url + "/api/chat", "relay", "short", sequential=20)  # warm
            for _ in range(self.rounds):
                for name, relay in relays.items():
                    pids = processes(relay.process.pid)  # type: ignore[union-attr]
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

    def memory(self) -> dict[str, Any]:
        """RSS per concurrent stream, with small request bodies and with bodies of 1 MiB.

        A relay of its own, so that only these streams are in it: its idle RSS first, then the
        peak while all the streams are open (each a paced reply of two seconds).
        """
        streams = 50 if self.quick else 200
        figures: dict[str, Any] = {"streams": streams}
        relay = self.start_relay()
        try:
            pids = processes(relay.process.pid)  # type: ignore[union-attr]
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

    def aborted(self) -> dict[str, Any]:
        """Streams whose clients hang up after three tokens: when the relay let go of each upstream."""
        streams = 100
        model = f"paced:400:{PACE_MS}"
        before = self.upstream.stats()["closed_by_client"]
        result = run_load(
            self.relay_url, "relay", model, streams=streams, ids=True,
            abort_after=len(PACKET) + len("".join(load_tokens(3))),
        )  # fmt: skip
        time.sleep(4 * PACE_MS / 1000 + 0.5)
        closed = self.upstream.stats()["closed_by_client"]
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

    def soak(self) -> dict[str, Any]:
        """A relay of its own, warmed up with one round of the mix; then the mix, many times."""
        total = 2_000 if self.quick else 20_000
        batch = 200
        mix = ["short", "paced:10:10", "bulk:200", "error", "paced:100:20"]
        relay = self.start_relay()
        pids = processes(relay.process.pid)  # type: ignore[union-attr]
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
            open_before = self.upstream.stats()["open"]
            started = time.monotonic()
            failures = run_mix(total)
            seconds = time.monotonic() - started
            settle()
            threads_after, files_after = threads_and_files(pids)
            rss_after = rss_mb(pids)
            open_after = self.upstream.stats()["open"]
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


def scaled(factor: float, values: list[float]) -> float | None:
    """The median of the rounds, in other units (1000: seconds to milliseconds)."""
    middle = median(list(values))
    return None if middle is None else factor * middle


def paced_figures(source: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One source's figures for a paced phase: medians over the rounds, failures summed.

    CPU and memory only for a server (the floor, the relay): the fake read directly has none measured.
    """
    figures = {
        f"{source}_failures": sum(r["failures"] for r in runs),
        f"{source}_failure_examples": [example for r in runs for example in r["failure_examples"]][:3],
        f"{source}_ttfb_p50_ms": scaled(1000, [r["ttfb_p50"] for r in runs]),
        f"{source}_ttfb_p99_ms": scaled(1000, [r["ttfb_p99"] for r in runs]),
        f"{source}_gap_p99_ms": scaled(1000, [r["gap_p99"] for r in runs]),
    }
    if source != "direct":
        figures[f"{source}_cpu_us_per_token"] = scaled(
            1e6, [r["relay_cpu"] / max(r["tokens"], 1) for r in runs]
        )
        figures[f"{source}_peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    return figures


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} × {cpu}, Linux {platform.release()}, Python {platform.python_version()}"


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(results: dict[str, Any]) -> str:
    single, bulk, paced, abort, soak = (
        results["single_stream"], results["bulk"], results["paced"], results["aborted"], results["soak"]
    )  # fmt: skip
    before = results.get("before")
    servers = ["floor", "relay", *(["before"] if before else [])]
    header = "| measure | upstream read directly | the floor: same server, pass-through | through the relay |"
    rule = "|---|---|---|---|"
    if before:
        header += f" the relay before ({before}) |"
        rule += "---|"

    def row(measure: str, direct: str, cells: dict[str, str], target: str = "") -> str:
        return (
            f"| {measure} | {direct} | "
            + " | ".join(cells.get(name, "") for name in servers)
            + f" | {target} |"
        )

    def added(source: str, name: str) -> float | None:
        value, direct = single.get(f"{source}_{name}_ms"), single.get(f"direct_{name}_ms")
        return None if value is None or direct is None else value - direct

    lines = [
        f"Measured {results['date']} on {results['machine']}; the relay as deployed "
        f"(`deploy/server.env`: {results['server']}); medians of {results['rounds']} interleaved rounds. "
        "The floor is the same server running bench/passthrough.py, a function that passes the "
        "upstream's bytes through untouched: what serving costs before any relay code runs."
        + (f" The relay before is git revision {before}, run the same way beside it." if before else ""),
        "",
        header + " target |",
        rule + "---|",
        row(
            "time to first byte, 1 stream, p50 / p99 (ms)",
            f"{fmt(single['direct_p50_ms'], 2)} / {fmt(single['direct_p99_ms'], 2)}",
            {
                name: f"{fmt(single.get(f'{name}_p50_ms'), 2)} / {fmt(single.get(f'{name}_p99_ms'), 2)} "
                f"(added {fmt(added(name, 'p50'), 2)} / {fmt(added(name, 'p99'), 2)})"
                for name in servers
            },
            "added ≤ 0.5 p50",
        ),
        row(
            f"{bulk['tokens']:,}-token stream, no pacing: wall (s)",
            fmt(bulk["direct_wall_s"], 3),
            {name: fmt(bulk.get(f"{name}_wall_s"), 3) for name in servers},
        ),
        row(
            "same: server CPU per upstream chunk (µs)",
            "",
            {name: fmt(bulk.get(f"{name}_cpu_us_per_chunk"), 2) for name in servers},
            "≤ 2",
        ),
    ]
    targets = {100: ("", ""), 500: ("≤ 100", "≤ 60"), 1000: ("≤ 500", "≤ 100")}
    for paced_row in paced:
        r = paced_row
        streams = r["streams"]
        ttfb_target, gap_target = targets.get(streams, ("", ""))
        wrong = {
            name: f"{r.get(f'{name}_failures')} / "
            + ("not checked" if name == "floor" else str(r.get(f"{name}_wrong", "–")))
            for name in servers
        }
        lines += [
            row(
                f"{streams} paced streams: failures / wrong bytes",
                f"{r['direct_failures']} / {r['direct_wrong']}",
                wrong,
                "0 / 0",
            ),
            row(
                f"{streams} paced: TTFB p50 / p99 (ms)",
                f"{fmt(r['direct_ttfb_p50_ms'])} / {fmt(r['direct_ttfb_p99_ms'])}",
                {
                    name: f"{fmt(r.get(f'{name}_ttfb_p50_ms'))} / {fmt(r.get(f'{name}_ttfb_p99_ms'))}"
                    for name in servers
                },
                f"p99 {ttfb_target}",
            ),
            row(
                f"{streams} paced: gap p99 (ms; tokens {PACE_MS} ms apart)",
                fmt(r["direct_gap_p99_ms"]),
                {name: fmt(r.get(f"{name}_gap_p99_ms")) for name in servers},
                gap_target,
            ),
            row(
                f"{streams} paced: server CPU per token (µs) / peak RSS, all processes (MB)",
                "",
                {
                    name: f"{fmt(r.get(f'{name}_cpu_us_per_token'))} / {fmt(r.get(f'{name}_peak_rss_mb'), 0)}"
                    for name in servers
                },
                "≤ 1.5 × the floor's CPU" if streams == 1000 else "",
            ),
        ]
    decoders = results.get("decoders")
    if decoders:
        lines.append(
            row(
                "SSE decoding at 4 × the input: cost ratio, events in one read / one line in 100-byte reads",
                "",
                {
                    "relay": f"{decoders['events_in_one_read_x4']:.1f} / {decoders['one_line_in_100_byte_reads_x4']:.1f}"
                },
                "about 4 (linear; quadratic: 16)",
            )
        )
    counted = results.get("limits")
    if counted:
        for name, label in (
            ("off", "limits off"),
            ("in_process", "limits on, in process"),
            ("redis", "limits on, in Redis"),
        ):
            if f"{name}_failures" in counted:
                lines.append(
                    row(
                        f"{counted['requests']} requests one at a time, {label}: CPU per request (ms); TTFB p50 / p99 (ms)",
                        "",
                        {
                            "relay": f"{fmt(counted[f'{name}_cpu_ms_per_request'], 2)}; {fmt(counted[f'{name}_ttfb_p50_ms'], 2)} / {fmt(counted[f'{name}_ttfb_p99_ms'], 2)}"
                        },
                        "failures: " + str(counted[f"{name}_failures"]),
                    )
                )
    memory = results.get("memory")
    if memory:
        lines += [
            row(
                f"memory: {memory['streams']} concurrent streams, small bodies: RSS idle → peak (MB); per stream",
                "",
                {
                    "relay": f"{fmt(memory['small_idle_mb'], 0)} → {fmt(memory['small_peak_mb'], 0)}; {fmt(memory['small_mb_per_stream'], 2)}"
                },
            ),
            row(
                f"memory: {memory['streams']} concurrent streams, 1 MiB bodies: RSS idle → peak (MB); per stream",
                "",
                {
                    "relay": f"{fmt(memory['1mib_idle_mb'], 0)} → {fmt(memory['1mib_peak_mb'], 0)}; {fmt(memory['1mib_mb_per_stream'], 2)}"
                },
                "sets --memory and --concurrency",
            ),
        ]
    lines += [
        row(
            f"{abort['streams']} streams aborted mid-way: upstreams freed; lag p50 / max (ms)",
            "",
            {
                "relay": f"{abort['upstreams_freed']} of {abort['aborted']}; {fmt(abort['lag_p50_ms'])} / {fmt(abort['lag_max_ms'])}"
            },
            f"all, ≤ {2 * PACE_MS}",
        ),
        row(
            f"soak: {soak['requests']:,} mixed requests in {fmt(soak['seconds'], 0)} s: failures",
            "",
            {"relay": str(soak["failures"])},
            "0",
        ),
        row(
            "soak: RSS before → after (MB)",
            "",
            {"relay": f"{fmt(soak['rss_before_mb'], 0)} → {fmt(soak['rss_after_mb'], 0)}"},
            "< +10 %",
        ),
        row(
            f"soak: threads, open files, upstream connections before → after (each settled: {soak['settle_s']:.1f} s idle, then 10 requests)",
            "",
            {
                "relay": f"{soak['threads_before']} → {soak['threads_after']}, {soak['files_before']} → {soak['files_after']}, "
                f"{soak['upstream_open_before']} → {soak['upstream_open_after']}"
            },
            "none left behind",
        ),
    ]
    return "\n".join(lines) + "\n"


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paced = results["paced"]
    labels = [str(row["streams"]) for row in paced]
    positions = range(len(paced))
    figure, (ttfb, gap, cpu) = plt.subplots(1, 3, figsize=(13, 4))
    for axis, key, title in (
        (ttfb, "ttfb_p99_ms", "TTFB p99 (ms)"),
        (gap, "gap_p99_ms", "gap between tokens p99 (ms)"),
    ):
        for offset, source, label in (
            (-0.27, "direct", "upstream directly"),
            (0.0, "floor", "same server, pass-through"),
            (0.27, "relay", "through the relay"),
        ):
            axis.bar(
                [p + offset for p in positions],
                [row[f"{source}_{key}"] or 0 for row in paced],
                0.27,
                label=label,
            )
        axis.set_xticks(list(positions), labels)
        axis.set_xlabel("concurrent paced streams")
        axis.set_title(title)
        axis.legend()
    cpu.bar(
        [p - 0.2 for p in positions],
        [row["floor_cpu_us_per_token"] or 0 for row in paced],
        0.4,
        color="tab:orange",
        label="same server, pass-through",
    )
    cpu.bar(
        [p + 0.2 for p in positions],
        [row["relay_cpu_us_per_token"] or 0 for row in paced],
        0.4,
        color="tab:green",
        label="the relay",
    )
    cpu.axhline(60, color="grey", linestyle="--", label="target")
    cpu.set_xticks(list(positions), labels)
    cpu.set_xlabel("concurrent paced streams")
    cpu.set_title("server CPU per token (µs)")
    cpu.legend()
    figure.suptitle(f"The relay on {results['machine']}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    parser.add_argument(
        "--rounds", type=int, default=None, help="interleaved rounds per measure (default 3, quick 1)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--before", metavar="REV", help="also run the relay as it was at this git revision")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    bench = Bench(rounds, args.quick, args.before)
    try:
        bench.warm_up()
        print("single stream…", flush=True)
        results: dict[str, Any] = {"single_stream": bench.single_stream()}
        print("bulk…", flush=True)
        results["bulk"] = bench.bulk()
        results["paced"] = []
        for streams in (100,) if args.quick else (100, 250, 500, 1000):
            print(f"{streams} paced streams…", flush=True)
            results["paced"].append(bench.paced(streams))
        results["decoders"] = decoder_ratios()
        print("limits…", flush=True)
        results["limits"] = bench.limits()
        print("memory per stream…", flush=True)
        results["memory"] = bench.memory()
        print("aborted streams…", flush=True)
        results["aborted"] = bench.aborted()
        print("soak…", flush=True)
        results["soak"] = bench.soak()
    finally:
        bench.stop()
    server = {**shipped_server_env(), "THREADS": str(BENCH_THREADS)}
    results.update(
        date=time.strftime("%Y-%m-%d"),
        machine=machine(),
        rounds=rounds,
        before=args.before,
        server=", ".join(f"{name}={value}" for name, value in server.items()),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    name = "quick" if args.quick else "latest"
    (args.out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(markdown(results))
    chart(results, args.out / f"{name}.png")
    print(markdown(results))


if __name__ == "__main__":
    main()
