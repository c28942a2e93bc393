"""docker's TLS trust (``docker_cghistory.tls``) against real TLS servers.

Trusted, per host: ``/etc/docker/certs.d/<host:port>/*.crt`` (and, rootless,
``$XDG_CONFIG_HOME/docker/certs.d``), client pairs ``NAME.cert`` + ``NAME.key`` from there, then
the system store and certifi, unless the user names bundles in REQUESTS_CA_BUNDLE,
CURL_CA_BUNDLE, SSL_CERT_FILE or SSL_CERT_DIR: those replace the store and certifi. This
machine exports all four, so every test clears them (a user's machine) and the variables get
tests of their own.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from docker_cghistory import tls
from docker_cghistory.errors import ConfigError
from tests.support.services import unavailable

from .tlsfixtures import (
    REGISTRY_NAME,
    TLSRegistry,
    ca_files,
    clear_trust_env,
    client_files,
    etc_certs_d,
)


@pytest.fixture(autouse=True)
def user_machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    clear_trust_env(monkeypatch)
    yield
    tls.clear_cache()


@pytest.fixture
def certs_d() -> Iterator:
    with etc_certs_d() as install:
        yield install


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def handshake(server: TLSRegistry, name: str = REGISTRY_NAME) -> None:
    """One TLS connection to ``server`` with the context docker's rules give ``name:port``."""
    context = tls.ssl_context_for(f"{name}:{server.port}")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=name) as conn:
        conn.sendall(b"GET /v2/x/tags/list HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.recv(12).startswith(b"HTTP/1.1 200")


def as_rootless(monkeypatch: pytest.MonkeyPatch, config_home: Path | None) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    if config_home is None:
        monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    tls.clear_cache()


# --- where docker looks -------------------------------------------------------------------------


def test_certs_d_folder_is_named_like_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert tls.certs_d_dirs("reg.example:5000") == ["/etc/docker/certs.d/reg.example:5000"]
    assert tls.certs_d_dirs("cgr.dev") == ["/etc/docker/certs.d/cgr.dev"]
    assert tls.certs_d_dirs("[::1]:5000") == ["/etc/docker/certs.d/[::1]:5000"]


def test_rootless_also_reads_the_xdg_folder(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    as_rootless(monkeypatch, tmp_path / "xdg")
    assert tls.certs_d_dirs("reg:5000") == ["/etc/docker/certs.d/reg:5000",
                                           f"{tmp_path}/xdg/docker/certs.d/reg:5000"]
    as_rootless(monkeypatch, None)
    assert tls.certs_d_dirs("reg")[1] == f"{Path.home()}/.config/docker/certs.d/reg"


@pytest.mark.parametrize("name", ["..", ".", "a/../../etc", "", "x y"])
def test_names_that_would_leave_certs_d_have_no_folder(name: str) -> None:
    assert tls.certs_d_dirs(name) == []


# --- certs.d ------------------------------------------------------------------------------------


def test_untrusted_without_certs_d(ca: trustme.CA) -> None:
    server = TLSRegistry(ca.issue_cert(REGISTRY_NAME))
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        handshake(server)
    assert caught.value.verify_code in (19, 20, 21)


@pytest.mark.parametrize("variables", ["unset", "this machine's"])
def test_certs_d_ca_is_trusted(certs_d, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch,
                               variables: str) -> None:
    if variables != "unset":  # the variables replace the system store, never certs.d
        for name in tls.TRUST_VARIABLES:
            monkeypatch.setenv(name, "/etc/ssl/certs/ca-certificates.crt"
                               if name != "SSL_CERT_DIR" else "/etc/ssl/certs")
    server = TLSRegistry(ca.issue_cert(REGISTRY_NAME))
    certs_d(f"{REGISTRY_NAME}:{server.port}", ca_files(ca))
    handshake(server)
    assert server.handshakes == 1


def test_certs_d_of_another_port_is_not_used(certs_d, ca: trustme.CA) -> None:
    server = TLSRegistry(ca.issue_cert(REGISTRY_NAME))
    certs_d(f"{REGISTRY_NAME}:{server.port + 1}", ca_files(ca))
    certs_d(REGISTRY_NAME + "-other", ca_files(ca))
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(server)


def test_rootless_certs_d_ca_is_trusted(ca: trustme.CA, monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    as_rootless(monkeypatch, tmp_path / "xdg")
    server = TLSRegistry(ca.issue_cert(REGISTRY_NAME))
    folder = tmp_path / "xdg/docker/certs.d" / f"{REGISTRY_NAME}:{server.port}"
    folder.mkdir(parents=True)
    (folder / "ca.crt").write_bytes(ca.cert_pem.bytes())
    handshake(server)


def test_client_certificate_from_certs_d(certs_d, ca: trustme.CA) -> None:
    client_ca = trustme.CA()
    server = TLSRegistry(ca.issue_cert(REGISTRY_NAME), client_ca=client_ca)
    certs_d(f"{REGISTRY_NAME}:{server.port}",
            {**ca_files(ca), **client_files(client_ca.issue_cert("me.cghistory.test"))})
    handshake(server)
    assert server.peer_certs[0]["subjectAltName"] == (("DNS", "me.cghistory.test"),)


@pytest.mark.parametrize(("files", "words"), [
    ({"client.cert": b"x"}, "missing key"),
    ({"client.key": b"x"}, "missing client certificate"),
    ({"client.cert": b"not pem", "client.key": b"not pem"}, "cannot load the client"),
])
def test_broken_client_pairs_are_one_line(certs_d, files: dict[str, bytes],
                                          words: str) -> None:
    certs_d(f"{REGISTRY_NAME}:1", files)
    with pytest.raises(ConfigError, match=words) as caught:
        tls.ssl_context_for(f"{REGISTRY_NAME}:1")
    assert "\n" not in str(caught.value)


def test_encrypted_client_key_fails_instead_of_prompting(certs_d, ca: trustme.CA) -> None:
    from cryptography.hazmat.primitives import serialization

    leaf = ca.issue_cert("me.cghistory.test")
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"pw"))
    certs_d(f"{REGISTRY_NAME}:2", {"client.cert": leaf.cert_chain_pems[0].bytes(),
                                   "client.key": encrypted})
    with pytest.raises(ConfigError, match="cannot load the client certificate"):
        tls.ssl_context_for(f"{REGISTRY_NAME}:2")


def test_not_pem_ca_is_skipped_like_docker(certs_d, ca: trustme.CA) -> None:
    server = TLSRegistry(ca.issue_cert(REGISTRY_NAME))
    certs_d(f"{REGISTRY_NAME}:{server.port}", {"a-broken.crt": b"junk", **ca_files(ca)})
    handshake(server)


# --- the user's CA variables --------------------------------------------------------------------


@pytest.fixture
def certifi_is(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Point certifi at a bundle of ours, to see whether certifi is consulted at all."""
    import certifi

    def point(ca: trustme.CA) -> None:
        bundle = tmp_path / "certifi.pem"
        bundle.write_bytes(ca.cert_pem.bytes())
        monkeypatch.setattr(certifi, "where", lambda: str(bundle))
        tls.clear_cache()

    return point


@pytest.mark.parametrize("variable", tls.TRUST_VARIABLES)
def test_ca_variables_replace_system_store_and_certifi(variable: str, certifi_is,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    mine, certifis = trustme.CA(), trustme.CA()
    certifi_is(certifis)
    via_certifi = TLSRegistry(certifis.issue_cert(REGISTRY_NAME))
    handshake(via_certifi)  # without the variable, certifi is part of the trust
    if variable == "SSL_CERT_DIR":
        if shutil.which("openssl") is None:
            unavailable("needs the openssl program to hash a certificate folder")
        folder = tmp_path / "certs"
        folder.mkdir()
        (folder / "mine.pem").write_bytes(mine.cert_pem.bytes())
        subprocess.run(["openssl", "rehash", str(folder)], check=True, capture_output=True)
        monkeypatch.setenv(variable, str(folder))
    else:
        bundle = tmp_path / "mine.pem"
        bundle.write_bytes(mine.cert_pem.bytes())
        monkeypatch.setenv(variable, str(bundle))
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(via_certifi)
    handshake(TLSRegistry(mine.issue_cert(REGISTRY_NAME)))


def test_missing_ca_bundle_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")
    with pytest.raises(ConfigError, match=r"REQUESTS_CA_BUNDLE names /nonexistent/bundle\.pem"):
        tls.ssl_context_for("cgr.dev")


def test_contexts_verify_and_are_cached() -> None:
    context = tls.ssl_context_for("cgr.dev")
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert tls.ssl_context_for("cgr.dev") is context


def test_tls_module_imports_light() -> None:
    def loaded(imports: str) -> str:
        code = (f"import sys{imports}; print(sorted(m for m in ('ssl', 'truststore', 'certifi', "
                "'requests', 'urllib3') if m in sys.modules))")
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True).stdout
    # (site hooks of some machines import certifi at start-up: compare with a bare Python)
    assert loaded(", docker_cghistory.tls, docker_cghistory.proxy") == loaded("")
