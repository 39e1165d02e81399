"""The real server, as deployed: `functions-framework --target chat` in a subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shipped_server_env() -> dict[str, str]:
    """The server settings the deploy scripts ship (deploy/server.env)."""
    env = {}
    for line in (ROOT / "deploy" / "server.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    return env


def base_environ() -> dict[str, str]:
    """A clean environment: nothing of the developer's (no OPENAI_API_KEY) leaks in."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")
    return {name: os.environ[name] for name in keep if name in os.environ}


def framework_command(source: Path = ROOT / "main.py") -> list[str]:
    """`functions-framework --target chat` from this environment, serving `source` (without a port)."""
    return [sys.executable, "-m", "functions_framework", "--target", "chat", "--source", str(source)]


class RelayServer:
    """Starts the function on a free port with exactly the environment given."""

    def __init__(self, env: dict[str, str], command: list[str] | None = None, cwd: Path = ROOT) -> None:
        self.env = env
        # The server's command without its port; by default the framework from this environment.
        self.command = command or framework_command()
        self.cwd = cwd
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._stdout = tempfile.NamedTemporaryFile(prefix="relay-stdout-", suffix=".log")  # noqa: SIM115
        self._stderr = tempfile.NamedTemporaryFile(prefix="relay-stderr-", suffix=".log")  # noqa: SIM115

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> RelayServer:
        self.process = subprocess.Popen(
            [*self.command, "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.cwd,
            env={**base_environ(), **self.env},
            stdout=self._stdout,
            stderr=self._stderr,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the relay exited with {self.process.returncode}:\n{self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"the relay did not start listening:\n{self.output()}")

    def stop(self) -> None:
        self.begin_stop()
        self.wait_stopped()

    def begin_stop(self) -> None:
        """SIGTERM, as the platform sends: the relay ends what is in progress (relay/serving/shutdown.py)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def wait_stopped(self) -> None:
        """Until it has exited; killed past the platform's 10 s, as Cloud Run would."""
        if self.process is not None:
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def rss_mb(self) -> float:
        """The resident memory of the server and its workers together, in MiB."""
        assert self.process is not None
        pids = [self.process.pid]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                except OSError:
                    continue
                if int(parent) == self.process.pid:
                    pids.append(int(entry.name))
        total = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total / 1024

    def stdout(self) -> str:
        return Path(self._stdout.name).read_text(errors="replace")

    def output(self) -> str:
        """Everything the server printed: stdout, then stderr."""
        return self.stdout() + Path(self._stderr.name).read_text(errors="replace")

    def log_entries(self) -> list[dict[str, Any]]:
        """The structured JSON lines on stdout, complete lines only (the server may be writing one)."""
        text = self.stdout()
        complete = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.startswith("{")]

    def request_logs(self) -> list[dict[str, Any]]:
        return [entry for entry in self.log_entries() if "httpRequest" in entry]

    def log_of(self, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The log line of the request the relay named `request_id` (its X-Relay-Request-Id header).

        A stream's line is written when its body closes, after the client has its last byte: so wait.
        """
        logs = self._poll(lambda logs: any(entry["request_id"] == request_id for entry in logs), timeout)
        found = [entry for entry in logs if entry["request_id"] == request_id]
        assert len(found) == 1, f"{len(found)} log lines for request {request_id}"
        return found[0]

    def request_logs_of(self, user_agent: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The log lines of requests sent with this User-Agent, once there is one.

        For requests whose client never saw the response's id (it left before the answer).
        """
        logs = self._poll(
            lambda logs: any(entry["httpRequest"]["userAgent"] == user_agent for entry in logs), timeout
        )
        return [entry for entry in logs if entry["httpRequest"]["userAgent"] == user_agent]

    def request_logs_since(self, seen: int, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The request log lines written after the first `seen`, once there are `count` of them.

        For a relay shared between tests: lines of earlier tests' requests are not this test's.
        """
        return self._poll(lambda logs: len(logs) >= seen + count, timeout)[seen:]

    def _poll(self, ready: Callable[[list[dict[str, Any]]], bool], timeout: float) -> list[dict[str, Any]]:
        """The request log lines once `ready` holds for them, or as they are when `timeout` runs out."""
        deadline = time.monotonic() + timeout
        while True:
            logs = self.request_logs()
            if ready(logs) or time.monotonic() > deadline:
                return logs
            time.sleep(0.02)


def stop_all(servers: Iterable[RelayServer]) -> None:
    """Stop servers together: each is signalled at once, so their graceful stops overlap."""
    stopping = list(servers)
    for server in stopping:
        server.begin_stop()
    for server in stopping:
        server.wait_stopped()
