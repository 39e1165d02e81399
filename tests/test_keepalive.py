"""Long silences: a model that thinks before its first token keeps its stream, and no SDK sees a filler.

After STREAM_KEEPALIVE_SECONDS without a write, an event stream gets the comment `: keep-alive`
(which every SSE reader skips); the original format, whose body is the model's text, never does.
Here the interval is half a second and the upstream silent for 2.2 s after its head; the default
settings' three-minute silence is tests/test_long_silence.py.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.chat_client import chat
from tests.conftest import ACCESS_TOKEN, RelayFactory
from tests.fake_upstream import FakeUpstream, Pause, Reply, openai_stream, responses_stream
from tests.relay_server import RelayServer

KEEPALIVE = b": keep-alive\n\n"
SILENCE = 2.2


def silent_chat(fake: FakeUpstream, model: str = "gpt-thinker") -> None:
    # The head at once, then nothing while it "thinks": not even the role chunk.
    fake.replies[model] = Reply(body=[Pause(SILENCE), *openai_stream(["Hello", " world"])])


@pytest.fixture
def relay(relay_factory: RelayFactory) -> RelayServer:
    return relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, STREAM_KEEPALIVE_SECONDS="0.5")


def raw(relay: RelayServer, path: str, body: dict[str, Any]) -> bytes:
    with httpx.stream(
        "POST", relay.url + path, json=body, headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}, timeout=30
    ) as response:
        assert response.status_code == 200
        return b"".join(response.iter_raw())


def test_a_silent_chat_stream_gets_keepalive_comments_and_loses_nothing(
    fake: FakeUpstream, relay: RelayServer
) -> None:
    silent_chat(fake)
    body = raw(relay, "/v1/chat/completions", {"model": "gpt-thinker", "messages": [{"role": "user", "content": "x"}], "stream": True})  # fmt: skip
    assert body.count(KEEPALIVE) >= 3  # one each 0.5 s of the 2.2 s
    # Between events, never inside one: without them the stream is the upstream's, event for event.
    events = [event for event in body.split(b"\n\n") if event and not event.startswith(b":")]
    assert events[-1] == b"data: [DONE]"
    text = "".join(
        (json.loads(event[6:])["choices"] or [{}])[0].get("delta", {}).get("content") or ""
        for event in events[:-1]
    )
    assert text == "Hello world"


def test_the_openai_sdk_does_not_see_them(fake: FakeUpstream, relay: RelayServer) -> None:
    silent_chat(fake)
    client = openai.OpenAI(base_url=relay.url + "/v1", api_key=ACCESS_TOKEN, max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-thinker", messages=[{"role": "user", "content": "x"}], stream=True
    )
    assert "".join(part.choices[0].delta.content or "" for part in stream if part.choices) == "Hello world"


@pytest.mark.parametrize("route", ["passed through", "translated"])
def test_a_silent_responses_stream_too(fake: FakeUpstream, relay_factory: RelayFactory, route: str) -> None:
    translated = route == "translated"
    relay = relay_factory(
        ACCESS_TOKENS=ACCESS_TOKEN,
        STREAM_KEEPALIVE_SECONDS="0.5",
        OPENAI_RESPONSES_API=str(not translated).lower(),
    )
    if translated:
        silent_chat(fake)
    else:
        steps = [Pause(SILENCE), *responses_stream(["Hello", " world"])]
        fake.replies["gpt-thinker"] = Reply(body=steps)
    body = raw(relay, "/v1/responses", {"model": "gpt-thinker", "input": "x", "stream": True})
    assert body.count(KEEPALIVE) >= 3
    client = openai.OpenAI(base_url=relay.url + "/v1", api_key=ACCESS_TOKEN, max_retries=0)
    if translated:
        silent_chat(fake)
    else:
        fake.replies["gpt-thinker"] = Reply(body=steps)
    events = list(client.responses.create(model="gpt-thinker", input="x", stream=True))
    assert events[-1].type == "response.completed"
    assert (
        "".join(event.delta for event in events if event.type == "response.output_text.delta")
        == "Hello world"
    )


def test_the_original_format_gets_no_filler(fake: FakeUpstream, relay: RelayServer) -> None:
    silent_chat(fake)
    with httpx.Client(timeout=30) as client:
        reply = chat(client, relay.url, "gpt-thinker", headers={"Authorization": f"Bearer {ACCESS_TOKEN}"})
    assert reply.status == 200
    assert reply.text.endswith("Hello world") and b"keep-alive" not in reply.body


def test_off_means_none(fake: FakeUpstream, relay_factory: RelayFactory) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, STREAM_KEEPALIVE_SECONDS="off")
    silent_chat(fake)
    body = raw(relay, "/v1/chat/completions", {"model": "gpt-thinker", "messages": [{"role": "user", "content": "x"}], "stream": True})  # fmt: skip
    assert KEEPALIVE not in body and body.endswith(b"data: [DONE]\n\n")


def test_a_keepalive_is_not_the_first_token(fake: FakeUpstream, relay: RelayServer) -> None:
    silent_chat(fake)
    response = httpx.post(
        relay.url + "/v1/chat/completions",
        json={"model": "gpt-thinker", "messages": [{"role": "user", "content": "x"}], "stream": True},
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}", "User-Agent": "keepalive-first-token"},
        timeout=30,
    )
    assert response.content.count(KEEPALIVE) >= 3
    line = relay.log_of(response.headers["x-relay-request-id"])
    assert line["outcome"] == "ok"
    assert line["first_token_ms"] >= SILENCE * 1000  # the reply's first write, after the silence
