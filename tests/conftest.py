"""Shared fixtures: one fake upstream, and relay servers started once per configuration."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2  # the openai SDK's HTTP client
import pytest

from tests.fake_upstream import FakeUpstream
from tests.long_silence import LONG_SILENCE
from tests.redis_server import Redis, require_redis_server
from tests.relay_server import ROOT, RelayServer, stop_all

# Distinctive values, so a leak into a response or a log line is found by a plain search.
SERVER_KEY = "sk-server-SECRET-7f3a9c1e5b"
CLIENT_KEY = "sk-client-SECRET-2d8b6e4f0a"
ACCESS_TOKEN = "tok-ACCESS-SECRET-9c4e1a7b3d5f"
OTHER_ACCESS_TOKEN = "tok-ACCESS-SECRET-other-0e2c4a6b8d"
ANTHROPIC_KEY = "sk-ant-api03-SECRET-5e1b9d3f7a2c"  # ANTHROPIC_API_KEY
SECRETS = (SERVER_KEY, CLIENT_KEY, ACCESS_TOKEN, OTHER_ACCESS_TOKEN, ANTHROPIC_KEY)


class RecordingTransport(httpx.HTTPTransport):
    """Keeps every response's headers and body bytes that a test reads, to search them for secrets."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.seen.append(repr(response.headers.raw).encode())
        stream = response.stream
        seen = self.seen

        class Recorded(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                for data in stream:  # type: ignore[union-attr]
                    seen.append(data)
                    yield data

            def close(self) -> None:
                stream.close()  # type: ignore[union-attr]

        response.stream = Recorded()
        return response


def assert_no_secret(text: str | bytes, where: str) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in SECRETS:
        assert secret.encode() not in data, f"a secret appeared in {where}"


RelayFactory = Callable[..., RelayServer]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The three-minute silence runs beside the rest of the suite, from its start (tests/long_silence.py)."""
    if any(item.nodeid.startswith("tests/test_long_silence.py") for item in items):
        LONG_SILENCE.start()


def pytest_sessionfinish() -> None:
    LONG_SILENCE.stop()


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeUpstream]:
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_fake(request: pytest.FixtureRequest) -> None:
    # Replies and recorded requests belong to one test.
    if "fake" in request.fixturenames:
        request.getfixturevalue("fake").reset()


@pytest.fixture(scope="session")
def relay_factory(fake: FakeUpstream) -> Iterator[RelayFactory]:
    """`relay_factory(NAME=value, ...)`: a server with the default settings plus these.

    Servers are shared by every test that asks for the same settings; a value of
    None removes a default (e.g. OPENAI_API_KEY=None for a server without a key). Anthropic's
    API is the fake too (ANTHROPIC_BASE_URL), with its own key.
    """
    servers: dict[frozenset[tuple[str, str]], RelayServer] = {}

    def make(**overrides: str | None) -> RelayServer:
        env: dict[str, str | None] = {
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_API_KEY": SERVER_KEY,
            "ANTHROPIC_BASE_URL": fake.origin,
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            **overrides,
        }
        settings = {name: value for name, value in env.items() if value is not None}
        key = frozenset(settings.items())
        if key not in servers:
            servers[key] = RelayServer(settings).start()
        return servers[key]

    yield make
    stop_all(servers.values())  # together: one at a time took about a minute at the end of a run
    # The secrets test for the whole suite: no key or token in any line any server wrote.
    for server in servers.values():
        assert_no_secret(server.output(), "a relay's output")


@pytest.fixture(scope="session")
def node() -> str:
    """Node.js and the client packages of tests/node (the Node client tests), or a skip saying why.

    Where RELAY_NODE_REQUIRED=1 (CI), a missing Node is a failure, not a skip.
    """
    found = shutil.which("node")
    ready = found is not None and (ROOT / "tests" / "node" / "node_modules" / "ai").is_dir()
    if not ready:
        why = "Node.js (node on PATH) and tests/node/node_modules (cd tests/node && npm ci) are needed"
        if os.environ.get("RELAY_NODE_REQUIRED") == "1":
            pytest.fail(why)
        pytest.skip(f"the Node client tests are skipped: {why}")
    return str(found)


def run_node(node: str, script: str, relay: RelayServer, *args: str, timeout: float = 60) -> dict[str, Any]:
    """Run a script of tests/node against the relay (RELAY_URL, RELAY_TOKEN): the JSON of its last line."""
    completed = subprocess.run(
        [node, str(ROOT / "tests" / "node" / script), *args],
        env={**os.environ, "RELAY_URL": relay.url, "RELAY_TOKEN": ACCESS_TOKEN},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    assert lines, completed.stderr[-2000:]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@pytest.fixture(scope="session")
def agents() -> Path:
    """The coding agents' binaries (tests/agents/node_modules/.bin: codex, claude), or a skip saying why.

    Where RELAY_NODE_REQUIRED=1 (CI), missing ones are a failure, not a skip.
    """
    binaries = ROOT / "tests" / "agents" / "node_modules" / ".bin"
    ready = shutil.which("node") is not None and all(
        (binaries / name).exists() for name in ("codex", "claude")
    )
    if not ready:
        why = "Node.js and tests/agents/node_modules (cd tests/agents && npm ci: Codex CLI, Claude Code) are needed"
        if os.environ.get("RELAY_NODE_REQUIRED") == "1":
            pytest.fail(why)
        pytest.skip(f"the coding agent tests are skipped: {why}")
    return binaries


@pytest.fixture(scope="module")
def redis_server() -> Iterator[Redis]:
    """Debian's redis-server on a free port for the module's tests (a skip, or in CI a failure, without it)."""
    require_redis_server()
    server = Redis().start()
    yield server
    server.stop()


@pytest.fixture
def relay(relay_factory: RelayFactory) -> RelayServer:
    """The relay with the default settings: a server key, the fake as upstream."""
    return relay_factory()


@pytest.fixture
def every_response_searched(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Every response an httpx client reads in the test is searched for secrets.

    The openai SDK's too, sync or async: it sends through httpx2, httpx's fork, whose
    transports are patched the same way. The fixture's value is what was recorded.
    """
    seen: list[bytes] = []
    for module in (httpx, httpx2):
        _record_responses(monkeypatch, module, seen)
    yield seen
    assert_no_secret(b"".join(seen), "a response")


def _record_responses(monkeypatch: pytest.MonkeyPatch, module: Any, seen: list[bytes]) -> None:
    sync_send = module.HTTPTransport.handle_request
    async_send = module.AsyncHTTPTransport.handle_async_request

    def recorded_sync(transport: Any, request: Any) -> Any:
        response = sync_send(transport, request)
        seen.append(repr(response.headers.raw).encode())
        stream = response.stream

        class Recorded(module.SyncByteStream):  # type: ignore[misc]
            def __iter__(self) -> Iterator[bytes]:
                for data in stream:
                    seen.append(data)
                    yield data

            def close(self) -> None:
                stream.close()

        response.stream = Recorded()
        return response

    async def recorded_async(transport: Any, request: Any) -> Any:
        response = await async_send(transport, request)
        seen.append(repr(response.headers.raw).encode())
        stream = response.stream

        class Recorded(module.AsyncByteStream):  # type: ignore[misc]
            async def __aiter__(self) -> AsyncIterator[bytes]:
                async for data in stream:
                    seen.append(data)
                    yield data

            async def aclose(self) -> None:
                await stream.aclose()

        response.stream = Recorded()
        return response

    monkeypatch.setattr(module.HTTPTransport, "handle_request", recorded_sync)
    monkeypatch.setattr(module.AsyncHTTPTransport, "handle_async_request", recorded_async)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """An HTTP client whose every response is searched for secrets when the test ends."""
    transport = RecordingTransport()
    with httpx.Client(transport=transport, timeout=httpx.Timeout(30.0)) as http:
        yield http
    assert_no_secret(b"".join(transport.seen), "a response")
