"""When the relay tries the upstream again, and how long it waits first: the policy, without a network."""

from __future__ import annotations

import email.utils
import time

import pytest

from relay.upstream.retry import retry_after_seconds, retry_wait

NOW = 1_700_000_000.0
SAMPLES = 200  # enough draws that jitter reaching both ends of its range is all but certain


@pytest.mark.parametrize(
    ("attempt", "retries", "retries_left"),
    [
        pytest.param(0, 0, False, id="retries-off"),
        pytest.param(0, 1, True, id="first-of-one"),
        pytest.param(1, 1, False, id="one-used"),
        pytest.param(1, 3, True, id="second-of-three"),
        pytest.param(2, 3, True, id="last-of-three"),
        pytest.param(3, 3, False, id="all-used"),
        pytest.param(4, 3, False, id="past-all"),
    ],
)
def test_at_most_retries_attempts_after_the_first(attempt: int, retries: int, retries_left: bool) -> None:
    wait = retry_wait(attempt, retries, 10.0, None)
    assert (wait is not None) is retries_left


def test_a_failure_another_attempt_would_only_repeat_is_not_retried() -> None:
    assert retry_wait(0, 3, 10.0, None, retryable_failure=False) is None
    assert retry_wait(0, 3, 10.0, {"retry-after": "1"}, retryable_failure=False) is None
    assert retry_wait(0, 3, 10.0, None, retryable_failure=True) is not None


@pytest.mark.parametrize(
    ("attempt", "headers"),
    [
        pytest.param(0, None, id="first-connection-failure"),
        pytest.param(1, None, id="second-connection-failure"),
        pytest.param(3, None, id="fourth-connection-failure"),
        pytest.param(0, {}, id="status-without-retry-after"),
        pytest.param(2, {"retry-after": ""}, id="blank-retry-after"),
        pytest.param(1, {"retry-after": "soon"}, id="unreadable-retry-after"),
    ],
)
def test_backoff_doubles_with_each_attempt_with_jitter_down_to_half(
    attempt: int, headers: dict[str, str] | None
) -> None:
    # 0.5 s, 1 s, 2 s, ... (docs/openai-api.md), each drawn between half of it and all of it.
    full = 0.5 * 2**attempt
    waits = [retry_wait(attempt, 5, 100.0, headers) for _ in range(SAMPLES)]
    assert all(wait is not None and full / 2 <= wait <= full for wait in waits)
    drawn = [wait for wait in waits if wait is not None]
    assert min(drawn) < full * 0.6
    assert max(drawn) > full * 0.9


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        pytest.param({"retry-after": "2"}, 2.0, id="seconds"),
        pytest.param({"retry-after": " 1.5 "}, 1.5, id="fraction-spaces-around"),
        pytest.param({"retry-after": "0"}, 0.0, id="now"),
        pytest.param({"retry-after": "10"}, 10.0, id="at-the-cap"),
        pytest.param({"retry-after-ms": "1500"}, 1.5, id="milliseconds"),
        pytest.param({"retry-after-ms": "250", "retry-after": "9"}, 0.25, id="milliseconds-first"),
    ],
)
def test_the_upstreams_retry_after_is_honoured(headers: dict[str, str], wait: float) -> None:
    assert retry_wait(0, 3, 10.0, headers) == wait


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"retry-after": "11"}, id="seconds"),
        pytest.param({"retry-after-ms": "10001"}, id="milliseconds"),
        pytest.param({"retry-after": email.utils.formatdate(time.time() + 3600, usegmt=True)}, id="date"),
    ],
)
def test_a_retry_after_over_the_cap_is_not_waited_for(headers: dict[str, str]) -> None:
    assert retry_wait(0, 3, 10.0, headers) is None


def test_a_retry_after_date_is_waited_for_until_then() -> None:
    then = time.time() + 5
    wait = retry_wait(0, 3, 10.0, {"retry-after": email.utils.formatdate(then, usegmt=True)})
    assert wait is not None
    assert 3.0 < wait <= 5.0  # the date is in whole seconds; the test takes a moment


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        pytest.param({"retry-after": "3"}, 3.0, id="seconds"),
        pytest.param({"retry-after": "2.5"}, 2.5, id="fraction"),
        pytest.param({"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0, id="date"),
        pytest.param({"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0, id="date-past"),
        pytest.param({"retry-after-ms": "1500"}, 1.5, id="milliseconds"),
        pytest.param({"retry-after-ms": "1"}, 0.001, id="one-millisecond"),
        pytest.param({"retry-after-ms": "-5"}, 0.0, id="milliseconds-negative"),
        pytest.param({"retry-after-ms": "200", "retry-after": "7"}, 0.2, id="milliseconds-first"),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], seconds: float) -> None:
    assert retry_after_seconds(headers, NOW) == seconds


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="none"),
        pytest.param({"retry-after": ""}, id="empty"),
        pytest.param({"retry-after": "   "}, id="blank"),
        pytest.param({"retry-after": "soon"}, id="words"),
        pytest.param({"retry-after": "-1"}, id="negative"),
        pytest.param({"retry-after": "1.2.3"}, id="two-dots"),
        pytest.param({"retry-after": "1e3"}, id="exponent"),
        pytest.param({"retry-after": "Mon, 99 Foo 2024 25:61:61 GMT"}, id="bad-date"),
        pytest.param({"retry-after-ms": "soon"}, id="bad-milliseconds"),
        pytest.param({"retry-after-ms": ""}, id="empty-milliseconds"),
    ],
)
def test_retry_after_seconds_without_a_readable_value_is_none(headers: dict[str, str]) -> None:
    assert retry_after_seconds(headers, NOW) is None


def test_an_unreadable_retry_after_ms_leaves_retry_after_to_say() -> None:
    assert retry_after_seconds({"retry-after-ms": "soon", "retry-after": "3"}, NOW) == 3.0
    assert retry_after_seconds({"retry-after-ms": "soon"}, NOW) is None
