"""The OpenAI-compatible endpoints, driven by the official `openai` package, against the real server."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.chat_client import chat
from tests.conftest import ACCESS_TOKEN, CLIENT_KEY, SERVER_KEY, RelayFactory
from tests.fake_upstream import (
    FakeUpstream,
    RecordedRequest,
    Reply,
    Reset,
    Step,
    chunk,
    error_reply,
    openai_stream,
    sse,
)
from tests.relay_server import RelayServer

# Whatever a test reads from the relay, through httpx or the SDK, is searched for secrets.
pytestmark = pytest.mark.usefixtures("every_response_searched")

USER: Any = [{"role": "user", "content": "Hi"}]  # Any: the SDK's message types are not the point here


@pytest.fixture
def private(relay_factory: RelayFactory) -> RelayServer:
    """A relay with access tokens: the SDK's api_key is the token; the server's key pays."""
    return relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="0")


def sdk_client(relay: RelayServer, api_key: str = ACCESS_TOKEN) -> openai.OpenAI:
    """The OpenAI SDK pointed at a relay, with no retries of its own (the relay's are tested)."""
    return openai.OpenAI(base_url=relay.url + "/v1", api_key=api_key, max_retries=0)


@pytest.fixture
def sdk(private: RelayServer) -> Iterator[openai.OpenAI]:
    with sdk_client(private) as client:
        yield client


def completion(content: str, model: str = "gpt-fake-0613") -> Reply:
    body = {
        "id": "chatcmpl-whole",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    steps: list[Step] = [json.dumps(body).encode()]
    return Reply(headers={"Content-Type": "application/json"}, body=steps)


def test_sync_streaming(fake: FakeUpstream, sdk: openai.OpenAI, every_response_searched: list[bytes]) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["Hel", "lo", "!"]))
    stream = sdk.chat.completions.create(model="gpt-test", messages=USER, stream=True)
    text = "".join(event.choices[0].delta.content or "" for event in stream if event.choices)
    assert text == "Hello!"
    assert b'"Hel"' in b"".join(every_response_searched)  # the SDK's reads are among those searched
    (request,) = fake.requests
    assert request.headers["authorization"] == f"Bearer {SERVER_KEY}"  # the token stayed at the relay
    assert request.json["stream"] is True


def test_async_streaming(
    fake: FakeUpstream, private: RelayServer, every_response_searched: list[bytes]
) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream(["As", "ync"]))

    async def run() -> str:
        async with openai.AsyncOpenAI(
            base_url=private.url + "/v1", api_key=ACCESS_TOKEN, max_retries=0
        ) as client:
            stream = await client.chat.completions.create(model="gpt-test", messages=USER, stream=True)
            return "".join([event.choices[0].delta.content or "" async for event in stream if event.choices])

    assert asyncio.run(run()) == "Async"
    assert b'"ync"' in b"".join(every_response_searched)  # the async SDK's reads are searched too


def test_non_streaming(fake: FakeUpstream, sdk: openai.OpenAI) -> None:
    fake.replies["gpt-test"] = completion("All at once.")
    answer = sdk.chat.completions.create(model="gpt-test", messages=USER)
    assert answer.choices[0].message.content == "All at once."
    assert answer.usage is not None and answer.usage.total_tokens == 5
    assert "stream" not in fake.requests[0].json


def test_every_parameter_passes_through(fake: FakeUpstream, sdk: openai.OpenAI) -> None:
    fake.replies["gpt-test"] = completion("{}")
    tools: Any = [
        {
            "type": "function",
            "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
        }
    ]
    sdk.chat.completions.create(
        model="gpt-test",
        messages=USER,
        tools=tools,
        tool_choice="auto",
        response_format={"type": "json_object"},
        seed=7,
        stop=["END"],
        logprobs=True,
        top_logprobs=2,
        user="user-42",
        temperature=0.2,
        extra_body={"custom_provider_field": {"x": 1}},
    )
    sent = fake.requests[0].json
    assert sent["tools"] == tools
    assert (sent["tool_choice"], sent["seed"], sent["stop"], sent["user"]) == ("auto", 7, ["END"], "user-42")
    assert sent["response_format"] == {"type": "json_object"}
    assert (sent["logprobs"], sent["top_logprobs"], sent["temperature"]) == (True, 2, 0.2)
    assert sent["custom_provider_field"] == {"x": 1}


def test_streamed_tool_call(fake: FakeUpstream, sdk: openai.OpenAI) -> None:
    def tool_delta(arguments: str, first: bool = False) -> dict[str, Any]:
        call: dict[str, Any] = {"index": 0, "function": {"arguments": arguments}}
        if first:
            call.update(id="call_1", type="function")
            call["function"]["name"] = "get_weather"
        value = chunk(model="gpt-fake-0613")
        value["choices"][0]["delta"] = {"tool_calls": [call]}
        return value

    finish = chunk()
    finish["choices"][0]["finish_reason"] = "tool_calls"
    fake.replies["gpt-test"] = Reply(
        body=[
            sse(chunk(role="assistant")),
            sse(tool_delta("", first=True)),
            sse(tool_delta('{"city": ')),
            sse(tool_delta('"Paris"}')),
            sse(finish),
            sse("[DONE]"),
        ]
    )
    name, arguments = "", ""
    for event in sdk.chat.completions.create(model="gpt-test", messages=USER, stream=True):
        for call in event.choices[0].delta.tool_calls or [] if event.choices else []:
            name += call.function.name or "" if call.function else ""
            arguments += call.function.arguments or "" if call.function else ""
    assert (name, json.loads(arguments)) == ("get_weather", {"city": "Paris"})


def test_events_pass_through_untouched(fake: FakeUpstream, private: RelayServer) -> None:
    events = [
        {"id": "", "choices": [], "prompt_filter_results": [{"prompt_index": 0}]},  # Azure
        chunk("x", role="assistant"),
        {"id": "u", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}},
    ]
    steps: list[Step] = [sse(event) for event in events]
    fake.replies["gpt-test"] = Reply(body=[*steps, sse("[DONE]")])
    with httpx.stream(
        "POST",
        private.url + "/v1/chat/completions",
        json={"model": "gpt-test", "messages": USER, "stream": True},
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
    ) as response:
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        body = response.read()
    expected = b"".join(
        b"data: " + json.dumps(event, ensure_ascii=False).encode() + b"\n\n" for event in events
    )
    assert body == expected + b"data: [DONE]\n\n"


def test_failure_after_streaming_began_is_an_error_event(fake: FakeUpstream, sdk: openai.OpenAI) -> None:
    fake.replies["gpt-test"] = Reply(body=[sse(chunk("partial")), Reset()])
    stream = sdk.chat.completions.create(model="gpt-test", messages=USER, stream=True)
    with pytest.raises(
        openai.APIError, match="the upstream closed the connection before the reply was complete"
    ):
        for _ in stream:
            pass


def test_upstream_429_raises_rate_limit_error(fake: FakeUpstream, sdk: openai.OpenAI) -> None:
    body = {
        "error": {
            "message": "Rate limit reached for gpt-test",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    fake.replies["gpt-test"] = error_reply(429, json.dumps(body).encode())
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.chat.completions.create(model="gpt-test", messages=USER)
    assert caught.value.status_code == 429
    assert caught.value.body == body["error"]  # the upstream's own JSON


def test_upstream_401_raises_authentication_error(fake: FakeUpstream, sdk: openai.OpenAI) -> None:
    fake.replies["gpt-test"] = error_reply(
        401, b'{"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}'
    )
    with pytest.raises(openai.AuthenticationError):
        sdk.chat.completions.create(model="gpt-test", messages=USER, stream=True)


def test_relay_refusals_raise_the_sdk_errors(
    fake: FakeUpstream, private: RelayServer, relay_factory: RelayFactory
) -> None:
    stranger = sdk_client(private, api_key="not-a-token")
    with stranger, pytest.raises(openai.AuthenticationError, match=r"access token sent is not valid"):
        stranger.chat.completions.create(model="gpt-test", messages=USER)
    limited = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, ALLOWED_MODELS="gpt-4o-mini", MAX_TOKENS_LIMIT="100")
    with sdk_client(limited) as client:
        with pytest.raises(openai.BadRequestError, match="ALLOWED_MODELS"):
            client.chat.completions.create(model="gpt-4o", messages=USER)
        with pytest.raises(openai.BadRequestError, match="MAX_TOKENS_LIMIT"):
            client.chat.completions.create(model="gpt-4o-mini", messages=USER, max_completion_tokens=500)
    assert fake.requests == []


def test_models_list(fake: FakeUpstream, sdk: openai.OpenAI) -> None:
    assert [model.id for model in sdk.models.list()] == ["gpt-fake"]
    assert fake.requests[0].headers["authorization"] == f"Bearer {SERVER_KEY}"


@pytest.mark.parametrize(("allowed", "listed"), [("gpt-4o*", []), ("gpt-f*", ["gpt-fake"])])
def test_models_list_is_filtered_by_allowed_models(
    fake: FakeUpstream, relay_factory: RelayFactory, allowed: str, listed: list[str]
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, ALLOWED_MODELS=allowed)
    with sdk_client(relay) as client:
        assert [model.id for model in client.models.list()] == listed


# -- who pays ----------------------------------------------------------------------------------


def jwt(claims: dict[str, Any], signature: str) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'kid': 'k1', 'typ': 'JWT'})}.{part(claims)}.{signature}"


# What an IAM-private Cloud Run caller sends (gcloud auth print-identity-token), as the container
# sees it: Cloud Run removes the signature; and as it was sent.
GOOGLE_CLAIMS = {
    "iss": "https://accounts.google.com",
    "aud": "https://relay.example",
    "email": "dev@example.com",
}
GOOGLE_ID_TOKEN = jwt(GOOGLE_CLAIMS, "SIGNATURE_REMOVED_BY_GOOGLE")
GOOGLE_ID_TOKEN_SIGNED = jwt(GOOGLE_CLAIMS, "c2lnbmF0dXJl")
OTHER_JWT = jwt({"iss": "https://login.microsoftonline.com/t/v2.0", "aud": "x"}, "c2ln")  # e.g. Azure's


# Each row of the README's "Who pays" table for /v1: settings, the caller's bearer, the upstream's.
@pytest.mark.parametrize(
    ("settings", "bearer", "upstream_key"),
    [
        pytest.param({"ACCESS_TOKENS": ACCESS_TOKEN}, ACCESS_TOKEN, SERVER_KEY, id="tokens-server-pays"),
        pytest.param({"ACCESS_TOKENS": ACCESS_TOKEN, "OPENAI_API_KEY": None}, ACCESS_TOKEN, None, id="tokens-no-server-key-401"),
        pytest.param({}, CLIENT_KEY, CLIENT_KEY, id="client-key-pays"),
        pytest.param({}, None, SERVER_KEY, id="no-key-sent-server-pays"),
        pytest.param({"ALLOW_CLIENT_KEYS": "false"}, CLIENT_KEY, SERVER_KEY, id="client-keys-off-server-pays"),
        pytest.param({"OPENAI_API_KEY": None}, CLIENT_KEY, CLIENT_KEY, id="no-server-key-client-pays"),
        pytest.param({"OPENAI_API_KEY": None}, None, None, id="no-key-anywhere-401"),
        pytest.param({"OPENAI_API_KEY": None, "ALLOW_CLIENT_KEYS": "false"}, CLIENT_KEY, None, id="nothing-allowed-401"),
        pytest.param({}, GOOGLE_ID_TOKEN, SERVER_KEY, id="google-identity-token-not-a-key"),
        pytest.param({}, GOOGLE_ID_TOKEN_SIGNED, SERVER_KEY, id="signed-google-identity-token-not-a-key"),
        pytest.param({"OPENAI_API_KEY": None}, GOOGLE_ID_TOKEN, None, id="google-identity-token-never-sent-401"),
        pytest.param({}, OTHER_JWT, OTHER_JWT, id="another-issuers-token-is-a-key"),
    ],
)  # fmt: skip
def test_who_pays(
    fake: FakeUpstream,
    relay_factory: RelayFactory,
    settings: dict[str, str | None],
    bearer: str | None,
    upstream_key: str | None,
) -> None:
    relay = relay_factory(**settings)
    fake.replies["gpt-test"] = completion("paid")
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    response = httpx.post(
        relay.url + "/v1/chat/completions", json={"model": "gpt-test", "messages": USER}, headers=headers
    )
    if upstream_key is None:
        assert response.status_code == 401
        assert fake.requests == []
    else:
        assert response.status_code == 200
        assert fake.requests[0].headers["authorization"] == f"Bearer {upstream_key}"


def test_no_key_at_all_is_an_authentication_error(fake: FakeUpstream, relay_factory: RelayFactory) -> None:
    relay = relay_factory(OPENAI_API_KEY=None)
    response = httpx.post(relay.url + "/v1/chat/completions", json={"model": "gpt-test", "messages": USER})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert "You didn't provide an API key" in response.json()["error"]["message"]
    assert fake.requests == []


# -- several upstreams ---------------------------------------------------------------------------


@pytest.fixture
def second() -> Iterator[FakeUpstream]:
    server = FakeUpstream().start()
    yield server
    server.stop()


SECOND_KEY = "sk-second-SECRET-5a7c9e1b3d"


@pytest.fixture
def routed(fake: FakeUpstream, second: FakeUpstream, relay_factory: RelayFactory) -> RelayServer:
    routes = [
        {
            "prefix": "second/",
            "base_url": second.base_url,
            "key_env": "SECOND_KEY",
            "headers": {"X-Title": "relay test"},
        },
        {"prefix": "local/", "base_url": second.base_url, "key_env": None},
    ]
    return relay_factory(UPSTREAMS=json.dumps(routes), SECOND_KEY=SECOND_KEY, ACCESS_TOKENS=ACCESS_TOKEN)


def models_and_keys(requests: list[RecordedRequest]) -> list[tuple[str, str | None]]:
    return [(request.json["model"], request.headers.get("authorization")) for request in requests]


def test_each_upstream_gets_only_its_own_models_and_key(
    fake: FakeUpstream, second: FakeUpstream, routed: RelayServer
) -> None:
    for server in (fake, second):
        server.replies["*"] = Reply(body=openai_stream(["ok"]))
    with sdk_client(routed) as client:
        for model in ("gpt-4o-mini", "second/meta-llama/llama-3.3-70b", "local/qwen2.5"):
            list(client.chat.completions.create(model=model, messages=USER, stream=True))
    # The original endpoint routes the same way.
    httpx.post(
        routed.url + "/api/chat",
        json={"model": "second/mistral", "messages": USER},
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
    ).read()
    assert models_and_keys(fake.requests) == [("gpt-4o-mini", f"Bearer {SERVER_KEY}")]
    assert models_and_keys(second.requests) == [
        ("meta-llama/llama-3.3-70b", f"Bearer {SECOND_KEY}"),
        ("qwen2.5", None),  # a route without a key sends none
        ("mistral", f"Bearer {SECOND_KEY}"),
    ]
    assert second.requests[0].headers["x-title"] == "relay test"
    assert all("x-title" not in request.headers for request in fake.requests)


def test_models_list_has_every_route_prefixed(
    fake: FakeUpstream, second: FakeUpstream, routed: RelayServer
) -> None:
    with sdk_client(routed) as client:
        assert sorted(model.id for model in client.models.list()) == [
            "gpt-fake",
            "local/gpt-fake",
            "second/gpt-fake",
        ]


def test_one_model_is_retrieved_by_its_prefixed_name(
    fake: FakeUpstream, second: FakeUpstream, routed: RelayServer, client: httpx.Client
) -> None:
    with sdk_client(routed) as sdk:
        assert sdk.models.retrieve("second/gpt-fake").id == "second/gpt-fake"
        assert sdk.models.retrieve("gpt-fake").id == "gpt-fake"
        with pytest.raises(openai.NotFoundError, match="does not exist, or this relay does not offer it"):
            sdk.models.retrieve("second/gpt-none")
    preflight = client.options(
        routed.url + "/v1/models/second/gpt-fake",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["Allow"] == "GET, OPTIONS"


def test_a_model_allowed_models_leaves_out_is_not_found(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, ALLOWED_MODELS="gpt-4o*")
    with sdk_client(relay) as sdk, pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("gpt-fake")


# -- retries ------------------------------------------------------------------------------------


def failing_then(failures: int, failure: Reply, success: Reply) -> Any:
    calls = itertools.count()
    return lambda request: failure if next(calls) < failures else success


def test_a_connection_reset_before_any_answer_is_retried_by_the_relay(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    # No SDK can see it: the relay tries again (docs/openai-api.md, "Retries").
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="2")
    fake.replies["gpt-test"] = failing_then(
        2, Reply(hang_up=True), Reply(body=openai_stream(["third", " time"]))
    )
    logged = len(relay.log_entries())
    with sdk_client(relay) as client:
        stream = client.chat.completions.create(model="gpt-test", messages=USER, stream=True)
        assert (
            "".join(event.choices[0].delta.content or "" for event in stream if event.choices) == "third time"
        )
    assert len(fake.requests) == 3
    attempts = [entry["message"] for entry in relay.log_entries()[logged:] if "attempt" in entry["message"]]
    assert [line.split(" failed")[0].split("attempt ")[1] for line in attempts] == ["1 of 3", "2 of 3"]


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(error_reply(503, b'{"error": {"message": "overloaded"}}'), id="503"),
        pytest.param(error_reply(429, b'{"error": {"message": "slow down"}}'), id="429"),
    ],
)
def test_an_upstream_429_or_5xx_is_retried_by_the_relay_for_the_original_route_only(
    fake: FakeUpstream, relay_factory: RelayFactory, failure: Reply
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="2")
    fake.replies["gpt-test"] = failing_then(2, failure, Reply(body=openai_stream(["third", " time"])))
    with httpx.Client(headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}, timeout=30) as client:
        assert (
            chat(client, relay.url).text == '{"model":"gpt-fake-0613"}third time'
        )  # the 2023 client: no retries
    assert len(fake.requests) == 3
    fake.reset()
    fake.replies["gpt-test"] = failing_then(2, failure, Reply(body=openai_stream(["never"])))
    response = v1_post(relay, {"model": "gpt-test", "messages": USER})
    assert response.status_code == failure.status  # an SDK's own retries take it from here
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("status", "retried"),
    [
        *(pytest.param(status, True, id=f"{status}-retried") for status in (429, 500, 502, 503, 504)),
        *(pytest.param(status, False, id=f"{status}-not") for status in (400, 401, 403, 404, 409, 422, 501)),
    ],
)
def test_which_statuses_are_retried(
    fake: FakeUpstream, relay_factory: RelayFactory, status: int, retried: bool
) -> None:
    # docs/openai-api.md, "Retries": on /api/chat a 429/500/502/503/504 is retried; any other
    # status is the answer. On /v1/ none is: the caller's SDK retries what it retries.
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="1")
    fake.replies["gpt-test"] = failing_then(
        1, error_reply(status, b'{"error": {"message": "refused"}}'), completion("second")
    )
    with httpx.Client(headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}, timeout=30) as client:
        reply = chat(client, relay.url)
    assert len(fake.requests) == (2 if retried else 1)
    assert reply.status == (200 if retried else status)
    fake.reset()
    fake.replies["gpt-test"] = failing_then(
        1, error_reply(status, b'{"error": {"message": "refused"}}'), completion("second")
    )
    assert v1_post(relay, {"model": "gpt-test", "messages": USER}).status_code == status
    assert len(fake.requests) == 1


def test_a_first_byte_timeout_is_not_retried(fake: FakeUpstream, relay_factory: RelayFactory) -> None:
    # README, "Retries": an upstream that was slow to answer is not asked again (the wait would double).
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="2", UPSTREAM_FIRST_BYTE_TIMEOUT="0.5")
    fake.replies["gpt-test"] = Reply(delay_headers=3.0, body=openai_stream(["late"]))
    response = v1_post(relay, {"model": "gpt-test", "messages": USER})
    assert response.status_code == 504
    assert "UPSTREAM_FIRST_BYTE_TIMEOUT" in response.json()["error"]["message"]
    assert len(fake.requests) == 1


def test_retries_run_out(fake: FakeUpstream, relay_factory: RelayFactory) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="2")
    fake.replies["gpt-test"] = error_reply(503, b'{"error": {"message": "still overloaded"}}')
    with httpx.Client(headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}, timeout=30) as client:
        reply = chat(client, relay.url)
    assert reply.status == 503 and "still overloaded" in reply.text
    assert len(fake.requests) == 3  # 1 + UPSTREAM_RETRIES


def test_retry_after_is_honoured_up_to_the_cap(fake: FakeUpstream, relay_factory: RelayFactory) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="2", UPSTREAM_RETRY_MAX_WAIT="1")
    asked_long = Reply(
        status=429, headers={"Content-Type": "application/json", "Retry-After": "30"}, body=[b"{}"]
    )
    fake.replies["gpt-test"] = failing_then(1, asked_long, completion("never"))
    with httpx.Client(headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}, timeout=30) as client:
        reply = chat(client, relay.url)
        assert reply.status == 429  # 30 s is over the 1 s cap: no retry, the 429 is passed on
        assert reply.headers["retry-after"] == "30"
        assert len(fake.requests) == 1

        asked_short = Reply(
            status=429, headers={"Content-Type": "application/json", "retry-after-ms": "300"}, body=[b"{}"]
        )
        fake.reset()
        fake.replies["gpt-test"] = failing_then(1, asked_short, completion("waited"))
        assert chat(client, relay.url).status == 200
    assert fake.requests[1].started - fake.requests[0].started >= 0.3


def test_a_failure_after_the_first_byte_is_never_retried(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_RETRIES="2")
    fake.replies["gpt-test"] = Reply(body=[sse(chunk("partial")), Reset()])
    reply = httpx.post(
        relay.url + "/api/chat",
        json={"model": "gpt-test", "messages": USER},
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
    )
    assert reply.text.endswith("[Error: the upstream closed the connection before the reply was complete]")
    assert len(fake.requests) == 1


# -- as for the original endpoint: secrets, limits, timeouts, cancellation, CORS, logs ------------


def v1_post(relay: RelayServer, payload: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        relay.url + "/v1/chat/completions",
        json=payload,
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}", **headers},
        timeout=30,
    )


def test_masked_key_is_redacted_in_relayed_errors(fake: FakeUpstream, private: RelayServer) -> None:
    masked = SERVER_KEY[:6] + "*" * 12 + SERVER_KEY[-4:]
    refusal = {
        "error": {"message": f"Incorrect API key provided: {masked}.", "type": "invalid_request_error"}
    }
    fake.replies["gpt-test"] = error_reply(401, json.dumps(refusal).encode())
    response = v1_post(private, {"model": "gpt-test", "messages": USER})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Incorrect API key provided: [redacted]."
    fake.replies["gpt-test"] = Reply(body=[sse(chunk("a")), sse(refusal)])
    streamed = v1_post(private, {"model": "gpt-test", "messages": USER, "stream": True})
    assert SERVER_KEY[-4:] not in streamed.text
    assert "Incorrect API key provided: [redacted]." in streamed.text


def test_rate_limit_headers_reach_the_caller(fake: FakeUpstream, private: RelayServer) -> None:
    headers = {
        "Content-Type": "application/json",
        "Retry-After": "20",
        "x-ratelimit-remaining-requests": "0",
        "x-request-id": "req_123",
        "set-cookie": "__cf_bm=secret",
    }
    fake.replies["gpt-test"] = Reply(status=429, headers=headers, body=[b'{"error": {"message": "slow"}}'])
    response = v1_post(private, {"model": "gpt-test", "messages": USER}, Origin="https://app.example")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "20"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert response.headers["x-request-id"] == "req_123"
    assert "set-cookie" not in response.headers
    assert "X-Ratelimit-Remaining-Requests" in response.headers["access-control-expose-headers"]


def test_multi_line_data_goes_out_on_several_data_lines(fake: FakeUpstream, private: RelayServer) -> None:
    fake.replies["gpt-test"] = Reply(body=[b'data: {"choices": [],\ndata:  "id": "x"}\n\n', sse("[DONE]")])
    streamed = v1_post(private, {"model": "gpt-test", "messages": USER, "stream": True})
    assert streamed.content == b'data: {"choices": [],\ndata:  "id": "x"}\n\ndata: [DONE]\n\n'


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param(
            {"model": "m", "messages": USER, "tools": [json.loads("[" * 300 + "]" * 300)]},
            '"tools" is nested',
            id="deep",
        ),
        pytest.param({"model": "m", "messages": []}, '"messages" must be a non-empty list', id="no-messages"),
        pytest.param({"messages": USER}, '"model" must be a non-empty string', id="no-model"),
    ],
)
def test_bad_bodies_are_400_in_openai_shape(
    fake: FakeUpstream, private: RelayServer, payload: dict[str, Any], message: str
) -> None:
    response = v1_post(private, payload)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert fake.requests == []


def test_token_limits(fake: FakeUpstream, relay_factory: RelayFactory) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, MAX_TOKENS_LIMIT="100")
    fake.replies["gpt-test"] = completion("ok")
    assert v1_post(relay, {"model": "gpt-test", "messages": USER, "n": 3}).status_code == 400
    assert v1_post(relay, {"model": "gpt-test", "messages": USER, "n": True}).status_code == 400  # not 1
    assert v1_post(relay, {"model": "gpt-test", "messages": USER, "max_tokens": 5.0}).status_code == 200
    assert v1_post(relay, {"model": "gpt-test", "messages": USER}).status_code == 200
    assert [request.json.get("max_tokens") for request in fake.requests] == [5, 100]


def test_a_limit_above_the_default_caps_what_is_asked(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    # On /v1/ the owner's limit is the cap where the caller set none (README), whatever its size.
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, MAX_TOKENS_LIMIT="4096")
    fake.replies["gpt-test"] = completion("ok")
    assert v1_post(relay, {"model": "gpt-test", "messages": USER}).status_code == 200
    assert v1_post(relay, {"model": "gpt-test", "messages": USER, "max_tokens": 1}).status_code == 200
    refused = v1_post(relay, {"model": "gpt-test", "messages": USER, "max_completion_tokens": 4097})
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "invalid_request_error"
    assert [request.json.get("max_tokens") for request in fake.requests] == [4096, 1]


def test_the_body_limit_is_an_invalid_request_in_openai_shape(private: RelayServer) -> None:
    response = httpx.post(
        private.url + "/v1/chat/completions",
        content=b'{"model": "gpt-test", "messages": [' + b" " * (1024 * 1024) + b"]}",
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "MAX_BODY_BYTES" in error["message"]


def test_owner_cap_uses_openais_field_for_openai_hosts() -> None:
    from relay.config import Route
    from relay.endpoints.chat_completions import token_field as _token_field

    assert _token_field(Route(prefix="", base_url="https://api.openai.com/v1")) == "max_completion_tokens"
    assert (
        _token_field(Route(prefix="", base_url="https://x.openai.azure.com/openai/v1"))
        == "max_completion_tokens"
    )
    assert _token_field(Route(prefix="g/", base_url="https://api.groq.com/openai/v1")) == "max_tokens"


@pytest.mark.parametrize(
    "steps",
    [pytest.param([b'{"choices": [', Reset()], id="reset"), pytest.param([b'{"choices": ['], id="silent")],
)
def test_a_whole_answer_cut_short_is_a_gateway_error_not_a_500(
    fake: FakeUpstream, relay_factory: RelayFactory, steps: list[Step]
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_IDLE_TIMEOUT="1", UPSTREAM_RETRIES="0")
    from tests.fake_upstream import Stall

    fake.replies["gpt-test"] = Reply(headers={"Content-Type": "application/json"}, body=[*steps, Stall()])
    response = v1_post(relay, {"model": "gpt-test", "messages": USER})
    assert response.status_code in (502, 504)
    assert "part way" in response.json()["error"]["message"]


def test_stream_cancelled_by_the_client_frees_the_upstream(fake: FakeUpstream, private: RelayServer) -> None:
    fake.replies["gpt-test"] = Reply(body=openai_stream([f" t{i}" for i in range(200)], pace=0.05))
    with httpx.stream(
        "POST",
        private.url + "/v1/chat/completions",
        json={"model": "gpt-test", "messages": USER, "stream": True},
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}", "User-Agent": "v1-cancel-test"},
    ) as response:
        request_id = response.headers["x-relay-request-id"]
        for data in response.iter_raw():
            if b" t2" in data:
                break
    assert fake.wait_for(lambda: fake.requests[0].client_closed is not None, timeout=2)
    assert fake.requests[0].finished is None
    entry = private.log_of(request_id)
    assert (entry["outcome"], entry["httpRequest"]["requestUrl"], entry["model"]) == (
        "client_gone",
        "/v1/chat/completions",
        "gpt-test",
    )


def test_stream_silent_mid_way_ends_with_an_error_event(
    fake: FakeUpstream, relay_factory: RelayFactory
) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, UPSTREAM_IDLE_TIMEOUT="1")
    from tests.fake_upstream import Stall

    fake.replies["gpt-test"] = Reply(body=[sse(chunk("a")), Stall()])
    streamed = v1_post(relay, {"model": "gpt-test", "messages": USER, "stream": True})
    last = streamed.text.strip().split("\n\n")[-1]
    assert json.loads(last.removeprefix("data: "))["error"]["message"].startswith(
        "the upstream sent nothing for 1 s"
    )


def test_cors_on_the_openai_endpoint(fake: FakeUpstream, relay_factory: RelayFactory) -> None:
    relay = relay_factory(ACCESS_TOKENS=ACCESS_TOKEN, ALLOWED_ORIGINS="https://app.example")
    preflight = httpx.options(
        relay.url + "/v1/chat/completions",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os, x-stainless-retry-count",
        },
    )
    assert preflight.status_code == 204
    assert "x-stainless-retry-count" in preflight.headers["access-control-allow-headers"]
    fake.replies["gpt-test"] = Reply(body=openai_stream(["cors"]))
    streamed = v1_post(
        relay, {"model": "gpt-test", "messages": USER, "stream": True}, Origin="https://app.example"
    )
    assert streamed.headers["access-control-allow-origin"] == "https://app.example"
    refused = v1_post(relay, {"model": "gpt-test", "messages": USER}, Origin="https://evil.example")
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "permission_error"


def test_models_list_with_no_key_anywhere_is_401(fake: FakeUpstream, relay_factory: RelayFactory) -> None:
    relay = relay_factory(OPENAI_API_KEY=None)
    response = httpx.get(relay.url + "/v1/models")
    assert response.status_code == 401
    assert fake.requests == []


def test_a_callers_key_goes_only_to_the_default_route_when_listing_models(
    fake: FakeUpstream, second: FakeUpstream, relay_factory: RelayFactory
) -> None:
    routes = [{"prefix": "local/", "base_url": second.base_url, "key_env": None}]
    relay = relay_factory(UPSTREAMS=json.dumps(routes), OPENAI_API_KEY=None)
    response = httpx.get(relay.url + "/v1/models", headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    assert sorted(model["id"] for model in response.json()["data"]) == ["gpt-fake", "local/gpt-fake"]
    assert fake.requests[0].headers["authorization"] == f"Bearer {CLIENT_KEY}"
    assert "authorization" not in second.requests[0].headers


def test_retries_stay_within_the_first_byte_budget(fake: FakeUpstream, relay_factory: RelayFactory) -> None:
    # Budget for all attempts together: connect + first byte = 2 s. Each attempt takes 0.3 s,
    # less than the MIN_ATTEMPT_SECONDS the relay wants left before it starts one, so every
    # attempt it starts can finish and the answer is the upstream's own 503, not the 504 of an
    # attempt the budget cut (on a busy machine, 0.2 s of slack per attempt).
    relay = relay_factory(
        ACCESS_TOKENS=ACCESS_TOKEN,
        UPSTREAM_RETRIES="5",
        UPSTREAM_CONNECT_TIMEOUT="0.5",
        UPSTREAM_FIRST_BYTE_TIMEOUT="1.5",
    )
    with httpx.Client(headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}, timeout=30) as client:
        chat(client, relay.url, model="gpt-warm")  # the server's first request, untimed
        fake.requests.clear()
        fake.replies["gpt-test"] = Reply(
            status=503, headers={"Content-Type": "application/json"}, body=[b"{}"], delay_headers=0.3
        )
        started = time.monotonic()
        reply = chat(client, relay.url)  # the original route: the relay retries a 503 for its client
        took = time.monotonic() - started
    assert reply.status == 503
    assert took < 2.0 + 0.5, f"{took:.2f} s"  # 0.5 s of slack for a busy machine
    assert 2 <= len(fake.requests) < 6  # retried, but not all five retries fit


def test_a_failed_model_list_never_shows_the_server_key(fake: FakeUpstream, sdk: openai.OpenAI) -> None:
    # An upstream that echoes the key it was sent, whole, in its error.
    echoed = json.dumps({"error": {"message": f"Incorrect API key provided: {SERVER_KEY}"}}).encode()
    fake.replies["/models"] = Reply(status=401, headers={"Content-Type": "application/json"}, body=[echoed])
    with pytest.raises(openai.AuthenticationError) as raised:
        sdk.models.list()
    assert SERVER_KEY not in str(raised.value)
    assert fake.requests[0].headers["authorization"] == f"Bearer {SERVER_KEY}"  # it was the key sent


def test_a_whole_completion_where_a_stream_was_asked_comes_as_a_stream(
    fake: FakeUpstream, sdk: openai.OpenAI
) -> None:
    """An upstream that ignores `stream`: the SDK still gets its stream, nothing of the answer lost."""
    reply = completion("all at once")
    body = json.loads(reply.body[0])  # type: ignore[arg-type]
    body["choices"].append(
        {
            "index": 1,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            "finish_reason": "tool_calls",
        }
    )
    fake.replies["gpt-test"] = Reply(
        headers={"Content-Type": "application/json"}, body=[json.dumps(body).encode()]
    )
    chunks = list(
        sdk.chat.completions.create(
            model="gpt-test", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    first = [c.choices[0] for c in chunks if c.choices and c.choices[0].index == 0]
    second = [c.choices[0] for c in chunks if c.choices and c.choices[0].index == 1]
    assert "".join(choice.delta.content or "" for choice in first) == "all at once"
    assert [choice.finish_reason for choice in first] == [None, "stop"]
    calls = second[0].delta.tool_calls
    assert calls is not None and calls[0].index == 0 and calls[0].function is not None
    assert calls[0].function.name == "f"
    assert second[-1].finish_reason == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 5
    assert {c.object for c in chunks} == {"chat.completion.chunk"}


@pytest.mark.parametrize("status", [301, 307, 600])
def test_a_status_the_relay_cannot_pass_on_is_a_502_naming_the_base_url(
    fake: FakeUpstream, sdk: openai.OpenAI, status: int
) -> None:
    fake.replies["gpt-test"] = Reply(
        status=status, reason="Moved", headers={"Location": "https://elsewhere.example/v1"}, body=[]
    )
    with pytest.raises(openai.APIStatusError) as raised:
        sdk.chat.completions.create(model="gpt-test", messages=USER)
    assert raised.value.status_code == 502
    assert f"answered {status}, which the relay cannot pass on; check OPENAI_BASE_URL" in str(raised.value)
