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

from typing import Any

from relay.formats import jsoncodec
from relay.formats.original import DONE
from relay.formats.responses_reply import INCOMPLETE, Reply, event, response_usage
from relay.formats.sse import SSEDecoder


class ChatToResponses:
    """Translates one chat-completions stream into Responses events (an encoder of relay/serving/reply)."""

    def __init__(self, model: str, request: dict[str, Any]) -> None:
        self._reply = Reply(model, request)
        self._sequence = 0
        self._started = False
        self._failure: dict[str, str] | None = None  # told as events already
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
            chunk = jsoncodec.event_object(payload)
            if chunk is None:
                self.skipped += bool(payload)
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
        if self._failure is not None:
            return b""  # an error event of the upstream's, already told as events
        return b"".join([*self._start(), *self._fail({"message": message})])  # code: server_error

    def response(self) -> dict[str, Any]:
        """The Response object the events described, as it stands."""
        reply = self._reply
        if self._failure is not None:
            return reply.response("failed", self._failure)
        return reply.response("incomplete" if reply.finish in INCOMPLETE else "completed")

    # -- the events --

    def _emit(self, payload: dict[str, Any]) -> bytes:
        """The event, numbered in the order it is sent."""
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
                out += map(self._emit, reply.add_text(content))
            calls = delta.get("tool_calls")
            for position, call in enumerate(calls if isinstance(calls, list) else []):
                if isinstance(call, dict):
                    out += map(self._emit, reply.add_call(call, position))
        if choice.get("finish_reason"):
            reply.finish = choice["finish_reason"]
            out += map(self._emit, reply.close_items())
        return out

    def _complete(self) -> list[bytes]:
        if self.finished or not self.replied:
            self.finished = True
            return []  # nothing was replied: the relay says so (relay/serving/reply.py)
        self.finished = True
        reply = self._reply
        out = [self._emit(payload) for payload in reply.close_items()]
        status = "incomplete" if reply.finish in INCOMPLETE else "completed"
        out.append(self._emit({"type": f"response.{status}", "response": reply.response(status)}))
        return out

    def _fail(self, error: Any) -> list[bytes]:
        self.finished = True
        message = error.get("message") if isinstance(error, dict) else None
        message = message if isinstance(message, str) and message else jsoncodec.dumps(error).decode()
        code = error.get("code") if isinstance(error, dict) else None
        code = code if isinstance(code, str) and code else "server_error"
        self.error = message
        self._failure = {"code": code, "message": message}
        return [
            self._emit({"type": "error", "code": code, "message": message, "param": None}),
            self._emit(
                {
                    "type": "response.failed",
                    "response": self._reply.response("failed", self._failure),
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


def streamed_as_response(body: bytes, model: str, request: dict[str, Any]) -> dict[str, Any] | None:
    """A whole chat-completions stream (an upstream that streamed what was asked whole) as a Response."""
    decoder = SSEDecoder()
    translator = ChatToResponses(model, request)
    translator.translate([*decoder.feed(body), *decoder.flush()])
    translator.end()
    return translator.response() if translator.replied else None
