"""Shared fixtures: one fake upstream, and relay servers started once per configuration."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.fake_upstream import FakeUpstream
from tests.relay_server import RelayServer

# Distinctive values, so a leak into a response or a log line is found by a plain search.
SERVER_KEY = "sk-server-SECRET-7f3a9c1e5b"
CLIENT_KEY = "sk-client-SECRET-2d8b6e4f0a"

RelayFactory = Callable[..., RelayServer]


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
    None removes a default (e.g. OPENAI_API_KEY=None for a server without a key).
    """
    servers: dict[frozenset[tuple[str, str]], RelayServer] = {}

    def make(**overrides: str | None) -> RelayServer:
        env: dict[str, str | None] = {
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_API_KEY": SERVER_KEY,
            **overrides,
        }
        settings = {name: value for name, value in env.items() if value is not None}
        key = frozenset(settings.items())
        if key not in servers:
            servers[key] = RelayServer(settings).start()
        return servers[key]

    yield make
    for server in servers.values():
        server.stop()


@pytest.fixture
def relay(relay_factory: RelayFactory) -> RelayServer:
    """The relay with the default settings: a server key, the fake as upstream."""
    return relay_factory()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(30.0)) as http:
        yield http
