"""A test client for the original endpoint that keeps every network read and when it came."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

USER = [{"role": "user", "content": "Hi"}]


@dataclass
class ChatReply:
    status: int
    headers: httpx.Headers
    headers_at: float  # seconds from the request to the status line
    reads: list[tuple[float, bytes]]  # (seconds from the request, bytes) per network read

    @property
    def body(self) -> bytes:
        return b"".join(data for _, data in self.reads)

    @property
    def text(self) -> str:
        return self.body.decode()

    @property
    def request_id(self) -> str:
        """The relay's name for this request, which its log line carries."""
        return self.headers["x-relay-request-id"]


def chat(
    client: httpx.Client,
    url: str,
    model: str = "gpt-test",
    *,
    path: str = "/api/chat",
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> ChatReply:
    """POST a chat request and read the whole streamed reply."""
    payload = {"model": model, "messages": USER, **fields}
    started = time.monotonic()
    with client.stream("POST", url + path, json=payload, headers=headers) as response:
        headers_at = time.monotonic() - started
        reads = [(time.monotonic() - started, data) for data in response.iter_raw()]
        return ChatReply(response.status_code, response.headers, headers_at, reads)
