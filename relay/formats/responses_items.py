"""The output items of a Response translated from chat completions, and the events that tell them: pure.

An item (a reasoning summary, a message's text, a function call, a custom tool's call) is kept
as the pieces that arrived, joined once when it closes. Each gives the payloads of the events
OpenAI sends for it: when it opens, each piece, and when it closes. They are numbered by the
translator (relay/formats/responses_events.py) in the order they are sent.

A call to a tool the relay made a function (relay/formats/responses_tools.py) is told as the
caller's tool: a function in a namespace carries its `namespace`; a custom tool's call is a
`custom_tool_call` whose input is what the model wrote, told whole when the call closes (its
arguments arrive as JSON, whose pieces are not yet the input's).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from relay.formats import jsoncodec
from relay.formats.responses_tools import custom_input

Payload = dict[str, Any]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def event(payload: Payload) -> bytes:
    """One SSE event, named by its type, as OpenAI sends them."""
    name: str = payload["type"]
    return b"event: " + name.encode() + b"\ndata: " + jsoncodec.dumps(payload) + b"\n\n"


def _output_text(text: str) -> Payload:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


@dataclass
class Item:
    """One output item: where it stands in the output, and its content as it arrived."""

    index: int  # its place in the output: events name it by that
    kind: str  # "message", "reasoning", "function_call" or "custom_tool_call"
    id: str
    pieces: list[str] = field(default_factory=list)  # text, summary or arguments
    open: bool = True
    call_id: str = ""
    name: str = ""
    namespace: str | None = None  # of a function or custom tool in a namespace

    def content(self) -> str:
        if len(self.pieces) > 1:
            self.pieces = ["".join(self.pieces)]
        return self.pieces[0] if self.pieces else ""

    def as_json(self) -> Payload:
        status = "in_progress" if self.open else "completed"
        if self.kind == "message":
            part = _output_text(self.content())
            return {
                "type": "message",
                "id": self.id,
                "status": status,
                "role": "assistant",
                "content": [part],
            }
        if self.kind == "reasoning":
            return {
                "type": "reasoning",
                "id": self.id,
                "summary": [{"type": "summary_text", "text": self.content()}],
            }
        call: Payload = {"type": self.kind, "id": self.id, "call_id": self.call_id, "name": self.name}
        if self.namespace is not None:
            call["namespace"] = self.namespace
        if self.kind == "custom_tool_call":
            call["input"] = custom_input(self.content())
        else:
            call["arguments"] = self.content()
        return {**call, "status": status}

    def _where(self) -> Payload:
        where: Payload = {"item_id": self.id, "output_index": self.index}
        if self.kind == "message":
            where["content_index"] = 0
        elif self.kind == "reasoning":
            where["summary_index"] = 0
        return where

    def opened(self) -> list[Payload]:
        """The item begins: as OpenAI tells it, empty, and then (text, reasoning) its empty part."""
        added: Payload = {"type": "response.output_item.added", "output_index": self.index}
        if self.kind == "message":
            item = {
                "type": "message",
                "id": self.id,
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            part = {"type": "response.content_part.added", **self._where(), "part": _output_text("")}
            return [{**added, "item": item}, part]
        if self.kind == "reasoning":
            part = {"type": "response.reasoning_summary_part.added", **self._where(),
                    "part": {"type": "summary_text", "text": ""}}  # fmt: skip
            return [{**added, "item": {"type": "reasoning", "id": self.id, "summary": []}}, part]
        return [{**added, "item": self.as_json()}]

    def grown(self, piece: str) -> list[Payload]:
        """A piece of its content, kept, and the event that tells it (none for a custom tool's call)."""
        self.pieces.append(piece)
        if self.kind == "message":
            return [{"type": "response.output_text.delta", **self._where(), "delta": piece, "logprobs": []}]
        if self.kind == "reasoning":
            return [{"type": "response.reasoning_summary_text.delta", **self._where(), "delta": piece}]
        if self.kind == "custom_tool_call":
            return []  # a piece of JSON: the input is told whole when the call closes
        return [{"type": "response.function_call_arguments.delta", **self._where(), "delta": piece}]

    def closed(self) -> list[Payload]:
        """The item is whole: its content once (joined here), then the item itself."""
        self.open = False
        whole, where = self.content(), self._where()
        if self.kind == "message":
            done = [
                {"type": "response.output_text.done", **where, "text": whole, "logprobs": []},
                {"type": "response.content_part.done", **where, "part": _output_text(whole)},
            ]
        elif self.kind == "reasoning":
            done = [
                {"type": "response.reasoning_summary_text.done", **where, "text": whole},
                {
                    "type": "response.reasoning_summary_part.done",
                    **where,
                    "part": {"type": "summary_text", "text": whole},
                },
            ]
        elif self.kind == "custom_tool_call":
            given = custom_input(whole)
            done = [
                *(
                    [{"type": "response.custom_tool_call_input.delta", **where, "delta": given}]
                    if given
                    else []
                ),
                {"type": "response.custom_tool_call_input.done", **where, "input": given},
            ]
        else:
            done = [{"type": "response.function_call_arguments.done", **where, "arguments": whole}]
        return [
            *done,
            {"type": "response.output_item.done", "output_index": self.index, "item": self.as_json()},
        ]
