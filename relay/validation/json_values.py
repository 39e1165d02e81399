"""Checks on JSON values that every endpoint's body shares, and how a value is named in a message."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from relay.errors import BadRequest
from relay.formats import jsoncodec

# Real messages nest a few levels (content parts, image_url objects); this is far above
# that and far below what the JSON encoder allows.
MAX_DEPTH = 32


def parse_json_object(body: bytes, fields: str = "model and messages") -> dict[str, Any]:
    """The request body as a JSON object, or a BadRequest that says what it is instead.

    `fields`: what the endpoint's body must hold at least, for the message.
    """
    if not body.strip():
        raise BadRequest(f"The request body is empty; send a JSON object with {fields}.")
    try:
        data = jsoncodec.loads(body)
    except jsoncodec.JSONDecodeError:
        raise BadRequest(f"The request body is not valid JSON; send a JSON object with {fields}.") from None
    if not isinstance(data, dict):
        raise BadRequest(f"The request body must be a JSON object, got {kind(data)}.")
    return data


def model_name(data: dict[str, Any]) -> str:
    model = data.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest(f'"model" must be a non-empty string such as "gpt-4o-mini", got {kind(model)}.')
    return model


def token_count(name: str, value: Any) -> int:
    """A token count as JSON may carry it; BadRequest naming `name` otherwise."""
    # 2048.0 is the same number to a JavaScript client; 2048.5 and 0 are not token counts.
    if not is_number(value) or value != int(value) or value < 1:
        raise BadRequest(f'"{name}" must be a positive whole number, got {describe(value)}.')
    return int(value)


def check_depth(value: Any, where: str) -> None:
    """Refuse a value nested deeper than MAX_DEPTH (the JSON encoder would choke on it)."""
    level = [value]
    for _ in range(MAX_DEPTH):
        level = [
            child
            for item in level
            if isinstance(item, (dict, list))
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return
    if any(isinstance(item, (dict, list)) for item in level):
        raise BadRequest(f'"{where}" is nested more than {MAX_DEPTH} levels deep.')


def check_depths(data: dict[str, Any]) -> None:
    """Each field of a body within MAX_DEPTH, named in the refusal."""
    for name, value in data.items():
        check_depth(value, name)


def refuse_unknown_fields(data: dict[str, Any], known: frozenset[str], allowed: tuple[str, ...]) -> None:
    """Under MAX_TOKENS_LIMIT: refuse a field outside `known` and ALLOWED_FIELDS, naming it."""
    for name in data:
        if name not in known and name not in allowed:
            raise BadRequest(
                f'"{name[:64]}" is not passed on by this relay while it caps tokens (MAX_TOKENS_LIMIT): '
                "it may make a reply cost more than its tokens. Its owner can allow it (ALLOWED_FIELDS)."
            )


def is_number(value: Any) -> bool:
    # bool is an int in Python, but `true` is not a number in JSON; an int of any size is
    # finite (and too large for math.isfinite to take).
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def describe(value: Any) -> str:
    """A number as it is; anything else by its kind."""
    return repr(value) if is_number(value) else kind(value)


def kind(value: Any) -> str:
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


def quoted_type(value: Any) -> str:
    """A `type` the caller sent, for messages: quoted and cut short; "missing", or its kind."""
    if isinstance(value, str):
        return f'"{value[:64]}"'
    return "missing" if value is None else kind(value)


def string_field(item: dict[str, Any], name: str, where: str) -> str:
    """The string `item[name]`; a 400 naming `where.name` when it is anything else."""
    value = item.get(name)
    if not isinstance(value, str):
        raise BadRequest(f'"{where}.{name}" must be a string, got {kind(value)}.')
    return value


def tool_list(value: Any, where: str) -> list[Any]:
    """A list of tools at `where`; a 400 naming it when it is anything else."""
    if not isinstance(value, list):
        raise BadRequest(f'"{where}" must be a list of tools, got {kind(value)}.')
    return value


def tool_object(value: Any, where: str) -> dict[str, Any]:
    """A tool at `where`: a JSON object; a 400 naming it when it is anything else."""
    if not isinstance(value, dict):
        raise BadRequest(f'"{where}" must be a tool object, got {kind(value)}.')
    return value


@dataclass
class ApiBody:
    """A JSON body of one of the APIs: the object to pass on, and the model it names."""

    data: dict[str, Any]
    model: str  # as the caller named it, route prefix included

    @property
    def stream(self) -> bool:
        return self.data.get("stream") is True

    def token_field(self, name: str) -> int | None:
        """The whole number the caller set in `name`, if any (a 400 naming it for anything else)."""
        value = self.data.get(name)
        return None if value is None else token_count(name, value)
