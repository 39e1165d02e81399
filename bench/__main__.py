"""The benchmark: the relay as deployed against the fake upstream read directly, side by side.

  ./dev bench                  the full run (about eight minutes on 2 cores)
  ./dev bench --quick          a smoke run with small numbers
  ./dev bench --before REV     also the relay as it was at git revision REV, side by side

It starts the fake upstream (tests/fake_upstream.py), the function with
deploy/server.env (the settings every deployment ships), and the same server
running bench/passthrough.py (the floor: what serving costs before any relay code
runs): bench/measured_servers.py. It drives them with tests/load_client.py from
a process of its own (bench/load_runs.py), through the phases of
bench/side_by_side.py and bench/relay_only.py, and writes
bench/results/latest.{md,json,png} (bench/results_table.py, bench/results_chart.py).
Timings are medians of interleaved rounds, and each relay figure sits next to the
same measurement made on the upstream directly and on the floor, since a shared
machine is noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from bench import relay_only
from bench.decoders import ratios as decoder_ratios
from bench.measured_servers import BENCH_THREADS, Servers
from bench.results_chart import chart
from bench.results_table import markdown
from bench.side_by_side import SideBySide
from tests.relay_server import ROOT, shipped_server_env

RESULTS = ROOT / "bench" / "results"


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} × {cpu}, Linux {platform.release()}, Python {platform.python_version()}"


def run(rounds: int, quick: bool, before: str | None) -> dict[str, Any]:
    """Every phase, in order; the results as the table and the chart read them."""
    servers = Servers(before)
    try:
        phases = SideBySide(servers, rounds, quick)
        phases.warm_up()
        print("single stream…", flush=True)
        results: dict[str, Any] = {"single_stream": phases.single_stream()}
        print("bulk…", flush=True)
        results["bulk"] = phases.bulk()
        results["paced"] = []
        for streams in (100,) if quick else (100, 250, 500, 1000):
            print(f"{streams} paced streams…", flush=True)
            results["paced"].append(phases.paced(streams))
        results["decoders"] = decoder_ratios()
        print("limits…", flush=True)
        results["limits"] = relay_only.limits(servers, rounds, quick)
        print("memory per stream…", flush=True)
        results["memory"] = relay_only.memory(servers, quick)
        print("aborted streams…", flush=True)
        results["aborted"] = relay_only.aborted(servers)
        print("soak…", flush=True)
        results["soak"] = relay_only.soak(servers, quick)
    finally:
        servers.stop()
    server = {**shipped_server_env(), "THREADS": str(BENCH_THREADS)}
    results.update(
        date=time.strftime("%Y-%m-%d"),
        machine=machine(),
        rounds=rounds,
        before=before,
        server=", ".join(f"{name}={value}" for name, value in server.items()),
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    parser.add_argument(
        "--rounds", type=int, default=None, help="interleaved rounds per measure (default 3, quick 1)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--before", metavar="REV", help="also run the relay as it was at this git revision")
    args = parser.parse_args()
    results = run(args.rounds or (1 if args.quick else 3), args.quick, args.before)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "quick" if args.quick else "latest"
    (args.out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(markdown(results))
    chart(results, args.out / f"{name}.png")
    print(markdown(results))


if __name__ == "__main__":
    main()
