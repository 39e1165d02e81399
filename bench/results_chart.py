"""The benchmark's chart of the paced phases: TTFB p99 and token gaps p99 for the fake read directly,
the floor and the relay, and CPU per token for the floor and the relay, its target a dashed line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


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
