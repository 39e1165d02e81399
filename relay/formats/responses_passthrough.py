"""The Responses API's stream passed on as the upstream sent it, one event at a time: pure, no I/O.

Each event goes out named by its type (`event: response.output_text.delta`), as OpenAI sends
them, one write per upstream read, no [DONE]; `response.completed`, `.incomplete` or
`.failed` ends the reply. A failure the relay finds after the stream began is told as OpenAI
tells one: an `error` event and `response.failed`, numbered after the last event passed on,
and after a `response.created` of the relay's own if the upstream had sent none.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from relay.formats.encoding import Event, named
from relay.formats.responses_items import event, new_id

# The Responses API's events that end a reply.
ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ResponsesPassThrough:
    """Re-frames the upstream's Responses events for the caller (an Encoder)."""

    __slots__ = ("_model", "_response", "_sequence", "error", "finished", "packet", "replied")

    def __init__(self, model: str) -> None:
        self._model = model
        self._sequence = -1  # the last sequence_number passed on
        self._response: dict[str, Any] | None = None  # the reply's id and model, once response.created came
        self.packet: bytes | None = None  # this format has none
        self.finished = False  # an ending event was passed on
        self.error: str | None = None
        self.replied = False

    def events(self, events: Sequence[Event], out: list[bytes]) -> None:
        framed: list[bytes] = []
        for payload, value in events:
            kind = value.get("type")
            number = value.get("sequence_number")
            if isinstance(number, int) and not isinstance(number, bool):
                self._sequence = max(self._sequence, number)
            response = value.get("response")
            if kind == "response.created" and isinstance(response, dict):
                self._response = {name: response.get(name) for name in ("id", "created_at", "model")}
            if kind in ("error", "response.failed") and self.error is None:
                self.error = f"{kind} event in the stream"
            framed.append(named(kind if isinstance(kind, str) else None, payload))
            if isinstance(kind, str) and kind in ENDS:
                self.finished = True
                break
        if framed:
            self.replied = True
            out.append(b"".join(framed))

    def done(self, out: list[bytes]) -> None:
        self.finished = True  # not part of this API; a reply that had no ending event is complete here

    def end(self, out: list[bytes]) -> None:
        """Nothing to add: this API has no [DONE]."""

    def note(self, message: str, out: list[bytes]) -> None:
        failure = {"code": "server_error", "message": message}
        response = self._response
        if response is None:  # the caller's SDK needs the reply to have begun before it can fail
            response = self._response = {
                "id": new_id("resp"),
                "created_at": int(time.time()),
                "model": self._model,
            }
            self._emit(
                {
                    "type": "response.created",
                    "response": {
                        **response,
                        "object": "response",
                        "status": "in_progress",
                        "output": [],
                        "error": None,
                    },
                },
                out,
            )
        self._emit({"type": "error", **failure, "param": None}, out)
        self._emit(
            {
                "type": "response.failed",
                "response": {
                    **response,
                    "object": "response",
                    "status": "failed",
                    "output": [],
                    "error": failure,
                },
            },
            out,
        )

    def _emit(self, payload: dict[str, Any], out: list[bytes]) -> None:
        self._sequence += 1
        out.append(event({**payload, "sequence_number": self._sequence}))
