"""The relay's errors: each class carries its HTTP status and a message a user can act on.

    RelayError
    ├── ClientError            4xx: the request is refused; nothing was sent upstream
    │   ├── BadRequest         400
    │   │   └── MissingApiKey  400, the original route's exact text
    │   ├── Unauthorized       401, with WWW-Authenticate: Bearer
    │   ├── KeyRequired        401: no key for the upstream (the OpenAI endpoints)
    │   ├── Forbidden          403: an origin that ALLOWED_ORIGINS does not list
    │   ├── NotFound           404
    │   ├── MethodNotAllowed   405, with the methods the path allows
    │   ├── BodyTimeout        408: the request body stopped arriving
    │   ├── PayloadTooLarge    413
    │   ├── UpgradeRequired    426: a WebSocket handshake; the relay speaks HTTP only
    │   ├── RateLimited        429: over a limit the owner set (TooManyAtOnce: its share of a worker)
    │   └── ClientGone         the client left before its answer (logged as client_gone)
    ├── ShuttingDown           503: the server is restarting (SIGTERM); send the request again
    └── UpstreamError          the upstream failed before the reply began (relay/upstream/failures.py)
        ├── UpstreamHTTPError  the upstream's own 4xx/5xx, relayed with its status
        ├── UpstreamUnreachable 502: refused, DNS, TLS, closed without answering
        └── UpstreamTimeout    504: no connection or no answer in time

Each class also says what the request's log line calls its end (`outcome`).
One place (`relay.serving.writer.Writer.error`) renders them in the dialect of the path:
plain text on the original endpoint, OpenAI's JSON error shape on /v1/, Anthropic's on
/v1/messages (relay/formats/error_shapes.py), redacted as every answer is.
"""

from __future__ import annotations

from typing import Literal

# The API a path speaks: how its errors are shaped, and where a caller's token or key may come from.
Dialect = Literal["original", "openai", "anthropic"]


class RelayError(Exception):
    """Base class; `status` is the HTTP status the caller receives, `outcome` what the log calls it."""

    status = 500
    outcome = "error"  # a bug in the relay
    upstream_status: int | None = None  # the status the upstream answered, if it answered

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        """Extra response headers this error needs."""
        return {}


class ClientError(RelayError):
    """The request cannot be served as sent."""

    status = 400
    outcome = "rejected"


class BadRequest(ClientError):
    status = 400


class MissingApiKey(BadRequest):
    def __init__(self) -> None:
        super().__init__(
            "Error: missing OpenAI API Key. Add it on the client side (Settings icon) "
            "or server side (your deployment)."
        )


class Unauthorized(ClientError):
    status = 401

    def __init__(self, token_sent: bool, dialect: Dialect = "openai") -> None:
        header = '"x-api-key: <token>" (or "Authorization: Bearer <token>")'
        if dialect != "anthropic":
            header = '"Authorization: Bearer <token>"'
        how = f"Send the header {header} with one of the access tokens its owner set in ACCESS_TOKENS."
        if token_sent:
            super().__init__(f"Unauthorized: the access token sent is not valid for this relay. {how}")
        else:
            super().__init__(f"Unauthorized: this relay needs an access token. {how}")
        self.token_sent = token_sent

    def headers(self) -> dict[str, str]:
        # RFC 6750: say which scheme, and whether the token sent was wrong.
        if self.token_sent:
            return {"WWW-Authenticate": 'Bearer realm="relay", error="invalid_token"'}
        return {"WWW-Authenticate": 'Bearer realm="relay"'}


class KeyRequired(ClientError):
    """No key for the upstream, as OpenAI answers it: 401, so that the SDKs raise AuthenticationError."""

    status = 401

    def __init__(self, setting: str = "OPENAI_API_KEY") -> None:
        super().__init__(
            "You didn't provide an API key, and this relay has none for this model: send your key as "
            f"the SDK's api_key, or ask the relay's owner to set one ({setting}, UPSTREAMS)."
        )

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="relay"'}


class Forbidden(ClientError):
    status = 403


class NotFound(ClientError):
    status = 404


class MethodNotAllowed(ClientError):
    status = 405

    def __init__(self, method: str, path: str, allowed: tuple[str, ...]) -> None:
        # OPTIONS and HEAD are for browsers and tools; a person is told the methods that do something.
        use = " or ".join(name for name in allowed if name not in ("OPTIONS", "HEAD"))
        super().__init__(f"Method {method} is not allowed on {path}; use {use}.")
        self.allowed = allowed

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed)}


class BodyTimeout(ClientError):
    status = 408

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"The request body did not arrive whole within {seconds:g} s "
            "(REQUEST_BODY_TIMEOUT). Send the request again."
        )


class ClientGone(ClientError):
    """The client closed its connection before it had an answer; nobody reads this one."""

    status = 400
    outcome = "client_gone"

    def __init__(
        self,
        message: str = "The request body ended early: the connection was closed before all of it arrived.",
    ) -> None:
        super().__init__(message)


class RateLimited(ClientError):
    """429: the caller, or the whole deployment, is over a limit its owner set; nothing was sent upstream."""

    status = 429
    outcome = "limited"

    def __init__(self, message: str, retry_after: int, waiting_helps: bool) -> None:
        super().__init__(message)
        self.retry_after = max(retry_after, 1)
        self.waiting_helps = waiting_helps

    def headers(self) -> dict[str, str]:
        # An SDK retries a 429 after a minute at most: a daily limit it would only hit again.
        return {
            "Retry-After": str(self.retry_after),
            "x-should-retry": "true" if self.waiting_helps else "false",
        }


class TooManyAtOnce(RateLimited):
    """429: one caller holds its whole share of a worker's connections already."""

    def __init__(self, caller: str, limit: int) -> None:
        super().__init__(
            f"Too many requests at once from {caller}: {limit} are in progress on this server, its share "
            "(MAX_REQUESTS_PER_CALLER). Wait for one to finish.",
            retry_after=1,
            waiting_helps=True,
        )


class PayloadTooLarge(ClientError):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Request body too large: the limit is {limit} bytes (MAX_BODY_BYTES). "
            "Send a shorter conversation."
        )


class UpgradeRequired(ClientError):
    """426 to a WebSocket handshake: the client is to send its request over plain HTTP instead.

    Codex tries a WebSocket on /v1/responses first: a 426 makes it fall back to POST at once,
    where any other refusal costs it seconds of retries (400 ends it). No `Upgrade` header offers
    a protocol to switch to: there is none, and one naming websocket would invite another try.
    """

    status = 426

    def __init__(self, path: str) -> None:
        super().__init__(
            f"This relay does not speak WebSocket: send the request to {path[:256]} over HTTP (POST) instead."
        )


class ShuttingDown(RelayError):
    """503: this instance is restarting (the platform's SIGTERM); another serves the request sent again."""

    status = 503
    outcome = "shutdown"

    def __init__(self) -> None:
        super().__init__("The server is restarting; send the request again.")

    def headers(self) -> dict[str, str]:
        # Any other instance can serve it at once: every SDK retries a 503 that says so.
        return {"Retry-After": "1", "x-should-retry": "true"}


# Where a caller who reached a path the relay does not serve should go instead.
ENDPOINTS_HINT = (
    "The endpoints are POST /api/chat (or POST /), the OpenAI API's POST /v1/chat/completions, "
    "POST /v1/responses (and /v1/responses/compact, /v1/responses/{id}), POST /v1/embeddings and "
    "GET /v1/models, and Anthropic's POST /v1/messages and POST /v1/messages/count_tokens."
)
