"""``list --platform``, ``--distinct`` and ``--platforms`` through the real docker CLI, against
real multi-platform builds in the real registry behind the front (tests/support/images):
each build's manifest per platform, SAME for a manifest identical to the next older build's,
rows that keep their full-listing ``#`` (``pull --index`` pulls the row's build), a plain
manifest counted as its one platform, and broken indexes that cost one line, not the listing.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from typing import Any

import pytest

from tests.support.front import Front, history_from_digests
from tests.support.images import Series, push_all, register
from tests.support.images.oci import OCI_MANIFEST
from tests.support.images.series import Spec, _Builder, app_layer, platform_of
from tests.support.services import DockerConfig, Dockerd, Registry

pytestmark = pytest.mark.integration

PROG = "docker cghistory"
BASE_KEYS = ["Index", "Updated", "Digest", "Reference", "Tag", "Local", "LocalTag"]
BROKEN_REPO = "fixtures/broken"


@pytest.fixture(scope="module")
def images(registry: Registry, front: Front) -> dict[str, Series]:
    series = push_all(registry)
    register(front, series.values())
    series["broken"] = push_broken(registry, front)
    front.save_baseline()
    return series


def push_broken(registry: Registry, front: Front) -> Series:
    """Four builds, oldest first: good; an index whose arm64 manifest was deleted from the
    registry; an index with a malformed platform; good. Returned as a ``Series`` whose
    ``builds`` are empty: tests read ``history``."""
    b = _Builder(registry, BROKEN_REPO, "latest")
    images = {arch: b.platform(Spec(arch, {"Cmd": ["/bin/sh"]},
                                    [app_layer(f"broken {arch}", 512)], None, {}),
                               "2024-06-01T00:00:00Z") for arch in ("amd64", "arm64")}
    doomed = b.platform(Spec("arm64", {"Cmd": ["/bin/true"]}, [app_layer("doomed", 512)],
                             None, {}), "2024-06-02T00:00:00Z")

    def entry(image: Any, platform: dict[str, str]) -> dict[str, Any]:
        return {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": image.manifest_size,
                "platform": platform}

    good = [entry(images["amd64"], platform_of("amd64")),
            entry(images["arm64"], platform_of("arm64"))]
    digests = [
        b.pusher.index(good),
        b.pusher.index([good[0], entry(doomed, platform_of("arm64"))]),
        b.pusher.index([entry(images["amd64"], {"os": "linux", "architecture": "AMD 64!"})]),
        b.pusher.index(list(reversed(good)), tag="latest"),
    ]
    delete = urllib.request.Request(f"{b.pusher.base}/manifests/{doomed.digest}",
                                    method="DELETE")
    with urllib.request.urlopen(delete, timeout=30) as response:
        assert response.status == 202
    history = history_from_digests(digests)
    front.set_repo(BROKEN_REPO, {"public": True, "public_tags": ["latest"],
                                 "history": {"latest": history}})
    return Series(BROKEN_REPO, "latest", [], history)


def cghistory(env: DockerConfig, *args: str) -> subprocess.CompletedProcess[str]:
    return env.run("docker", "cghistory", *args, timeout=120)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess[str], status: int) -> str:
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{PROG}: "), result.stderr
    return lines[0]


def ref(front: Front, series: Series) -> str:
    return f"{front.host}/{series.repo}:{series.tag}"


def rows(env: DockerConfig, *args: str) -> list[dict[str, Any]]:
    result = cghistory(env, *args, "--format", "json")
    out = ok(result)
    assert result.stderr == "", result.stderr
    return [json.loads(line) for line in out.splitlines()]


def expected_same_as(digests: list[str | None]) -> list[int | None]:
    """Newest first: the next older index when the manifest is the same, else None."""
    return [index + 1 if digest is not None and index + 1 < len(digests)
            and digests[index + 1] == digest else None
            for index, digest in enumerate(digests)]


@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64"])
def test_platform_digest_and_same_as_follow_what_was_pushed(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig,
        platform: str) -> None:
    series = images["latest"]
    found = rows(plugin_env, ref(front, series), "--platform", platform)
    wanted = list(reversed(series.platform_digests(platform)))  # newest first
    assert [row["Index"] for row in found] == list(range(len(wanted)))
    for row in found:
        assert list(row) == [*BASE_KEYS, "PlatformDigest", "SameAs"]
    assert [row["PlatformDigest"] for row in found] == wanted
    assert [row["SameAs"] for row in found] == expected_same_as(wanted)
    # The pair where only arm64 changed: amd64's manifest is build 0's, byte for byte.
    only_arm = next(b for b in series.builds if b.position == 1)
    row = found[only_arm.list_index]
    if platform == "linux/amd64":
        assert row["SameAs"] == only_arm.list_index + 1
    else:
        assert row["SameAs"] is None
        assert None in wanted  # the build lacking arm64: null, and no line on stderr


def test_the_table_marks_same_manifests_and_missing_platforms(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    series = images["latest"]
    for platform in ("linux/amd64", "linux/arm64"):
        result = cghistory(plugin_env, ref(front, series), "--platform", platform)
        lines = ok(result).splitlines()
        assert result.stderr == ""
        assert lines[0].split() == ["#", "UPDATED", "AGE", "DIGEST", "PLATFORM", "DIGEST",
                                    "SAME"]
        wanted = list(reversed(series.platform_digests(platform)))
        same = expected_same_as(wanted)
        for index, line in enumerate(lines[1:]):
            cells = line.split("   ")
            cells = [cell.strip() for cell in cells if cell.strip()]
            digest = wanted[index]
            assert (digest[7:19] if digest else "-") in cells, (platform, line)
            assert (f"= #{same[index]}" in line) == (same[index] is not None), line
    full = ok(cghistory(plugin_env, ref(front, series), "--platform", "linux/amd64",
                        "--no-trunc"))
    assert series.by_index(0).platforms["linux/amd64"].digest in full


def test_distinct_keeps_indexes_and_pull_index_pulls_that_build(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig,
        dockerd: Dockerd) -> None:
    series = images["latest"]
    full = rows(plugin_env, ref(front, series), "--platform", "linux/amd64")
    distinct = rows(plugin_env, ref(front, series), "--platform", "linux/amd64", "--distinct")
    kept = [row for row in full if row["PlatformDigest"] is not None and row["SameAs"] is None]
    assert distinct == kept
    assert len(distinct) < len(full)  # the only-arm64-changed build is left out
    gaps = [row["Index"] for row in distinct]
    assert gaps != list(range(len(gaps)))  # the indexes are the full listing's
    quiet = ok(cghistory(plugin_env, ref(front, series), "--platform", "linux/amd64",
                         "--distinct", "-q")).split()
    assert quiet == [row["Digest"] for row in distinct]
    # A row after the gap: its # still names that build for pull.
    row = next(r for r in distinct if r["Index"] > distinct.index(r))
    build = series.by_index(row["Index"])
    pulled = cghistory(plugin_env, "pull", ref(front, series), "--index", str(row["Index"]),
                       "-q")
    assert ok(pulled).strip() == f"{front.host}/{series.repo}@{build.digest}"
    run = plugin_env.run("docker", "run", "--rm", "--network", "none",
                         f"{front.host}/{series.repo}@{build.digest}", "cat", "/build",
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == build.platforms["linux/amd64"].marker.strip()


def test_platforms_column_and_json(images: dict[str, Series], front: Front,
                                   plugin_env: DockerConfig) -> None:
    for tag in ("latest", "single"):
        series = images[tag]
        found = rows(plugin_env, ref(front, series), "--platforms")
        for row in found:
            assert list(row) == [*BASE_KEYS, "Platforms"]
            build = series.by_index(row["Index"])
            assert row["Platforms"] == {p: image.digest
                                        for p, image in sorted(build.platforms.items())}
        table = ok(cghistory(plugin_env, ref(front, series), "--platforms")).splitlines()
        assert "PLATFORMS" in table[0]
        for line in table[1:]:
            build = series.by_index(int(line.split()[0]))
            shown = ", ".join(p.split("/", 1)[1] for p in sorted(build.platforms))
            assert line.rstrip().endswith(shown), line
    # A plain manifest counts as the one platform its config names, with its own digest.
    single = images["single"]
    for row in rows(plugin_env, ref(front, single), "--platforms"):
        assert row["Platforms"] == {"linux/amd64": row["Digest"]}


def test_the_oldest_listed_row_is_compared_with_the_unlisted_build_before_it(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    series = images["latest"]
    only_arm = next(b for b in series.builds if b.position == 1)
    count = only_arm.list_index + 1  # the only-arm64-changed build is the oldest listed
    found = rows(plugin_env, ref(front, series), "--platform", "linux/amd64", "-n", str(count))
    assert len(found) == count
    assert found[-1]["SameAs"] == only_arm.list_index + 1
    since = found[-1]["Updated"]
    windowed = rows(plugin_env, ref(front, series), "--platform", "linux/amd64",
                    "--since", since)
    assert windowed == found


def test_templates_read_the_new_fields_and_name_the_option_they_need(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    series = images["latest"]
    found = rows(plugin_env, ref(front, series), "--platform", "linux/amd64", "--platforms")
    out = ok(cghistory(plugin_env, ref(front, series), "--platform", "linux/amd64",
                       "--platforms", "--format",
                       "{{.Index}} {{.PlatformDigest}} {{if .SameAs}}same{{else}}new{{end}} "
                       "{{json .Platforms}}"))
    for line, row in zip(out.splitlines(), found, strict=True):
        index, digest, same, platforms = line.split(" ", 3)
        assert (int(index), digest) == (row["Index"], row["PlatformDigest"])
        assert same == ("same" if row["SameAs"] is not None else "new")
        assert json.loads(platforms) == row["Platforms"]
    line = one_line_error(cghistory(plugin_env, ref(front, series), "--format",
                                    "{{.SameAs}}"), 2)
    assert "--platform" in line


def test_bad_platforms_are_one_line(images: dict[str, Series], front: Front,
                                    plugin_env: DockerConfig) -> None:
    series = images["latest"]
    line = one_line_error(cghistory(plugin_env, ref(front, series), "--platform", "amd64"), 2)
    assert "OS/ARCH[/VARIANT]" in line
    line = one_line_error(cghistory(plugin_env, ref(front, series), "--distinct"), 2)
    assert "--platform" in line
    line = one_line_error(cghistory(plugin_env, ref(front, series), "--platform",
                                    "linux/s390x"), 1)
    assert "linux/s390x" in line and "linux/amd64, linux/arm64" in line


def test_a_broken_index_costs_one_line_naming_the_build_not_the_listing(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    broken = images["broken"]
    digests = [digest for _, digest in reversed(broken.history)]  # newest first
    bad = {digests[1]: "malformed", digests[2]: "missing child"}
    for args in (["--platform", "linux/arm64"], ["--platforms"]):
        result = cghistory(plugin_env, ref(front, broken), *args, "--format", "json")
        found = [json.loads(line) for line in ok(result).splitlines()]
        assert [row["Digest"] for row in found] == digests
        warnings = result.stderr.splitlines()
        assert len(warnings) == len(bad), result.stderr
        for digest in bad:
            assert sum(digest[:19] in line for line in warnings) == 1, (digest, warnings)
        for row in found:
            key = "PlatformDigest" if "--platform" in args else "Platforms"
            assert (row[key] is None) == (row["Digest"] in bad), (args, row)
    table = cghistory(plugin_env, ref(front, broken), "--platform", "linux/arm64")
    lines = ok(table).splitlines()
    assert len(lines) == 1 + len(digests)
    for line in lines[1:]:
        index = int(line.split()[0])
        # A broken row's PLATFORM DIGEST cell is empty: the line ends at its DIGEST.
        ends_at_digest = line.rstrip().endswith(digests[index][7:19])
        assert ends_at_digest == (digests[index] in bad), line


def test_platform_completion_offers_what_the_newest_build_has(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    env = dict(plugin_env.env, CGHISTORY_COMPLETION_TIMEOUT="60")
    for tag in ("latest", "single"):
        series = images[tag]
        result = subprocess.run(["docker", "__complete", "cghistory", "list",
                                 ref(front, series), "--platform", ""], env=env,
                                capture_output=True, text=True, timeout=120, check=False,
                                cwd=str(plugin_env.home))
        assert result.returncode == 0, result.stderr
        offered = [line.split("\t")[0] for line in result.stdout.splitlines()
                   if not line.startswith(":")]
        assert offered == sorted(series.by_index(0).platforms), result.stdout


def test_a_listing_with_platforms_seeds_their_completion(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    series = images["latest"]
    ok(cghistory(plugin_env, ref(front, series), "--platforms", "-n", "2"))
    front.reset_log()
    # A budget too short to reach the registry: the answer can only come from the cache.
    env = dict(plugin_env.env, CGHISTORY_COMPLETION_TIMEOUT="0.001")
    result = subprocess.run(["docker", "__complete", "cghistory", "pull", ref(front, series),
                             "--platform", "linux/a"], env=env, capture_output=True, text=True,
                            timeout=120, check=False, cwd=str(plugin_env.home))
    offered = [line for line in result.stdout.splitlines() if not line.startswith(":")]
    # Described as the build's own, not as the common platforms offered without an answer.
    assert offered == [f"{p}\tin the newest build" for p in
                       sorted(series.by_index(0).platforms)], result.stdout
    assert front.requests == []
