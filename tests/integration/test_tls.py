"""Real TLS: the front over HTTPS with a CA made at test time, under a real host name.

The plugin must trust what docker trusts, in docker's order: ``/etc/docker/certs.d/HOST:PORT/``
(``*.crt`` CAs, ``*.cert``/``*.key`` client pairs), then the system store that
``update-ca-certificates`` maintains; a CA bundle the user names (REQUESTS_CA_BUNDLE,
CURL_CA_BUNDLE, SSL_CERT_FILE) wins. An untrusted certificate ends the run at once, after one
connection, with one line saying where to put the CA. HTTPS_PROXY/NO_PROXY are honoured.

Every command goes through the real docker CLI with the plugin installed. The machine's own
trust and proxy settings (this machine exports REQUESTS_CA_BUNDLE and friends) are removed
from the child's environment, so only what a test puts in place is trusted. Changes to
/etc/hosts, certs.d and the system store are undone by the helpers in tests/support/tls.py.
Nothing here waits on a clock: "one attempt" is counted at the front.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.integration.test_list import cghistory, ok, one_line_error
from tests.integration.test_pin import Pin, error_lines, status
from tests.integration.test_pull import images, run_image
from tests.support.front import Front, make_history
from tests.support.proxy import ConnectProxy, refusing_address
from tests.support.services import Builds, DockerConfig, Dockerd, Registry
from tests.support.tls import (
    CERTS_D,
    SYSTEM_BUNDLE,
    TLS_DOMAIN,
    TLS_HOST,
    TlsMaterial,
    certs_d,
    clean_env,
    system_ca,
)

pytestmark = pytest.mark.integration

REPO = "chainguard/tls-static"
TAG = "latest"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
# Five daily builds, the newest an hour old (pin's first window holds it).
HISTORY = make_history(5, NOW - timedelta(hours=1) - timedelta(days=4), timedelta(days=1),
                       seed="tls")
NEWEST_FIRST = [digest for _, digest in reversed(HISTORY)]
TRUSTED = ["certs.d", "system"]


# --------------------------------------------------------------------------- fixtures
def _start(registry: Registry, host: str, material: TlsMaterial, mutual: bool) -> Front:
    front = Front(registry.url, {"service": "cghistory-tls"}, host=host,
                  ssl_context=material.server_context(require_client_cert=mutual)).start()
    front.set_repo(REPO, {"public": True, "history": {TAG: HISTORY}})
    front.save_baseline()
    return front


@pytest.fixture(scope="session")
def tls_front(registry: Registry, tls_host: str, tls_material: TlsMaterial) -> Iterator[Front]:
    """The front over HTTPS at https://registry.cghistory.test:PORT (token realm included)."""
    front = _start(registry, tls_host, tls_material, mutual=False)
    yield front
    front.stop()


@pytest.fixture(scope="session")
def mtls_front(registry: Registry, tls_host: str, tls_material: TlsMaterial) -> Iterator[Front]:
    """Like ``tls_front``, but the handshake demands a client certificate."""
    front = _start(registry, tls_host, tls_material, mutual=True)
    yield front
    front.stop()


@pytest.fixture(autouse=True)
def _reset_tls_fronts(request: pytest.FixtureRequest) -> Iterator[None]:
    used = [request.getfixturevalue(name) for name in ("tls_front", "mtls_front")
            if name in request.fixturenames]
    yield
    for front in used:
        front.reset()


@pytest.fixture
def env(plugin_env: DockerConfig) -> DockerConfig:
    """The plugin's environment without the machine's CA bundle and proxy settings."""
    clean_env(plugin_env.env)
    return plugin_env


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    with ConnectProxy() as running:
        yield running


# --------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def trusted(where: str, front: Front, material: TlsMaterial) -> Iterator[None]:
    """The session CA in one place only: ``certs.d``, ``system`` or ``nowhere``."""
    if where == "certs.d":
        with certs_d(front.host, ca=material.ca_pem):
            yield
    elif where == "system":
        with system_ca(material.ca_pem):
            yield
    else:
        assert where == "nowhere"
        assert not (CERTS_D / front.host).exists()
        assert material.ca_pem.read_text().strip() not in SYSTEM_BUNDLE.read_text()
        yield


def ref(front: Front, repo: str = REPO, tag: str = TAG) -> str:
    return f"{front.host}/{repo}:{tag}"


def certificate_line(result: subprocess.CompletedProcess[str], front: Front) -> str:
    """One line, exit 1, naming the registry and the certs.d folder that would fix it."""
    return about_certificate(one_line_error(result), front)


def about_certificate(line: str, front: Front) -> str:
    assert "certificate" in line.lower(), line
    assert front.host in line, line
    assert f"/etc/docker/certs.d/{front.host}/ca.crt" in line, line
    return line


def tls_line(result: subprocess.CompletedProcess[str], front: Front) -> str:
    line = one_line_error(result)
    assert front.host in line, line
    assert any(word in line.lower() for word in ("certificate", "tls", "ssl")), line
    return line


class Connections:
    """Connections made to the front since creation, handshakes that failed included.

    No waiting on a clock: the front counts connections in accept order, so the count that a
    probe request gets back covers every connection made before the probe's.
    """

    def __init__(self, front: Front, material: TlsMaterial) -> None:
        self.front = front
        self.context = ssl.create_default_context(cafile=str(material.ca_pem))
        material.client.configure_cert(self.context)  # in case the front demands one
        self.start = self._settled()

    def _settled(self) -> int:
        host, _, port = self.front.host.rpartition(":")
        conn = http.client.HTTPSConnection(host, int(port), context=self.context, timeout=60)
        try:
            conn.request("POST", "/_front/state", body=b"{}",
                         headers={"Content-Type": "application/json"})
            return int(json.loads(conn.getresponse().read())["result"]["connections"])
        finally:
            conn.close()

    @property
    def made(self) -> int:
        """Connections since creation, the probes themselves left out."""
        return self._settled() - self.start - 1


# --------------------------------------------------------------------------- list
@pytest.mark.parametrize("where", TRUSTED)
def test_list_trusts_the_ca(env: DockerConfig, tls_front: Front, tls_material: TlsMaterial,
                            where: str) -> None:
    with trusted(where, tls_front, tls_material):
        out = ok(cghistory(env, "-q", ref(tls_front)))
    assert out.split() == NEWEST_FIRST
    assert any("/_chainguard/history/" in r.path for r in tls_front.requests)


def test_list_untrusted_ends_after_one_connection(
    env: DockerConfig, tls_front: Front, tls_material: TlsMaterial
) -> None:
    connections = Connections(tls_front, tls_material)
    with trusted("nowhere", tls_front, tls_material):
        result = cghistory(env, ref(tls_front))
    certificate_line(result, tls_front)
    # Not one more: no retry, and no parallel connection opened before the first handshake
    # has shown the certificate is trusted.
    assert connections.made == 1
    assert tls_front.requests == []


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"])
def test_users_ca_bundle_wins(env: DockerConfig, tls_front: Front, tls_material: TlsMaterial,
                              variable: str) -> None:
    """The CA only in a bundle the user names (nowhere else): trusted."""
    env.env[variable] = str(tls_material.ca_pem)
    with trusted("nowhere", tls_front, tls_material):
        out = ok(cghistory(env, "-q", ref(tls_front)))
    assert out.split() == NEWEST_FIRST


def test_certs_d_adds_to_a_users_bundle(env: DockerConfig, tls_front: Front,
                                        tls_material: TlsMaterial) -> None:
    """As on this machine (and CI): the bundle variables name the system bundle, which lacks
    the CA; certs.d applies in addition, as it does for docker."""
    for variable in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        env.env[variable] = str(SYSTEM_BUNDLE)
    with certs_d(tls_front.host, ca=tls_material.ca_pem):
        out = ok(cghistory(env, "-q", ref(tls_front)))
    assert out.split() == NEWEST_FIRST


# --------------------------------------------------------------------------- mutual TLS
def test_client_certificate_from_certs_d(
    env: DockerConfig, mtls_front: Front, tls_material: TlsMaterial
) -> None:
    with certs_d(mtls_front.host, ca=tls_material.ca_pem, client=tls_material.client):
        out = ok(cghistory(env, "-q", ref(mtls_front)))
    assert out.split() == NEWEST_FIRST


def test_client_certificate_missing_is_one_tls_line(
    env: DockerConfig, mtls_front: Front, tls_material: TlsMaterial
) -> None:
    with certs_d(mtls_front.host, ca=tls_material.ca_pem):
        result = cghistory(env, ref(mtls_front))
    tls_line(result, mtls_front)
    assert mtls_front.requests == []


# --------------------------------------------------------------------------- proxies
def test_https_proxy_carries_the_connections(
    env: DockerConfig, tls_front: Front, tls_material: TlsMaterial, proxy: ConnectProxy
) -> None:
    env.env["HTTPS_PROXY"] = proxy.url
    env.env["NO_PROXY"] = "example.invalid"
    with certs_d(tls_front.host, ca=tls_material.ca_pem):
        out = ok(cghistory(env, "-q", ref(tls_front)))
    assert out.split() == NEWEST_FIRST
    assert proxy.connects > 0
    assert set(proxy.targets) == {tls_front.host}


@pytest.mark.parametrize(
    "no_proxy",
    [TLS_HOST, f".{TLS_DOMAIN}", TLS_DOMAIN, f"example.invalid, {TLS_HOST}", "port"],
    ids=["host", "leading-dot", "domain", "list", "host-port"],
)
@pytest.mark.parametrize("case", ["upper", "lower"])
def test_no_proxy_goes_direct(
    env: DockerConfig, tls_front: Front, tls_material: TlsMaterial, proxy: ConnectProxy,
    no_proxy: str, case: str,
) -> None:
    if no_proxy == "port":
        no_proxy = tls_front.host
    names = ("HTTPS_PROXY", "NO_PROXY") if case == "upper" else ("https_proxy", "no_proxy")
    env.env[names[0]], env.env[names[1]] = proxy.url, no_proxy
    with certs_d(tls_front.host, ca=tls_material.ca_pem):
        out = ok(cghistory(env, "-q", ref(tls_front)))
    assert out.split() == NEWEST_FIRST
    assert proxy.connects == 0, proxy.targets


def test_refusing_proxy_is_one_line_naming_it(
    env: DockerConfig, tls_front: Front, tls_material: TlsMaterial
) -> None:
    connections = Connections(tls_front, tls_material)
    with refusing_address() as address, certs_d(tls_front.host, ca=tls_material.ca_pem):
        env.env["HTTPS_PROXY"] = f"http://{address}"
        line = one_line_error(cghistory(env, ref(tls_front)))
    assert "proxy" in line.lower() and address in line, line
    assert connections.made == 0


# --------------------------------------------------------------------------- pull
def _serve_builds(front: Front, builds: Builds) -> None:
    front.set_repo(builds.repo, {"public": True, "history": {builds.tag: builds.history}})


@pytest.mark.parametrize("where", TRUSTED)
def test_pull_previous(env: DockerConfig, dockerd: Dockerd, builds: Builds, tls_front: Front,
                       tls_material: TlsMaterial, where: str) -> None:
    """dockerd pulls the build before the newest from https://registry.cghistory.test:PORT."""
    _serve_builds(tls_front, builds)
    with trusted(where, tls_front, tls_material):
        result = env.run("docker", "cghistory", "pull", ref(tls_front, builds.repo, builds.tag),
                         "--previous")
    assert result.returncode == 0, result.stderr
    pulled = f"{tls_front.host}/{builds.repo}@{builds.digests[-2]}"
    assert result.stdout.splitlines()[-1] == pulled
    assert run_image(env, pulled) == builds.markers[-2]


def test_pull_untrusted_is_one_certificate_line(
    env: DockerConfig, dockerd: Dockerd, builds: Builds, tls_front: Front,
    tls_material: TlsMaterial,
) -> None:
    _serve_builds(tls_front, builds)
    connections = Connections(tls_front, tls_material)
    with trusted("nowhere", tls_front, tls_material):
        result = env.run("docker", "cghistory", "pull", ref(tls_front, builds.repo, builds.tag),
                         "--previous")
    certificate_line(result, tls_front)
    assert connections.made == 1
    assert images(env) == {}


# --------------------------------------------------------------------------- pin
def _project(tmp_path: Path, front: Front) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text(f"FROM {ref(front)}\nRUN true\n")
    return project


@pytest.mark.parametrize("where", TRUSTED)
def test_pin(env: DockerConfig, tls_front: Front, tls_material: TlsMaterial, tmp_path: Path,
             where: str) -> None:
    project = _project(tmp_path, tls_front)
    with trusted(where, tls_front, tls_material):
        result = Pin(env, "docker")(cwd=project)
    status(result, 0)
    assert (project / "Dockerfile").read_text() == (
        f"FROM {ref(tls_front)}@{NEWEST_FIRST[0]}\nRUN true\n"
    )


def test_pin_untrusted_is_one_certificate_line(
    env: DockerConfig, tls_front: Front, tls_material: TlsMaterial, tmp_path: Path
) -> None:
    project = _project(tmp_path, tls_front)
    connections = Connections(tls_front, tls_material)
    with trusted("nowhere", tls_front, tls_material):
        result = Pin(env, "docker")(cwd=project)
    # pin's own format: a summary line, then one ``error:`` line per failed reference.
    status(result, 1)
    assert result.stdout == ""
    (line,) = error_lines(result)
    about_certificate(line, tls_front)
    assert sum("certificate" in text for text in result.stderr.splitlines()) == 1, result.stderr
    assert connections.made == 1
    assert (project / "Dockerfile").read_text() == f"FROM {ref(tls_front)}\nRUN true\n"
