"""The server's socket to the client, for what the relay needs from it while it waits and streams.

- Has the client left? Under gevent an io watcher on the socket sees the end of file
  the moment it arrives, at no cost per token; while the relay waits on the upstream
  (`interruptible`), the watcher interrupts that wait, as gevent's Timeout does, so the
  upstream request is closed at once. Elsewhere (gthread) a peek at each upstream read
  tells. A client that only half-closes (its sending side, which browsers and HTTP
  clients do not do) looks the same and is treated as gone.
- How long may one write to it wait? A client that stops reading would otherwise hold its
  stream, and the upstream, for ever; each write gets the idle timeout.
- How long may one read of the request body wait (`read_timeout`)?

gunicorn puts the socket in the WSGI environ as `gunicorn.socket`: gevent's socket under
the gevent worker, a blocking one under gthread. Only public methods of either are used;
peeks go through a duplicate of the descriptor.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

import gevent  # type: ignore[import-untyped]
from gevent import monkey

from relay.errors import ClientGone
from relay.waits import under_gevent

_PEEK = socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0)
_TIMEVAL = "ll"  # struct timeval: seconds, microseconds


# The longest one write to a client may wait (at most UPSTREAM_IDLE_TIMEOUT): a client that stops
# reading is let go after it, and its upstream closed.
CLIENT_WRITE_SECONDS = 60.0


class ClientWatch:
    """Watches one client's socket from the end of its request body to the end of its reply."""

    __slots__ = (
        "__weakref__",
        "_greenlet",
        "_left",
        "_peek",
        "_peer",
        "_prior",
        "_socket",
        "_watcher",
        "ended_by",
        "waiting",
    )

    def __init__(self, sock: Any, write_timeout: float) -> None:
        self._socket = sock
        self._peer: socket.socket | None = None  # a duplicate, for peeks
        self._watcher: Any = None
        self._greenlet: Any = None  # the request's greenlet, which streams its reply too
        # True while the request waits on the upstream: a client that leaves then interrupts the
        # wait. Never while the server writes to the client (gunicorn's code must not be interrupted).
        self.waiting = False
        self._left = False
        self.ended_by: BaseException | None = None  # the server's end (ShuttingDown), once it came
        self._peek = True  # peek at each read (no watcher, or it saw bytes that were not an end)
        self._prior: Any = None
        if sock is None:
            return
        try:
            self._peer = _duplicate(sock)
            if under_gevent():
                self._prior = sock.gettimeout()
                sock.settimeout(write_timeout)  # gevent's sockets time out each wait
                self._greenlet = gevent.getcurrent()
                self._watcher = gevent.get_hub().loop.io(sock.fileno(), 1)  # 1: readable
                self._watcher.start(self._readable)
                self._peek = False
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
            self.release()  # not a socket this can watch: the server notices on its own

    def _readable(self) -> None:
        self._watcher.stop()
        if self._peer is not None and closed(self._peer):
            self._left = True
            if self.waiting:
                self._greenlet.throw(ClientGone("The client closed its connection while the relay waited."))
        else:
            self._peek = True  # bytes that are not an end of file (a pipelined request): peek from now

    def interrupt(self, error: BaseException) -> None:
        """End this request with `error`: at once where it waits (under gevent), else at its next read."""
        self.ended_by = error
        if self._greenlet is not None:
            # From the hub, as the watcher does: a throw from another greenlet would not come back
            # to it once the request's greenlet waits again.
            gevent.get_hub().loop.run_callback(self._end_wait, error)

    def _end_wait(self, error: BaseException) -> None:
        if self.waiting and self._greenlet is not None:
            self.waiting = False
            self._greenlet.throw(error)

    @property
    def left(self) -> bool:
        """Whether the client is known to have left, without looking again."""
        return self._left

    def gone(self) -> bool:
        """Whether the client has closed (or reset) its connection."""
        if not self._left and self._peek and self._peer is not None:
            self._left = closed(self._peer)
        return self._left

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Raise ClientGone in the block's wait as soon as the client leaves (under gevent)."""
        if self.gone():
            raise ClientGone("The client closed its connection while the relay waited.")
        if self.ended_by is not None:
            raise self.ended_by
        self.waiting = True
        try:
            yield
        finally:
            self.waiting = False

    def release(self) -> None:
        """Stop watching and put the socket's timeout back as it was."""
        self.waiting = False
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher.close()
            self._watcher = None
        if self._peer is not None:
            self._peer.close()
            self._peer = None
        sock, prior, self._prior = self._socket, self._prior, None
        if sock is None or prior is None:
            return
        with contextlib.suppress(OSError):  # the connection is gone; nothing to put back
            if under_gevent():
                sock.settimeout(prior)
            else:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, prior)


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
    """Whether the client of this server socket has closed its connection (one peek, never blocks)."""
    try:
        with _duplicate(sock) as peer:
            return closed(peer)
    except (OSError, AttributeError, ValueError):
        return False


def closed(peer: socket.socket) -> bool:
    """Whether the other end has closed (or reset) the connection; never blocks (MSG_DONTWAIT)."""
    try:
        return peer.recv(1, _PEEK) == b""  # end of file
    except (BlockingIOError, InterruptedError):
        return False  # open, nothing to read: the usual case
    except OSError:
        return True  # reset


def _duplicate(sock: Any) -> socket.socket:
    """The operating system's socket on a duplicate of `sock`'s descriptor, for peeks.

    Not gevent's class: its recv would wait where a peek must return at once. Its blocking mode
    is left as it is (the duplicate shares it with the server's socket); MSG_DONTWAIT is enough.
    """
    plain: type[socket.socket] = monkey.get_original("socket", "socket")
    return plain(fileno=os.dup(sock.fileno()))
