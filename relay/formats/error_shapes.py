"""Errors as the APIs' clients read them: OpenAI's JSON error shape, and Anthropic's.

Each names the error's type by its HTTP status, as the SDKs expect, so they raise the matching
exception. Pure: a message and a status in, a JSON object out.
"""

from __future__ import annotations

# OpenAI's error types, by status, as its SDKs expect them.
_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    426: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error(message: str, status: int) -> dict[str, object]:
    """An error in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""
    kind = _OPENAI_ERROR_TYPES.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


# Anthropic's error types, by status, as its SDKs and Claude Code expect them
# (https://platform.claude.com/docs/en/api/errors).
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    return _ANTHROPIC_ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


def anthropic_error(message: str, status: int) -> dict[str, object]:
    """An error in Anthropic's shape: {"type": "error", "error": {"type", "message"}}."""
    return {"type": "error", "error": {"type": anthropic_error_type(status), "message": message}}
