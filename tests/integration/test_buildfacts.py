"""buildfacts against real builds in the real registry behind the front: each image's packages
come from the source the fixture says (SBOM by referrers or .att tag, else the layers), an SBOM
about another image is refused, attested builds download no layer, and a second read downloads
no SBOM again.
"""

from __future__ import annotations

import pytest

from docker_cghistory import buildfacts
from docker_cghistory.content import Content
from docker_cghistory.platforms import parse_platform
from docker_cghistory.registry import RegistryClient
from tests.support.front import Front
from tests.support.images import WRONG_SUBJECT_MARKER, Series, push_all, register
from tests.support.services import Registry

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def images(registry: Registry, front: Front) -> dict[str, Series]:
    series = push_all(registry)
    register(front, series.values())
    front.save_baseline()
    return series


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch) -> None:
    """Each test starts with an empty cache of its own (what is kept matters here)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def content_for(front: Front, repo: str) -> Content:
    return Content(RegistryClient(front.host, sleep=lambda _: None), repo)


def every_image(images: dict[str, Series]):
    for series in images.values():
        for build in series.builds:
            for platform, image in build.platforms.items():
                yield series, build, platform, image


def test_every_image_gets_its_packages_from_the_expected_source(
        images: dict[str, Series], front: Front) -> None:
    for series, build, platform, expected in every_image(images):
        content = content_for(front, series.repo)
        warnings: list[str] = []
        image = buildfacts.platform_manifest(content, build.digest, parse_platform(platform))
        assert image.digest == expected.digest
        facts = buildfacts.facts(content, image, warn=warnings.append)
        where = f"{series.repo}:{series.tag} #{build.list_index} {platform}"
        assert facts.source == expected.source, where
        got = {package.name: package.version for package in facts.packages or ()}
        assert got == expected.effective_packages, where
        assert WRONG_SUBJECT_MARKER not in got, where
        assert facts.size.total == expected.size, where
        assert facts.config.get("config") == expected.config, where
        assert bool(warnings) == (expected.attestation == "wrong-subject"), (where, warnings)


def test_an_attested_build_downloads_no_layer_and_a_second_read_no_sbom(
        images: dict[str, Series], front: Front) -> None:
    series = images["latest"]
    attested = [(build, platform, image) for build in series.builds
                for platform, image in build.platforms.items() if image.source == "sbom"]
    assert attested
    front.reset_log()
    for build, platform, _ in attested:
        content = content_for(front, series.repo)
        image = buildfacts.platform_manifest(content, build.digest, parse_platform(platform))
        buildfacts.facts(content, image)
    kinds = [download.kind for download in front.blob_downloads(series.repo)]
    assert "attestation" in kinds
    assert "layer" not in kinds
    front.reset_log()
    for build, platform, _ in attested:
        content = content_for(front, series.repo)
        image = buildfacts.platform_manifest(content, build.digest, parse_platform(platform))
        buildfacts.facts(content, image)
    assert front.blob_downloads(series.repo) == []


def test_a_platform_the_build_lacks_names_the_ones_it_has(
        images: dict[str, Series], front: Front) -> None:
    series = images["latest"]
    lacking = next(build for build in series.builds if "linux/arm64" not in build.platforms)
    with pytest.raises(buildfacts.PlatformMissing) as caught:
        buildfacts.platform_manifest(content_for(front, series.repo), lacking.digest,
                                     parse_platform("linux/arm64/v8"))
    assert "has no linux/arm64 image; it has linux/amd64" in str(caught.value)


def test_the_platforms_of_a_build(images: dict[str, Series], front: Front) -> None:
    for series, build, _, _ in every_image(images):
        found = buildfacts.platforms_of_build(content_for(front, series.repo), build.digest)
        assert {str(p): d for p, d in found.items()} == {
            name: image.digest for name, image in build.platforms.items()}
