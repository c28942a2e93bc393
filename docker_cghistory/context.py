"""Settings shared by every command, and the one registry client per host.

Defaults come from, in order: flags, ``CGHISTORY_*`` environment variables, and
``"plugins": {"cghistory": {...}}`` in the docker config (where docker keeps plugin settings).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from . import dockerconfig
from .errors import ConfigError, UsageError, sanitize
from .reference import (
    DEFAULT_ORG,
    DEFAULT_REGISTRY,
    DOCKER_HUB,
    Reference,
    host_name,
    parse_cli,
)

DOCKER_HUB_API = "registry-1.docker.io"

if TYPE_CHECKING:
    from .registry import RegistryClient


def _timeout_setting(value: object) -> float | None:
    """``CGHISTORY_TIMEOUT`` or the config's ``timeout``: seconds, above 0."""
    if value in (None, ""):
        return None
    try:
        seconds = float(str(value))
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise ConfigError(f"invalid timeout {sanitize(value)!r}: give a number of seconds above 0")
    return seconds


class Context:
    """What a command needs besides its own arguments."""

    def __init__(
        self,
        *,
        program: str,
        registry: str | None = None,
        org: str | None = None,
        insecure_registries: list[str] | None = None,
        debug: bool = False,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        attempts: int | None = None,
        helper_timeout: float | None = None,
    ) -> None:
        settings = dockerconfig.plugin_settings()
        self.program = program
        self.debug = debug
        self.default_registry = (
            registry or os.environ.get("CGHISTORY_REGISTRY") or str(settings.get("registry") or "")
            or DEFAULT_REGISTRY
        )
        self.default_org = (
            org or os.environ.get("CGHISTORY_ORG") or str(settings.get("org") or "")
            or DEFAULT_ORG
        )
        insecure = list(insecure_registries or [])
        insecure += os.environ.get("CGHISTORY_INSECURE_REGISTRIES", "").replace(",", " ").split()
        insecure += str(settings.get("insecure-registries") or "").replace(",", " ").split()
        self.insecure = {entry.strip().lower() for entry in insecure if entry.strip()}
        if read_timeout is None:
            read_timeout = _timeout_setting(os.environ.get("CGHISTORY_TIMEOUT")
                                            or settings.get("timeout"))
        elif read_timeout <= 0:
            raise UsageError("--timeout takes a number of seconds above 0")
        if read_timeout is not None and connect_timeout is None:
            connect_timeout = min(read_timeout, 10.0)
        self.client_options = {
            key: value for key, value in (
                ("connect_timeout", connect_timeout), ("read_timeout", read_timeout),
                ("attempts", attempts),
            ) if value is not None
        }
        self.helper_timeout = helper_timeout
        self._clients: dict[str, RegistryClient] = {}

    def parse(self, text: str) -> Reference:
        """A reference typed by the user, with this context's default registry and org."""
        return parse_cli(text, self.default_registry, self.default_org)

    def is_insecure(self, registry: str) -> bool:
        return registry.lower() in self.insecure or host_name(registry).lower() in self.insecure

    def client(self, registry: str) -> RegistryClient:
        """The registry client for ``registry``, created once per process."""
        if registry not in self._clients:
            from . import credentials
            from .registry import RegistryClient

            def resolver() -> credentials.Credential:
                if self.helper_timeout is None:
                    return credentials.resolve(registry)
                return credentials.resolve(registry, self.helper_timeout)

            # Docker Hub's name and its API host differ; credentials are filed under the name.
            api_host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
            self._clients[registry] = RegistryClient(
                api_host, insecure=self.is_insecure(registry), credential=resolver,
                **self.client_options,
            )
        return self._clients[registry]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
