"""Where the Docker engine is: the docker CLI's choice, read without the CLI.

Why it is its own module: finding the engine is configuration (environment, config.json,
the CLI's context store), not talking to it. It is the one engine-side part that ``pull`` and
the listing's LOCAL mark need before any connection, and tests drive it with files alone.

The order is the CLI's: ``DOCKER_HOST`` first, then the ``DOCKER_CONTEXT`` variable, then
config.json ``currentContext``, then the default socket. docker-py's own ``ContextAPI`` ignores
``DOCKER_CONTEXT`` and looks for contexts next to a config.json that may not exist, so the
context store is read here, as the CLI lays it out. docker-py is imported only for a
``DOCKER_HOST`` or a context with TLS material.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import dockerconfig
from .errors import EngineError, sanitize

DEFAULT_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class Endpoint:
    """An engine address and how it was chosen; ``tls`` is a docker-py ``TLSConfig`` or bool."""

    host: str
    tls: Any = False
    source: str = "default"

    @property
    def shown(self) -> str:
        """The address for messages, naming the context when one chose it."""
        where = "" if self.source in ("default", "DOCKER_HOST") else f" ({self.source})"
        return f"{sanitize(self.host)}{where}"


def context_name(environ: Mapping[str, str]) -> str:
    """The docker CLI's context choice when ``DOCKER_HOST`` is unset."""
    name = environ.get("DOCKER_CONTEXT", "").strip()
    if name:
        return name
    current = dockerconfig.load().get("currentContext")
    return current.strip() if isinstance(current, str) and current.strip() else "default"


def resolve_endpoint(environ: Mapping[str, str] | None = None) -> Endpoint:
    """``DOCKER_HOST`` (with ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``), else the context."""
    environ = os.environ if environ is None else environ
    if environ.get("DOCKER_HOST", "").strip():
        from docker.utils import kwargs_from_env

        kwargs = kwargs_from_env(environment=dict(environ))
        return Endpoint(kwargs["base_url"], kwargs.get("tls", False), "DOCKER_HOST")
    name = context_name(environ)
    if name == "default":
        return Endpoint(DEFAULT_HOST)
    return _context_endpoint(name)


def _context_endpoint(name: str) -> Endpoint:
    """Read the CLI's context store: ``contexts/meta/<sha256(name)>/meta.json`` and its TLS."""
    store = os.path.join(dockerconfig.config_dir(), "contexts")
    key = hashlib.sha256(name.encode()).hexdigest()
    meta_file = os.path.join(store, "meta", key, "meta.json")
    source = f"docker context {sanitize(name)!r}"
    try:
        with open(meta_file, "rb") as handle:
            meta = json.load(handle)
        endpoint = meta["Endpoints"]["docker"]
        host = endpoint["Host"]
        if not isinstance(host, str) or not host:
            raise TypeError
    except FileNotFoundError:
        raise EngineError(
            f"{source} not found (chosen by DOCKER_CONTEXT or config.json currentContext); "
            "see 'docker context ls'"
        ) from None
    except (OSError, ValueError, KeyError, TypeError):
        raise EngineError(f"{source} has no usable docker endpoint in {meta_file}") from None
    tls: Any = False
    tls_dir = os.path.join(store, "tls", key, "docker")
    if os.path.isdir(tls_dir):
        from docker.tls import TLSConfig

        def path(file: str) -> str | None:
            full = os.path.join(tls_dir, file)
            return full if os.path.exists(full) else None

        cert, client_key = path("cert.pem"), path("key.pem")
        tls = TLSConfig(
            client_cert=(cert, client_key) if cert and client_key else None,
            ca_cert=path("ca.pem"),
            verify=not endpoint.get("SkipTLSVerify", False),
        )
    return Endpoint(host, tls, source)
