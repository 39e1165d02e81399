"""The relay's errors: each class carries its HTTP status and a message a user can act on.

    RelayError
    ├── ClientError            4xx: the request is wrong; nothing was sent upstream
    │   ├── BadRequest         400
    │   │   └── MissingApiKey  400, the original route's exact text
    │   ├── NotFound           404
    │   ├── MethodNotAllowed   405, with the methods the path allows
    │   └── PayloadTooLarge    413
    └── UpstreamError          the upstream failed before the reply began
        ├── UpstreamHTTPError  the upstream's own 4xx/5xx, relayed with its status
        ├── UpstreamUnreachable 502: refused, DNS, TLS, closed without answering
        └── UpstreamTimeout    504: no connection or no answer in time

One place (`relay.responses.error_response`) renders them. A message never
contains a key or a token.
"""

from __future__ import annotations


class RelayError(Exception):
    """Base class; `status` is the HTTP status the caller receives."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        """Extra response headers this error needs."""
        return {}


class ClientError(RelayError):
    """The request cannot be served as sent."""

    status = 400


class BadRequest(ClientError):
    status = 400


class MissingApiKey(BadRequest):
    def __init__(self) -> None:
        super().__init__(
            "Error: missing OpenAI API Key. Add it on the client side (Settings icon) "
            "or server side (your deployment)."
        )


class NotFound(ClientError):
    status = 404


class MethodNotAllowed(ClientError):
    status = 405

    def __init__(self, method: str, path: str, allowed: tuple[str, ...]) -> None:
        super().__init__(f"Method {method} is not allowed on {path}; use {' or '.join(allowed)}.")
        self.allowed = allowed

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed)}


class PayloadTooLarge(ClientError):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Request body too large: the limit is {limit} bytes (MAX_BODY_BYTES). "
            "Send a shorter conversation."
        )


class UpstreamError(RelayError):
    """The upstream failed before any byte of the reply was sent."""

    status = 502


class UpstreamHTTPError(UpstreamError):
    """The upstream answered with an error status; the caller gets the same status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class UpstreamUnreachable(UpstreamError):
    status = 502


class UpstreamTimeout(UpstreamError):
    status = 504
