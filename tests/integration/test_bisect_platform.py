"""``bisect --platform`` and bisect's "What changed", through the real docker CLI and the
private dockerd, against real multi-platform builds in the real registry behind the front
(tests/support/images).

The test command really runs each image it is given and reads its ``/build`` marker, without
``--platform`` on ``docker run``: ``{}`` names the platform's own manifest, so what runs is
that image and nothing else. It also prints ``{}`` (the image it was given) from inside the
container, so the tests see every image that ran.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from typing import Any

import pytest

from docker_cghistory.bisect import max_runs
from tests.support.front import Front, history_from_digests
from tests.support.images import Build, Series, push_build_series, repo_configs
from tests.support.images.grouped import amd64_groups, push_grouped_series
from tests.support.services import DockerConfig, Dockerd, Registry

pytestmark = pytest.mark.integration

AMD64, ARM64 = "linux/amd64", "linux/arm64"
# (the markers read "<repo>:<tag> build N amd64" or "... image N amd64")
NUMBER = r'n=$(sed "s/.* \(build\|image\) \([0-9]*\) .*/\2/" /build)'


def script(bad: str) -> list[str]:
    """A test command: bad when the image's number (from /build) matches the case pattern."""
    body = (f'echo "ran {{}}" >&2; {NUMBER}; '
            f'case "$n" in {bad}) exit 1;; esac; exit 0')
    return ["docker", "run", "--rm", "--network", "none", "{}", "sh", "-c", body]


RAN = re.compile(r"^ran (\S+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def series(registry: Registry) -> Series:
    return push_build_series(registry)


@pytest.fixture(scope="module")
def grouped(registry: Registry) -> Series:
    return push_grouped_series(registry)


def serve(front: Front, series: Series, extra: dict[str, list[Build]] | None = None) -> None:
    """The series at the front, plus ``extra`` tags whose history is the given builds."""
    config = repo_configs([series])[series.repo]
    for tag, builds in (extra or {}).items():
        config["history"][tag] = history_from_digests([b.digest for b in builds])
        config["public_tags"] = sorted({*config["public_tags"], tag})
    front.set_repo(series.repo, config)


def bisect(env: DockerConfig, ref: str, *args: str) -> subprocess.CompletedProcess[str]:
    return env.run("docker", "cghistory", "bisect", ref, *args, timeout=600)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout


def expected_changes(series: Series, old: Build, new: Build, platform: str) -> dict[str, Any]:
    return series.expected_diff(old, new, platform).packages


def test_builds_sharing_the_amd64_image_are_one_candidate(
        plugin_env: DockerConfig, dockerd: Dockerd, front: Front, series: Series) -> None:
    """Builds 0 and 1 differ only in arm64: one candidate; the last good build is the newer."""
    serve(front, series)
    ref = f"{front.host}/{series.repo}:{series.tag}"
    result = bisect(plugin_env, ref, "--good", "6", "--platform", AMD64, "--format", "json",
                    "--", *script("[2-9]"))
    document = json.loads(ok(result))
    b = series.builds
    assert f"7 builds from #6 sha256:{b[0].digest[7:19]}" in result.stderr
    assert "6 distinct linux/amd64 images" in result.stderr
    assert document["Platform"] == AMD64
    assert document["FirstBad"]["Digest"] == b[2].digest
    assert document["FirstBad"]["PlatformDigest"] == b[2].platforms[AMD64].digest
    assert document["SameImage"] == []
    assert document["LastGood"]["Digest"] == b[1].digest  # the newest of {0, 1}
    assert b[0].digest not in {run["Digest"] for run in document["Runs"]}
    assert len(document["Runs"]) <= max_runs(6)
    # What ran is each platform image, named by its own digest.
    ran = RAN.findall(result.stderr)
    wanted = {f"{front.host}/{series.repo}@{run['PlatformDigest']}" for run in document["Runs"]}
    assert sorted(ran) == sorted(wanted)
    # What changed: the fixture's diff from the last good build to the first bad one.
    assert document["Changes"] == expected_changes(series, b[1], b[2], AMD64)
    assert document["Diff"]["Platform"] == AMD64
    assert document["Diff"]["Old"]["Digest"] == b[1].digest
    assert document["Diff"]["New"]["PlatformDigest"] == b[2].platforms[AMD64].digest
    expected = series.expected_diff(b[1], b[2], AMD64)
    assert document["Diff"]["Size"] == expected.size
    assert sorted(document["Diff"]["Config"], key=lambda c: c["Field"]) == expected.config


def test_every_build_of_the_first_bad_image_is_named(
        plugin_env: DockerConfig, dockerd: Dockerd, front: Front, series: Series) -> None:
    """A history where the first bad image is shared: builds 4, 5, 0, 1, 6; 0 and 1 are bad
    (amd64 image 0), and so is 6."""
    b = series.builds
    order = [b[4], b[5], b[0], b[1], b[6]]
    serve(front, series, {"regress": order})
    ref = f"{front.host}/{series.repo}:regress"
    text = ok(bisect(plugin_env, ref, "--good", "4", "--platform", AMD64, "--",
                     *script("0|6")))
    name = f"{front.host}/{series.repo}"
    lines = text.splitlines()
    assert lines[0].startswith(f"first bad build: {name}@{b[0].digest} (")
    assert lines[1].startswith(f"same image: {name}@{b[1].digest} (")
    assert lines[2].startswith(f"last good build: {name}@{b[5].digest} (")
    assert lines[6:8] == ["", "What changed (last good → first bad):"]
    assert lines[8] == f"{ref}  {AMD64}"

    document = json.loads(ok(bisect(plugin_env, ref, "--good", "4", "--platform", AMD64,
                                     "--format", "json", "--", *script("0|6"))))
    assert [s["Digest"] for s in document["SameImage"]] == [b[1].digest]
    assert document["SameImage"][0]["PlatformDigest"] == b[0].platforms[AMD64].digest
    assert document["Changes"] == expected_changes(series, b[5], b[0], AMD64)
    assert len(document["Runs"]) <= max_runs(4)


def test_builds_without_the_platform_are_left_out_and_named(
        plugin_env: DockerConfig, dockerd: Dockerd, front: Front, series: Series) -> None:
    """Build 5 has no arm64 image: never pulled, named between last good and first bad. The
    arm64 images are pulled (for that platform) but not run: the command reads the digest."""
    serve(front, series)
    ref = f"{front.host}/{series.repo}:{series.tag}"
    b = series.builds
    bad = b[6].platforms[ARM64].digest
    command = ["sh", "-c", f'case "$CGHISTORY_IMAGE" in *@{bad}) exit 1;; esac']
    result = bisect(plugin_env, ref, "--good", "6", "--platform", ARM64, "--format", "json",
                    "--", *command)
    document = json.loads(ok(result))
    assert document["FirstBad"]["Digest"] == b[6].digest
    assert document["LastGood"]["Digest"] == b[4].digest
    assert [n["Digest"] for n in document["NoImage"]] == [b[5].digest]
    assert f"not tested, no {ARM64} image: #1 sha256:{b[5].digest[7:19]}" in result.stderr
    assert b[5].digest not in {run["Digest"] for run in document["Runs"]}
    assert document["Changes"] == expected_changes(series, b[4], b[6], ARM64)

    refused = bisect(plugin_env, ref, "--good", "1", "--platform", ARM64, "--", "true")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"docker cghistory: --good #1 sha256:{b[5].digest[7:19]} ({b[5].updated[:19]}.000Z) "
        f"has no {ARM64} image (it has {AMD64}): give another --good"]


def runs_of(result: subprocess.CompletedProcess[str]) -> int:
    return len(json.loads(ok(result))["Runs"])


def test_sixteen_builds_five_amd64_images_take_at_most_five_runs(
        plugin_env: DockerConfig, dockerd: Dockerd, front: Front, grouped: Series) -> None:
    serve(front, grouped)
    ref = f"{front.host}/{grouped.repo}:{grouped.tag}"
    groups = amd64_groups(grouped)
    assert len(grouped.builds) == 16 and len(set(groups)) == 5
    for first_bad_group in range(1, 5):
        bad = "|".join(str(g) for g in range(first_bad_group, 5))
        with_platform = bisect(plugin_env, ref, "--good", "15", "--platform", AMD64,
                               "--format", "json", "--", *script(bad))
        document = json.loads(ok(with_platform))
        first = groups.index(first_bad_group)
        members = [b.digest for b, g in zip(grouped.builds, groups, strict=True)
                   if g == first_bad_group]
        assert document["FirstBad"]["Digest"] == grouped.builds[first].digest
        assert [s["Digest"] for s in document["SameImage"]] == members[1:]
        assert document["LastGood"]["Digest"] == grouped.builds[first - 1].digest
        assert len(document["Runs"]) <= math.ceil(math.log2(5)) + 2
        assert len(RAN.findall(with_platform.stderr)) == len(document["Runs"])
