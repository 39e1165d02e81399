"""Who is calling: an access token's name, or the client's address; and a caller's share of a worker.

The address of a caller without an access token is the socket's peer locally. Behind a
proxy the peer is the proxy, so it comes from X-Forwarded-For, whose entries a client can
write itself: only the entries the proxies in front appended can be trusted, which are the
last ones. CLIENT_IP_HOPS says how many: on Cloud Run 1 (Google's front end appends the
address it saw; the Cloud Run docs' "X-Forwarded-For" note and Google's load-balancing docs:
"<unverified IP(s)>, <immediate client IP>, <global forwarding rule external IP>, ..."
for a load balancer in front, so 2 there). See docs/configuration.md.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from relay.errors import TooManyAtOnce

ADDRESS_LIMIT = 64  # an IPv6 address with a zone fits; anything longer is not an address


@dataclass(frozen=True)
class Caller:
    """A caller: what its counters are kept under, and what logs and messages call it."""

    key: str  # "token:alice" or "ip:203.0.113.9"
    name: str  # "alice" or "203.0.113.9": never a secret


def identify(token_name: str | None, hops: int, forwarded_for: str | None, peer: str | None) -> Caller:
    if token_name is not None:
        return Caller(f"token:{token_name}", token_name)
    address = client_address(hops, forwarded_for, peer)
    return Caller(f"ip:{address}", address)


def client_address(hops: int, forwarded_for: str | None, peer: str | None) -> str:
    """The entry `hops` from the end of X-Forwarded-For (1: the last), else the socket's peer."""
    if hops > 0 and forwarded_for:
        entries = [entry.strip() for entry in forwarded_for.split(",")]
        if len(entries) >= hops and entries[-hops]:
            return entries[-hops][:ADDRESS_LIMIT]
    return (peer or "unknown")[:ADDRESS_LIMIT]


class InFlight:
    """Each caller's requests in flight in this worker process, at most MAX_REQUESTS_PER_CALLER, if set.

    So that no one caller, however many connections it opens, holds more than its share of the
    worker's connections (THREADS) where many callers share an instance. Unset (the default),
    nothing is counted: one caller, a frontend behind one token, may use the whole instance.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def enter(self, caller: Caller) -> bool:
        """Count the request in; False when there is no share to count against."""
        if self.limit is None:
            return False
        with self._lock:
            count = self._counts.get(caller.key, 0)
            if count >= self.limit:
                raise TooManyAtOnce(caller.name, self.limit)
            self._counts[caller.key] = count + 1
        return True

    def leave(self, caller: Caller) -> None:
        with self._lock:
            count = self._counts.get(caller.key, 0) - 1
            if count > 0:
                self._counts[caller.key] = count
            else:
                self._counts.pop(caller.key, None)
