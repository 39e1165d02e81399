"""A streamed upstream body read straight from its socket: the relay's hot path.

httpx reads a body through five generators, httpcore's timeouts and h11's state
machine, one HTTP chunk at a time: about 110 µs of CPU per token on the
benchmark's machine, where a `recv` and relay/chunked.py cost about 30
(bench/results/profile-paced-tokens.txt). So once httpx has read the response head
(the status decided, retries done), the body of a chunked event stream is read
here from the connection's socket, the one httpx exposes as the response's
`network_stream` extension, a whole read at a time.

h11, inside httpcore, has buffered the first body bytes that came with the head,
and must end the message for httpcore to keep the connection alive. Both go
through h11's public API (`trailing_data`, `receive_data`, `next_event`); only
finding h11 takes attributes private to httpx and httpcore, whose pinned
versions (requirements.txt) this is written for. When anything along the way is
not as expected (another httpcore, a compressed body, a proxy's TLS inside TLS),
`raw_chunks` returns None and the relay reads through httpx as before; a test
fails if the pinned versions stop taking this path. At the end of the body h11
is given the bytes that complete the chunk it stands in, then the last chunk:
it reaches the end of the message, and httpcore returns the connection to its
pool. If that fails, httpcore closes the connection, which is safe.
"""

from __future__ import annotations

import copy
import logging
import socket
from collections.abc import Generator
from typing import Any

import h11
import httpcore
import httpx

from relay.chunked import ChunkedDecoder, ChunkedError

logger = logging.getLogger(__name__)

READ_SIZE = 64 * 1024


def raw_chunks(response: httpx.Response, idle_timeout: float) -> Generator[bytes, None, None] | None:
    """The response body's bytes, read from the socket; None when this response cannot be read that way."""
    headers = response.headers
    if (
        response.http_version != "HTTP/1.1"
        or headers.get("transfer-encoding", "").lower() != "chunked"
        or headers.get("content-encoding", "identity").lower() != "identity"
    ):
        return None
    state = _h11_state(response)
    network: Any = response.extensions.get("network_stream")
    if (
        state is None
        or state.our_state is not h11.DONE
        or state.their_state is not h11.SEND_BODY
        or type(network).__name__ != "SyncStream"  # a plain or TLS socket; not TLS inside TLS
    ):
        return None
    sock = network.get_extra_info("socket")
    if not isinstance(sock, socket.socket):
        return None
    # Taken now, not at the generator's first step: by then httpx may have read the body.
    start, closed = state.trailing_data  # the body bytes h11 read with the head
    return _read(sock, state, bytes(start), closed, idle_timeout)


def _h11_state(response: httpx.Response) -> h11.Connection | None:
    """The h11 connection behind a response of httpx's HTTPTransport, or None."""
    stream: Any = response.stream
    stream = getattr(stream, "inner", stream)  # relay.upstream wraps it
    pool_stream = getattr(stream, "_httpcore_stream", None)  # httpx's ResponseStream
    connection_stream = getattr(pool_stream, "_stream", None)  # httpcore's PoolByteStream
    connection = getattr(connection_stream, "_connection", None)  # HTTP11ConnectionByteStream
    if not isinstance(connection, httpcore.HTTP11Connection):
        return None
    state = getattr(connection, "_h11_state", None)
    return state if isinstance(state, h11.Connection) else None


def _read(
    sock: socket.socket, state: h11.Connection, start: bytes, closed: bool, idle_timeout: float
) -> Generator[bytes, None, None]:
    decoder = ChunkedDecoder()
    try:
        data = decoder.feed(start)
        at_start = copy.copy(decoder)  # where h11, which holds `start`, stands in the body
        if data:
            yield data
        if not decoder.done and closed:
            raise httpx.RemoteProtocolError("the upstream closed the connection mid-body")
        # httpcore sets the socket's timeout before each use of its own.
        sock.settimeout(idle_timeout)
        while not decoder.done:
            try:
                received = sock.recv(READ_SIZE)
            except TimeoutError:
                raise httpx.ReadTimeout(f"nothing read for {idle_timeout:g} s") from None
            except OSError as error:
                raise httpx.ReadError(str(error)) from None
            if not received:
                raise httpx.RemoteProtocolError("the upstream closed the connection mid-body")
            data = decoder.feed(received)
            if data:
                yield data
    except ChunkedError as error:
        raise httpx.RemoteProtocolError(str(error)) from None
    if not decoder.extra:
        _end_message(state, at_start)


def _end_message(state: h11.Connection, at_start: ChunkedDecoder) -> None:
    """Bring h11 to the end of the message, so that httpcore keeps the connection for the next request."""
    # h11 holds only the first body bytes: complete the chunk they end in, then end the body.
    completion = at_start.completion()
    if completion is None:
        return  # the connection closes instead
    try:
        if completion:  # (h11 takes empty data for the end of the connection)
            state.receive_data(completion)
        while True:
            event = state.next_event()
            if isinstance(event, h11.EndOfMessage) or event is h11.NEED_DATA:
                break
    except h11.RemoteProtocolError:
        logger.debug("h11 did not accept the end of the message; the connection will close")
