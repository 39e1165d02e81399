"""Request validation: every bad body is a 400 whose message names the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from relay.access.policy import token_cap
from relay.errors import BadRequest
from relay.validation.original_body import DEFAULT_MAX_TOKENS, ChatRequest, parse_chat_request

USER = [{"role": "user", "content": "Hi"}]
DEEP: Any = []
for _ in range(40):
    DEEP = [DEEP]


def body(**fields: Any) -> bytes:
    return json.dumps({"model": "gpt-4o-mini", "messages": USER, **fields}).encode()


def sent(request: ChatRequest) -> Any:
    """The upstream's body, as the endpoint builds it without a token limit."""
    max_tokens = token_cap(None, "max_tokens", request.max_tokens, DEFAULT_MAX_TOKENS) or 0
    return json.loads(request.upstream_body(request.model, max_tokens))


def test_defaults_and_forwarded_fields() -> None:
    request = parse_chat_request(body())
    assert request.model == "gpt-4o-mini"
    assert request.options == {"temperature": 0.5}
    assert request.max_tokens is None
    assert sent(request) == {
        "model": "gpt-4o-mini",
        "messages": USER,
        "temperature": 0.5,
        "max_tokens": 2048,
        "stream": True,
        "n": 1,
    }


def test_optional_fields_pass_through_and_unknown_ones_do_not() -> None:
    request = parse_chat_request(
        body(
            temperature=0,
            max_tokens=10,
            top_p=1,
            frequency_penalty=-2,
            presence_penalty=2.0,
            stop=["\n", "END"],
            stream=False,
            n=3,
            tools=[],
        )
    )
    sent_body = sent(request)
    assert sent_body["temperature"] == 0 and sent_body["max_tokens"] == 10 and sent_body["top_p"] == 1
    assert sent_body["frequency_penalty"] == -2 and sent_body["presence_penalty"] == 2.0
    assert sent_body["stop"] == ["\n", "END"]
    assert sent_body["stream"] is True and sent_body["n"] == 1
    assert "tools" not in sent_body


@pytest.mark.parametrize("usage", [pytest.param(True, id="asked"), pytest.param(False, id="not-asked")])
def test_stream_usage_asks_for_the_usage_chunk(usage: bool) -> None:
    """STREAM_USAGE: OpenAI's stream_options.include_usage, for the request log; nothing otherwise."""
    request = parse_chat_request(body())
    sent_body = json.loads(request.upstream_body("upstream-name", 7, stream_usage=usage))
    assert sent_body.pop("stream_options", None) == ({"include_usage": True} if usage else None)
    assert sent_body == {
        "model": "upstream-name", "messages": USER, "temperature": 0.5, "max_tokens": 7, "stream": True, "n": 1
    }  # fmt: skip


def test_api_key_is_taken_but_never_forwarded_or_shown() -> None:
    request = parse_chat_request(body(apiKey="sk-from-client"))
    assert request.api_key == "sk-from-client"
    assert "sk-from-client" not in json.dumps(sent(request))
    assert "sk-from-client" not in repr(request)


@pytest.mark.parametrize("key", ["", None])
def test_empty_api_key_means_none(key: Any) -> None:
    assert parse_chat_request(body(apiKey=key)).api_key is None


def test_content_parts_and_null_content_are_forwarded_as_given() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
    ]
    request = parse_chat_request(json.dumps({"model": "m", "messages": messages}).encode())
    assert sent(request)["messages"] == messages


def test_integral_float_max_tokens_is_an_integer() -> None:
    assert parse_chat_request(body(max_tokens=100.0)).max_tokens == 100


def test_null_optional_fields_take_their_defaults() -> None:
    request = parse_chat_request(body(temperature=None, max_tokens=None, top_p=None, stop=None))
    assert request.options == {"temperature": 0.5}
    assert sent(request)["max_tokens"] == 2048


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(b"", "The request body is empty; send a JSON object with model and messages.", id="empty-body"),
        pytest.param(b"  \n", "The request body is empty; send a JSON object with model and messages.", id="blank-body"),
        pytest.param(b"{not json", "The request body is not valid JSON; send a JSON object with model and messages.", id="invalid-json"),
        pytest.param(b'{"model": NaN}', "The request body is not valid JSON; send a JSON object with model and messages.", id="nan"),
        pytest.param(b"\xff\xfe{}", "The request body is not valid JSON; send a JSON object with model and messages.", id="not-utf8"),
        pytest.param(b"[]", "The request body must be a JSON object, got an empty list.", id="array"),
        pytest.param(b'"hi"', "The request body must be a JSON object, got a string.", id="string"),
        pytest.param(b'{"messages": []}', '"model" must be a non-empty string such as "gpt-4o-mini", got null.', id="model-missing"),
        pytest.param(body(model=""), '"model" must be a non-empty string such as "gpt-4o-mini", got an empty string.', id="model-empty"),
        pytest.param(body(model=4), '"model" must be a non-empty string such as "gpt-4o-mini", got a number.', id="model-number"),
        pytest.param(body(messages=None), '"messages" must be a non-empty list of {"role": ..., "content": ...} objects, got null.', id="messages-missing"),
        pytest.param(body(messages=[]), '"messages" must be a non-empty list of {"role": ..., "content": ...} objects, got an empty list.', id="messages-empty"),
        pytest.param(body(messages="hi"), '"messages" must be a non-empty list of {"role": ..., "content": ...} objects, got a string.', id="messages-string"),
        pytest.param(body(messages=["hi"]), '"messages[0]" must be an object with "role" and "content", got a string.', id="message-string"),
        pytest.param(body(messages=[{"content": "x"}]), '"messages[0].role" must be a non-empty string such as "user", got null.', id="role-missing"),
        pytest.param(body(messages=[{"role": 1, "content": "x"}]), '"messages[0].role" must be a non-empty string such as "user", got a number.', id="role-number"),
        pytest.param(body(messages=[*USER, {"role": "user"}]), '"messages[1].content" is missing; send a string or a list of content parts.', id="content-missing"),
        pytest.param(body(messages=[{"role": "user", "content": 5}]), '"messages[0].content" must be a string or a list of content parts, got a number.', id="content-number"),
        pytest.param(body(messages=[{"role": "user", "content": [{"text": "x"}]}]), '"messages[0].content[0]" must be a content part object with a "type" such as "text" or "image_url".', id="part-without-type"),
        pytest.param(body(messages=[{"role": "user", "content": ["x"]}]), '"messages[0].content[0]" must be a content part object with a "type" such as "text" or "image_url".', id="part-string"),
        pytest.param(body(temperature=2.5), '"temperature" must be a number from 0 to 2, got 2.5.', id="temperature-high"),
        pytest.param(body(temperature=-0.1), '"temperature" must be a number from 0 to 2, got -0.1.', id="temperature-low"),
        pytest.param(body(temperature="0.5"), '"temperature" must be a number from 0 to 2, got a string.', id="temperature-string"),
        pytest.param(body(temperature=True), '"temperature" must be a number from 0 to 2, got true/false.', id="temperature-bool"),
        pytest.param(body(top_p=1.5), '"top_p" must be a number from 0 to 1, got 1.5.', id="top-p"),
        pytest.param(body(frequency_penalty=-3), '"frequency_penalty" must be a number from -2 to 2, got -3.', id="frequency-penalty"),
        pytest.param(body(presence_penalty=[]), '"presence_penalty" must be a number from -2 to 2, got an empty list.', id="presence-penalty"),
        pytest.param(body(max_tokens=0), '"max_tokens" must be a positive whole number, got 0.', id="max-tokens-zero"),
        pytest.param(body(max_tokens=-5), '"max_tokens" must be a positive whole number, got -5.', id="max-tokens-negative"),
        pytest.param(body(max_tokens=1.5), '"max_tokens" must be a positive whole number, got 1.5.', id="max-tokens-fraction"),
        pytest.param(body(max_tokens="10"), '"max_tokens" must be a positive whole number, got a string.', id="max-tokens-string"),
        pytest.param(body(max_tokens=False), '"max_tokens" must be a positive whole number, got true/false.', id="max-tokens-bool"),
        pytest.param(body(stop=5), '"stop" must be a string or a list of strings, got a number.', id="stop-number"),
        pytest.param(body(stop=["a", 1]), '"stop" must be a string or a list of strings, got a list.', id="stop-mixed"),
        pytest.param(body(apiKey=123), '"apiKey" must be a string, got a number.', id="api-key-number"),
        pytest.param(body(apiKey="sk key"), '"apiKey" must be an API key: visible ASCII characters, no spaces.', id="api-key-with-a-space"),
        pytest.param(body(stop={"a": 1}), '"stop" must be a string or a list of strings, got an object.', id="stop-object"),
        pytest.param(body(messages={"role": "user"}), '"messages" must be a non-empty list of {"role": ..., "content": ...} objects, got an object.', id="messages-object"),
        pytest.param(body(messages=[{"role": "user", "content": [{"type": "text", "x": DEEP}]}]), '"messages[0]" is nested more than 32 levels deep.', id="message-too-deep"),
    ],
)  # fmt: skip
def test_bad_requests_name_the_field(raw: bytes, message: str) -> None:
    """Each message names the field, what it must be and what it was (its kind, never its text)."""
    with pytest.raises(BadRequest) as caught:
        parse_chat_request(raw)
    assert caught.value.status == 400
    assert caught.value.message == message


def test_message_never_quotes_a_value_that_may_be_secret() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_chat_request(body(temperature="sk-secret-looking"))
    assert "sk-secret-looking" not in caught.value.message


@pytest.mark.parametrize(
    ("limit", "asked", "default", "expected"),
    [
        pytest.param(None, None, 2048, 2048, id="no-limit-default"),
        pytest.param(None, 9000, 2048, 9000, id="no-limit-asked"),
        pytest.param(500, None, 2048, 500, id="limit-lowers-the-default"),
        pytest.param(4096, None, 2048, 2048, id="limit-never-raises-the-default"),
        pytest.param(4096, 4096, 2048, 4096, id="asked-at-the-limit"),
        pytest.param(100, None, None, 100, id="no-default-the-limit-caps"),
        pytest.param(None, None, None, None, id="nothing-set"),
        pytest.param(100, 1, None, 1, id="one"),
    ],
)
def test_token_cap(limit: int | None, asked: int | None, default: int | None, expected: int | None) -> None:
    assert token_cap(limit, "max_tokens", asked, default) == expected


def test_a_count_over_the_limit_is_refused_naming_the_field() -> None:
    with pytest.raises(BadRequest, match=r'"max_completion_tokens" must be at most 100 on this relay'):
        token_cap(100, "max_completion_tokens", 101, None)
