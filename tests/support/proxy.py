"""A small HTTP CONNECT proxy on loopback, for tests of HTTPS_PROXY/NO_PROXY handling.

It tunnels ``CONNECT host:port`` to the target and records every target, so a test can tell
whether a client went through it (``connects``) and where to (``targets``). Other methods get
405: an HTTPS client never sends them to a proxy. Stdlib only, threaded, no timing involved.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from socketserver import BaseRequestHandler, ThreadingTCPServer

_BUFFER = 64 * 1024


class _Server(ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: ConnectProxy


class _Handler(BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        client: socket.socket = self.request
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
            if len(head) > 65536:
                return
        header, _, early = head.partition(b"\r\n\r\n")
        request_line = header.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        if len(parts) != 3 or parts[0].upper() != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        target = parts[1]
        self.server.proxy._record(target)
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)))
        except (OSError, ValueError) as exc:
            body = f"cannot reach {target}: {exc}\n".encode()
            client.sendall(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            return
        with upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if early:
                upstream.sendall(early)
            back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
            back.start()
            _pipe(client, upstream)
            back.join()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy until EOF or error, then pass the EOF on."""
    with contextlib.suppress(OSError):
        while True:
            data = source.recv(_BUFFER)
            if not data:
                break
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


class ConnectProxy:
    """``with ConnectProxy() as proxy: env["HTTPS_PROXY"] = proxy.url``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._bind = (host, port)
        self._lock = threading.Lock()
        self._targets: list[str] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ConnectProxy:
        server = _Server(self._bind, _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
            name=f"proxy-{server.server_address[1]}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> ConnectProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, target: str) -> None:
        with self._lock:
            self._targets.append(target)

    @property
    def address(self) -> str:
        if self._server is None:
            raise RuntimeError("proxy not started")
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def targets(self) -> list[str]:
        """``host:port`` of every CONNECT, in order."""
        with self._lock:
            return list(self._targets)

    @property
    def connects(self) -> int:
        with self._lock:
            return len(self._targets)


@contextlib.contextmanager
def refusing_address() -> Iterator[str]:
    """``127.0.0.1:PORT`` where connections are refused for the duration: the port is bound
    but never listened on, so nothing else can take it and every connect gets a reset."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        host, port = sock.getsockname()[:2]
        yield f"{host}:{port}"
