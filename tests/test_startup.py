"""Start-up: a malformed setting stops the process with a message naming it; risky settings warn."""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest

from tests.chat_client import chat
from tests.conftest import ACCESS_TOKEN, SERVER_KEY, RelayFactory
from tests.fake_upstream import FakeUpstream, Reply, openai_stream
from tests.relay_server import (
    ROOT,
    RelayServer,
    base_environ,
    framework_command,
    free_port,
    shipped_server_env,
)


def refused_start(name: str, value: str) -> str:
    """What the function printed when it would not start with this setting (it must not start)."""
    completed = subprocess.run(
        [*framework_command(), "--port", "0"],
        cwd=ROOT,
        env={**base_environ(), "OPENAI_API_KEY": SERVER_KEY, name: value},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode != 0
    output = completed.stdout + completed.stderr
    assert "Traceback" not in output
    assert SERVER_KEY not in output
    return output


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("OPENAI_BASE_URL", "api.openai.com", "OPENAI_BASE_URL must be an http:// or https:// URL"),
        ("ACCESS_TOKENS", "good-token-123456789,,other", "ACCESS_TOKENS has an empty item"),
        ("ACCESS_TOKENS", "has space inside", "ACCESS_TOKENS: token 1 has a character that cannot travel"),
        ("ALLOW_CLIENT_KEYS", "maybe", "ALLOW_CLIENT_KEYS must be true or false"),
        ("ALLOWED_ORIGINS", "https://ok.example,https://bad.example/", "ALLOWED_ORIGINS: 'https://bad.example/' is not an origin"),
        ("ALLOWED_ORIGINS", "*,https://ok.example", "ALLOWED_ORIGINS: '*' must stand alone"),
        ("ALLOWED_MODELS", "gpt-4o,", "ALLOWED_MODELS has an empty item"),
        ("MAX_TOKENS_LIMIT", "lots", "MAX_TOKENS_LIMIT must be a whole number"),
        ("UPSTREAM_FIRST_BYTE_TIMEOUT", "-1", "UPSTREAM_FIRST_BYTE_TIMEOUT must be a positive number"),
        ("STREAM_MAX_SECONDS", "3600", "the longest request, max(UPSTREAM_CONNECT_TIMEOUT + UPSTREAM_FIRST_BYTE_TIMEOUT, STREAM_MAX_SECONDS) + UPSTREAM_IDLE_TIMEOUT, is 3900 s; it must be at most 3540 s"),
        ("UPSTREAM_FIRST_BYTE_TIMEOUT", "3500", "the longest request, max(UPSTREAM_CONNECT_TIMEOUT + UPSTREAM_FIRST_BYTE_TIMEOUT, STREAM_MAX_SECONDS) + UPSTREAM_IDLE_TIMEOUT, is 3810 s"),
        ("WORKERS", "two", "WORKERS must be a whole number"),
        ("UPSTREAM_MAX_CONNECTIONS", "10", "UPSTREAM_MAX_CONNECTIONS (10) must be at least THREADS (1000)"),
        ("OPENAI_ORG_ID", "org-café", "OPENAI_ORG_ID has a character that cannot travel in an HTTP header"),
        ("OPENAI_API_KEY", "sk-with space", "OPENAI_API_KEY has a character that cannot travel in an HTTP header"),
        ("SERVER_WORKER", "eventlet", "SERVER_WORKER must be one of gevent, gthread"),
        ("THREADS", "0", "THREADS must be greater than zero"),
    ],
)  # fmt: skip
def test_malformed_setting_stops_the_process_naming_it(name: str, value: str, message: str) -> None:
    assert f"Configuration error: {message}" in refused_start(name, value)


def warnings_of(relay_factory: RelayFactory, **settings: str | None) -> list[str]:
    relay = relay_factory(**settings)
    # Start-up lines only: request lines (with httpRequest) come from whatever tests shared the server.
    return [
        entry["message"]
        for entry in relay.log_entries()
        if entry["severity"] == "WARNING" and "httpRequest" not in entry
    ]


def test_server_key_without_tokens_warns_loudly(relay_factory: RelayFactory) -> None:
    assert any("ANYONE WHO FINDS THIS URL CAN SPEND THE KEY" in line for line in warnings_of(relay_factory))


def test_server_key_with_tokens_does_not(relay_factory: RelayFactory) -> None:
    assert warnings_of(relay_factory, ACCESS_TOKENS=ACCESS_TOKEN) == []


def test_a_routes_key_without_tokens_warns_too(fake: FakeUpstream, relay_factory: RelayFactory) -> None:
    routes = [{"prefix": "or/", "base_url": fake.base_url, "key_env": "ROUTE_KEY"}]
    warnings = warnings_of(
        relay_factory,
        OPENAI_API_KEY=None,
        ANTHROPIC_API_KEY=None,  # the route's key alone
        UPSTREAMS=json.dumps(routes),
        ROUTE_KEY="sk-route-SECRET-1",
    )
    assert any("ANYONE WHO FINDS THIS URL CAN SPEND THE KEY" in line for line in warnings)


def test_a_keyless_local_route_is_not_every_request_refused(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    routes = [{"prefix": "local/", "base_url": fake.base_url, "key_env": None}]
    keyless = {"OPENAI_API_KEY": None, "ANTHROPIC_API_KEY": None, "ALLOW_CLIENT_KEYS": "false"}
    warnings = warnings_of(relay_factory, **keyless, UPSTREAMS=json.dumps(routes))
    assert not any("every chat request will be refused" in line for line in warnings)
    assert any("every chat request will be refused" in line for line in warnings_of(relay_factory, **keyless))
    # Anthropic's key alone serves /v1/messages: not every request is refused.
    anthropic_only = warnings_of(relay_factory, OPENAI_API_KEY=None, ALLOW_CLIENT_KEYS="false")
    assert not any("every chat request will be refused" in line for line in anthropic_only)


def test_short_token_warns(relay_factory: RelayFactory) -> None:
    assert any(
        "shorter than 16 characters" in line for line in warnings_of(relay_factory, ACCESS_TOKENS="short")
    )


def serving_lines(relay: RelayServer, workers: int = 1) -> list[str]:
    """What each worker process logs, once started, about the worker class that actually serves."""
    deadline = time.monotonic() + 10
    lines: list[str] = []
    while len(lines) < workers and time.monotonic() < deadline:
        time.sleep(0.05)
        lines = [entry["message"] for entry in relay.log_entries() if "serving with" in entry["message"]]
    return lines


def test_gevent_worker_serves_by_default(relay: RelayServer) -> None:
    lines = serving_lines(relay)
    assert lines
    assert all(line.endswith("serving with GeventWorker, 1000 connections") for line in lines)


def test_shipped_settings_serve_with_two_gevent_workers(relay_factory: RelayFactory) -> None:
    shipped = shipped_server_env()
    lines = serving_lines(relay_factory(**shipped), workers=2)
    assert len(lines) == 2
    assert all(
        line.endswith(f"serving with GeventWorker, {shipped['THREADS']} connections") for line in lines
    )


def test_gthread_worker_still_serves(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    relay = relay_factory(SERVER_WORKER="gthread", THREADS="4")
    fake.replies["gpt-test"] = Reply(body=openai_stream(["threads"]))
    assert chat(client, relay.url).body == b'{"model":"gpt-fake-0613"}threads'
    lines = serving_lines(relay)
    assert lines
    assert all(line.endswith("serving with ThreadWorker, 4 connections") for line in lines)


@pytest.mark.parametrize(
    ("name", "meant"),
    [("MAX_TOKEN_LIMIT", "MAX_TOKENS_LIMIT"), ("ALLOWED_MODEL", "ALLOWED_MODELS"),
     ("OPENAI_BASEURL", "OPENAI_BASE_URL"), ("ACESS_TOKENS", "ACCESS_TOKENS")],
)  # fmt: skip
def test_a_misspelt_setting_stops_the_process_naming_the_setting(name: str, meant: str) -> None:
    output = refused_start(name, "100")
    assert f"Configuration error: {name} is not a setting of this relay: did you mean {meant}?" in output


def test_an_unreachable_store_is_said_at_start_up_and_in_each_failure_by_its_host(
    relay_factory: RelayFactory,
) -> None:
    port = free_port()  # nothing listens there
    settings = {
        "ACCESS_TOKENS": ACCESS_TOKEN,
        "RATE_LIMIT_REQUESTS": "60/minute",
        "REDIS_URL": f"redis://:store-pa55word@127.0.0.1:{port}/0",
        "LIMITS_STORE_TIMEOUT": "0.2",
    }
    where = f"REDIS_URL at 127.0.0.1:{port}"
    assert any(
        line.startswith(f"{where} did not answer within 2 s") and "served uncounted" in line
        for line in warnings_of(relay_factory, **settings)
    )
    relay = relay_factory(**settings)
    answer = httpx.post(
        relay.url + "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}", "User-Agent": "store-down"},
        timeout=30,
    )
    assert answer.status_code == 200  # LIMITS_ON_STORE_ERROR=allow: served uncounted
    failures = [
        entry["message"] for entry in relay.log_entries() if "The limits store" in entry.get("message", "")
    ]
    assert failures and all(f"({where})" in message for message in failures), failures
    assert "store-pa55word" not in relay.output()
