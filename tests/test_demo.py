"""`./dev demo --serve` (python -m tests.demo --serve): it stops both servers however it is stopped,
and it runs with the runtime's requirements alone (plus what tests/fake_upstream.py imports)."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from tests.relay_server import ROOT

STARTED = 60.0  # the demo starts the relay, then streams one reply (about a second)
STOPPED = 5.0  # what "stops at once" may take: the relay's workers end their requests


def requirement_names(path: Path) -> set[str]:
    """The distributions a requirements file names (with its -r includes), a lock's too."""
    names = set()
    for text in path.read_text().splitlines():
        line = text.split("#")[0].strip()
        if line.startswith("-r "):
            names |= requirement_names(path.parent / line[3:].strip())
        elif line and not line.startswith("-"):  # not an option, such as a lock's --hash lines
            names.add(canonical(re.split(r"[<>=!~\[; ]", line)[0]))
    return names


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def with_dependencies(names: set[str]) -> set[str]:
    """These distributions and everything they need, as installed (extras left out)."""
    seen: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        with contextlib.suppress(metadata.PackageNotFoundError):
            for requirement in metadata.requires(name) or []:
                if "extra ==" not in requirement:
                    pending.append(canonical(re.split(r"[<>=!~\[; (]", requirement)[0]))
    return seen


def dev_only_modules() -> list[str]:
    """The importable top-level modules that only the development requirements bring."""
    runtime = with_dependencies(requirement_names(ROOT / "requirements.txt"))
    return sorted(
        module
        for module, distributions in metadata.packages_distributions().items()
        if not {canonical(name) for name in distributions} & runtime
    )


@pytest.fixture(scope="module")
def runtime_only(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment in which importing anything only requirements-dev.txt installs fails.

    A sitecustomize.py on PYTHONPATH marks those modules as absent before the program runs.
    """
    blocked = dev_only_modules()
    assert {"pytest", "playwright", "hypothesis", "openai"} <= set(blocked)  # the list is the right one
    folder = tmp_path_factory.mktemp("runtime-only")
    (folder / "sitecustomize.py").write_text(
        f"import sys\nsys.modules.update(dict.fromkeys({blocked!r}))  # None: the import fails\n"
    )
    environ = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    return {**environ, "PYTHONPATH": str(folder), "PYTHONUNBUFFERED": "1"}


def test_the_blocker_blocks(runtime_only: dict[str, str]) -> None:
    # Else the demo's run below would prove nothing about what it imports.
    command = [sys.executable, "-c", "import pytest"]
    blocked = subprocess.run(command, env=runtime_only, capture_output=True, text=True, check=False)
    assert blocked.returncode == 1 and "ModuleNotFoundError" in blocked.stderr


class Demo:
    """`python -m tests.demo --serve` in a process group of its own, its output read line by line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.demo", "--serve"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.output: list[str] = []
        self.relay_pids: list[int] = []  # noted while it runs, to be sure they end with the test
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, pattern: str, timeout: float = STARTED) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.output.append(line)
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"the demo did not print {pattern!r}:\n{''.join(self.output)}")

    def children(self) -> list[int]:
        """The demo's child processes (the relay), as /proc lists them now."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.process.pid:
                    found.append(int(stat.parent.name))
        return found


def accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


@pytest.fixture
def demo(runtime_only: dict[str, str]) -> Iterator[Demo]:
    started = Demo(runtime_only)
    try:
        yield started
    finally:
        # Nothing the test started outlives it: the demo, and the relay it started, by pid
        # (SIGTERM, so that the relay's own workers end with it).
        if started.process.poll() is None:
            started.relay_pids += started.children()
            started.process.kill()
            started.process.wait(10)
        for pid in started.relay_pids:
            with contextlib.suppress(OSError):
                if b"functions_framework" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGTERM)


@pytest.mark.parametrize(
    ("stop", "status"),
    [
        pytest.param(signal.SIGTERM, 128 + signal.SIGTERM, id="kill"),
        pytest.param(signal.SIGINT, 0, id="ctrl-c"),
    ],
)
def test_the_demo_stops_both_servers(demo: Demo, stop: signal.Signals, status: int) -> None:
    fake_port = int(demo.wait_for(r"^fake upstream: http://127\.0\.0\.1:(\d+)/v1").group(1))
    relay_port = int(demo.wait_for(r"^relay: +http://127\.0\.0\.1:(\d+)").group(1))
    demo.wait_for(r"Hello! I am the fake upstream")  # a reply came through, with nothing but the runtime
    demo.wait_for(r"^Both stay up until Ctrl-C")
    demo.relay_pids = demo.children()
    assert demo.relay_pids, "the relay runs as the demo's child"
    assert accepts_connections(relay_port) and accepts_connections(fake_port)

    demo.process.send_signal(stop)
    deadline = time.monotonic() + STOPPED
    while accepts_connections(relay_port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not accepts_connections(relay_port), "the relay is still listening after the demo was stopped"
    assert demo.process.wait(STOPPED) == status
    assert not accepts_connections(fake_port)
