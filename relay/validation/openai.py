"""The OpenAI-compatible chat completions body: checked where the relay must, passed on as it is.

Every parameter passes through (tools, response_format, provider fields); the relay
checks only what it acts on: the model, that messages are there, the nesting depth,
and the token fields MAX_TOKENS_LIMIT caps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relay.errors import BadRequest
from relay.validation.json_values import check_depth, model_name, parse_json_object, token_count

# The fields a caller may set a reply's length with.
TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")


@dataclass
class ChatCompletionsRequest:
    """A /v1/chat/completions body: the JSON object to pass on, and what the relay reads of it."""

    data: dict[str, Any]
    model: str  # as the caller named it, route prefix included

    @property
    def stream(self) -> bool:
        return self.data.get("stream") is True

    def asked_tokens(self) -> dict[str, int]:
        """The token fields the caller set, as whole numbers."""
        return {
            name: token_count(name, self.data[name])
            for name in TOKEN_FIELDS
            if self.data.get(name) is not None
        }


def parse_chat_completions(body: bytes) -> ChatCompletionsRequest:
    data = parse_json_object(body)
    model = model_name(data)
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest('"messages" must be a non-empty list of messages.')
    for name, value in data.items():
        check_depth(value, name)
    return ChatCompletionsRequest(data, model)


def check_one_choice(data: dict[str, Any]) -> None:
    """With a token limit, one reply per request: each extra choice is another reply's tokens."""
    choices = data.get("n")
    if choices is not None and (isinstance(choices, bool) or choices != 1):  # True == 1 in Python
        raise BadRequest('"n" must be 1 on this relay: each choice is another reply (MAX_TOKENS_LIMIT).')
