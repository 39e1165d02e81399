"""Configuration: environment variables read once, at start-up, into a frozen Settings.

This package uses the standard library only, so that `python3 -m relay.config`
can check a deployment's settings on a machine without the relay's dependencies.
"""

from relay.config.environment import HEADER_TOKEN, ConfigError
from relay.config.settings import Settings, load_settings
from relay.config.upstreams import Route

__all__ = ["HEADER_TOKEN", "ConfigError", "Route", "Settings", "load_settings"]
