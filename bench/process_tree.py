"""What a server's processes use, read from /proc: CPU time, resident memory, threads and open files.

A server here is a master and its workers (gunicorn's); each figure is the sum over all of them.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def processes(master: int) -> list[int]:
    """The master and its worker processes."""
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
    """User and system CPU time so far."""
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
    """Samples the processes' total RSS every 50 ms while a phase runs."""

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
