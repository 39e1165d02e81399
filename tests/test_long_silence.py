"""A three-minute silence before the first token reaches the client as a complete reply (issue 24).

With the default settings: UPSTREAM_IDLE_TIMEOUT (300 s) outlasts it, and a keep-alive comment
every STREAM_KEEPALIVE_SECONDS (15 s) keeps proxies and watchdogs from cutting it, unseen by the
SDK. The run itself began at collection, beside the rest of the suite (tests/long_silence.py).
"""

from __future__ import annotations

import pytest

from tests.long_silence import KEEPALIVE, LONG_SILENCE, SILENCE


# Its own time: when run alone, it waits the whole silence (in a suite, whatever is left of it).
@pytest.mark.timeout(SILENCE + 180)
def test_a_three_minute_silence_before_the_first_token_reaches_the_client_whole() -> None:
    outcome = LONG_SILENCE.result()
    assert outcome.errors == []
    assert outcome.text == "Thought it through."
    assert outcome.seconds >= SILENCE
    assert outcome.raw.endswith(b"data: [DONE]\n\n")
    assert outcome.raw.count(KEEPALIVE) >= SILENCE // 15 - 1  # one each 15 s of silence
