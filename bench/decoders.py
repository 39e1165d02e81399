"""How the SSE decoder's cost grows with its input, as ratios measured side by side in one run.

The original route's parser took time quadratic in a read's size; relay/formats/sse.py's is
linear. Four times the input should cost about four times as much (16 if quadratic): the
benchmark prints the ratio, since on a shared machine a timing is a figure, not a pass or fail.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from relay.formats.sse import SSEDecoder

EVENT = b'data: {"choices":[{"delta":{"content":"token"}}]}\n\n'


def best_of(rounds: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def events_in_one_read(count: int) -> float:
    stream = EVENT * count
    return best_of(5, lambda: SSEDecoder().feed(stream))


def one_line_in_small_reads(length: int) -> float:
    line = b"data: " + b"x" * length + b"\n\n"
    pieces = [line[index : index + 100] for index in range(0, len(line), 100)]

    def decode() -> None:
        decoder = SSEDecoder(max_event=len(line) + 1)
        for piece in pieces:
            decoder.feed(piece)

    return best_of(3, decode)


def ratios() -> dict[str, float]:
    """Each cost at four times the input over the cost at once the input (4 if linear, 16 if quadratic)."""
    return {
        "events_in_one_read_x4": events_in_one_read(20_000) / events_in_one_read(5_000),
        "one_line_in_100_byte_reads_x4": one_line_in_small_reads(400_000) / one_line_in_small_reads(100_000),
    }


if __name__ == "__main__":
    for name, ratio in ratios().items():
        print(f"{name}: {ratio:.1f}")
