"""``list --changes`` through the real docker CLI, against real multi-platform builds in the
real registry behind the front (tests/support/images): each listed build's package changes
against the build before it, for the platform asked for (or the default one), the oldest
listed build compared with the unlisted one before it, the CHANGES column cut only on a
terminal, progress only on a terminal, and a second listing that downloads no SBOM.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pexpect
import pytest

from docker_cghistory.platforms import local_platform
from tests.support.front import Front
from tests.support.images import Series, push_all, register
from tests.support.services import DockerConfig, Registry

pytestmark = pytest.mark.integration

BASE_KEYS = ["Index", "Updated", "Digest", "Reference", "Tag", "Local", "LocalTag"]


@pytest.fixture(scope="module")
def images(registry: Registry, front: Front) -> dict[str, Series]:
    series = push_all(registry)
    register(front, series.values())
    front.save_baseline()
    return series


def cghistory(env: DockerConfig, *args: str) -> subprocess.CompletedProcess[str]:
    return env.run("docker", "cghistory", *args, timeout=120)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout


def ref(front: Front, series: Series) -> str:
    return f"{front.host}/{series.repo}:{series.tag}"


def rows(env: DockerConfig, *args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ok(cghistory(env, *args, "--format", "json"))
            .splitlines()]


def expected_changes(series: Series, index: int, platform: str) -> dict | None:
    """What ``Changes`` must hold for the build listed at ``index``: the fixture's expected
    diff against the build before it; None for the first build, or when either lacks the
    platform or has no package data."""
    if index + 1 >= len(series.builds):
        return None
    newer, older = series.by_index(index), series.by_index(index + 1)
    if platform not in newer.platforms or platform not in older.platforms:
        return None
    expected = series.expected_diff(older, newer, platform)
    if not expected.identical and "none" in expected.source.values():
        return None
    return expected.packages


def test_json_changes_are_the_fixture_diffs_of_consecutive_builds(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    checked = 0
    for tag in ("latest", "single", "dpkg", "distroless"):
        series = images[tag]
        for platform in sorted({p for build in series.builds for p in build.platforms}):
            found = rows(plugin_env, ref(front, series), "--changes", "--platform", platform)
            assert [row["Index"] for row in found] == list(range(len(series.builds)))
            for row in found:
                assert list(row) == [*BASE_KEYS, "PlatformDigest", "SameAs", "Changes"]
                assert row["Changes"] == expected_changes(series, row["Index"], platform), (
                    tag, platform, row["Index"])
                checked += row["Changes"] is not None
            assert found[-1]["Changes"] is None  # the first build
    assert checked >= 10


def test_the_oldest_listed_build_is_compared_with_the_one_before_it(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    series = images["latest"]
    for count in (1, 3):
        found = rows(plugin_env, ref(front, series), "--changes", "--platform", "linux/amd64",
                     "-n", str(count))
        assert [row["Index"] for row in found] == list(range(count))
        assert found[-1]["Changes"] is not None
        assert found[-1]["Changes"] == expected_changes(series, count - 1, "linux/amd64")
    since = series.by_index(2).updated
    windowed = rows(plugin_env, ref(front, series), "--changes", "--platform", "linux/amd64",
                    "--since", since)
    assert windowed[-1]["Index"] == 2
    assert windowed[-1]["Changes"] == expected_changes(series, 2, "linux/amd64")


def test_the_default_platform_is_this_machines_without_an_engine(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    series = images["latest"]
    platform = str(local_platform())
    if platform not in series.by_index(0).platforms:  # another machine: refused in one line
        refused = plugin_env.run("docker", "cghistory", ref(front, series), "--changes")
        assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1
        assert f"{platform} image" in refused.stderr and " has linux/" in refused.stderr
        return
    default = rows(plugin_env, ref(front, series), "--changes")
    named = rows(plugin_env, ref(front, series), "--changes", "--platform", platform)
    assert [row["Changes"] for row in default] == [row["Changes"] for row in named]
    assert "PlatformDigest" not in default[0]


def test_the_table_says_first_build_unchanged_and_missing_platforms(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    series = images["latest"]
    result = cghistory(plugin_env, ref(front, series), "--changes", "--platform", "linux/arm64")
    lines = ok(result).splitlines()
    assert lines[0].split()[-1] == "CHANGES"
    assert lines[-1].rstrip().endswith("(first build)")
    lacking = next(b for b in series.builds if "linux/arm64" not in b.platforms)
    assert lines[1 + lacking.list_index].rstrip().endswith("(no linux/arm64 image)")
    after = lacking.list_index - 1
    assert lines[1 + after].rstrip().endswith(f"(#{lacking.list_index} has no linux/arm64 image)")
    amd = ok(cghistory(plugin_env, ref(front, series), "--changes", "--platform",
                       "linux/amd64")).splitlines()
    only_arm = next(b for b in series.builds if b.position == 1)
    assert amd[1 + only_arm.list_index].rstrip().endswith("(same linux/amd64 image)")
    # Not a terminal: nothing is cut, the whole summary is there.
    longest = max((expected_changes(series, i, "linux/amd64") or {"Changed": []}
                   for i in range(len(series.builds))), key=lambda c: len(c["Changed"]))
    assert all(f"{c['Name']} {c['New']}" in "\n".join(amd) for c in longest["Changed"])
    assert "…" not in "\n".join(amd)


def spawn(env: DockerConfig, *args: str, columns: int) -> str:
    child = pexpect.spawn("docker", ["cghistory", *args], env=env.env, cwd=str(env.home),
                          encoding="utf-8", timeout=120, dimensions=(40, columns))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return str(child.before)


def test_on_a_terminal_changes_are_cut_to_its_width_and_progress_is_shown(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    series = images["latest"]
    screen = spawn(plugin_env, ref(front, series), "--changes", "--platform", "linux/amd64",
                   columns=110)
    assert "reading the linux/amd64 packages of each build: " in screen
    # The table follows the last erased progress line; stderr's warnings (build 6's SBOM names
    # another image) may come after it on the same screen, one line each.
    table = screen[screen.rindex("\x1b[2K") + len("\x1b[2K"):].lstrip("\r")
    lines = [line for line in table.splitlines()
             if line.strip() and not line.startswith("warning: ")]
    assert lines[0].startswith("#")
    assert all(len(line.rstrip()) <= 110 for line in lines), lines
    assert any(line.rstrip().endswith("…") for line in lines), lines
    # Piped: no progress at all (the only line on stderr may be a refused SBOM's warning).
    piped = cghistory(plugin_env, ref(front, series), "--changes", "--platform", "linux/amd64")
    assert "reading" not in piped.stderr
    assert "\x1b" not in piped.stderr + piped.stdout


def test_a_second_listing_downloads_no_sbom_and_no_layer(
        images: dict[str, Series], front: Front, plugin_env: DockerConfig) -> None:
    series = images["latest"]
    first = rows(plugin_env, ref(front, series), "--changes", "--platform", "linux/arm64")
    front.reset_log()
    again = rows(plugin_env, ref(front, series), "--changes", "--platform", "linux/arm64")
    assert again == first
    assert front.blob_downloads(series.repo) == []
    assert not [r for r in front.requests if "/manifests/sha256:" in r.path]
