"""Real TLS servers, a real CONNECT proxy and docker's certs.d for the trust and proxy tests.

Why real sockets: the point is what ``ssl``, urllib3 and requests do together (which CA file
is loaded, whether a client certificate is sent, how many connections a failure costs), and a
mocked transport would test none of it. Counts are taken on the server side, never from time.

Names under ``cghistory.test`` resolve to 127.0.0.1 (``fake_dns``): the client must treat the
registry as remote (HTTPS, proxied), which a loopback name would not be.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from docker_cghistory import tls
from tests.support.services import unavailable

FAKE_DOMAIN = "cghistory.test"
REGISTRY_NAME = f"registry.{FAKE_DOMAIN}"
TRUST_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


class FakeDNS:
    """``*.cghistory.test`` → 127.0.0.1; names in ``failing`` do not resolve. Counts lookups."""

    def __init__(self, real) -> None:
        self.real = real
        self.failing: set[str] = set()
        self.lookups: list[str] = []

    def __call__(self, host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.lookups.append(name)
        if name in self.failing:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if name.endswith(f".{FAKE_DOMAIN}"):
            return self.real("127.0.0.1", port, *args, **kwargs)
        return self.real(host, port, *args, **kwargs)


def install_fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    dns = FakeDNS(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    return dns


def clear_trust_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's machine: none of the CA variables this machine exports; no cached context."""
    for name in TRUST_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    tls.clear_cache()


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@contextlib.contextmanager
def etc_certs_d() -> Iterator:
    """Yields a function writing ``/etc/docker/certs.d/<host:port>/`` for real; removed after.

    Only root may write there: elsewhere the test is skipped, except under CI=true, where a
    skipped trust test would hide a regression.
    """
    if not running_as_root():
        unavailable("the certs.d tests need root (they write /etc/docker/certs.d)")
    made: list[Path] = []

    def install(host_with_port: str, files: dict[str, bytes]) -> Path:
        folder = Path(tls.SYSTEM_CERTS_D) / host_with_port
        folder.mkdir(parents=True, exist_ok=False)
        made.append(folder)
        for name, content in files.items():
            (folder / name).write_bytes(content)
        tls.clear_cache()
        return folder

    try:
        yield install
    finally:
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)
        tls.clear_cache()


def ca_files(ca) -> dict[str, bytes]:
    return {"ca.crt": ca.cert_pem.bytes()}


def client_files(leaf, stem: str = "client") -> dict[str, bytes]:
    return {f"{stem}.cert": b"".join(pem.bytes() for pem in leaf.cert_chain_pems),
            f"{stem}.key": leaf.private_key_pem.bytes()}


class _Listener:
    """A TCP listener on 127.0.0.1 whose accepted connections are counted and handled."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._guarded, args=(sock,), daemon=True).start()

    def _guarded(self, sock: socket.socket) -> None:
        try:
            self.handle(sock)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def handle(self, sock: socket.socket) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:
        self.listener.close()


def _read_head(stream) -> tuple[str, dict[str, str]]:
    line = stream.readline(65536).decode("latin-1").strip()
    headers: dict[str, str] = {}
    while True:
        header = stream.readline(65536)
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return line, headers


class TLSRegistry(_Listener):
    """A registry answering ``tags/list`` over TLS with ``cert``; may require a client cert."""

    def __init__(self, cert, *, client_ca=None, tags=("1.0", "latest")) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(self.context)
        if client_ca is not None:
            client_ca.configure_trust(self.context)
            self.context.verify_mode = ssl.CERT_REQUIRED
        self.tags = list(tags)
        self.handshakes = 0
        self.peer_certs: list[dict] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        super().__init__()

    @property
    def name(self) -> str:
        return f"{REGISTRY_NAME}:{self.port}"

    def handle(self, sock: socket.socket) -> None:
        try:
            conn = self.context.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError):
            return
        self.handshakes += 1
        self.peer_certs.append(conn.getpeercert() or {})
        with conn, conn.makefile("rb") as stream:
            line, headers = _read_head(stream)
            if not line:
                return
            self.requests.append((line, headers))
            path = line.split(" ")[1] if line.count(" ") >= 2 else "/"
            if path.split("?")[0].endswith("/tags/list"):
                import json

                body = json.dumps({"name": "x", "tags": self.tags}).encode()
                status = "200 OK"
            else:
                body, status = b'{"errors":[]}', "404 Not Found"
            conn.sendall(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                         + body)


class ConnectProxy(_Listener):
    """An HTTP CONNECT proxy: records each CONNECT target and tunnels to 127.0.0.1."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.targets: list[str] = []
        self.authorizations: list[str] = []
        super().__init__()

    def handle(self, sock: socket.socket) -> None:
        head = b""
        while not head.endswith(b"\r\n\r\n") and len(head) < 65536:
            byte = sock.recv(1)  # one byte at a time: nothing past the head is consumed
            if not byte:
                return
            head += byte
        line, headers = _read_head(io.BytesIO(head))
        method, _, rest = line.partition(" ")
        target = rest.split(" ")[0]
        self.targets.append(target)
        self.authorizations.append(headers.get("proxy-authorization", ""))
        if method != "CONNECT" or self.status != 200:
            sock.sendall(f"HTTP/1.1 {self.status if method == 'CONNECT' else 405} No\r\n"
                         "Content-Length: 0\r\n\r\n".encode())
            return
        host, _, port = target.rpartition(":")
        upstream = socket.create_connection(
            ("127.0.0.1" if host.endswith(FAKE_DOMAIN) else host, int(port)))
        sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pump(source: socket.socket, sink: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := source.recv(65536):
                    sink.sendall(data)
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pump, args=(upstream, sock), daemon=True)
        back.start()
        pump(sock, upstream)
        back.join(timeout=30)
        upstream.close()


def closed_port() -> int:
    """A local port nobody listens on: connecting to it is refused."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]
