"""The Response object a reply translated from chat completions describes: pure, no I/O.

`Reply` holds what the reply has so far (its output items in order, its finish, its
usage), gives the payloads of the events that open, grow and close its items, and
writes it as a Response object in any of its states; `response_usage` puts a chat
completion's usage in the Responses API's words.
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

    # -- the output items, as the payloads of the events that tell them (not yet numbered) --

    def add_text(self, content: str) -> list[dict[str, Any]]:
        """Text of the reply: a message item opened if none is open, and its delta."""
        out: list[dict[str, Any]] = []
        message = self.message
        if message is None or message["status"] != "in_progress":
            message = self.message = {
                "type": "message",
                "id": new_id("msg"),
                "status": "in_progress",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "", "annotations": [], "logprobs": []}],
            }
            self.items.append(message)
            where = {"item_id": message["id"], "output_index": len(self.items) - 1, "content_index": 0}
            added = {**message, "content": []}  # as OpenAI tells it: the part is added next
            out.append(
                {"type": "response.output_item.added", "output_index": where["output_index"], "item": added}
            )
            out.append({"type": "response.content_part.added", **where, "part": dict(message["content"][0])})
        message["content"][0]["text"] += content
        where = {"item_id": message["id"], "output_index": self.items.index(message), "content_index": 0}
        out.append({"type": "response.output_text.delta", **where, "delta": content, "logprobs": []})
        return out

    def add_call(self, call: dict[str, Any], position: int) -> list[dict[str, Any]]:
        """A piece of a tool call: a function_call item opened for a new one, its arguments' delta."""
        out: list[dict[str, Any]] = []
        number = call.get("index", position)
        function: dict[str, Any] = call["function"] if isinstance(call.get("function"), dict) else {}
        item = self.calls.get(number)
        if item is None:
            item = self.calls[number] = {
                "type": "function_call",
                "id": new_id("fc"),
                "call_id": call.get("id") if isinstance(call.get("id"), str) else new_id("call"),
                "name": function.get("name") if isinstance(function.get("name"), str) else "",
                "arguments": "",
                "status": "in_progress",
            }
            self.items.append(item)
            added = dict(item)  # as it begins: its arguments follow as deltas
            out.append(
                {"type": "response.output_item.added", "output_index": len(self.items) - 1, "item": added}
            )
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item["arguments"] += arguments
            where = {"item_id": item["id"], "output_index": self.items.index(item)}
            out.append({"type": "response.function_call_arguments.delta", **where, "delta": arguments})
        return out

    def close_items(self) -> list[dict[str, Any]]:
        """Every item still open is done: the reply's text and calls are whole."""
        out: list[dict[str, Any]] = []
        for index, item in enumerate(self.items):
            if item["status"] != "in_progress":
                continue
            item["status"] = "completed"
            if item["type"] == "message":
                part = item["content"][0]
                where = {"item_id": item["id"], "output_index": index, "content_index": 0}
                out.append(
                    {"type": "response.output_text.done", **where, "text": part["text"], "logprobs": []}
                )
                out.append({"type": "response.content_part.done", **where, "part": dict(part)})
            else:
                where = {"item_id": item["id"], "output_index": index}
                out.append(
                    {"type": "response.function_call_arguments.done", **where, "arguments": item["arguments"]}
                )
            out.append({"type": "response.output_item.done", "output_index": index, "item": item})
        return out
