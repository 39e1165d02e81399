"""The measures made three ways, in interleaved rounds: on the fake upstream read directly, through
the floor and through the relay (and through the relay before, with --before).

One stream's first byte, an unpaced bulk stream, and paced streams by the hundred: each figure
is the median of the rounds, next to the same measure on the fake and on the floor, since a
shared machine is noisy and figures from the same minutes compare best.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from bench.load_runs import run_load
from bench.measured_servers import Servers
from bench.process_tree import PeakRSS, cpu_seconds

PACE_MS = 50  # between the tokens of a paced stream, as a model streams them
TOKENS = 50  # of a paced stream

Runs = list[dict[str, Any]]


def median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def scaled(factor: float, values: list[float]) -> float | None:
    """The median of the rounds, in other units (1000: seconds to milliseconds)."""
    middle = median(list(values))
    return None if middle is None else factor * middle


class SideBySide:
    def __init__(self, servers: Servers, rounds: int, quick: bool) -> None:
        self.servers = servers
        self.rounds = rounds
        self.quick = quick
        self.before_runs: Runs = []

    def three(self, run: Callable[[str, str], dict[str, Any]]) -> tuple[Runs, Runs, Runs]:
        """Interleaved rounds: direct, pass-through, relay (and the relay before), direct, ..."""
        servers = self.servers
        direct, floor, relayed = [], [], []
        self.before_runs = []
        for _ in range(self.rounds):
            direct.append(run(servers.direct_url, "direct"))
            floor.append(run(servers.floor_url, "relay"))
            relayed.append(run(servers.relay_url, "relay"))
            if servers.before is not None:
                self.before_runs.append(run(servers.before_url, "relay"))
        return direct, floor, relayed

    def measured(self, url: str, target: str, model: str, **options: Any) -> dict[str, Any]:
        """One load run, with the server's CPU time and peak RSS while it ran (for the relay and the floor)."""
        pids = self.servers.pids.get(url, [])
        before = cpu_seconds(pids)
        with PeakRSS(pids) as rss:
            result = run_load(url, target, model, **options)
        result["relay_cpu"] = cpu_seconds(pids) - before
        result["peak_rss_mb"] = rss.peak
        return result

    def warm_up(self) -> None:
        run_load(self.servers.relay_url, "relay", f"paced:5:{PACE_MS}", streams=200)

    def _before(self) -> list[tuple[str, Runs]]:
        return [("before", self.before_runs)] if self.servers.before is not None else []

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

    def bulk(self) -> dict[str, Any]:
        tokens = 20_000 if self.quick else 100_000
        # The fake builds a reply once, at its first request: not in the first round's time.
        run_load(self.servers.direct_url, "direct", f"bulk:{tokens}")
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


def paced_figures(source: str, runs: Runs) -> dict[str, Any]:
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
