"""`python3 -m relay.config`: check the settings in this environment as the relay reads them at start-up.

Exit status 0 and `Configuration ok: …` when the relay would start; 1 and
`Configuration error: <what, naming the variable>` when it would refuse to.
The deploy scripts run it before deploying, so a bad value never reaches a
revision that then fails to start. It needs nothing beyond the standard library.
"""

from __future__ import annotations

import os
import sys

from relay.config import ConfigError, load_settings


def main() -> int:
    try:
        settings = load_settings(os.environ)
    except ConfigError as error:
        sys.stderr.write(f"Configuration error: {error}\n")
        return 1
    routes = ", ".join(route.host for route in (settings.default_route, *settings.routes))
    sys.stdout.write(
        f"Configuration ok: upstreams {routes}; longest request {settings.longest_request_seconds:g} s.\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
