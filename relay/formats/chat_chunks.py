"""Chat completions as the upstream sends them, read by type: pure, no I/O.

An upstream may ignore `stream` either way. `completion_as_chunks` turns a whole
chat.completion into the chunks of its stream (for a caller that asked for a stream),
`chunks_as_completion` a stream's chunks into one completion (for a caller that asked for a
whole answer): every endpoint meets both cases through these two, and nothing else.

Every field is read by its JSON type: one of the wrong type is taken as absent, never a crash.
"""

from __future__ import annotations

from typing import Any

# A whole completion's fields that its stream's chunks carry too.
CHUNK_FIELDS = ("id", "created", "model", "system_fingerprint", "service_tier")
# The fields of a delta (or a message) that hold what the model wrote, besides tool calls.
TEXT_FIELDS = ("content", "refusal", "reasoning_content", "reasoning")


def whole_count(value: Any) -> int | None:
    """A JSON number that counts something (an index): a whole number, 0 or more; else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def reasoning_of(delta: dict[str, Any]) -> str:
    """The reasoning text of a delta, as DeepSeek, vLLM (`reasoning_content`) or OpenRouter (`reasoning`,
    `reasoning_details`) send it."""
    for name in ("reasoning_content", "reasoning"):
        text = delta.get(name)
        if isinstance(text, str) and text:
            return text
    details = delta.get("reasoning_details")
    pieces = []
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict):
            for name in ("text", "summary"):
                if isinstance(detail.get(name), str):
                    pieces.append(detail[name])
    return "".join(pieces)


def completion_as_chunks(completion: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A whole chat.completion as the chunks of its stream; None if it holds no choice.

    Per choice, one chunk whose delta is the whole message (tool calls numbered, as stream
    deltas are) and one with its finish reason; then the usage, if any.
    """
    choices = completion.get("choices")
    if not isinstance(choices, list):
        return None
    base: dict[str, Any] = {name: completion[name] for name in CHUNK_FIELDS if name in completion}
    base["object"] = "chat.completion.chunk"
    chunks: list[dict[str, Any]] = []
    for position, choice in enumerate(choices):
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        delta = dict(message) if isinstance(message, dict) else {}
        if isinstance(delta.get("tool_calls"), list):
            delta["tool_calls"] = [
                {"index": number, **call} if isinstance(call, dict) else call
                for number, call in enumerate(delta["tool_calls"])
            ]
        index = choice.get("index", position)
        for part in (
            {"index": index, "delta": delta, "logprobs": choice.get("logprobs"), "finish_reason": None},
            {"index": index, "delta": {}, "logprobs": None, "finish_reason": choice.get("finish_reason")},
        ):
            chunks.append({**base, "choices": [part]})
    if not chunks:
        return None
    if isinstance(completion.get("usage"), dict):
        chunks.append({**base, "choices": [], "usage": completion["usage"]})
    return chunks


class _Choice:
    """One choice of a stream, as its deltas arrive: the pieces of each field, joined once."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.role = "assistant"
        self.texts: dict[str, list[str]] = {}
        self.calls: dict[int, dict[str, Any]] = {}
        self.details: list[Any] = []  # reasoning_details (OpenRouter), as they came
        self.finish: Any = None

    def add(self, delta: dict[str, Any]) -> None:
        if isinstance(delta.get("role"), str):
            self.role = delta["role"]
        for name in TEXT_FIELDS:
            if isinstance(delta.get(name), str):
                self.texts.setdefault(name, []).append(delta[name])
        if isinstance(delta.get("reasoning_details"), list):
            self.details += delta["reasoning_details"]
        calls = delta.get("tool_calls")
        for position, call in enumerate(calls if isinstance(calls, list) else ()):
            if not isinstance(call, dict):
                continue
            number = whole_count(call.get("index", position))
            entry = self.calls.setdefault(
                position if number is None else number, {"name": [], "arguments": []}
            )
            if isinstance(call.get("id"), str):
                entry["id"] = call["id"]
            function = call.get("function")
            for name in ("name", "arguments"):
                if isinstance(function, dict) and isinstance(function.get(name), str):
                    entry[name].append(function[name])

    def as_json(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": self.role, "content": None}
        for name, pieces in self.texts.items():
            message[name] = "".join(pieces)
        if self.details:
            message["reasoning_details"] = self.details
        if self.calls:
            message["tool_calls"] = [
                {
                    "id": entry.get("id", ""),
                    "type": "function",
                    "function": {"name": "".join(entry["name"]), "arguments": "".join(entry["arguments"])},
                }
                for _, entry in sorted(self.calls.items())
            ]
        return {"index": self.index, "message": message, "logprobs": None, "finish_reason": self.finish}


def chunks_as_completion(chunks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A stream's chunks as one chat.completion; None if they hold no choice (or an error)."""
    base: dict[str, Any] = {}
    choices: dict[int, _Choice] = {}
    usage = None
    for chunk in chunks:
        if chunk.get("error") is not None:
            return None
        for name in CHUNK_FIELDS:
            if name in chunk and name not in base:
                base[name] = chunk[name]
        if isinstance(chunk.get("usage"), dict):
            usage = chunk["usage"]
        listed = chunk.get("choices")
        for choice in listed if isinstance(listed, list) else ():
            if not isinstance(choice, dict):
                continue
            index = whole_count(choice.get("index", 0)) or 0
            slot = choices.setdefault(index, _Choice(index))
            if isinstance(choice.get("delta"), dict):
                slot.add(choice["delta"])
            if choice.get("finish_reason") is not None:
                slot.finish = choice["finish_reason"]
    if not choices:
        return None
    completion = {
        **base,
        "object": "chat.completion",
        "choices": [c.as_json() for _, c in sorted(choices.items())],
    }
    if usage is not None:
        completion["usage"] = usage
    return completion
