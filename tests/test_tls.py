"""An HTTPS upstream, as in production: TLS through gevent's patched ssl, and a TLS failure as a 502."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from tests.chat_client import chat
from tests.conftest import SERVER_KEY, assert_no_secret
from tests.fake_upstream import FakeUpstream, Reply, openai_stream
from tests.relay_server import RelayServer, shipped_server_env


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_fake(authority: trustme.CA) -> Iterator[FakeUpstream]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(context)
    server = FakeUpstream(ssl_context=context).start()
    yield server
    server.stop()


def start_relay(tls_fake: FakeUpstream, **env: str) -> RelayServer:
    tls_fake.reset()
    return RelayServer(
        {"OPENAI_BASE_URL": tls_fake.base_url, "OPENAI_API_KEY": SERVER_KEY, **shipped_server_env(), **env}
    ).start()


def test_https_upstream_streams_through_the_gevent_worker(
    tls_fake: FakeUpstream, authority: trustme.CA, tmp_path: Path, client: httpx.Client
) -> None:
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    relay = start_relay(tls_fake, SSL_CERT_FILE=str(bundle))
    try:
        tls_fake.replies["gpt-tls"] = Reply(body=openai_stream(["over", " TLS"]))
        for _ in range(3):  # the second and third reuse the kept-alive TLS connection
            reply = chat(client, relay.url, model="gpt-tls")
            assert reply.status == 200
            assert reply.body == b'{"model":"gpt-fake-0613"}over TLS'
        assert tls_fake.requests[0].headers["authorization"] == f"Bearer {SERVER_KEY}"
        # One TLS handshake for the three: the client keeps one connection to one worker,
        # whose pool keeps the upstream connection alive.
        assert len(tls_fake.connections_of(tls_fake.requests)) == 1
        assert "RecursionError" not in relay.output()
    finally:
        relay.stop()
        assert_no_secret(relay.output(), "the relay's output")


def test_untrusted_certificate_is_a_502(tls_fake: FakeUpstream, client: httpx.Client) -> None:
    relay = start_relay(tls_fake)  # the fake's CA is not trusted
    try:
        reply = chat(client, relay.url, model="gpt-tls")
        assert reply.status == 502
        assert reply.text.startswith(f"OpenAI API error: could not connect to localhost:{tls_fake.port}: ")
        assert "CERTIFICATE_VERIFY_FAILED" in reply.text
        assert tls_fake.requests == []
    finally:
        relay.stop()
        assert_no_secret(relay.output(), "the relay's output")
