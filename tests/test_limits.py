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
from tests.fake_replies import anthropic_stream, chat_stream
from tests.fake_upstream import FakeUpstream, Reply, openai_stream, sse
from tests.redis_server import Redis, require_redis_server
from tests.relay_server import RelayServer, stop_all

ALICE, BOB = "tok-alice-7d1f0b3e9a5c2468", "tok-bob-4c8e2a6f1b3d5790"
TOKENS = f"alice:{ALICE},bob:{BOB}"
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


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
        # A store wait of 5 s: on a loaded machine a first call (which connects) can take over the
        # default 0.5 s, and a request then goes on uncounted. The tests of a slow store set their own.
        env = {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": SERVER_KEY, "ACCESS_TOKENS": TOKENS,
               "UPSTREAM_RETRIES": "0", "LIMITS_STORE_TIMEOUT": "5", **settings}  # fmt: skip
        servers = [RelayServer(env).start() for _ in range(count)]
        started.extend(servers)
        return servers

    yield start
    stop_all(started)
    for server in started:
        assert_no_secret(server.output(), "a relay's output")
        assert ALICE not in server.output() and BOB not in server.output()


def ask(relay: RelayServer, token: str, path: str = "/api/chat", **fields: Any) -> httpx.Response:
    body = {"model": "gpt-test", "messages": USER, **fields}  # also a body of Anthropic's Messages API
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
        REDIS_URL=redis.url, RATE_LIMIT_REQUESTS="3/minute", RATE_LIMIT_TOKENS="1000/day", STREAM_USAGE="true"
    )
    # 15 tokens each, about 40 reserved: three requests fit both limits.
    assert [ask(relay, ALICE, max_tokens=10).status_code for _ in range(3)] == [200, 200, 200]
    refused = ask(relay, ALICE)  # over both now; the requests are checked first
    assert refused.status_code == 429
    assert "alice may send 3 per minute requests (RATE_LIMIT_REQUESTS)" in refused.text
    assert len(fake.requests) == 3
    keys = redis.command("KEYS", "*").decode()  # the keys docs/limits.md names
    assert "LIMITS:LIMITER/requests/token:alice/3/60/second" in keys
    assert "LIMITS:LIMITER/tokens/token:alice/1000/86400/second" in keys


def test_a_running_stream_is_not_cut_by_a_limit(fake: FakeUpstream, redis: Redis, relays: Relays) -> None:
    fake.replies["gpt-test"] = Reply(
        body=openai_stream([f" t{i}" for i in range(20)], pace=0.05, usage=USAGE)
    )
    (relay,) = relays(
        REDIS_URL=redis.url, RATE_LIMIT_REQUESTS="1/minute", RATE_LIMIT_TOKENS="2100/day", STREAM_USAGE="true"
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
    one, two = relays(2, REDIS_URL=redis.url, RATE_LIMIT_TOKENS="100/day", STREAM_USAGE="true")
    # 15 tokens each, with max_tokens 10 about 40 reserved: after four, 60 of 100 are used, and
    # a fifth's reservation would pass 100; one asking for less still fits.
    assert [ask(relay, ALICE, max_tokens=10).status_code for relay in (one, two, one, two)] == [200] * 4
    refused = ask(one, ALICE, max_tokens=10)
    assert refused.status_code == 429
    assert "alice has used its 100 per day tokens, or would " in refused.text
    assert "(RATE_LIMIT_TOKENS)" in refused.text
    assert refused.headers["x-should-retry"] == "false"  # waiting a minute will not help
    assert int(refused.headers["retry-after"]) > 3600
    assert fake.requests[0].json["stream_options"] == {"include_usage": True}  # asked for
    assert ask(one, BOB, max_tokens=10).status_code == 200


def test_a_v1_caller_who_did_not_ask_for_usage_does_not_get_it_but_it_counts(
    fake: FakeUpstream, redis: Redis, relays: Relays
) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["hi"], usage=USAGE))
    (relay,) = relays(REDIS_URL=redis.url, RATE_LIMIT_TOKENS="70/day", STREAM_USAGE="true")
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST",
            relay.url + "/v1/chat/completions",
            json={"model": "gpt-test", "messages": USER, "stream": True, "max_tokens": 20},
            headers={"Authorization": f"Bearer {ALICE}"},
        ) as response,
    ):
        body = response.read()
        request_id = response.headers["x-relay-request-id"]
    events = [json.loads(line[6:]) for line in body.decode().splitlines() if line.startswith("data: {")]
    assert not [event for event in events if event.get("usage")]  # the usage chunk was kept back
    assert fake.requests[0].json["stream_options"] == {"include_usage": True}
    assert relay.log_of(request_id)["tokens"] == 15
    # 15 of 70 used; each reserves its 20 and ~30 of prompt: one more fits, then a third would not.
    assert ask(relay, ALICE, "/v1/chat/completions", stream=True, max_tokens=20).status_code == 200
    assert ask(relay, ALICE, "/v1/chat/completions", stream=True, max_tokens=20).status_code == 429


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
    one, two = relays(2, REDIS_URL=redis.url, BUDGET_TOKENS="80/day", STREAM_USAGE="true")
    assert ask(one, ALICE, max_tokens=10).status_code == 200  # ~40 reserved, 15 used
    assert ask(two, BOB, max_tokens=10).status_code == 200  # 30 used
    assert ask(one, ALICE, max_tokens=10).status_code == 200  # 45 used
    refused = ask(two, BOB, max_tokens=10)  # ~40 more would pass 80
    assert refused.status_code == 429
    assert "this relay has used its 80 per day tokens, or would " in refused.text


def test_a_models_budget_holds_for_that_model_only(fake: FakeUpstream, redis: Redis, relays: Relays) -> None:
    fake.replies["*"] = Reply(body=openai_stream(["ok"], usage=USAGE))
    (relay,) = relays(REDIS_URL=redis.url, MODEL_BUDGETS='{"gpt-big*": "70/day"}', STREAM_USAGE="true")
    assert ask(relay, ALICE, model="gpt-big-1", max_tokens=10).status_code == 200  # ~50 reserved, 15 used
    assert ask(relay, ALICE, model="gpt-big-2", max_tokens=10).status_code == 200  # 30 used
    assert ask(relay, ALICE, model="gpt-big-2", max_tokens=10).status_code == 429  # ~50 more would pass 70
    assert ask(relay, ALICE, model="gpt-small", max_tokens=10).status_code == 200


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
    assert "The limits store (REDIS_URL at " in relay.output()
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


# -- spend caps that hold: reserve before sending, settle after ------------------------------------


def cost(total: int) -> list[Any]:
    """A reply paced slowly enough that every request of a burst is in flight at once; it cost `total`."""
    usage = {"prompt_tokens": 10, "completion_tokens": total - 10, "total_tokens": total}
    return [
        *openai_stream([f" t{i}" for i in range(5)], pace=0.2)[:-1],
        sse({"choices": [], "usage": usage}),
        sse("[DONE]"),
    ]


def burst(relays_: list[RelayServer], count: int) -> list[httpx.Response]:
    """`count` requests at once, spread over the relays: each client waits for its whole reply."""
    results: list[httpx.Response | None] = [None] * count

    def one(index: int) -> None:
        results[index] = ask(relays_[index % len(relays_)], ALICE, max_tokens=200)

    threads = [threading.Thread(target=one, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return [result for result in results if result is not None]


@pytest.mark.parametrize("store", ["redis", "process"])
def test_fifty_streams_at_once_relay_no_more_than_the_budget_allows(
    fake: FakeUpstream, redis: Redis, relays: Relays, store: str
) -> None:
    # Was: a token limit checked before a request and counted after it, so all 50 were admitted:
    # 10,000 tokens relayed against a budget of 1,000.
    fake.replies["gpt-test"] = Reply(body=cost(200))
    shared = {"REDIS_URL": redis.url} if store == "redis" else {"WORKERS": "1"}
    (relay,) = relays(BUDGET_TOKENS="1000/hour", MAX_TOKENS_LIMIT="200", **shared)
    answers = burst([relay], 50)
    admitted = [answer for answer in answers if answer.status_code == 200]
    refused = [answer for answer in answers if answer.status_code == 429]
    assert len(answers) == 50 and len(admitted) + len(refused) == 50
    # Each reserves 200 tokens and its prompt's estimate (~20): 4 fit in 1,000, a fifth does not
    # (and what the four give back when they end, ~20 each, leaves no room for one either).
    assert (len(fake.requests), len(admitted), len(refused)) == (4, 4, 46)
    assert "(BUDGET_TOKENS)" in refused[0].text and "this request's up to" in refused[0].text


def test_two_instances_share_the_reservations(fake: FakeUpstream, redis: Redis, relays: Relays) -> None:
    fake.replies["gpt-test"] = Reply(body=cost(200))
    both = relays(2, REDIS_URL=redis.url, RATE_LIMIT_TOKENS="1000/hour", MAX_TOKENS_LIMIT="200")
    answers = burst(both, 40)
    assert len(fake.requests) == 4  # as for one instance: the reservations are counted in one store
    assert sum(answer.status_code == 200 for answer in answers) == 4


def test_reservations_are_given_back_after_short_replies(
    fake: FakeUpstream, redis: Redis, relays: Relays
) -> None:
    # Each reserves ~220 tokens of a 1,000 budget and costs 15: with what is given back, twenty in a
    # row all pass (300 in all); without it, the fifth would be refused.
    fake.replies["gpt-test"] = Reply(
        body=[*openai_stream(["ok"])[:-1], sse({"choices": [], "usage": USAGE}), sse("[DONE]")]
    )
    (relay,) = relays(REDIS_URL=redis.url, RATE_LIMIT_TOKENS="1000/hour", MAX_TOKENS_LIMIT="200")
    assert [ask(relay, ALICE, max_tokens=200).status_code for _ in range(20)] == [200] * 20
    key = "LIMITS:LIMITER/tokens/token:alice/1000/3600/second"
    # The last reply's reservation is settled just after its client has its last byte.
    assert fake.wait_for(lambda: redis.command("GET", key) == b"$3\r\n300\r\n", timeout=5)


def test_anthropics_replies_reserve_max_tokens_and_settle_with_their_usage(
    fake: FakeUpstream, redis: Redis, relays: Relays
) -> None:
    # Each reserves its prompt's estimate and its max_tokens (about 210 of 1,000), and costs what
    # message_start and message_delta said: 10 in, 5 read from the cache, 4 out. Counting tokens
    # costs none. Over the budget: Anthropic's 429, before anything is sent.
    fake.replies["claude-test"] = lambda request: (
        Reply(headers={"Content-Type": "application/json"}, body=[b'{"input_tokens": 3}'])
        if request.path.endswith("/count_tokens")
        else Reply(body=anthropic_stream(["ok"]))
    )
    (relay,) = relays(
        REDIS_URL=redis.url, RATE_LIMIT_TOKENS="1000/hour", ANTHROPIC_BASE_URL=fake.origin,
        ANTHROPIC_API_KEY="sk-ant-api03-limits-SECRET-3b5d7f9a1c",
    )  # fmt: skip
    for path in ("/v1/messages", "/v1/messages/count_tokens") * 10:
        assert (
            ask(relay, ALICE, path=path, model="claude-test", stream=True, max_tokens=200).status_code == 200
        )
    key = "LIMITS:LIMITER/tokens/token:alice/1000/3600/second"
    assert fake.wait_for(lambda: redis.command("GET", key) == b"$3\r\n190\r\n", timeout=5)
    sent = len(fake.requests)
    refused = ask(relay, ALICE, path="/v1/messages", model="claude-test", max_tokens=900)
    assert refused.status_code == 429 and refused.headers["retry-after"]
    assert refused.json()["type"] == "error" and refused.json()["error"]["type"] == "rate_limit_error"
    assert len(fake.requests) == sent
    entry = relay.log_of(refused.headers["x-relay-request-id"])
    assert (entry["outcome"], entry["caller"]) == ("limited", "alice")


def test_a_tool_call_reply_is_charged_for_its_arguments(fake: FakeUpstream, relays: Relays) -> None:
    # Was: only choices[0].delta.content counted where the upstream told no usage: 100 KB of tool-call
    # arguments cost 23 tokens, 100 KB of text 25,027.
    arguments = json.dumps({"text": "y" * 100_000})
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "write", "arguments": arguments},
    }
    fake.replies["gpt-test"] = Reply(
        body=[sse({"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}), sse("[DONE]")]
    )
    (relay,) = relays(RATE_LIMIT_TOKENS="1000000/day", WORKERS="1")
    response = ask(relay, ALICE, path="/v1/chat/completions", stream=True)
    entry = relay.log_of(response.headers["x-relay-request-id"])
    assert entry["usage_source"] == "estimated"
    # About four characters a token, OpenAI's rule of thumb (25,000 here); within 2x of it either way.
    assert 12_500 <= entry["tokens"] <= 50_000, entry["tokens"]


def test_a_translated_codex_turn_and_a_compaction_are_settled_and_a_stored_response_takes_nothing(
    fake: FakeUpstream, redis: Redis, relays: Relays
) -> None:
    """The Responses API's paths: what a turn cost (from the upstream's usage, its reasoning included)
    is settled against the caller's tokens across instances; reading a stored response is not counted."""
    usage = {"prompt_tokens": 30, "completion_tokens": 10, "total_tokens": 40,
             "completion_tokens_details": {"reasoning_tokens": 4}}  # fmt: skip
    kept = {"prefix": "oa/", "base_url": fake.base_url, "key_env": None, "responses": True}
    one, two = relays(2, REDIS_URL=redis.url, RATE_LIMIT_TOKENS="100000/day", RATE_LIMIT_REQUESTS="3/minute",
                      STREAM_USAGE="true", UPSTREAMS=json.dumps([kept]))  # fmt: skip
    fake.replies["gpt-test"] = Reply(body=chat_stream("hi", reasoning="hm", usage=usage))
    compacted = {"id": "resp_c", "object": "response.compaction", "output": [],
                 "usage": {"input_tokens": 50, "output_tokens": 20, "total_tokens": 70}}  # fmt: skip
    fake.replies["*"] = Reply(
        headers={"Content-Type": "application/json"}, body=[json.dumps(compacted).encode()]
    )
    headers = {"Authorization": f"Bearer {ALICE}"}
    with httpx.Client(timeout=30) as client:
        turn = client.post(one.url + "/v1/responses", headers=headers,
                           json={"model": "gpt-test", "input": "Hi", "stream": True, "tools": [{"type": "web_search"}]})  # fmt: skip
        assert turn.status_code == 200 and "response.completed" in turn.text
        compaction = client.post(two.url + "/v1/responses/compact", headers=headers,
                                 json={"model": "oa/gpt-x", "input": "A long conversation."})  # fmt: skip
        assert compaction.status_code == 200
        for relay in (one, two, one):
            assert client.get(relay.url + "/v1/responses/resp_1", headers=headers).status_code == 200
        assert (
            client.post(
                two.url + "/v1/responses", headers=headers, json={"model": "gpt-test", "input": "Hi"}
            ).status_code
            == 200
        )
        refused = client.post(
            one.url + "/v1/responses", headers=headers, json={"model": "gpt-test", "input": "Hi"}
        )
    assert refused.status_code == 429  # the fourth request that made something, in the minute
    assert one.log_of(turn.headers["x-relay-request-id"])["tokens"] == 40
    assert two.log_of(compaction.headers["x-relay-request-id"])["tokens"] == 70
    key = "LIMITS:LIMITER/tokens/token:alice/100000/86400/second"
    # 40, 70 and 40: what is settled is what each cost, not what was reserved.
    assert fake.wait_for(lambda: redis.command("GET", key) == b"$3\r\n150\r\n", timeout=5)


class TricklingStore:
    """A 'Redis' that answers every command with a length, then one byte every 0.2 s: no read ever times out."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):
            connection.recv(65536)
            connection.sendall(b"$100\r\n")
            for _ in range(100):
                if self._stop.wait(0.2):
                    return
                connection.sendall(b"1")

    def close(self) -> None:
        self._stop.set()
        self.listener.close()


LIMITS_OF = {
    "one": {"RATE_LIMIT_REQUESTS": "100/minute"},
    "four": {"RATE_LIMIT_REQUESTS": "100/minute", "RATE_LIMIT_TOKENS": "100000/day",
             "BUDGET_TOKENS": "1000000/day", "MODEL_BUDGETS": '{"gpt-*": "1000000/day"}'},
}  # fmt: skip


@pytest.mark.parametrize("limits", ["one", "four"])
@pytest.mark.parametrize("setting", ["allow", "deny"])
def test_a_trickling_store_is_given_up_at_its_timeout_and_logged_in_one_json_line(
    fake: FakeUpstream, relays: Relays, limits: str, setting: str
) -> None:
    # Was: with one limit, every request held for as long as the store trickled (20 s); with two,
    # 17-19 lines of traceback, not JSON, for each.
    fake.replies["gpt-test"] = Reply(body=openai_stream(["ok"]))
    store = TricklingStore()
    try:
        (relay,) = relays(
            REDIS_URL=f"redis://127.0.0.1:{store.port}/0",
            LIMITS_STORE_TIMEOUT="0.5",
            LIMITS_ON_STORE_ERROR=setting,
            WORKERS="1",
            **LIMITS_OF[limits],
        )
        for _ in range(3):
            started = time.monotonic()
            response = ask(relay, ALICE)
            # Bounded in all: four waits of 0.5 s one after another would take 2 s.
            assert time.monotonic() - started < 1.9, "the store's trickle held the request"
            assert response.status_code == (200 if setting == "allow" else 503)
    finally:
        store.close()
    failures = [entry for entry in relay.log_entries() if "limits store" in entry["message"]]
    assert len(failures) == 3, [entry["message"] for entry in failures]  # one line per request
    assert {entry["severity"] for entry in failures} == {"WARNING"}
    assert f"REDIS_URL at 127.0.0.1:{store.port}" in failures[0]["message"]
    assert "LIMITS_STORE_TIMEOUT" in failures[0]["message"]
    output = relay.output()
    assert "Traceback" not in output
    stdout_lines = [line for line in relay.stdout().splitlines() if line.strip()]
    assert all(line.startswith("{") for line in stdout_lines), [
        line for line in stdout_lines if not line.startswith("{")
    ]
