"""The Response object a reply translated from chat completions describes: pure, no I/O.

`Draft` holds what the reply has so far: its output items in the order they began (reasoning,
text, tool calls; relay/formats/responses_items.py), its finish, its usage. It opens, grows
and closes its items, giving the payloads of the events that tell it, and writes itself as a
Response object in any state. A call to a function the relay made of the caller's tool is told
as a call to that tool (`ToolNames`, relay/formats/responses_tools.py).

Bounded by construction: at most MAX_OUTPUT_ITEMS items, and their content within the room
that MAX_EVENT_BYTES leaves once the request the object repeats is counted, so that no
event made from it (`response.completed` repeats everything) is larger than any event the
relay reads. Past either, `TooLarge`: the translator ends the reply as failed.
"""

from __future__ import annotations

import time
from typing import Any

from relay.formats import jsoncodec
from relay.formats.chat_chunks import whole_count
from relay.formats.responses_items import Item, Payload, new_id
from relay.formats.responses_tools import ToolNames
from relay.formats.sse import MAX_EVENT_BYTES

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
    "parallel_tool_calls",
    "text",
)
# Far more than a reply makes (OpenAI allows 128 tools a request); a reply with more is refused
# rather than kept, since every item is repeated in the reply's last event.
MAX_OUTPUT_ITEMS = 1000
ITEM_BYTES = 256  # what an item costs in the last event besides its content: type, ids, status
OBJECT_BYTES = 4096  # what the Response object costs besides its output and the request it repeats


class TooLarge(ValueError):
    """The reply has outgrown what one event may carry; the message says which bound."""


def _count(value: Any) -> int:
    """A whole count of tokens in a usage object, or 0 (the upstream's may be of any type)."""
    return whole_count(value) or 0


def _detail(usage: dict[str, Any], name: str, field_name: str) -> int:
    details = usage.get(name)
    return _count(details.get(field_name)) if isinstance(details, dict) else 0


def response_usage(usage: Any) -> dict[str, Any] | None:
    """A chat completion's usage in the Responses API's words; None if it is not a usage object."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": _detail(usage, "prompt_tokens_details", "cached_tokens")},
        "output_tokens": completion,
        "output_tokens_details": {
            "reasoning_tokens": _detail(usage, "completion_tokens_details", "reasoning_tokens")
        },
        "total_tokens": _count(usage.get("total_tokens")) or prompt + completion,
    }


class Draft:
    """What the reply holds so far: its output items in order, its finish, its usage."""

    def __init__(
        self,
        model: str,
        request: dict[str, Any],
        limit: int = MAX_EVENT_BYTES,
        tools: ToolNames | None = None,
    ) -> None:
        self.id = new_id("resp")
        self.created_at = int(time.time())
        self.model = model
        self.request = {name: request.get(name) for name in ECHOED}
        self.items: list[Item] = []  # in the order they began; an item's index is its place here
        self.text: Item | None = None  # the message item text goes to, while open
        self.reasoning: Item | None = None  # the reasoning item its summary goes to, while open
        self.calls: dict[int, Item] = {}  # chat tool-call index -> its function_call (or custom) item
        self.tools = (
            tools if tools is not None else ToolNames()
        )  # what the functions the relay made stand for
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None
        # What the output may still take, so that the last event stays within `limit`.
        self.limit = limit
        self.room = limit - OBJECT_BYTES - len(jsoncodec.dumps(self.request))

    def response(self, status: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
        reason = INCOMPLETE.get(self.finish or "") if status == "incomplete" else None
        request = self.request
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "model": self.model,
            "output": [item.as_json() for item in self.items] if status != "in_progress" else [],
            "usage": self.usage,
            "error": error,
            "incomplete_details": {"reason": reason} if reason else None,
            "previous_response_id": None,
            "store": False,
            "truncation": "disabled",
            **request,
        }
        body["parallel_tool_calls"] = request["parallel_tool_calls"] is not False
        body["text"] = request["text"] if isinstance(request["text"], dict) else {"format": {"type": "text"}}
        body["tools"] = request["tools"] if isinstance(request["tools"], list) else []
        body["tool_choice"] = request["tool_choice"] or "auto"
        body["metadata"] = request["metadata"] if isinstance(request["metadata"], dict) else {}
        return body

    # -- the output items, as the payloads of the events that tell them (not yet numbered) --
    # Each change first takes its room (and may be refused, TooLarge), then is made: a refused
    # change leaves the reply as it was, so what was told of it stays true.

    def _take_room(self, *pieces: str, items: int = 0) -> None:
        if len(self.items) + items > MAX_OUTPUT_ITEMS:
            raise TooLarge(
                f"The reply has more than {MAX_OUTPUT_ITEMS} output items, more than this relay translates."
            )
        size = items * ITEM_BYTES + sum(len(jsoncodec.dumps(piece)) for piece in pieces)
        if size > self.room:
            raise TooLarge(
                f"The reply is larger than this relay translates from chat completions "
                f"({self.limit // 1024} KiB with the request it repeats); ask for a shorter one."
            )
        self.room -= size

    def _open(self, kind: str, prefix: str) -> Item:
        item = Item(len(self.items), kind, new_id(prefix))
        self.items.append(item)
        return item

    def add_reasoning(self, summary: str) -> list[Payload]:
        """Reasoning text: a reasoning item opened if none is open, and its summary's delta."""
        item = self.reasoning
        opening = item is None or not item.open
        self._take_room(summary, items=int(opening))
        out: list[Payload] = []
        if item is None or not item.open:
            item = self.reasoning = self._open("reasoning", "rs")
            out += item.opened()
        return [*out, *item.grown(summary)]

    def add_text(self, content: str) -> list[Payload]:
        """Text of the reply: a message item opened if none is open (reasoning ends there), and its delta."""
        item = self.text
        opening = item is None or not item.open
        self._take_room(content, items=int(opening))
        out = self._close_reasoning()
        if item is None or not item.open:
            item = self.text = self._open("message", "msg")
            out += item.opened()
        return [*out, *item.grown(content)]

    def add_call(self, number: int, call_id: str | None, name: str | None, arguments: str) -> list[Payload]:
        """A piece of tool call `number`: an item opened for a new one (a function_call, or the call of
        the caller's tool the function stands for), its arguments' delta."""
        item = self.calls.get(number)
        out: list[Payload] = []
        if item is None:
            call_id = call_id or new_id("call")
            self._take_room(call_id, name or "", arguments, items=1)
            out += self._close_reasoning()
            ref = self.tools.ref(name or "")
            custom = ref is not None and ref.custom
            kind, prefix = ("custom_tool_call", "ctc") if custom else ("function_call", "fc")
            item = self.calls[number] = self._open(kind, prefix)
            item.call_id, item.name = call_id, name or ""
            if ref is not None:
                item.name, item.namespace = ref.name, ref.namespace
            out += item.opened()
        elif arguments and item.open:
            self._take_room(arguments)
        if arguments and item.open:
            out += item.grown(arguments)
        return out

    def close_items(self) -> list[Payload]:
        """Every item still open is done: the reply's reasoning, text and calls are whole."""
        return [payload for item in self.items if item.open for payload in item.closed()]

    def _close_reasoning(self) -> list[Payload]:
        reasoning = self.reasoning
        return reasoning.closed() if reasoning is not None and reasoning.open else []
