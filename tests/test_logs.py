"""One structured JSON line per request, in Cloud Logging's format; never a key, a token or a message's text."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import httpx
import pytest

from relay.access.redaction import Redactor
from relay.serving.request_log import CloudLoggingFormatter
from tests.chat_client import chat
from tests.conftest import ACCESS_TOKEN, SERVER_KEY, RelayFactory
from tests.fake_upstream import FakeUpstream, Reply, Reset, Stall, chunk, error_reply, openai_stream, sse
from tests.relay_server import RelayServer

TRACE = "105445aa7843bc8bf206b12000100000"
SPOKEN = "PURPLE-ELEPHANT-42"  # the user's words: never in a log
ANSWERED = "ORANGE-GIRAFFE-7"  # the model's words: never in a log


@pytest.fixture
def logged(relay_factory: RelayFactory) -> RelayServer:
    return relay_factory(GOOGLE_CLOUD_PROJECT="my-project", UPSTREAM_IDLE_TIMEOUT="1")


def request_log(relay: RelayServer, user_agent: str) -> dict[str, Any]:
    """The one log line of the request sent with this User-Agent (a server shared with other tests)."""
    lines = relay.request_logs_of(user_agent)
    assert len(lines) == 1, f"{len(lines)} lines for one request"
    return lines[0]


def agent(request: pytest.FixtureRequest) -> str:
    return f"log-test/{request.node.name}"


def test_a_streamed_request_is_one_line_with_every_field(
    fake: FakeUpstream, logged: RelayServer, client: httpx.Client
) -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    fake.replies["gpt-test"] = Reply(body=openai_stream([ANSWERED, "!"], usage=usage))
    reply = chat(
        client,
        logged.url,
        headers={"X-Cloud-Trace-Context": f"{TRACE}/1;o=1", "User-Agent": "test-agent/1.0"},
        messages=[{"role": "user", "content": SPOKEN}],
    )
    assert reply.status == 200
    entry = request_log(logged, "test-agent/1.0")

    assert entry["severity"] == "INFO"
    assert entry["message"] == "POST /api/chat 200 ok"
    assert entry["httpRequest"]["requestMethod"] == "POST"
    assert entry["httpRequest"]["requestUrl"] == "/api/chat"
    assert entry["httpRequest"]["status"] == 200
    assert entry["httpRequest"]["userAgent"] == "test-agent/1.0"
    assert re.fullmatch(r"\d+\.\d{3}s", entry["httpRequest"]["latency"])
    assert entry["logging.googleapis.com/trace"] == f"projects/my-project/traces/{TRACE}"
    assert entry["model"] == "gpt-test"
    assert entry["upstream_status"] == 200
    assert 0 < entry["first_token_ms"] < 5000
    assert entry["chunks"] == 5  # role, two tokens, finish, usage
    assert entry["bytes"] == len(reply.body)
    assert entry["outcome"] == "ok"
    assert entry["usage"] == usage
    line = json.dumps(entry)
    assert SPOKEN not in line and ANSWERED not in line


def test_w3c_traceparent_is_used_when_there_is_no_cloud_trace_header(
    fake: FakeUpstream, logged: RelayServer, client: httpx.Client
) -> None:
    headers = {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01", "User-Agent": "log-test/w3c"}
    chat(client, logged.url, headers=headers)
    entry = request_log(logged, "log-test/w3c")
    assert entry["logging.googleapis.com/trace"] == f"projects/my-project/traces/{TRACE}"


def test_no_trace_without_a_project(fake: FakeUpstream, relay: RelayServer, client: httpx.Client) -> None:
    chat(
        client,
        relay.url,
        headers={"X-Cloud-Trace-Context": f"{TRACE}/1;o=1", "User-Agent": "log-test/no-project"},
    )
    assert "logging.googleapis.com/trace" not in request_log(relay, "log-test/no-project")


@pytest.mark.parametrize(
    ("reply", "status", "outcome", "severity"),
    [
        pytest.param(error_reply(429, b'{"error":{"message":"slow"}}'), 429, "upstream_error", "WARNING", id="upstream-429"),
        pytest.param(Reply(body=[sse(chunk("x")), Reset()]), 200, "upstream_error", "WARNING", id="reset-mid-stream"),
        pytest.param(Reply(body=[sse(chunk("x")), sse({"error": {"message": "bad"}})]), 200, "upstream_error", "WARNING", id="error-event"),
        pytest.param(Reply(body=[sse(chunk("x")), Stall()]), 200, "timeout", "WARNING", id="idle-timeout"),
    ],
)  # fmt: skip
def test_outcomes(
    request: pytest.FixtureRequest,
    fake: FakeUpstream,
    logged: RelayServer,
    client: httpx.Client,
    reply: Reply,
    status: int,
    outcome: str,
    severity: str,
) -> None:
    fake.replies["gpt-test"] = reply
    assert chat(client, logged.url, headers={"User-Agent": agent(request)}).status == status
    entry = request_log(logged, agent(request))
    assert (entry["httpRequest"]["status"], entry["outcome"], entry["severity"]) == (
        status,
        outcome,
        severity,
    )


def test_rejected_request(logged: RelayServer, client: httpx.Client) -> None:
    headers = {"User-Agent": "log-test/rejected"}
    assert client.post(logged.url + "/api/chat", content=b"{}", headers=headers).status_code == 400
    entry = request_log(logged, "log-test/rejected")
    assert (entry["outcome"], entry["severity"], entry["httpRequest"]["status"]) == (
        "rejected",
        "WARNING",
        400,
    )
    assert entry["upstream_status"] is None


def test_client_gone(fake: FakeUpstream, logged: RelayServer, client: httpx.Client) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream([f" t{i}" for i in range(100)], pace=0.05))
    with client.stream(
        "POST",
        logged.url + "/api/chat",
        json={"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]},
        headers={"User-Agent": "log-test/gone"},
    ) as response:
        next(response.iter_raw())
    assert request_log(logged, "log-test/gone")["outcome"] == "client_gone"


def test_access_token_never_logged(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN)
    admitted = chat(client, relay.url, headers={"Authorization": f"Bearer {ACCESS_TOKEN}"})
    refused = chat(client, relay.url, headers={"Authorization": f"Bearer {ACCESS_TOKEN}-wrong"})
    assert relay.log_of(admitted.request_id)["outcome"] == "ok"
    assert relay.log_of(refused.request_id)["outcome"] == "rejected"
    assert ACCESS_TOKEN not in relay.output()


def test_every_stdout_line_is_json_with_a_severity(relay: RelayServer) -> None:
    lines = [line for line in relay.stdout().splitlines() if line.strip()]
    assert lines
    for line in lines:
        entry = json.loads(line)
        assert entry["severity"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        assert isinstance(entry["message"], str)


def test_a_bug_in_the_relay_is_a_plain_500_logged_as_an_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The relay's own failure path: no real server can be made to fail so, hence the stand-in bug."""
    import logging

    import flask

    from relay import app
    from relay.config import load_settings
    from relay.endpoints import original_chat
    from relay.serving.request_log import configure_logging

    def broken(body: bytes) -> None:
        raise RuntimeError(f"a bug that quotes the request: {SPOKEN}")

    monkeypatch.setattr(original_chat, "parse_chat_request", broken)
    relay = app.ChatRelay(load_settings({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}))
    configure_logging()  # to this test's captured stdout
    try:
        with flask.Flask(__name__).test_request_context(
            "/api/chat", method="POST", json={"model": "m", "messages": [{"role": "user", "content": SPOKEN}]}
        ):
            response = relay(flask.request)
            body = b"".join(response.response)  # type: ignore[arg-type]
    finally:
        logging.getLogger("relay").handlers[:] = []
    assert response.status_code == 500
    assert body == b"Internal error in the relay; the request was not completed."
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (line,) = [entry for entry in entries if "httpRequest" in entry]
    assert (line["outcome"], line["severity"], line["httpRequest"]["status"]) == ("error", "ERROR", 500)
    (failure,) = [entry for entry in entries if "httpRequest" not in entry]
    assert (failure["severity"], failure["exception"]) == ("ERROR", "RuntimeError")
    assert SPOKEN not in json.dumps(entries)  # the type only: its text could quote the request


def test_a_log_line_is_redacted_whatever_its_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    # The formatter alone: arguments of any type (an exception, a mapping) are written as logging
    # writes them, and a key in any of them is not.
    monkeypatch.setattr(CloudLoggingFormatter, "redactor", Redactor((SERVER_KEY, "short")))
    formatter = CloudLoggingFormatter()

    def line(message: str, args: Any) -> str:
        record = logging.LogRecord("relay.test", logging.WARNING, __file__, 1, message, args, None)
        return str(json.loads(formatter.format(record))["message"])

    assert line("failed: %s", (ValueError(f"bad key {SERVER_KEY}"),)) == "failed: bad key [redacted]"
    assert line("%(host)s said %(what)s", {"host": "h", "what": SERVER_KEY}) == "h said [redacted]"
    assert line("%d tokens", (7,)) == "7 tokens"
    # The relay's own words are its own: a short token may be any word of them.
    assert line("a token is shorter than %d characters", (16,)) == "a token is shorter than 16 characters"
