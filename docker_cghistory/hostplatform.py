"""The platform ``diff`` (and later list, pin, bisect) means when the user names none.

Why it looks like this:
- docker pulls the engine's platform, not the client's (a Mac client talks to a Linux VM,
  a laptop may drive a remote arm64 engine), so the engine is asked first: ``GET /version``
  names its ``Os`` and ``Arch``.
- The answer must be cheap and can never fail the command: it is one HTTP request over the
  engine's unix socket (or plain TCP) with ``http.client``, no docker-py, within ``TIMEOUT``
  seconds, and it runs in the background while the registry is read. An engine that is
  absent, slow, behind ssh or TLS (which would need docker-py) gives way to this machine's
  platform (``platforms.local_platform``).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from . import log
from .platforms import Platform, default_platform

TIMEOUT = 1.0
_MAX_ANSWER = 64 * 1024


class _UnixConnection(http.client.HTTPConnection):
    """``http.client`` over a unix socket: the engine's usual address."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _tls_wanted(environ: Mapping[str, str]) -> bool:
    """docker's own rule: ``DOCKER_TLS_VERIFY`` (any value) or ``DOCKER_TLS`` means TLS."""
    return bool(environ.get("DOCKER_TLS_VERIFY")) or bool(environ.get("DOCKER_TLS"))


def engine_host(environ: Mapping[str, str] | None = None) -> str | None:
    """The engine address we can ask without docker-py (``unix://…``, plain ``tcp://…``), or
    ``None`` (ssh, TLS, npipe, a broken context): the caller then uses this machine's."""
    environ = os.environ if environ is None else environ
    host = environ.get("DOCKER_HOST", "").strip()
    if host:
        tls = _tls_wanted(environ)
    else:
        from .endpoint import resolve_endpoint
        from .errors import CghistoryError

        try:  # imports docker-py only for a context with TLS material
            found = resolve_endpoint(environ)
        except (CghistoryError, ImportError, OSError) as error:
            log.debug(f"engine platform: no endpoint ({error})")
            return None
        host, tls = found.host, bool(found.tls)
    scheme = host.split("://", 1)[0].lower() if "://" in host else ""
    if scheme == "unix" or (scheme in ("tcp", "http") and not tls):
        return host
    return None


def ask_engine(host: str, timeout: float = TIMEOUT) -> str | None:
    """``os/arch`` as the engine at ``host`` reports it, or ``None`` within ``timeout``."""
    parts = urlsplit(host)
    connection: http.client.HTTPConnection
    if parts.scheme == "unix":
        path = host[len("unix://"):]
        if not path:
            return None
        connection = _UnixConnection(path, timeout)
    else:
        if not parts.hostname:
            return None
        try:
            port = parts.port or 2375
        except ValueError:
            return None
        connection = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    try:
        connection.request("GET", "/version", headers={"Accept": "application/json"})
        response = connection.getresponse()
        if response.status != 200:
            return None
        answer = json.loads(response.read(_MAX_ANSWER))
    except (OSError, http.client.HTTPException, ValueError) as error:
        log.debug(f"engine platform: {type(error).__name__}: {error}")
        return None
    finally:
        connection.close()
    if not isinstance(answer, dict):
        return None
    os_name, arch = answer.get("Os"), answer.get("Arch")
    if not isinstance(os_name, str) or not isinstance(arch, str):
        return None
    return f"{os_name}/{arch}"


def host_platform(environ: Mapping[str, str] | None = None,
                  timeout: float = TIMEOUT) -> Platform:
    """The engine's platform if it answers in time, else this machine's. Never raises."""
    host = engine_host(environ)
    answer = ask_engine(host, timeout) if host else None
    chosen = default_platform(answer)
    log.debug(f"default platform {chosen} ({'engine' if answer else 'this machine'})")
    return chosen


def in_background(environ: Mapping[str, str] | None = None,
                  timeout: float = TIMEOUT) -> Callable[[], Platform]:
    """Start asking now (while the registry is read); the returned call waits for the
    answer, at most ``timeout`` more seconds, else settles for this machine's platform."""
    found: list[Platform] = []

    def ask() -> None:
        found.append(host_platform(environ, timeout))

    worker = threading.Thread(target=ask, name="engine-platform", daemon=True)
    worker.start()

    def result() -> Platform:
        worker.join(timeout * 2 + 0.5)  # connect and read each have ``timeout``
        return found[0] if found else default_platform(None)

    return result
