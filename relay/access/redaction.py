"""Keeps keys and tokens out of everything the relay writes: responses and logs."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"

# OpenAI's 401 message quotes the key it refused, masked: "sk-proj-abc***********wxyz".
# Even masked, a server key's ends are not for the caller to see.
_MASKED_OPENAI_KEY = re.compile(r"\bsk-[A-Za-z0-9_\-]*\*{3,}[A-Za-z0-9_\-]*")


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every secret, and any masked OpenAI key, in `text`."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return _MASKED_OPENAI_KEY.sub(REDACTED, text)
