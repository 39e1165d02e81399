"""A Responses request's `instructions` and `input`, as the messages of a chat completions request.

Messages with text and image parts, tool calls of earlier turns (under the function names their
tools are offered by, relay/validation/offered_tools.py) and their outputs. Reasoning items of an
earlier reply are left out: a chat upstream never made them and cannot read them. An item of
another kind, or an image by file id, has no chat equivalent: a 400 that names it.
"""

from __future__ import annotations

from typing import Any

from relay.errors import BadRequest
from relay.formats.responses_tools import ToolNames, ToolRef, custom_arguments
from relay.validation.json_values import kind, quoted_type, string_field

ROLES = frozenset({"user", "assistant", "system", "developer"})


def as_messages(data: dict[str, Any], names: ToolNames) -> list[dict[str, Any]]:
    """`instructions` and `input` as chat messages: text and image parts, tool calls and their outputs."""
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
                {"role": "tool", "tool_call_id": string_field(item, "call_id", where), "content": output}
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
    name = string_field(item, "name", where)
    namespace = item.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise BadRequest(f'"{where}.namespace" must be a string, got {kind(namespace)}.')
    if item["type"] == "custom_tool_call":
        name = names.chat_name(ToolRef(name, namespace, custom=True))
        arguments = custom_arguments(string_field(item, "input", where))
    else:
        if namespace is not None:
            name = names.chat_name(ToolRef(name, namespace))
        arguments = string_field(item, "arguments", where)
    return {
        "id": string_field(item, "call_id", where),
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
            parts.append({"type": "text", "text": string_field(part, "text", at)})
        elif part_type == "refusal" and role == "assistant":
            parts.append({"type": "text", "text": string_field(part, "refusal", at)})
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
