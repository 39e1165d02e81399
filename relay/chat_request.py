"""The original route's request body, validated before anyone is called.

`{apiKey?, model, messages, temperature?, max_tokens?}` as the 2023 client sends
it, plus the optional fields its wire types declared (`top_p`,
`frequency_penalty`, `presence_penalty`, `stop`). Every problem is a BadRequest
whose message names the field and what was expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from relay import jsoncodec
from relay.config import HEADER_TOKEN
from relay.errors import BadRequest

DEFAULT_TEMPERATURE = 0.5
DEFAULT_MAX_TOKENS = 2048
# Real messages nest a few levels (content parts, image_url objects); this is far above
# that and far below what the JSON encoder allows.
MAX_MESSAGE_DEPTH = 32

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
    options: dict[str, Any]  # temperature, max_tokens and the optional fields present
    api_key: str | None = field(default=None, repr=False)
    max_tokens_given: bool = False  # False: max_tokens is the default, not the caller's

    def upstream_body(self, *, stream_usage: bool = False) -> bytes:
        """The chat completions body: the validated fields, streamed, one choice.

        With `stream_usage`, OpenAI's `stream_options.include_usage` asks for a last
        chunk with the token counts, for the request log (STREAM_USAGE).
        """
        body: dict[str, Any] = {"model": self.model, "messages": self.messages, **self.options}
        body.update(stream=True, n=1)
        if stream_usage:
            body["stream_options"] = {"include_usage": True}
        return jsoncodec.dumps(body)


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a BadRequest that says what it is instead."""
    if not body.strip():
        raise BadRequest("The request body is empty; send a JSON object with model and messages.")
    try:
        data = jsoncodec.loads(body)
    except jsoncodec.JSONDecodeError:
        raise BadRequest(
            "The request body is not valid JSON; send a JSON object with model and messages."
        ) from None
    if not isinstance(data, dict):
        raise BadRequest(f"The request body must be a JSON object, got {_kind(data)}.")
    return data


def parse_chat_request(body: bytes) -> ChatRequest:
    """Validate a request body; raise BadRequest naming the first field that is wrong."""
    data = parse_json_object(body)
    model = data.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest(f'"model" must be a non-empty string such as "gpt-4o-mini", got {_kind(model)}.')

    api_key = data.get("apiKey")
    if api_key is not None and not isinstance(api_key, str):
        raise BadRequest(f'"apiKey" must be a string, got {_kind(api_key)}.')
    if api_key and not HEADER_TOKEN.fullmatch(api_key):
        # Never quote it: it is a secret, and it would go into an Authorization header.
        raise BadRequest('"apiKey" must be an API key: visible ASCII characters, no spaces.')

    messages = _messages(data.get("messages"))
    options: dict[str, Any] = {
        "temperature": _number(data, "temperature", DEFAULT_TEMPERATURE),
        "max_tokens": _max_tokens(data),
    }
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
        api_key=api_key or None,
        max_tokens_given=data.get("max_tokens") is not None,
    )


def _messages(messages: Any) -> list[Any]:
    if not isinstance(messages, list) or not messages:
        raise BadRequest(
            '"messages" must be a non-empty list of {"role": ..., "content": ...} objects, '
            f"got {_kind(messages)}."
        )
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise BadRequest(f'"{where}" must be an object with "role" and "content", got {_kind(message)}.')
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise BadRequest(f'"{where}.role" must be a non-empty string such as "user", got {_kind(role)}.')
        check_depth(message, where)
        if "content" not in message:
            raise BadRequest(f'"{where}.content" is missing; send a string or a list of content parts.')
        content = message["content"]
        # null content is what the OpenAI API takes for an assistant turn that only called tools.
        if content is None or isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise BadRequest(
                f'"{where}.content" must be a string or a list of content parts, got {_kind(content)}.'
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
    if not _is_number(value) or not low <= value <= high:
        raise BadRequest(f'"{name}" must be a number from {low:g} to {high:g}, got {_describe(value)}.')
    return value  # type: ignore[no-any-return]


def _max_tokens(data: dict[str, Any]) -> int:
    value = data.get("max_tokens")
    return DEFAULT_MAX_TOKENS if value is None else token_count("max_tokens", value)


def token_count(name: str, value: Any) -> int:
    """A token count as JSON may carry it; BadRequest naming `name` otherwise."""
    # 2048.0 is the same number to a JavaScript client; 2048.5 and 0 are not token counts.
    if not _is_number(value) or value != int(value) or value < 1:
        raise BadRequest(f'"{name}" must be a positive whole number, got {_describe(value)}.')
    return int(value)


def check_depth(value: Any, where: str) -> None:
    """Refuse a value nested deeper than MAX_MESSAGE_DEPTH (the JSON encoder would choke on it)."""
    if _deeper_than(value, MAX_MESSAGE_DEPTH):
        raise BadRequest(f'"{where}" is nested more than {MAX_MESSAGE_DEPTH} levels deep.')


def _stop(data: dict[str, Any]) -> str | list[str] | None:
    stop = data.get("stop")
    if stop is None or isinstance(stop, str):
        return stop
    if isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        return stop
    raise BadRequest(f'"stop" must be a string or a list of strings, got {_kind(stop)}.')


def _is_number(value: Any) -> bool:
    # bool is an int in Python, but `true` is not a number in JSON; an int of any size is
    # finite (and too large for math.isfinite to take).
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _deeper_than(value: Any, limit: int) -> bool:
    level = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            if isinstance(item, (dict, list))
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return False
    return any(isinstance(item, (dict, list)) for item in level)


def _describe(value: Any) -> str:
    return repr(value) if _is_number(value) else _kind(value)


def _kind(value: Any) -> str:
    """The JSON type of a value, for messages (never the value: it may be a secret)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else "a string"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    return "an object"
