"""The Response object a reply translated from chat completions describes: pure, no I/O.

`Reply` holds what the reply has so far (its output items in order, its finish, its
usage) and writes it as a Response object in any of its states; `response_usage` puts
a chat completion's usage in the Responses API's words.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from relay.formats import jsoncodec

# chat finish_reason -> a Responses reply's incomplete_details.reason
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
# What a Response object repeats of its request.
ECHOED = (
    "instructions",
    "max_output_tokens",
    "temperature",
    "top_p",
    "tool_choice",
    "tools",
    "metadata",
    "user",
)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def event(payload: dict[str, Any]) -> bytes:
    """One SSE event, named by its type, as OpenAI sends them."""
    name: str = payload["type"]
    return b"event: " + name.encode() + b"\ndata: " + jsoncodec.dumps(payload) + b"\n\n"


def response_usage(usage: Any) -> dict[str, Any] | None:
    """A chat completion's usage in the Responses API's words."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage.get("total_tokens") or prompt + completion,
    }


class Reply:
    """What the reply holds so far: its output items in order, its finish, its usage."""

    def __init__(self, model: str, request: dict[str, Any]) -> None:
        self.id = new_id("resp")
        self.created_at = int(time.time())
        self.model = model
        self.request = request
        self.items: list[dict[str, Any]] = []  # output items, in the order they began
        self.message: dict[str, Any] | None = None  # the message item text goes to
        self.calls: dict[int, dict[str, Any]] = {}  # chat tool-call index -> function_call item
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None

    def response(self, status: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
        reason = INCOMPLETE.get(self.finish or "") if status == "incomplete" else None
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "model": self.model,
            "output": self.items,
            "usage": self.usage,
            "error": error,
            "incomplete_details": {"reason": reason} if reason else None,
            "parallel_tool_calls": self.request.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "store": False,
            "text": self.request.get("text") or {"format": {"type": "text"}},
            "truncation": "disabled",
        }
        for name in ECHOED:
            body[name] = self.request.get(name)
        body["tools"] = self.request.get("tools") or []
        body["tool_choice"] = self.request.get("tool_choice") or "auto"
        body["metadata"] = self.request.get("metadata") or {}
        return body
