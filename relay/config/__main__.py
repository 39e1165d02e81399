"""`python3 -m relay.config`: the settings of this environment as the relay reads them at start-up.

Prints every setting with its value (secrets by their length only) and where it came from, the
upstreams, what a reviewer should know (review.warnings), variables that are no setting, and,
when a limit is set, whether REDIS_URL answers. Exit status 0 and a last line `Configuration ok:
…` when the relay would start; 1 and `Configuration error: <what, naming the variable>` when it
would refuse to. The deploy scripts run it before deploying, so a bad value never reaches a
revision that then fails to start. It needs nothing beyond the standard library.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Mapping, Sequence

from relay.config import ConfigError, Settings, load_settings
from relay.config.environment import masked_url
from relay.config.known_settings import SETTINGS, foreign, misspelt, refusal
from relay.config.review import listing, notes, store_warning, warnings
from relay.config.upstreams import KEY_SETTINGS

_ABOUT = """\
Check the relay's settings in this environment, as the relay reads them at start-up.

Every setting is an environment variable; docs/configuration.md describes each. A variable that
looks like one of them (MAX_TOKEN_LIMIT for MAX_TOKENS_LIMIT, ACESS_TOKENS) and is none is an
error, as at start-up, so that a misspelt limit is never silently left out.

Exit status: 0 when the relay would start with these settings (last line "Configuration ok: …"),
1 when it would refuse them (the line "Configuration error: …" names the variable).
"""


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m relay.config",
        description=_ABOUT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.fill("Settings: " + ", ".join(SETTINGS) + ".", width=96),
    )
    parser.add_argument(
        "--brief", action="store_true", help="print only the warnings and the last line (as the deploy does)"
    )
    parser.add_argument(
        "--names", action="store_true", help="print every setting's name, one a line, and nothing else"
    )
    parser.add_argument(
        "--shell-names",
        nargs="*",
        default=[],
        metavar="NAME",
        help="names of the variables exported where a deploy runs: checked for misspellings only, since "
        "their values are not what the deployment gets (the deploy scripts pass them)",
    )
    options = parser.parse_args(argv)
    if options.names:
        sys.stdout.write("".join(f"{name}\n" for name in SETTINGS))
        return 0
    try:
        settings = load_settings(environ)
        keys = set(settings.key_envs)
        found = misspelt(dict.fromkeys(options.shell_names, ""), also={*keys, *environ})
        if found:
            raise ConfigError(refusal(found, where=" (exported in the shell that deploys)"))
    except ConfigError as error:
        sys.stderr.write(f"Configuration error: {error}\n")
        return 1
    lines = [] if options.brief else [*_settings(environ, settings), "", *_upstreams(settings), ""]
    said = warnings(settings)
    problem = store_warning(settings.limits)
    if problem:
        said.append(problem)
    elif settings.limits.any and settings.limits.redis_url and not options.brief:
        lines.append(f"Limits store: {settings.limits.store_name} answers.")
    lines.extend(f"Warning: {warning}" for warning in said)
    lines.extend(f"Note: {note}" for note in notes(settings) if not options.brief)
    others = foreign(environ, also=settings.key_envs)
    if others and not options.brief:
        lines.append(
            "Not settings of this relay (other programs may read them): "
            + ", ".join(f"{name} (did you mean {meant}?)" for name, meant in others)
        )
    routes = ", ".join(route.host for route in settings.all_routes)
    lines.append(
        f"Configuration ok: upstreams {routes}; longest request {settings.longest_request_seconds:g} s."
    )
    sys.stdout.write("\n".join(lines).lstrip("\n") + "\n")
    return 0


def _settings(environ: Mapping[str, str], settings: Settings) -> list[str]:
    """A table: each setting, where it came from, and its value as shown."""
    width = max(len(name) for name in SETTINGS)
    return ["Settings (docs/configuration.md describes each):"] + [
        f"  {name:<{width}}  {source:<11}  {value}" for name, source, value in listing(environ, settings)
    ]


def _upstreams(settings: Settings) -> list[str]:
    lines = ["Upstreams (a model goes to the first route whose prefix it has, else to its API's default):"]
    for route in settings.all_routes:
        if route.api_key:
            key = f"key from {route.key_env or KEY_SETTINGS[route.api]}"
        elif route.needs_key:
            key = "no key: only callers who send their own" if settings.allow_client_keys else "no key"
        else:
            key = "takes no key"
        headers = ", ".join(name for name, _ in route.headers)
        if route.api == "anthropic":
            speaks = "; speaks the Anthropic Messages API (/v1/messages)"
        else:
            speaks = "; speaks the Responses API" if route.responses_api else "; /v1/responses translated"
        lines.append(
            f"  {route.prefix or '(default)'} -> {masked_url(route.base_url)}: {key}"
            + (f"; headers {headers}" if headers else "")
            + speaks
        )
    return lines


if __name__ == "__main__":
    sys.exit(main())
