"""The server's socket to the client, for what the relay needs from it while it waits and streams.

- Is the client still there? A peek that reads end of file means it closed its
  connection, so the relay can free the upstream before writing to a dead socket
  (gunicorn alone only notices at the second failed write). A client that only
  half-closes (shutdown of its sending side, which browsers and HTTP clients do
  not do) looks the same and is treated as gone.
- How long may one write wait? A client that stops reading would otherwise hold
  its stream, and the upstream, for ever; each write gets the idle timeout.
- How long may the request body take? `read_timeout` bounds each read of it.
- Did the client leave while the relay waited for the upstream's answer (a reasoning model may
  think for a minute first)? Under gevent, `stop_if_client_leaves` interrupts that wait, so the
  upstream request is closed then, not when the upstream begins to answer.

gunicorn puts the socket in the WSGI environ as `gunicorn.socket`. Under the
gevent worker it is gevent's socket, whose operating-system socket (`_sock`) is
non-blocking and whose timeout is gevent's; under gthread it is a blocking
socket, whose sends the kernel's SO_SNDTIMEO bounds.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Iterator
from typing import Any

import gevent  # type: ignore[import-untyped]

from relay.errors import ClientGone

_PEEK = socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0)
_TIMEVAL = "ll"  # struct timeval: seconds, microseconds


class ClientConnection:
    """Watches one client socket for the length of a stream; `release` puts it back as it was."""

    __slots__ = ("_gevent", "_os_socket", "_prior", "_socket")

    def __init__(self, sock: Any, write_timeout: float) -> None:
        self._socket = sock
        self._os_socket: socket.socket | None = None
        self._gevent = False
        self._prior: Any = None
        if sock is None:
            return
        try:
            self._gevent = hasattr(sock, "_sock")
            self._os_socket = sock._sock if self._gevent else sock
            if self._gevent:
                self._prior = sock.gettimeout()
                sock.settimeout(write_timeout)
            else:
                self._prior = sock.getsockopt(
                    socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.calcsize(_TIMEVAL)
                )
                seconds = int(write_timeout)
                microseconds = int((write_timeout - seconds) * 1_000_000)
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack(_TIMEVAL, seconds, microseconds)
                )
        except (OSError, AttributeError, ValueError):
            self._os_socket = None  # not a socket this can watch: the server notices on its own

    def gone(self) -> bool:
        """Whether the client has closed (or reset) its connection."""
        return self._os_socket is not None and _closed(self._os_socket)

    def release(self) -> None:
        sock, self._os_socket = self._socket, None
        if sock is None or self._prior is None:
            return
        try:
            if self._gevent:
                sock.settimeout(self._prior)
            else:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, self._prior)
        except OSError:
            pass  # the connection is gone; nothing to put back


@contextlib.contextmanager
def read_timeout(sock: Any, seconds: float) -> Iterator[None]:
    """Give the client's socket this timeout while the block reads from it; then the one it had."""
    try:
        prior = sock.gettimeout()
        sock.settimeout(seconds)
        was_set = True
    except (OSError, AttributeError):  # no socket (another server), or one already closed
        was_set = False
    try:
        yield
    finally:
        if was_set:
            with contextlib.suppress(OSError):  # the connection is gone
                sock.settimeout(prior)


def has_left(sock: Any) -> bool:
    """Whether the client of this server socket (gevent's or a plain one) has closed its connection."""
    peer = getattr(sock, "_sock", sock)
    return peer is not None and _closed(peer)


def _closed(peer: Any) -> bool:
    """Whether the other end of a socket has closed (or reset) it; never blocks."""
    try:
        return bool(peer.recv(1, _PEEK) == b"")  # end of file
    except (BlockingIOError, InterruptedError):
        return False  # open, nothing to read: the usual case
    except OSError:
        return True  # reset


@contextlib.contextmanager
def stop_if_client_leaves(sock: Any) -> Iterator[None]:
    """Raise ClientGone in the block's wait as soon as the client closes its connection.

    Under gevent only (the socket is gevent's): an io watcher on the client's socket runs in
    gevent's event loop when the client sends or closes; if it closed, the watcher throws into
    the greenlet waiting in the block, as gevent's own Timeout interrupts a wait. Under gthread a
    thread blocked in a read cannot be interrupted; there the relay notices at the first
    upstream read. Bytes that are not an end of file (a pipelined request) end the watch.
    """
    peer = getattr(sock, "_sock", None)  # gevent's socket wraps the operating system's
    if peer is None:
        yield
        return
    waiting = gevent.getcurrent()
    watcher = gevent.get_hub().loop.io(peer.fileno(), 1)  # 1: readable

    def readable() -> None:
        watcher.stop()
        if _closed(peer):
            waiting.throw(
                ClientGone("The client closed its connection while the relay waited for the upstream.")
            )

    watcher.start(readable)
    try:
        yield
    finally:
        watcher.stop()
        watcher.close()
