"""A Responses API request, translated for an upstream that speaks only chat completions.

Most OpenAI-compatible servers speak only chat completions; for them the request
becomes a chat completions request: `instructions` a system message, `input`
messages (text and image parts, function calls and their outputs), function tools,
the text format as `response_format`. What such an upstream cannot honour (stored
state, built-in tools, files by id) is refused with a 400 that names the field,
never dropped. Not sent, because they have no chat equivalent and ask nothing of the
reply: `metadata` (repeated in the Response object), `include`, `truncation`,
`service_tier`, `safety_identifier`, `prompt_cache_key`, `stream_options`, `store:
false`, `text.verbosity`, `reasoning.summary`, and any field the Responses API does
not have. Reasoning items of an earlier reply are left out too: a chat upstream
never made them and cannot read them.
"""

from __future__ import annotations

from typing import Any

from relay.errors import BadRequest
from relay.validation.json_values import kind, quoted_type

# State kept by the upstream between requests: a chat-only upstream keeps none.
STATEFUL = ("previous_response_id", "conversation", "prompt", "background")
ROLES = frozenset({"user", "assistant", "system", "developer"})


def as_chat_completions(data: dict[str, Any], token_field: str) -> dict[str, Any]:
    """The chat completions body that asks a chat-only upstream what `data` asks; BadRequest otherwise."""
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
    chat: dict[str, Any] = {"model": data["model"], "messages": _messages(data)}
    if data.get("stream") is True:
        chat["stream"] = True
    if data.get("max_output_tokens") is not None:
        chat[token_field] = data["max_output_tokens"]
    for name in ("temperature", "top_p", "parallel_tool_calls", "user", "top_logprobs"):
        if data.get(name) is not None:
            chat[name] = data[name]
    if data.get("top_logprobs") is not None:
        chat["logprobs"] = True
    tools = _tools(data.get("tools"))
    if tools:
        chat["tools"] = tools
    if data.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(data["tool_choice"])
    response_format = _response_format(data.get("text"))
    if response_format is not None:
        chat["response_format"] = response_format
    reasoning = data.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") is not None:
        chat["reasoning_effort"] = reasoning["effort"]
    return chat


def _messages(data: dict[str, Any]) -> list[dict[str, Any]]:
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
        elif item_type == "function_call":
            call = {
                "id": _text(item, "call_id", where),
                "type": "function",
                "function": {
                    "name": _text(item, "name", where),
                    "arguments": _text(item, "arguments", where),
                },
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)  # calls made in one turn stay one turn
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif item_type == "function_call_output":
            output = item.get("output")
            if not isinstance(output, str):
                output = _parts(output, f"{where}.output", "user") if isinstance(output, list) else None
            if output is None:
                raise BadRequest(f'"{where}.output" must be a string or a list of content parts.')
            messages.append(
                {"role": "tool", "tool_call_id": _text(item, "call_id", where), "content": output}
            )
        elif item_type == "reasoning":
            continue  # an earlier reply's reasoning: a chat-only upstream neither made nor reads it
        else:
            raise BadRequest(
                f'"{where}.type" is "{str(item_type)[:64]}", which has no equivalent in chat completions '
                "(this model's upstream speaks only those); send messages, function calls and their outputs."
            )
    return messages


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


def _tools(tools: Any) -> list[dict[str, Any]]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise BadRequest(f'"tools" must be a list of tools, got {kind(tools)}.')
    converted = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise BadRequest(f'"tools[{index}]" must be a tool object, got {kind(tool)}.')
        tool_type = tool.get("type")
        if tool_type != "function":
            raise BadRequest(
                f'"tools[{index}].type" is {quoted_type(tool_type)}; this model\'s upstream speaks only chat '
                'completions, which take "function" tools only.'
            )
        function = {"name": _text(tool, "name", f"tools[{index}]")}
        for name in ("description", "parameters", "strict"):
            if tool.get(name) is not None:
                function[name] = tool[name]
        converted.append({"type": "function", "function": function})
    return converted


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice  # "auto", "none", "required"
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise BadRequest(
        '"tool_choice" must be "auto", "none", "required" or {"type": "function", "name": ...} here.'
    )


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
