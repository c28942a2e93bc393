"""Shared fixtures: real registry, the Chainguard-compatible front, a private dockerd, and
isolated docker client configurations.

Services are session-scoped because they cost more than a test, but every test gets its own
DOCKER_CONFIG/HOME/cache and a front restored to its baseline, so tests cannot leak state into
each other. Unit tests pay for none of it: nothing here starts unless a test names it.
The types the fixtures return live in tests/support/ so tests can import them for hints.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.front import Front, history_from_digests  # noqa: E402
from tests.support.services import (  # noqa: E402
    PRIVATE_BEARER,
    PRIVATE_IDENTITY_TOKEN,
    PRIVATE_PASSWORD,
    PRIVATE_USER,
    Builds,
    CredHelper,
    DockerConfig,
    Dockerd,
    Registry,
    build_images,
    copy_repo,
    make_cred_helper,
    make_docker_config,
    start_dockerd,
    start_registry,
)
from tests.support.tls import TLS_HOST, TlsMaterial, hosts_entry, make_material  # noqa: E402

BUILD_COUNT = 6


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "integration: needs the real registry, the project's front, dockerd or the docker CLI",
    )


# --------------------------------------------------------------------------- services
@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = start_registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def front(registry: Registry) -> Iterator[Front]:
    """The front over the session registry; tests may reconfigure it (reset after each)."""
    f = Front(registry.url, {"service": "cghistory-front"}).start()
    yield f
    f.stop()


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    engine = start_dockerd(tmp_path_factory.mktemp("dockerd"))
    yield engine
    engine.stop()


@pytest.fixture(autouse=True)
def _isolate_services(request: pytest.FixtureRequest) -> Iterator[None]:
    """Undo per-test changes to the shared front and engine, only where a test used them."""
    names = request.fixturenames
    f: Front | None = request.getfixturevalue("front") if "front" in names else None
    engine: Dockerd | None = request.getfixturevalue("dockerd") if "dockerd" in names else None
    yield
    if f is not None:
        f.reset()
    if engine is not None:
        engine.remove_all_images()


@pytest.fixture(scope="session")
def builds(dockerd: Dockerd, registry: Registry, front: Front) -> Builds:
    """Six real builds, pushed to the registry and listed by the front (see Builds)."""
    repo, private_repo, tag = "chainguard/busybox", "acme.dev/busybox", "latest"
    markers = [f"build-{i}" for i in range(BUILD_COUNT)]
    digests = build_images(dockerd, registry, repo, BUILD_COUNT, marker_fn=markers.__getitem__)
    copy_repo(registry, repo, private_repo, digests, tag=tag)
    history = history_from_digests(digests)
    front.set_repo(repo, {"public": True, "history": {tag: history, "1.36": history}})
    front.set_repo(
        private_repo,
        {
            "public": False,
            "users": {PRIVATE_USER: {"password": PRIVATE_PASSWORD}},
            "bearer_secrets": [PRIVATE_BEARER],
            "identity_tokens": {PRIVATE_IDENTITY_TOKEN: PRIVATE_USER},
            "history": {tag: history},
        },
    )
    front.save_baseline()
    return Builds(repo, private_repo, tag, "1.36", digests, markers, history)


@pytest.fixture(scope="session")
def tls_host() -> Iterator[str]:
    """A real host name (tests.support.tls.TLS_HOST) resolving to 127.0.0.1 through an
    /etc/hosts line that is removed afterwards (root only; fails under CI, else skips)."""
    with hosts_entry(TLS_HOST):
        yield TLS_HOST


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory, tls_host: str) -> TlsMaterial:
    """A CA made for this session, a server certificate for ``tls_host`` and a client pair."""
    return make_material(tmp_path_factory.mktemp("tls"), tls_host)


# --------------------------------------------------------------------------- docker client
@pytest.fixture
def docker_config(tmp_path: Path, request: pytest.FixtureRequest) -> DockerConfig:
    """Isolated DOCKER_CONFIG/HOME/XDG dirs; DOCKER_HOST is the private engine only when the
    test also uses the ``dockerd`` fixture."""
    engine = request.getfixturevalue("dockerd") if "dockerd" in request.fixturenames else None
    return make_docker_config(tmp_path / "client", engine)


@pytest.fixture
def plugin_env(docker_config: DockerConfig) -> DockerConfig:
    """``docker_config`` with the plugin installed in its cli-plugins folder."""
    result = docker_config.cghistory("install", "--dir", str(docker_config.plugins_dir))
    installed = docker_config.plugins_dir / "docker-cghistory"
    if result.returncode != 0 or not installed.exists():
        pytest.fail(
            f"`docker-cghistory install --dir {docker_config.plugins_dir}` failed "
            f"({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return docker_config


@pytest.fixture
def cred_helper(
    docker_config: DockerConfig,
) -> Callable[..., CredHelper]:
    """Factory: ``cred_helper("cgr", {"127.0.0.1:5000": ("user", "secret")})`` puts
    ``docker-credential-cgr`` first on ``docker_config.env["PATH"]``."""

    def make(name: str, credentials: dict[str, tuple[str, str]] | None = None) -> CredHelper:
        return make_cred_helper(docker_config.bin_dir, name, credentials)

    return make
