"""JSON in and out, fast on the common path and exact on the rare one.

orjson does the work. It refuses a lone UTF-16 surrogate escape (`"\\ud83d"`,
from a string cut in the middle of an emoji), which JSON text may legally hold
and browsers do produce, and an integer beyond 64 bits; for those the standard
library takes over, and the output still matches JavaScript's `JSON.stringify`:
compact, non-ASCII as is, lone surrogates as `\\uXXXX`. (orjson would read an integer
beyond 64 bits as a float, losing digits: one of 20 digits or more is read by the standard
library too.) Input nested deeper than
orjson allows (1,024 levels when reading, 254 when writing) is refused, as
JSONDecodeError or ValueError, never as a crash.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import orjson

logger = logging.getLogger(__name__)

LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# A run of 20 digits, found as twenty zeros once every digit is one: a C-speed pass over each
# event (about a sixth of what a regular expression's search costs, on the hot path).
_DIGITS_AS_ZEROS = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_RUN = b"0" * 20


def _long_digits(raw: bytes) -> bool:
    return _LONG_RUN in raw.translate(_DIGITS_AS_ZEROS)


class JSONDecodeError(ValueError):
    """The bytes are not one JSON value."""


def loads(data: bytes | str) -> Any:
    """Parse strict JSON (no NaN or Infinity); accept lone surrogate escapes; keep every integer exact."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        if b"\\u" not in raw and not _long_digits(raw):
            raise JSONDecodeError(str(error)) from None
    else:
        # orjson reads an integer beyond 64 bits as a float, losing its last digits (or refuses it
        # past a float's range); a run of 20 digits is rare, and then the standard library reads it.
        if not _long_digits(raw):
            return value
        try:
            return json.loads(data, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return value  # what orjson read (nested deeper than the standard library goes)
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise JSONDecodeError(str(error) or "nested too deeply") from None


def event_object(payload: bytes) -> dict[str, Any] | None:
    """An SSE event's data as a JSON object, or None when it is anything else.

    Anything else but empty data is logged by its size only: it may hold the user's
    conversation.
    """
    try:
        value = loads(payload)
    except JSONDecodeError:
        value = None
    if isinstance(value, dict):
        return value
    if payload:
        logger.warning("Skipped an upstream event that is not a JSON object (%d bytes)", len(payload))
    return None


def dumps(value: Any) -> bytes:
    """Serialise compactly, byte for byte as JavaScript's JSON.stringify does."""
    try:
        return orjson.dumps(value)
    except TypeError as error:
        if "recursion" in str(error).lower():
            raise ValueError("nested too deeply to serialise") from None
    # A lone surrogate or an integer beyond 64 bits gets here; escape surrogates as JS does.
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except RecursionError:
        raise ValueError("nested too deeply to serialise") from None
    return LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode()


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")
