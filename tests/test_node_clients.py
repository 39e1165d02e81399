"""Node clients as their users call them: the Vercel AI SDK's default provider (the Responses API)
and its `.chat(model)` (chat completions), run with Node against the real server and the fake.

tests/node holds the packages, pinned by its package-lock.json (`./dev test` and CI run `npm ci`).
Without Node these tests are skipped with the reason, except where RELAY_NODE_REQUIRED=1 (CI),
which makes a missing Node a failure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ACCESS_TOKEN, RelayFactory, run_node
from tests.fake_upstream import FakeUpstream, Reply, openai_stream
from tests.relay_server import ROOT, RelayServer

NODE_DIR = ROOT / "tests" / "node"


@pytest.fixture
def relay(relay_factory: RelayFactory) -> RelayServer:
    return relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="0", STREAM_USAGE="true")


def run(node: str, relay: RelayServer, mode: str) -> dict[str, Any]:
    return run_node(node, "ai_sdk.mjs", relay, mode)


USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


@pytest.mark.parametrize("mode", ["responses-stream", "chat-stream"])
def test_stream_text(node: str, fake: FakeUpstream, relay: RelayServer, mode: str) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["Hel", "lo", " there"], pace=0.02, usage=USAGE))
    result = run(node, relay, mode)
    assert result.get("text") == "Hello there", result
    assert result["finishReason"] == "stop"
    assert len(result["parts"]) >= 2  # token by token, not all at the end
    expected = "/chat/completions"  # the fake speaks chat completions only: /v1/responses is translated
    assert fake.requests[0].path.endswith(expected)


@pytest.mark.parametrize("mode", ["responses-generate", "chat-generate"])
def test_generate_text(node: str, fake: FakeUpstream, relay: RelayServer, mode: str) -> None:
    answer = {
        "id": "c",
        "model": "gpt-test",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}
        ],
        "usage": USAGE,
    }
    fake.replies["gpt-test"] = Reply(
        headers={"Content-Type": "application/json"}, body=[json.dumps(answer).encode()]
    )
    result = run(node, relay, mode)
    assert result.get("text") == "Hi!", result
    assert result["usage"]["inputTokens"] == 5 and result["usage"]["outputTokens"] == 3


@pytest.mark.parametrize("mode", ["responses-tools", "chat-tools"])
def test_tool_calls(node: str, fake: FakeUpstream, relay: RelayServer, mode: str) -> None:
    answer = {
        "id": "c",
        "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None,
                     "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]}}],
    }  # fmt: skip
    # generateText asks for a whole answer, on either API.
    fake.replies["gpt-test"] = Reply(
        headers={"Content-Type": "application/json"}, body=[json.dumps(answer).encode()]
    )
    result = run(node, relay, mode)
    assert result.get("toolCalls") == [{"name": "get_weather", "input": {"city": "Paris"}}], result


@pytest.mark.parametrize("mode", ["responses-abort", "chat-abort"])
def test_abort_frees_the_upstream(node: str, fake: FakeUpstream, relay: RelayServer, mode: str) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream([f" t{i}" for i in range(200)], pace=0.05))
    result = run(node, relay, mode)
    assert result.get("aborted") is True, result
    assert fake.wait_for(
        lambda: bool(fake.requests) and fake.requests[0].client_closed is not None, timeout=5
    )
    upstream = fake.requests[0]
    assert upstream.finished is None  # not read to its end (10 s)
    # Let go within 5 s of being asked, half the stream (Node's start-up is not counted).
    assert upstream.client_closed - upstream.started < 5  # type: ignore[operator]


def test_the_lockfile_pins_what_the_tests_import() -> None:
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    packages = lock["packages"]
    for name in ("ai", "@ai-sdk/openai"):
        assert packages[f"node_modules/{name}"]["version"], name
    assert Path(NODE_DIR / "ai_sdk.mjs").is_file()
