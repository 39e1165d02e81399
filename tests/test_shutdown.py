"""A rollout loses no stream without a word: SIGTERM, then the platform's SIGKILL 10 s later (Cloud Run).

With the server settings the deploy ships, 20 slow streams on each endpoint, Anthropic's too (and
requests still waiting for the upstream's head): on SIGTERM the relay takes no new request, lets those in
progress go on for SHUTDOWN_GRACE_SECONDS (8), then ends each in its own format; every client has
a proper ending before the kill, every request its log line, every upstream connection is closed,
and the server is gone before the 10 s are up.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from typing import Any

import httpx

from tests.conftest import RelayFactory
from tests.fake_replies import anthropic_stream
from tests.fake_upstream import FakeUpstream, Reply, openai_stream
from tests.relay_server import RelayServer, shipped_server_env

STREAMS = 20
RESTARTING = "the server is restarting; send the request again"
ASKED: dict[str, tuple[str, dict[str, Any]]] = {
    "original": ("/api/chat", {"model": "gpt-slow", "messages": [{"role": "user", "content": "x"}]}),
    "chat": ("/v1/chat/completions", {"model": "gpt-slow", "messages": [{"role": "user", "content": "x"}], "stream": True}),
    "responses": ("/v1/responses", {"model": "gpt-slow", "input": "x", "stream": True}),
    "waiting": ("/v1/chat/completions", {"model": "gpt-silent", "messages": [{"role": "user", "content": "x"}]}),
    "messages": ("/v1/messages", {"model": "claude-slow", "messages": [{"role": "user", "content": "x"}], "stream": True}),
}  # fmt: skip


def started_stream(
    relay: RelayServer, path: str, body: dict[str, Any], into: dict[str, Any]
) -> threading.Thread:
    def read() -> None:
        try:
            with (
                httpx.Client(timeout=60) as client,
                client.stream(
                    "POST", relay.url + path, json=body, headers={"User-Agent": "shutdown"}
                ) as response,
            ):
                into["status"] = response.status_code
                into["headers"] = dict(response.headers)
                into["id"] = response.headers.get("x-relay-request-id")
                into["body"] = b"".join(response.iter_raw())
                into["ended"] = time.monotonic()
        except httpx.HTTPError as error:
            into["error"] = repr(error)
            into["ended"] = time.monotonic()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_sigterm_ends_every_request_properly_before_the_platforms_kill(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    relay = RelayServer(
        {
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_API_KEY": "sk-shutdown-SECRET-3e5g7i9k1m",
            "ANTHROPIC_BASE_URL": fake.origin,
            "ANTHROPIC_API_KEY": "sk-ant-api03-SECRET-4f6h8j0l2n1p",
            **shipped_server_env(),
        }
    ).start()
    fake.replies["gpt-slow"] = Reply(body=openai_stream([f" t{i}" for i in range(600)], pace=0.05))  # 30 s
    fake.replies["gpt-silent"] = Reply(delay_headers=60.0, body=openai_stream(["late"]))
    fake.replies["claude-slow"] = Reply(body=anthropic_stream([f" t{i}" for i in range(600)], pace=0.05))
    results: dict[str, list[dict[str, Any]]] = {kind: [{} for _ in range(STREAMS)] for kind in ASKED}
    threads = [
        started_stream(relay, path, body, into)
        for kind, (path, body) in ASKED.items()
        for into in results[kind]
    ]
    assert fake.wait_for(lambda: len(fake.requests) == STREAMS * len(ASKED), timeout=20), len(fake.requests)
    time.sleep(0.5)  # every stream has begun relaying

    assert relay.process is not None
    relay.process.send_signal(signal.SIGTERM)
    terminated = time.monotonic()
    time.sleep(0.2)
    try:  # a new request, after SIGTERM: not taken (refused, or the listener already closed)
        late = httpx.post(relay.url + "/api/chat", json=ASKED["original"][1], timeout=5)
        assert late.status_code == 503 and "send the request again" in late.text
        assert late.headers["retry-after"] == "1"
    except httpx.ConnectError:
        pass
    try:
        relay.process.wait(timeout=10)  # Cloud Run's SIGKILL comes 10 s after its SIGTERM
    except subprocess.TimeoutExpired:
        relay.process.kill()
        raise AssertionError("the relay was still running when the platform's SIGKILL came") from None
    exited = time.monotonic() - terminated
    for thread in threads:
        thread.join(5)

    cut = [
        (kind, round(result["ended"] - terminated, 2))
        for kind, ended in results.items()
        for result in ended
        if "error" in result
    ]
    assert not cut, (cut, relay.output()[-4000:])
    for ended in results.values():
        for result in ended:
            assert result["ended"] - terminated < 10
    for result in results["original"]:
        assert result["body"].decode().endswith(f"[Error: {RESTARTING}]")
    for result in results["chat"]:
        last = json.loads(result["body"].decode().strip().split("\n\n")[-1].removeprefix("data: "))
        assert last["error"]["message"] == RESTARTING
    for result in results["responses"]:
        events = [
            json.loads(line[6:]) for line in result["body"].decode().splitlines() if line.startswith("data: ")
        ]
        assert events[-1]["type"] == "response.failed"
        assert events[-1]["response"]["error"]["message"] == RESTARTING
        assert [event["sequence_number"] for event in events] == list(range(len(events)))
    for result in results["messages"]:
        # Anthropic's error event, which its SDKs raise and Claude Code retries.
        name, data = result["body"].decode().strip().split("\n\n")[-1].split("\n")
        assert name == "event: error"
        assert json.loads(data.removeprefix("data: ")) == {
            "type": "error",
            "error": {"type": "api_error", "message": RESTARTING},
        }
    for result in results["waiting"]:
        assert result["status"] == 503 and b"The server is restarting" in result["body"]
        # Every SDK retries a 503 that says so, and another instance serves it at once.
        assert (result["headers"]["retry-after"], result["headers"]["x-should-retry"]) == ("1", "true")

    lines = {entry["request_id"]: entry for entry in relay.request_logs()}
    for kind, ended in results.items():
        for result in ended:
            assert lines[result["id"]]["outcome"] == "shutdown", (kind, lines[result["id"]])
            assert lines[result["id"]]["severity"] == "WARNING"
    assert fake.wait_for(lambda: all(request.ended for request in fake.requests), timeout=5)
    assert 7 < exited < 10, f"{exited:.1f} s"  # the grace (8 s) was given, and it ended in time
