"""OpenAI's Codex CLI (tests/agents: 0.171.0), unchanged, through the real relay: its URL and an access token.

Codex is run as its users run it (`codex exec`), offline: a CODEX_HOME of the test's own, with its
plugin sync and analytics off, and either a custom model provider that tries a WebSocket first
(`supports_websockets = true`) or the built-in provider pointed at the relay (`openai_base_url`),
which always does. The relay answers the WebSocket 426, and Codex goes on over HTTP. Behind the
relay, the fake upstream speaks the Responses API (passed through) or only chat completions
(translated), and plays the model's turns: a reply, a shell command, a call of a namespaced tool,
a patch (a custom tool), by how many tool results the request carries.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ACCESS_TOKEN, RelayFactory, assert_no_secret
from tests.fake_replies import (
    by_turn,
    chat_stream,
    custom_call_item,
    function_call_item,
    message_item,
    reasoning_item,
    responses_reply,
)
from tests.fake_upstream import FakeUpstream, RecordedRequest, Reply
from tests.relay_server import RelayServer

SHELL_CALL = json.dumps({"cmd": "echo hello-from-tool"})
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hi from the patch\n*** End Patch\n"
CHAT_USAGE = {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52,
              "completion_tokens_details": {"reasoning_tokens": 5}}  # fmt: skip
# A run that goes wrong is cut here, well within the test's own time limit.
RUN_SECONDS = 90


@dataclass
class CodexRun:
    returncode: int
    stdout: str
    stderr: str
    relay: RelayServer
    logged_before: int  # the relay's log lines before this run: a relay serves every test of its settings

    def logs(self, count: int) -> list[dict[str, Any]]:
        """The relay's log lines of this run, once there are `count` (a stream's is written as it closes)."""
        deadline = time.monotonic() + 5
        logs = self.relay.request_logs()
        while len(logs) < self.logged_before + count and time.monotonic() < deadline:
            time.sleep(0.02)
            logs = self.relay.request_logs()
        return logs[self.logged_before :]

    def events(self) -> list[dict[str, Any]]:
        """`codex exec --json`: one JSON object per line."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]


def codex(
    agents: Path,
    relay: RelayServer,
    home: Path,
    prompt: str,
    *,
    provider: str = "custom",
    model: str = "relay-model",
    args: tuple[str, ...] = (),
    websockets: bool = True,
) -> CodexRun:
    """`codex exec PROMPT` against the relay, in `home` (its CODEX_HOME and a work directory there)."""
    codex_home = home / "codex"
    work = home / "work"
    codex_home.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    # Offline: no plugin sync (github.com, chatgpt.com), no analytics (ab.chatgpt.com).
    config = f'model = "{model}"\ncheck_for_update_on_startup = false\n'
    if provider == "custom":
        config += 'model_provider = "relay"\n'
    else:  # the built-in provider, pointed at the relay: it always tries a WebSocket first
        config += f'openai_base_url = "{relay.url}/v1"\n'
    config += "[features]\nplugins = false\n[analytics]\nenabled = false\n"
    if provider == "custom":
        config += (
            f'[model_providers.relay]\nname = "relay"\nbase_url = "{relay.url}/v1"\nenv_key = "RELAY_TOKEN"\n'
            'wire_api = "responses"\n'
        )
        config += "supports_websockets = true\n" if websockets else ""
    (codex_home / "config.toml").write_text(config)
    logged_before = len(relay.request_logs())
    environ = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "CODEX_HOME": str(codex_home),
        "RELAY_TOKEN": ACCESS_TOKEN,  # the custom provider's env_key
        "CODEX_API_KEY": ACCESS_TOKEN,  # the built-in provider's key for `codex exec` (not OPENAI_API_KEY)
    }
    done = subprocess.run(
        [str(agents / "codex"), "exec", "--skip-git-repo-check", "-C", str(work), *args, prompt],
        env=environ,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    run = CodexRun(done.returncode, done.stdout, done.stderr, relay, logged_before)
    assert_no_secret(run.stdout + run.stderr, "Codex's output")
    return run


def relay_for(relay_factory: RelayFactory, route: str, **settings: str) -> RelayServer:
    """The relay with the fake behind it speaking the Responses API ("passed") or chat completions only."""
    responses = "true" if route == "passed" else "false"
    return relay_factory(
        ACCESS_TOKENS=ACCESS_TOKEN, OPENAI_RESPONSES_API=responses, STREAM_USAGE="true", **settings
    )


def model_turns(route: str, *turns: list[dict[str, Any]]) -> Any:
    """The model's turns as the fake plays them: Responses output items, or the chat stream they would be."""
    replies = []
    for items in turns:
        if route == "passed":
            replies.append(responses_reply(items))
            continue
        text = "".join(item["content"][0]["text"] for item in items if item["type"] == "message")
        reasoning = "".join(item["summary"][0]["text"] for item in items if item["type"] == "reasoning")
        calls = [
            (
                item["call_id"],
                chat_name(item),
                item.get("arguments") or json.dumps({"input": item.get("input")}),
            )
            for item in items
            if item["type"] in ("function_call", "custom_tool_call")
        ]
        replies.append(Reply(body=chat_stream(text, reasoning=reasoning, calls=calls, usage=CHAT_USAGE)))
    return by_turn(*replies)


def chat_name(item: dict[str, Any]) -> str:
    """The function a chat upstream knows a tool by (relay/formats/responses_tools.py)."""
    return f"{item['namespace']}__{item['name']}" if item.get("namespace") else str(item["name"])


def sent_to_upstream(fake: FakeUpstream) -> list[RecordedRequest]:
    return [request for request in fake.requests if request.method == "POST"]


def tool_results(request: RecordedRequest) -> list[str]:
    """What the tools gave Codex, as the next request carries it to the model."""
    body = request.json
    if "messages" in body:
        return [json.dumps(message["content"]) for message in body["messages"] if message["role"] == "tool"]
    kinds = ("function_call_output", "custom_tool_call_output")
    return [json.dumps(item["output"]) for item in body["input"] if item.get("type") in kinds]


def posts_after_a_426(run: CodexRun, posts: int) -> list[dict[str, Any]]:
    """The log lines of the run's POSTs, checking that a WebSocket handshake, answered 426, came first."""
    first, *rest = run.logs(1 + posts)
    assert (first["httpRequest"]["requestMethod"], first["httpRequest"]["status"]) == ("GET", 426)
    assert [entry["httpRequest"]["requestMethod"] for entry in rest] == ["POST"] * posts
    return rest


@pytest.mark.parametrize("provider", ["custom", "built-in"])
@pytest.mark.parametrize("route", ["passed", "translated"])
def test_codex_answers_through_the_relay_after_its_websocket_is_refused(
    agents: Path, fake: FakeUpstream, relay_factory: RelayFactory, tmp_path: Path, route: str, provider: str
) -> None:
    relay = relay_for(relay_factory, route)
    fake.replies["*"] = model_turns(route, [reasoning_item("A greeting."), message_item("hi from the relay")])
    run = codex(agents, relay, tmp_path, "say hi", provider=provider, args=("--json",))
    assert run.returncode == 0, run.stderr
    events = run.events()
    said = [event["item"] for event in events if event["type"] == "item.completed"]
    assert {"type": "agent_message", "text": "hi from the relay"} in [
        {name: item[name] for name in ("type", "text")} for item in said if "text" in item
    ]
    assert any(item["type"] == "reasoning" and "A greeting." in item["text"] for item in said)
    (completed,) = [event for event in events if event["type"] == "turn.completed"]
    expected = (40, 12) if route == "translated" else (11, 7)  # the upstream's usage, as it reported it
    assert (completed["usage"]["input_tokens"], completed["usage"]["output_tokens"]) == expected
    posts_after_a_426(run, 1)
    (sent,) = sent_to_upstream(fake)
    assert sent.path.endswith("/responses" if route == "passed" else "/chat/completions")


@pytest.mark.parametrize("capped", [False, True], ids=["uncapped", "max-tokens-limit"])
@pytest.mark.parametrize("route", ["passed", "translated"])
def test_codex_runs_a_shell_command_and_the_model_gets_its_output(
    agents: Path,
    fake: FakeUpstream,
    relay_factory: RelayFactory,
    tmp_path: Path,
    route: str,
    capped: bool,
) -> None:
    relay = relay_for(relay_factory, route, **({"MAX_TOKENS_LIMIT": "2000"} if capped else {}))
    fake.replies["*"] = model_turns(
        route,
        [reasoning_item("I will run it."), function_call_item("call_1", "exec_command", SHELL_CALL)],
        [message_item("the command said hello")],
    )
    run = codex(agents, relay, tmp_path, "run echo")
    assert run.returncode == 0, run.stderr
    assert "the command said hello" in run.stdout
    first, second = sent_to_upstream(fake)
    (result,) = tool_results(second)
    assert "hello-from-tool" in result and "Process exited with code 0" in result
    logs = posts_after_a_426(run, 2)
    assert [entry["outcome"] for entry in logs] == ["ok", "ok"]
    # Codex offers web_search with every request: left out, said in the log line, on a chat-only route or
    # under the cap (a search is billed beyond the tokens the cap bounds).
    assert all(
        entry.get("omitted_tools") == ("web_search" if route == "translated" or capped else None)
        for entry in logs
    )
    if capped:
        assert first.json["max_output_tokens" if route == "passed" else "max_tokens"] == 2000


def test_codex_calls_a_namespaced_tool_on_a_chat_only_route(
    agents: Path, fake: FakeUpstream, relay_factory: RelayFactory, tmp_path: Path
) -> None:
    """Codex runs a call of its namespaced tool only with the namespace apart: `ns__tool` is told back so."""
    relay = relay_for(relay_factory, "translated")
    arguments = json.dumps({"target": "no-such-agent"})
    fake.replies["*"] = model_turns(
        "translated",
        [function_call_item("call_1", "close_agent", arguments, namespace="multi_agent_v1")],
        [message_item("closed")],
    )
    run = codex(agents, relay, tmp_path, "close the agent")
    assert run.returncode == 0, run.stderr
    first, second = sent_to_upstream(fake)
    assert "multi_agent_v1__close_agent" in [tool["function"]["name"] for tool in first.json["tools"]]
    (result,) = tool_results(second)
    assert "unsupported call" not in result  # what Codex says of a call it cannot match to a tool
    assert "no-such-agent" in result  # Codex ran it: its answer names the agent the call named
    call = second.json["messages"][-2]["tool_calls"][0]
    assert call["function"] == {"name": "multi_agent_v1__close_agent", "arguments": arguments}


@pytest.mark.parametrize("route", ["passed", "translated"])
def test_codex_applies_a_patch_written_for_its_freeform_tool(
    agents: Path, fake: FakeUpstream, relay_factory: RelayFactory, tmp_path: Path, route: str
) -> None:
    """gpt-5.5's apply_patch is a custom tool: a chat upstream's call to it becomes a custom_tool_call again."""
    relay = relay_for(relay_factory, route)
    fake.replies["*"] = model_turns(
        route, [custom_call_item("call_p", "apply_patch", PATCH)], [message_item("patched")]
    )
    run = codex(
        agents, relay, tmp_path, "add hello.txt", model="gpt-5.5", args=("--sandbox", "workspace-write")
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "work" / "hello.txt").read_text() == "hi from the patch\n"
    first, second = sent_to_upstream(fake)
    (result,) = tool_results(second)
    assert "hello.txt" in result
    if route == "translated":
        patch_tool = next(
            tool["function"] for tool in first.json["tools"] if tool["function"]["name"] == "apply_patch"
        )
        assert patch_tool["parameters"]["required"] == ["input"]
        call = second.json["messages"][-2]["tool_calls"][0]["function"]
        assert call == {
            "name": "apply_patch",
            "arguments": json.dumps({"input": PATCH}, separators=(",", ":")),
        }


@pytest.mark.parametrize("route", ["passed", "translated"])
def test_codex_runs_code_through_the_tools_of_its_newer_models(
    agents: Path, fake: FakeUpstream, relay_factory: RelayFactory, tmp_path: Path, route: str
) -> None:
    """ "Responses Lite" (gpt-5.6-*): Codex offers its tools in an additional_tools input item, among them
    `functions.exec`, a freeform tool in a namespace that runs JavaScript."""
    relay = relay_for(relay_factory, route)
    fake.replies["*"] = model_turns(
        route,
        [custom_call_item("call_x", "exec", "text('hello from exec')", namespace="functions")],
        [message_item("it ran")],
    )
    run = codex(agents, relay, tmp_path, "run it", model="gpt-5.6-luna")
    assert run.returncode == 0, run.stderr
    assert "it ran" in run.stdout
    first, second = sent_to_upstream(fake)
    (result,) = tool_results(second)
    assert "hello from exec" in result and "unsupported call" not in result
    if route == "translated":
        assert "functions__exec" in [tool["function"]["name"] for tool in first.json["tools"]]
        assert second.json["messages"][-2]["tool_calls"][0]["function"] == {
            "name": "functions__exec",
            "arguments": json.dumps({"input": "text('hello from exec')"}, separators=(",", ":")),
        }
    else:
        assert first.json["input"][0]["type"] == "additional_tools"
        assert "tools" not in first.json


# An upstream over its own rate limit, as OpenAI answers: retry in 10 ms.
RATE_LIMITED = Reply(
    status=429,
    headers={"Content-Type": "application/json", "retry-after-ms": "10", "retry-after": "0"},
    body=[
        json.dumps({"error": {"message": "Rate limit reached", "type": "requests", "code": None}}).encode()
    ],
)


def test_codex_retries_a_429_itself_and_the_relay_does_not_multiply_it(
    agents: Path, fake: FakeUpstream, relay_factory: RelayFactory, tmp_path: Path
) -> None:
    """docs/openai-api.md, "Retries": one call costs the upstream what Codex alone would ask of it."""
    fake.replies["*"] = RATE_LIMITED
    direct = RelayServer({})  # not started: Codex pointed at the fake itself, for its own count
    direct.port = fake.port
    (tmp_path / "direct").mkdir()
    alone = codex(agents, direct, tmp_path / "direct", "hi", websockets=False)
    assert alone.returncode != 0
    attempts = len(sent_to_upstream(fake))
    assert attempts == 6  # Codex 0.171 retries a 429 itself: 6 attempts (docs/openai-api.md, Retries)

    fake.requests.clear()
    (tmp_path / "relayed").mkdir()
    relayed = codex(agents, relay_for(relay_factory, "passed"), tmp_path / "relayed", "hi", websockets=False)
    assert relayed.returncode != 0
    assert len(sent_to_upstream(fake)) == attempts  # the relay passed each 429 on, retrying none

    fake.requests.clear()
    once = [RATE_LIMITED, responses_reply([message_item("recovered")])]
    fake.replies["*"] = lambda request: once[min(len(sent_to_upstream(fake)) - 1, 1)]
    (tmp_path / "once").mkdir()
    recovered = codex(agents, relay_for(relay_factory, "passed"), tmp_path / "once", "hi", websockets=False)
    assert recovered.returncode == 0, recovered.stderr
    assert "recovered" in recovered.stdout
    assert len(sent_to_upstream(fake)) == 2
