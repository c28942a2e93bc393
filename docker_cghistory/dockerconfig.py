"""The docker CLI's config file, read the way docker reads it.

Light on purpose (``json`` and ``os`` only): completion and the plugin metadata path use it.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache

from .errors import ConfigError

PLUGIN_NAME = "cghistory"


def config_dir() -> str:
    """``$DOCKER_CONFIG``, else ``~/.docker``: the folder the docker CLI uses."""
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def config_path() -> str:
    return os.path.join(config_dir(), "config.json")


@lru_cache(maxsize=1)
def load() -> dict:
    """The parsed config.json; an absent file is an empty config, a broken one an error."""
    path = config_path()
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise ConfigError(f"cannot read docker config {path}: {error.strerror}") from None
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        where = f" (line {error.lineno})" if isinstance(error, json.JSONDecodeError) else ""
        raise ConfigError(f"docker config {path} is not valid JSON{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"docker config {path} is not a JSON object")
    return data


def section(name: str) -> dict:
    """A top-level object of the config (``auths``, ``credHelpers``, ...), checked for type."""
    value = load().get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"docker config {config_path()}: '{name}' must be an object")
    return value


def plugin_settings() -> dict[str, str]:
    """``"plugins": {"cghistory": {...}}``: where docker keeps per-plugin settings."""
    settings = section("plugins").get(PLUGIN_NAME) or {}
    if not isinstance(settings, dict):
        raise ConfigError(f"docker config {config_path()}: plugins.{PLUGIN_NAME} must be an object")
    return settings


def hostname_of(server: str) -> str:
    """docker's ConvertToHostname: ``https://cgr.dev/v1/`` → ``cgr.dev``."""
    for scheme in ("http://", "https://"):
        if server.startswith(scheme):
            server = server[len(scheme) :]
            break
    return server.split("/", 1)[0]
