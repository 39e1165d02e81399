"""The Responses API's request body (POST /v1/responses): parsed, and checked under MAX_TOKENS_LIMIT.

A route whose upstream speaks the Responses API gets the body as it is; for a
chat-only upstream relay/validation/responses_to_chat.py translates it. Under
MAX_TOKENS_LIMIT only RESPONSES_FIELDS pass, and `leave_out_billed_tools` keeps to the
tools that cost only tokens (on a passed-through route built-in tools would run
upstream): the caller's own (functions, custom tools, namespaces of them, a tool search
it runs itself), wherever the request offers them (`tools`, or an `additional_tools`
input item). Another is left out and named in the log line (UNSUPPORTED_TOOLS=omit, so
that an agent that always offers one, as Codex offers web_search, works within the cap),
or refused with a 400 naming it (UNSUPPORTED_TOOLS=refuse).
"""

from __future__ import annotations

from typing import Any

from relay.errors import BadRequest
from relay.validation.json_values import (
    ApiBody,
    check_depths,
    kind,
    model_name,
    parse_json_object,
    quoted_type,
    tool_list,
    tool_object,
)

# With MAX_TOKENS_LIMIT, only these fields pass (and ALLOWED_FIELDS): the Responses API's own
# whose cost the cap on max_output_tokens bounds (see relay/validation/chat_body.py for why).
RESPONSES_FIELDS = frozenset(
    {
        "model", "input", "instructions", "stream", "stream_options", "max_output_tokens",
        "temperature", "top_p", "tools", "tool_choice", "parallel_tool_calls", "text", "reasoning",
        "user", "safety_identifier", "prompt_cache_key", "metadata", "store", "include",
        "truncation", "service_tier", "previous_response_id", "top_logprobs",
        # Codex's own labels for its turns (thread, turn, installation): the upstream keeps them with
        # the request, asks nothing of the model for them.
        "client_metadata",
    }
)  # fmt: skip
# Tools the model calls and the caller runs: they cost tokens only. Besides functions and custom
# tools, OpenAI's own tools that the caller runs (`local_shell` commands, `apply_patch` diffs, on the
# caller's machine). A namespace groups such tools (its members are checked too); a tool search with
# "execution": "client" is run by the caller. Every other tool type (web_search, file_search,
# code_interpreter, image_generation, mcp, computer_use, a tool search the upstream runs...) is run
# by the upstream itself and billed beyond the tokens MAX_TOKENS_LIMIT caps.
TOKEN_ONLY_TOOLS = frozenset({"function", "custom", "local_shell", "apply_patch"})
# The types of tools left out of one request that its log line names, each cut to TYPE_LIMIT: more
# would only be the same names again (a request may offer hundreds of tools).
OMITTED_LIMIT = 8
TYPE_LIMIT = 64


class ResponsesRequest(ApiBody):
    """A /v1/responses body: the JSON object, and what the relay reads of it."""

    def asked_tokens(self) -> int | None:
        return self.token_field("max_output_tokens")


def parse_responses(body: bytes) -> ResponsesRequest:
    data = parse_json_object(body, "model and input")
    model = model_name(data)
    given = data.get("input")
    if not (isinstance(given, str) and given) and not (isinstance(given, list) and given):
        raise BadRequest(f'"input" must be a non-empty string or list of input items, got {kind(given)}.')
    check_depths(data)
    return ResponsesRequest(data, model)


def leave_out_billed_tools(data: dict[str, Any], allowed: tuple[str, ...], unsupported: str) -> list[str]:
    """Under MAX_TOKENS_LIMIT: a tool the upstream runs itself, billed beyond the tokens, unless
    ALLOWED_FIELDS names its type, is left out of `data` (its type returned, for the log line), or,
    with UNSUPPORTED_TOOLS=refuse, the request refused naming it. A tool_choice naming one goes too.
    """
    omitted: list[str] = []
    if data.get("tools") is not None:
        data["tools"] = _kept(data["tools"], "tools", allowed, unsupported, omitted, inside=False)
    given = data.get("input")
    if isinstance(given, list):
        for index, item in enumerate(given):
            if isinstance(item, dict) and item.get("type") == "additional_tools":
                where = f"input[{index}].tools"
                given[index] = {
                    **item,
                    "tools": _kept(item.get("tools"), where, allowed, unsupported, omitted),
                }
    choice = data.get("tool_choice")
    if (
        isinstance(choice, dict)
        and isinstance(choice.get("type"), str)
        and choice["type"][:TYPE_LIMIT] in omitted
    ):
        del data["tool_choice"]
    return omitted


def _kept(
    tools: Any,
    where: str,
    allowed: tuple[str, ...],
    unsupported: str,
    omitted: list[str],
    *,
    inside: bool = False,
) -> list[Any]:
    kept = []
    for index, given in enumerate(tool_list(tools, where)):
        at = f"{where}[{index}]"
        tool = tool_object(given, at)
        tool_type = tool.get("type")
        if tool_type == "namespace" and not inside:
            members = _kept(tool.get("tools"), f"{at}.tools", allowed, unsupported, omitted, inside=True)
            kept.append({**tool, "tools": members})
            continue
        if not isinstance(tool_type, str):
            raise BadRequest(
                f'"{at}.type" is {quoted_type(tool_type)}; a tool\'s type is a string such as "function".'
            )
        callers = tool_type in TOKEN_ONLY_TOOLS or (
            tool_type == "tool_search" and tool.get("execution") == "client"
        )
        if callers or tool_type in allowed:
            kept.append(tool)
        elif unsupported == "refuse":
            raise BadRequest(
                f'"{at}.type" is {quoted_type(tool_type)}: a tool the upstream runs itself, billed '
                "beyond the tokens this relay caps (MAX_TOKENS_LIMIT). Its owner can allow that type "
                '(ALLOWED_FIELDS); "function" and "custom" tools, and namespaces of them, pass.'
            )
        else:
            note_omitted(omitted, tool_type)
    return kept


def note_omitted(omitted: list[str], tool_type: str) -> None:
    """A tool's type among those a request's log line names as left out: each once, a few at most."""
    named = tool_type[:TYPE_LIMIT]
    if named not in omitted and len(omitted) < OMITTED_LIMIT:
        omitted.append(named)
