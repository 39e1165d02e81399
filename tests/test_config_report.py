"""`python3 -m relay.config`: what a reviewer of a deployment's settings reads, run as the deploy runs it.

Run without site-packages (-S: the standard library only) in a clean environment (nothing of the
developer's leaks in): each setting with its value (a secret by its length, a URL without its
password) and where it came from, the upstreams, the warnings, and whether REDIS_URL answers.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from relay.config.known_settings import SETTINGS
from tests.redis_server import Redis, require_redis_server
from tests.relay_server import ROOT, base_environ, free_port

KEY = "sk-report-SECRET-0123456789abcdef"
TOKEN = "alice:tok-report-SECRET-9f8e7d6c5b"


def report(*arguments: str, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-B", "-S", "-m", "relay.config", *arguments],
        cwd=ROOT,
        env={**base_environ(), **environ},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def line_of(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if line.strip().startswith(f"{name} "))


def test_help_explains_and_names_every_setting() -> None:
    completed = report("--help")
    assert completed.returncode == 0
    assert "A variable that\nlooks like one of them" in completed.stdout
    assert "Exit status: 0" in completed.stdout
    flat = " ".join(completed.stdout.split())
    assert all(name in flat for name in SETTINGS)


def test_names_lists_every_setting_for_the_deploy() -> None:
    assert report("--names").stdout.split() == list(SETTINGS)


def test_each_setting_with_its_source_and_its_value_secrets_by_length_only() -> None:
    completed = report(
        OPENAI_API_KEY=KEY,
        ACCESS_TOKENS=TOKEN,
        MAX_TOKENS_LIMIT="4096",
        OPENAI_BASE_URL="https://user:pa55word@llm.example/v1",
    )
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert KEY not in out and "tok-report-SECRET" not in out and "pa55word" not in out
    assert line_of(out, "OPENAI_API_KEY").split()[1:] == [
        "environment",
        "(set,",
        f"{len(KEY)}",
        "characters)",
    ]
    assert line_of(out, "ACCESS_TOKENS").split()[1] == "environment"
    assert line_of(out, "MAX_TOKENS_LIMIT").split()[1:] == ["environment", "4096"]
    assert line_of(out, "OPENAI_BASE_URL").split()[1:] == ["environment", "https://user:***@llm.example/v1"]
    assert line_of(out, "REQUEST_BODY_TIMEOUT").split()[1:] == ["default", "30"]
    assert line_of(out, "SHUTDOWN_GRACE_SECONDS").split()[1:] == ["default", "8"]
    assert all(line_of(out, name) for name in SETTINGS)
    assert "(default) -> https://user:***@llm.example/v1: key from OPENAI_API_KEY" in out
    last = "Configuration ok: upstreams llm.example, api.anthropic.com; longest request 1200 s."
    assert out.splitlines()[-1] == last
    assert "Warning:" not in out


def test_anthropics_key_is_a_secret_and_its_routes_are_said_as_such() -> None:
    routes = '[{"prefix": "work/", "base_url": "https://gateway.example", "key_env": "WORK_KEY", "api": "anthropic"}]'
    out = report(
        ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL="https://u:pa55word@claude.example", UPSTREAMS=routes,
        WORK_KEY=KEY, ACCESS_TOKENS=TOKEN,
    ).stdout  # fmt: skip
    assert KEY not in out and "pa55word" not in out
    assert line_of(out, "ANTHROPIC_API_KEY").split()[1:] == [
        "environment",
        "(set,",
        f"{len(KEY)}",
        "characters)",
    ]
    assert line_of(out, "ANTHROPIC_BASE_URL").split()[1:] == ["environment", "https://u:***@claude.example"]
    assert (
        "(default) -> https://u:***@claude.example: key from ANTHROPIC_API_KEY; "
        "speaks the Anthropic Messages API (/v1/messages)"
    ) in out
    assert "work/ -> https://gateway.example: key from WORK_KEY; speaks the Anthropic Messages API" in out
    assert "upstreams api.openai.com, claude.example, gateway.example;" in out.splitlines()[-1]


def test_a_routes_key_is_said_by_its_variable() -> None:
    routes = '[{"prefix": "or/", "base_url": "https://openrouter.ai/api/v1", "key_env": "OPENROUTER_API_KEY", "headers": {"X-Title": "chat"}}]'
    out = report(UPSTREAMS=routes, OPENROUTER_API_KEY=KEY, ACCESS_TOKENS=TOKEN).stdout
    assert KEY not in out
    assert "or/ -> https://openrouter.ai/api/v1: key from OPENROUTER_API_KEY; headers X-Title" in out


@pytest.mark.parametrize(
    ("environ", "warning"),
    [
        ({"OPENAI_API_KEY": KEY, "K_SERVICE": "relay"},
         "ANYONE WHO FINDS THIS URL CAN SPEND THE KEY"),
        ({"OPENAI_API_KEY": KEY, "K_SERVICE": "relay"},
         "(the URL is public: K_SERVICE or PUBLIC_URL is set)"),
        ({"OPENAI_API_KEY": KEY, "ACCESS_TOKENS": "short"},
         "ACCESS_TOKENS has a token shorter than 16 characters"),
        ({"OPENAI_API_KEY": KEY, "ACCESS_TOKENS": TOKEN, "RATE_LIMIT_TOKENS": "1000/day", "WORKERS": "2"},
         "each worker process of each instance counts on its own (WORKERS=2)"),
        ({"OPENAI_API_KEY": KEY, "ACCESS_TOKENS": TOKEN, "SHUTDOWN_GRACE_SECONDS": "9.5"},
         "SHUTDOWN_GRACE_SECONDS is 9.5: with the second gunicorn adds, longer than the 10 s Cloud Run waits"),
        ({"ACCESS_TOKENS": TOKEN},
         "OPENAI_API_KEY has not been provided"),
        ({"ANTHROPIC_API_KEY": KEY, "K_SERVICE": "relay"},
         "ANYONE WHO FINDS THIS URL CAN SPEND THE KEY"),
    ],
)  # fmt: skip
def test_what_a_reviewer_should_know_is_warned(environ: dict[str, str], warning: str) -> None:
    completed = report(**environ)
    assert completed.returncode == 0
    assert any(line.startswith("Warning: ") and warning in line for line in completed.stdout.splitlines())


def test_a_placeholder_key_is_noted_and_other_programs_variables_mentioned() -> None:
    out = report(
        OPENAI_BASE_URL="http://127.0.0.1:11434/v1",
        OPENAI_API_KEY="ollama",
        ACCESS_TOKENS=TOKEN,
        OPENAI_LOG="debug",
    ).stdout
    assert "Note: The key of 127.0.0.1:11434 looks like a placeholder" in out
    assert (
        "Not settings of this relay (other programs may read them): OPENAI_LOG (did you mean OPENAI_ORG_ID?)"
        in out
    )


@pytest.mark.parametrize(
    ("name", "meant"), [("MAX_TOKEN_LIMIT", "MAX_TOKENS_LIMIT"), ("ACESS_TOKENS", "ACCESS_TOKENS")]
)
def test_a_misspelt_setting_fails_the_check(name: str, meant: str) -> None:
    completed = report(OPENAI_API_KEY=KEY, **{name: "100"})
    assert completed.returncode == 1
    assert completed.stderr.startswith(
        f"Configuration error: {name} is not a setting of this relay: did you mean {meant}?"
    )
    assert completed.stdout == ""


def test_brief_says_only_the_warnings_and_the_verdict() -> None:
    lines = report("--brief", OPENAI_API_KEY=KEY).stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["Warning", "Configuration ok"]


def test_an_unreachable_store_is_warned_by_its_host_never_its_password() -> None:
    port = free_port()  # nothing listens there
    completed = report(
        OPENAI_API_KEY=KEY, ACCESS_TOKENS=TOKEN, RATE_LIMIT_REQUESTS="60/minute",
        REDIS_URL=f"redis://:store-pa55word@127.0.0.1:{port}/0",
    )  # fmt: skip
    assert completed.returncode == 0
    assert "store-pa55word" not in completed.stdout
    assert (
        f"Warning: REDIS_URL at 127.0.0.1:{port} did not answer within 2 s: ConnectionRefusedError: until it "
        "does, each request is served uncounted (LIMITS_ON_STORE_ERROR=allow)."
    ) in completed.stdout


def test_a_store_that_answers_is_said_so(redis_server: Redis) -> None:
    out = report(
        OPENAI_API_KEY=KEY, ACCESS_TOKENS=TOKEN, RATE_LIMIT_REQUESTS="60/minute", REDIS_URL=redis_server.url
    ).stdout
    assert f"Limits store: REDIS_URL at 127.0.0.1:{redis_server.port} answers." in out
    assert "Warning" not in out


def test_a_store_that_refuses_its_password_is_warned() -> None:
    require_redis_server()
    server = Redis().start()  # its own: a password is set on it
    try:
        assert server.command("CONFIG", "SET", "requirepass", "right-pa55word") == b"+OK\r\n"
        out = report(
            OPENAI_API_KEY=KEY, ACCESS_TOKENS=TOKEN, RATE_LIMIT_REQUESTS="60/minute",
            REDIS_URL=f"redis://:wrong-pa55word@127.0.0.1:{server.port}/0",
        ).stdout  # fmt: skip
        assert f"Warning: REDIS_URL at 127.0.0.1:{server.port} refused its password" in out
        assert "wrong-pa55word" not in out
        right = report(
            OPENAI_API_KEY=KEY, ACCESS_TOKENS=TOKEN, RATE_LIMIT_REQUESTS="60/minute",
            REDIS_URL=f"redis://:right-pa55word@127.0.0.1:{server.port}/0",
        ).stdout  # fmt: skip
        assert f"Limits store: REDIS_URL at 127.0.0.1:{server.port} answers." in right
    finally:
        server.stop()
