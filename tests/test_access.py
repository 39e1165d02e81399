"""Who may spend the server's key: access tokens, client keys, models, token limits, the upstream host."""

from __future__ import annotations

import httpx
import pytest

from tests.chat_client import chat
from tests.conftest import (
    ACCESS_TOKEN,
    CLIENT_KEY,
    OTHER_ACCESS_TOKEN,
    SERVER_KEY,
    RecordingTransport,
    RelayFactory,
    assert_no_secret,
)
from tests.fake_upstream import PACKET, FakeUpstream, Reply, openai_stream
from tests.relay_server import RelayServer


@pytest.fixture
def private(relay_factory: RelayFactory) -> RelayServer:
    return relay_factory(ACCESS_TOKENS=f"{ACCESS_TOKEN},{OTHER_ACCESS_TOKEN}")


@pytest.mark.parametrize(
    ("authorization", "www_authenticate", "message"),
    [
        pytest.param(None, 'Bearer realm="relay"', "this relay needs an access token", id="none"),
        pytest.param("Bearer wrong-token-value-123456", 'Bearer realm="relay", error="invalid_token"', "not valid", id="wrong"),
        pytest.param(f"Basic {ACCESS_TOKEN}", 'Bearer realm="relay", error="invalid_token"', "not valid", id="basic-scheme"),
        pytest.param("Bearer", 'Bearer realm="relay", error="invalid_token"', "not valid", id="bearer-without-token"),
        pytest.param(f"Bearer {ACCESS_TOKEN[:-1]}", 'Bearer realm="relay", error="invalid_token"', "not valid", id="prefix"),
        pytest.param(f"Bearer {ACCESS_TOKEN}x", 'Bearer realm="relay", error="invalid_token"', "not valid", id="longer"),
    ],
)  # fmt: skip
def test_without_a_valid_token_is_401_and_nothing_reaches_the_upstream(
    fake: FakeUpstream,
    private: RelayServer,
    client: httpx.Client,
    authorization: str | None,
    www_authenticate: str,
    message: str,
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    reply = chat(client, private.url, headers=headers)
    assert reply.status == 401
    assert reply.headers["www-authenticate"] == www_authenticate
    assert message in reply.text
    assert 'Send the header "Authorization: Bearer <token>"' in reply.text
    assert fake.requests == []


@pytest.mark.parametrize("token", [ACCESS_TOKEN, OTHER_ACCESS_TOKEN])
def test_any_listed_token_is_accepted(
    fake: FakeUpstream, private: RelayServer, client: httpx.Client, token: str
) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["ok"]))
    reply = chat(client, private.url, headers={"Authorization": f"Bearer {token}"})
    assert reply.status == 200
    assert reply.body == PACKET + b"ok"
    # The access token is for the relay; the upstream gets the server key.
    assert fake.requests[0].headers["authorization"] == f"Bearer {SERVER_KEY}"


def test_scheme_is_case_insensitive(fake: FakeUpstream, private: RelayServer, client: httpx.Client) -> None:
    assert chat(client, private.url, headers={"Authorization": f"bearer {ACCESS_TOKEN}"}).status == 200


def test_client_keys_refused_when_not_allowed(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    relay = relay_factory(ALLOW_CLIENT_KEYS="false")
    refused = chat(client, relay.url, apiKey=CLIENT_KEY)
    assert refused.status == 400
    assert 'remove "apiKey" from the request' in refused.text
    assert fake.requests == []
    # The 2023 client sends apiKey "" when its user set none: that is not a key.
    assert chat(client, relay.url, apiKey="").status == 200
    assert fake.requests[0].headers["authorization"] == f"Bearer {SERVER_KEY}"


def test_no_request_field_or_header_can_choose_the_upstream_host(
    fake: FakeUpstream, relay: RelayServer, client: httpx.Client
) -> None:
    elsewhere = FakeUpstream().start()
    try:
        url = elsewhere.base_url
        reply = chat(
            client,
            relay.url,
            model=url,
            headers={"X-Forwarded-Host": f"127.0.0.1:{elsewhere.port}", "Forwarded": f"host={url}"},
            baseURL=url,
            base_url=url,
            api_base=url,
            basePath=url,
            OPENAI_BASE_URL=url,
            endpoint=url,
        )
        assert reply.status == 200
        assert len(fake.requests) == 1
        assert elsewhere.requests == []
        assert elsewhere.total_connections == 0
    finally:
        elsewhere.stop()


@pytest.mark.parametrize(
    ("model", "allowed"),
    [
        ("gpt-4o-mini", True),
        ("gpt-4o", True),
        ("gpt-4o-2024-08-06", True),
        ("o1", False),
        ("gpt-4", False),
        ("GPT-4O-MINI", False),
    ],
)
def test_allowed_models(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client, model: str, allowed: bool
) -> None:
    relay = relay_factory(ALLOWED_MODELS="gpt-4o,gpt-4o-*")
    reply = chat(client, relay.url, model=model)
    if allowed:
        assert reply.status == 200
        assert fake.requests[0].json["model"] == model
    else:
        assert reply.status == 400
        assert (
            reply.text
            == f'Model "{model}" is not allowed on this relay; allowed: gpt-4o, gpt-4o-* (ALLOWED_MODELS).'
        )
        assert fake.requests == []


def test_max_tokens_limit(fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client) -> None:
    relay = relay_factory(MAX_TOKENS_LIMIT="500")
    over = chat(client, relay.url, max_tokens=501)
    assert over.status == 400
    assert over.text == '"max_tokens" must be at most 500 on this relay (MAX_TOKENS_LIMIT).'
    assert fake.requests == []

    assert chat(client, relay.url, max_tokens=500).status == 200
    assert chat(client, relay.url).status == 200  # the default 2048 is capped, not refused
    assert [request.json["max_tokens"] for request in fake.requests] == [500, 500]


def test_a_limit_above_the_default_leaves_the_default(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    # README's own example, MAX_TOKENS_LIMIT=4096: a request that sets no max_tokens keeps the
    # original default of 2048 (the limit lowers the default, never raises it); 1 is a valid count.
    relay = relay_factory(MAX_TOKENS_LIMIT="4096")
    assert chat(client, relay.url).status == 200
    assert chat(client, relay.url, max_tokens=4096).status == 200
    assert chat(client, relay.url, max_tokens=1).status == 200
    assert chat(client, relay.url, max_tokens=4097).status == 400
    assert [request.json["max_tokens"] for request in fake.requests] == [2048, 4096, 1]


def test_recording_client_finds_a_secret_in_what_it_read(fake: FakeUpstream) -> None:
    # The check every end-to-end test runs on teardown (conftest.client) can fail.
    fake.replies["leaky"] = Reply(body=openai_stream([SERVER_KEY]))
    transport = RecordingTransport()
    with httpx.Client(transport=transport) as http:
        http.post(fake.base_url + "/chat/completions", json={"model": "leaky"})
    with pytest.raises(AssertionError, match="a secret appeared in a response"):
        assert_no_secret(b"".join(transport.seen), "a response")


def test_with_tokens_a_body_key_still_pays_when_client_keys_are_allowed(
    fake: FakeUpstream, private: RelayServer, client: httpx.Client
) -> None:
    # The access token admits the request; the caller's own key, if allowed, is spent.
    reply = chat(client, private.url, headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}, apiKey=CLIENT_KEY)
    assert reply.status == 200
    assert fake.requests[0].headers["authorization"] == f"Bearer {CLIENT_KEY}"
