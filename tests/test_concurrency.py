"""Cancellation and concurrency, end to end, with the server settings the deploy scripts ship."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import RelayFactory
from tests.fake_upstream import PACKET, FakeUpstream, Reply, openai_stream, peak_concurrency
from tests.load_client import chat_request, run_streams
from tests.relay_server import RelayServer, shipped_server_env

PACE = 0.05  # seconds between tokens, as a model streams them


@pytest.fixture
def shipped(relay_factory: RelayFactory) -> RelayServer:
    return relay_factory(**shipped_server_env())


def test_shipped_settings_are_the_gevent_worker_with_enough_connections() -> None:
    env = shipped_server_env()
    assert env["SERVER_WORKER"] == "gevent"
    # Each worker can take the whole --concurrency (THREADS): the kernel need not split them evenly.
    assert int(env["WORKERS"]) == 2 and int(env["THREADS"]) >= 250


def test_500_concurrent_streams_on_one_instance(fake: FakeUpstream, relay_factory: RelayFactory) -> None:
    # Twice the concurrency deployments ship (250), on the shipped workers: room to spare.
    # One load client is one caller, which may use the whole instance.
    shipped = relay_factory(**{**shipped_server_env(), "THREADS": "500"})
    # 4 s streams, so that all 500 overlap however long opening them takes.
    tokens = [f" w{index}" for index in range(40)]
    fake.replies["gpt-load"] = Reply(body=openai_stream(tokens, pace=0.1))
    expected = PACKET + "".join(tokens).encode()
    request = chat_request(
        "127.0.0.1", shipped.port, {"model": "gpt-load", "messages": [{"role": "user", "content": "x"}]}
    )
    results = run_streams("127.0.0.1", shipped.port, [request] * 500)

    failures = [result.error or result.status for result in results if result.error or result.status != 200]
    assert failures == []
    assert sum(result.body != expected for result in results) == 0
    # They were truly concurrent: the upstream was answering (nearly) all 500 at once.
    assert len(fake.requests) == 500
    assert peak_concurrency(fake.requests) >= 450


def test_one_caller_with_250_streams_at_once_is_never_refused(
    fake: FakeUpstream, shipped: RelayServer
) -> None:
    # The shipped --concurrency, from one caller (a frontend behind one token, an office behind one
    # address). Was: half a worker each, and the kernel does not split connections evenly between
    # the two workers: 4 to 12 of 250 refused with 429 while the instance had room.
    tokens = [f" w{index}" for index in range(30)]
    fake.replies["gpt-load"] = Reply(body=openai_stream(tokens, pace=0.1))
    request = chat_request(
        "127.0.0.1", shipped.port, {"model": "gpt-load", "messages": [{"role": "user", "content": "x"}]}
    )
    results = run_streams("127.0.0.1", shipped.port, [request] * 250)
    assert [result.status for result in results if result.status != 200] == []
    assert sum(result.body != PACKET + "".join(tokens).encode() for result in results) == 0
    assert peak_concurrency(fake.requests) >= 225


def test_100_aborted_streams_free_every_upstream_connection(fake: FakeUpstream, shipped: RelayServer) -> None:
    fake.replies["*"] = Reply(body=openai_stream([f" t{i}" for i in range(400)], pace=PACE))
    # Each stream names its own model, so that each upstream request is matched with its client.
    requests = [
        chat_request(
            "127.0.0.1",
            shipped.port,
            {"model": f"gpt-abort-{n}", "messages": [{"role": "user", "content": "x"}]},
        )
        for n in range(100)
    ]

    # Each client hangs up after the model packet and a few tokens (about 0.2 s into a 20 s stream).
    results = run_streams("127.0.0.1", shipped.port, requests, abort_after_bytes=len(PACKET) + 12)

    assert all(result.aborted_at is not None for result in results), [r.error for r in results if r.error]
    assert len(fake.requests) == 100
    assert fake.wait_for(lambda: all(request.client_closed for request in fake.requests), timeout=5), (
        f"{sum(not request.client_closed for request in fake.requests)} upstream requests still open"
    )
    upstream_of = {request.json["model"]: request for request in fake.requests}
    lags = []
    for n, result in enumerate(results):
        closed = upstream_of[f"gpt-abort-{n}"].client_closed
        assert closed is not None and result.aborted_at is not None
        lags.append(closed - result.aborted_at)
    # Each upstream is freed when its own client leaves: at the latest at the next upstream chunk,
    # so within two token intervals (docs/design.md); plus 0.3 s for 100 streams on a busy
    # machine, whose scheduler may hold a process that long.
    late = [f"{lag:.3f}" for lag in lags if lag >= 2 * PACE + 0.3]
    assert not late, f"freed later than two token intervals after their client left: {late}"
    assert not fake.still_open(fake.connections_of(fake.requests))

    # Every request's handler finished (its log line is written when the body is closed).
    def aborted_logs() -> list[dict[str, Any]]:
        return [entry for entry in shipped.request_logs() if entry["model"].startswith("gpt-abort-")]

    assert fake.wait_for(lambda: len(aborted_logs()) >= 100, timeout=5)
    logs = aborted_logs()
    assert len(logs) == 100
    assert {entry["outcome"] for entry in logs} == {"client_gone"}
    assert all(entry["bytes"] < 200 for entry in logs)

    # Nothing is left busy: the instance serves new streams, every one of them whole.
    fake.replies["gpt-after"] = Reply(body=openai_stream(["fine"]))
    after = chat_request(
        "127.0.0.1", shipped.port, {"model": "gpt-after", "messages": [{"role": "user", "content": "x"}]}
    )
    # The bound is the load client's timeout per stream: generous, since only the outcome matters here.
    results = run_streams("127.0.0.1", shipped.port, [after] * 20, timeout=30)
    assert [result.error for result in results if result.error] == []
    assert all(result.body == PACKET + b"fine" for result in results)
