"""What a reply cost in tokens, from an upstream's usage object (chat completions' or the Responses API's)."""

from __future__ import annotations

from typing import Any


def tokens_of(usage: Any) -> int | None:
    """The tokens a reply cost, from an upstream's usage (chat completions' or the Responses API's)."""
    if not isinstance(usage, dict):
        return None
    total = usage.get("total_tokens")
    if isinstance(total, int) and not isinstance(total, bool):
        return total
    parts = [
        usage.get(name) for name in ("prompt_tokens", "completion_tokens", "input_tokens", "output_tokens")
    ]
    counted = [part for part in parts if isinstance(part, int) and not isinstance(part, bool)]
    return sum(counted) if counted else None
