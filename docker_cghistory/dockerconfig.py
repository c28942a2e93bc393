"""The docker CLI's config file, read the way docker reads it: the one reader of config.json.

Light on purpose (``os`` at import; ``json`` only to parse): completion asks ``mentions`` on
every TAB, and most configs never mention the plugin, so most TABs never import ``json``.
"""

from __future__ import annotations

import os
from functools import lru_cache

from .settings import PLUGIN_NAME


def config_dir() -> str:
    """``$DOCKER_CONFIG``, else ``~/.docker``: the folder the docker CLI uses."""
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def config_path() -> str:
    return os.path.join(config_dir(), "config.json")


def _config_error(message: str) -> Exception:
    from .errors import ConfigError  # errors imports re: not for the TABs that never fail

    return ConfigError(message)


def _read() -> bytes:
    """config.json's bytes; ``b""`` when there is none."""
    path = config_path()
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return b""
    except OSError as error:
        raise _config_error(f"cannot read docker config {path}: {error.strerror}") from None


def mentions(word: str) -> bool:
    """Whether ``"word"`` appears in config.json at all: a byte search, never an error.

    ``False`` means no object in the config is named ``word``, so callers can skip parsing.
    """
    try:
        return f'"{word}"'.encode() in _read()
    except Exception:
        return False


@lru_cache(maxsize=1)
def load() -> dict:
    """The parsed config.json; an absent file is an empty config, a broken one an error."""
    raw = _read()
    if not raw.strip():
        return {}
    import json

    path = config_path()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        where = f" (line {error.lineno})" if isinstance(error, json.JSONDecodeError) else ""
        raise _config_error(f"docker config {path} is not valid JSON{where}") from None
    if not isinstance(data, dict):
        raise _config_error(f"docker config {path} is not a JSON object")
    return data


def section(name: str) -> dict:
    """A top-level object of the config (``auths``, ``credHelpers``, ...), checked for type."""
    value = load().get(name) or {}
    if not isinstance(value, dict):
        raise _config_error(f"docker config {config_path()}: '{name}' must be an object")
    return value


def plugin_settings() -> dict[str, str]:
    """``"plugins": {"cghistory": {...}}``: where docker keeps per-plugin settings."""
    settings = section("plugins").get(PLUGIN_NAME) or {}
    if not isinstance(settings, dict):
        raise _config_error(
            f"docker config {config_path()}: plugins.{PLUGIN_NAME} must be an object")
    return settings


def hostname_of(server: str) -> str:
    """docker's ConvertToHostname: ``https://cgr.dev/v1/`` → ``cgr.dev``."""
    for scheme in ("http://", "https://"):
        if server.startswith(scheme):
            server = server[len(scheme) :]
            break
    return server.split("/", 1)[0]
