"""The plugin's settings, resolved one way for every command and for completion.

Each setting comes from, in order: a flag, a ``CGHISTORY_*`` environment variable,
``"plugins": {"cghistory": {...}}`` in the docker config (where docker keeps plugin settings),
a built-in default. List settings are one exception to "first wins": flags, environment and
config add up, as ``--insecure-registry`` always has.

Why one module: the full command line (``context.Context``) and completion used to read the
config each in their own way, and disagreed (a JSON list under ``insecure-registries`` became the
string ``"['host']"`` for one and a list for the other). Why import-free (``os`` only): every TAB
reads settings, and a TAB must not pay for ``json`` or ``re``. The docker config is read only
when a setting falls through to it, through ``dockerconfig`` (the one reader of config.json).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs a TAB ~5 ms to import
    from collections.abc import Mapping

PLUGIN_NAME = "cghistory"  # docker-<name>, plugins.<name>: defined here, and only here
# reference.DEFAULT_REGISTRY and DEFAULT_ORG: repeated because reference.py costs a TAB 5 ms
# (dataclasses); tests/unit/test_settings.py checks they agree.
DEFAULT_REGISTRY = "cgr.dev"
DEFAULT_ORG = "chainguard"


class Setting:
    """One row of the settings table: where a value may come from, and its shape."""

    __slots__ = ("default", "dest", "env", "key", "many")

    def __init__(self, key: str, *, env: str | None = None, dest: str | None = None,
                 default: str = "", many: bool = False) -> None:
        self.key = key  # under plugins.cghistory in the docker config
        self.env = env  # the environment variable, if there is one
        self.dest = dest  # the flag's argparse ``dest``, if there is a flag
        self.default = default
        self.many = many  # a list: flags, environment and config add up


SETTINGS = {setting.key: setting for setting in (
    Setting("registry", env="CGHISTORY_REGISTRY", dest="registry", default=DEFAULT_REGISTRY),
    Setting("org", env="CGHISTORY_ORG", dest="org", default=DEFAULT_ORG),
    Setting("insecure-registries", env="CGHISTORY_INSECURE_REGISTRIES",
            dest="insecure_registries", many=True),
    Setting("timeout", env="CGHISTORY_TIMEOUT", dest="timeout"),
    # How long the listing waits, after the history, for the engine's LOCAL marks.
    Setting("local-wait", env="CGHISTORY_LOCAL_WAIT", default="0.2"),
    Setting("images", many=True),
    # pin --platform's default list. A list, but not ``many``: the first source that names
    # platforms wins, so a narrower --platform replaces the configured list, never adds to it.
    Setting("platforms", env="CGHISTORY_PLATFORMS", dest="platform"),
)}
LIST_SETTINGS = tuple(key for key, setting in SETTINGS.items() if setting.many)


def split_list(value: object) -> list[str]:
    """A list setting in any of its forms: a JSON list, a comma/space separated string, or a
    string holding a JSON list.

    docker wants plugin settings to be strings, so ``"python, node"`` is the normal form; a real
    JSON list is what people write anyway. Both mean the same for every list setting.
    """
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    if not isinstance(value, str):
        return []
    text = value.strip()
    if text.startswith("["):
        try:
            import json  # only for this form: most TABs never get here

            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return split_list(parsed)
        text = text.strip("[]")
    return [item.strip("\"' ") for item in text.replace(",", " ").split() if item.strip("\"' ")]


def plugin_config(strict: bool = True) -> dict[str, object]:
    """``plugins.cghistory`` of the docker config.

    ``strict`` (commands): a broken config is the user's ``ConfigError``. Otherwise
    (completion, which must never fail or print): a broken config is no settings, and a config
    that never mentions the plugin is known to hold none without importing ``json``.
    """
    from . import dockerconfig

    if strict:
        return dict(dockerconfig.plugin_settings())
    if not dockerconfig.mentions(PLUGIN_NAME):
        return {}
    try:
        return dict(dockerconfig.plugin_settings())
    except Exception:
        return {}


def seconds(value: object) -> float | None:
    """A timeout setting: seconds above 0, or ``None`` when not set."""
    if value in (None, ""):
        return None
    try:
        number = float(str(value))
    except ValueError:
        number = 0.0
    if not number > 0:
        from .errors import ConfigError, sanitize

        raise ConfigError(f"invalid timeout {sanitize(value)!r}: "
                          "give a number of seconds above 0")
    return number


class Settings:
    """The answer to "which registry, org, insecure registries, ...", read only when asked.

    ``flags`` maps argparse ``dest`` names to what the command line gave: a value, or a list of
    values (completion collects every occurrence; the last one wins, as in argparse).
    ``config`` stands in for the docker config's plugin settings (tests).
    """

    def __init__(self, flags: Mapping[str, object] | None = None, *,
                 config: Mapping[str, object] | None = None, strict: bool = True) -> None:
        self.flags = dict(flags or {})
        self._config = dict(config) if config is not None else None
        self.strict = strict

    @property
    def config(self) -> dict[str, object]:
        """``plugins.cghistory``, read on first use (never by a command that needs no setting)."""
        if self._config is None:
            self._config = plugin_config(self.strict)
        return self._config

    def flag(self, dest: str) -> object:
        """The flag's value, ``None`` when not given (for a repeated flag, the last one)."""
        given = self.flags.get(dest)
        if isinstance(given, (list, tuple)):
            given = given[-1] if given else None
        return None if given in (None, "") else given

    def get(self, key: str) -> str:
        """A single-valued setting: the flag, the environment, the config, the default."""
        setting = SETTINGS[key]
        given = self.flag(setting.dest) if setting.dest else None
        if given is not None:
            return str(given)
        if setting.env and os.environ.get(setting.env):
            return os.environ[setting.env]
        return str(self.config.get(key) or "") or setting.default

    def get_list(self, key: str) -> list[str]:
        """A list setting: flags, then the environment, then the config, without repeats."""
        setting = SETTINGS[key]
        found: list[str] = []
        given = self.flags.get(setting.dest) if setting.dest else None
        if isinstance(given, str):
            given = [given]
        found += [str(item).strip() for item in given or () if str(item).strip()]
        if setting.env:
            found += split_list(os.environ.get(setting.env, ""))
        found += split_list(self.config.get(key))
        return list(dict.fromkeys(found))

    @property
    def registry(self) -> str:
        return self.get("registry")

    @property
    def org(self) -> str:
        return self.get("org")

    @property
    def insecure_registries(self) -> list[str]:
        return self.get_list("insecure-registries")

    @property
    def images(self) -> list[str]:
        return self.get_list("images")

    @property
    def platforms(self) -> list[str]:
        """pin's platforms, unparsed: the flags, else CGHISTORY_PLATFORMS, else the config."""
        return self.first_list("platforms")[0]

    def first_list(self, key: str) -> tuple[list[str], str]:
        """A list whose first source wins, and that source's name (for an error about it)."""
        setting = SETTINGS[key]
        given = self.flags.get(setting.dest) if setting.dest else None
        flags = split_list(given if isinstance(given, (list, tuple)) else [given] if given
                           else [])
        if flags:
            return flags, f"--{setting.dest}"
        from_env = split_list(os.environ.get(setting.env, "")) if setting.env else []
        if from_env:
            return from_env, str(setting.env)
        return split_list(self.config.get(key)), f"plugins.{PLUGIN_NAME}.{key}"

    @property
    def local_wait(self) -> float:
        """Seconds the listing waits for the engine's LOCAL marks (0 is allowed: never wait)."""
        value = self.get("local-wait")
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not 0 <= number <= 600:
            from .errors import ConfigError, sanitize

            raise ConfigError(f"invalid local-wait {sanitize(value)!r}: "
                              "give a number of seconds from 0 to 600")
        return number

    @property
    def timeout(self) -> float | None:
        """Seconds to wait for a registry; ``None``: the client's default."""
        given = self.flag("timeout")
        if given is None:
            given = os.environ.get(SETTINGS["timeout"].env or "") or self.config.get("timeout")
        return seconds(given)
