"""Retries: the SDK's or the relay's, never both multiplied; a single transient 429 recovered by every client.

Against a fake upstream that counts its requests, one call of each real client with its default
retries: the OpenAI Python SDK and the Node `openai` package (2 retries each) and the Vercel AI
SDK (2 retries), on /v1/chat/completions; and the 2023 client's route, /api/chat, which does not
retry, so the relay does (UPSTREAM_RETRIES, 2 by default). docs/openai-api.md, "Retries", has
the figures these tests hold.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.chat_client import chat
from tests.conftest import ACCESS_TOKEN, RelayFactory, run_node
from tests.fake_upstream import FakeUpstream, RecordedRequest, Reply, openai_stream
from tests.relay_server import RelayServer

# What an upstream that is over its own rate limit answers: retry in 10 ms (the clients honour it).
RATE_LIMITED = {"Content-Type": "application/json", "retry-after-ms": "10", "retry-after": "0"}
LIMIT_BODY = json.dumps(
    {"error": {"message": "Rate limit reached", "type": "requests", "code": None}}
).encode()
WHOLE = {"Content-Type": "application/json"}
USER: Any = [{"role": "user", "content": "Hi"}]  # Any: the SDK's message types are not the point here


def completion(text: str) -> bytes:
    message = {"role": "assistant", "content": text}
    return json.dumps({"id": "c", "object": "chat.completion", "model": "m", "created": 1,
                       "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}).encode()  # fmt: skip


@pytest.fixture
def relay(relay_factory: RelayFactory) -> RelayServer:
    # UPSTREAM_RETRIES as its default, written out: a relay of these tests' own, whose log (the
    # retries' WARNING lines) no other test reads.
    return relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="2")


@pytest.fixture
def upstream(fake: FakeUpstream) -> FakeUpstream:
    """`always-429` is over its limit for good; `once-429` for its first request only."""
    fake.replies["always-429"] = Reply(status=429, headers=RATE_LIMITED, body=[LIMIT_BODY])

    def once(request: RecordedRequest) -> Reply:
        seen = sum(1 for earlier in fake.requests if earlier.json.get("model") == "once-429")
        if seen <= 1:  # this request is the first
            return Reply(status=429, headers=RATE_LIMITED, body=[LIMIT_BODY])
        if request.json.get("stream"):
            return Reply(body=openai_stream(["recovered"]))
        return Reply(headers=WHOLE, body=[completion("recovered")])

    fake.replies["once-429"] = once
    return fake


def requests_for(fake: FakeUpstream, model: str) -> int:
    return sum(1 for request in fake.requests if request.json.get("model") == model)


def python_sdk(relay: RelayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=relay.url + "/v1", api_key=ACCESS_TOKEN)  # max_retries=2, the default


def test_the_python_sdk_retries_an_upstream_429_itself_and_the_relay_does_not(
    upstream: FakeUpstream, relay: RelayServer
) -> None:
    with pytest.raises(openai.RateLimitError):
        python_sdk(relay).chat.completions.create(model="always-429", messages=USER)
    assert requests_for(upstream, "always-429") == 3  # the SDK's 3 attempts, not 3 x 3
    reply = python_sdk(relay).chat.completions.create(model="once-429", messages=USER)
    assert reply.choices[0].message.content == "recovered"
    assert requests_for(upstream, "once-429") == 2


def node_call(node: str, relay: RelayServer, client: str, model: str) -> dict[str, Any]:
    return run_node(node, "retries.mjs", relay, client, model, timeout=120)


@pytest.mark.parametrize("client", ["openai", "ai-sdk"])
def test_the_node_clients_retry_an_upstream_429_themselves_and_the_relay_does_not(
    node: str,
    upstream: FakeUpstream,
    relay: RelayServer,
    client: str,
) -> None:
    refused = node_call(node, relay, client, "always-429")
    assert refused.get("status") == 429, refused
    assert requests_for(upstream, "always-429") == 3  # the client's 3 attempts, not 3 x 3
    recovered = node_call(node, relay, client, "once-429")
    assert recovered == {"text": "recovered"}
    assert requests_for(upstream, "once-429") == 2


def test_the_original_route_is_retried_by_the_relay_its_client_does_not(
    upstream: FakeUpstream, relay: RelayServer
) -> None:
    import httpx

    with httpx.Client(headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}, timeout=30) as client:
        refused = chat(client, relay.url, model="always-429")
        assert refused.status == 429
        assert requests_for(upstream, "always-429") == 3  # 1 + UPSTREAM_RETRIES
        recovered = chat(client, relay.url, model="once-429")
    assert (recovered.status, recovered.text) == (200, '{"model":"gpt-fake-0613"}recovered')
    assert requests_for(upstream, "once-429") == 2


def test_an_upstream_429_reaches_an_sdk_with_its_retry_after_and_no_word_against_retrying(
    upstream: FakeUpstream, relay: RelayServer
) -> None:
    import httpx

    response = httpx.post(
        relay.url + "/v1/chat/completions",
        json={"model": "always-429", "messages": USER},
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
    )
    assert response.status_code == 429
    assert (response.headers["retry-after-ms"], response.headers["retry-after"]) == ("10", "0")
    assert "x-should-retry" not in response.headers
    assert requests_for(upstream, "always-429") == 1
