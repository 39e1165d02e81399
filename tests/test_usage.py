"""What a reply cost (relay/access/usage.py): the upstream's usage, else the characters the model wrote.

Usage sees every event the relay reads (as `observe` in relay/formats/encoding.py), or a whole
answer, of each API (Anthropic's too); the log line's tokens come from it. No network.
"""

from __future__ import annotations

from typing import Any

import pytest

from relay.access.usage import CHARS_PER_TOKEN, Usage, most_tokens, tokens_of, written_length
from relay.formats.chat_events import ChatEvents
from relay.formats.encoding import Tally, encode
from tests.fake_replies import anthropic_events, anthropic_message


def chunk_of(*deltas: Any, usage: Any = None) -> dict[str, Any]:
    value: dict[str, Any] = {"choices": [{"index": n, "delta": delta} for n, delta in enumerate(deltas)]}
    if usage is not None:
        value["usage"] = usage
    return value


def written_by_chunks(*chunks: dict[str, Any]) -> int:
    usage = Usage()
    for chunk in chunks:
        usage.chat_chunk(chunk)
    return usage.written


def test_nothing_seen_is_nothing_reported_or_written() -> None:
    usage = Usage()
    assert (usage.reported, usage.written) == (None, 0)
    assert usage.tokens(0) == (0, "estimated")


# -- chat completion chunks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "chars"),
    [
        pytest.param(chunk_of({"content": "é中😀"}), 3, id="characters-not-bytes"),
        pytest.param(chunk_of({"role": "assistant"}), 0, id="no-content"),
        pytest.param(chunk_of({"content": 12}), 0, id="content-not-a-string"),
        pytest.param({"choices": [{"delta": "abc"}]}, 0, id="delta-not-an-object"),
        pytest.param({"choices": [{"message": {"content": "abc"}}]}, 0, id="message-not-a-delta"),
        pytest.param({"choices": ["abc"]}, 0, id="choice-not-an-object"),
        pytest.param({"choices": []}, 0, id="no-choice"),
        pytest.param({"choices": "abc"}, 0, id="choices-not-a-list"),
        pytest.param({"content": "abc"}, 0, id="no-choices"),
        pytest.param(chunk_of({"content": "ab"}, {"content": "cdef"}), 6, id="every-choice"),
        pytest.param(chunk_of({"refusal": "No."}), 3, id="refusal"),
        pytest.param(chunk_of({"reasoning_content": "abcd"}), 4, id="reasoning-content"),
        pytest.param(chunk_of({"reasoning": "abcde"}), 5, id="reasoning"),
        pytest.param(chunk_of({"reasoning_details": [{"type": "reasoning.text", "text": "ab"},
                                                     {"type": "reasoning.summary", "summary": "cde"},
                                                     {"type": "reasoning.encrypted", "data": "xxxxxxxx"}]}),
                     5, id="reasoning-details"),
        pytest.param(chunk_of({"reasoning_details": [{"text": 5, "summary": ["x"]}, "text", None]}), 0,
                     id="reasoning-details-of-the-wrong-type"),
        pytest.param(chunk_of({"reasoning_details": {"text": "ab"}}), 0, id="reasoning-details-not-a-list"),
        pytest.param(chunk_of({"content": [{"type": "text", "text": "ab"}, {"type": "image_url"}, {"text": 5}, "cd"]}),
                     2, id="content-parts-text"),
        pytest.param(chunk_of({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                               "function": {"name": "get", "arguments": '{"a":1}'}}]}),
                     10, id="tool-call-name-and-arguments"),
        pytest.param(chunk_of({"tool_calls": [{"function": {"arguments": "ab"}}, {"function": {"name": "c"}}]}),
                     3, id="every-tool-call"),
        pytest.param(chunk_of({"tool_calls": ["x", {"function": "f"}, {"function": {"name": 5, "arguments": None}}]}),
                     0, id="tool-calls-of-the-wrong-type"),
        pytest.param(chunk_of({"tool_calls": {"function": {"name": "f"}}}), 0, id="tool-calls-not-a-list"),
        pytest.param(chunk_of({"function_call": {"name": "get", "arguments": "{}"}}), 5, id="legacy-function-call"),
        pytest.param(chunk_of({"function_call": "get"}), 0, id="legacy-function-call-not-an-object"),
        pytest.param(chunk_of({"content": "ab", "function_call": {"name": "get"}}), 5, id="text-and-legacy-function-call"),
        pytest.param(chunk_of({"content": "a", "refusal": "b", "reasoning_content": "c", "tool_calls": [
                         {"function": {"name": "d", "arguments": "e"}}]}), 5, id="all-in-one-delta"),
    ],
)  # fmt: skip
def test_chat_chunks_count_everything_the_model_wrote(value: dict[str, Any], chars: int) -> None:
    assert written_by_chunks(value, chunk_of({"content": "xy"})) == chars + 2


def test_written_length_of_a_delta() -> None:
    assert (
        written_length({"content": "ab", "tool_calls": [{"function": {"name": "c", "arguments": "de"}}]}) == 5
    )
    assert written_length({}) == 0


@pytest.mark.parametrize(
    ("chunks", "reported"),
    [
        pytest.param([chunk_of({"content": "a"})], None, id="none"),
        pytest.param([chunk_of({"content": "a"}), {"choices": [], "usage": {"total_tokens": 3}}],
                     {"total_tokens": 3}, id="usage-chunk"),
        pytest.param([chunk_of({"content": "a"}, usage={"total_tokens": 4})], {"total_tokens": 4}, id="on-a-choice"),
        pytest.param([{"choices": [], "usage": {"total_tokens": 3}}, {"choices": [], "usage": {"total_tokens": 5}}],
                     {"total_tokens": 5}, id="the-last"),
        pytest.param([{"choices": [], "usage": {"total_tokens": 3}}, {"choices": [], "usage": None},
                      {"choices": [], "usage": [7]}], {"total_tokens": 3}, id="not-an-object-ignored"),
    ],
)  # fmt: skip
def test_chat_chunks_keep_the_upstreams_usage(chunks: list[dict[str, Any]], reported: Any) -> None:
    usage = Usage()
    for chunk in chunks:
        usage.chat_chunk(chunk)
    assert usage.reported == reported


def test_usage_sees_every_event_of_the_relays_loop_even_one_the_caller_does_not() -> None:
    """As the relay reads a stream: the usage chunk it asked for is counted though the caller never sees it."""
    usage = Usage()
    out: list[bytes] = []
    encode(
        ChatEvents(hide_usage=True),
        [
            b'{"choices":[{"delta":{"content":"ab"}}]}',
            b"not json",
            b'{"choices":[],"usage":{"total_tokens":9}}',
        ],
        out,
        Tally(),
        usage.chat_chunk,
    )
    assert b"total_tokens" not in b"".join(out)
    assert (usage.reported, usage.written) == ({"total_tokens": 9}, 2)


# -- a whole chat completion ----------------------------------------------------------------------


def test_a_whole_completion_counts_every_choice_and_its_usage() -> None:
    usage = Usage()
    usage.chat_completion(
        {
            "choices": [
                {"message": {"role": "assistant", "content": "Hello", "reasoning_content": "hmm"}},
                {"index": 1, "message": {"content": "Hi", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}},
                {"message": {"refusal": "No"}},
                "not a choice",
            ],
            "usage": {"prompt_tokens": 2, "completion_tokens": 3},
        }
    )  # fmt: skip
    assert usage.written == len("Hello") + len("hmm") + len("Hi") + len("f{}") + len("No")
    assert usage.reported == {"prompt_tokens": 2, "completion_tokens": 3}
    assert usage.tokens(100) == (5, "upstream")


@pytest.mark.parametrize(
    ("completion", "written", "reported"),
    [
        pytest.param({"choices": [], "usage": {"total_tokens": 3}}, 0, {"total_tokens": 3}, id="no-choice"),
        pytest.param({"usage": {"total_tokens": 3}}, 0, {"total_tokens": 3}, id="no-choices"),
        pytest.param({"choices": "abc", "usage": "many"}, 0, None, id="wrong-types"),
        pytest.param({"choices": [{"message": "abc"}]}, 0, None, id="message-not-an-object"),
        pytest.param({"choices": [{"message": {"content": "abc"}}], "usage": None}, 3, None, id="no-usage"),
    ],
)
def test_a_whole_completion_of_any_shape(completion: dict[str, Any], written: int, reported: Any) -> None:
    usage = Usage()
    usage.chat_completion(completion)
    assert (usage.written, usage.reported) == (written, reported)


# -- Responses API events and objects ------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "chars"),
    [
        pytest.param({"type": "response.output_text.delta", "delta": "é中😀"}, 3, id="characters-not-bytes"),
        pytest.param({"type": "response.output_text.delta", "delta": 5}, 0, id="delta-not-a-string"),
        pytest.param({"type": "response.output_text.delta"}, 0, id="no-delta"),
        pytest.param({"type": "response.output_text.done", "text": "abc"}, 0, id="done-not-counted"),
        pytest.param({"type": "response.refusal.delta", "delta": "abc"}, 3, id="refusal"),
        pytest.param({"type": "response.reasoning_summary_text.delta", "delta": "abcd"}, 4, id="reasoning-summary"),
        pytest.param({"type": "response.reasoning_text.delta", "delta": "ab"}, 2, id="reasoning-text"),
        pytest.param({"type": "response.function_call_arguments.delta", "delta": "{}"}, 2, id="tool-arguments"),
        pytest.param({"type": "response.custom_tool_call_input.delta", "delta": "abc"}, 3, id="tool-input"),
        pytest.param({"type": "response.output_item.added", "item": {"type": "function_call", "name": "f"}}, 0,
                     id="item-added-not-counted"),
        pytest.param({"type": 5, "delta": "abc"}, 0, id="type-not-a-string"),
        pytest.param({"delta": "abc"}, 0, id="no-type"),
        pytest.param({"type": "response.output_text.delta.x", "delta": "abc"}, 0, id="not-a-delta-type"),
    ],
)  # fmt: skip
def test_responses_events_count_every_kind_of_delta(event: dict[str, Any], chars: int) -> None:
    usage = Usage()
    usage.responses_event(event)
    usage.responses_event({"type": "response.output_text.delta", "delta": "xy"})
    assert usage.written == chars + 2
    assert usage.reported is None


@pytest.mark.parametrize(
    ("event", "reported"),
    [
        pytest.param({"type": "response.completed", "response": {"usage": {"total_tokens": 3}}},
                     {"total_tokens": 3}, id="completed"),
        pytest.param({"type": "response.incomplete", "response": {"usage": {"total_tokens": 3}}},
                     {"total_tokens": 3}, id="incomplete"),
        pytest.param({"type": "response.failed", "response": {"usage": {"total_tokens": 3}}},
                     {"total_tokens": 3}, id="failed"),
        pytest.param({"type": "response.in_progress", "response": {"usage": {"total_tokens": 3}}}, None,
                     id="not-the-last-event"),
        pytest.param({"type": "response.completed", "usage": {"total_tokens": 3}}, None, id="usage-outside-the-response"),
        pytest.param({"type": "response.completed", "response": "x"}, None, id="response-not-an-object"),
        pytest.param({"type": "response.completed", "response": {"usage": [3]}}, None, id="usage-not-an-object"),
        pytest.param({"type": "response.completed", "response": {}}, None, id="no-usage"),
        pytest.param({"type": ["response.completed"], "response": {"usage": {"total_tokens": 3}}}, None,
                     id="type-a-list"),
    ],
)  # fmt: skip
def test_responses_usage_is_the_last_events(event: dict[str, Any], reported: Any) -> None:
    usage = Usage()
    usage.responses_event(event)
    assert usage.reported == reported


def test_a_whole_response_object() -> None:
    usage = Usage()
    usage.response_object(
        {
            "usage": {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12},
            "output": [
                {"type": "reasoning", "summary": [{"type": "summary_text", "text": "abc"}]},
                {"type": "message", "content": [{"type": "output_text", "text": "Hello"},
                                                {"type": "refusal", "refusal": "No"}]},
                {"type": "function_call", "name": "f", "arguments": '{"a":1}'},
                {"type": "custom_tool_call", "name": "g", "input": "xyz"},
                "not an item",
                {"type": "message", "content": "not parts", "summary": [5, {"text": 5}]},
            ],
        }
    )  # fmt: skip
    assert usage.written == len("abc") + len("Hello") + len("No") + len('f{"a":1}') + len("gxyz")
    assert usage.tokens(0) == (12, "upstream")


@pytest.mark.parametrize(
    "response",
    [
        pytest.param({}, id="empty"),
        pytest.param({"output": "text", "usage": "many"}, id="wrong-types"),
        pytest.param({"output": [{"content": [{"text": ["a"]}]}]}, id="text-not-a-string"),
    ],
)
def test_a_response_object_of_the_wrong_shape_counts_nothing(response: dict[str, Any]) -> None:
    usage = Usage()
    usage.response_object(response)
    assert (usage.written, usage.reported) == (0, None)


# -- the tokens counted ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt_bytes", "written", "tokens"),
    [
        pytest.param(0, 0, 0, id="nothing"),
        pytest.param(4, 0, 1, id="one-token"),
        pytest.param(10, 3, 4, id="rounded-up"),
        pytest.param(8, 8, 4, id="request-and-reply-together"),
    ],
)
def test_without_the_upstreams_usage_tokens_are_estimated(
    prompt_bytes: int, written: int, tokens: int
) -> None:
    assert CHARS_PER_TOKEN == 4
    usage = Usage()
    usage.chat_chunk(chunk_of({"content": "x" * written}))
    assert usage.tokens(prompt_bytes) == (tokens, "estimated")


@pytest.mark.parametrize(
    ("reported", "tokens"),
    [
        pytest.param({"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 9}, (9, "upstream"), id="total"),
        pytest.param({"total_tokens": 0}, (0, "upstream"), id="total-zero"),
        pytest.param({"prompt_tokens": 2, "completion_tokens": 3}, (5, "upstream"), id="summed"),
        pytest.param({"input_tokens": 4, "output_tokens": 1}, (5, "upstream"), id="responses-summed"),
        pytest.param({"completion_tokens": 3}, (3, "upstream"), id="one-part"),
        pytest.param({"total_tokens": "9", "prompt_tokens": 2}, (2, "upstream"), id="total-not-a-number"),
        pytest.param({"total_tokens": True, "prompt_tokens": False, "completion_tokens": -1, "output_tokens": 2.5},
                     (3, "estimated"), id="no-whole-count"),
        pytest.param({}, (3, "estimated"), id="empty"),
    ],
)  # fmt: skip
def test_the_upstreams_usage_is_counted_where_it_gives_one(reported: dict[str, Any], tokens: Any) -> None:
    usage = Usage()
    usage.chat_chunk(chunk_of({"content": "abcd"}, usage=reported))
    assert usage.tokens(8) == tokens  # else (8 + 4) / 4 = 3, estimated


@pytest.mark.parametrize(
    ("value", "tokens"),
    [
        pytest.param(None, None, id="none"),
        pytest.param([1], None, id="not-an-object"),
        pytest.param({}, None, id="empty"),
        pytest.param({"total_tokens": 7, "prompt_tokens": 1}, 7, id="total-first"),
        pytest.param({"prompt_tokens": 1, "completion_tokens": 2, "input_tokens": 3, "output_tokens": 4}, 10,
                     id="every-part"),
        pytest.param({"prompt_tokens": 0}, 0, id="zero-is-a-count"),
        pytest.param({"input_tokens": 3, "output_tokens": 4, "cache_creation_input_tokens": 5,
                      "cache_read_input_tokens": 6, "server_tool_use": {"web_search_requests": 1}}, 18,
                     id="anthropics-with-its-cache"),
    ],
)  # fmt: skip
def test_tokens_of(value: Any, tokens: int | None) -> None:
    assert tokens_of(value) == tokens


# -- Anthropic's Messages API -------------------------------------------------------------------------


def test_anthropics_stream_counts_message_starts_usage_then_message_deltas() -> None:
    usage = Usage()
    for event in anthropic_events(
        ["Hel", "lo"], thinking="hmm", tool=("get", ['{"a":', " 1}"]), output_tokens=9
    ):
        usage.messages_event(event)
    # message_delta's count replaces message_start's (it is the reply's so far, not an increment).
    assert usage.reported == {"input_tokens": 10, "output_tokens": 9, "cache_read_input_tokens": 5}
    assert usage.tokens(100) == (24, "upstream")
    assert usage.written == len("Hello") + len("hmm") + len('{"a": 1}') + len("get")


@pytest.mark.parametrize(
    ("event", "chars"),
    [
        pytest.param({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "abc"}}, 3, id="text"),
        pytest.param({"type": "content_block_delta", "delta": {"type": "citations_delta", "citation": {}}}, 0, id="citation"),
        pytest.param({"type": "content_block_delta", "delta": "abc"}, 0, id="delta-not-an-object"),
        pytest.param({"type": "content_block_start", "content_block": {"type": "server_tool_use", "name": "web_search",
                      "input": {"query": "q"}}}, len("web_search") + len('{"query":"q"}'), id="a-block-whole-at-its-start"),
        pytest.param({"type": "message_start", "message": {"usage": [1]}}, 0, id="usage-not-an-object"),
        pytest.param({"type": "message_delta", "usage": None}, 0, id="no-usage"),
        pytest.param({"type": 7}, 0, id="type-not-a-string"),
    ],
)  # fmt: skip
def test_anthropics_events_of_any_shape(event: dict[str, Any], chars: int) -> None:
    usage = Usage()
    usage.messages_event(event)
    assert (usage.reported, usage.written) == (None, chars)


def test_a_whole_message_counts_its_usage_and_what_it_holds() -> None:
    usage = Usage()
    usage.message_object(anthropic_message("four", tool=("get", {"a": 1})))
    assert usage.reported == {"input_tokens": 10, "output_tokens": 4, "cache_creation_input_tokens": 2}
    assert usage.tokens(0) == (16, "upstream")
    assert usage.written == len("four") + len("get") + len('{"a":1}')
    nothing = Usage()
    nothing.message_object({"content": "x", "usage": "y"})
    assert (nothing.reported, nothing.written) == (None, 0)


# -- what the mutation run found untested ------------------------------------------------------------


def test_the_most_a_request_may_cost_is_its_prompt_and_its_replys_cap() -> None:
    # docs/limits.md: a prompt's bytes / 4, rounded up, and max_tokens, or 4,096 where none is set.
    assert most_tokens(41, 100) == 11 + 100
    assert most_tokens(40, None) == 10 + 4096
    assert most_tokens(0, 0) == 0


def test_each_api_has_its_watcher_and_its_whole_answers_reader() -> None:
    usage = Usage()
    assert usage.watcher("chat") == usage.chat_chunk
    assert usage.watcher("messages") == usage.messages_event
    assert usage.watcher("responses") == usage.responses_event
    reported = {"input_tokens": 2, "output_tokens": 3}
    for upstream, answer in [
        ("chat", {"choices": [{"index": 0, "message": {"content": "x" * 40}}], "usage": reported}),
        ("responses", {"output": [{"type": "message", "content": [{"text": "x" * 40}]}], "usage": reported}),
        ("messages", {"content": [{"type": "text", "text": "x" * 40}], "usage": reported}),
    ]:
        read = Usage()
        read.whole(upstream, answer)
        assert (read.reported, read.written) == (reported, 40), upstream
    unknown = Usage()
    unknown.whole("embeddings", {"usage": reported})
    assert (unknown.reported, unknown.written) == (None, 0)


def test_an_anthropic_thinking_block_counts_its_text() -> None:
    usage = Usage()
    usage.message_object({"content": [{"type": "thinking", "thinking": "x" * 400, "signature": "s" * 100}]})
    assert usage.written == 400


@pytest.mark.parametrize(
    "message",
    [
        pytest.param({"type": "message_start", "message": "not an object"}, id="message-start-of-a-string"),
        pytest.param({"type": "message_start", "message": None}, id="message-start-of-null"),
    ],
)
def test_an_anthropic_event_of_the_wrong_shape_counts_nothing(message: dict[str, Any]) -> None:
    usage = Usage()
    usage.messages_event(message)
    assert (usage.reported, usage.written) == (None, 0)


def test_a_whole_anthropic_message_of_the_wrong_shape_counts_what_it_can() -> None:
    nested: dict[str, Any] = {}
    deepest = nested
    for _ in range(2000):  # deeper than JSON is written back: its input is not counted
        deepest["a"] = {}
        deepest = deepest["a"]
    usage = Usage()
    usage.message_object({"content": None})
    usage.message_object({"content": [{"type": "tool_use", "name": "f" * 10, "input": nested}]})
    assert (usage.reported, usage.written) == (None, 10)
