"""The tools a Responses request offers, as the functions of a chat completions request.

Function tools pass as they are. `namespace` and `custom` tools, which the caller runs as it runs
functions (Codex offers both), become functions too, named and shaped by
relay/formats/responses_tools.py, which tells their calls back; so do the tools an
`additional_tools` input item offers ("Responses Lite"). A tool the upstream itself would run
(`web_search`, `file_search`, `code_interpreter`, ...) cannot run on a chat upstream: it is left
out and named in the request's log line, or, where the owner set UNSUPPORTED_TOOLS=refuse, the
request is refused with a 400 that names it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from relay.errors import BadRequest
from relay.formats.responses_tools import ToolNames, ToolRef, custom_parameters
from relay.validation.json_values import (
    quoted_type,
    string_field,
    tool_list,
    tool_object,
)
from relay.validation.responses_body import note_omitted

# Tools the caller runs, which a chat upstream can call: functions, and what becomes one.
CALLER_TOOLS = frozenset({"function", "custom"})


def offered(data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every tool the request offers, with where it is: `tools`, then `additional_tools` input items."""
    tools = data.get("tools")
    if tools is not None:
        yield from ((f"tools[{index}]", tool) for index, tool in enumerate(tool_list(tools, "tools")))
    given = data.get("input")
    for index, item in enumerate(given if isinstance(given, list) else ()):
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            more = tool_list(item.get("tools"), f"input[{index}].tools")
            yield from ((f"input[{index}].tools[{number}]", tool) for number, tool in enumerate(more))


@dataclass(frozen=True)
class _Tool:
    """A tool the caller runs, found where `where` says, under `namespace` if it is in one."""

    where: str
    tool: dict[str, Any]
    namespace: str | None = None
    about: str | None = None  # the namespace's description


def chat_tools(
    offered: Iterator[tuple[str, Any]], names: ToolNames, omitted: list[str], unsupported: str
) -> list[dict[str, Any]]:
    """The chat tools for the caller's: its functions as they are, the others made functions."""
    found: list[_Tool] = []
    for where, tool in offered:
        tool_type = _tool_type(tool, where)
        if tool_type in CALLER_TOOLS:
            found.append(_Tool(where, tool))
        elif tool_type == "namespace":
            namespace = string_field(tool, "name", where)
            about = tool.get("description") if isinstance(tool.get("description"), str) else None
            inner = tool_list(tool.get("tools"), f"{where}.tools")
            for index, member in enumerate(inner):
                at = f"{where}.tools[{index}]"
                if _tool_type(member, at) in CALLER_TOOLS:
                    found.append(_Tool(at, member, namespace, about))
                else:
                    _unsupported(at, member["type"], omitted, unsupported)
        else:
            _unsupported(where, tool_type, omitted, unsupported)
    for entry in found:  # the tools' own names first: a name the relay makes must not be one of them
        if entry.namespace is None:
            names.reserve(string_field(entry.tool, "name", entry.where))
    return [_chat_tool(entry, names) for entry in found]


def _tool_type(tool: Any, where: str) -> str:
    tool_type = tool_object(tool, where).get("type")
    if not isinstance(tool_type, str):
        raise BadRequest(
            f'"{where}.type" is {quoted_type(tool_type)}; a tool\'s type is a string such as "function", '
            '"custom" or "namespace".'
        )
    return tool_type


def _unsupported(where: str, tool_type: str, omitted: list[str], unsupported: str) -> None:
    """A tool the upstream would run itself: left out (and logged), or the request refused."""
    if unsupported == "refuse":
        raise BadRequest(
            f'"{where}.type" is {quoted_type(tool_type)}: a tool the upstream runs itself, which this '
            "model's upstream (it speaks only chat completions) cannot run. Leave the tool out: this "
            "relay's owner refuses such a request rather than send it without the tool "
            "(UNSUPPORTED_TOOLS=refuse)."
        )
    note_omitted(omitted, tool_type)


def _chat_tool(entry: _Tool, names: ToolNames) -> dict[str, Any]:
    tool, where = entry.tool, entry.where
    name = string_field(tool, "name", where)
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


def chat_tool_choice(choice: Any, names: ToolNames, omitted: list[str], unsupported: str) -> Any:
    """The chat `tool_choice` for the caller's; None where it names a tool left out."""
    if isinstance(choice, str):
        return choice  # "auto", "none", "required"
    chosen = choice.get("type") if isinstance(choice, dict) else None
    chosen = chosen if isinstance(chosen, str) else None
    name = choice.get("name") if isinstance(choice, dict) else None
    if chosen in CALLER_TOOLS and isinstance(name, str):
        namespace = choice.get("namespace")
        if chosen == "custom" or isinstance(namespace, str):
            ref = ToolRef(name, namespace if isinstance(namespace, str) else None, chosen == "custom")
            name = names.chat_name(ref)
        return {"type": "function", "function": {"name": name}}
    if chosen is not None and chosen not in (*CALLER_TOOLS, "allowed_tools") and unsupported == "omit":
        note_omitted(omitted, chosen)  # it names a tool left out: the upstream chooses among the others
        return None
    raise BadRequest(
        '"tool_choice" must be "auto", "none", "required" or {"type": "function", "name": ...} here.'
    )
