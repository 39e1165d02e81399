"""A model silent for three minutes before its first token, through the relay's default settings.

Three minutes is long for a test, so this one runs beside the rest of the suite: it begins when
the suite is collected (tests/conftest.py, if tests/test_long_silence.py was selected), on a fake
upstream and a relay of its own, and tests/test_long_silence.py reads its result, by then most
likely ready. Two clients read the same kind of reply at once: the OpenAI SDK (which must get the
whole reply and never see a keep-alive) and a raw reader (which counts them).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx
import openai

from tests.fake_upstream import FakeUpstream, Pause, Reply, openai_stream
from tests.relay_server import RelayServer

SILENCE = 180.0  # seconds before the first token: three minutes
TOKEN = "tok-long-silence-7c1e9a3f5b2d"
KEEPALIVE = b": keep-alive\n\n"


@dataclass
class Outcome:
    text: str | None = None  # what the SDK read
    raw: bytes = b""  # what the raw reader read
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


class LongSilence:
    """Started once; `result` waits for both readers."""

    def __init__(self) -> None:
        self.outcome = Outcome()
        self._threads: list[threading.Thread] = []
        self._fake: FakeUpstream | None = None
        self._relay: RelayServer | None = None

    def start(self) -> None:
        if self._threads:
            return
        self._fake = FakeUpstream().start()
        self._fake.replies["gpt-thinks-long"] = lambda request: Reply(
            body=[Pause(SILENCE), *openai_stream(["Thought", " it", " through."])]
        )
        # The defaults: no STREAM_KEEPALIVE_SECONDS, no UPSTREAM_IDLE_TIMEOUT.
        self._relay = RelayServer(
            {"OPENAI_BASE_URL": self._fake.base_url, "OPENAI_API_KEY": "sk-long-silence-SECRET-0f2e4d6c8b",
             "ACCESS_TOKENS": TOKEN}
        ).start()  # fmt: skip
        self._started = time.monotonic()
        self._threads = [
            threading.Thread(target=self._sdk, daemon=True),
            threading.Thread(target=self._raw, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _sdk(self) -> None:
        assert self._relay is not None
        try:
            client = openai.OpenAI(
                base_url=self._relay.url + "/v1", api_key=TOKEN, max_retries=0, timeout=600
            )
            stream = client.chat.completions.create(
                model="gpt-thinks-long", messages=[{"role": "user", "content": "think"}], stream=True
            )
            self.outcome.text = "".join(
                part.choices[0].delta.content or "" for part in stream if part.choices
            )
            self.outcome.seconds = time.monotonic() - self._started
        except Exception as error:  # any failure: the test reports it
            self.outcome.errors.append(f"sdk: {error!r}")

    def _raw(self) -> None:
        assert self._relay is not None
        try:
            with httpx.stream(
                "POST", self._relay.url + "/v1/chat/completions",
                json={"model": "gpt-thinks-long", "messages": [{"role": "user", "content": "think"}], "stream": True},
                headers={"Authorization": f"Bearer {TOKEN}"}, timeout=600,
            ) as response:  # fmt: skip
                self.outcome.raw = b"".join(response.iter_raw())
        except Exception as error:  # any failure: the test reports it
            self.outcome.errors.append(f"raw: {error!r}")

    def result(self) -> Outcome:
        """Both readers' results, once they are done (or their time is up)."""
        self.start()  # when the test runs alone, with no collection hook
        for thread in self._threads:
            thread.join(SILENCE + 120)
        return self.outcome

    def stop(self) -> None:
        if self._relay is not None:
            self._relay.stop()
        if self._fake is not None:
            self._fake.stop()


LONG_SILENCE = LongSilence()
