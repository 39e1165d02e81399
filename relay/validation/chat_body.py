"""The OpenAI-compatible chat completions body: checked where the relay must, passed on as it is.

Every parameter passes through (tools, response_format, provider fields); the relay
checks only what it acts on: the model, that messages are there, the nesting depth,
and the token fields MAX_TOKENS_LIMIT caps.
"""

from __future__ import annotations

from typing import Any

from relay.errors import BadRequest
from relay.validation.json_values import (
    ApiBody,
    check_depths,
    model_name,
    parse_json_object,
    refuse_unknown_fields,
    token_count,
)

# The fields a caller may set a reply's length with.
TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")

# With MAX_TOKENS_LIMIT, /v1/chat/completions passes on only these fields (and ALLOWED_FIELDS):
# OpenAI's chat completions parameters whose cost the token cap bounds. Not here, so refused
# unless the owner allows them, because the cap does not hold with them: other servers' length
# fields (llama.cpp's n_predict, TGI's max_new_tokens, Ollama's options.num_predict, vLLM's
# min_tokens and ignore_eos), best_of, and the priced extras (prediction, web_search_options).
# An allowlist, not a list of the fields known to cost: a server's next field is refused
# until the owner decides, rather than passed until someone notices.
CHAT_FIELDS = frozenset(
    {
        "model", "messages", "stream", "stream_options", "n",
        "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed",
        "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
        "tools", "tool_choice", "parallel_tool_calls", "functions", "function_call",
        "response_format", "reasoning_effort", "verbosity", "modalities", "audio",
        "user", "safety_identifier", "prompt_cache_key", "metadata", "store", "service_tier",
    }
)  # fmt: skip
# A service tier that costs more per token than the default is a cost the cap does not bound.
SERVICE_TIERS = frozenset({"auto", "default", "flex"})


class ChatCompletionsRequest(ApiBody):
    """A /v1/chat/completions body: the JSON object to pass on, and what the relay reads of it."""

    def asked_tokens(self) -> dict[str, int]:
        """The token fields the caller set, as whole numbers."""
        return {
            name: token_count(name, self.data[name])
            for name in TOKEN_FIELDS
            if self.data.get(name) is not None
        }


def parse_chat_completions(body: bytes) -> ChatCompletionsRequest:
    data = parse_json_object(body)
    model = model_name(data)
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest('"messages" must be a non-empty list of messages.')
    check_depths(data)
    return ChatCompletionsRequest(data, model)


def check_fields(data: dict[str, Any], known: frozenset[str], allowed: tuple[str, ...]) -> None:
    """Under MAX_TOKENS_LIMIT: refuse a field outside `known` and ALLOWED_FIELDS, naming it."""
    refuse_unknown_fields(data, known, allowed)
    tier = data.get("service_tier")
    if (
        tier is not None
        and not (isinstance(tier, str) and tier in SERVICE_TIERS)
        and "service_tier" not in allowed
    ):
        tiers = ", ".join(sorted(SERVICE_TIERS))
        raise BadRequest(f'"service_tier" must be one of {tiers} on this relay (MAX_TOKENS_LIMIT).')


def check_one_choice(data: dict[str, Any]) -> None:
    """With a token limit, one reply per request: each extra choice is another reply's tokens."""
    choices = data.get("n")
    if choices is not None and (isinstance(choices, bool) or choices != 1):  # True == 1 in Python
        raise BadRequest('"n" must be 1 on this relay: each choice is another reply (MAX_TOKENS_LIMIT).')
