"""Settings from the environment: defaults, and a clear failure naming a bad variable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay.config import ConfigError, Settings, load_settings
from relay.upstream.pools import environment_proxy


def test_defaults() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.openai_api_key is None
    assert settings.default_route.url("/chat/completions") == "https://api.openai.com/v1/chat/completions"
    assert settings.connect_timeout == 10.0
    assert settings.idle_timeout == 300.0  # minutes: a reasoning model thinks before its first token
    assert settings.keepalive == 15.0
    # The rest of docs/configuration.md's timeouts and retries, as written there.
    assert (settings.first_byte_timeout, settings.stream_max_seconds) == (120.0, 900.0)
    assert (settings.retries, settings.retry_max_wait) == (2, 8.0)
    assert settings.max_body_bytes == 1024 * 1024


def test_where_the_defaults_follow_the_platform_and_the_threads() -> None:
    # docs/configuration.md: on Cloud Run (K_SERVICE set) the client's address is the last
    # X-Forwarded-For entry, Google's front end's; elsewhere the socket's. A caller may use the
    # whole instance unless MAX_REQUESTS_PER_CALLER gives it a share.
    assert (load_settings({}).client_ip_hops, load_settings({"K_SERVICE": "relay"}).client_ip_hops) == (0, 1)
    assert load_settings({"K_SERVICE": "relay", "CLIENT_IP_HOPS": "2"}).client_ip_hops == 2
    assert load_settings({"THREADS": "250"}).max_requests_per_caller is None
    assert load_settings({"THREADS": "250", "MAX_REQUESTS_PER_CALLER": "25"}).max_requests_per_caller == 25


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        ("http://localhost:11434/v1", "http://localhost:11434/v1/chat/completions"),
        ("https://example.com/openai/v1/", "https://example.com/openai/v1/chat/completions"),
        ("https://example.com", "https://example.com/chat/completions"),
    ],
)
def test_base_url_is_joined_as_the_openai_sdks_join_it(base_url: str, url: str) -> None:
    assert load_settings({"OPENAI_BASE_URL": base_url}).default_route.url("/chat/completions") == url


def test_blank_values_mean_unset() -> None:
    settings = load_settings({"OPENAI_API_KEY": "  ", "OPENAI_BASE_URL": "", "MAX_BODY_BYTES": ""})
    assert settings == Settings()


def test_key_is_not_in_the_repr() -> None:
    settings = load_settings({"OPENAI_API_KEY": "sk-very-secret"})
    assert settings.openai_api_key == "sk-very-secret"
    assert "sk-very-secret" not in repr(settings)


def test_upstream_host_hides_credentials_in_the_url() -> None:
    settings = load_settings({"OPENAI_BASE_URL": "https://user:pass@proxy.example:8443/v1"})
    assert settings.default_route.host == "proxy.example:8443"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("OPENAI_BASE_URL", "api.openai.com/v1", "OPENAI_BASE_URL must be an http:// or https:// URL"),
        ("OPENAI_BASE_URL", "ftp://example.com", "OPENAI_BASE_URL must be an http:// or https:// URL"),
        ("OPENAI_BASE_URL", "https://example.com/v1?key=x", "OPENAI_BASE_URL must not carry a query"),
        ("UPSTREAM_CONNECT_TIMEOUT", "ten", "UPSTREAM_CONNECT_TIMEOUT must be a number of seconds"),
        ("UPSTREAM_IDLE_TIMEOUT", "0", "UPSTREAM_IDLE_TIMEOUT must be a positive number of seconds"),
        ("UPSTREAM_IDLE_TIMEOUT", "inf", "UPSTREAM_IDLE_TIMEOUT must be a positive number of seconds"),
        ("MAX_BODY_BYTES", "1.5", "MAX_BODY_BYTES must be a whole number"),
        ("MAX_BODY_BYTES", "-1", "MAX_BODY_BYTES must be greater than zero"),
        ("UPSTREAM_MAX_CONNECTIONS", "many", "UPSTREAM_MAX_CONNECTIONS must be a whole number"),
        ("UPSTREAM_RETRIES", "\u00b2", "UPSTREAM_RETRIES must be a whole number"),  # str.isdigit() says yes
        ("UPSTREAM_RETRIES", "-1", "UPSTREAM_RETRIES must be 0 or more"),
    ],
)
def test_bad_values_fail_naming_the_variable(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings({name: value})


@pytest.mark.parametrize(
    ("environ", "url", "proxy"),
    [
        ({}, "https://api.openai.com/v1/chat/completions", None),
        (
            {"HTTPS_PROXY": "http://proxy:3128"},
            "https://api.openai.com/v1/chat/completions",
            "http://proxy:3128",
        ),
        ({"HTTPS_PROXY": "http://proxy:3128"}, "http://localhost:11434/v1/chat/completions", None),
        (
            {"HTTP_PROXY": "http://proxy:3128"},
            "http://vllm.internal/v1/chat/completions",
            "http://proxy:3128",
        ),
        (
            {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "api.openai.com"},
            "https://api.openai.com/v1/chat/completions",
            None,
        ),
    ],
)
def test_upstream_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], url: str, proxy: str | None
) -> None:
    for name in (
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "https_proxy",
        "http_proxy",
        "all_proxy",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert environment_proxy(url) == proxy


GOOD_ROUTE = {"prefix": "or/", "base_url": "https://openrouter.ai/api/v1", "key_env": "OR_KEY"}


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ("{not json", "UPSTREAMS is neither a JSON list nor the path of a file"),
        ("[1", "UPSTREAMS is not valid JSON"),
        ('{"prefix": "x/"}', "neither a JSON list nor the path"),
        ([1], r"UPSTREAMS\[0\] must be an object"),
        ([{**GOOD_ROUTE, "extra": 1}], r"UPSTREAMS\[0\] has unknown field\(s\): extra"),
        ([{**GOOD_ROUTE, "prefix": ""}], r"UPSTREAMS\[0\].prefix must be a non-empty string"),
        ([GOOD_ROUTE, GOOD_ROUTE], r"UPSTREAMS\[1\].prefix 'or/' is listed twice"),
        ([{**GOOD_ROUTE, "base_url": "openrouter.ai"}], r"UPSTREAMS\[0\].base_url must be an http"),
        ([{**GOOD_ROUTE, "base_url": "https://a.example/v1#x"}], r"UPSTREAMS\[0\].base_url must not carry"),
        ([{**GOOD_ROUTE, "key_env": "NOT_SET_ANYWHERE"}], r"names NOT_SET_ANYWHERE, which is not set"),
        ([{**GOOD_ROUTE, "headers": {"Authorization": "x"}}], r"may not set 'Authorization'"),
        ([{**GOOD_ROUTE, "headers": {"X-Title": "bad\nvalue"}}], r"must be a string of visible ASCII"),
        (
            [{**GOOD_ROUTE, "api": "gemini"}],
            r'UPSTREAMS\[0\].api must be "openai" \(the default\) or "anthropic"',
        ),
        ([{**GOOD_ROUTE, "api": "anthropic", "headers": {"X-Api-Key": "x"}}], r"may not set 'X-Api-Key'"),
        ([{**GOOD_ROUTE, "api": "anthropic", "responses": True}], r"speaks the Anthropic API: \"responses\""),
        ([{**GOOD_ROUTE, "api": "anthropic", "stream_usage": False}], r"are for OpenAI routes"),
    ],
)
def test_bad_upstreams_fail_naming_the_route(routes: object, message: str) -> None:
    value = routes if isinstance(routes, str) else json.dumps(routes)
    with pytest.raises(ConfigError, match=message):
        load_settings({"UPSTREAMS": value, "OR_KEY": "sk-or-123"})


def test_upstreams_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_text(
        json.dumps(
            [GOOD_ROUTE, {"prefix": "local/", "base_url": "http://localhost:11434/v1", "key_env": None}]
        )
    )
    settings = load_settings({"UPSTREAMS": str(path), "OR_KEY": "sk-or-123"})
    openrouter, local = settings.routes
    assert (openrouter.prefix, openrouter.api_key, openrouter.needs_key) == ("or/", "sk-or-123", True)
    assert (local.prefix, local.api_key, local.needs_key) == ("local/", None, False)
    assert "sk-or-123" not in repr(settings)


def test_anthropics_default_route_and_routes_of_its_api() -> None:
    settings = load_settings({})
    route = settings.anthropic_route
    assert route.url("/v1/messages") == "https://api.anthropic.com/v1/messages"  # as Anthropic's SDKs join it
    assert (route.api, route.api_key, route.prefix) == ("anthropic", None, "")
    routes = [
        {"prefix": "work/", "base_url": "http://127.0.0.1:9", "key_env": "WORK_KEY", "api": "anthropic"}
    ]
    settings = load_settings(
        {
            "ANTHROPIC_API_KEY": "sk-ant-default-0123456789",
            "ANTHROPIC_BASE_URL": "https://gateway.example/anthropic/",
            "UPSTREAMS": json.dumps(routes),
            "WORK_KEY": "sk-ant-work-0123456789",
        }
    )
    assert settings.anthropic_route.url("/v1/messages") == "https://gateway.example/anthropic/v1/messages"
    (work,) = settings.routes
    assert (work.api, work.responses_api, work.stream_usage) == ("anthropic", False, False)
    assert {"sk-ant-default-0123456789", "sk-ant-work-0123456789"} <= set(settings.secrets)
    assert "sk-ant" not in repr(settings)
    with pytest.raises(ConfigError, match="ANTHROPIC_BASE_URL must not carry a query"):
        load_settings({"ANTHROPIC_BASE_URL": "https://api.anthropic.com?x=1"})


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("redis://10.0.0.3:6379/0", True),
        ("rediss://:secret@redis.example:6380", True),
        ("redis+unix:///var/run/redis.sock", True),
        ("unix:///var/run/redis.sock", False),  # the counting package's Unix scheme is redis+unix://
        ("memcached://x:11211", False),
    ],
)
def test_redis_url_takes_the_schemes_the_counting_package_knows(value: str, accepted: bool) -> None:
    if accepted:
        assert load_settings({"REDIS_URL": value}).limits.redis_url == value
        from limits.storage import storage_from_string

        storage_from_string(value)  # the counting package takes it too (it connects only when used)
    else:
        with pytest.raises(
            ConfigError, match=r"REDIS_URL must be a redis://, rediss:// or redis\+unix:// URL\.$"
        ):
            load_settings({"REDIS_URL": value})


def test_a_redis_password_is_kept_out_of_logs_but_not_the_url() -> None:
    settings = load_settings({"REDIS_URL": "redis://:s3cret-pass-word@10.0.0.3:6379/0"})
    assert "s3cret-pass-word" in settings.secrets
    assert "redis://" not in str(settings.secrets)  # only the password: "redis" would redact every mention
