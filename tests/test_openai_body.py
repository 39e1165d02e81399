"""The /v1/chat/completions body (relay/validation/chat_body.py) and the JSON checks every body shares
(relay/validation/json_values.py): pure, no network."""

from __future__ import annotations

import json
from typing import Any

import pytest

from relay.errors import BadRequest
from relay.validation.chat_body import (
    CHAT_FIELDS,
    check_fields,
    check_one_choice,
    parse_chat_completions,
)
from relay.validation.json_values import MAX_DEPTH, check_depth, describe, is_number, kind, token_count

USER = [{"role": "user", "content": "Hi"}]


def refused(call: Any, *args: Any) -> str:
    with pytest.raises(BadRequest) as caught:
        call(*args)
    assert caught.value.status == 400
    return caught.value.message


def nested(levels: int, inner: Any = 1) -> Any:
    """`inner` inside `levels` containers, lists and objects in turn."""
    value = inner
    for level in range(levels):
        value = [value] if level % 2 else {"k": value}
    return value


# -- parse_chat_completions ----------------------------------------------------------------------


def test_the_body_is_passed_on_as_it_is() -> None:
    data = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}, "not checked"],
        "stream": True,
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "n_predict": 5,  # a provider's own field: passed on (MAX_TOKENS_LIMIT is check_fields' concern)
    }
    request = parse_chat_completions(json.dumps(data).encode())
    assert request.data == data
    assert request.model == "gpt-4o-mini"
    assert request.stream is True


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        pytest.param(True, True, id="true"),
        pytest.param(False, False, id="false"),
        pytest.param("true", False, id="string"),
        pytest.param(1, False, id="one"),
        pytest.param(None, False, id="null"),
    ],
)
def test_only_stream_true_is_a_stream(stream: Any, expected: bool) -> None:
    request = parse_chat_completions(json.dumps({"model": "m", "messages": USER, "stream": stream}).encode())
    assert request.stream is expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"", "The request body is empty; send a JSON object with model and messages.", id="empty"),
        pytest.param(b"{", "The request body is not valid JSON; send a JSON object with model and messages.", id="not-json"),
        pytest.param(b"[1]", "The request body must be a JSON object, got a list.", id="list"),
        pytest.param(b'{"messages": [{}]}', '"model" must be a non-empty string such as "gpt-4o-mini", got null.', id="no-model"),
        pytest.param(b'{"model": " ", "messages": [{}]}', '"model" must be a non-empty string such as "gpt-4o-mini", got an empty string.', id="blank-model"),
        pytest.param(b'{"model": "m"}', '"messages" must be a non-empty list of messages.', id="no-messages"),
        pytest.param(b'{"model": "m", "messages": []}', '"messages" must be a non-empty list of messages.', id="empty-messages"),
        pytest.param(b'{"model": "m", "messages": {"role": "user"}}', '"messages" must be a non-empty list of messages.', id="messages-object"),
        pytest.param(json.dumps({"model": "m", "messages": USER, "tools": nested(MAX_DEPTH + 1)}).encode(),
                     '"tools" is nested more than 32 levels deep.', id="too-deep"),
    ],
)  # fmt: skip
def test_a_body_the_relay_cannot_act_on_is_refused(body: bytes, message: str) -> None:
    assert refused(parse_chat_completions, body) == message


@pytest.mark.parametrize(
    ("fields", "asked"),
    [
        pytest.param({}, {}, id="none"),
        pytest.param({"max_tokens": None, "max_completion_tokens": None}, {}, id="nulls"),
        pytest.param({"max_tokens": 100}, {"max_tokens": 100}, id="max-tokens"),
        pytest.param({"max_completion_tokens": 2048.0}, {"max_completion_tokens": 2048}, id="integral-float"),
        pytest.param({"max_tokens": 1, "max_completion_tokens": 2}, {"max_tokens": 1, "max_completion_tokens": 2}, id="both"),
        pytest.param({"n_predict": 5}, {}, id="other-servers-fields-are-not-read"),
    ],
)  # fmt: skip
def test_asked_tokens_are_the_token_fields_the_caller_set(
    fields: dict[str, Any], asked: dict[str, int]
) -> None:
    request = parse_chat_completions(json.dumps({"model": "m", "messages": USER, **fields}).encode())
    got = request.asked_tokens()
    assert got == asked
    assert all(type(value) is int for value in got.values())


def test_an_asked_count_that_is_not_one_names_its_field() -> None:
    request = parse_chat_completions(b'{"model": "m", "messages": [{}], "max_completion_tokens": 0.5}')
    message = refused(request.asked_tokens)
    assert message == '"max_completion_tokens" must be a positive whole number, got 0.5.'


# -- check_fields, under MAX_TOKENS_LIMIT --------------------------------------------------------

# OpenAI's chat completions parameters whose cost the token cap bounds: they pass.
BOUNDED = [
    "model", "messages", "stream", "stream_options", "n",
    "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed",
    "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
    "tools", "tool_choice", "parallel_tool_calls", "functions", "function_call",
    "response_format", "reasoning_effort", "verbosity", "modalities", "audio",
    "user", "safety_identifier", "prompt_cache_key", "metadata", "store", "service_tier",
]  # fmt: skip
# Fields with which the cap does not hold (other servers' length fields, priced extras).
UNBOUNDED = ["n_predict", "max_new_tokens", "options", "min_tokens", "ignore_eos", "best_of", "prediction",
             "web_search_options", "MODEL", "Max_Tokens"]  # fmt: skip


def not_passed(name: str) -> str:
    return (
        f'"{name}" is not passed on by this relay while it caps tokens (MAX_TOKENS_LIMIT): it may make a '
        "reply cost more than its tokens. Its owner can allow it (ALLOWED_FIELDS)."
    )


def test_every_bounded_field_passes() -> None:
    assert sorted(CHAT_FIELDS) == sorted(BOUNDED)
    check_fields(dict.fromkeys(BOUNDED, 1) | {"service_tier": "default"}, CHAT_FIELDS, ())


@pytest.mark.parametrize("name", UNBOUNDED)
def test_a_field_the_cap_does_not_bound_is_refused_by_name(name: str) -> None:
    data = {"model": "m", "messages": USER, name: 1}
    assert refused(check_fields, data, CHAT_FIELDS, ()) == not_passed(name)
    check_fields(data, CHAT_FIELDS, (name,))  # unless its owner allows it
    assert refused(check_fields, data, CHAT_FIELDS, ("other",)) == not_passed(name)


def test_a_long_field_name_is_quoted_64_characters_long() -> None:
    name = "f" * 100
    assert refused(check_fields, {name: 1}, CHAT_FIELDS, ()) == not_passed("f" * 64)


@pytest.mark.parametrize(
    ("tier", "allowed", "passes"),
    [
        pytest.param(None, (), True, id="none"),
        pytest.param("auto", (), True, id="auto"),
        pytest.param("default", (), True, id="default"),
        pytest.param("flex", (), True, id="flex"),
        pytest.param("priority", (), False, id="priority-costs-more"),
        pytest.param("scale", (), False, id="scale"),
        pytest.param("priority", ("service_tier",), True, id="allowed-by-its-owner"),
        pytest.param("priority", ("priority",), False, id="a-value-is-not-a-field"),
    ],
)
def test_a_service_tier_that_costs_more_is_refused(tier: Any, allowed: tuple[str, ...], passes: bool) -> None:
    data = {"model": "m", "service_tier": tier}
    if passes:
        check_fields(data, CHAT_FIELDS, allowed)
    else:
        message = '"service_tier" must be one of auto, default, flex on this relay (MAX_TOKENS_LIMIT).'
        assert refused(check_fields, data, CHAT_FIELDS, allowed) == message


@pytest.mark.parametrize(
    ("n", "passes"),
    [
        pytest.param(None, True, id="absent"),
        pytest.param(1, True, id="one"),
        pytest.param(1.0, True, id="one-as-float"),
        pytest.param(2, False, id="two"),
        pytest.param(0, False, id="zero"),
        pytest.param(True, False, id="true-is-not-one"),
        pytest.param("1", False, id="string"),
    ],
)
def test_one_choice_per_request_under_a_token_limit(n: Any, passes: bool) -> None:
    data = {} if n is None else {"n": n}
    if passes:
        check_one_choice(data)
    else:
        message = '"n" must be 1 on this relay: each choice is another reply (MAX_TOKENS_LIMIT).'
        assert refused(check_one_choice, data) == message


# -- json_values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, "null", id="null"),
        pytest.param(True, "true/false", id="true"),
        pytest.param(False, "true/false", id="false"),
        pytest.param("", "an empty string", id="empty-string"),
        pytest.param(" \t", "an empty string", id="blank-string"),
        pytest.param("sk-secret", "a string", id="string-never-quoted"),
        pytest.param(0, "a number", id="int"),
        pytest.param(1.5, "a number", id="float"),
        pytest.param([], "an empty list", id="empty-list"),
        pytest.param([0], "a list", id="list"),
        pytest.param({}, "an object", id="object"),
    ],
)
def test_kind_names_a_values_json_type(value: Any, expected: str) -> None:
    assert kind(value) == expected


@pytest.mark.parametrize(
    ("value", "number", "described"),
    [
        pytest.param(0, True, "0", id="zero"),
        pytest.param(-2.5, True, "-2.5", id="float"),
        pytest.param(10**400, True, repr(10**400), id="int-beyond-any-float"),
        pytest.param(True, False, "true/false", id="bool"),
        pytest.param(float("inf"), False, "a number", id="infinity"),
        pytest.param(float("nan"), False, "a number", id="nan"),
        pytest.param("1", False, "a string", id="string"),
        pytest.param(None, False, "null", id="null"),
    ],
)
def test_is_number_as_json_means_it(value: Any, number: bool, described: str) -> None:
    assert is_number(value) is number
    assert describe(value) == described


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(1, 1, id="one"),
        pytest.param(2048.0, 2048, id="integral-float"),
        pytest.param(10**20, 10**20, id="large"),
    ],
)
def test_token_count_takes_a_positive_whole_number(value: Any, expected: int) -> None:
    count = token_count("max_tokens", value)
    assert count == expected and type(count) is int


@pytest.mark.parametrize(
    ("value", "got"),
    [
        pytest.param(0, "0", id="zero"),
        pytest.param(-1, "-1", id="negative"),
        pytest.param(0.5, "0.5", id="fraction-below-one"),
        pytest.param(2048.5, "2048.5", id="fraction"),
        pytest.param(True, "true/false", id="true"),
        pytest.param("10", "a string", id="string"),
        pytest.param(None, "null", id="null"),
        pytest.param(float("inf"), "a number", id="infinity"),
    ],
)
def test_token_count_refuses_anything_else_naming_the_field(value: Any, got: str) -> None:
    message = refused(token_count, "max_output_tokens", value)
    assert message == f'"max_output_tokens" must be a positive whole number, got {got}.'


@pytest.mark.parametrize(
    ("value", "passes"),
    [
        pytest.param(nested(MAX_DEPTH), True, id="at-the-limit"),
        pytest.param(nested(MAX_DEPTH - 1, []), True, id="at-the-limit-empty-innermost"),
        pytest.param(nested(MAX_DEPTH + 1), False, id="one-over"),
        pytest.param(nested(MAX_DEPTH, []), False, id="one-over-empty-innermost"),
        pytest.param(nested(200), False, id="far-over"),
    ],
)
def test_up_to_max_depth_containers_pass(value: Any, passes: bool) -> None:
    """MAX_DEPTH containers, one inside the other, pass; one more is refused, naming the field."""
    if passes:
        check_depth(value, "tools")
    else:
        assert refused(check_depth, value, "tools") == '"tools" is nested more than 32 levels deep.'


def test_depth_is_the_deepest_branch_not_the_first() -> None:
    wide = {"shallow": 1, "list": [1, "x", None], "deep": nested(MAX_DEPTH)}
    assert refused(check_depth, wide, "metadata") == '"metadata" is nested more than 32 levels deep.'
    check_depth({"shallow": 1, "deep": nested(MAX_DEPTH - 1)}, "metadata")


@pytest.mark.parametrize(
    "value", [pytest.param(1, id="scalar"), pytest.param("x", id="string"), pytest.param(None, id="null")]
)
def test_a_scalar_has_no_depth(value: Any) -> None:
    check_depth(value, "x")
