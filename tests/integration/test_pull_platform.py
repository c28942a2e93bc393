"""``pull --platform`` (issue 14 item 4) through the real docker CLI and dockerd, against real
multi-platform builds: a build without that platform is named with the platforms it has, before
anything is pulled, and a malformed platform is a usage error naming the form."""

from __future__ import annotations

import pytest

from docker_cghistory.platforms import local_platform
from tests.support.front import Front
from tests.support.images import Series, push_all, register
from tests.support.services import DockerConfig, Dockerd, Registry

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def images(registry: Registry, front: Front) -> dict[str, Series]:
    series = push_all(registry)
    register(front, series.values())
    front.save_baseline()
    return series


def test_a_build_without_the_platform_is_named_with_those_it_has(
        plugin_env: DockerConfig, dockerd: Dockerd, front: Front,
        images: dict[str, Series]) -> None:
    series = images["latest"]
    lacking = next(b for b in series.builds if "linux/arm64" not in b.platforms)
    result = plugin_env.run("docker", "cghistory", "pull", f"{front.host}/{series.repo}",
                            "--index", str(lacking.list_index), "--platform",
                            "linux/arm64/v8", timeout=120)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{lacking.digest[:19]}… has no linux/arm64 image; it has linux/amd64" in lines[0]
    assert dockerd.image_ids() == []


def test_a_build_with_the_platform_is_pulled_for_it(
        plugin_env: DockerConfig, dockerd: Dockerd, front: Front,
        images: dict[str, Series]) -> None:
    series = images["latest"]
    mine = str(local_platform())
    build = next(b for b in series.builds if mine in b.platforms)
    result = plugin_env.run("docker", "cghistory", "pull", f"{front.host}/{series.repo}",
                            "--digest", build.digest, "--platform", mine, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{front.host}/{series.repo}@{build.digest}"
    assert dockerd.image_ids() != []


@pytest.mark.parametrize("bad", ["linux", "linux/amd64/v1/x", "Linux/AMD64!", "/amd64"])
def test_a_malformed_platform_is_a_usage_error_naming_the_form(
        plugin_env: DockerConfig, front: Front, images: dict[str, Series], bad: str) -> None:
    series = images["latest"]
    result = plugin_env.run("docker", "cghistory", "pull", f"{front.host}/{series.repo}",
                            "--previous", "--platform", bad, timeout=60)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "OS/ARCH[/VARIANT]" in result.stderr
