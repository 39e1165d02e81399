"""Per-caller rate limits and spend caps, shared by every instance through a real Redis.

The tests start Debian's redis-server on a free port and two relay processes that share it
(two instances of one deployment). Without redis-server they are skipped, with the reason,
unless RELAY_REDIS_REQUIRED=1 (CI), which makes a missing one a failure. The in-process
store (no REDIS_URL) is tried where it applies.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.chat_client import USER, chat
from tests.conftest import SERVER_KEY, assert_no_secret
from tests.fake_upstream import FakeUpstream, Reply, openai_stream, sse
from tests.redis_server import Redis, require_redis_server
from tests.relay_server import RelayServer

ALICE, BOB = "tok-alice-7d1f0b3e9a5c2468", "tok-bob-4c8e2a6f1b3d5790"
TOKENS = f"alice:{ALICE},bob:{BOB}"
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


@pytest.fixture(scope="module")
def redis_server() -> Iterator[Redis]:
    require_redis_server()
    server = Redis().start()
    yield server
    server.stop()


@pytest.fixture
def redis(redis_server: Redis) -> Redis:
    """The module's Redis, emptied: each test counts from zero."""
    assert redis_server.command("FLUSHALL") == b"+OK\r\n"
    return redis_server


Relays = Callable[..., list[RelayServer]]


@pytest.fixture
def relays(fake: FakeUpstream) -> Iterator[Relays]:
    """`relays(count, NAME=value, ...)`: that many relay processes with these settings, stopped after the test."""
    started: list[RelayServer] = []

    def start(count: int = 1, **settings: str) -> list[RelayServer]:
        env = {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": SERVER_KEY, "ACCESS_TOKENS": TOKENS,
               "UPSTREAM_RETRIES": "0", **settings}  # fmt: skip
        servers = [RelayServer(env).start() for _ in range(count)]
        started.extend(servers)
        return servers

    yield start
    for server in started:
        server.stop()
    for server in started:
        assert_no_secret(server.output(), "a relay's output")
        assert ALICE not in server.output() and BOB not in server.output()


def ask(relay: RelayServer, token: str, path: str = "/api/chat", **fields: Any) -> httpx.Response:
    body = {"model": "gpt-test", "messages": USER, **fields}
    with httpx.Client(timeout=30) as client:
        response = client.post(relay.url + path, json=body, headers={"Authorization": f"Bearer {token}"})
        response.read()
        return response


# -- requests per window, shared by the instances ----------------------------------------------------


def test_two_instances_enforce_one_request_limit_together(
    fake: FakeUpstream, redis: Redis, relays: Relays
) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["ok"]))
    one, two = relays(2, REDIS_URL=redis.url, RATE_LIMIT_REQUESTS="3 per 5 seconds")
    # 5 s: room for four round trips through two processes on a loaded machine.
    assert [ask(relay, ALICE).status_code for relay in (one, two, one)] == [200, 200, 200]
    refused = ask(two, ALICE)
    assert refused.status_code == 429
    assert refused.text.startswith(
        "Rate limit: alice may send 3 per 5 seconds requests (RATE_LIMIT_REQUESTS)"
    )
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 5
    assert refused.headers["x-should-retry"] == "true"  # the window resets within a minute
    assert len(fake.requests) == 3  # nothing was sent upstream for the refused one
    assert ask(one, BOB).status_code == 200  # another caller counts on its own
    entry = two.log_of(refused.headers["x-relay-request-id"])
    assert (entry["outcome"], entry["caller"], entry["httpRequest"]["status"]) == ("limited", "alice", 429)
    time.sleep(wait + 0.1)  # the window resets, as Retry-After said
    assert ask(two, ALICE).status_code == 200


def test_over_the_limit_on_v1_is_openais_rate_limit_error(
    fake: FakeUpstream, redis: Redis, relays: Relays
) -> None:
    fake.replies["gpt-test"] = Reply(
        headers={"Content-Type": "application/json"}, body=[b'{"choices": [{"message": {"content": "x"}}]}']
    )
    (relay,) = relays(REDIS_URL=redis.url, RATE_LIMIT_REQUESTS="1/minute")
    assert ask(relay, ALICE, "/v1/chat/completions").status_code == 200
    refused = ask(relay, ALICE, "/v1/chat/completions")
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error" and "RATE_LIMIT_REQUESTS" in error["message"]


def test_the_in_process_store_counts_per_process(fake: FakeUpstream, relays: Relays) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["ok"]))
    (relay,) = relays(RATE_LIMIT_REQUESTS="2/minute", WORKERS="1")  # no REDIS_URL
    assert [ask(relay, ALICE).status_code for _ in range(3)] == [200, 200, 429]


def test_requests_and_tokens_are_counted_each_on_its_own(
    fake: FakeUpstream, redis: Redis, relays: Relays
) -> None:
    # Both limits at once: a request counts once against the requests and never against the
    # tokens (it once did, when the two were checked on greenlets of their own).
    fake.replies["gpt-test"] = Reply(body=openai_stream(["ok"], usage=USAGE))
    (relay,) = relays(
        REDIS_URL=redis.url, RATE_LIMIT_REQUESTS="3/minute", RATE_LIMIT_TOKENS="31/day", STREAM_USAGE="true"
    )
    # 15 tokens each: after two, 30 of 31 are used, and 2 of 3 requests; a third may begin.
    assert [ask(relay, ALICE).status_code for _ in range(3)] == [200, 200, 200]
    refused = ask(relay, ALICE)  # over both now; the requests are checked first
    assert refused.status_code == 429
    assert "alice may send 3 per minute requests (RATE_LIMIT_REQUESTS)" in refused.text
    assert len(fake.requests) == 3
    keys = redis.command("KEYS", "*").decode()  # the keys docs/limits.md names
    assert "LIMITS:LIMITER/requests/token:alice/3/60/second" in keys
    assert "LIMITS:LIMITER/tokens/token:alice/31/86400/second" in keys


def test_a_running_stream_is_not_cut_by_a_limit(fake: FakeUpstream, redis: Redis, relays: Relays) -> None:
    fake.replies["gpt-test"] = Reply(
        body=openai_stream([f" t{i}" for i in range(20)], pace=0.05, usage=USAGE)
    )
    (relay,) = relays(
        REDIS_URL=redis.url, RATE_LIMIT_REQUESTS="1/minute", RATE_LIMIT_TOKENS="1/day", STREAM_USAGE="true"
    )
    result: dict[str, Any] = {}

    def stream() -> None:
        with httpx.Client(timeout=30) as client:
            result["reply"] = chat(client, relay.url, headers={"Authorization": f"Bearer {ALICE}"})

    running = threading.Thread(target=stream)
    running.start()
    assert fake.wait_for(lambda: bool(fake.requests), timeout=10)  # the stream is under way
    refused = ask(relay, ALICE)  # over the request limit meanwhile
    assert refused.status_code == 429 and "(RATE_LIMIT_REQUESTS)" in refused.text
    running.join(30)
    assert result["reply"].status == 200
    assert result["reply"].text.endswith(" t19")  # whole
    # Its tokens counted when it ended: over the daily tokens now too.
    entry = relay.log_of(result["reply"].request_id)
    assert (entry["tokens"], entry["usage_source"]) == (15, "upstream")


# -- tokens, from the upstream's usage --------------------------------------------------------------


def test_tokens_are_counted_from_the_upstreams_usage_across_instances(
    fake: FakeUpstream, redis: Redis, relays: Relays
) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["ok"], usage=USAGE))
    one, two = relays(2, REDIS_URL=redis.url, RATE_LIMIT_TOKENS="31/day", STREAM_USAGE="true")
    # 15 tokens each: after two, 30 of 31 are used, so a third may still begin; then none.
    assert [ask(relay, ALICE).status_code for relay in (one, two, one)] == [200, 200, 200]
    refused = ask(two, ALICE)
    assert refused.status_code == 429
    assert "alice has used its 31 per day tokens (RATE_LIMIT_TOKENS)" in refused.text
    assert refused.headers["x-should-retry"] == "false"  # waiting a minute will not help
    assert int(refused.headers["retry-after"]) > 3600
    assert fake.requests[0].json["stream_options"] == {"include_usage": True}  # asked for
    assert ask(one, BOB).status_code == 200


def test_a_v1_caller_who_did_not_ask_for_usage_does_not_get_it_but_it_counts(
    fake: FakeUpstream, redis: Redis, relays: Relays
) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["hi"], usage=USAGE))
    (relay,) = relays(REDIS_URL=redis.url, RATE_LIMIT_TOKENS="16/day", STREAM_USAGE="true")
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST",
            relay.url + "/v1/chat/completions",
            json={"model": "gpt-test", "messages": USER, "stream": True},
            headers={"Authorization": f"Bearer {ALICE}"},
        ) as response,
    ):
        body = response.read()
        request_id = response.headers["x-relay-request-id"]
    events = [json.loads(line[6:]) for line in body.decode().splitlines() if line.startswith("data: {")]
    assert not [event for event in events if event.get("usage")]  # the usage chunk was kept back
    assert fake.requests[0].json["stream_options"] == {"include_usage": True}
    assert relay.log_of(request_id)["tokens"] == 15
    assert ask(relay, ALICE, "/v1/chat/completions", stream=True).status_code == 200  # 15 of 16
    assert ask(relay, ALICE, "/v1/chat/completions", stream=True).status_code == 429


def test_where_the_upstream_gives_no_usage_the_tokens_are_estimated(
    fake: FakeUpstream, redis: Redis, relays: Relays
) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["x" * 400]))
    (relay,) = relays(REDIS_URL=redis.url, RATE_LIMIT_TOKENS="1000000/day")
    response = ask(relay, ALICE)
    entry = relay.log_of(response.headers["x-relay-request-id"])
    assert entry["usage_source"] == "estimated"
    assert 100 <= entry["tokens"] <= 200  # 400 characters of reply and the request, at about 4 a token


def test_the_deployments_budget_stops_every_caller(fake: FakeUpstream, redis: Redis, relays: Relays) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["ok"], usage=USAGE))
    one, two = relays(2, REDIS_URL=redis.url, BUDGET_TOKENS="30/day", STREAM_USAGE="true")
    assert ask(one, ALICE).status_code == 200
    assert ask(two, BOB).status_code == 200
    refused = ask(one, BOB)
    assert refused.status_code == 429
    assert "this relay has used its 30 per day tokens (BUDGET_TOKENS)" in refused.text


def test_a_models_budget_holds_for_that_model_only(fake: FakeUpstream, redis: Redis, relays: Relays) -> None:
    fake.replies["*"] = Reply(body=openai_stream(["ok"], usage=USAGE))
    (relay,) = relays(REDIS_URL=redis.url, MODEL_BUDGETS='{"gpt-big*": "10/day"}', STREAM_USAGE="true")
    assert ask(relay, ALICE, model="gpt-big-1").status_code == 200
    assert ask(relay, ALICE, model="gpt-big-2").status_code == 429
    assert ask(relay, ALICE, model="gpt-small").status_code == 200


def test_a_callers_own_limits_by_name(fake: FakeUpstream, redis: Redis, relays: Relays) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["ok"]))
    (relay,) = relays(
        REDIS_URL=redis.url,
        RATE_LIMIT_REQUESTS="1/minute",
        CALLER_LIMITS='{"alice": {"requests": "3/minute"}}',
    )
    assert [ask(relay, ALICE).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert [ask(relay, BOB).status_code for _ in range(2)] == [200, 429]


# -- the store failing ------------------------------------------------------------------------------


@pytest.mark.parametrize(("setting", "status"), [("allow", 200), ("deny", 503)])
def test_a_store_that_dies_gives_the_configured_answer_in_bounded_time(
    fake: FakeUpstream, relays: Relays, setting: str, status: int
) -> None:
    require_redis_server()
    fake.replies["gpt-test"] = Reply(body=openai_stream(["ok"]))
    store = Redis().start()
    try:
        (relay,) = relays(
            REDIS_URL=store.url,
            RATE_LIMIT_REQUESTS="100/minute",
            LIMITS_ON_STORE_ERROR=setting,
            LIMITS_STORE_TIMEOUT="0.5",
        )
        assert ask(relay, ALICE).status_code == 200
    finally:
        store.stop()  # killed mid-run
    started = time.monotonic()
    response = ask(relay, ALICE)
    assert response.status_code == status
    assert time.monotonic() - started < 5  # never a hang
    assert "The limits store failed" in relay.output()
    if status == 503:
        assert "LIMITS_ON_STORE_ERROR=deny" in response.text


def test_a_store_that_answers_slowly_is_not_waited_for(fake: FakeUpstream, relays: Relays) -> None:
    # A server that accepts connections and never answers: the store's timeout bounds the wait.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    fake.replies["gpt-test"] = Reply(body=openai_stream(["ok"]))
    try:
        (relay,) = relays(
            REDIS_URL=f"redis://127.0.0.1:{port}/0",
            RATE_LIMIT_REQUESTS="100/minute",
            LIMITS_STORE_TIMEOUT="0.5",
        )
        started = time.monotonic()
        assert ask(relay, ALICE).status_code == 200  # allowed, and logged
        assert time.monotonic() - started < 5
    finally:
        listener.close()


# -- callers ---------------------------------------------------------------------------------------


def test_without_tokens_each_address_is_a_caller(fake: FakeUpstream, relays: Relays) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["ok"]))
    (relay,) = relays(ACCESS_TOKENS="", CLIENT_IP_HOPS="1", RATE_LIMIT_REQUESTS="1/minute", WORKERS="1")

    def from_address(chain: str) -> int:
        with httpx.Client(timeout=30) as client:
            return chat(client, relay.url, headers={"X-Forwarded-For": chain}).status

    assert from_address("203.0.113.1") == 200
    assert from_address("6.6.6.6, 203.0.113.1") == 429  # a forged first entry does not make a new caller
    assert from_address("203.0.113.2") == 200


def test_a_caller_holds_no_more_than_its_share_of_a_worker(fake: FakeUpstream, relays: Relays) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream([f" t{i}" for i in range(40)], pace=0.05))
    (relay,) = relays(MAX_REQUESTS_PER_CALLER="2", WORKERS="1")
    with contextlib.ExitStack() as held:
        for _ in range(2):
            client = held.enter_context(httpx.Client(timeout=30))
            stream = client.stream("POST", relay.url + "/api/chat", json={"model": "gpt-test", "messages": USER},
                                   headers={"Authorization": f"Bearer {ALICE}"})  # fmt: skip
            assert held.enter_context(stream).status_code == 200
        refused = ask(relay, ALICE)
        assert refused.status_code == 429
        assert "Too many requests at once from alice" in refused.text
        assert ask(relay, BOB).status_code == 200  # the others find room
    assert fake.wait_for(lambda: all(r.client_closed or r.finished for r in fake.requests))
    assert ask(relay, ALICE).status_code == 200  # its share is back


def test_named_tokens_appear_by_name_only(fake: FakeUpstream, relays: Relays) -> None:
    fake.replies["gpt-test"] = Reply(body=[sse({"choices": [{"delta": {"content": "ok"}}]}), sse("[DONE]")])
    (relay,) = relays()
    response = ask(relay, ALICE)
    assert relay.log_of(response.headers["x-relay-request-id"])["caller"] == "alice"
    assert ALICE not in relay.stdout()
