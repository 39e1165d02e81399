"""Settings that cannot be misspelt, and one list of them: the code's, the docs', and what is read.

A variable that looks like a setting and is none (`MAX_TOKEN_LIMIT`) would leave the relay without
the limit its owner meant, and say nothing: the relay refuses it, naming the setting it was likely
meant to be. The names a deployment's platform or other programs use are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from relay.config import ConfigError, load_settings
from relay.config.known_settings import PLATFORM, SETTINGS, foreign, misspelt
from relay.config.review import in_effect

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("MAX_TOKEN_LIMIT", "MAX_TOKENS_LIMIT"),
        ("ALLOWED_MODEL", "ALLOWED_MODELS"),
        ("OPENAI_BASEURL", "OPENAI_BASE_URL"),
        ("ACESS_TOKENS", "ACCESS_TOKENS"),
        ("ACCESS_TOKEN", "ACCESS_TOKENS"),
        ("MAXTOKENS_LIMIT", "MAX_TOKENS_LIMIT"),
        ("ALLOWED_ORIGIN", "ALLOWED_ORIGINS"),
        ("ALLOW_CLIENT_KEY", "ALLOW_CLIENT_KEYS"),
        ("RATE_LIMIT_TOKEN", "RATE_LIMIT_TOKENS"),
        ("RATE_LIMIT", "RATE_LIMIT_TOKENS"),
        ("BUDGET_TOKEN", "BUDGET_TOKENS"),
        ("MODEL_BUDGET", "MODEL_BUDGETS"),
        ("CALLER_LIMIT", "CALLER_LIMITS"),
        ("STREAM_MAX_SECOND", "STREAM_MAX_SECONDS"),
        ("UPSTREAM_TIMEOUT", "UPSTREAM_IDLE_TIMEOUT"),
        ("SHUTDOWN_GRACE", "SHUTDOWN_GRACE_SECONDS"),
        ("LIMITS_STORE_TIMEOUTS", "LIMITS_STORE_TIMEOUT"),
        ("THREAD", "THREADS"),
        ("WORKER", "WORKERS"),
        ("OPENAI_ORG", "OPENAI_ORG_ID"),
        ("SERVE_PAGES", "SERVE_PAGE"),
        ("REDIS_URI", "REDIS_URL"),
        ("ANTHROPIC_BASEURL", "ANTHROPIC_BASE_URL"),
        ("ANTHROPIC_APIKEY", "ANTHROPIC_API_KEY"),
    ],
)
def test_a_misspelt_setting_is_refused_naming_the_setting_it_was_meant_to_be(name: str, meant: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"OPENAI_API_KEY": "sk-test", name: "100"})
    assert str(refused.value).startswith(f"{name} is not a setting of this relay: did you mean {meant}?")
    assert "python3 -m relay.config --help" in str(refused.value)


def test_every_misspelt_setting_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"ACESS_TOKENS": "x", "MAX_TOKEN_LIMIT": "100"})
    message = str(refused.value)
    assert "ACESS_TOKENS is not a setting" in message and "MAX_TOKEN_LIMIT is not a setting" in message


@pytest.mark.parametrize(
    "name",
    [
        # the platform's and the runtime's
        "K_SERVICE", "K_REVISION", "K_CONFIGURATION", "PORT", "FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE",
        "GOOGLE_CLOUD_REGION", "GOOGLE_CLOUD_PROJECT_NUMBER", "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CORE_PROJECT",
        "LOG_EXECUTION_ID", "HOME", "PATH", "HOSTNAME", "PYTHONUNBUFFERED", "HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE",
        # other programs' (the OpenAI SDK's, a Redis client's)
        "OPENAI_LOG", "OPENAI_API_BASE", "ANTHROPIC_LOG", "REDIS_HOST", "REDIS_PORT",
        # Claude Code's, which a developer's shell holds
        "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_MODEL", "ANTHROPIC_CUSTOM_HEADERS", "ANTHROPIC_BETAS",
        "ANTHROPIC_SMALL_FAST_MODEL", "CLAUDE_CODE_MAX_OUTPUT_TOKENS", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
        # the test suite's own
        "RELAY_BROWSER_REQUIRED", "RELAY_REDIS_REQUIRED",
    ],
)  # fmt: skip
def test_names_of_the_platform_and_of_other_programs_are_left_alone(name: str) -> None:
    assert load_settings({name: "x"}).openai_api_key is None  # started, the variable ignored


def test_the_variable_a_route_names_for_its_key_is_the_owners_to_call() -> None:
    routes = '[{"prefix": "local/", "base_url": "http://127.0.0.1:9/v1", "key_env": "UPSTREAM_LOCAL_KEY"}]'
    settings = load_settings({"UPSTREAMS": routes, "UPSTREAM_LOCAL_KEY": "sk-local-0123456789abcdef"})
    assert settings.routes[0].api_key == "sk-local-0123456789abcdef"
    with pytest.raises(ConfigError, match="UPSTREAM_LOCAL_KEY is not a setting"):
        load_settings({"UPSTREAM_LOCAL_KEY": "sk-local-0123456789abcdef"})  # named by no route


def test_other_programs_variables_of_a_shared_prefix_are_only_mentioned() -> None:
    environ = {"OPENAI_LOG": "debug", "OPENAI_KEY": "sk-x", "REDIS_HOST": "h", "OPENAI_API_KEY": "sk"}
    assert misspelt(environ) == []
    assert foreign(environ) == [
        ("OPENAI_KEY", "OPENAI_API_KEY"),
        ("OPENAI_LOG", "OPENAI_ORG_ID"),
        ("REDIS_HOST", "REDIS_URL"),
    ]


class Recording(Mapping[str, str]):
    """An environment that is empty, and remembers every name the relay asks it for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        raise KeyError(name)

    def get(self, name: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(name)
        return default

    def __contains__(self, name: object) -> bool:
        self.asked.add(str(name))
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def documented() -> dict[str, str]:
    """Each variable of docs/configuration.md's setting tables, with its default column as written."""
    text = DOCS.read_text()
    settings_part = text.split("## Read from the platform")[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([^|]*) \|", settings_part, flags=re.MULTILINE)
    return dict(rows)


def test_the_settings_the_code_lists_are_those_it_reads_and_the_docs_describe() -> None:
    environ = Recording()
    load_settings(environ)
    assert environ.asked == set(SETTINGS) | PLATFORM
    assert list(documented()) == list(SETTINGS)  # in the same order: the report lists them as the docs
    platform = DOCS.read_text().split("## Read from the platform")[1]
    assert all(f"`{name}`" in platform for name in PLATFORM)


def test_the_documented_defaults_are_those_in_effect() -> None:
    effective = in_effect(load_settings({}))
    checked = 0
    for name, default in documented().items():
        literal = re.fullmatch(r"`([^`]+)`", default.strip())
        if literal:
            value = literal.group(1)
            # `THREADS`: the default is another setting's value
            assert effective[name] == (effective[value] if value in SETTINGS else value), name
            checked += 1
        elif default.startswith("unset"):
            assert effective[name].startswith("unset") or "(by host)" in effective[name], name
            checked += 1
    assert effective["REQUEST_BODY_TIMEOUT"] == "30" and effective["SHUTDOWN_GRACE_SECONDS"] == "8"
    assert checked >= len(SETTINGS) - 2  # CLIENT_IP_HOPS's default is a sentence: test_config checks it
