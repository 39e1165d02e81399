"""Access policy without a network: tokens, keys, models, token caps, CORS, and who is calling."""

from __future__ import annotations

import base64
import json

import pytest

from relay.access.callers import ADDRESS_LIMIT, Caller, InFlight, client_address, identify
from relay.access.cors import origin_allowed, own_origin, preflight_headers, response_headers
from relay.access.policy import (
    anthropic_key,
    bearer_key,
    bearer_token,
    check_access_token,
    check_model,
    choose_key,
    google_identity_token,
    model_allowed,
    token_cap,
)
from relay.config import Route, Settings, load_settings
from relay.errors import BadRequest, MissingApiKey, TooManyAtOnce, Unauthorized

ALICE_TOKEN = "tok-alice-7d1e9b3f5a"
BOB_TOKEN = "tok-bob-2c8a4e6f0b"
PRIVATE = load_settings({"ACCESS_TOKENS": f"alice:{ALICE_TOKEN},bob:{BOB_TOKEN}"})
OPEN = load_settings({})
NO_CLIENT_KEYS = load_settings({"ALLOW_CLIENT_KEYS": "false"})


# --- Access tokens -----------------------------------------------------------------------------


def test_without_access_tokens_anyone_passes_and_no_name_is_given() -> None:
    assert check_access_token(OPEN, None) is None
    assert check_access_token(OPEN, "Bearer anything") is None


@pytest.mark.parametrize(
    ("authorization", "name"),
    [
        pytest.param(f"Bearer {ALICE_TOKEN}", "alice", id="first"),
        pytest.param(f"Bearer {BOB_TOKEN}", "bob", id="second"),
        pytest.param(f"bearer   {BOB_TOKEN}  ", "bob", id="scheme-any-case-spaces-around"),
    ],
)
def test_a_listed_token_is_accepted_and_named(authorization: str, name: str) -> None:
    assert check_access_token(PRIVATE, authorization) == name


def test_an_unnamed_token_is_named_by_its_position() -> None:
    settings = load_settings({"ACCESS_TOKENS": f"{ALICE_TOKEN},{BOB_TOKEN}"})
    assert check_access_token(settings, f"Bearer {BOB_TOKEN}") == "token-2"


def test_a_token_listed_twice_is_known_by_its_first_name() -> None:
    settings = load_settings({"ACCESS_TOKENS": f"first:{ALICE_TOKEN},second:{ALICE_TOKEN}"})
    assert check_access_token(settings, f"Bearer {ALICE_TOKEN}") == "first"


@pytest.mark.parametrize(
    ("authorization", "token_sent"),
    [
        pytest.param(None, False, id="no-header"),
        pytest.param("", False, id="empty-header"),
        pytest.param(f"Basic {ALICE_TOKEN}", True, id="other-scheme"),
        pytest.param("Bearer", True, id="bearer-without-token"),
        pytest.param("Bearer wrong-token-value", True, id="wrong"),
        pytest.param(f"Bearer {ALICE_TOKEN[:-1]}", True, id="prefix-of-a-token"),
        pytest.param(f"Bearer {ALICE_TOKEN}x", True, id="token-and-more"),
    ],
)
def test_without_a_listed_token_is_401_saying_whether_one_was_sent(
    authorization: str | None, token_sent: bool
) -> None:
    with pytest.raises(Unauthorized) as raised:
        check_access_token(PRIVATE, authorization)
    assert raised.value.status == 401
    assert raised.value.token_sent is token_sent


@pytest.mark.parametrize(
    ("authorization", "token"),
    [
        pytest.param("Bearer abc", "abc", id="bearer"),
        pytest.param("BEARER abc", "abc", id="upper-case-scheme"),
        pytest.param("  Bearer   abc  ", "abc", id="spaces-around"),
        pytest.param("Bearer a b", "a b", id="the-rest-is-the-token"),
        pytest.param("Basic abc", None, id="other-scheme"),
        pytest.param("Bearerabc", None, id="no-space"),
        pytest.param("Bearer", None, id="no-token"),
        pytest.param("Bearer    ", None, id="blank-token"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="none"),
    ],
)
def test_bearer_token(authorization: str | None, token: str | None) -> None:
    assert bearer_token(authorization) == token


# --- Models and token caps ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "allowed"),
    [
        pytest.param("gpt-4o", True, id="pattern-without-rest"),
        pytest.param("gpt-4o-mini", True, id="pattern"),
        pytest.param("o3", True, id="exact-name"),
        pytest.param("o3-mini", False, id="exact-name-is-not-a-prefix"),
        pytest.param("gpt-4", False, id="not-listed"),
        pytest.param("GPT-4O-MINI", False, id="case-sensitive"),
    ],
)
def test_allowed_models_are_glob_patterns(model: str, allowed: bool) -> None:
    settings = load_settings({"ALLOWED_MODELS": "gpt-4o*,o3"})
    assert model_allowed(settings, model) is allowed


def test_without_allowed_models_any_model_is_allowed() -> None:
    assert model_allowed(OPEN, "anything-at-all")
    check_model(OPEN, "anything-at-all")


def test_a_model_not_allowed_is_a_400_naming_what_is_allowed() -> None:
    settings = load_settings({"ALLOWED_MODELS": "gpt-4o*,o3"})
    check_model(settings, "gpt-4o-mini")
    with pytest.raises(BadRequest) as raised:
        check_model(settings, "gpt-4")
    assert raised.value.status == 400
    assert str(raised.value) == (
        'Model "gpt-4" is not allowed on this relay; allowed: gpt-4o*, o3 (ALLOWED_MODELS).'
    )


@pytest.mark.parametrize(
    ("limit", "asked", "default", "sent"),
    [
        pytest.param(None, 5000, 1000, 5000, id="no-limit-asked"),
        pytest.param(None, None, 1000, 1000, id="no-limit-default"),
        pytest.param(None, None, None, None, id="no-limit-no-default"),
        pytest.param(2000, 1500, 1000, 1500, id="asked-under-limit"),
        pytest.param(2000, 2000, 1000, 2000, id="asked-at-limit"),
        pytest.param(2000, None, 1000, 1000, id="default-under-limit-kept"),
        pytest.param(2000, None, 2000, 2000, id="default-at-limit-kept"),
        pytest.param(2000, None, 4096, 2000, id="default-over-limit-lowered"),
        pytest.param(2000, None, None, 2000, id="no-default-limit-is-the-cap"),
    ],
)
def test_token_cap(limit: int | None, asked: int | None, default: int | None, sent: int | None) -> None:
    assert token_cap(limit, "max_tokens", asked, default) == sent


def test_asking_for_more_tokens_than_the_limit_is_a_400_naming_the_field() -> None:
    with pytest.raises(BadRequest) as raised:
        token_cap(2000, "max_completion_tokens", 2001, 1000)
    assert str(raised.value) == (
        '"max_completion_tokens" must be at most 2000 on this relay (MAX_TOKENS_LIMIT).'
    )


# --- Who pays ----------------------------------------------------------------------------------

WITH_KEY = Route(prefix="", base_url="https://api.openai.com/v1", api_key="sk-server-key")
WITHOUT_KEY = Route(prefix="", base_url="https://api.openai.com/v1")
LOCAL = Route(prefix="local/", base_url="http://127.0.0.1:11434/v1", needs_key=False)


@pytest.mark.parametrize(
    ("client_key", "route", "key"),
    [
        pytest.param("sk-client-key", WITH_KEY, "sk-client-key", id="caller-pays"),
        pytest.param("sk-client-key", LOCAL, "sk-client-key", id="caller-key-to-a-local-server"),
        pytest.param(None, WITH_KEY, "sk-server-key", id="server-pays"),
        pytest.param("", WITH_KEY, "sk-server-key", id="empty-key-is-no-key"),
        pytest.param(None, LOCAL, None, id="local-server-takes-no-key"),
    ],
)
def test_choose_key(client_key: str | None, route: Route, key: str | None) -> None:
    assert choose_key(OPEN, client_key, route) == key


def test_without_any_key_is_the_original_400() -> None:
    with pytest.raises(MissingApiKey):
        choose_key(OPEN, None, WITHOUT_KEY)
    with pytest.raises(MissingApiKey):
        choose_key(OPEN, "", WITHOUT_KEY)


def test_a_client_key_where_none_is_allowed_is_a_400_saying_what_to_do() -> None:
    with pytest.raises(BadRequest) as raised:
        choose_key(NO_CLIENT_KEYS, "sk-client-key", WITH_KEY)
    assert not isinstance(raised.value, MissingApiKey)
    assert str(raised.value) == (
        'This relay does not accept your own API key: remove "apiKey" from the request '
        "(its owner set ALLOW_CLIENT_KEYS=false)."
    )
    # No key sent: the server's, as ever.
    assert choose_key(NO_CLIENT_KEYS, None, WITH_KEY) == "sk-server-key"


def encoded(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims: object, header: bytes = b'{"alg":"RS256","typ":"JWT"}', signature: str = "c2ln") -> str:
    return f"{encoded(header)}.{encoded(json.dumps(claims).encode())}.{signature}"


GOOGLE = jwt({"iss": "https://accounts.google.com", "sub": "1"})
GOOGLE_SHORT_ISSUER = jwt({"iss": "accounts.google.com", "sub": "1"})
OTHER_JWT = jwt({"iss": "https://evil.example"})


def test_a_google_identity_token_is_recognised_whatever_the_length_of_its_claims() -> None:
    # Its payload is base64url without padding, of any length; each must be read whole.
    tokens = [jwt({"iss": "https://accounts.google.com", "sub": "1" * length}) for length in range(1, 41)]
    assert {len(token.split(".")[1]) % 4 for token in tokens} == {0, 2, 3}
    assert all(google_identity_token(token) for token in tokens)


@pytest.mark.parametrize(
    ("token", "is_google"),
    [
        pytest.param(GOOGLE, True, id="google"),
        pytest.param(GOOGLE_SHORT_ISSUER, True, id="google-issuer-without-scheme"),
        pytest.param(GOOGLE.rpartition(".")[0] + ".", True, id="signature-dropped"),
        pytest.param(OTHER_JWT, False, id="other-issuer"),
        pytest.param(jwt({"sub": "1"}), False, id="no-issuer"),
        pytest.param(jwt(["https://accounts.google.com"]), False, id="claims-not-an-object"),
        pytest.param(GOOGLE.rpartition(".")[0], False, id="two-parts"),
        pytest.param(GOOGLE + ".more", False, id="four-parts"),
        pytest.param("e30." + GOOGLE.split(".", 1)[1], False, id="header-not-json-object"),
        pytest.param(GOOGLE.split(".")[0] + ".!!!.c2ln", False, id="payload-not-base64url"),
        pytest.param(GOOGLE.split(".")[0] + f".{encoded(b'not json')}.c2ln", False, id="payload-not-json"),
        pytest.param("sk-proj-abc.def.ghi", False, id="a-key-with-dots"),
    ],
)
def test_google_identity_token(token: str, is_google: bool) -> None:
    assert google_identity_token(token) is is_google


@pytest.mark.parametrize(
    ("settings", "authorization", "key"),
    [
        pytest.param(OPEN, "Bearer sk-client-key", "sk-client-key", id="caller-key"),
        pytest.param(OPEN, None, None, id="none-sent"),
        pytest.param(OPEN, "Basic sk-client-key", None, id="not-a-bearer"),
        pytest.param(OPEN, f"Bearer {GOOGLE}", None, id="google-identity-token-is-no-key"),
        pytest.param(OPEN, f"Bearer {OTHER_JWT}", OTHER_JWT, id="other-jwt-is-a-key"),
        pytest.param(PRIVATE, f"Bearer {ALICE_TOKEN}", None, id="access-token-is-no-key"),
        pytest.param(NO_CLIENT_KEYS, "Bearer sk-client-key", None, id="client-keys-ignored"),
    ],
)
def test_bearer_key(settings: Settings, authorization: str | None, key: str | None) -> None:
    assert bearer_key(settings, authorization) == key


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Bearer sk-client key", id="space"),
        pytest.param("Bearer sk-clïent-key", id="not-ascii"),
        pytest.param("Bearer sk-client\tkey", id="tab"),
    ],
)
def test_a_bearer_key_that_cannot_travel_in_a_header_is_a_400(authorization: str) -> None:
    with pytest.raises(BadRequest) as raised:
        bearer_key(OPEN, authorization)
    assert str(raised.value) == "The API key in the Authorization header must be visible ASCII characters."


# --- CORS --------------------------------------------------------------------------------------

APP = "https://chat.example.com"
OTHER_APP = "http://localhost:5173"
EVIL = "https://evil.example"
LISTED = load_settings({"ALLOWED_ORIGINS": f"{APP},{OTHER_APP}"})
ON_CLOUD_RUN = load_settings({"K_SERVICE": "relay"})


@pytest.mark.parametrize(
    ("settings", "origin", "own", "allowed"),
    [
        pytest.param(OPEN, EVIL, None, True, id="star-allows-any"),
        pytest.param(LISTED, APP, None, True, id="listed"),
        pytest.param(LISTED, OTHER_APP, None, True, id="listed-second"),
        pytest.param(LISTED, EVIL, None, False, id="not-listed"),
        pytest.param(LISTED, EVIL, APP, False, id="not-listed-not-own"),
        pytest.param(LISTED, "https://relay.example.com", "https://relay.example.com", True, id="own-origin"),
        pytest.param(
            load_settings({"ALLOWED_ORIGINS": APP, "PUBLIC_URL": "https://relay.example.com/chat"}),
            "https://relay.example.com",
            None,
            True,
            id="public-url-origin",
        ),
    ],
)
def test_origin_allowed(settings: Settings, origin: str, own: str | None, allowed: bool) -> None:
    assert origin_allowed(settings, origin, own) is allowed


@pytest.mark.parametrize(
    ("settings", "scheme", "host", "forwarded_proto", "origin"),
    [
        pytest.param(OPEN, "http", "relay.example.com", None, None, id="any-host-untrusted"),
        pytest.param(OPEN, "http", "localhost.evil.example:8080", None, None, id="not-loopback"),
        pytest.param(OPEN, "http", "localhost:8080", None, "http://localhost:8080", id="localhost"),
        pytest.param(OPEN, "http", "LocalHost:8080", None, "http://localhost:8080", id="localhost-any-case"),
        pytest.param(OPEN, "http", "localhost", None, "http://localhost", id="localhost-no-port"),
        pytest.param(OPEN, "http", "127.0.0.1:8080", None, "http://127.0.0.1:8080", id="ipv4-loopback"),
        pytest.param(OPEN, "http", "[::1]:8080", None, "http://[::1]:8080", id="ipv6-loopback"),
        pytest.param(OPEN, "http", "[::1]", None, "http://[::1]", id="ipv6-loopback-no-port"),
        pytest.param(OPEN, "http", "[::2]", None, None, id="ipv6-not-loopback"),
        pytest.param(ON_CLOUD_RUN, "http", "relay-abc.a.run.app", None, "http://relay-abc.a.run.app", id="cloud-run"),
        pytest.param(ON_CLOUD_RUN, "http", "Relay-ABC.a.run.app", "https", "https://relay-abc.a.run.app", id="forwarded-proto"),
        pytest.param(ON_CLOUD_RUN, "http", "relay.example.com", "HTTPS", "https://relay.example.com", id="forwarded-proto-lower-case"),
        pytest.param(ON_CLOUD_RUN, "http", "relay.example.com", " https , http", "https://relay.example.com", id="forwarded-proto-first-value"),
        pytest.param(ON_CLOUD_RUN, "https", "relay.example.com", "", "https://relay.example.com", id="forwarded-proto-empty"),
        pytest.param(ON_CLOUD_RUN, "https", "relay.example.com", ", http", "https://relay.example.com", id="forwarded-proto-first-empty"),
    ],
)  # fmt: skip
def test_own_origin(
    settings: Settings, scheme: str, host: str, forwarded_proto: str | None, origin: str | None
) -> None:
    assert own_origin(settings, scheme, host, forwarded_proto) == origin


EXPOSED = {
    "Retry-After",
    "Retry-After-Ms",
    "X-Request-Id",
    "X-Relay-Request-Id",
    "X-Should-Retry",
    "X-Ratelimit-Limit-Requests",
    "X-Ratelimit-Limit-Tokens",
    "X-Ratelimit-Remaining-Requests",
    "X-Ratelimit-Remaining-Tokens",
    "X-Ratelimit-Reset-Requests",
    "X-Ratelimit-Reset-Tokens",
    "Request-Id",  # Anthropic's, which its SDKs read
}


def test_response_headers_name_the_origin_and_expose_retry_and_rate_limit_headers() -> None:
    headers = response_headers(APP)
    assert set(headers) == {"Access-Control-Allow-Origin", "Access-Control-Expose-Headers"}
    assert headers["Access-Control-Allow-Origin"] == APP
    exposed = headers["Access-Control-Expose-Headers"].split(", ")
    assert set(exposed) == EXPOSED
    assert len(exposed) == len(EXPOSED)


def test_preflight_without_requested_headers() -> None:
    assert preflight_headers(LISTED, APP, None, private_network=False) == {
        **response_headers(APP),
        "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type, Authorization",
        "Access-Control-Max-Age": "7200",
    }


@pytest.mark.parametrize(
    ("requested", "allowed"),
    [
        pytest.param("", "Content-Type, Authorization", id="empty"),
        pytest.param("content-type, authorization", "Content-Type, Authorization", id="the-usual-ones-once"),
        pytest.param("x-stainless-os,x-stainless-lang", "Content-Type, Authorization, x-stainless-os, x-stainless-lang", id="sdk-headers"),
        pytest.param(" X-Ok ,x-ok, X-OK", "Content-Type, Authorization, X-Ok", id="once-whatever-the-case"),
        pytest.param("bad name, a:b, ,x-ok", "Content-Type, Authorization, x-ok", id="not-header-names-dropped"),
        pytest.param("x-a!#$%&'*+.^_`|~-0", "Content-Type, Authorization, x-a!#$%&'*+.^_`|~-0", id="every-token-character"),
    ],
)  # fmt: skip
def test_preflight_allows_the_requested_header_names(requested: str, allowed: str) -> None:
    headers = preflight_headers(LISTED, APP, requested, private_network=False)
    assert headers["Access-Control-Allow-Headers"] == allowed


@pytest.mark.parametrize(
    ("allow_private_network", "asked", "granted"),
    [
        pytest.param("true", True, True, id="allowed-and-asked"),
        pytest.param("true", False, False, id="allowed-not-asked"),
        pytest.param("false", True, False, id="asked-not-allowed"),
    ],
)
def test_private_network_access_only_where_the_owner_allows_it(
    allow_private_network: str, asked: bool, granted: bool
) -> None:
    settings = load_settings({"ALLOW_PRIVATE_NETWORK": allow_private_network})
    headers = preflight_headers(settings, APP, None, private_network=asked)
    if granted:
        assert headers["Access-Control-Allow-Private-Network"] == "true"
    else:
        assert "Access-Control-Allow-Private-Network" not in headers


# --- Callers -----------------------------------------------------------------------------------


def test_a_caller_with_an_access_token_is_known_by_its_name() -> None:
    assert identify("alice", 1, "203.0.113.9", "10.0.0.1") == Caller("token:alice", "alice")


def test_a_caller_without_one_is_known_by_its_address() -> None:
    assert identify(None, 1, "198.51.100.7, 203.0.113.9", "10.0.0.1") == Caller(
        "ip:203.0.113.9", "203.0.113.9"
    )
    assert identify(None, 0, "203.0.113.9", "10.0.0.1") == Caller("ip:10.0.0.1", "10.0.0.1")


@pytest.mark.parametrize(
    ("hops", "forwarded_for", "peer", "address"),
    [
        pytest.param(0, "198.51.100.7", "10.0.0.1", "10.0.0.1", id="no-hops-the-peer"),
        pytest.param(1, "198.51.100.7, 203.0.113.9", "10.0.0.1", "203.0.113.9", id="one-hop-the-last"),
        pytest.param(2, "198.51.100.7, 203.0.113.9", "10.0.0.1", "198.51.100.7", id="two-hops"),
        pytest.param(2, " 198.51.100.7 ,203.0.113.9", "10.0.0.1", "198.51.100.7", id="spaces-around"),
        pytest.param(
            2, "6.6.6.6, 203.0.113.9, 34.1.2.3", "169.254.1.1", "203.0.113.9", id="behind-a-load-balancer"
        ),
        pytest.param(3, "198.51.100.7, 203.0.113.9", "10.0.0.1", "10.0.0.1", id="fewer-entries-than-hops"),
        pytest.param(1, "198.51.100.7, ", "10.0.0.1", "10.0.0.1", id="empty-entry"),
        pytest.param(1, None, "10.0.0.1", "10.0.0.1", id="no-header"),
        pytest.param(1, "", "10.0.0.1", "10.0.0.1", id="empty-header"),
        pytest.param(0, None, None, "unknown", id="no-peer"),
        pytest.param(1, "1" * 100, None, "1" * ADDRESS_LIMIT, id="long-entry-cut"),
        pytest.param(0, None, "2" * 100, "2" * ADDRESS_LIMIT, id="long-peer-cut"),
    ],
)
def test_client_address(hops: int, forwarded_for: str | None, peer: str | None, address: str) -> None:
    assert client_address(hops, forwarded_for, peer) == address


def test_an_address_as_long_as_one_can_be_is_kept_whole() -> None:
    # An IPv6 address with a zone index fits.
    longest = "fe80:0000:0000:0000:0000:0000:0000:0001%" + "e" * 24
    assert client_address(1, longest, None) == longest


ALICE = Caller("token:alice", "alice")
BOB = Caller("token:bob", "bob")


def test_a_caller_holds_at_most_its_share_and_others_still_find_room() -> None:
    in_flight = InFlight(2)
    in_flight.enter(ALICE)
    in_flight.enter(ALICE)
    with pytest.raises(TooManyAtOnce) as raised:
        in_flight.enter(ALICE)
    assert raised.value.status == 429
    assert "from alice: 2 are in progress" in str(raised.value)
    in_flight.enter(BOB)
    in_flight.enter(BOB)


def test_without_a_share_set_nothing_is_counted_or_refused() -> None:
    in_flight = InFlight(None)
    assert [in_flight.enter(ALICE) for _ in range(1000)] == [False] * 1000  # nothing to leave later
    assert in_flight._counts == {}
    assert InFlight(2).enter(ALICE) is True


def test_a_request_that_leaves_frees_its_place() -> None:
    in_flight = InFlight(2)
    in_flight.enter(ALICE)
    in_flight.enter(ALICE)
    in_flight.leave(ALICE)
    in_flight.enter(ALICE)
    with pytest.raises(TooManyAtOnce):
        in_flight.enter(ALICE)
    for _ in range(2):
        in_flight.leave(ALICE)
    in_flight.enter(ALICE)
    in_flight.enter(ALICE)
    with pytest.raises(TooManyAtOnce):
        in_flight.enter(ALICE)


def test_leaving_more_than_entered_gives_no_extra_room() -> None:
    in_flight = InFlight(1)
    in_flight.leave(ALICE)
    in_flight.enter(ALICE)
    in_flight.leave(ALICE)
    in_flight.leave(ALICE)
    in_flight.enter(ALICE)
    with pytest.raises(TooManyAtOnce):
        in_flight.enter(ALICE)


def test_no_record_is_kept_of_callers_with_nothing_in_flight() -> None:
    # Bounded by construction: a worker that has served many callers holds nothing for the idle ones.
    in_flight = InFlight(2)
    for number in range(100):
        caller = Caller(f"ip:10.0.0.{number}", f"10.0.0.{number}")
        in_flight.enter(caller)
        in_flight.enter(caller)
        in_flight.leave(caller)
        in_flight.leave(caller)
    assert in_flight._counts == {}


# --- Anthropic's endpoints: the x-api-key header (what the mutation run found untested) ----------------


def test_an_access_token_in_x_api_key_is_accepted_and_wins_over_the_bearer() -> None:
    assert check_access_token(PRIVATE, None, f"  {ALICE_TOKEN} ", "anthropic") == "alice"
    assert check_access_token(PRIVATE, f"Bearer {BOB_TOKEN}", ALICE_TOKEN, "anthropic") == "alice"
    assert check_access_token(PRIVATE, f"Bearer {BOB_TOKEN}", "  ", "anthropic") == "bob"


@pytest.mark.parametrize(
    ("authorization", "api_key", "said"),
    [
        pytest.param(None, None, "Unauthorized: this relay needs an access token. ", id="none"),
        pytest.param(None, "tok-wrong", "Unauthorized: the access token sent is not valid for this relay. ",
                     id="wrong"),
    ],
)  # fmt: skip
def test_a_refusal_on_anthropics_endpoints_names_x_api_key(
    authorization: str | None, api_key: str | None, said: str
) -> None:
    with pytest.raises(Unauthorized) as caught:
        check_access_token(PRIVATE, authorization, api_key, "anthropic")
    assert caught.value.message == said + (
        'Send the header "x-api-key: <token>" (or "Authorization: Bearer <token>") with one of the access '
        "tokens its owner set in ACCESS_TOKENS."
    )
    with pytest.raises(Unauthorized) as caught:
        check_access_token(PRIVATE, authorization, api_key)  # elsewhere: the bearer alone
    assert 'Send the header "Authorization: Bearer <token>" with' in caught.value.message


@pytest.mark.parametrize(
    ("settings", "authorization", "api_key", "key"),
    [
        pytest.param(OPEN, None, " sk-ant-own ", "sk-ant-own", id="x-api-key"),
        pytest.param(OPEN, "Bearer sk-ant-bearer", "sk-ant-own", "sk-ant-own", id="x-api-key-wins"),
        pytest.param(OPEN, "Bearer sk-ant-bearer", None, "sk-ant-bearer", id="bearer-alone"),
        pytest.param(OPEN, "Bearer sk-ant-bearer", " ", "sk-ant-bearer", id="blank-x-api-key"),
        pytest.param(OPEN, None, None, None, id="neither"),
        pytest.param(PRIVATE, None, ALICE_TOKEN, None, id="an-access-token-is-no-key"),
        pytest.param(NO_CLIENT_KEYS, "Bearer sk-ant-bearer", "sk-ant-own", None, id="client-keys-off"),
    ],
)  # fmt: skip
def test_anthropic_key(
    settings: Settings, authorization: str | None, api_key: str | None, key: str | None
) -> None:
    assert anthropic_key(settings, authorization, api_key) == key


def test_an_x_api_key_that_cannot_travel_in_a_header_is_a_400() -> None:
    with pytest.raises(BadRequest) as caught:
        anthropic_key(OPEN, None, "sk-ant-\u00e9")
    assert caught.value.message == "The API key in the x-api-key header must be visible ASCII characters."
