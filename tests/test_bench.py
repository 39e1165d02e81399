"""A smoke run of the benchmark (./dev bench --quick): it runs end to end and its table holds no failure.

The numbers themselves are not checked here (timings belong to the benchmark, not to
tests, on a shared machine); that the relay relays every byte right under load is.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.relay_server import ROOT


def test_quick_benchmark_runs_and_relays_every_byte_right(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((tmp_path / "quick.json").read_text())
    assert results["bulk"]["failures"] == 0
    for row in results["paced"]:
        assert (row["relay_failures"], row["relay_wrong"]) == (0, 0)
        assert (row["direct_failures"], row["direct_wrong"]) == (0, 0)
        assert row["floor_failures"] == 0
    assert results["aborted"]["upstreams_freed"] == results["aborted"]["aborted"] == 100
    assert results["soak"]["failures"] == 0
    assert (results["memory"]["small_failures"], results["memory"]["1mib_failures"]) == (0, 0)
    assert results["memory"]["1mib_mb_per_stream"] > 0
    limits = results["limits"]
    assert (limits["off_failures"], limits["in_process_failures"]) == (0, 0)
    # The Redis row where redis-server is here (the benchmark runs without it, and says so).
    assert limits.get("redis_failures") == (0 if shutil.which("redis-server") else None)
    table = (tmp_path / "quick.md").read_text()
    assert "| 100 paced streams: failures / wrong bytes | 0 / 0 | 0 / not checked | 0 / 0 | 0 / 0 |" in table
    assert (tmp_path / "quick.png").stat().st_size > 10_000
