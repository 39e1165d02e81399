"""The servers the benchmark starts: the fake upstream, the relay, the floor and the relay before.

Each in a process of its own:
- the fake upstream, tests/fake_upstream.py on uvloop, which answers the load model names;
- the relay as deployed: functions-framework with deploy/server.env, THREADS raised for the
  1,000-stream phase;
- the floor: the same server with the same settings running bench/passthrough.py;
- with `--before REV`, the relay as it was at a git revision, from a worktree of its own.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.process_tree import processes
from tests.relay_server import ROOT, RelayServer, framework_command, shipped_server_env

# Room for the 1,000-stream phase in one instance (deployments take fewer each: deploy/server.env),
# and the same figures as earlier runs for the comparison.
BENCH_THREADS = 1000
# The same server with a function that passes the upstream's bytes through (bench/passthrough.py).
FLOOR_COMMAND = framework_command(ROOT / "bench" / "passthrough.py")


def bench_server_env() -> dict[str, str]:
    """The settings every relay of the benchmark runs with, but for its upstream and key."""
    return {
        **shipped_server_env(),
        "THREADS": str(BENCH_THREADS),
        "MAX_REQUESTS_PER_CALLER": str(BENCH_THREADS),  # the load client is one caller
    }


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


class Servers:
    """The fake upstream, the relay and the floor (and the relay before), started together.

    `pids` maps each server's URL to its processes, whose CPU and memory the phases measure.
    """

    def __init__(self, before: str | None = None) -> None:
        self.upstream = FakeUpstreamProcess()
        self.direct_url = self.upstream.base_url + "/chat/completions"
        self.relay = self.start_relay()
        self.relay_url = self.relay.url + "/api/chat"
        self.floor = self.start_relay(FLOOR_COMMAND)
        self.floor_url = self.floor.url + "/api/chat"
        self.pids = {self.relay_url: pids_of(self.relay), self.floor_url: pids_of(self.floor)}
        self.checkout = Checkout(before) if before else None
        self.before: RelayServer | None = None
        self.before_url = ""
        if self.checkout is not None:
            source = self.checkout.path
            self.before = self.start_relay(framework_command(source / "main.py"), cwd=source)
            self.before_url = self.before.url + "/api/chat"
            self.pids[self.before_url] = pids_of(self.before)

    def start_relay(
        self, command: list[str] | None = None, cwd: Path = ROOT, extra: dict[str, str] | None = None
    ) -> RelayServer:
        """A relay (or, by its command, the floor) on the fake upstream, with the benchmark's settings."""
        env = {
            **bench_server_env(),
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


def pids_of(server: RelayServer) -> list[int]:
    assert server.process is not None
    return processes(server.process.pid)
