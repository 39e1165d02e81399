"""A Responses API request, translated for an upstream that speaks only chat completions.

Most OpenAI-compatible servers speak only chat completions; for them the request becomes
a chat completions request: `instructions` a system message, `input` messages (text and
image parts, tool calls and their outputs), the caller's tools as functions, the text
format as `response_format`.

Tools. Function tools pass as they are. `namespace` and `custom` tools, which the caller
runs as it runs functions (Codex offers both), become functions too, named and shaped by
relay/formats/responses_tools.py, which tells their calls back; so do the tools an
`additional_tools` input item offers ("Responses Lite"), and the calls and outputs of
earlier turns in `input`. A tool the upstream itself would run (`web_search`,
`file_search`, `code_interpreter`, ...) cannot run on a chat upstream: it is left out and
named in the request's log line, or, where the owner set UNSUPPORTED_TOOLS=refuse, the
request is refused with a 400 that names it.

What such an upstream cannot honour otherwise (stored state, files by id, an input item of
another kind) is refused with a 400 that names the field, never dropped. Not sent, because
they have no chat equivalent and ask nothing of the reply: `metadata` (repeated in the
Response object), `include`, `truncation`, `service_tier`, `safety_identifier`,
`prompt_cache_key`, `client_metadata`, `stream_options`, `store: false`, `text.verbosity`,
`reasoning.summary`, and any field the Responses API does not have. Reasoning items of an
earlier reply are left out too: a chat upstream never made them and cannot read them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from relay.errors import BadRequest
from relay.formats.responses_tools import ToolNames, ToolRef, custom_arguments, custom_parameters
from relay.validation.json_values import kind, quoted_type
from relay.validation.responses_body import note_omitted

# State kept by the upstream between requests: a chat-only upstream keeps none.
STATEFUL = ("previous_response_id", "conversation", "prompt", "background")
ROLES = frozenset({"user", "assistant", "system", "developer"})
# Tools the caller runs, which a chat upstream can call: functions, and what becomes one.
CALLER_TOOLS = frozenset({"function", "custom"})


@dataclass
class ChatTranslation:
    """The chat completions body, what its function names stand for, and the tools left out of it."""

    body: dict[str, Any]
    tools: ToolNames = field(default_factory=ToolNames)
    omitted: list[str] = field(default_factory=list)  # types of tools the upstream would run, left out

    def omit(self, tool_type: str) -> None:
        note_omitted(self.omitted, tool_type)


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
    tools = _tools(_offered(data), translation, unsupported_tools)
    chat = translation.body
    chat["messages"] = _messages(data, translation.tools)
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
        choice = _tool_choice(data["tool_choice"], translation, unsupported_tools)
        if choice is not None:
            chat["tool_choice"] = choice
    response_format = _response_format(data.get("text"))
    if response_format is not None:
        chat["response_format"] = response_format
    reasoning = data.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") is not None:
        chat["reasoning_effort"] = reasoning["effort"]
    return translation


# -- tools -----------------------------------------------------------------------------------------


def _offered(data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every tool the request offers, with where it is: `tools`, then `additional_tools` input items."""
    tools = data.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise BadRequest(f'"tools" must be a list of tools, got {kind(tools)}.')
        yield from ((f"tools[{index}]", tool) for index, tool in enumerate(tools))
    given = data.get("input")
    for index, item in enumerate(given if isinstance(given, list) else ()):
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            more = item.get("tools")
            if not isinstance(more, list):
                raise BadRequest(f'"input[{index}].tools" must be a list of tools, got {kind(more)}.')
            yield from ((f"input[{index}].tools[{number}]", tool) for number, tool in enumerate(more))


@dataclass(frozen=True)
class _Tool:
    """A tool the caller runs, found where `where` says, under `namespace` if it is in one."""

    where: str
    tool: dict[str, Any]
    namespace: str | None = None
    about: str | None = None  # the namespace's description


def _tools(
    offered: Iterator[tuple[str, Any]], translation: ChatTranslation, unsupported: str
) -> list[dict[str, Any]]:
    """The chat tools for the caller's: its functions as they are, the others made functions."""
    found: list[_Tool] = []
    for where, tool in offered:
        tool_type = _tool_type(tool, where)
        if tool_type in CALLER_TOOLS:
            found.append(_Tool(where, tool))
        elif tool_type == "namespace":
            namespace = _text(tool, "name", where)
            about = tool.get("description") if isinstance(tool.get("description"), str) else None
            inner = tool.get("tools")
            if not isinstance(inner, list):
                raise BadRequest(f'"{where}.tools" must be a list of tools, got {kind(inner)}.')
            for index, member in enumerate(inner):
                at = f"{where}.tools[{index}]"
                if _tool_type(member, at) in CALLER_TOOLS:
                    found.append(_Tool(at, member, namespace, about or None))
                else:
                    _unsupported(at, member["type"], translation, unsupported)
        else:
            _unsupported(where, tool_type, translation, unsupported)
    names = translation.tools
    for entry in found:  # the tools' own names first: a name the relay makes must not be one of them
        if entry.namespace is None:
            names.reserve(_text(entry.tool, "name", entry.where))
    return [_chat_tool(entry, names) for entry in found]


def _tool_type(tool: Any, where: str) -> str:
    if not isinstance(tool, dict):
        raise BadRequest(f'"{where}" must be a tool object, got {kind(tool)}.')
    tool_type = tool.get("type")
    if not isinstance(tool_type, str):
        raise BadRequest(
            f'"{where}.type" is {quoted_type(tool_type)}; a tool\'s type is a string such as "function", '
            '"custom" or "namespace".'
        )
    return tool_type


def _unsupported(where: str, tool_type: str, translation: ChatTranslation, unsupported: str) -> None:
    """A tool the upstream would run itself: left out (and logged), or the request refused."""
    if unsupported == "refuse":
        raise BadRequest(
            f'"{where}.type" is {quoted_type(tool_type)}: a tool the upstream runs itself, which this '
            "model's upstream (it speaks only chat completions) cannot run. Leave the tool out: this "
            "relay's owner refuses such a request rather than send it without the tool "
            "(UNSUPPORTED_TOOLS=refuse)."
        )
    translation.omit(tool_type)


def _chat_tool(entry: _Tool, names: ToolNames) -> dict[str, Any]:
    tool, where = entry.tool, entry.where
    name = _text(tool, "name", where)
    custom = tool["type"] == "custom"
    if entry.namespace is None and not custom:
        function: dict[str, Any] = {"name": name}
        for field_name in ("description", "parameters", "strict"):
            if tool.get(field_name) is not None:
                function[field_name] = tool[field_name]
        return {"type": "function", "function": function}
    function = {"name": names.chat_name(ToolRef(name, entry.namespace, custom))}
    said = [text for text in (entry.about, tool.get("description")) if isinstance(text, str) and text]
    if said:
        function["description"] = "\n\n".join(said)
    if custom:
        function["parameters"] = custom_parameters(tool.get("format"))
    else:
        for field_name in ("parameters", "strict"):
            if tool.get(field_name) is not None:
                function[field_name] = tool[field_name]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any, translation: ChatTranslation, unsupported: str) -> Any:
    if isinstance(choice, str):
        return choice  # "auto", "none", "required"
    chosen = choice.get("type") if isinstance(choice, dict) else None
    chosen = chosen if isinstance(chosen, str) else None
    name = choice.get("name") if isinstance(choice, dict) else None
    if chosen in CALLER_TOOLS and isinstance(name, str):
        namespace = choice.get("namespace")
        if chosen == "custom" or isinstance(namespace, str):
            ref = ToolRef(name, namespace if isinstance(namespace, str) else None, chosen == "custom")
            name = translation.tools.chat_name(ref)
        return {"type": "function", "function": {"name": name}}
    if chosen is not None and chosen not in (*CALLER_TOOLS, "allowed_tools") and unsupported == "omit":
        translation.omit(chosen)  # it names a tool left out: the upstream chooses among the others
        return None
    raise BadRequest(
        '"tool_choice" must be "auto", "none", "required" or {"type": "function", "name": ...} here.'
    )


# -- input -----------------------------------------------------------------------------------------


def _messages(data: dict[str, Any], names: ToolNames) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    instructions = data.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise BadRequest(f'"instructions" must be a string, got {kind(instructions)}.')
        messages.append({"role": "system", "content": instructions})
    given = data["input"]
    if isinstance(given, str):
        messages.append({"role": "user", "content": given})
        return messages
    for index, item in enumerate(given):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise BadRequest(f'"{where}" must be an input item object, got {kind(item)}.')
        item_type = item.get("type", "message")
        if item_type == "message":
            messages.append(_message(item, where))
        elif item_type in ("function_call", "custom_tool_call"):
            _add_call(messages, _call(item, where, names))
        elif item_type in ("function_call_output", "custom_tool_call_output"):
            output = item.get("output")
            if not isinstance(output, str):
                output = _parts(output, f"{where}.output", "user") if isinstance(output, list) else None
            if output is None:
                raise BadRequest(f'"{where}.output" must be a string or a list of content parts.')
            messages.append(
                {"role": "tool", "tool_call_id": _text(item, "call_id", where), "content": output}
            )
        elif item_type in ("reasoning", "additional_tools"):
            # An earlier reply's reasoning: a chat-only upstream neither made nor reads it. Tools
            # offered in the input are among the request's tools.
            continue
        else:
            raise BadRequest(
                f'"{where}.type" is "{str(item_type)[:64]}", which has no equivalent in chat completions '
                "(this model's upstream speaks only those); send messages, tool calls and their outputs."
            )
    return messages


def _call(item: dict[str, Any], where: str, names: ToolNames) -> dict[str, Any]:
    """An earlier call, as a chat tool call: by the function name its tool is offered under."""
    name = _text(item, "name", where)
    namespace = item.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise BadRequest(f'"{where}.namespace" must be a string, got {kind(namespace)}.')
    if item["type"] == "custom_tool_call":
        name = names.chat_name(ToolRef(name, namespace, custom=True))
        arguments = custom_arguments(_text(item, "input", where))
    else:
        if namespace is not None:
            name = names.chat_name(ToolRef(name, namespace))
        arguments = _text(item, "arguments", where)
    return {
        "id": _text(item, "call_id", where),
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _add_call(messages: list[dict[str, Any]], call: dict[str, Any]) -> None:
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant" and "tool_calls" in last:
        last["tool_calls"].append(call)  # calls made in one turn stay one turn
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if not (isinstance(role, str) and role in ROLES):
        raise BadRequest(f'"{where}.role" must be one of {", ".join(sorted(ROLES))}.')
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise BadRequest(
            f'"{where}.content" must be a string or a list of content parts, got {kind(content)}.'
        )
    parts = _parts(content, f"{where}.content", role)
    if role in ("assistant", "system", "developer"):  # text only, as chat completions takes it there
        return {"role": role, "content": "".join(part["text"] for part in parts if part["type"] == "text")}
    return {"role": role, "content": parts}


def _parts(content: list[Any], where: str, role: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        at = f"{where}[{index}]"
        if not isinstance(part, dict):
            raise BadRequest(f'"{at}" must be a content part object, got {kind(part)}.')
        part_type = part.get("type")
        if part_type in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": _text(part, "text", at)})
        elif part_type == "refusal" and role == "assistant":
            parts.append({"type": "text", "text": _text(part, "refusal", at)})
        elif part_type == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                raise BadRequest(
                    f'"{at}.image_url" must be a URL or a data: URL; an image by file_id needs the '
                    "Responses API's own file store, which this model's upstream does not have."
                )
            image: dict[str, Any] = {"url": url}
            if isinstance(part.get("detail"), str):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise BadRequest(
                f'"{at}.type" is {quoted_type(part_type)}; this model\'s upstream (chat completions) takes '
                'text and image parts only ("input_text", "input_image").'
            )
    return parts


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


def _text(item: dict[str, Any], name: str, where: str) -> str:
    value = item.get(name)
    if not isinstance(value, str):
        raise BadRequest(f'"{where}.{name}" must be a string, got {kind(value)}.')
    return value
