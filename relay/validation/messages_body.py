"""Anthropic's Messages API body (POST /v1/messages, /v1/messages/count_tokens): parsed, and checked
under MAX_TOKENS_LIMIT.

The body passes through as it is, only the model's route prefix taken off; the relay checks
only what it acts on: the model, that messages are there, the nesting depth, `max_tokens`. Under
MAX_TOKENS_LIMIT only MESSAGES_FIELDS pass (and ALLOWED_FIELDS), and `check_tools` keeps to the
tools that cost only tokens: the upstream runs its server tools itself and bills each use.
"""

from __future__ import annotations

import re
from typing import Any

from relay.errors import BadRequest
from relay.validation.json_values import (
    ApiBody,
    check_depths,
    kind,
    model_name,
    parse_json_object,
    quoted_type,
    refuse_unknown_fields,
    tool_list,
    tool_object,
)

# With MAX_TOKENS_LIMIT, only these fields pass (and ALLOWED_FIELDS): the Messages API's own
# whose cost the cap on max_tokens bounds (relay/validation/chat_body.py says why an allowlist).
# Not here, so refused unless the owner allows them: `container` and `mcp_servers` (run and
# billed by the upstream beyond the tokens), `inference_geo` (priced higher), and any field
# Anthropic adds next. `thinking` is bounded by max_tokens, which bounds all a reply writes;
# `context_management` is checked below; `cache_control` is billed as tokens.
MESSAGES_FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "stream", "system", "metadata", "stop_sequences",
        "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "output_config",
        "service_tier", "speed", "context_management", "cache_control",
    }
)  # fmt: skip
# Values of the priced fields that cost no more than the tokens: a field's other values are
# refused under the cap (the fast mode costs several times the tokens' price).
PRICED_VALUES = {"service_tier": frozenset({"auto", "standard_only"}), "speed": frozenset({"standard"})}
# Context edits that only take from what the model reads (cheaper); a compaction has the upstream
# write a summary, billed besides the reply.
CLEARING_EDIT = re.compile(r"clear_[a-z_]+_\d{8}")
# Tools the model calls and the caller runs: a tool of its own (input_schema, no type or
# "custom"), and Anthropic's client tools (bash, the text editor, computer use, memory), each
# type dated (bash_20250124). Every other type (web_search_*, web_fetch_*, code_execution_*,
# tool_search_tool_*, mcp_toolset, ...) the upstream runs and bills per use, beyond the tokens.
CLIENT_TOOLS = re.compile(r"custom|(bash|text_editor|computer|memory)_\d{8}")
_DATED = re.compile(r"(.+)_\d{8}")


class MessagesRequest(ApiBody):
    """A Messages body: the JSON object to pass on, and what the relay reads of it."""

    def asked_tokens(self) -> int | None:
        return self.token_field("max_tokens")


def parse_messages(body: bytes) -> MessagesRequest:
    """The body of /v1/messages or /v1/messages/count_tokens, its `max_tokens` a whole number if given."""
    data = parse_json_object(body, "model, messages and max_tokens")
    model = model_name(data)
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest(f'"messages" must be a non-empty list of messages, got {kind(messages)}.')
    check_depths(data)
    request = MessagesRequest(data, model)
    request.asked_tokens()
    return request


def check_messages_fields(data: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """Under MAX_TOKENS_LIMIT: refuse a field, a value, a context edit or a tool the cap does not bound."""
    refuse_unknown_fields(data, MESSAGES_FIELDS, allowed)
    for name, values in PRICED_VALUES.items():
        value = data.get(name)
        if value is not None and not (isinstance(value, str) and value in values) and name not in allowed:
            raise BadRequest(
                f'"{name}" must be {" or ".join(sorted(values))} on this relay: another costs more than '
                "its tokens (MAX_TOKENS_LIMIT). Its owner can allow it (ALLOWED_FIELDS)."
            )
    _check_edits(data.get("context_management"), allowed)
    check_tools(data.get("tools"), allowed)


def _check_edits(management: Any, allowed: tuple[str, ...]) -> None:
    if management is None or "context_management" in allowed:
        return
    edits = management.get("edits") if isinstance(management, dict) else None
    if not isinstance(edits, list):
        raise BadRequest(
            f'"context_management" must be an object with a list of "edits", got {kind(management)}.'
        )
    for index, edit in enumerate(edits):
        edit_type = edit.get("type") if isinstance(edit, dict) else None
        if not (isinstance(edit_type, str) and CLEARING_EDIT.fullmatch(edit_type)):
            raise BadRequest(
                f'"context_management.edits[{index}].type" is {quoted_type(edit_type)}: only edits that '
                "clear context pass while this relay caps tokens (MAX_TOKENS_LIMIT); another may cost more "
                "than the reply's tokens. Its owner can allow it (ALLOWED_FIELDS=context_management)."
            )


def check_tools(tools: Any, allowed: tuple[str, ...]) -> None:
    """Refuse a tool the upstream runs itself unless ALLOWED_FIELDS names its type (dated or not)."""
    if tools is None:
        return
    for index, given in enumerate(tool_list(tools, "tools")):
        tool = tool_object(given, f"tools[{index}]")
        tool_type = tool.get("type")
        if tool_type is None or (isinstance(tool_type, str) and client_tool(tool_type, allowed)):
            continue
        raise BadRequest(
            f'"tools[{index}].type" is {quoted_type(tool_type)}: a tool the upstream runs itself, billed '
            "beyond the tokens this relay caps (MAX_TOKENS_LIMIT). Its owner can allow that type "
            "(ALLOWED_FIELDS, with or without its date: web_search); the caller's own tools "
            "(input_schema), bash, text_editor, computer and memory pass."
        )


def client_tool(tool_type: str, allowed: tuple[str, ...]) -> bool:
    """Whether a tool costs only tokens (the caller runs it), or its owner allows its type."""
    if CLIENT_TOOLS.fullmatch(tool_type) or tool_type in allowed:
        return True
    undated = _DATED.fullmatch(tool_type)
    return undated is not None and undated.group(1) in allowed
