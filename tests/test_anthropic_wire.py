"""Anthropic's Messages API without a network: its stream passed on (relay/formats/anthropic_events.py),
its body under MAX_TOKENS_LIMIT (relay/validation/messages_body.py), its error shape, who pays and
which route serves a model. The fast tests `./dev mutate` runs for these modules; the endpoint
end to end, with the SDK and Claude Code, is tests/test_anthropic.py and tests/test_claude_code.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anthropic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.access.policy import anthropic_key, check_access_token, choose_key
from relay.access.usage import Usage
from relay.config import Route, load_settings
from relay.errors import BadRequest, MissingApiKey, Unauthorized
from relay.formats.anthropic_events import (
    MessagesPassThrough,
    error_event,
    message_as_events,
    message_of,
)
from relay.formats.encoding import Tally, encode, named
from relay.formats.error_shapes import anthropic_error, anthropic_error_type, openai_error
from relay.upstream.routes import Router
from relay.validation.messages_body import check_messages_fields, client_tool, parse_messages
from tests.fake_replies import anthropic_events, anthropic_message


def passed_on(*reads: Sequence[dict[str, Any] | bytes]) -> tuple[list[bytes], MessagesPassThrough]:
    """What the encoder writes for these upstream reads (each a list of events), then the body's end,
    read as the stream loop reads them: no more once the reply is finished."""
    encoder, out = MessagesPassThrough(), list[bytes]()
    for read in reads:
        payloads = [event if isinstance(event, bytes) else json.dumps(event).encode() for event in read]
        encode(encoder, payloads, out, Tally(), Usage().messages_event)
        if encoder.finished:
            break
    if not encoder.finished:
        encoder.end(out)
    return out, encoder


def test_each_read_is_one_write_of_named_events_and_message_stop_ends_it() -> None:
    start, *rest = anthropic_events(["a", "b"])
    out, encoder = passed_on([start], rest, [{"type": "content_block_delta", "index": 0}])
    assert out[0] == b"event: message_start\ndata: " + json.dumps(start).encode() + b"\n\n"
    # The read where the model's first delta comes is two writes: what came before it (not yet the
    # reply, for the log's first_token_ms), then the rest; what came after message_stop is not read.
    lead, reply = out[1:]
    assert lead == b"".join(named(event["type"], json.dumps(event).encode()) for event in rest[:2])
    assert encoder.packet is lead
    assert reply.startswith(b"event: content_block_delta\n") and reply.count(b"\n\n") == len(rest) - 2
    assert reply.endswith(b'event: message_stop\ndata: {"type": "message_stop"}\n\n')
    assert (encoder.finished, encoder.replied, encoder.error) == (True, True, None)
    out, encoder = passed_on([start, *rest])  # in one read
    assert len(out) == 2 and out[0] is encoder.packet and out[1].startswith(b"event: content_block_delta")


def test_data_passes_byte_for_byte_and_several_lines_stay_several() -> None:
    payload = b'{"type": "content_block_delta",\n "delta": {"type": "text_delta", "text": "\xe2\x80\xa8 x"}}'
    out, _ = passed_on([payload])
    assert (
        out[0]
        == b'event: content_block_delta\ndata: {"type": "content_block_delta",\ndata:  "delta": {"type": "text_delta", "text": "\xe2\x80\xa8 x"}}\n\n'
    )


@pytest.mark.parametrize("kind", [7, None, "a\nb", "caf\u00e9"])
def test_an_event_whose_type_cannot_name_it_goes_unnamed(kind: Any) -> None:
    out, _ = passed_on([{"type": kind, "x": 1}])
    assert out[0].startswith(b"data: {")


def test_a_stream_without_message_stop_ends_with_an_error_event_and_one_with_nothing_says_nothing() -> None:
    out, encoder = passed_on(anthropic_events(["a"])[:4])
    assert out[-1] == (
        b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":'
        b'"the upstream\'s stream ended before message_stop; the reply is incomplete"}}\n\n'
    )
    assert encoder.error == "stream ended before message_stop"
    out, encoder = passed_on()
    assert (out, encoder.replied) == ([], False)  # the stream loop says there was nothing
    encoder = MessagesPassThrough()
    out = []
    encode(
        encoder,
        [json.dumps({"type": "message_start"}).encode(), b"[DONE]"],
        out,
        Tally(),
        Usage().messages_event,
    )
    assert encoder.finished and out[-1].startswith(b"event: error\n")  # [DONE] is no message_stop


def test_an_upstream_error_event_ends_the_reply_as_it_came() -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    out, encoder = passed_on([anthropic_events(["a"])[0], error, {"type": "ping"}])
    assert out[0].endswith(b"event: error\ndata: " + json.dumps(error).encode() + b"\n\n")
    assert (encoder.finished, encoder.error) == (True, "error event in the stream")


blocks = st.one_of(
    st.builds(lambda text: {"type": "text", "text": text}, st.text(min_size=1)),
    st.builds(
        lambda text, signature: {"type": "thinking", "thinking": text, "signature": signature},
        st.text(min_size=1),
        st.text(min_size=1),
    ),
    st.builds(
        lambda name, given: {"type": "tool_use", "id": "toolu_1", "name": name, "input": given},
        st.text(min_size=1),
        # Any integer, beyond 64 bits too: its every digit kept (relay/formats/jsoncodec.py).
        st.dictionaries(st.text(), st.none() | st.integers() | st.text() | st.lists(st.booleans())),
    ),
    st.just({"type": "redacted_thinking", "data": "opaque"}),
    st.just({"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}}),
)


@settings(max_examples=200, deadline=None)
@given(content=st.lists(blocks, max_size=5), stop=st.sampled_from(["end_turn", "tool_use", "max_tokens"]))
def test_a_whole_message_as_its_stream_and_back_is_the_same_message(
    content: list[dict[str, Any]], stop: str
) -> None:
    message = {**anthropic_message("x"), "content": content, "stop_reason": stop}
    events = message_as_events(message)
    assert events is not None
    assert message_of(json.loads(json.dumps(events))) == message
    anthropic.types.Message.model_validate(message)  # a message the SDK takes, so these are its events
    out, encoder = passed_on([*events])
    assert encoder.error is None and out[0].startswith(b"event: message_start\n")


def test_what_is_no_message_makes_no_stream_and_a_stream_without_one_no_message() -> None:
    assert message_as_events({"type": "error", "error": {}}) is None
    assert message_as_events({"type": "message", "content": "text"}) is None
    assert (
        message_of([{"type": "ping"}, {"type": "content_block_start", "index": 0, "content_block": {}}])
        is None
    )
    begun = anthropic_events(["a"])
    assert message_of([*begun[:3], {"type": "error", "error": {"type": "api_error"}}]) is None
    cut = message_of([*begun[:-2], {"type": "content_block_delta", "index": 9, "delta": {"text": "lost?"}}])
    assert cut is not None and cut["content"] == [{"type": "text", "text": "a"}]
    broken = message_of(anthropic_events([], tool=("f", ['{"a": '])))
    assert broken is not None and broken["content"][0]["input"] == '{"a": '  # kept as it came, never lost


# -- the body ------------------------------------------------------------------------------------------

USER = [{"role": "user", "content": "Hi"}]


def refused(call: Any, *args: Any) -> str:
    with pytest.raises(BadRequest) as caught:
        call(*args)
    assert caught.value.status == 400
    return caught.value.message


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"", "The request body is empty; send a JSON object with model, messages and max_tokens."),
        (b"[1]", "The request body must be a JSON object, got a list."),
        (b'{"messages": []}', '"model" must be a non-empty string such as "gpt-4o-mini", got null.'),
        (b'{"model": "m"}', '"messages" must be a non-empty list of messages, got null.'),
        (b'{"model": "m", "messages": []}', '"messages" must be a non-empty list of messages, got an empty list.'),
        (b'{"model": "m", "messages": [1], "max_tokens": 0}', '"max_tokens" must be a positive whole number, got 0.'),
        (b'{"model": "m", "messages": [1], "max_tokens": true}', '"max_tokens" must be a positive whole number, got true/false.'),
        (b'{"model": "m", "messages": [1], "system": ' + b"[" * 40 + b"]" * 40 + b"}", '"system" is nested more than 32 levels deep.'),
    ],
)  # fmt: skip
def test_a_body_the_relay_cannot_act_on_is_a_400_naming_what(body: bytes, said: str) -> None:
    assert refused(parse_messages, body) == said


def test_a_body_passes_as_it_came_any_role_and_field_included() -> None:
    data = {"model": "m", "messages": [*USER, {"role": "system", "content": "x"}], "anything": {"a": [1]}}
    request = parse_messages(json.dumps(data).encode())
    assert (request.data, request.model, request.stream, request.asked_tokens()) == (data, "m", False, None)
    assert (
        parse_messages(
            b'{"model": "m", "messages": [1], "max_tokens": 2048.0, "stream": true}'
        ).asked_tokens()
        == 2048
    )


CAPPED = {"model": "m", "messages": USER, "max_tokens": 5, "stream": True, "system": "s", "metadata": {},
          "stop_sequences": [], "temperature": 1, "top_p": 1, "top_k": 1, "tool_choice": {"type": "auto"},
          "thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}, "service_tier": "auto",
          "speed": "standard", "cache_control": {"type": "ephemeral"},
          "context_management": {"edits": [{"type": "clear_thinking_20251015"}, {"type": "clear_tool_uses_20250919"}]},
          "tools": [{"name": "f", "input_schema": {}}, {"type": "custom", "name": "g"}, {"type": "bash_20250124"},
                    {"type": "text_editor_20250728"}, {"type": "computer_20251124"}, {"type": "memory_20250818"}]}  # fmt: skip


def test_under_the_cap_what_it_bounds_passes() -> None:
    check_messages_fields(CAPPED, ())
    check_messages_fields({**CAPPED, "service_tier": "standard_only", "tools": []}, ())


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("mcp_servers", [], '"mcp_servers" is not passed on by this relay while it caps tokens (MAX_TOKENS_LIMIT): it may make a reply cost more than its tokens. Its owner can allow it (ALLOWED_FIELDS).'),
        ("x" * 100, 1, f'"{"x" * 64}" is not passed on'),
        ("speed", "fast", '"speed" must be standard on this relay: another costs more than its tokens (MAX_TOKENS_LIMIT). Its owner can allow it (ALLOWED_FIELDS).'),
        ("speed", None, ""),
        ("service_tier", ["auto"], '"service_tier" must be auto or standard_only on this relay'),
        ("context_management", {"edits": "clear"}, '"context_management" must be an object with a list of "edits", got an object.'),
        ("context_management", ["clear"], '"context_management" must be an object with a list of "edits", got a list.'),
        ("context_management", {"edits": [{"type": "clear_thinking"}]}, '"context_management.edits[0].type" is "clear_thinking": only edits that clear context pass while this relay caps tokens (MAX_TOKENS_LIMIT); another may cost more than the reply\'s tokens. Its owner can allow it (ALLOWED_FIELDS=context_management).'),
        ("context_management", {"edits": [{"type": "clear_thinking_20251015"}, 3]}, '"context_management.edits[1].type" is missing'),
        ("tools", [{"type": "web_search_20250305"}], '"tools[0].type" is "web_search_20250305": a tool the upstream runs itself, billed beyond the tokens this relay caps (MAX_TOKENS_LIMIT). Its owner can allow that type (ALLOWED_FIELDS, with or without its date: web_search); the caller\'s own tools (input_schema), bash, text_editor, computer and memory pass.'),
        ("tools", [{"type": "bash"}], '"tools[0].type" is "bash"'),
        ("tools", [{"name": "f"}, {"type": "custom"}, {"type": "code_execution_20250825"}], '"tools[2].type" is "code_execution_20250825"'),
        ("tools", [{"type": "xbash_20250124"}], '"tools[0].type" is "xbash_20250124"'),
        ("tools", [{"type": "bash_2025012"}], '"tools[0].type" is "bash_2025012"'),
        ("tools", [{"type": 7}], '"tools[0].type" is a number'),
        ("tools", ["f"], '"tools[0]" must be a tool object, got a string.'),
        ("tools", "f", '"tools" must be a list of tools, got a string.'),
    ],
)  # fmt: skip
def test_under_the_cap_a_field_value_edit_or_tool_it_does_not_bound_is_refused(
    field: str, value: Any, said: str
) -> None:
    body = {**CAPPED, field: value}
    if not said:
        check_messages_fields(body, ())  # null is no value
        return
    assert refused(check_messages_fields, body, ()).startswith(said)


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("mcp_servers", [], ("mcp_servers",)),
        ("speed", "fast", ("speed",)),
        ("service_tier", "priority", ("service_tier",)),
        ("context_management", {"edits": [{"type": "compact_20260112"}]}, ("context_management",)),
        ("context_management", "anything", ("context_management",)),
        ("tools", [{"type": "web_search_20250305"}], ("web_search",)),
        ("tools", [{"type": "web_search_20250305"}], ("web_search_20250305",)),
        ("tools", [{"type": "mcp_toolset"}], ("mcp_toolset",)),
    ],
)
def test_the_owner_allows_by_name(field: str, value: Any, allowed: tuple[str, ...]) -> None:
    check_messages_fields({**CAPPED, field: value}, allowed)


def test_client_tools_by_type_dated_or_not_only_where_allowed() -> None:
    assert (
        client_tool("custom", ()) and client_tool("bash_20250124", ()) and client_tool("memory_20250818", ())
    )
    assert not client_tool("web_fetch_20250910", ()) and not client_tool("web_fetch_20250910", ("web",))
    assert client_tool("web_fetch_20250910", ("web_fetch",)) and client_tool("mcp_toolset", ("mcp_toolset",))
    assert not client_tool("code_execution", ("code_execution_20250825",))


# -- the error shape -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "invalid_request_error"), (401, "authentication_error"), (402, "billing_error"),
     (403, "permission_error"), (404, "not_found_error"), (405, "invalid_request_error"),
     (408, "invalid_request_error"), (409, "conflict_error"), (413, "request_too_large"),
     (418, "invalid_request_error"), (429, "rate_limit_error"), (500, "api_error"), (502, "api_error"),
     (503, "overloaded_error"), (504, "timeout_error"), (529, "overloaded_error"), (599, "api_error")],
)  # fmt: skip
def test_anthropics_error_type_by_status(status: int, kind: str) -> None:
    assert anthropic_error_type(status) == kind
    assert anthropic_error("x", status) == {"type": "error", "error": {"type": kind, "message": "x"}}


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"),
     (404, "not_found_error"), (405, "invalid_request_error"), (413, "invalid_request_error"),
     (429, "rate_limit_error"), (500, "api_error"), (503, "api_error")],
)  # fmt: skip
def test_openais_shape_beside_it(status: int, kind: str) -> None:
    assert openai_error("x", status) == {"error": {"message": "x", "type": kind, "param": None, "code": None}}


def test_an_error_event_as_anthropic_sends_one() -> None:
    assert error_event("cut \u2028 short") == (
        b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"cut \xe2\x80\xa8 short"}}\n\n'
    )
    assert named(None, b"{}") == b"data: {}\n\n"


# -- who pays, which route -----------------------------------------------------------------------------

TOKEN = "tok-wire-SECRET-0123456789"
KEY = "sk-ant-own-0123456789"


def test_the_access_token_comes_in_x_api_key_or_as_bearer_x_api_key_first() -> None:
    settings = load_settings({"ACCESS_TOKENS": f"alice:{TOKEN}"})
    assert check_access_token(settings, None, TOKEN, "anthropic") == "alice"
    assert check_access_token(settings, f"Bearer {TOKEN}", None, "anthropic") == "alice"
    assert (
        check_access_token(settings, f"Bearer {TOKEN}", "  ", "anthropic") == "alice"
    )  # an empty header is none
    with pytest.raises(Unauthorized) as wrong:
        check_access_token(settings, f"Bearer {TOKEN}", "nope", "anthropic")
    assert (
        wrong.value.token_sent
        and '"x-api-key: <token>" (or "Authorization: Bearer <token>")' in wrong.value.message
    )
    with pytest.raises(Unauthorized) as missing:
        check_access_token(settings, None, None, "anthropic")
    assert not missing.value.token_sent
    with pytest.raises(Unauthorized) as openai:
        check_access_token(settings, None, None)
    assert 'Send the header "Authorization: Bearer <token>" with one' in openai.value.message


@pytest.mark.parametrize(
    ("environ", "authorization", "api_key", "own"),
    [
        ({}, None, KEY, KEY),
        ({}, f"Bearer {KEY}", None, KEY),
        ({}, "Bearer other-key-0123456789", KEY, KEY),  # x-api-key wins
        ({}, None, " ", None),
        ({"ACCESS_TOKENS": TOKEN}, None, TOKEN, None),  # the token, not a key
        ({"ALLOW_CLIENT_KEYS": "false"}, None, KEY, None),
    ],
)
def test_a_callers_own_key_on_anthropics_endpoints(
    environ: dict[str, str], authorization: str | None, api_key: str | None, own: str | None
) -> None:
    assert anthropic_key(load_settings(environ), authorization, api_key) == own


def test_a_callers_key_that_cannot_travel_is_a_400_and_no_key_at_all_is_missing() -> None:
    settings = load_settings({})
    assert refused(anthropic_key, settings, None, "sk-\u00e9t\u00e9") == (
        "The API key in the x-api-key header must be visible ASCII characters."
    )
    with pytest.raises(MissingApiKey):
        choose_key(settings, anthropic_key(settings, None, None), settings.anthropic_route)


def test_a_model_goes_to_the_longest_prefix_of_its_api_else_to_its_apis_default() -> None:
    openai, anthropic_default = (
        Route("", "https://api.openai.com/v1"),
        Route("", "https://a.example", api="anthropic"),
    )
    work = Route("work/", "https://work.example", api="anthropic")
    work_local = Route("work/local/", "http://127.0.0.1:9/v1")
    router = Router(openai, (work, work_local), anthropic_default)
    assert router.route("work/claude", "anthropic") == (work, "claude")
    assert router.route("claude", "anthropic") == (anthropic_default, "claude")
    assert router.route("gpt", "openai") == (openai, "gpt")
    assert router.route("work/local/llama", "openai") == (work_local, "llama")
    assert refused(router.route, "work/local/llama", "anthropic").startswith(
        '"model" \'work/local/llama\' goes to the route "work/local/", which speaks the OpenAI API: send it to '
        "POST /v1/chat/completions or /v1/responses."
    )
    assert "which speaks the Anthropic API: send it to POST /v1/messages" in refused(
        router.route, "work/x", "openai"
    )
    assert refused(router.route, "work/", "anthropic") == '"model" names no model after the prefix "work/".'
    assert router.all == (openai, work_local)  # what /v1/models lists
    assert router.every == (openai, anthropic_default, work_local, work)  # the longest prefix first


def test_a_whole_message_becomes_exactly_the_events_anthropic_streams() -> None:
    message = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [
            {"type": "thinking", "thinking": "hm", "signature": "SIG"},
            "not a block",
            {"type": "text", "text": ""},
            {"type": "text", "text": "Hi", "citations": None},
            {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}},
            {"type": "redacted_thinking", "data": "opaque"},
        ],
        "stop_reason": "tool_use", "stop_sequence": "STOP", "usage": {"input_tokens": 1, "output_tokens": 2},
    }  # fmt: skip
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    assert message_as_events(message) == [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "SIG"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_stop", "index": 2},
        {"type": "content_block_start", "index": 3, "content_block": {"type": "text", "text": "", "citations": None}},
        {"type": "content_block_delta", "index": 3, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 3},
        {"type": "content_block_start", "index": 4, "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}}},
        {"type": "content_block_delta", "index": 4, "delta": {"type": "input_json_delta", "partial_json": '{"a":1}'}},
        {"type": "content_block_stop", "index": 4},
        {"type": "content_block_start", "index": 5, "content_block": {"type": "redacted_thinking", "data": "opaque"}},
        {"type": "content_block_stop", "index": 5},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": "STOP"},
         "usage": {"input_tokens": 1, "output_tokens": 2}},
        {"type": "message_stop"},
    ]  # fmt: skip
    no_usage = message_as_events({**message, "content": [], "usage": None})
    assert no_usage is not None and no_usage[-2] == {"type": "message_delta", "delta": start_delta(message)}


def start_delta(message: dict[str, Any]) -> dict[str, Any]:
    return {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}


def test_a_tool_input_too_deep_to_write_back_goes_whole_in_its_block() -> None:
    deep: Any = 1
    for _ in range(300):
        deep = {"a": deep}
    block = {"type": "tool_use", "id": "t", "name": "f", "input": deep}
    events = message_as_events({**anthropic_message("x"), "content": [block]})
    assert events is not None and events[1:3] == [
        {"type": "content_block_start", "index": 0, "content_block": block},
        {"type": "content_block_stop", "index": 0},
    ]


def test_a_stream_makes_its_message_delta_by_delta() -> None:
    citation = {"type": "char_location", "cited_text": "x"}
    events: list[dict[str, Any]] = [
        {"type": "ping"},  # before message_start: nothing yet
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "lost"}},
        {"type": "message_start", "message": "not one"},
        {"type": "message_start", "message": {"id": "m", "type": "message", "content": [], "usage": {"input_tokens": 3}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "a"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "b"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "S1"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "S2"}},
        {"type": "content_block_start", "index": "1", "content_block": {"type": "text"}},
        {"type": "content_block_start", "index": 1, "content_block": "not a block"},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "He"}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "citations_delta", "citation": citation}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "llo"}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "citations_delta", "citation": citation}},
        {"type": "content_block_delta", "index": 1, "delta": "not a delta"},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "name": "f", "input": {}}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"a": '}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "[1, 2]}"}},
        {"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "name": "g", "input": {}}},
        {"type": "content_block_start", "index": 4, "content_block": {"type": "text"}},
        {"type": "content_block_delta", "index": 4, "delta": {"type": "text_delta", "text": "x"}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}},
        {"type": "message_delta", "delta": "x", "usage": "y"},
        {"type": "message_stop"},
    ]  # fmt: skip
    assert message_of(events) == {
        "id": "m", "type": "message", "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 7},
        "content": [
            {"type": "thinking", "thinking": "ab", "signature": "S2"},
            {"type": "text", "text": "Hello", "citations": [citation, citation]},
            {"type": "tool_use", "name": "f", "input": {"a": [1, 2]}},
            {"type": "tool_use", "name": "g", "input": {}},
            {"type": "text", "text": "x"},
        ],
    }  # fmt: skip
    without_usage = message_of([{"type": "message_start", "message": {"content": []}}, events[-3]])
    assert without_usage == {"content": [], "stop_reason": "end_turn", "usage": {"output_tokens": 7}}
    two_pieces = message_of([events[3], events[17], events[18], {"type": "content_block_delta", "index": 2,
                                                                   "delta": {"partial_json": "[1"}}])  # fmt: skip
    assert two_pieces is not None and two_pieces["content"][0]["input"] == '{"a": [1'


def test_a_new_encoder_has_passed_nothing_on_and_its_note_is_anthropics_error() -> None:
    encoder = MessagesPassThrough()
    assert (encoder.packet, encoder.finished, encoder.replied, encoder.error) == (None, False, False, None)
    out: list[bytes] = []
    encoder.note("the server is restarting; send the request again", out)
    assert out == [error_event("the server is restarting; send the request again")]
    assert out[0].startswith(
        b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"the server'
    )
