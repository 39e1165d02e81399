"""What a reply cost in tokens: the upstream's own count where it gives one, else an estimate.

`Usage` watches a reply go by (chat completion chunks, Responses events, Anthropic's Messages
events, or a whole answer of any of them) and keeps the upstream's usage object and the length
of everything the model wrote: every choice's text, refusals and reasoning, tool calls' names
and arguments, the Responses API's deltas of each kind, Anthropic's text, thinking and tool
input. Where the upstream reports no usage (most OpenAI-compatible servers
unless asked), the tokens are estimated at CHARS_PER_TOKEN characters a token, the request and
the reply together (docs/limits.md, "Counting tokens"). Every field is read by its JSON type.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

from relay.formats import jsoncodec
from relay.formats.chat_chunks import completion_as_chunks, reasoning_of, whole_count
from relay.formats.responses_passthrough import ENDS

CHARS_PER_TOKEN = 4  # OpenAI's rule of thumb for English; code and JSON run closer to 3
# What a reply is reserved against the token limits where neither the caller nor MAX_TOKENS_LIMIT
# capped it (docs/limits.md, "Spend caps"): a long reply; one longer is charged when it ends.
RESERVED_OUTPUT = 4096


def most_tokens(prompt_bytes: int, most_output: int | None) -> int:
    """The most a request may cost, reserved before it is sent: its prompt's estimate and its reply's cap."""
    return math.ceil(prompt_bytes / CHARS_PER_TOKEN) + (
        RESERVED_OUTPUT if most_output is None else most_output
    )


# The parts of a usage without a total that make its tokens.
COUNTED = (
    "prompt_tokens",
    "completion_tokens",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


def tokens_of(usage: Any) -> int | None:
    """The tokens a reply cost, from an upstream's usage: chat completions', the Responses API's, Anthropic's.

    Anthropic's has no total, and counts the prompt's cached tokens apart from its input_tokens:
    all are counted, as OpenAI's prompt_tokens counts its cached ones.
    """
    if not isinstance(usage, dict):
        return None
    total = whole_count(usage.get("total_tokens"))
    if total is not None:
        return total
    parts = [whole_count(usage.get(name)) for name in COUNTED]
    counted = [part for part in parts if part is not None]
    return sum(counted) if counted else None


def _text_length(value: Any) -> int:
    """Characters of text in a value: a string, or content parts' `text` (some servers send parts)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(
            len(part["text"])
            for part in value
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return 0


def written_length(delta: dict[str, Any]) -> int:
    """Characters the model wrote in one chat delta (or message): text, refusal, reasoning, tool calls."""
    # Reasoning once: OpenRouter sends the same text as `reasoning` and in `reasoning_details`.
    length = (
        _text_length(delta.get("content")) + _text_length(delta.get("refusal")) + len(reasoning_of(delta))
    )
    calls = delta.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            length += _text_length(function.get("name")) + _text_length(function.get("arguments"))
    legacy = delta.get("function_call")
    if isinstance(legacy, dict):
        length += _text_length(legacy.get("name")) + _text_length(legacy.get("arguments"))
    return length


class Usage:
    """What one reply cost: the upstream's usage object, and the characters the model wrote."""

    __slots__ = ("reported", "written")

    def __init__(self) -> None:
        self.reported: dict[str, Any] | None = None
        self.written = 0  # characters, for the estimate

    def chat_chunk(self, chunk: dict[str, Any]) -> None:
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.reported = usage
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict):
                self.written += written_length(delta)

    def chat_completion(self, completion: dict[str, Any]) -> None:
        for chunk in completion_as_chunks(completion) or ():
            self.chat_chunk(chunk)
        if isinstance(completion.get("usage"), dict):
            self.reported = completion["usage"]

    def responses_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if not isinstance(kind, str):
            return
        if kind.endswith(".delta"):  # output text, refusals, reasoning, tool arguments and inputs
            self.written += _text_length(event.get("delta"))
        elif kind in ENDS and isinstance(event.get("response"), dict):
            usage = event["response"].get("usage")
            if isinstance(usage, dict):
                self.reported = usage

    def response_object(self, response: dict[str, Any]) -> None:
        """A whole Response object (the Responses API's answer when not streamed)."""
        if isinstance(response.get("usage"), dict):
            self.reported = response["usage"]
        output = response.get("output")
        for item in output if isinstance(output, list) else ():
            if isinstance(item, dict):
                self.written += _item_length(item)

    def messages_event(self, event: dict[str, Any]) -> None:
        """One of Anthropic's Messages events: usage in message_start, then message_delta's counts."""
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta")
            if isinstance(delta, dict):
                self.written += sum(
                    _text_length(delta.get(name)) for name in ("text", "thinking", "partial_json")
                )
        elif kind == "content_block_start":
            block = event.get("content_block")
            if isinstance(block, dict):
                self.written += _block_length(block)
        elif kind == "message_start":
            message = event.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            if isinstance(usage, dict):
                self.reported = dict(usage)
        elif kind == "message_delta" and isinstance(event.get("usage"), dict):
            # Its counts are the reply's so far, not increments: they replace message_start's.
            self.reported = {**(self.reported or {}), **event["usage"]}

    def message_object(self, message: dict[str, Any]) -> None:
        """A whole Message (Anthropic's answer when not streamed)."""
        if isinstance(message.get("usage"), dict):
            self.reported = message["usage"]
        content = message.get("content")
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict):
                self.written += _block_length(block)

    def watcher(self, upstream: str) -> Callable[[dict[str, Any]], None]:
        """What sees each of an upstream's events on their way, in its API's words (Encoding.upstream)."""
        return {"chat": self.chat_chunk, "messages": self.messages_event}.get(upstream, self.responses_event)

    def whole(self, upstream: str, answer: dict[str, Any]) -> None:
        """A whole answer in its API's words: a chat completion, a Response object, a Message."""
        read = {
            "chat": self.chat_completion,
            "responses": self.response_object,
            "messages": self.message_object,
        }
        if upstream in read:
            read[upstream](answer)

    def tokens(self, prompt_bytes: int) -> tuple[int, str]:
        """The tokens to count, and whether the upstream told them ("upstream") or guessed ("estimated")."""
        counted = tokens_of(self.reported)
        if counted is not None:
            return counted, "upstream"
        return math.ceil((prompt_bytes + self.written) / CHARS_PER_TOKEN), "estimated"


def _item_length(item: dict[str, Any]) -> int:
    length = sum(_text_length(item.get(name)) for name in ("arguments", "input", "name"))
    for name in ("content", "summary"):
        parts = item.get(name)
        for part in parts if isinstance(parts, list) else ():
            if isinstance(part, dict):
                length += _text_length(part.get("text")) + _text_length(part.get("refusal"))
    return length


def _block_length(block: dict[str, Any]) -> int:
    """Characters the model wrote in an Anthropic content block: text, thinking, a tool and its input."""
    length = sum(_text_length(block.get(name)) for name in ("text", "thinking", "name"))
    given = block.get("input")
    if isinstance(given, dict) and given:
        with contextlib.suppress(ValueError):  # nested too deeply to write back: nothing counted
            length += len(jsoncodec.dumps(given))
    return length
