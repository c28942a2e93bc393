"""``pin --platform`` and ``pin --changes`` (issues 14 and 13) through the real docker CLI,
against real multi-platform builds in the real registry behind the front (tests/support/images).

``fixtures/python:latest`` has consecutive builds where only arm64 changed (build 1: its amd64
manifest is build 0's, byte for byte) and a build without linux/arm64 (build 5). Each test pins
a Dockerfile to one build, selects another with ``--digest`` and checks what pin did to the
file, what it said, and (``--changes``) what it reported changed, against what the fixture
pushed (``Series.expected_diff``), never against numbers repeated here.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from docker_cghistory.platforms import local_platform
from tests.support.front import Front
from tests.support.images import Build, Series, push_all, register
from tests.support.services import DockerConfig, Registry

pytestmark = pytest.mark.integration

AMD, ARM = "linux/amd64", "linux/arm64"


@pytest.fixture(scope="module")
def images(registry: Registry, front: Front) -> dict[str, Series]:
    series = push_all(registry)
    register(front, series.values())
    front.save_baseline()
    return series


@pytest.fixture
def python(images: dict[str, Series]) -> Series:
    return images["latest"]


def at(series: Series, position: int) -> Build:
    """A build by its place in the series, oldest first (the fixture's numbering)."""
    return series.builds[position]


def tag_of(front: Front, series: Series) -> str:
    return f"{front.host}/{series.repo}:{series.tag}"


def pinned_tree(root: Path, reference: str, compose: bool = False) -> dict[Path, str]:
    """A Dockerfile (and a compose file) pinned to ``reference``; returns path -> text."""
    root.mkdir(parents=True, exist_ok=True)
    files = {root / "Dockerfile": f"FROM {reference} AS app\nRUN true\n"}
    if compose:
        files[root / "compose.yaml"] = f"services:\n  app:\n    image: {reference}\n"
    for path, text in files.items():
        path.write_text(text)
    return files


def pin(env: DockerConfig, *args: str) -> subprocess.CompletedProcess[str]:
    result = env.run("docker", "cghistory", "pin", *args, timeout=180)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def expect(result: subprocess.CompletedProcess[str], status: int) -> None:
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)


def select(front: Front, series: Series, build: Build) -> list[str]:
    return ["--image", tag_of(front, series), "--digest", build.digest]


# --------------------------------------------------------------------------- the decision
def test_only_arm64_changed_leaves_an_amd64_pin_and_moves_an_arm64_one(
        plugin_env: DockerConfig, front: Front, python: Series, tmp_path: Path) -> None:
    before, after = at(python, 0), at(python, 1)
    assert before.platforms[AMD].digest == after.platforms[AMD].digest  # the fixture's point
    assert before.platforms[ARM].digest != after.platforms[ARM].digest
    tag = tag_of(front, python)
    files = pinned_tree(tmp_path / "tree", f"{tag}@{before.digest}")
    dockerfile = tmp_path / "tree" / "Dockerfile"

    result = pin(plugin_env, "--update", "--platform", AMD, *select(front, python, after),
                 str(tmp_path / "tree"))
    expect(result, 0)
    assert dockerfile.read_text() == files[dockerfile]
    assert result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert "0 updated" in first and "1 unchanged for linux/amd64" in first, result.stderr

    as_json = pin(plugin_env, "--update", "--platform", AMD, "--format", "json",
                  *select(front, python, after), str(tmp_path / "tree"))
    expect(as_json, 0)
    (line,) = [json.loads(text) for text in as_json.stdout.splitlines()]
    assert (line["Status"], line["New"], line["Reason"]) == (
        "unchanged-for-platform", None, "unchanged for linux/amd64")

    # Naming both platforms: arm64 changed, so it moves, to the INDEX digest.
    result = pin(plugin_env, "--update", "--platform", AMD, "--platform", "linux/arm64/v8",
                 *select(front, python, after), str(tmp_path / "tree"))
    expect(result, 0)
    assert dockerfile.read_text() == files[dockerfile].replace(before.digest, after.digest)
    assert result.stdout.splitlines() == [
        f"{dockerfile}:1: {tag}@{before.digest} -> {tag}@{after.digest}"]
    assert "1 updated" in result.stderr.splitlines()[0]


def test_without_platform_the_pin_moves_as_before(
        plugin_env: DockerConfig, front: Front, python: Series, tmp_path: Path) -> None:
    before, after = at(python, 0), at(python, 1)
    tag = tag_of(front, python)
    pinned_tree(tmp_path, f"{tag}@{before.digest}")
    result = pin(plugin_env, "--update", *select(front, python, after), str(tmp_path))
    expect(result, 0)
    assert (tmp_path / "Dockerfile").read_text().startswith(f"FROM {tag}@{after.digest} ")
    assert "unchanged for" not in result.stderr


@pytest.mark.parametrize(("pinned", "selected", "why"), [
    (4, 5, "the selected build has no linux/arm64"),
    (5, 6, "the pinned build has no linux/arm64"),
])
def test_a_missing_platform_moves_the_pin_and_the_summary_says_why(
        plugin_env: DockerConfig, front: Front, python: Series, tmp_path: Path,
        pinned: int, selected: int, why: str) -> None:
    old, new = at(python, pinned), at(python, selected)
    assert (ARM in old.platforms) != (ARM in new.platforms)
    tag = tag_of(front, python)
    pinned_tree(tmp_path, f"{tag}@{old.digest}")
    result = pin(plugin_env, "--update", "--platform", ARM, *select(front, python, new),
                 str(tmp_path))
    expect(result, 0)
    assert (tmp_path / "Dockerfile").read_text().startswith(f"FROM {tag}@{new.digest} ")
    assert f"  moved {tmp_path / 'Dockerfile'}:1: {why}" in result.stderr.splitlines()


def test_check_fails_only_when_a_named_platform_changed(
        plugin_env: DockerConfig, front: Front, python: Series, tmp_path: Path) -> None:
    before, after = at(python, 0), at(python, 1)
    tag = tag_of(front, python)
    files = pinned_tree(tmp_path, f"{tag}@{before.digest}")
    passed = pin(plugin_env, "--check", "--update", "--platform", AMD,
                 *select(front, python, after), str(tmp_path))
    expect(passed, 0)
    assert passed.stdout == "" and "1 unchanged for linux/amd64" in passed.stderr
    failed = pin(plugin_env, "--check", "--platform", ARM, *select(front, python, after),
                 str(tmp_path))
    expect(failed, 1)
    assert failed.stdout.splitlines() == [
        f"{tmp_path / 'Dockerfile'}:1: {tag}@{before.digest} -> {tag}@{after.digest}"]
    assert all(path.read_text() == text for path, text in files.items())


def test_the_configured_platforms_are_the_default_and_the_flag_replaces_them(
        plugin_env: DockerConfig, front: Front, python: Series, tmp_path: Path) -> None:
    before, after = at(python, 0), at(python, 1)
    tag = tag_of(front, python)
    files = pinned_tree(tmp_path, f"{tag}@{before.digest}")
    plugin_env.update(plugins={"cghistory": {"platforms": "linux/amd64"}})
    result = pin(plugin_env, "--update", *select(front, python, after), str(tmp_path))
    expect(result, 0)
    assert all(path.read_text() == text for path, text in files.items())
    assert "1 unchanged for linux/amd64" in result.stderr.splitlines()[0]
    result = pin(plugin_env, "--update", "--platform", ARM, *select(front, python, after),
                 str(tmp_path))
    expect(result, 0)
    assert (tmp_path / "Dockerfile").read_text().startswith(f"FROM {tag}@{after.digest} ")

    # docker wants plugin settings as strings: a list is written "a, b".
    plugin_env.update(plugins={"cghistory": {"platforms": "linux/amd64, amd64"}})
    bad = pin(plugin_env, "--update", str(tmp_path))
    expect(bad, 2)
    assert len(bad.stderr.splitlines()) == 1, bad.stderr
    (line,) = bad.stderr.splitlines()
    assert "plugins.cghistory.platforms" in line and "OS/ARCH[/VARIANT]" in line


# --------------------------------------------------------------------------- --changes
def expected_words(python: Series, old: Build, new: Build, platform: str) -> list[str]:
    """What a report of old -> new must name, from what the fixture pushed."""
    expected = python.expected_diff(old, new, platform)
    words = [f"{c['Name']} {c['New']}" for c in expected.packages["Changed"]]
    words += [f"+{p['Name']}" for p in expected.packages["Added"]]
    words += [f"-{p['Name']}" for p in expected.packages["Removed"]]
    return words + [change["Field"] for change in expected.config]


def test_changes_in_text_once_per_move_with_every_place(
        plugin_env: DockerConfig, front: Front, python: Series, tmp_path: Path) -> None:
    old, new = at(python, 1), at(python, 2)
    tag = tag_of(front, python)
    files = pinned_tree(tmp_path, f"{tag}@{old.digest}", compose=True)
    result = pin(plugin_env, "--update", "--changes", "--platform", AMD,
                 *select(front, python, new), str(tmp_path))
    expect(result, 0)
    assert all(path.read_text() == text.replace(old.digest, new.digest)
               for path, text in files.items())
    out = result.stdout
    section = out[out.index("What moving the pins changes (linux/amd64):"):]
    lines = section.splitlines()
    heads = [line for line in lines if line.startswith(f"  {tag}  ")]
    assert len(heads) == 1  # one move, written in two files
    head = heads[0]
    assert f"sha256:{old.digest[7:19]} → sha256:{new.digest[7:19]}" in head
    assert f"{tmp_path / 'Dockerfile'}:1" in head and f"{tmp_path / 'compose.yaml'}:3" in head
    for word in expected_words(python, old, new, AMD):
        assert word in section, (word, section)
    assert any(line.startswith("    size: ") for line in lines)


def test_changes_is_for_the_first_platform_and_says_when_its_image_is_identical(
        plugin_env: DockerConfig, front: Front, python: Series, tmp_path: Path) -> None:
    """arm64 changed, so the pin moves; what that changes for amd64 (the first --platform) is
    nothing: one line, naming the platform that did change."""
    old, new = at(python, 0), at(python, 1)
    tag = tag_of(front, python)
    pinned_tree(tmp_path, f"{tag}@{old.digest}")
    result = pin(plugin_env, "--update", "--dry-run", "--changes", "--platform", AMD,
                 "--platform", ARM, *select(front, python, new), str(tmp_path))
    expect(result, 0)
    assert "What moving the pins changes (linux/amd64):" in result.stdout
    identical = [line for line in result.stdout.splitlines() if "is identical in" in line]
    assert len(identical) == 1 and identical[0].endswith(
        "the builds differ only in linux/arm64"), result.stdout
    assert (tmp_path / "Dockerfile").read_text().startswith(f"FROM {tag}@{old.digest} ")

    # No --platform: the default platform (the engine's, else this machine's).
    result = pin(plugin_env, "--update", "--dry-run", "--changes",
                 *select(front, python, new), str(tmp_path))
    expect(result, 0)
    assert f"What moving the pins changes ({local_platform()}):" in result.stdout


def test_changes_as_markdown_for_a_pull_request(
        plugin_env: DockerConfig, front: Front, python: Series, tmp_path: Path) -> None:
    old, new = at(python, 1), at(python, 2)
    tag = tag_of(front, python)
    files = pinned_tree(tmp_path, f"{tag}@{old.digest}")
    result = pin(plugin_env, "--update", "--dry-run", "--changes", "--format", "markdown",
                 "--platform", AMD, *select(front, python, new), str(tmp_path))
    expect(result, 0)
    assert all(path.read_text() == text for path, text in files.items())
    out = result.stdout
    assert out.startswith("## Pinned images to move\n\n| Image | From | To | Where |\n")
    assert f"| `{tag}` | `sha256:{old.digest[7:19]}` | `sha256:{new.digest[7:19]}` |" in out
    expected = python.expected_diff(old, new, AMD)
    assert "| Package | Old | New |" in out
    for change in expected.packages["Changed"]:
        assert f"| {change['Name']} | {change['Old']} | {change['New']} |" in out
    for added in expected.packages["Added"]:
        assert f"| {added['Name']} |  | {added['Version']} |" in out
    assert "@@" not in out and "---" not in out.split("| --- |")[0]  # no diff, no change lines


def test_a_diff_that_cannot_be_read_is_one_line_and_the_pin_still_moves(
        plugin_env: DockerConfig, front: Front, python: Series, tmp_path: Path) -> None:
    """Build 5 has no arm64: what moving to it changes for arm64 cannot be computed."""
    old, new = at(python, 4), at(python, 5)
    tag = tag_of(front, python)
    pinned_tree(tmp_path, f"{tag}@{old.digest}")
    result = pin(plugin_env, "--update", "--changes", "--platform", ARM,
                 *select(front, python, new), str(tmp_path))
    expect(result, 0)
    assert (tmp_path / "Dockerfile").read_text().startswith(f"FROM {tag}@{new.digest} ")
    problems = [line for line in result.stdout.splitlines()
                if line.startswith("    what changed could not be read: ")]
    assert len(problems) == 1 and "has no linux/arm64 image" in problems[0], result.stdout


def test_changes_in_json_go_under_changes_as_diff_writes_them(
        plugin_env: DockerConfig, front: Front, python: Series, tmp_path: Path) -> None:
    old, new = at(python, 1), at(python, 2)
    tag = tag_of(front, python)
    pinned_tree(tmp_path, f"{tag}@{old.digest}", compose=True)
    result = pin(plugin_env, "--update", "--dry-run", "--changes", "--format", "json",
                 "--platform", AMD, *select(front, python, new), str(tmp_path))
    expect(result, 0)
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["Status"] for o in objects] == ["updated", "updated"]
    expected = python.expected_diff(old, new, AMD)
    for document in objects:
        changes = document["Changes"]
        assert changes["Platform"] == AMD and changes["Identical"] is False
        assert changes["Packages"] == expected.packages
        assert (changes["Old"]["Digest"], changes["New"]["Digest"]) == (old.digest, new.digest)
        assert changes["New"]["PlatformDigest"] == new.platforms[AMD].digest


@pytest.mark.parametrize("selected", [False, True])
def test_markdown_changes_show_both_builds_times_as_diff_does(
        plugin_env: DockerConfig, front: Front, python: Series, tmp_path: Path,
        selected: bool) -> None:
    """Moving to the newest build: without a selector pin reads only that build, so the pinned
    build's time comes from the tag's history; with ``--digest`` from the history read then."""
    old, new = at(python, len(python.builds) - 3), at(python, len(python.builds) - 1)
    tag = tag_of(front, python)
    pinned_tree(tmp_path, f"{tag}@{old.digest}")
    chosen = select(front, python, new) if selected else ["--image", tag]
    result = pin(plugin_env, "--update", "--dry-run", "--changes", "--format", "markdown",
                 "--platform", AMD, *chosen, str(tmp_path))
    expect(result, 0)
    diff = plugin_env.run("docker", "cghistory", "diff", tag, old.digest, new.digest,
                          "--platform", AMD, "--format", "markdown", timeout=180)
    expect(diff, 0)

    def sides(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith(("- Old: ", "- New: "))]

    assert len(sides(result.stdout)) == 2, result.stdout
    assert sides(result.stdout) == sides(diff.stdout)
    for line in sides(result.stdout):
        assert re.search(r"`, \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z; ", line), line
