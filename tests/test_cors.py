"""Any web frontend: CORS preflights, and CORS headers on every answer to an allowed origin."""

from __future__ import annotations

import httpx
import pytest

from tests.chat_client import USER, chat
from tests.conftest import ACCESS_TOKEN, RelayFactory
from tests.fake_upstream import FakeUpstream, Pause, Reply, error_reply, openai_stream
from tests.relay_server import RelayServer, free_port

APP = "https://chat.example.com"
OTHER_APP = "http://localhost:5173"
EVIL = "https://evil.example"


@pytest.fixture
def listed(relay_factory: RelayFactory) -> RelayServer:
    return relay_factory(ALLOWED_ORIGINS=f"{APP},{OTHER_APP}")


def preflight(client: httpx.Client, url: str, origin: str, **headers: str) -> httpx.Response:
    return client.options(
        url + "/api/chat",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST", **headers},
    )


@pytest.mark.parametrize("origin", [APP, OTHER_APP])
def test_preflight_from_a_listed_origin(listed: RelayServer, client: httpx.Client, origin: str) -> None:
    response = preflight(
        client,
        listed.url,
        origin,
        **{"Access-Control-Request-Headers": "content-type, authorization, x-stainless-os, x-stainless-lang"},
    )
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers
    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers["access-control-allow-methods"] == "GET, POST, DELETE, OPTIONS"
    allowed = [name.strip().lower() for name in response.headers["access-control-allow-headers"].split(",")]
    assert {"content-type", "authorization", "x-stainless-os", "x-stainless-lang"} <= set(allowed)
    assert len(allowed) == len(set(allowed))
    assert int(response.headers["access-control-max-age"]) > 0
    assert "Origin" in response.headers["vary"]


def test_preflight_allows_content_type_and_authorization_even_unasked(
    listed: RelayServer, client: httpx.Client
) -> None:
    response = preflight(client, listed.url, APP)
    assert response.headers["access-control-allow-headers"] == "Content-Type, Authorization"


def test_preflight_ignores_requested_names_that_are_not_header_names(
    listed: RelayServer, client: httpx.Client
) -> None:
    response = preflight(client, listed.url, APP, **{"Access-Control-Request-Headers": "x-ok, bad name, a:b"})
    assert response.headers["access-control-allow-headers"] == "Content-Type, Authorization, x-ok"


def test_private_network_preflight_only_where_the_owner_allows_it(
    relay_factory: RelayFactory, listed: RelayServer, client: httpx.Client
) -> None:
    # Chrome asks before a public page may call a relay on this machine or a LAN: by default the
    # answer is no, so no site can drive a relay a user runs on localhost.
    asks = {"Access-Control-Request-Private-Network": "true"}
    refused = preflight(client, listed.url, APP, **asks)
    assert refused.status_code == 204
    assert "access-control-allow-private-network" not in refused.headers
    allowing = relay_factory(ALLOWED_ORIGINS=APP, ALLOW_PRIVATE_NETWORK="true")
    response = preflight(client, allowing.url, APP, **asks)
    assert response.headers["access-control-allow-private-network"] == "true"
    unasked = preflight(client, allowing.url, APP)
    assert unasked.status_code == 204
    assert "access-control-allow-private-network" not in unasked.headers


def test_preflight_from_another_origin_is_403_without_cors_headers(
    listed: RelayServer, client: httpx.Client
) -> None:
    response = preflight(client, listed.url, EVIL)
    assert response.status_code == 403
    assert response.text == f"Origin {EVIL} is not allowed to use this relay (ALLOWED_ORIGINS)."
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]


def test_post_from_another_origin_is_refused_before_the_upstream(
    fake: FakeUpstream, listed: RelayServer, client: httpx.Client
) -> None:
    # A page may POST text/plain without a preflight; the key must not pay for it.
    reply = chat(client, listed.url, headers={"Origin": EVIL, "Content-Type": "text/plain"})
    assert reply.status == 403
    assert "access-control-allow-origin" not in reply.headers
    assert fake.requests == []


def test_any_origin_by_default(fake: FakeUpstream, relay: RelayServer, client: httpx.Client) -> None:
    assert preflight(client, relay.url, EVIL).headers["access-control-allow-origin"] == EVIL
    reply = chat(client, relay.url, headers={"Origin": EVIL})
    assert reply.status == 200
    assert reply.headers["access-control-allow-origin"] == EVIL


def test_no_origin_no_cors_headers(relay: RelayServer, client: httpx.Client) -> None:
    reply = chat(client, relay.url)
    assert "access-control-allow-origin" not in reply.headers
    assert reply.headers["vary"] == "Origin"


def test_stream_carries_cors_headers(fake: FakeUpstream, listed: RelayServer, client: httpx.Client) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["hi"]))
    reply = chat(client, listed.url, headers={"Origin": APP})
    assert reply.status == 200
    assert reply.headers["access-control-allow-origin"] == APP
    assert "Origin" in reply.headers["vary"]
    exposed = [name.strip().lower() for name in reply.headers["access-control-expose-headers"].split(",")]
    assert {"retry-after", "x-relay-request-id", "x-request-id"} <= set(exposed)
    assert reply.body.endswith(b"hi")


@pytest.mark.parametrize(
    ("status", "settings", "request_fields", "upstream"),
    [
        pytest.param(400, {}, {"messages": []}, None, id="400"),
        pytest.param(401, {"ACCESS_TOKENS": ACCESS_TOKEN}, {}, None, id="401"),
        pytest.param(413, {"MAX_BODY_BYTES": "100"}, {"messages": [{"role": "user", "content": "x" * 200}]}, None, id="413"),
        pytest.param(429, {}, {}, error_reply(429, b'{"error":{"message":"slow down"}}'), id="429"),
        pytest.param(500, {}, {}, error_reply(500, b"{}"), id="500"),
        pytest.param(502, {"OPENAI_BASE_URL": "http://127.0.0.1:{closed}/v1"}, {}, None, id="502"),
        pytest.param(504, {"UPSTREAM_FIRST_BYTE_TIMEOUT": "0.5"}, {}, Reply(delay_headers=2), id="504"),
    ],
)  # fmt: skip
def test_errors_carry_cors_headers(
    fake: FakeUpstream,
    relay_factory: RelayFactory,
    client: httpx.Client,
    status: int,
    settings: dict[str, str],
    request_fields: dict[str, object],
    upstream: Reply | None,
) -> None:
    settings = {name: value.format(closed=free_port()) for name, value in settings.items()}
    relay = relay_factory(ALLOWED_ORIGINS=APP, **settings)
    if upstream is not None:
        fake.replies["gpt-test"] = upstream
    payload = {"model": "gpt-test", "messages": USER, **request_fields}
    response = client.post(relay.url + "/api/chat", json=payload, headers={"Origin": APP})
    assert response.status_code == status
    assert response.headers["access-control-allow-origin"] == APP
    assert "Origin" in response.headers["vary"]  # a cache must not hand this answer to another origin
    assert "Retry-After" in response.headers["access-control-expose-headers"]
    assert response.text  # a message the page can read and show


def test_retry_after_is_passed_on_and_readable(
    fake: FakeUpstream, listed: RelayServer, client: httpx.Client
) -> None:
    fake.replies["gpt-test"] = Reply(
        status=429, headers={"Content-Type": "application/json", "Retry-After": "7"}, body=[b"{}"]
    )
    response = client.post(
        listed.url + "/api/chat", json={"model": "gpt-test", "messages": USER}, headers={"Origin": APP}
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert "Retry-After" in response.headers["access-control-expose-headers"]


def test_headers_go_out_before_a_slow_first_token_for_cross_origin_pages_too(
    fake: FakeUpstream, listed: RelayServer, client: httpx.Client
) -> None:
    fake.replies["gpt-test"] = Reply(body=[Pause(3.0), *openai_stream(["late"])])
    reply = chat(client, listed.url, headers={"Origin": APP})
    # Sent at once (milliseconds), long before the token 3 s later; the margin is for a busy machine.
    assert reply.headers_at < 1.5
    assert reply.reads[-1][0] >= 3.0
    assert reply.headers["access-control-allow-origin"] == APP


def test_the_relays_own_page_is_allowed_whatever_the_list(
    fake: FakeUpstream, listed: RelayServer, client: httpx.Client
) -> None:
    # Chromium sends Origin with a same-origin POST: the chat page the relay serves must work.
    fake.replies["gpt-test"] = Reply(body=openai_stream(["own page"]))
    own = listed.url  # http://127.0.0.1:PORT, as the browser names it
    reply = chat(client, listed.url, headers={"Origin": own})
    assert reply.status == 200
    assert reply.headers["access-control-allow-origin"] == own
    # Behind Cloud Run's front end the request arrives as http with X-Forwarded-Proto: https.
    https_own = "https://" + listed.url.removeprefix("http://")
    reply = chat(client, listed.url, headers={"Origin": https_own, "X-Forwarded-Proto": "https"})
    assert reply.status == 200


def test_listed_origins_match_as_browsers_send_them(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    # Written with capitals and default ports, as an owner might; a browser sends neither.
    relay = relay_factory(
        ALLOWED_ORIGINS="HTTPS://Chat.Example.com:443,http://LOCALHOST:80,http://localhost:5173"
    )
    fake.replies["*"] = Reply(body=openai_stream(["ok"]))
    for origin in (APP, "http://localhost", OTHER_APP):
        assert preflight(client, relay.url, origin).headers["Access-Control-Allow-Origin"] == origin
    assert chat(client, relay.url, headers={"Origin": APP}).status == 200
    assert preflight(client, relay.url, "http://localhost:8080").status_code == 403


def test_behind_cloud_run_the_own_origin_is_https_by_the_front_ends_header(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    # gunicorn believes X-Forwarded-Proto only from FORWARDED_ALLOW_IPS (loopback by default);
    # Google's front end is not loopback, so on Cloud Run the relay's own reading decides.
    relay = relay_factory(ALLOWED_ORIGINS=APP, FORWARDED_ALLOW_IPS="192.0.2.1", K_SERVICE="relay")
    fake.replies["*"] = Reply(body=openai_stream(["own page"]))
    host = "relay-abc123-uc.a.run.app"
    own = f"https://{host}"
    reply = chat(client, relay.url, headers={"Host": host, "Origin": own, "X-Forwarded-Proto": "https"})
    assert reply.status == 200
    assert reply.headers["access-control-allow-origin"] == own
    # Without the header the relay is http://HOST, so an https page of that name is another origin.
    assert chat(client, relay.url, headers={"Host": host, "Origin": own}).status == 403


def test_a_rebinding_page_is_not_taken_for_the_relays_own(
    fake: FakeUpstream, relay_factory: RelayFactory, client: httpx.Client
) -> None:
    # A page that rebinds its own name to the relay's address sends a Host equal to its Origin.
    relay = relay_factory(ALLOWED_ORIGINS=APP)
    fake.replies["*"] = Reply(body=openai_stream(["ok"]))
    evil = f"evil.example:{relay.port}"
    reply = chat(client, relay.url, headers={"Host": evil, "Origin": f"http://{evil}"})
    assert reply.status == 403
    assert fake.requests == []
    # Where a Host cannot tell (a proxy in front), PUBLIC_URL names the relay's own origin.
    public = relay_factory(ALLOWED_ORIGINS=APP, PUBLIC_URL="https://relay.example.com/")
    reply = chat(client, public.url, headers={"Host": evil, "Origin": "https://relay.example.com"})
    assert reply.status == 200
    assert reply.headers["access-control-allow-origin"] == "https://relay.example.com"
