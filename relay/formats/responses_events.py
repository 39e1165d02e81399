"""The Responses API's events, made from a chat-only upstream's stream: pure, no I/O.

`ChatToResponses` turns chat.completion.chunk objects into the Responses events the OpenAI
SDKs and the Vercel AI SDK read, as OpenAI sends them: `response.created`,
`response.in_progress`; for reasoning (`reasoning_content`, `reasoning`,
`reasoning_details`), a reasoning item with its summary text; for text, a message item
(`output_item.added`, `content_part.added`, `output_text.delta`..., the `.done` events); for
each tool call, a function_call item (`function_call_arguments.delta`...), or the call of the
caller's namespaced or custom tool the function stands for (`ToolNames`); then
`response.completed` (or `response.incomplete` when the reply ran out of tokens), with the
whole output and the usage. A failure is an `error` event and `response.failed`, always
after `response.created`. Every event carries its `sequence_number`, in the order sent.

What the upstream sends is read by type: a field of the wrong JSON type is skipped as if
absent, never a crash. `as_response` does the same for a whole chat completion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from relay.formats.chat_chunks import completion_as_chunks, reasoning_of
from relay.formats.original_text import describe_error
from relay.formats.responses_items import event
from relay.formats.responses_object import INCOMPLETE, Draft, TooLarge, response_usage
from relay.formats.responses_tools import ToolNames
from relay.formats.sse import MAX_EVENT_BYTES

# Events are joined into writes of about this much: one per upstream read, more where the reply's
# closing events (each repeating its whole item) would make one large write.
WRITE_BYTES = 256 * 1024


class ChatToResponses:
    """Translates one chat completions stream into Responses events (an Encoder)."""

    def __init__(
        self,
        model: str,
        request: dict[str, Any],
        limit: int = MAX_EVENT_BYTES,
        tools: ToolNames | None = None,
    ) -> None:
        self._draft = Draft(model, request, limit, tools)
        self._sequence = 0
        self._started = False
        self._code = "server_error"  # of the failure, once failed
        self._made: list[bytes] = []  # events made, not yet a write
        self._made_bytes = 0
        self._writes: list[bytes] = []
        self.packet: bytes | None = None  # this format has none
        self.finished = False
        self.error: str | None = None  # the reply failed; told as events already
        self.replied = False

    def events(self, events: Sequence[tuple[bytes, dict[str, Any]]], out: list[bytes]) -> None:
        for _, chunk in events:
            if self.finished:
                break
            self._start()
            if chunk.get("error") is not None:
                self._fail(chunk["error"])
                break
            try:
                self._chunk(chunk)
            except TooLarge as error:
                self._fail({"message": str(error)})
                break
        self._flush(out)

    def done(self, out: list[bytes]) -> None:
        """The upstream's [DONE]: the reply is complete."""
        self._complete()
        self._flush(out)

    end = done  # the upstream's stream ended without [DONE]: the reply is complete all the same

    def note(self, message: str, out: list[bytes]) -> None:
        """A failure after the stream began: an error event, and the reply failed (once)."""
        if self.error is None:
            self._start()
            self._fail({"message": message})
        self._flush(out)

    def response(self) -> dict[str, Any]:
        """The Response object the events described, as it stands."""
        draft = self._draft
        if self.error is not None:
            return draft.response("failed", {"code": self._code, "message": self.error})
        return draft.response("incomplete" if draft.finish in INCOMPLETE else "completed")

    # -- the events --

    def _emit(self, payloads: list[dict[str, Any]]) -> None:
        """The events, numbered in the order they are sent: one write for those of one read,
        several where they would make a large one (a long reply's closing events)."""
        for payload in payloads:
            payload["sequence_number"] = self._sequence
            self._sequence += 1
            made = event(payload)
            self._made.append(made)
            self._made_bytes += len(made)
            if self._made_bytes >= WRITE_BYTES:
                self._writes.append(b"".join(self._made))
                self._made, self._made_bytes = [], 0

    def _flush(self, out: list[bytes]) -> None:
        if self._made:
            self._writes.append(b"".join(self._made))
            self._made, self._made_bytes = [], 0
        out += self._writes
        self._writes = []

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        draft = self._draft
        self._emit(
            [
                {"type": "response.created", "response": draft.response("in_progress")},
                {"type": "response.in_progress", "response": draft.response("in_progress")},
            ]
        )

    def _chunk(self, chunk: dict[str, Any]) -> None:
        draft = self._draft
        usage = response_usage(chunk.get("usage"))
        if usage is not None:
            draft.usage = usage
        choice = first_choice(chunk)
        if choice is None:
            return  # a usage or prompt-filter chunk, or another choice's: a Response has one reply
        self.replied = True
        delta = choice.get("delta")
        if isinstance(delta, dict):
            reasoning = reasoning_of(delta)
            if reasoning:
                self._emit(draft.add_reasoning(reasoning))
            for name in ("content", "refusal"):
                text = delta.get(name)
                if isinstance(text, str) and text:
                    self._emit(draft.add_text(text))
            calls = delta.get("tool_calls")
            for position, call in enumerate(calls if isinstance(calls, list) else ()):
                if isinstance(call, dict):
                    self._emit(self._call(call, position))
        finish = choice.get("finish_reason")
        if isinstance(finish, str) and finish:
            draft.finish = finish
            self._emit(draft.close_items())

    def _call(self, call: dict[str, Any], position: int) -> list[dict[str, Any]]:
        number = call.get("index", position)
        if not isinstance(number, int) or isinstance(number, bool):
            number = position
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        call_id, name, arguments = call.get("id"), function.get("name"), function.get("arguments")
        return self._draft.add_call(
            number,
            call_id if isinstance(call_id, str) and call_id else None,
            name if isinstance(name, str) else None,
            arguments if isinstance(arguments, str) else "",
        )

    def _complete(self) -> None:
        if self.finished:
            return
        self.finished = True
        if not self.replied:
            return  # nothing was replied: the relay says so (relay/serving/relayed_stream.py)
        draft = self._draft
        self._emit(draft.close_items())
        status = "incomplete" if draft.finish in INCOMPLETE else "completed"
        self._emit([{"type": f"response.{status}", "response": draft.response(status)}])

    def _fail(self, error: Any) -> None:
        self.finished = True
        message = describe_error(error)
        code = error.get("code") if isinstance(error, dict) else None
        self._code = code if isinstance(code, str) and code else "server_error"
        self.error = message
        self._emit(
            [
                {"type": "error", "code": self._code, "message": message, "param": None},
                {"type": "response.failed", "response": self.response()},
            ]
        )


def first_choice(chunk: dict[str, Any]) -> dict[str, Any] | None:
    """The chunk's part of the first choice (index 0, or no index), the only one a Response tells."""
    choices = chunk.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        if isinstance(choice, dict) and choice.get("index", 0) in (0, None):
            return choice
    return None


def as_response(
    completion: dict[str, Any],
    model: str,
    request: dict[str, Any],
    limit: int,
    tools: ToolNames | None = None,
) -> dict[str, Any] | None:
    """A whole chat completion as a Response object; None if it holds no reply."""
    chunks = completion_as_chunks(completion)
    if chunks is None:
        return None
    translator = ChatToResponses(model, request, limit, tools)
    translator.events([(b"", chunk) for chunk in chunks], [])
    translator.done([])
    return translator.response() if translator.replied else None
