"""The relay's settings: a frozen dataclass whose field defaults are the only place defaults are written.

`load_settings` reads each from its environment variable once, at start-up; a bad
value raises ConfigError naming the variable, so a misconfigured deployment never
starts serving.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from relay.config import environment as env
from relay.config.environment import DEFAULT_ANTHROPIC_BASE_URL, DEFAULT_BASE_URL, ConfigError
from relay.config.known_settings import misspelt, refusal
from relay.config.limit_settings import LimitSettings, read_limits
from relay.config.upstreams import Route, read_upstreams, speaks_responses, takes_stream_usage

# Cloud Run and Cloud Run functions end any request at 60 minutes. The relay
# must end its longest reply itself, with a note, a minute before that.
PLATFORM_REQUEST_LIMIT = 3600
# Cloud Run sends SIGTERM, then SIGKILL this many seconds later (relay/serving/shutdown.py).
PLATFORM_GRACE = 10
LONGEST_REQUEST_ALLOWED = PLATFORM_REQUEST_LIMIT - 60
SERVER_WORKERS = ("gevent", "gthread")
# What a chat-only route does with a tool the upstream would run itself (web_search, ...): the
# first is the default (docs/openai-api.md, "POST /v1/responses").
UNSUPPORTED_TOOLS = ("omit", "refuse")


@dataclass(frozen=True)
class Settings:
    """Everything the relay reads from its environment; each field's default is the variable's."""

    # repr=False keeps secrets out of any log line or traceback that prints settings.
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str = DEFAULT_BASE_URL
    openai_org_id: str | None = None
    openai_project_id: str | None = None
    openai_responses_api: bool | None = None  # OPENAI_RESPONSES_API; unset: known by OPENAI_BASE_URL's host
    anthropic_api_key: str | None = field(default=None, repr=False)
    anthropic_base_url: str = DEFAULT_ANTHROPIC_BASE_URL
    access_tokens: tuple[str, ...] = field(default=(), repr=False)
    token_names: tuple[str, ...] = ()  # each access token's name, for logs and limits (never the token)
    allow_client_keys: bool = True
    allowed_origins: tuple[str, ...] = ("*",)
    public_origins: tuple[str, ...] = ()  # PUBLIC_URL: the relay's own origin(s), where a Host cannot tell
    host_routed: bool = False  # the platform routes by Host (Cloud Run sets K_SERVICE): a Host is genuine
    allow_private_network: bool = False
    allowed_models: tuple[str, ...] = ()  # empty: any model
    max_tokens_limit: int | None = None
    allowed_fields: tuple[str, ...] = ()  # passed on /v1/ besides the known ones, under MAX_TOKENS_LIMIT
    # A tool the upstream runs itself, on a route that speaks only chat completions: left out of the
    # translated request and logged ("omit"), or the request refused with a 400 naming it ("refuse").
    unsupported_tools: str = UNSUPPORTED_TOOLS[0]
    connect_timeout: float = 10.0
    first_byte_timeout: float = 120.0
    # Minutes, not seconds: a reasoning model may think for minutes before its first token, and the
    # keep-alives below hold the client's side of such a silence open (docs/configuration.md).
    idle_timeout: float = 300.0
    stream_max_seconds: float = 900.0
    body_timeout: float = 30.0  # the longest the whole request body may take to arrive
    # An event stream's keep-alive comment after this long without a write to the client, so that
    # proxies and client watchdogs do not take a thinking model for a dead connection. None: off.
    keepalive: float | None = 15.0
    max_body_bytes: int = 1024 * 1024
    stream_usage: bool | None = None  # STREAM_USAGE; unset: per route, by its host (OpenAI's takes it)
    serve_page: bool = True
    max_connections: int = 1000  # unset: THREADS, as many as the worker has requests in flight
    google_cloud_project: str | None = None
    routes: tuple[Route, ...] = ()  # UPSTREAMS, beside the default route
    retries: int = 2
    retry_max_wait: float = 8.0
    # How functions-framework's gunicorn serves the function (relay/serving/server.py).
    server_worker: str = SERVER_WORKERS[0]
    workers: int = 1
    threads: int = 1000  # concurrent requests per worker process
    # A caller's share of a worker: requests in flight at once. Unset: no share, one caller may
    # use the whole instance (docs/limits.md says when to set it).
    max_requests_per_caller: int | None = None
    # Where a caller without an access token is known from: the Nth address from the end of
    # X-Forwarded-For (1 on Cloud Run: what Google's front end appends), or 0, the socket's peer.
    client_ip_hops: int = 0
    # From SIGTERM, how long requests in progress may go on before each is ended, told why: under
    # Cloud Run's 10 s before SIGKILL, with a second for gunicorn to let them finish their ending.
    shutdown_grace: float = 8.0
    limits: LimitSettings = field(default_factory=LimitSettings)

    @property
    def default_route(self) -> Route:
        """OPENAI_BASE_URL with OPENAI_API_KEY: where a model no UPSTREAMS prefix claims goes."""
        headers = []
        if self.openai_org_id:
            headers.append(("OpenAI-Organization", self.openai_org_id))
        if self.openai_project_id:
            headers.append(("OpenAI-Project", self.openai_project_id))
        responses = self.openai_responses_api
        return Route(
            prefix="",
            base_url=self.openai_base_url,
            api_key=self.openai_api_key,
            headers=tuple(headers),
            responses_api=speaks_responses(self.openai_base_url) if responses is None else responses,
            stream_usage=takes_stream_usage(self.openai_base_url, self.stream_usage),
        )

    @property
    def anthropic_route(self) -> Route:
        """ANTHROPIC_BASE_URL with ANTHROPIC_API_KEY: where a model no Anthropic route's prefix claims
        goes from /v1/messages."""
        return Route(
            prefix="", base_url=self.anthropic_base_url, api_key=self.anthropic_api_key, api="anthropic"
        )

    @property
    def all_routes(self) -> tuple[Route, ...]:
        """Every upstream the relay may call: the two default routes, then UPSTREAMS."""
        return (self.default_route, self.anthropic_route, *self.routes)

    @property
    def key_envs(self) -> tuple[str, ...]:
        """The variables UPSTREAMS names for its routes' keys: the owner's own names, not misspellings."""
        return tuple(route.key_env for route in self.routes if route.key_env)

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """Every key and token the relay holds: none may reach a response or a log line."""
        return (
            self.openai_api_key,
            self.anthropic_api_key,
            *self.access_tokens,
            *(secret for route in self.routes for secret in route.secrets),
            self.limits.redis_password,
        )

    @property
    def longest_request_seconds(self) -> float:
        """The longest a request usually lasts, and the bound the deploy timeout is built on.

        Until the upstream answers: connect plus first byte. After: the stream cap counted
        from the request's arrival, checked at each read. Either way, one more silent gap
        (a read or a write to the client) that the idle timeout ends.

        Not counted, so not a hard bound: an attempt started near the end of the
        first-byte budget may run up to one connect timeout past it (its connect and read
        timeouts are each cut to what is left), and once the cap has passed, the write of
        the text already read and then the closing note may each wait up to the idle
        timeout for a client that reads slowly.
        """
        waiting = self.connect_timeout + self.first_byte_timeout
        return max(waiting, self.stream_max_seconds) + self.idle_timeout


DEFAULTS = Settings()


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read the relay's settings from `environ`; raise ConfigError naming a bad variable."""
    d = DEFAULTS
    threads = env.positive_int(environ, "THREADS", d.threads) or d.threads
    tokens, token_names = env.named_tokens(environ, "ACCESS_TOKENS")
    on_cloud_run = env.text(environ, "K_SERVICE") is not None
    stream_usage = env.optional_boolean(environ, "STREAM_USAGE")
    settings = Settings(
        openai_api_key=env.header_value(environ, "OPENAI_API_KEY"),
        openai_base_url=env.base_url(environ, "OPENAI_BASE_URL"),
        openai_org_id=env.header_value(environ, "OPENAI_ORG_ID"),
        openai_project_id=env.header_value(environ, "OPENAI_PROJECT_ID"),
        openai_responses_api=env.optional_boolean(environ, "OPENAI_RESPONSES_API"),
        anthropic_api_key=env.header_value(environ, "ANTHROPIC_API_KEY"),
        anthropic_base_url=env.base_url(environ, "ANTHROPIC_BASE_URL", DEFAULT_ANTHROPIC_BASE_URL),
        access_tokens=tokens,
        token_names=token_names,
        allow_client_keys=env.boolean(environ, "ALLOW_CLIENT_KEYS", d.allow_client_keys),
        allowed_origins=env.origins(environ, "ALLOWED_ORIGINS"),
        public_origins=env.url_origins(environ, "PUBLIC_URL"),
        host_routed=on_cloud_run,
        allow_private_network=env.boolean(environ, "ALLOW_PRIVATE_NETWORK", d.allow_private_network),
        allowed_models=env.items(environ, "ALLOWED_MODELS"),
        max_tokens_limit=env.positive_int(environ, "MAX_TOKENS_LIMIT", d.max_tokens_limit),
        allowed_fields=env.items(environ, "ALLOWED_FIELDS"),
        unsupported_tools=env.choice(environ, "UNSUPPORTED_TOOLS", UNSUPPORTED_TOOLS),
        connect_timeout=env.seconds(environ, "UPSTREAM_CONNECT_TIMEOUT", d.connect_timeout),
        first_byte_timeout=env.seconds(environ, "UPSTREAM_FIRST_BYTE_TIMEOUT", d.first_byte_timeout),
        idle_timeout=env.seconds(environ, "UPSTREAM_IDLE_TIMEOUT", d.idle_timeout),
        stream_max_seconds=env.seconds(environ, "STREAM_MAX_SECONDS", d.stream_max_seconds),
        body_timeout=env.seconds(environ, "REQUEST_BODY_TIMEOUT", d.body_timeout),
        keepalive=env.seconds_or_off(environ, "STREAM_KEEPALIVE_SECONDS", d.keepalive),
        max_body_bytes=env.positive_int(environ, "MAX_BODY_BYTES", d.max_body_bytes) or d.max_body_bytes,
        stream_usage=stream_usage,
        serve_page=env.boolean(environ, "SERVE_PAGE", d.serve_page),
        max_connections=env.positive_int(environ, "UPSTREAM_MAX_CONNECTIONS", threads) or threads,
        google_cloud_project=env.text(environ, "GOOGLE_CLOUD_PROJECT"),
        routes=read_upstreams(environ, "UPSTREAMS", stream_usage),
        retries=env.count(environ, "UPSTREAM_RETRIES", d.retries),
        retry_max_wait=env.seconds(environ, "UPSTREAM_RETRY_MAX_WAIT", d.retry_max_wait),
        server_worker=env.choice(environ, "SERVER_WORKER", SERVER_WORKERS),
        workers=env.positive_int(environ, "WORKERS", d.workers) or d.workers,
        threads=threads,
        max_requests_per_caller=env.positive_int(environ, "MAX_REQUESTS_PER_CALLER", None),
        client_ip_hops=env.count(environ, "CLIENT_IP_HOPS", 1 if on_cloud_run else 0),
        shutdown_grace=env.seconds(environ, "SHUTDOWN_GRACE_SECONDS", d.shutdown_grace),
        limits=read_limits(environ),
    )
    _check_together(settings)
    # Last: a misspelt name is found whatever else is wrong, and a route's key_env is the owner's to call.
    found = misspelt(environ, also=settings.key_envs)
    if found:
        raise ConfigError(refusal(found))
    return settings


def _check_together(settings: Settings) -> None:
    """The rules that tie settings to each other."""
    if settings.max_connections < settings.threads:
        raise ConfigError(
            f"UPSTREAM_MAX_CONNECTIONS ({settings.max_connections}) must be at least THREADS "
            f"({settings.threads}), or requests beyond it wait for a connection and time out."
        )
    longest = settings.longest_request_seconds
    if longest > LONGEST_REQUEST_ALLOWED:
        raise ConfigError(
            "the longest request, max(UPSTREAM_CONNECT_TIMEOUT + UPSTREAM_FIRST_BYTE_TIMEOUT, "
            f"STREAM_MAX_SECONDS) + UPSTREAM_IDLE_TIMEOUT, is {longest:g} s; it must be at most "
            f"{LONGEST_REQUEST_ALLOWED} s, so the relay ends its longest reply itself before the "
            f"platform's {PLATFORM_REQUEST_LIMIT} s request limit cuts it."
        )
