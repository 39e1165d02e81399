"""JSON in and out, fast on the common path and exact on the rare one.

orjson does the work. It refuses two things that JSON text may legally hold and
that browsers do produce: a lone UTF-16 surrogate escape (`"\\ud83d"`, from a
string cut in the middle of an emoji). For those the standard library takes
over, so nothing valid is refused and the output matches JavaScript's
`JSON.stringify`: compact, non-ASCII as is, lone surrogates as `\\uXXXX`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONDecodeError(ValueError):
    """The bytes are not one JSON value."""


def loads(data: bytes | str) -> Any:
    """Parse strict JSON (no NaN or Infinity); accept lone surrogate escapes."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        if b"\\u" not in (data.encode() if isinstance(data, str) else data):
            raise JSONDecodeError(str(error)) from None
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise JSONDecodeError(str(error)) from None


def dumps(value: Any) -> bytes:
    """Serialise compactly, byte for byte as JavaScript's JSON.stringify does."""
    try:
        return orjson.dumps(value)
    except TypeError:
        # A lone surrogate or an integer beyond 64 bits gets here; escape surrogates as JS does.
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode()


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")
