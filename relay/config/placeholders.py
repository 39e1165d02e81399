"""Which keys are secrets: a placeholder a local server asks for (`ollama`, `EMPTY`) is a word, not a secret.

Local servers are called with keys that are ordinary words (Ollama's docs use `ollama`, vLLM
`EMPTY`, LM Studio `lm-studio`, llama.cpp `sk-no-key-required`): a reply mentions them as words,
so redacting them would change what the model wrote (relay/access/redaction.py), and a reviewer
should know the relay took them for placeholders (relay/config/review.py).
"""

from __future__ import annotations

import re

MIN_SECRET = 20
# Words joined by "-" or "_", in one case: a placeholder, whatever its length.
_WORDS = re.compile(r"[a-z]+(?:[-_][a-z]+)*|[A-Z]+(?:[-_][A-Z]+)*")


def is_secret(value: str) -> bool:
    """Whether a key or token is a secret, rather than a placeholder a local server ignores."""
    return len(value) >= MIN_SECRET and value.isascii() and not _WORDS.fullmatch(value)
