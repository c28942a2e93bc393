"""Real TLS for integration tests: a CA made at test time, a host name on loopback, and the
places docker-style clients look for trust (``/etc/docker/certs.d``, the system store).

Everything here changes machine-wide state (``/etc/hosts``, ``/etc/docker/certs.d``,
``/usr/local/share/ca-certificates`` and the bundle built from it), so every helper is a
context manager that undoes its change even when the test fails, and refuses to touch what it
did not create. Leftovers of a killed run carry a marker and are removed by the next run.
Missing capabilities (not root, no ``update-ca-certificates``, a read-only ``/etc/hosts``)
fail under CI and skip elsewhere, like ``require_binary``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .services import unavailable

if TYPE_CHECKING:  # imported when used: a checkout without the test extras still collects
    import trustme

# A name with a parent domain, so NO_PROXY can name the host or ``.cghistory.test``.
TLS_HOST = "registry.cghistory.test"
TLS_DOMAIN = "cghistory.test"
HOSTS_FILE = Path("/etc/hosts")
HOSTS_MARKER = "# docker-cghistory tests"
CERTS_D = Path("/etc/docker/certs.d")
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")
LOCAL_CA_NAME = "cghistory-test.crt"
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Trust settings a user may export; this machine exports all of them (system bundle).
TRUST_ENV = (
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NIX_SSL_CERT_FILE",
    "AWS_CA_BUNDLE",
)
PROXY_ENV = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")


def require(condition: bool, message: str) -> None:
    """A missing capability: fail under CI, skip elsewhere."""
    if not condition:
        unavailable(message)


def require_root(what: str) -> None:
    require(os.geteuid() == 0, f"{what} needs root")


def clean_env(env: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Drop the trust and proxy settings of this machine from a child's environment."""
    for name in TRUST_ENV + PROXY_ENV:
        env.pop(name, None)
        env.pop(name.lower(), None)
    return env


# --------------------------------------------------------------------------- certificates
@dataclass
class TlsMaterial:
    """A server CA with a certificate for ``host``, and a separate CA for client certificates.

    ``ca_pem`` holds the server CA alone (what a user puts in certs.d or the system store).
    """

    host: str
    ca: trustme.CA
    server: trustme.LeafCert
    client_ca: trustme.CA
    client: trustme.LeafCert
    dir: Path

    @property
    def ca_pem(self) -> Path:
        return self.dir / "ca.pem"

    def server_context(self, require_client_cert: bool = False) -> ssl.SSLContext:
        """Server side; ``require_client_cert`` demands a certificate from ``client_ca``."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server.configure_cert(ctx)
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            self.client_ca.configure_trust(ctx)
        return ctx


def make_material(directory: Path, host: str = TLS_HOST) -> TlsMaterial:
    try:
        import trustme
    except ImportError:
        require(False, "trustme is not installed (pip install -e '.[test]')")
        raise
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="cghistory test CA")
    client_ca = trustme.CA(organization_name="cghistory test client CA")
    material = TlsMaterial(
        host=host,
        ca=ca,
        server=ca.issue_cert(host),
        client_ca=client_ca,
        client=client_ca.issue_cert("client@" + TLS_DOMAIN),
        dir=directory,
    )
    ca.cert_pem.write_to_path(str(material.ca_pem))
    return material


# --------------------------------------------------------------------------- /etc/hosts
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _strip_marked(text: str, own: bool) -> str:
    """Without our line (``own``) or without the lines of sessions that are gone (not own)."""
    kept = []
    for line in text.splitlines(keepends=True):
        _, marker, pid = line.partition(HOSTS_MARKER + " pid=")
        if marker:
            mine = pid.strip() == str(os.getpid())
            if mine if own else not (pid.strip().isdigit() and _alive(int(pid))):
                continue
        kept.append(line)
    return "".join(kept)


def _write_in_place(path: Path, text: str) -> None:
    # In place, never by rename: /etc/hosts is often a bind mount in containers.
    with path.open("r+") as f:
        f.seek(0)
        f.write(text)
        f.truncate()


@contextlib.contextmanager
def hosts_entry(*names: str, address: str = "127.0.0.1") -> Iterator[None]:
    """Make ``names`` resolve to ``address`` through /etc/hosts for the duration."""
    require_root("editing /etc/hosts")
    require(os.access(HOSTS_FILE, os.W_OK), f"{HOSTS_FILE} is not writable")
    cleaned = _strip_marked(HOSTS_FILE.read_text(), own=False)  # killed runs' lines
    if cleaned and not cleaned.endswith("\n"):
        cleaned += "\n"
    line = f"{address} {' '.join(names)} {HOSTS_MARKER} pid={os.getpid()}\n"
    try:
        _write_in_place(HOSTS_FILE, cleaned + line)
        for name in names:
            found = {info[4][0] for info in socket.getaddrinfo(name, 443, socket.AF_INET)}
            require(address in found, f"{name} does not resolve to {address} via {HOSTS_FILE}")
        yield
    finally:
        with contextlib.suppress(OSError):
            _write_in_place(HOSTS_FILE, _strip_marked(HOSTS_FILE.read_text(), own=True))


# --------------------------------------------------------------------------- certs.d
def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def remove_stale_certs_d() -> None:
    """Folders of killed runs: the host name is the tests' own, the port no longer served."""
    for folder in CERTS_D.glob(f"{TLS_HOST}:*"):
        port = folder.name.rpartition(":")[2]
        if port.isdigit() and _port_free(int(port)):
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def certs_d(
    host: str, ca: Path | None = None, client: trustme.LeafCert | None = None
) -> Iterator[Path]:
    """``/etc/docker/certs.d/<host>/`` with ``ca.crt`` and/or ``client.cert``/``client.key``."""
    require_root(f"writing {CERTS_D}")
    remove_stale_certs_d()
    made_root = not CERTS_D.exists()
    folder = CERTS_D / host
    if folder.exists():
        if not host.startswith(TLS_HOST):
            raise RuntimeError(f"{folder} exists; not touching what the tests did not make")
        shutil.rmtree(folder)  # a killed run's folder: the name is reserved for these tests
    try:
        folder.mkdir(parents=True)
        if ca is not None:
            shutil.copyfile(ca, folder / "ca.crt")
        if client is not None:
            client.cert_chain_pems[0].write_to_path(str(folder / "client.cert"))
            client.private_key_pem.write_to_path(str(folder / "client.key"))
            (folder / "client.key").chmod(0o600)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if made_root:
            with contextlib.suppress(OSError):
                CERTS_D.rmdir()  # only if empty


# --------------------------------------------------------------------------- system store
def _update_ca_certificates(*args: str) -> None:
    result = subprocess.run(
        ["update-ca-certificates", *args], capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"update-ca-certificates {' '.join(args)} failed:\n{result.stderr}")


def remove_stale_system_ca() -> None:
    """A killed run's CA: out of the store before anything relies on it being absent."""
    if (LOCAL_CA_DIR / LOCAL_CA_NAME).exists():
        (LOCAL_CA_DIR / LOCAL_CA_NAME).unlink()
        _update_ca_certificates("--fresh")


@contextlib.contextmanager
def system_ca(ca: Path) -> Iterator[None]:
    """The CA in the system trust store, as ``update-ca-certificates`` maintains it."""
    require_root("editing the system trust store")
    tool = shutil.which("update-ca-certificates")
    require(tool is not None, "update-ca-certificates is not installed (ca-certificates)")
    require(LOCAL_CA_DIR.is_dir(), f"{LOCAL_CA_DIR} is missing (ca-certificates)")
    remove_stale_system_ca()
    before = SYSTEM_BUNDLE.read_bytes()
    target = LOCAL_CA_DIR / LOCAL_CA_NAME
    try:
        shutil.copyfile(ca, target)
        _update_ca_certificates()
        pem = ca.read_text().strip()
        if pem not in SYSTEM_BUNDLE.read_text():
            raise RuntimeError(f"update-ca-certificates did not add the CA to {SYSTEM_BUNDLE}")
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        try:
            _update_ca_certificates("--fresh")
        finally:
            # The bundle is rebuilt from its sources; should that differ from what was there,
            # the machine's trust comes back byte for byte.
            if SYSTEM_BUNDLE.read_bytes() != before:
                SYSTEM_BUNDLE.write_bytes(before)
