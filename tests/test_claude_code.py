"""Claude Code (2.1.332, tests/agents) through the relay, with only its base URL and its key changed.

`claude -p` runs offline here: ANTHROPIC_BASE_URL at the relay, ANTHROPIC_API_KEY the relay's access
token (sent as x-api-key), CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 (no telemetry, no feature
flags), a HOME of its own. Its only requests are then POST /v1/messages?beta=true to the relay,
which the fake upstream answers as Anthropic would. Where Claude Code fails, the assertion shows
what it printed, so a run that cannot work offline says why instead of passing.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ACCESS_TOKEN, ANTHROPIC_KEY, RelayFactory, assert_no_secret
from tests.fake_replies import anthropic_events, anthropic_reply, anthropic_sse, anthropic_stream
from tests.fake_upstream import FakeUpstream, RecordedRequest, Reply
from tests.relay_server import RelayServer, base_environ

MODEL = "claude-relay-test"  # not one Claude Code knows: it says so on stderr, and uses it


@pytest.fixture
def relay(relay_factory: RelayFactory) -> RelayServer:
    return relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, ANTHROPIC_API_KEY=ANTHROPIC_KEY)


def claude(
    agents: Path,
    relay: RelayServer,
    home: Path,
    prompt: str,
    *arguments: str,
    token: str = ACCESS_TOKEN,
    **env: str,
) -> dict[str, Any]:
    """Run `claude -p PROMPT --output-format json` against the relay; its result object."""
    done = subprocess.run(
        [str(agents / "claude"), "-p", prompt, "--output-format", "json", "--model", MODEL, *arguments],
        env={
            **base_environ(),  # nothing of the developer's: no ANTHROPIC_API_KEY of theirs
            "HOME": str(home),
            "ANTHROPIC_BASE_URL": relay.url,
            "ANTHROPIC_API_KEY": token,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            **env,
        },
        cwd=home,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert_no_secret(done.stdout + done.stderr, "Claude Code's output")
    said = f"rc {done.returncode}\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
    try:
        result: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"Claude Code printed no result (it may have tried to go online):\n{said}")
    result["returncode"], result["said"] = done.returncode, said
    return result


def last_content(request: RecordedRequest) -> list[dict[str, Any]]:
    content = request.json["messages"][-1]["content"]
    return content if isinstance(content, list) else [{"type": "text", "text": content}]


def test_claude_code_answers_through_the_relay(
    agents: Path, fake: FakeUpstream, relay: RelayServer, tmp_path: Path
) -> None:
    fake.replies[MODEL] = Reply(body=anthropic_stream(["hi from ", "the relay"], thinking="Greet."))
    result = claude(agents, relay, tmp_path, "say hi")
    assert (result["returncode"], result["is_error"], result["result"]) == (0, False, "hi from the relay"), (
        result["said"]
    )
    (request,) = fake.requests  # nothing else: no telemetry, no model list, no count_tokens
    assert request.path == "/v1/messages?beta=true"
    # The relay's key went upstream, never the token Claude Code was given.
    assert request.headers["x-api-key"] == ANTHROPIC_KEY and "authorization" not in request.headers
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["anthropic-beta"].startswith("claude-code-")
    assert request.json["stream"] is True and request.json["model"] == MODEL
    assert any(message["role"] == "system" for message in request.json["messages"])  # passed as it came
    (entry,) = [
        line for line in relay.request_logs() if line["httpRequest"]["userAgent"].startswith("claude-cli/")
    ]
    assert (entry["outcome"], entry["caller"], entry["tokens"], entry["usage_source"]) == (
        "ok",
        "token-1",
        19,
        "upstream",
    )
    assert (
        result["usage"]["output_tokens"] == 4
    )  # message_delta's count, which Claude Code read from the relay


def test_claude_code_runs_a_tool_and_sends_back_its_result(
    agents: Path, fake: FakeUpstream, relay: RelayServer, tmp_path: Path
) -> None:
    def answer(request: RecordedRequest) -> Reply:
        results = [part for part in last_content(request) if part.get("type") == "tool_result"]
        if results:
            output = results[0]["content"]
            text = output if isinstance(output, str) else "".join(part.get("text", "") for part in output)
            return Reply(body=anthropic_stream([f"the tool said: {text.strip()}"]))
        command = json.dumps({"command": "echo hello-from-the-tool", "description": "Say hello"})
        return Reply(
            body=anthropic_stream(
                [], thinking="I should run it.", tool=("Bash", [command[:20], command[20:]])
            )
        )

    fake.replies[MODEL] = answer
    # As root, --dangerously-skip-permissions is refused: the one command is allowed instead.
    result = claude(agents, relay, tmp_path, "run the echo", "--allowedTools", "Bash(echo:*)")
    assert (result["returncode"], result["result"]) == (0, "the tool said: hello-from-the-tool"), result[
        "said"
    ]
    first, second = fake.requests
    # The turn Claude Code sends back holds the thinking (with its signature) and the call, as streamed.
    assistant = second.json["messages"][-2]
    assert [part["type"] for part in assistant["content"]] == ["thinking", "tool_use"]
    assert assistant["content"][0]["signature"] == "SIG"
    assert assistant["content"][1]["input"] == {
        "command": "echo hello-from-the-tool",
        "description": "Say hello",
    }
    assert first.path == second.path == "/v1/messages?beta=true"


def test_an_error_mid_stream_is_retried_then_answered_whole(
    agents: Path, fake: FakeUpstream, relay: RelayServer, tmp_path: Path
) -> None:
    # The upstream's error event reaches Claude Code as Anthropic sends it: it retries the stream,
    # then falls back to asking for the whole answer, which the relay passes on whole.
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}

    def answer(request: RecordedRequest) -> Reply:
        if request.json.get("stream") is True:
            return Reply(body=[anthropic_sse(anthropic_events(["x"])[0]), anthropic_sse(overloaded)])
        return anthropic_reply("answered whole")

    fake.replies[MODEL] = answer
    result = claude(agents, relay, tmp_path, "say hi")
    assert (result["returncode"], result["result"]) == (0, "answered whole"), result["said"]
    streamed = [request for request in fake.requests if request.json.get("stream") is True]
    assert streamed and fake.requests[-1].json["stream"] is False
    outcomes = [
        line["outcome"]
        for line in relay.request_logs()
        if line["httpRequest"]["userAgent"].startswith("claude-cli/")
    ]
    assert outcomes[-len(fake.requests) :] == ["upstream_error"] * len(streamed) + ["ok"]


def test_under_max_tokens_limit_claude_code_asks_for_no_more(
    agents: Path, fake: FakeUpstream, relay_factory: RelayFactory, tmp_path: Path
) -> None:
    relay = relay_factory(
        ACCESS_TOKENS=ACCESS_TOKEN, ANTHROPIC_API_KEY=ANTHROPIC_KEY, MAX_TOKENS_LIMIT="4096"
    )
    fake.replies[MODEL] = Reply(body=anthropic_stream(["capped"]))
    # Its own max_tokens (32000 for a model it does not know) is over the cap: refused, and said.
    refused = claude(agents, relay, tmp_path, "say hi")
    assert refused["returncode"] == 1 and refused["is_error"] is True, refused["said"]
    assert '"max_tokens" must be at most 4096 on this relay (MAX_TOKENS_LIMIT)' in refused["result"]
    assert fake.requests == []
    # CLAUDE_CODE_MAX_OUTPUT_TOKENS keeps it within the cap; its fields (thinking, context_management,
    # output_config) and its tools all pass.
    result = claude(agents, relay, tmp_path, "say hi", CLAUDE_CODE_MAX_OUTPUT_TOKENS="4096")
    assert (result["returncode"], result["result"]) == (0, "capped"), result["said"]
    assert fake.requests[0].json["max_tokens"] == 4096


def test_a_wrong_token_is_refused_and_claude_code_says_so(
    agents: Path, fake: FakeUpstream, relay: RelayServer, tmp_path: Path
) -> None:
    result = claude(agents, relay, tmp_path, "say hi", token="not-the-token", CLAUDE_CODE_MAX_RETRIES="0")
    assert result["returncode"] == 1 and result["is_error"] is True, result["said"]
    assert result["api_error_status"] == 401
    assert fake.requests == []
