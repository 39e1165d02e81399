"""Keys and tokens never reach a caller or a log line, however an upstream quotes them."""

from __future__ import annotations

import pytest

from relay.access.redaction import REDACTED, redact

KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXyZ0QPO0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"bad key {KEY}", f"bad key {REDACTED}", id="whole"),
        pytest.param(f"{KEY} and again {KEY}.", f"{REDACTED} and again {REDACTED}.", id="quoted-twice"),
        pytest.param("sk-proj-Ab3***********QPO0 refused", f"{REDACTED} refused", id="masked-openai-style"),
        pytest.param("nothing secret here", "nothing secret here", id="nothing"),
    ],
)
def test_a_key_is_redacted_wherever_it_is_quoted(text: str, expected: str) -> None:
    assert redact(text, (KEY,)) == expected


def test_with_no_secret_to_look_for_a_masked_key_is_still_redacted() -> None:
    # A route without a key (a local server) still relays errors; whatever key they quote, masked, goes.
    assert (
        redact("Incorrect API key provided: sk-abc***xyz.", (None,))
        == f"Incorrect API key provided: {REDACTED}."
    )
    assert (
        redact("Incorrect API key provided: sk-abc***xyz.", ()) == f"Incorrect API key provided: {REDACTED}."
    )
