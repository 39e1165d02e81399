"""The upstream's failures before a reply began: its own error status, or not reached or not answering,
told as a 502 or 504 naming the host, never a secret."""

from __future__ import annotations

import httpx

from relay.access.redaction import redact
from relay.config import Route, Settings
from relay.errors import RelayError


class UpstreamError(RelayError):
    """The upstream failed before any byte of the reply was sent."""

    status = 502
    outcome = "upstream_error"
    retryable = False  # set for a connection failure, which another attempt may not meet

    def headers(self) -> dict[str, str]:
        # The relay has already retried as far as UPSTREAM_RETRIES allows: an SDK that retried too
        # would multiply the upstream requests (the OpenAI SDKs heed this header).
        return {"x-should-retry": "false"}


# The statuses the relay retries itself (relay/upstream/retry.py); an SDK retries the same ones.
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


class UpstreamHTTPError(UpstreamError):
    """The upstream answered with an error status; the caller gets the same status."""

    def __init__(self, status: int, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status = self.upstream_status = status
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        # A 429 or 503 says when to try again; the caller should know too.
        headers = super().headers() if self.status in RETRIED_STATUSES else {}
        if self.retry_after:
            headers["Retry-After"] = self.retry_after
        return headers


class UpstreamUnreachable(UpstreamError):
    status = 502


class UpstreamTimeout(UpstreamError):
    status = 504
    outcome = "timeout"


# No connection, or one closed before any answer: another attempt may well succeed.
CONNECTION_FAILURES = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)


def describe_transport_error(
    error: httpx.TransportError, route: Route, settings: Settings, secrets: tuple[str | None, ...]
) -> UpstreamError:
    """What happened, in words an operator can act on; `retryable` says whether to try again."""
    failure = _described(error, route.host, settings, route.api_name)
    failure.message = redact(failure.message, secrets)
    failure.retryable = isinstance(error, CONNECTION_FAILURES)
    return failure


def _described(error: httpx.TransportError, host: str, settings: Settings, api: str) -> UpstreamError:
    if isinstance(error, httpx.ConnectTimeout):
        return UpstreamTimeout(
            f"{api} error: could not connect to {host} within {settings.connect_timeout:g} s."
        )
    if isinstance(error, httpx.PoolTimeout):
        return UpstreamTimeout(
            f"{api} error: no free connection to {host} within {settings.connect_timeout:g} s "
            "(UPSTREAM_MAX_CONNECTIONS reached)."
        )
    if isinstance(error, httpx.TimeoutException):
        return UpstreamTimeout(
            f"{api} error: {host} did not answer within {settings.first_byte_timeout:g} s "
            "(UPSTREAM_FIRST_BYTE_TIMEOUT)."
        )
    if isinstance(error, httpx.RemoteProtocolError):
        return UpstreamUnreachable(f"{api} error: {host} closed the connection without answering.")
    if isinstance(error, httpx.ConnectError):
        return UpstreamUnreachable(f"{api} error: could not connect to {host}: {_reason(error)}.")
    return UpstreamUnreachable(f"{api} error: the request to {host} failed: {_reason(error)}.")


def _reason(error: Exception) -> str:
    # httpx wraps the OS error; its text ("[Errno 111] Connection refused", "Name or service
    # not known", a certificate failure) is what an operator needs.
    text = str(error) or type(error).__name__
    return text.rstrip(".")
