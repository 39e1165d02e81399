"""Keeps keys and tokens out of everything the relay writes: responses, headers and log lines.

The rule: no run of WINDOW characters of a secret appears, in whatever form an upstream
echoes it (whole, masked as `sk-abc***xyz` or `sk-ROUT...QPO0`, quoted twice, its
characters JSON- or percent-escaped). So at most four characters in a row of any
secret can be seen (OpenAI's own masks show the last four). The public prefix every
key of a kind shares (`sk-proj-`, `sk-or-v1-`, `gsk_`) is not secret, and would match
ordinary text ("sub-project"), so runs are taken from what follows it. Every run of WINDOW or more
characters holds one of the secret's three-character blocks at a multiple of three, so
a text that holds none of those is passed on after one substring search per block;
only a text that does is scanned, at the windows around each block it holds.

Not caught: a secret an upstream splits into pieces shorter than WINDOW across separate
events (no upstream has a reason to; none is sent a secret other than its own key).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"
WINDOW = 5
_BLOCK = 3  # WINDOW >= 2 * _BLOCK - 1, so every WINDOW-long run holds a whole aligned block

# A key masked with asterisks or dots whatever its length: "sk-abc***xyz", "sk-ROUT...QPO0". Its
# visible end is required: "sk-..." alone is the placeholder of every README, not a key.
_MASKED_KEY = re.compile(r"\bsk-[A-Za-z0-9_\-]*(?:\*{3,}|\.{3,}|…)[A-Za-z0-9_\-]+")
# Escapes of the characters a key is made of, which an upstream may use instead of them.
# (Not after a backslash: "\\\\u0073" is an escaped backslash, then text.)
_ESCAPED = re.compile(r"(?<!\\)\\u00([2-7][0-9a-fA-F])|%([2-7][0-9a-fA-F])")
# A key's public prefix: short lower-case segments, each ended by "-" or "_" (at most PREFIX_LIMIT).
_PUBLIC_PREFIX = re.compile(r"(?:[a-z][a-z0-9]{0,7}[-_])+")
PREFIX_LIMIT = 12
_KEY_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~+/=:")


class Redactor:
    """Redacts a fixed set of secrets; build one per set and reuse it."""

    __slots__ = ("_blocks", "_suspect", "_whole", "_windows")

    def __init__(self, secrets: Iterable[str | None]) -> None:
        present = {secret for secret in secrets if secret}
        # Whole secrets first (prefix and all, the longest first); then any run of what follows a prefix.
        self._whole = tuple(sorted(present, key=len, reverse=True))
        long = [_without_public_prefix(secret) for secret in present if len(secret) >= WINDOW]
        self._windows = {secret[i : i + WINDOW] for secret in long for i in range(len(secret) - WINDOW + 1)}
        self._blocks = tuple(
            {secret[i : i + _BLOCK] for secret in long for i in range(0, len(secret) - _BLOCK + 1, _BLOCK)}
            | {secret for secret in present if len(secret) < WINDOW}
        )
        # One search for anything that could need a closer look: a block, an escape, a masked key.
        self._suspect = re.compile(
            b"|".join(re.escape(block.encode()) for block in (*self._blocks, "\\u00", "%", "sk-"))
        )

    def might_hold(self, data: bytes) -> bool:
        """Whether these bytes could hold a secret or a masked key (false: certainly not)."""
        return self._suspect.search(data) is not None

    def redact(self, text: str) -> str:
        """`text` with every run of a secret, and any masked key, replaced by [redacted]."""
        if self._blocks and ("\\u00" in text or "%" in text):
            unescaped = _ESCAPED.sub(_unescape, text)
            if unescaped != text and self._redact_runs(unescaped) != unescaped:
                text = unescaped  # the escapes hid a secret: show the unescaped text, redacted
        if "sk-" in text:
            text = _MASKED_KEY.sub(REDACTED, text)
        return self._redact_runs(text)

    def redact_bytes(self, data: bytes) -> bytes:
        """The same for UTF-8 bytes; the bytes themselves when nothing is found (the usual case)."""
        if not self.might_hold(data):
            return data
        text = data.decode("utf-8", "replace")
        redacted = self.redact(text)
        return data if redacted == text else redacted.encode()

    def _redact_runs(self, text: str) -> str:
        if not any(block in text for block in self._blocks):
            return text
        for secret in self._whole:
            text = text.replace(secret, REDACTED)
        windows = self._windows
        last_start = len(text) - WINDOW
        # Only the windows around a block are looked at, not every position of the text: a
        # window of a secret starts 0 to WINDOW - _BLOCK characters before one of its blocks.
        starts: set[int] = set()
        for block in self._blocks:
            at = text.find(block)
            while at != -1:
                starts.update(range(max(at - (WINDOW - _BLOCK), 0), min(at, last_start) + 1))
                at = text.find(block, at + 1)
        covered: list[tuple[int, int]] = []
        for start in sorted(starts):
            if text[start : start + WINDOW] in windows:
                end = start + WINDOW
                if covered and start <= covered[-1][1]:
                    covered[-1] = (covered[-1][0], end)
                else:
                    covered.append((start, end))
        if not covered:
            return text
        pieces, last = [], 0
        for start, end in covered:
            pieces += [text[last:start], REDACTED]
            last = end
        pieces.append(text[last:])
        return "".join(pieces)


def _without_public_prefix(secret: str) -> str:
    prefix = _PUBLIC_PREFIX.match(secret)
    if prefix is None or prefix.end() > PREFIX_LIMIT or len(secret) - prefix.end() < WINDOW:
        return secret
    return secret[prefix.end() :]


def _unescape(match: re.Match[str]) -> str:
    character = chr(int(match.group(1) or match.group(2), 16))
    return character if character in _KEY_CHARACTERS else match.group(0)


_CACHE: dict[tuple[str | None, ...], Redactor] = {}
_CACHE_SIZE = 256  # callers' own keys vary; the server's keys are few


def redactor_for(secrets: tuple[str | None, ...]) -> Redactor:
    """A Redactor for these secrets, kept for the next request that sends the same ones."""
    found = _CACHE.get(secrets)
    if found is None:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        found = _CACHE[secrets] = Redactor(secrets)
    return found


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every run of these secrets, and any masked key, in `text`."""
    return redactor_for(tuple(secrets)).redact(text)
