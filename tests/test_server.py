"""How the gevent worker is tuned (relay/server.py), checked in a process of its own with gevent's patches."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.relay_server import ROOT

# Run where gevent has patched the standard library, as gunicorn's gevent worker does.
CHECK = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()
    import socket
    import gevent
    import httpcore._utils
    from relay.serving.server import unpatch_idle_connection_check

    def check(label):
        quiet, talking = socket.socketpair()
        other_ran = []
        gevent.spawn(other_ran.append, True)  # runs only if the check yields to the event loop
        idle = httpcore._utils.is_socket_readable(quiet)
        talking.send(b"x")
        readable = httpcore._utils.is_socket_readable(quiet)
        talking.close()
        print(label, "idle-readable", idle, "data-readable", readable, "yielded", bool(other_ran))
        gevent.sleep(0)

    check("patched")
    unpatch_idle_connection_check()
    check("unpatched")
    """
)


def test_idle_connection_check_stays_off_the_event_loop_and_still_sees_data() -> None:
    lines = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    # gevent's poll goes through the event loop (the cost the fix removes) ...
    assert lines[0] == "patched idle-readable False data-readable True yielded True"
    # ... the operating system's does not, and answers the same.
    assert lines[1] == "unpatched idle-readable False data-readable True yielded False"
