"""The forms a secret may take in text that is not the secret as it was: base64, escapes, masks.

relay/access/redaction.py redacts a secret in each of these forms; this module only says what
they look like. RUN is the redaction's unit: the fewest characters of a secret that are redacted.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

RUN = 8
# A key's public prefix: short lower-case segments, each ended by "-" or "_" (at most PREFIX_LIMIT).
PUBLIC_PREFIX = re.compile(rb"(?:[a-z][a-z0-9]{0,7}[-_])+")
PREFIX_LIMIT = 13  # Anthropic's sk-ant-api03- is the longest in use
# A masked key: what shows of its start, the mask, what shows of its end.
MASK = re.compile(rb"([A-Za-z0-9_\-]*)(?:\*{3,}|\.{3,}|\xe2\x80\xa6)([A-Za-z0-9_\-]*)")
MASKS = (b"***", b"...", b"\xe2\x80\xa6")
# Anything that an escape or a mask starts with; then, exactly, an escape or a mask.
MARKS = re.compile(rb"[\\%*.\xe2]")
MARKED = re.compile(rb"\\u00[2-7]|%[2-7][0-9a-fA-F]|\*\*\*|\.\.\.|\xe2\x80\xa6")
# Escapes of the characters a key is made of, which an upstream may use instead of them.
# (Not after a backslash: "\\\\u0073" is an escaped backslash, then text.)
ESCAPED = re.compile(rb"(?<!\\)\\u00([2-7][0-9a-fA-F])|%([2-7][0-9a-fA-F])")
KEY_CHARACTERS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~+/=:")
URL_SAFE = bytes.maketrans(b"+/", b"-_")


def public_prefix(secret: bytes) -> int:
    """The length of the secret's public prefix (`sk-proj-`), 0 if it has none."""
    prefix = PUBLIC_PREFIX.match(secret)
    if prefix is None or prefix.end() > PREFIX_LIMIT or len(secret) - prefix.end() < RUN:
        return 0
    return prefix.end()


def base64_forms(secret: bytes) -> set[bytes]:
    """The secret as base64 shows it, wherever it stands in what is encoded: 3 alignments, 2 alphabets."""
    forms = set()
    for skip in range(3):
        encoded = base64.b64encode(b"\0" * skip + secret + b"\0\0")
        form = encoded[(8 * skip + 5) // 6 : 8 * (skip + len(secret)) // 6]  # the secret's bits alone
        forms |= {form, form.translate(URL_SAFE)}
    return forms


def pieces(forms: Iterable[bytes], size: int) -> set[bytes]:
    """Every `size`-long piece of these forms."""
    return {form[i : i + size] for form in forms for i in range(len(form) - size + 1)}


def unescape(match: re.Match[bytes]) -> bytes:
    """An escaped character of a key, as itself; any other escape as it was."""
    character = int(match.group(1) or match.group(2), 16)
    return bytes((character,)) if character in KEY_CHARACTERS else match.group(0)
