"""Keeps keys and tokens out of what the relay writes, and leaves everything else as it was written.

The rule (docs/design.md, "Redaction"):
- A secret is a value of at least MIN_SECRET characters that is not a word. A key such as
  `ollama`, `EMPTY`, `lm-studio` or `sk-no-key-required` is the placeholder a local server asks
  for, not a secret: it is never redacted (the relay says so at start-up), since a model's reply
  mentions it as a word.
- Of a secret, these are redacted: the secret whole; a masked form of it whose hidden middle is
  longer than its visible ends (`sk-proj-****QPO0`, `sk-Ab3...QPO0`, as OpenAI's 401 quotes a
  key); any run of RUN or more characters of what follows its public prefix (`sk-proj-`,
  `sk-or-v1-`, `gsk_`: every key of a kind shares it, and it matches ordinary text), also of the
  secret's base64 forms (its three alignments, both alphabets) and behind JSON or percent escapes.
  Nothing shorter: RUN - 1 characters of a random key tell nobody anything, and text, hashes and
  base64 that share fewer than RUN characters with a key pass byte for byte.
- A stream is redacted as one text however its writes split it (`Redactor.stream`): a write's
  last characters are held back, at most RUN - 1 of them and only while they could begin a run.
  (Escapes and masks are read within one write: an upstream that echoes a key writes it at once.)

Secrets are ASCII (they travel in headers), so this works on bytes. Finding runs costs the same
whatever the secrets' length: any RUN bytes in a row hold a GRAM-long piece that starts at a
multiple of GRAM (RUN >= 2 * GRAM - 1), so a write that holds a run holds, at one of those
places, a GRAM-long piece of a secret: the pieces are looked up in a set, as integers, in C.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable

from relay.access.secret_forms import (
    ESCAPED,
    KEY_CHARACTERS,
    MARKED,
    MARKS,
    MASK,
    MASKS,
    RUN,
    base64_forms,
    pieces,
    public_prefix,
    unescape,
)
from relay.config.placeholders import is_secret

REDACTED = "[redacted]"
GRAM = 4  # the bytes of a native unsigned int: memoryview.cast("I") cuts a write into its pieces

_REDACTED = REDACTED.encode()


class Redactor:
    """Redacts a fixed set of secrets; build one per set and reuse it (`redactor_for`)."""

    __slots__ = ("_grams", "_hold", "_numbers", "_secrets", "_whole", "_windows")

    def __init__(self, secrets: Iterable[str | None]) -> None:
        real = sorted({secret.encode() for secret in secrets if secret and is_secret(secret)}, key=len)
        self._whole = tuple(reversed(real))  # the longest first: one may hold another
        self._secrets = tuple((secret, public_prefix(secret)) for secret in real)
        forms = {secret[prefix:] for secret, prefix in self._secrets}
        forms |= {form for secret in real for form in base64_forms(secret)}
        self._windows = pieces(forms, RUN)
        self._grams = pieces(forms, GRAM)
        # What may end a write and still begin a run in the next one: a stream's carry.
        self._hold = {
            piece for size in range(1, RUN) for piece in pieces(forms, size) if set(piece) <= KEY_CHARACTERS
        }
        # The same pieces as native unsigned ints, as memoryview.cast("I") reads them from a write.
        self._numbers = frozenset(struct.unpack("=I", piece)[0] for piece in self._grams) if real else None

    @property
    def active(self) -> bool:
        """Whether there is any secret to keep out (placeholders are none)."""
        return self._numbers is not None

    def might_hold(self, data: bytes) -> bool:
        """Whether these bytes could hold a secret (false: certainly not)."""
        numbers = self._numbers
        if numbers is None:
            return False
        if not numbers.isdisjoint(memoryview(data)[: len(data) - len(data) % GRAM].cast("I")):
            return True
        return MARKS.search(data) is not None and MARKED.search(data) is not None

    def redact(self, text: str) -> str:
        """`text` with every run, masked form and whole of a secret replaced by [redacted]."""
        if self._numbers is None:
            return text
        data = text.encode("utf-8", "surrogatepass")
        redacted = self.redact_bytes(data)
        return text if redacted is data else redacted.decode("utf-8", "surrogatepass")

    def redact_bytes(self, data: bytes) -> bytes:
        """The same for bytes; the bytes themselves when nothing is found (the usual case)."""
        if not self.might_hold(data):
            return data
        text = self.unmask(data)
        for secret in self._whole:
            text = text.replace(secret, _REDACTED)
        text = self._replace(text, 0, len(text), self._covered(text))[0]
        return data if text == data else text

    def unmask(self, data: bytes) -> bytes:
        """Escaped and masked forms of a secret: unescaped where that shows one, masks redacted."""
        text = data
        if b"\\u00" in text or b"%" in text:
            unescaped = ESCAPED.sub(unescape, text)
            if unescaped != text and self._covered(unescaped):
                text = unescaped  # the escapes hid a secret: show the unescaped text, redacted
        if any(mask in text for mask in MASKS):
            text = MASK.sub(self._masked, text)
        return text

    def stream(self) -> StreamRedaction:
        """Redaction for the writes of one stream, as one text."""
        return StreamRedaction(self)

    def held(self, data: bytes) -> int:
        """How many of the last bytes to hold back: the longest end that could begin a run (< RUN)."""
        if not data or data[-1] not in KEY_CHARACTERS:
            return 0  # the usual end of a write: a newline, a quote, a space
        for size in range(min(RUN - 1, len(data)), 0, -1):
            if data[-size:] in self._hold:
                return size
        return 0

    def _hits(self, data: bytes) -> list[int]:
        """Where a run may lie: the places at multiples of GRAM whose piece belongs to a secret."""
        grams = self._grams
        return [at for at in range(0, len(data) - GRAM + 1, GRAM) if data[at : at + GRAM] in grams]

    def _covered(self, text: bytes) -> list[tuple[int, int]]:
        """The stretches of `text` that runs of a secret cover, merged, in order."""
        windows = self._windows
        starts = sorted({start for at in self._hits(text) for start in range(max(at - GRAM, 0), at + 1)})
        covered: list[tuple[int, int]] = []
        for start in starts:
            if text[start : start + RUN] in windows:
                end = start + RUN
                if covered and start <= covered[-1][1]:
                    covered[-1] = (covered[-1][0], max(end, covered[-1][1]))
                else:
                    covered.append((start, end))
        return covered

    @staticmethod
    def _replace(
        text: bytes, start: int, end: int, covered: list[tuple[int, int]], going_on: bool = False
    ) -> tuple[bytes, bool]:
        """text[start:end], each covered stretch one [redacted]; and whether its last byte is in one.

        `going_on`: the byte before `start` was in a stretch, already marked; one that meets it
        goes on under that marker.
        """
        pieces, at, last_covered = [], start, False
        for low, high in covered:
            if high < start or low >= end:
                continue
            if high == start:  # ends where this text begins: it was the one going on
                continue
            if low > at:
                pieces.append(text[at:low])
            if low > start or (low == start and not going_on):
                pieces.append(_REDACTED)
            at = max(at, min(high, end))
            last_covered = high >= end
        pieces.append(text[at:end])
        return b"".join(pieces), last_covered if end > start else going_on

    def _masked(self, match: re.Match[bytes]) -> bytes:
        start, end = match.group(1), match.group(2)
        for secret, prefix in self._secrets:
            if secret.startswith(start) and secret.endswith(end):
                shown = max(len(start) - prefix, 0) + len(end)
                if shown and len(secret) - len(start) - len(end) > shown:
                    return _REDACTED
        return match.group(0)


class StreamRedaction:
    """The writes of one stream redacted as one text: what could begin a run waits for the next write."""

    __slots__ = ("_context", "_going_on", "_held", "_redactor")

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._going_on = False  # the last byte sent was in a run (its marker sent)
        self._context = b""  # the last bytes sent (as they came), which a run may go on from
        self._held = b""  # bytes not sent yet: they may begin a run

    def feed(self, data: bytes) -> bytes:
        redactor = self._redactor
        if not redactor.active:
            return data
        if self._held:
            data = self._held + data
        if not redactor.might_hold(self._context + data):
            # No run here, nor one going on from what was sent: only the end may begin one.
            end = len(data) - redactor.held(data)
            self._keep(data[:end], data[end:])
            self._going_on = self._going_on and not end
            return data[:end]
        return self._send(redactor.unmask(data), final=False)

    def flush(self) -> bytes:
        """What was held back, at the stream's end."""
        held, self._held = self._held, b""
        return self._send(held, final=True) if held else b""

    def _send(self, data: bytes, *, final: bool) -> bytes:
        redactor = self._redactor
        text = self._context + data
        start = len(self._context)
        end = len(text) if final else len(text) - min(redactor.held(text), len(text) - start)
        # A run that began in what was sent was marked then: it goes on without a second marker.
        sent, self._going_on = Redactor._replace(text, start, end, redactor._covered(text), self._going_on)
        self._keep(text[start:end], text[end:])
        return sent

    def _keep(self, sent: bytes, held: bytes) -> None:
        self._context = (self._context + sent)[-(RUN - 1) :]
        self._held = held


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
    """Replace every run of these secrets in `text` (an error's text that may quote its own request)."""
    return redactor_for(tuple(secrets)).redact(text)
