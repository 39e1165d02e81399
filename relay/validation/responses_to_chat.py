"""A Responses API request, translated for an upstream that speaks only chat completions.

Most OpenAI-compatible servers speak only chat completions; for them the request becomes
a chat completions request: `instructions` a system message, `input` messages (text and
image parts, tool calls and their outputs), the caller's tools as functions, the text
format as `response_format`.

The tools: relay/validation/offered_tools.py; the input: relay/validation/responses_input.py.

What such an upstream cannot honour otherwise (stored state, files by id, an input item of
another kind) is refused with a 400 that names the field, never dropped. Not sent, because
they have no chat equivalent and ask nothing of the reply: `metadata` (repeated in the
Response object), `include`, `truncation`, `service_tier`, `safety_identifier`,
`prompt_cache_key`, `client_metadata`, `stream_options`, `store: false`, `text.verbosity`,
`reasoning.summary`, and any field the Responses API does not have. Reasoning items of an
earlier reply are left out too: a chat upstream never made them and cannot read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relay.errors import BadRequest
from relay.formats.responses_tools import ToolNames
from relay.validation.offered_tools import chat_tool_choice, chat_tools, offered
from relay.validation.responses_input import as_messages

# State kept by the upstream between requests: a chat-only upstream keeps none.
STATEFUL = ("previous_response_id", "conversation", "prompt", "background")


@dataclass
class ChatTranslation:
    """The chat completions body, what its function names stand for, and the tools left out of it."""

    body: dict[str, Any]
    tools: ToolNames = field(default_factory=ToolNames)
    omitted: list[str] = field(default_factory=list)  # types of tools the upstream would run, left out


def as_chat_completions(
    data: dict[str, Any], token_field: str, unsupported_tools: str = "omit"
) -> ChatTranslation:
    """The chat completions request that asks a chat-only upstream what `data` asks; BadRequest otherwise.

    `unsupported_tools` (UNSUPPORTED_TOOLS): "omit" leaves a tool the upstream would run itself out
    (named in `omitted`), "refuse" refuses the request naming it.
    """
    for name in STATEFUL:
        if data.get(name) not in (None, False):
            raise BadRequest(
                f'"{name}" needs an upstream that keeps state (the Responses API); this model\'s '
                'upstream speaks only chat completions. Send the whole conversation in "input" instead.'
            )
    if data.get("store") is True:
        raise BadRequest(
            '"store": true needs an upstream that keeps responses (the Responses API); this model\'s '
            "upstream speaks only chat completions. Leave it out, or set it to false."
        )
    translation = ChatTranslation({"model": data["model"]})
    tools = chat_tools(offered(data), translation.tools, translation.omitted, unsupported_tools)
    chat = translation.body
    chat["messages"] = as_messages(data, translation.tools)
    if data.get("stream") is True:
        chat["stream"] = True
    if data.get("max_output_tokens") is not None:
        chat[token_field] = data["max_output_tokens"]
    for name in ("temperature", "top_p", "parallel_tool_calls", "user", "top_logprobs"):
        if data.get(name) is not None:
            chat[name] = data[name]
    if data.get("top_logprobs") is not None:
        chat["logprobs"] = True
    if tools:
        chat["tools"] = tools
    if data.get("tool_choice") is not None:
        choice = chat_tool_choice(
            data["tool_choice"], translation.tools, translation.omitted, unsupported_tools
        )
        if choice is not None:
            chat["tool_choice"] = choice
    response_format = _response_format(data.get("text"))
    if response_format is not None:
        chat["response_format"] = response_format
    reasoning = data.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") is not None:
        chat["reasoning_effort"] = reasoning["effort"]
    return translation


def _response_format(text: Any) -> dict[str, Any] | None:
    if text is None:
        return None
    form = text.get("format") if isinstance(text, dict) else None
    if form is None:
        return None
    kind_ = form.get("type") if isinstance(form, dict) else None
    if kind_ == "text":
        return None
    if kind_ == "json_object":
        return {"type": "json_object"}
    if kind_ == "json_schema":
        schema = {name: form[name] for name in ("name", "schema", "strict", "description") if name in form}
        return {"type": "json_schema", "json_schema": schema}
    raise BadRequest('"text.format.type" must be text, json_object or json_schema.')
