"""What a command needs besides its own arguments: settings, and one registry client per host.

Settings (registry, org, insecure registries, timeout) are resolved by ``settings.Settings``,
the same way completion resolves them, and only when first used: ``install``, ``uninstall``
and ``completion SHELL`` need none, so they work whatever the docker config holds.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from .errors import UsageError
from .reference import DOCKER_HUB, Reference, host_name, parse_cli
from .settings import Settings

DOCKER_HUB_API = "registry-1.docker.io"

if TYPE_CHECKING:
    from .registry import RegistryClient


class Context:
    """What a command needs besides its own arguments.

    ``settings`` carries the flags; the timeouts, attempts and helper timeout given here are
    not settings but overrides (completion's budget), and win over them.
    """

    def __init__(
        self,
        *,
        program: str,
        settings: Settings | None = None,
        debug: bool = False,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        attempts: int | None = None,
        helper_timeout: float | None = None,
    ) -> None:
        self.program = program
        self.debug = debug
        self.settings = settings if settings is not None else Settings()
        # A bad flag is a usage error whatever the command; checking it reads no config.
        given = self.settings.flag("timeout")
        if isinstance(given, (int, float)) and not given > 0:
            raise UsageError("--timeout takes a number of seconds above 0")
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._attempts = attempts
        self.helper_timeout = helper_timeout
        self._clients: dict[str, RegistryClient] = {}

    @property
    def default_registry(self) -> str:
        return self.settings.registry

    @property
    def default_org(self) -> str:
        return self.settings.org

    @cached_property
    def insecure(self) -> set[str]:
        return {entry.lower() for entry in self.settings.insecure_registries}

    @cached_property
    def client_options(self) -> dict[str, float | int]:
        """Keyword arguments for every ``RegistryClient``: only what was set, else its defaults."""
        read_timeout = self._read_timeout
        if read_timeout is None:
            read_timeout = self.settings.timeout
        connect_timeout = self._connect_timeout
        if read_timeout is not None and connect_timeout is None:
            connect_timeout = min(read_timeout, 10.0)
        return {
            key: value for key, value in (
                ("connect_timeout", connect_timeout), ("read_timeout", read_timeout),
                ("attempts", self._attempts),
            ) if value is not None
        }

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
