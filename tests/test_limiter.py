"""Per-caller limits without a server: the settings as written, and the limiter counting in memory.

tests/test_limits.py drives the same limits through relay processes and a real Redis; these are
the fast tests mutation testing runs (./dev mutate), one behaviour of the README's each.
"""

from __future__ import annotations

import contextlib
import math
import socket
import time
from collections.abc import Callable, Iterator

import gevent  # type: ignore[import-untyped]
import gevent.event  # type: ignore[import-untyped]
import pytest
from limits.storage import MemoryStorage

from relay.access import limits_store
from relay.access.callers import Caller
from relay.access.limiter import Limiter, Reservation, StoreUnavailable, _duration
from relay.config.environment import ConfigError
from relay.config.limit_settings import Limit, LimitSettings, parse_limit, read_limits, store_place
from relay.errors import RateLimited

ALICE, BOB = Caller("token:alice", "alice"), Caller("token:bob", "bob")


def limiter(**environ: str) -> Limiter:
    return Limiter(read_limits(environ))


def refusal(limiter: Limiter, caller: Caller = ALICE, model: str = "gpt-test", most: int = 1) -> RateLimited:
    with pytest.raises(RateLimited) as refused:
        limiter.admit(caller, model, most)
    return refused.value


# -- the settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "limit"),
    [
        ("60/minute", Limit(60, 60, "60 per minute")),
        ("200000/day", Limit(200000, 86400, "200000 per day")),
        ("5 per 10 seconds", Limit(5, 10, "5 per 10 seconds")),
        (" 2 / 3 hours ", Limit(2, 10800, "2 per 3 hours")),
        ("1/Hour", Limit(1, 3600, "1 per hour")),
        ("7 per 1 second", Limit(7, 1, "7 per second")),
        ("5 per 2 minutes", Limit(5, 120, "5 per 2 minutes")),
    ],
)
def test_a_limit_is_read_as_written(written: str, limit: Limit) -> None:
    assert parse_limit(written, "RATE_LIMIT_REQUESTS") == limit


@pytest.mark.parametrize(
    "written", ["60", "minute/60", "60/week", "60/minute extra", "-1/minute", "1.5/minute"]
)
def test_a_limit_that_is_not_count_per_window_is_refused_by_name(written: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_limit(written, "RATE_LIMIT_TOKENS")
    assert str(refused.value) == (
        f"RATE_LIMIT_TOKENS must be COUNT/WINDOW such as 60/minute or 200000/day, got {written!r}."
    )


@pytest.mark.parametrize(("written", "unit"), [("0/minute", "minute"), ("3 per 0 days", "day")])
def test_a_limit_of_nothing_is_refused(written: str, unit: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_limit(written, "BUDGET_TOKENS")
    assert str(refused.value) == (
        f"BUDGET_TOKENS must count at least 1 in a window of at least 1 {unit}, got {written!r}."
    )


def test_a_wrong_limit_setting_is_named() -> None:
    for name in ("RATE_LIMIT_REQUESTS", "RATE_LIMIT_TOKENS", "BUDGET_TOKENS"):
        with pytest.raises(ConfigError) as refused:
            read_limits({name: "lots"})
        assert str(refused.value).startswith(f"{name} must be COUNT/WINDOW")


def test_no_limit_is_set_by_default() -> None:
    settings = read_limits({})
    assert settings == LimitSettings()
    assert (settings.requests, settings.tokens, settings.budget, settings.callers, settings.models) == (
        None, None, None, (), (),
    )  # fmt: skip
    assert (settings.redis_url, settings.store_timeout, settings.on_store_error) == (None, 0.5, "allow")
    assert not settings.any


@pytest.mark.parametrize(
    "environ",
    [
        {"RATE_LIMIT_REQUESTS": "1/minute"},
        {"RATE_LIMIT_TOKENS": "1/day"},
        {"CALLER_LIMITS": '{"alice": {"tokens": "1/day"}}'},
        {"BUDGET_TOKENS": "1/day"},
        {"MODEL_BUDGETS": '{"gpt-4*": "1/day"}'},
    ],
)
def test_any_one_limit_turns_limits_on(environ: dict[str, str]) -> None:
    assert read_limits(environ).any


def test_every_setting_is_read() -> None:
    settings = read_limits(
        {
            "RATE_LIMIT_REQUESTS": "60/minute",
            "RATE_LIMIT_TOKENS": "1000/day",
            "CALLER_LIMITS": '{"alice": {"requests": "600/minute"}, "bob": {"tokens": "9/hour"}, '
            '"carl": {"requests": "1/second", "tokens": "2/second"}}',
            "BUDGET_TOKENS": "5000/day",
            "MODEL_BUDGETS": '{"gpt-4*": "100/day", "*": "200/day"}',
            "REDIS_URL": "redis://:s3cret-pass@10.0.0.3:6379/0",
            "LIMITS_STORE_TIMEOUT": "0.25",
            "LIMITS_ON_STORE_ERROR": "Deny",
        }
    )
    assert settings.callers == (
        ("alice", Limit(600, 60, "600 per minute"), None),
        ("bob", None, Limit(9, 3600, "9 per hour")),
        ("carl", Limit(1, 1, "1 per second"), Limit(2, 1, "2 per second")),
    )
    assert settings.budget == Limit(5000, 86400, "5000 per day")
    assert settings.models == (
        ("gpt-4*", Limit(100, 86400, "100 per day")),
        ("*", Limit(200, 86400, "200 per day")),
    )
    assert (settings.store_timeout, settings.on_store_error) == (0.25, "deny")
    assert settings.redis_password == "s3cret-pass"
    assert "s3cret-pass" not in repr(settings)  # the URL may hold a password: never shown
    # A caller's own limit replaces everyone's; what it does not name stays everyone's. Each comes
    # with the setting it is read from, which a refusal names.
    assert settings.for_caller("alice") == (
        ('CALLER_LIMITS["alice"].requests', Limit(600, 60, "600 per minute")),
        ("RATE_LIMIT_TOKENS", Limit(1000, 86400, "1000 per day")),
    )
    assert settings.for_caller("bob") == (
        ("RATE_LIMIT_REQUESTS", Limit(60, 60, "60 per minute")),
        ('CALLER_LIMITS["bob"].tokens', Limit(9, 3600, "9 per hour")),
    )
    assert settings.for_caller("carol") == (
        ("RATE_LIMIT_REQUESTS", Limit(60, 60, "60 per minute")),
        ("RATE_LIMIT_TOKENS", Limit(1000, 86400, "1000 per day")),
    )


def test_a_redis_url_without_a_password_has_none() -> None:
    assert read_limits({"REDIS_URL": "redis://10.0.0.3:6379"}).redis_password is None
    assert read_limits({}).redis_password is None


@pytest.mark.parametrize("url", ["redis://h:1", "rediss://h:1", "redis+unix:///run/redis.sock"])
def test_the_redis_url_schemes_redis_takes_are_taken(url: str) -> None:
    assert read_limits({"REDIS_URL": url}).redis_url == url


def test_another_store_url_is_refused_without_quoting_it() -> None:
    with pytest.raises(ConfigError) as refused:
        read_limits({"REDIS_URL": "http://:s3cret-pass@10.0.0.3:6379"})
    assert str(refused.value) == "REDIS_URL must be a redis://, rediss:// or redis+unix:// URL."


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CALLER_LIMITS": "{alice"}, "CALLER_LIMITS is not valid JSON: "),
        ({"CALLER_LIMITS": '["alice"]'}, "CALLER_LIMITS must be a JSON object."),
        (
            {"CALLER_LIMITS": '{"alice": "60/minute"}'},
            'CALLER_LIMITS["alice"] must be an object with "requests"',
        ),
        ({"CALLER_LIMITS": '{"alice": {"calls": "1/day"}}'}, 'CALLER_LIMITS["alice"] must be an object with'),
        (
            {"CALLER_LIMITS": '{"alice": {"tokens": 5}}'},
            'CALLER_LIMITS["alice"].tokens must be a string such as',
        ),
        (
            {"CALLER_LIMITS": '{"alice": {"requests": "5"}}'},
            'CALLER_LIMITS["alice"].requests must be COUNT/WINDOW',
        ),
        (
            {"MODEL_BUDGETS": '{"gpt-4*": 100}'},
            'MODEL_BUDGETS["gpt-4*"] must be a string such as "1000000/day".',
        ),
        ({"MODEL_BUDGETS": '{"gpt-4*": "100"}'}, 'MODEL_BUDGETS["gpt-4*"] must be COUNT/WINDOW'),
        (
            {"LIMITS_ON_STORE_ERROR": "retry"},
            "LIMITS_ON_STORE_ERROR must be one of allow, deny, got 'retry'.",
        ),
        ({"LIMITS_STORE_TIMEOUT": "0"}, "LIMITS_STORE_TIMEOUT must be a positive number of seconds"),
    ],
)
def test_a_wrong_setting_is_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        read_limits(environ)
    assert str(refused.value).startswith(message)


def test_empty_json_settings_are_no_limits() -> None:
    settings = read_limits({"CALLER_LIMITS": "{}", "MODEL_BUDGETS": " "})
    assert (settings.callers, settings.models, settings.any) == ((), (), False)


# -- requests per window ---------------------------------------------------------------------------


def test_requests_are_counted_per_caller_up_to_the_limit() -> None:
    limits = limiter(RATE_LIMIT_REQUESTS="2/minute")
    limits.admit(ALICE, "gpt-test", 1)
    limits.admit(ALICE, "gpt-test", 1)
    refused = refusal(limits)
    assert str(refused).startswith("Rate limit: alice may send 2 per minute requests (RATE_LIMIT_REQUESTS); ")
    assert str(refused).endswith(f"try again in {refused.retry_after} s.")
    assert 1 <= refused.retry_after <= 60
    assert refused.waiting_helps
    assert refused.headers() == {"Retry-After": str(refused.retry_after), "x-should-retry": "true"}
    limits.admit(BOB, "gpt-test", 1)  # another caller counts on its own


def test_the_wait_is_told_from_the_window_left() -> None:
    # Of a 2 s window, 1.2 s later under 1 s is left: told as 1 s, not as the window's 2.
    for _ in range(3):
        limits = limiter(RATE_LIMIT_REQUESTS="1 per 2 seconds")
        began = time.monotonic()
        limits.admit(ALICE, "gpt-test", 1)
        admitted = time.monotonic()
        time.sleep(1.2)
        asked = time.monotonic()
        try:
            limits.admit(ALICE, "gpt-test", 1)
        except RateLimited as refused:
            answered, told = time.monotonic(), refused.retry_after
            break
        # A busy machine stalled this test past the window: the second was rightly admitted.
    else:
        pytest.fail("three windows of 2 s passed between two requests 1.2 s apart")
    # What is left lies between what the clock allows, whatever a loaded machine delayed.
    least, most = 2 - (answered - began), 2 - (asked - admitted)
    assert max(1, math.ceil(least)) <= told <= max(1, math.ceil(most))


def test_a_wait_over_a_minute_is_one_an_sdk_should_not_retry_into() -> None:
    # An SDK waits a minute at most before it retries; past that, x-should-retry says false.
    for window in (59, 60, 61, 62):
        limits = limiter(RATE_LIMIT_REQUESTS=f"1 per {window} seconds")
        limits.admit(ALICE, "gpt-test", 1)
        refused = refusal(limits)
        assert refused.waiting_helps == (refused.retry_after <= 60)
        assert window - 5 <= refused.retry_after <= window  # generous: a loaded machine may stall


def test_a_caller_named_in_caller_limits_has_its_own_and_is_told_that_setting() -> None:
    limits = limiter(
        RATE_LIMIT_REQUESTS="3/minute",
        RATE_LIMIT_TOKENS="100/day",
        CALLER_LIMITS='{"alice": {"requests": "1/minute"}, "carol": {"tokens": "5/day"}}',
    )
    limits.admit(ALICE, "gpt-test", 1)
    refused = str(refusal(limits))
    assert 'alice may send 1 per minute requests (CALLER_LIMITS["alice"].requests)' in refused
    for _ in range(3):
        limits.admit(BOB, "gpt-test", 1)
    assert "bob may send 3 per minute requests (RATE_LIMIT_REQUESTS)" in str(refusal(limits, BOB))
    carol = Caller("token:carol", "carol")
    assert '(CALLER_LIMITS["carol"].tokens)' in str(refusal(limits, carol, most=6))  # her own 5, not 100
    limits.admit(carol, "gpt-test", 5)


def test_without_limits_nothing_is_counted_or_refused() -> None:
    limits = limiter()
    for _ in range(100):
        reservation = limits.admit(ALICE, "gpt-test", 10**6)
        limits.settle(reservation, 10**6)
    assert reservation == Reservation(0)


def test_the_counters_are_kept_under_the_keys_the_docs_name() -> None:
    # docs/limits.md tells an owner which keys to delete to reset a caller's counts.
    limits = limiter(
        RATE_LIMIT_REQUESTS="2/minute", RATE_LIMIT_TOKENS="50/day", BUDGET_TOKENS="90/day",
        MODEL_BUDGETS='{"gpt-4*": "70/day"}',
    )  # fmt: skip
    limits.settle(limits.admit(ALICE, "gpt-4o", 20), 7)
    limits.admit(Caller("ip:203.0.113.9", "203.0.113.9"), "other", 3)
    storage = limits.store.windows().storage
    assert isinstance(storage, MemoryStorage)
    assert {key: int(count) for key, count in storage.storage.items()} == {
        "LIMITER/requests/token:alice/2/60/second": 1,
        "LIMITER/tokens/token:alice/50/86400/second": 7,  # 20 reserved, 13 given back
        "LIMITER/budget/deployment/90/86400/second": 7 + 3,  # the other caller's 3, still reserved
        "LIMITER/model/gpt-4*/70/86400/second": 7,
        "LIMITER/requests/ip:203.0.113.9/2/60/second": 1,
        "LIMITER/tokens/ip:203.0.113.9/50/86400/second": 3,
    }


# -- tokens: reserved before, settled after ---------------------------------------------------------


def test_a_request_reserves_the_most_it_may_cost_and_one_that_does_not_fit_is_refused() -> None:
    limits = limiter(RATE_LIMIT_TOKENS="31/day")
    first = limits.admit(ALICE, "gpt-test", 15)
    second = limits.admit(ALICE, "gpt-test", 15)  # 30 of 31 held by requests in flight
    refused = refusal(limits, most=2)  # 32 would pass 31
    assert str(refused).startswith(
        "Token limit: alice has used its 31 per day tokens, or would with what requests in progress may "
        "cost and this request's up to 2 (RATE_LIMIT_TOKENS); "
    )
    assert str(refused).endswith(f"the window resets in {_duration(refused.retry_after)}.")
    assert 86400 - 60 < refused.retry_after <= 86400
    assert refused.headers()["x-should-retry"] == "false"  # waiting a minute will not help
    limits.admit(ALICE, "gpt-test", 1)  # 31: the last one fits
    limits.admit(BOB, "gpt-test", 31)  # another caller counts on its own
    for reservation in (first, second):
        limits.settle(reservation, 15)


def test_a_refused_reservation_holds_nothing() -> None:
    limits = limiter(RATE_LIMIT_TOKENS="10/day", BUDGET_TOKENS="100/day")
    for _ in range(5):
        refusal(limits, most=11)  # each reserved, found too much, given back
    assert limits.admit(ALICE, "gpt-test", 10).tokens == 10  # all 10 still there


def test_what_a_reply_did_not_use_is_given_back_and_more_than_reserved_is_charged() -> None:
    limits = limiter(RATE_LIMIT_TOKENS="100/day")
    limits.settle(limits.admit(ALICE, "gpt-test", 60), 10)  # 50 given back: 10 used
    limits.settle(limits.admit(ALICE, "gpt-test", 60), 80)  # 20 more charged: 90 used
    refusal(limits, most=11)
    limits.admit(ALICE, "gpt-test", 10)


def test_a_request_that_cost_nothing_gives_back_its_whole_reservation() -> None:
    limits = limiter(RATE_LIMIT_TOKENS="5/day")
    for _ in range(10):
        limits.settle(limits.admit(ALICE, "gpt-test", 5), 0)  # refused upstream: nothing spent
    limits.admit(ALICE, "gpt-test", 5)


def test_nothing_is_given_back_to_a_window_that_has_ended() -> None:
    # A give-back to a window that ended would open the next one below zero: room beyond the cap.
    limits = limiter(RATE_LIMIT_TOKENS="10 per 1 second")
    reservation = limits.admit(ALICE, "gpt-test", 10)
    time.sleep(1.1)
    limits.settle(reservation, 0)  # its window is gone, and took the 10 with it
    limits.admit(ALICE, "gpt-test", 10)
    refusal(limits, most=1)  # the new window holds 10, not 10 - 10


def test_a_request_is_not_counted_as_a_token() -> None:
    # The requests limit and the tokens limit each on their own counter.
    limits = limiter(RATE_LIMIT_REQUESTS="100/minute", RATE_LIMIT_TOKENS="1000/day")
    for _ in range(100):
        limits.settle(limits.admit(ALICE, "gpt-test", 10), 0)
    assert "(RATE_LIMIT_REQUESTS)" in str(refusal(limits))


def test_a_request_over_both_limits_is_refused_by_the_requests_first() -> None:
    limits = limiter(RATE_LIMIT_REQUESTS="1/minute", RATE_LIMIT_TOKENS="1/day")
    limits.settle(limits.admit(ALICE, "gpt-test", 1), 1)
    assert "(RATE_LIMIT_REQUESTS)" in str(refusal(limits))


def test_the_deployment_budget_is_shared_by_every_caller() -> None:
    limits = limiter(BUDGET_TOKENS="20/day")
    limits.settle(limits.admit(ALICE, "gpt-test", 15), 15)
    limits.settle(limits.admit(BOB, "gpt-test", 5), 5)
    for caller in (ALICE, BOB):
        refused = refusal(limits, caller)
        assert str(refused).startswith("Token limit: this relay has used its 20 per day tokens, or would ")
        assert "(BUDGET_TOKENS)" in str(refused)


def test_a_model_budget_counts_the_first_pattern_that_matches_and_names_it() -> None:
    limits = limiter(MODEL_BUDGETS='{"gpt-4*": "10/day", "*": "100/day"}')
    limits.settle(limits.admit(ALICE, "gpt-4o", 10), 10)
    refused = refusal(limits, BOB, "gpt-4.1")
    assert str(refused).startswith("Token limit: models gpt-4* has used its 10 per day tokens")
    assert '(MODEL_BUDGETS["gpt-4*"])' in str(refused)
    limits.settle(limits.admit(ALICE, "gpt-3.5-turbo", 99), 99)  # under "*", not "gpt-4*"
    limits.settle(limits.admit(ALICE, "o3", 1), 1)
    assert "models * has used its 100 per day" in str(refusal(limits, BOB, "o3"))


def test_a_token_is_counted_against_every_limit_it_falls_under() -> None:
    limits = limiter(RATE_LIMIT_TOKENS="100/day", BUDGET_TOKENS="100/day", MODEL_BUDGETS='{"m": "10/day"}')
    limits.settle(limits.admit(ALICE, "m", 10), 10)
    assert '(MODEL_BUDGETS["m"])' in str(refusal(limits, ALICE, "m"))
    limits.settle(limits.admit(ALICE, "other", 90), 90)
    assert "(RATE_LIMIT_TOKENS)" in str(refusal(limits, ALICE, "other"))
    assert "(BUDGET_TOKENS)" in str(refusal(limits, BOB, "other"))


def test_a_store_slower_than_usual_but_within_its_timeout_still_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Under the gevent worker the calls are waited for up to LIMITS_STORE_TIMEOUT, together.
    monkeypatch.setattr(limits_store, "under_gevent", lambda: True)
    limits = limiter(RATE_LIMIT_REQUESTS="1/minute", RATE_LIMIT_TOKENS="5/day", LIMITS_STORE_TIMEOUT="5")
    windows = limits.store.windows()
    hit = windows.hit

    def slowly(call: Callable[..., bool]) -> Callable[..., bool]:
        return lambda *args, **kwargs: gevent.sleep(0.1) or call(*args, **kwargs)

    monkeypatch.setattr(windows, "hit", slowly(hit))
    assert limits.admit(ALICE, "gpt-test", 5).held
    assert "(RATE_LIMIT_REQUESTS)" in str(refusal(limits))


def test_the_calls_run_on_greenlets_under_the_gevent_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in a deployed worker: the store calls of one request run at once, each on its own greenlet.
    monkeypatch.setattr(limits_store, "under_gevent", lambda: True)
    limits = limiter(
        RATE_LIMIT_REQUESTS="3/minute",
        RATE_LIMIT_TOKENS="20/day",
        BUDGET_TOKENS="1000/day",
        LIMITS_STORE_TIMEOUT="10",
    )
    # Another request's greenlet, streaming meanwhile, is not waited for: only this request's calls
    # (in-memory, they take milliseconds; waiting for the other would take its 3 s).
    other = gevent.spawn(gevent.sleep, 3)
    for _ in range(2):
        limits.settle(limits.admit(ALICE, "gpt-test", 10), 10)
    assert "(RATE_LIMIT_TOKENS)" in str(refusal(limits))
    limits.admit(BOB, "gpt-test", 1)
    assert not other.ready()
    other.kill()


# -- the store failing ------------------------------------------------------------------------------


@pytest.fixture
def silent_store() -> Iterator[str]:
    """A Redis URL whose server takes connections (the kernel's queue does) and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


@pytest.fixture
def unreachable_store() -> Iterator[str]:
    """A Redis URL where a connection is never taken: the listener's queue is full, new SYNs dropped."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        queued: list[socket.socket] = []
        with contextlib.suppress(OSError):  # fill the queue until a connection no longer gets in
            for _ in range(8):
                queued.append(socket.create_connection(listener.getsockname(), timeout=0.3))
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
        for connection in queued:
            connection.close()


@pytest.mark.parametrize(
    ("store", "limit"),
    [
        ("silent_store", {"RATE_LIMIT_TOKENS": "1/day"}),
        ("unreachable_store", {"RATE_LIMIT_REQUESTS": "1/day"}),
    ],
)
def test_a_store_that_does_not_answer_lets_the_request_go_on_by_default(
    store: str, limit: dict[str, str], request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    url = request.getfixturevalue(store)
    limits = limiter(REDIS_URL=url, LIMITS_STORE_TIMEOUT="0.2", **limit)
    started = time.monotonic()
    reservation = limits.admit(ALICE, "gpt-test", 5)
    # Given up at LIMITS_STORE_TIMEOUT, not at redis-py's own 5 s to connect or to read (the
    # bound leaves room for a loaded machine).
    assert time.monotonic() - started < 3
    assert reservation == Reservation(0)  # nothing held: nothing to settle
    port = url.rsplit(":", 1)[1].split("/")[0]
    assert caplog.messages == [
        f"The limits store (REDIS_URL at 127.0.0.1:{port}) failed: TimeoutError; "
        "the request goes on, not counted (LIMITS_ON_STORE_ERROR=allow)"
    ]


def test_a_store_that_does_not_answer_refuses_the_request_where_the_owner_said_so(
    silent_store: str, caplog: pytest.LogCaptureFixture
) -> None:
    limits = limiter(
        REDIS_URL=silent_store,
        RATE_LIMIT_REQUESTS="1/day",
        LIMITS_STORE_TIMEOUT="0.2",
        LIMITS_ON_STORE_ERROR="deny",
    )
    with pytest.raises(StoreUnavailable) as refused:
        limits.admit(ALICE, "gpt-test", 1)
    assert refused.value.status == 503
    assert refused.value.headers() == {"Retry-After": "5", "x-should-retry": "true"}
    assert str(refused.value) == (
        "This relay's rate-limit store did not answer, and its owner chose to refuse requests then "
        "(LIMITS_ON_STORE_ERROR=deny). Try again shortly."
    )
    port = silent_store.rsplit(":", 1)[1].split("/", maxsplit=1)[0]
    assert caplog.messages == [
        f"The limits store (REDIS_URL at 127.0.0.1:{port}) failed: TimeoutError; "
        "the request is refused (LIMITS_ON_STORE_ERROR=deny)"
    ]


def test_tokens_the_store_does_not_take_are_logged(
    silent_store: str, caplog: pytest.LogCaptureFixture
) -> None:
    limits = limiter(REDIS_URL=silent_store, RATE_LIMIT_TOKENS="10/day", LIMITS_STORE_TIMEOUT="0.2")
    check = limits._token_checks(ALICE, "gpt-test", ("RATE_LIMIT_TOKENS", Limit(10, 86400, "10 per day")))[0]
    held = Reservation(3, ((check, time.time() + 100),))  # as if the store had answered then
    limits.settle(held, 7)
    assert caplog.messages[-1].endswith(
        "failed: TimeoutError; 4 tokens beyond the reservation are not counted"
    )
    limits.settle(held, 1)
    assert caplog.messages[-1].endswith("failed: TimeoutError; 2 reserved tokens are not given back")


def test_a_store_call_that_hangs_under_the_gevent_worker_is_given_up_at_its_deadline(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # This process's sockets are not gevent's, so a silent Redis would be cut by the socket's
    # own timeout; the hang is a greenlet's wait instead, which only the deadline ends. One
    # limit or several: each request's wait is the store's timeout.
    monkeypatch.setattr(limits_store, "under_gevent", lambda: True)
    for limit in (
        {"RATE_LIMIT_REQUESTS": "1/day"},
        {"RATE_LIMIT_REQUESTS": "1/day", "BUDGET_TOKENS": "9/day"},
    ):
        limits = limiter(LIMITS_STORE_TIMEOUT="0.2", **limit)
        windows = limits.store.windows()
        monkeypatch.setattr(windows, "hit", lambda *args, **kwargs: gevent.event.Event().wait())
        started = time.monotonic()
        assert limits.admit(ALICE, "gpt-test", 1) == Reservation(0)
        assert time.monotonic() - started < 0.39  # together: two waits of 0.2 s in turn would take 0.4
        assert caplog.messages[-1] == (
            "The limits store (in this process) failed: no answer within 0.2 s (LIMITS_STORE_TIMEOUT); "
            "the request goes on, not counted (LIMITS_ON_STORE_ERROR=allow)"
        )


# -- messages --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (1, "1 s"),
        (119, "119 s"),
        (120, "2 min"),
        (7199, "119 min"),
        (7200, "2 h 0 min"),
        (7800, "2 h 10 min"),
        (86399, "23 h 59 min"),
    ],
)
def test_a_wait_is_said_in_the_unit_a_person_reads(seconds: int, said: str) -> None:
    assert _duration(seconds) == said


def test_one_token_beyond_the_reservation_is_charged() -> None:
    limits = limiter(RATE_LIMIT_TOKENS="10/day")
    limits.settle(limits.admit(ALICE, "gpt-test", 5), 6)  # 6 used
    limits.admit(ALICE, "gpt-test", 4)  # 10 held
    refusal(limits, most=1)


@pytest.mark.parametrize(
    ("url", "place"),
    [
        pytest.param("redis://:s3cret@10.0.0.7:6380/0", "10.0.0.7:6380", id="host-and-port"),
        pytest.param("redis://10.0.0.7/0", "10.0.0.7:6379", id="the-default-port"),
        pytest.param("redis+unix:///var/run/redis.sock?db=0", "/var/run/redis.sock", id="a-unix-socket"),
    ],
)
def test_the_store_is_named_by_where_it_is_never_by_its_password(url: str, place: str) -> None:
    assert store_place(url) == place
    assert read_limits({"REDIS_URL": url}).store_name == f"REDIS_URL at {place}"
