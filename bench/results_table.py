"""The benchmark's table, in Markdown: each measure a row, a column per source (the fake upstream read
directly, the floor, the relay, and the relay before with --before), and the target where there is one.
"""

from __future__ import annotations

from typing import Any

from bench.side_by_side import PACE_MS


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
