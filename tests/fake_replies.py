"""What the fake upstream (tests/fake_upstream.py) sends: a reply's steps, the OpenAI and Anthropic
streams they are built from, and the replies for load, chosen by the model name.

A `Reply` is a status, headers and a body of steps: bytes to send (each bytes step one write,
framed as one HTTP chunk), and pauses, resets, closes and stalls between them. The load replies
(`load_reply`) are made to cost the fake little with a thousand streams open, so that a
benchmark measures what is in front of the fake, never the fake itself.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache, cached_property, lru_cache
from http import HTTPStatus
from typing import Any

DEMO_REPLY = "Hello! I am the fake upstream: no API key, no network, streamed token by token. 👋"


@dataclass
class Pause:
    """Wait before the next step."""

    seconds: float


@dataclass
class Reset:
    """Abort the connection with a TCP reset."""


@dataclass
class Close:
    """Close the connection cleanly, mid-body if the body is not finished."""


@dataclass
class Stall:
    """Send nothing more; wait until the client gives up."""


Step = bytes | Pause | Reset | Close | Stall


@dataclass
class Reply:
    """What the fake sends for one request."""

    status: int = 200
    reason: str | None = None  # None: the standard phrase; "" sends none
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/event-stream"})
    body: list[Step] = field(default_factory=list)
    chunked: bool = True  # chunked transfer encoding; else Connection: close framing
    one_byte_writes: bool = False  # split every bytes step into one-byte writes
    delay_headers: float = 0.0  # seconds before the status line
    preamble: list[Step] = field(default_factory=list)  # sent as they are before the status line (1xx heads)
    hang_up: bool = False  # reset the connection without answering at all
    # Cheap replies for load (bytes steps only). one_write: the head, the body and its end in one
    # write, rendered once. tick: the head and first step at once, then one step per tick of this
    # many seconds on a clock every stream with the same tick shares, the body's end with the last.
    one_write: bool = False
    tick: float = 0.0

    @cached_property
    def framed(self) -> list[bytes]:
        """The body's steps framed for the wire, for the cheap replies (which have only bytes steps)."""
        if not all(isinstance(step, bytes) for step in self.body):
            raise ValueError("a reply sent in one write or by ticks has only bytes steps")
        return [wire_frame(step, self.chunked) for step in self.body if isinstance(step, bytes)]

    @cached_property
    def rendered_head(self) -> bytes:
        """The status line and headers, for the cheap replies."""
        return wire_head(self)

    @cached_property
    def rendered(self) -> bytes:
        """The whole reply as one write: head, body and the body's end."""
        return self.rendered_head + b"".join(self.framed) + (b"0\r\n\r\n" if self.chunked else b"")


# --- building blocks for replies -------------------------------------------------------------


def sse(payload: Any) -> bytes:
    """One SSE event whose data is `payload` (JSON unless bytes or str)."""
    if isinstance(payload, bytes):
        data = payload
    elif isinstance(payload, str):
        data = payload.encode()
    else:
        data = json.dumps(payload, ensure_ascii=False).encode()
    return b"data: " + data + b"\n\n"


# The model the fake names in its chunks, and the first write of the relay's reply to them.
FAKE_MODEL = "gpt-fake-0613"
PACKET = b'{"model":"' + FAKE_MODEL.encode() + b'"}'


def chunk(
    content: str | None = None,
    *,
    role: str | None = None,
    model: str = FAKE_MODEL,
    finish: str | None = None,
) -> dict[str, Any]:
    """A chat.completion.chunk with one choice."""
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def openai_stream(
    tokens: Iterable[str],
    *,
    model: str = FAKE_MODEL,
    pace: float = 0.0,
    done: bool = True,
    usage: dict[str, int] | None = None,
) -> list[Step]:
    """The body of an ordinary OpenAI stream: role chunk, one chunk per token, finish, [DONE]."""
    steps: list[Step] = [sse(chunk("", role="assistant", model=model))]
    for token in tokens:
        if pace:
            steps.append(Pause(pace))
        steps.append(sse(chunk(token, model=model)))
    steps.append(sse(chunk(model=model, finish="stop")))
    if usage is not None:
        steps.append(sse({"id": "chatcmpl-fake", "model": model, "choices": [], "usage": usage}))
    if done:
        steps.append(sse("[DONE]"))
    return steps


def responses_stream(tokens: Iterable[str], *, model: str = FAKE_MODEL, pace: float = 0.0) -> list[Step]:
    """A Responses API stream as OpenAI sends it (named events, no [DONE]), for routes that speak it."""
    text = "".join(tokens)
    message = {
        "type": "message",
        "id": "msg_fake",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
    part = {"type": "output_text", "text": "", "annotations": []}
    response = {
        "id": "resp_fake",
        "object": "response",
        "created_at": 1700000000,
        "model": model,
        "output": [],
    }
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {**response, "status": "in_progress"}},
        {"type": "response.output_item.added", "output_index": 0, "item": message},
        {
            "type": "response.content_part.added",
            "item_id": "msg_fake",
            "output_index": 0,
            "content_index": 0,
            "part": part,
        },
    ]
    steps: list[Pause | dict[str, Any]] = [*events]
    for token in tokens:
        if pace:
            steps.append(Pause(pace))
        steps.append(
            {"type": "response.output_text.delta", "item_id": "msg_fake", "output_index": 0,
             "content_index": 0, "delta": token, "logprobs": []}
        )  # fmt: skip
    done = {**message, "status": "completed", "content": [{**part, "text": text}]}
    usage = {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}
    steps.append({"type": "response.output_item.done", "output_index": 0, "item": done})
    steps.append(
        {
            "type": "response.completed",
            "response": {**response, "status": "completed", "output": [done], "usage": usage},
        }
    )
    # Numbered from 0 in each stream, as the Responses API does.
    numbers = itertools.count()
    return [named_sse(step, next(numbers)) if isinstance(step, dict) else step for step in steps]


def named_sse(payload: dict[str, Any], sequence: int) -> bytes:
    """An SSE event with its type as the event name, and its sequence number, as the Responses API sends."""
    payload = {**payload, "sequence_number": sequence}
    name: str = payload["type"]
    return b"event: " + name.encode() + b"\n" + sse(payload)


# --- what a coding agent's turns get: output items, tool calls, replies by turn ---------------


def chat_stream(
    text: str = "",
    *,
    reasoning: str = "",
    reasoning_field: str = "reasoning_content",
    calls: Iterable[tuple[str, str, str]] = (),
    usage: dict[str, Any] | None = None,
    model: str = FAKE_MODEL,
) -> list[Step]:
    """A chat completions stream as a reasoning model with tools sends it: its reasoning first (in
    `reasoning_field`: DeepSeek's and vLLM's `reasoning_content`, OpenRouter's `reasoning` or
    `reasoning_details`), then its text, then each tool call (call id, function name, arguments, the
    arguments in two pieces), its finish, the usage (if any), [DONE]."""

    def piece(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000,
                    "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})  # fmt: skip

    steps: list[Step] = [piece({"role": "assistant", "content": ""})]
    for word in tokenize(reasoning) if reasoning else ():
        if reasoning_field == "reasoning_details":
            steps.append(piece({"reasoning_details": [{"type": "reasoning.text", "text": word}]}))
        else:
            steps.append(piece({reasoning_field: word}))
    steps += [piece({"content": word}) for word in (tokenize(text) if text else ())]
    calls = list(calls)
    for number, (call_id, name, arguments) in enumerate(calls):
        half = len(arguments) // 2
        first = {
            "index": number,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        steps.append(piece({"tool_calls": [first]}))
        for part in (arguments[:half], arguments[half:]):
            steps.append(piece({"tool_calls": [{"index": number, "function": {"arguments": part}}]}))
    steps.append(piece({}, "tool_calls" if calls else "stop"))
    if usage is not None:
        steps.append(sse({"id": "chatcmpl-fake", "model": model, "choices": [], "usage": usage}))
    steps.append(sse("[DONE]"))
    return steps


def message_item(text: str, item_id: str = "msg_fake") -> dict[str, Any]:
    return {"type": "message", "id": item_id, "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}  # fmt: skip


def reasoning_item(summary: str, item_id: str = "rs_fake") -> dict[str, Any]:
    return {"type": "reasoning", "id": item_id, "summary": [{"type": "summary_text", "text": summary}]}


def function_call_item(
    call_id: str, name: str, arguments: str, namespace: str | None = None, item_id: str = "fc_fake"
) -> dict[str, Any]:
    item = {"type": "function_call", "id": item_id, "call_id": call_id, "name": name,
            "arguments": arguments, "status": "completed"}  # fmt: skip
    return item if namespace is None else {**item, "namespace": namespace}


def custom_call_item(
    call_id: str, name: str, given: str, namespace: str | None = None, item_id: str = "ctc_fake"
) -> dict[str, Any]:
    item = {"type": "custom_tool_call", "id": item_id, "call_id": call_id, "name": name, "input": given,
            "status": "completed"}  # fmt: skip
    return item if namespace is None else {**item, "namespace": namespace}


RESPONSES_USAGE = {
    "input_tokens": 11,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 7,
    "output_tokens_details": {"reasoning_tokens": 3},
    "total_tokens": 18,
}


def response_object(
    items: list[dict[str, Any]], *, model: str = FAKE_MODEL, usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The Response object a Responses API upstream answers with these output items, completed."""
    return {"id": "resp_fake", "object": "response", "created_at": 1700000000, "status": "completed",
            "model": model, "output": items, "usage": usage or RESPONSES_USAGE, "error": None,
            "incomplete_details": None, "tools": [], "tool_choice": "auto", "parallel_tool_calls": True}  # fmt: skip


def responses_events(
    items: list[dict[str, Any]], *, model: str = FAKE_MODEL, usage: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The events a Responses API upstream streams for these output items, as OpenAI sends them: each
    item added, its content in two deltas and done, then the item done; the reply completed."""
    whole = response_object(items, model=model, usage=usage)
    started = {**whole, "status": "in_progress", "output": [], "usage": None}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
    ]
    for index, item in enumerate(items):
        where = {"item_id": item["id"], "output_index": index}
        kind = item["type"]
        if kind == "message":
            text = item["content"][0]["text"]
            part = {"type": "output_text", "text": "", "annotations": []}
            events += [
                {"type": "response.output_item.added", "output_index": index,
                 "item": {**item, "status": "in_progress", "content": []}},
                {"type": "response.content_part.added", **where, "content_index": 0, "part": part},
                *({"type": "response.output_text.delta", **where, "content_index": 0, "delta": half,
                   "logprobs": []} for half in _halves(text)),
                {"type": "response.output_text.done", **where, "content_index": 0, "text": text, "logprobs": []},
                {"type": "response.content_part.done", **where, "content_index": 0, "part": {**part, "text": text}},
            ]  # fmt: skip
        elif kind == "reasoning":
            text = item["summary"][0]["text"]
            part = {"type": "summary_text", "text": ""}
            events += [
                {"type": "response.output_item.added", "output_index": index, "item": {**item, "summary": []}},
                {"type": "response.reasoning_summary_part.added", **where, "summary_index": 0, "part": part},
                *({"type": "response.reasoning_summary_text.delta", **where, "summary_index": 0, "delta": half}
                  for half in _halves(text)),
                {"type": "response.reasoning_summary_text.done", **where, "summary_index": 0, "text": text},
                {"type": "response.reasoning_summary_part.done", **where, "summary_index": 0,
                 "part": {**part, "text": text}},
            ]  # fmt: skip
        else:
            field_name, event = (
                ("input", "custom_tool_call_input") if kind == "custom_tool_call"
                else ("arguments", "function_call_arguments")
            )  # fmt: skip
            events += [
                {"type": "response.output_item.added", "output_index": index,
                 "item": {**item, field_name: "", "status": "in_progress"}},
                *({"type": f"response.{event}.delta", **where, "delta": half} for half in _halves(item[field_name])),
                {"type": f"response.{event}.done", **where, field_name: item[field_name]},
            ]  # fmt: skip
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    events.append({"type": "response.completed", "response": whole})
    return events


def responses_reply(items: list[dict[str, Any]], **kw: Any) -> Reply:
    """A Responses API upstream's stream of these output items (named, numbered events, no [DONE])."""
    return Reply(
        body=[named_sse(event, number) for number, event in enumerate(responses_events(items, **kw))]
    )


def _halves(text: str) -> list[str]:
    half = len(text) // 2
    return [part for part in (text[:half], text[half:]) if part]


def tool_outputs(request: Any) -> int:
    """How many tool results a request carries: a chat request's `tool` messages, a Responses request's
    `function_call_output` and `custom_tool_call_output` items. An agent's turn is that many calls in."""
    try:
        body = json.loads(request.body)
    except ValueError:
        return 0
    if not isinstance(body, dict):
        return 0
    listed = body.get("messages") if isinstance(body.get("messages"), list) else body.get("input")
    kinds = ("function_call_output", "custom_tool_call_output")
    return sum(
        isinstance(entry, dict) and (entry.get("role") == "tool" or entry.get("type") in kinds)
        for entry in (listed if isinstance(listed, list) else ())
    )


def by_turn(*replies: Reply) -> Callable[[Any], Reply]:
    """Replies scripted by turn: the Nth reply to a request that carries N - 1 tool results (the last
    for any later turn). By what the request holds, not by how many came: an agent's retries and
    warm-up requests get the same reply as the first try."""

    def reply(request: Any) -> Reply:
        return replies[min(tool_outputs(request), len(replies) - 1)]

    return reply


def tokenize(text: str) -> list[str]:
    """Split text into word-ish tokens, spaces kept, as a model would stream it."""
    tokens: list[str] = []
    for word in text.split(" "):
        tokens.append(word if not tokens else " " + word)
    return tokens


def error_reply(status: int, body: bytes, content_type: str = "application/json", **kw: Any) -> Reply:
    return Reply(status=status, headers={"Content-Type": content_type}, body=[body], **kw)


# --- Anthropic's Messages API ---------------------------------------------------------------------

ANTHROPIC_USAGE = {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 5}
# A tool call the fake makes: its name, and its input in the pieces it streams it in.
Tool = tuple[str, list[str]]


def anthropic_sse(payload: dict[str, Any]) -> bytes:
    """One event as Anthropic sends it: named by its type (its SDKs drop an event without a name)."""
    return b"event: " + str(payload["type"]).encode() + b"\n" + sse(payload)


def anthropic_events(
    tokens: Iterable[str],
    *,
    model: str = FAKE_MODEL,
    thinking: str | None = None,
    tool: Tool | None = None,
    output_tokens: int = 4,
) -> list[dict[str, Any]]:
    """The events of a Messages stream: message_start, a thinking block, a text block (a ping inside it,
    as Anthropic sends one), a tool_use block with its input in pieces, message_delta with the usage,
    message_stop."""
    message: dict[str, Any] = {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": ANTHROPIC_USAGE,
    }  # fmt: skip
    events: list[dict[str, Any]] = [{"type": "message_start", "message": message}]
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    if thinking is not None:
        deltas = [
            {"type": "thinking_delta", "thinking": thinking},
            {"type": "signature_delta", "signature": "SIG"},
        ]
        blocks.append(({"type": "thinking", "thinking": ""}, deltas))
    texts = [{"type": "text_delta", "text": token} for token in tokens]
    if texts:
        blocks.append(({"type": "text", "text": ""}, texts))
    if tool is not None:
        name, pieces = tool
        deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in pieces]
        blocks.append(({"type": "tool_use", "id": "toolu_fake", "name": name, "input": {}}, deltas))
    for index, (block, deltas) in enumerate(blocks):
        events.append({"type": "content_block_start", "index": index, "content_block": block})
        if block["type"] == "text":
            events.append({"type": "ping"})
        events += [{"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas]
        events.append({"type": "content_block_stop", "index": index})
    stop = "tool_use" if tool is not None else "end_turn"
    events.append(
        {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
         "usage": {"output_tokens": output_tokens}}
    )  # fmt: skip
    events.append({"type": "message_stop"})
    return events


def anthropic_stream(tokens: Iterable[str], *, pace: float = 0.0, **kw: Any) -> list[Step]:
    """A Messages stream's body, each event named, with `pace` seconds before each text delta."""
    steps: list[Step] = []
    for event in anthropic_events(tokens, **kw):
        if pace and event.get("delta", {}).get("type") == "text_delta":
            steps.append(Pause(pace))
        steps.append(anthropic_sse(event))
    return steps


def anthropic_message(
    text: str, *, model: str = FAKE_MODEL, tool: tuple[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A whole Message, as Anthropic answers when not asked to stream."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    if tool is not None:
        content.append({"type": "tool_use", "id": "toolu_fake", "name": tool[0], "input": tool[1]})
    return {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 4, "cache_creation_input_tokens": 2},
    }  # fmt: skip


def anthropic_reply(text: str = DEMO_REPLY, **kw: Any) -> Reply:
    """A whole Message as a reply."""
    body = json.dumps(anthropic_message(text, **kw)).encode()
    return Reply(headers={"Content-Type": "application/json", "request-id": "req_fake"}, body=[body])


def anthropic_error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    """An error answer in Anthropic's shape, {"type": "error", "error": {"type", "message"}}, with these headers."""
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}
    sent = {"Content-Type": "application/json", **(headers or {})}
    return Reply(status=status, headers=sent, body=[json.dumps(body).encode()])


def anthropic_answer(request_path: str, body: Any) -> Reply:
    """What the fake answers on /v1/messages when a test registered nothing: the demo reply, streamed or
    whole as asked; on /v1/messages/count_tokens, a count of the body's characters by four."""
    if request_path.split("?", maxsplit=1)[0].endswith("/count_tokens"):
        counted = json.dumps({"input_tokens": len(json.dumps(body)) // 4}).encode()
        return Reply(headers={"Content-Type": "application/json"}, body=[counted])
    if isinstance(body, dict) and body.get("stream") is True:
        return Reply(body=anthropic_stream(tokenize(DEMO_REPLY), model=str(body.get("model"))))
    return anthropic_reply(model=str(body.get("model")) if isinstance(body, dict) else FAKE_MODEL)


# --- replies for load, chosen by the model name ----------------------------------------------

LOAD_ERROR = b'{"error":{"message":"Rate limit reached (fake)","type":"requests","code":"rate_limit"}}'


def load_tokens(count: int) -> list[str]:
    """The tokens of a load reply of `count` tokens."""
    return [f" t{index}" for index in range(count)]


@lru_cache(maxsize=4096)  # parsed once per name: a thousand streams may start at once
def load_reply(model: str) -> Reply | None:
    """The reply to a load model name, built once per shape; None for any other name.

    short              the role chunk, one token, finish and [DONE], in one write
    paced:N:MS[:ID]    the role chunk at once, then N tokens MS milliseconds apart on a shared
                       clock, the finish and [DONE] with the last (ID: anything, to tell streams apart)
    bulk:N             N tokens in one write, as fast as the connection takes them
    error              a 429 with an OpenAI error body
    """
    kind, *args = model.split(":")
    try:
        if kind == "short" and not args:
            return _canned_stream(1)
        if kind == "bulk" and len(args) == 1:
            return _canned_stream(int(args[0]))
        if kind == "paced" and len(args) in (2, 3) and int(args[0]) > 0:
            return _paced_stream(int(args[0]), int(args[1]))
    except ValueError:
        return None
    if kind == "error" and not args:
        return _load_error()
    return None


@cache
def _load_error() -> Reply:
    return error_reply(429, LOAD_ERROR, one_write=True)


@cache
def _canned_stream(tokens: int) -> Reply:
    return Reply(body=openai_stream(load_tokens(tokens)), one_write=True)


@cache
def _paced_stream(tokens: int, milliseconds: int) -> Reply:
    role, *events, finish, done = openai_stream(load_tokens(tokens))
    assert isinstance(finish, bytes) and isinstance(done, bytes) and events
    last = events.pop()
    assert isinstance(last, bytes)
    # The last token, the finish and [DONE] in one step, so that no tick passes between the last
    # token and the end of the body (a client timing the gaps between reads would see one).
    return Reply(body=[role, *events, last + finish + done], tick=milliseconds / 1000)


# --- the wire --------------------------------------------------------------------------------


def wire_head(reply: Reply) -> bytes:
    """The status line and headers of a reply, and the framing of its body."""
    reason = reply.reason if reply.reason is not None else standard_reason(reply.status)
    head = [f"HTTP/1.1 {reply.status} {reason}"]  # an empty reason is allowed (and sent)
    head += [f"{name}: {value}" for name, value in reply.headers.items()]
    head.append("Transfer-Encoding: chunked" if reply.chunked else "Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")


def wire_frame(data: bytes, chunked: bool) -> bytes:
    """One bytes step as it goes on the wire: an HTTP chunk of its own, or as it is."""
    if not chunked or not data:
        return data  # an empty chunk would end a chunked body
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def standard_reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
