"""The Responses API's stream and answer, made from a chat-only upstream's: pure, no I/O.

`ChatToResponses` turns chat.completion.chunk payloads into the Responses events the
OpenAI SDKs and the Vercel AI SDK read, as OpenAI sends them: `response.created`,
`response.in_progress`; for text, a message item (`output_item.added`,
`content_part.added`, `output_text.delta`..., the `.done` events); for each tool call,
a function_call item (`function_call_arguments.delta`...); then `response.completed`
(or `response.incomplete` when the reply ran out of tokens), with the whole output and
the usage. A failure is an `error` event and `response.failed`. `as_response` does
the same for a whole chat completion. Every event carries its `sequence_number`.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from relay.formats import jsoncodec
from relay.formats.original import DONE
from relay.formats.sse import SSEDecoder

logger = logging.getLogger(__name__)

# chat finish_reason -> a Responses reply's incomplete_details.reason
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
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


class _Reply:
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
        reason = _INCOMPLETE.get(self.finish or "") if status == "incomplete" else None
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "model": self.model,
            "output": self.items if status != "in_progress" else [],
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


class ChatToResponses:
    """Translates one chat-completions stream into Responses events (an encoder of relay/serving/reply)."""

    def __init__(self, model: str, request: dict[str, Any]) -> None:
        self._reply = _Reply(model, request)
        self._sequence = 0
        self._started = False
        self._told = False  # a failure was told as events
        self.packet: bytes | None = None  # no packet in this format
        self.finished = False
        self.error: str | None = None  # an in-stream error, told as events already
        self.chunks = 0
        self.skipped = 0
        self.usage: dict[str, Any] | None = None
        self.replied = False
        self.text_chars = 0

    def translate(self, payloads: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for payload in payloads:
            if self.finished:
                break
            if payload == DONE:
                out += self._complete()
                break
            try:
                chunk = jsoncodec.loads(payload)
            except jsoncodec.JSONDecodeError:
                chunk = None
            if not isinstance(chunk, dict):
                if payload:
                    self.skipped += 1
                    logger.warning(
                        "Skipped an upstream event that is not a JSON object (%d bytes)", len(payload)
                    )
                continue
            self.chunks += 1
            out += self._start()
            if chunk.get("error") is not None:
                out += self._fail(chunk["error"])
                break
            out += self._chunk(chunk)
        return [b"".join(out)] if out else []

    def end(self) -> list[bytes]:
        """The upstream's stream ended without [DONE]: the reply is complete all the same."""
        return [b"".join(self._complete())] if not self.finished else []

    def note(self, message: str) -> bytes:
        """A failure after the stream began: an error event, and the reply failed (once)."""
        if self._told:
            return b""  # an error event of the upstream's, already told as events
        return b"".join([*self._start(), *self._fail({"message": message, "code": "server_error"})])

    def response(self) -> dict[str, Any]:
        """The Response object the events described, as it stands."""
        reply = self._reply
        if self._told:
            return reply.response("failed", {"code": "server_error", "message": self.error or ""})
        return reply.response("incomplete" if reply.finish in _INCOMPLETE else "completed")

    # -- the events --

    def _emit(self, payload: dict[str, Any]) -> bytes:
        payload["sequence_number"] = self._sequence
        self._sequence += 1
        return event(payload)

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        reply = self._reply
        return [
            self._emit({"type": "response.created", "response": reply.response("in_progress")}),
            self._emit({"type": "response.in_progress", "response": reply.response("in_progress")}),
        ]

    def _chunk(self, chunk: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        reply = self._reply
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
            reply.usage = response_usage(chunk["usage"])
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return out
        choice = choices[0]
        self.replied = True
        # `message` instead of `delta`: an upstream that sent one whole completion.
        delta = choice.get("delta", choice.get("message"))
        if isinstance(delta, dict):
            content = delta.get("content")
            if isinstance(content, str) and content:
                self.text_chars += len(content)
                out += self._text(content)
            calls = delta.get("tool_calls")
            for position, call in enumerate(calls if isinstance(calls, list) else []):
                if isinstance(call, dict):
                    out += self._call(call, position)
        if choice.get("finish_reason"):
            reply.finish = choice["finish_reason"]
            out += self._close_items()
        return out

    def _text(self, content: str) -> list[bytes]:
        reply = self._reply
        out: list[bytes] = []
        message = reply.message
        if message is None or message["status"] != "in_progress":
            message = reply.message = {
                "type": "message",
                "id": new_id("msg"),
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            reply.items.append(message)
            index = len(reply.items) - 1
            out.append(
                self._emit(
                    {"type": "response.output_item.added", "output_index": index, "item": _copy(message)}
                )
            )
            message["content"].append({"type": "output_text", "text": "", "annotations": [], "logprobs": []})
            out.append(
                self._emit(
                    {
                        "type": "response.content_part.added",
                        "item_id": message["id"],
                        "output_index": index,
                        "content_index": 0,
                        "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []},
                    }
                )
            )
        message["content"][0]["text"] += content
        out.append(
            self._emit(
                {
                    "type": "response.output_text.delta",
                    "item_id": message["id"],
                    "output_index": reply.items.index(message),
                    "content_index": 0,
                    "delta": content,
                    "logprobs": [],
                }
            )
        )
        return out

    def _call(self, call: dict[str, Any], position: int) -> list[bytes]:
        reply = self._reply
        out: list[bytes] = []
        number = call.get("index", position)
        function: dict[str, Any] = call["function"] if isinstance(call.get("function"), dict) else {}
        item = reply.calls.get(number)
        if item is None:
            item = reply.calls[number] = {
                "type": "function_call",
                "id": new_id("fc"),
                "call_id": call.get("id") if isinstance(call.get("id"), str) else new_id("call"),
                "name": function.get("name") if isinstance(function.get("name"), str) else "",
                "arguments": "",
                "status": "in_progress",
            }
            reply.items.append(item)
            index = len(reply.items) - 1
            out.append(
                self._emit({"type": "response.output_item.added", "output_index": index, "item": _copy(item)})
            )
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item["arguments"] += arguments
            out.append(
                self._emit(
                    {
                        "type": "response.function_call_arguments.delta",
                        "item_id": item["id"],
                        "output_index": reply.items.index(item),
                        "delta": arguments,
                    }
                )
            )
        return out

    def _close_items(self) -> list[bytes]:
        """Every item still open is done: the reply's text and calls are whole."""
        out: list[bytes] = []
        for index, item in enumerate(self._reply.items):
            if item["status"] != "in_progress":
                continue
            item["status"] = "completed"
            if item["type"] == "message":
                part = item["content"][0]
                base = {"item_id": item["id"], "output_index": index, "content_index": 0}
                out.append(
                    self._emit(
                        {"type": "response.output_text.done", **base, "text": part["text"], "logprobs": []}
                    )
                )
                out.append(self._emit({"type": "response.content_part.done", **base, "part": dict(part)}))
            else:
                out.append(
                    self._emit(
                        {
                            "type": "response.function_call_arguments.done",
                            "item_id": item["id"],
                            "output_index": index,
                            "arguments": item["arguments"],
                        }
                    )
                )
            out.append(
                self._emit({"type": "response.output_item.done", "output_index": index, "item": _copy(item)})
            )
        return out

    def _complete(self) -> list[bytes]:
        if self.finished or not self.replied:
            self.finished = True
            return []  # nothing was replied: the relay says so (relay/serving/reply.py)
        self.finished = True
        out = self._close_items()
        reply = self._reply
        status = "incomplete" if reply.finish in _INCOMPLETE else "completed"
        out.append(self._emit({"type": f"response.{status}", "response": reply.response(status)}))
        return out

    def _fail(self, error: Any) -> list[bytes]:
        self.finished = True
        self._told = True
        message = error.get("message") if isinstance(error, dict) else None
        message = message if isinstance(message, str) and message else jsoncodec.dumps(error).decode()
        code = (
            error.get("code")
            if isinstance(error, dict) and isinstance(error.get("code"), str)
            else "server_error"
        )
        self.error = message
        return [
            self._emit({"type": "error", "code": code, "message": message, "param": None}),
            self._emit(
                {
                    "type": "response.failed",
                    "response": self._reply.response("failed", {"code": code, "message": message}),
                }
            ),
        ]


def as_response(completion: Any, model: str, request: dict[str, Any]) -> dict[str, Any] | None:
    """A whole chat completion as a Response object; None if it holds no reply."""
    if not isinstance(completion, dict) or not isinstance(completion.get("choices"), list):
        return None
    if not completion["choices"] or not isinstance(completion["choices"][0], dict):
        return None
    translator = ChatToResponses(model, request)
    translator.translate([jsoncodec.dumps(completion)])
    translator.translate([DONE])
    return translator.response()


def _copy(item: dict[str, Any]) -> dict[str, Any]:
    return {name: (list(value) if isinstance(value, list) else value) for name, value in item.items()}


def streamed_as_response(body: bytes, model: str, request: dict[str, Any]) -> dict[str, Any] | None:
    """A whole chat-completions stream (an upstream that streamed what was asked whole) as a Response."""
    decoder = SSEDecoder()
    translator = ChatToResponses(model, request)
    translator.translate([*decoder.feed(body), *decoder.flush()])
    translator.end()
    return translator.response() if translator.replied else None
