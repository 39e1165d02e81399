"""The original route's request body, validated before anyone is called.

`{apiKey?, model, messages, temperature?, max_tokens?}` as the 2023 client sends
it, plus the optional fields its wire types declared (`top_p`,
`frequency_penalty`, `presence_penalty`, `stop`). Every problem is a BadRequest
whose message names the field and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relay.config import HEADER_TOKEN
from relay.errors import BadRequest
from relay.formats import jsoncodec
from relay.validation.json_values import (
    check_depth,
    describe,
    is_number,
    kind,
    model_name,
    parse_json_object,
    token_count,
)

DEFAULT_TEMPERATURE = 0.5
DEFAULT_MAX_TOKENS = 2048

# name -> (lowest, highest) for the optional numbers forwarded as given
_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "frequency_penalty": (-2.0, 2.0),
    "presence_penalty": (-2.0, 2.0),
}


@dataclass(frozen=True)
class ChatRequest:
    """A validated request: what goes upstream, and the key the caller sent, if any."""

    model: str
    messages: list[Any]
    options: dict[str, Any]  # temperature and the optional fields present
    max_tokens: int | None = None  # the caller's; None: the default (DEFAULT_MAX_TOKENS, within limits)
    api_key: str | None = field(default=None, repr=False)

    def upstream_body(self, model: str, max_tokens: int, *, stream_usage: bool = False) -> bytes:
        """The chat completions body for `model` (as the upstream names it): streamed, one choice.

        With `stream_usage`, OpenAI's `stream_options.include_usage` asks for a last
        chunk with the token counts, for the request log (STREAM_USAGE).
        """
        body: dict[str, Any] = {"model": model, "messages": self.messages, **self.options}
        body.update(max_tokens=max_tokens, stream=True, n=1)
        if stream_usage:
            body["stream_options"] = {"include_usage": True}
        return jsoncodec.dumps(body)


def parse_chat_request(body: bytes) -> ChatRequest:
    """Validate a request body; raise BadRequest naming the first field that is wrong."""
    data = parse_json_object(body)
    model = model_name(data)

    api_key = data.get("apiKey")
    if api_key is not None and not isinstance(api_key, str):
        raise BadRequest(f'"apiKey" must be a string, got {kind(api_key)}.')
    if api_key and not HEADER_TOKEN.fullmatch(api_key):
        # Never quote it: it is a secret, and it would go into an Authorization header.
        raise BadRequest('"apiKey" must be an API key: visible ASCII characters, no spaces.')

    messages = _messages(data.get("messages"))
    options: dict[str, Any] = {"temperature": _number(data, "temperature", DEFAULT_TEMPERATURE)}
    for name in ("top_p", "frequency_penalty", "presence_penalty"):
        value = _number(data, name, None)
        if value is not None:
            options[name] = value
    stop = _stop(data)
    if stop is not None:
        options["stop"] = stop

    return ChatRequest(
        model=model,
        messages=messages,
        options=options,
        max_tokens=None if data.get("max_tokens") is None else token_count("max_tokens", data["max_tokens"]),
        api_key=api_key or None,
    )


def _messages(messages: Any) -> list[Any]:
    if not isinstance(messages, list) or not messages:
        raise BadRequest(
            '"messages" must be a non-empty list of {"role": ..., "content": ...} objects, '
            f"got {kind(messages)}."
        )
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise BadRequest(f'"{where}" must be an object with "role" and "content", got {kind(message)}.')
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise BadRequest(f'"{where}.role" must be a non-empty string such as "user", got {kind(role)}.')
        check_depth(message, where)
        if "content" not in message:
            raise BadRequest(f'"{where}.content" is missing; send a string or a list of content parts.')
        content = message["content"]
        # null content is what the OpenAI API takes for an assistant turn that only called tools.
        if content is None or isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise BadRequest(
                f'"{where}.content" must be a string or a list of content parts, got {kind(content)}.'
            )
        for part_index, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise BadRequest(
                    f'"{where}.content[{part_index}]" must be a content part object with a "type" '
                    'such as "text" or "image_url".'
                )
    return messages


def _number(data: dict[str, Any], name: str, default: float | None) -> float | None:
    value = data.get(name)
    if value is None:
        return default
    low, high = _RANGES[name]
    if not is_number(value) or not low <= value <= high:
        raise BadRequest(f'"{name}" must be a number from {low:g} to {high:g}, got {describe(value)}.')
    return value  # type: ignore[no-any-return]


def _stop(data: dict[str, Any]) -> str | list[str] | None:
    stop = data.get("stop")
    if stop is None or isinstance(stop, str):
        return stop
    if isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        return stop
    raise BadRequest(f'"stop" must be a string or a list of strings, got {kind(stop)}.')
