"""``bisect`` against the real dockerd, through the front and the real docker CLI.

The builds carry a marker file ``/build``: ``ok N``, ``broken N`` or ``skip X``. The test
command really runs each pulled build and reads the marker, so a passing test proves that the
bisect pulled and ran the build it names, not just that the arithmetic works.
"""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.front import Front, history_from_digests
from tests.support.services import DockerConfig, Dockerd, Registry, build_images

pytestmark = pytest.mark.integration

REPO = "chainguard/bisect"
MARKERS = [*(f"ok {i}" for i in range(7)), *(f"broken {i}" for i in range(7, 12)),
           "skip a", "skip b"]
# Exit 125 for a build marked skip, 1 for a broken one, 0 otherwise.
SCRIPT = "if grep -q skip /build; then exit 125; fi; ! grep -q broken /build"
COMMAND = ["docker", "run", "--rm", "--network", "none", "{}", "sh", "-c", SCRIPT]
# Each tag's history, oldest first, as markers; all in one repository.
TAGS = {
    "latest": MARKERS[:12],  # first bad: broken 7
    "skips": ["ok 0", "ok 1", "ok 2", "ok 3", "skip a", "ok 4", "broken 7", "broken 8",
              "broken 9", "broken 10"],
    "hidden": ["ok 0", "ok 1", "skip a", "skip b", "broken 7", "broken 8"],
}


@dataclass
class Images:
    digests: dict[str, str]  # marker → digest

    def history(self, tag: str) -> list[list[str]]:
        return history_from_digests([self.digests[m] for m in TAGS[tag]])


@pytest.fixture(scope="module")
def images(dockerd: Dockerd, registry: Registry) -> Images:
    digests = build_images(dockerd, registry, REPO, len(MARKERS), marker_fn=MARKERS.__getitem__)
    assert len(set(digests)) == len(MARKERS)
    return Images(dict(zip(MARKERS, digests, strict=True)))


@pytest.fixture
def tags(front: Front, images: Images) -> dict[str, list[list[str]]]:
    """The front's histories; set per test because the front resets after each one."""
    histories = {tag: images.history(tag) for tag in TAGS}
    front.set_repo(REPO, {"public": True, "public_tags": list(TAGS), "history": histories})
    return histories


def shown(stamp: str) -> str:
    """A registry time as the tool prints it: exact, with a fraction (``.000`` when the
    registry wrote none), since a bare second typed back covers the whole second."""
    return stamp if "." in stamp else stamp[:-1] + ".000Z"


def image(front: Front, tag: str = "latest") -> str:
    return f"{front.host}/{REPO}:{tag}"


def pinned(front: Front, digest: str) -> str:
    return f"{front.host}/{REPO}@{digest}"


def local_digests(env: DockerConfig) -> set[str]:
    result = env.run("docker", "image", "ls", "--digests", "--format",
                     "{{.Repository}}@{{.Digest}}")
    assert result.returncode == 0, result.stderr
    return {line for line in result.stdout.split() if "@sha256:" in line}


VERDICT_LINE = re.compile(r"^bisect: testing #\d+ sha256:\w+ \([^)]*\): (good|bad|skip)"
                          r"( \(exit \d+\))?$")


def verdict_lines(stderr: str) -> list[str]:
    """The per-build verdict lines of the log (one per run of the command)."""
    return [line for line in stderr.splitlines() if VERDICT_LINE.match(line)]


def test_finds_the_first_bad_build_through_the_docker_cli(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, images: Images,
    tags: dict[str, list[list[str]]],
) -> None:
    result = plugin_env.run("docker", "cghistory", "bisect", image(front), "--good", "11",
                            "--", *COMMAND, timeout=300)
    assert result.returncode == 0, result.stderr
    history = tags["latest"]
    bad_time, bad_digest = shown(history[7][0]), history[7][1]
    good_time, good_digest = shown(history[6][0]), history[6][1]
    assert result.stdout.splitlines()[:5] == [
        f"first bad build: {pinned(front, bad_digest)} ({bad_time})",
        f"last good build: {pinned(front, good_digest)} ({good_time})",
        f"FROM {image(front)}@{good_digest}",
        result.stdout.splitlines()[3],
        f"pin: docker cghistory pin --image {image(front)} --digest {good_digest[7:19]}",
    ]
    # Then what changed between them, as diff shows it for the engine's platform.
    assert result.stdout.splitlines()[5:7] == ["", "What changed (last good → first bad):"]
    header = f"{image(front)}  linux/"
    assert result.stdout.splitlines()[7].startswith(header), result.stdout
    # These builds hold no package database: said in one line, config and size still shown.
    assert f"  old #5 {good_digest[7:19]}  {good_time}  no package data (" in result.stdout
    assert result.stdout.splitlines()[-2:][0] == "Size"
    runs = verdict_lines(result.stderr)
    assert 2 < len(runs) <= math.ceil(math.log2(12)) + 2
    assert result.stdout.splitlines()[3] == f"tested: {len(runs)} builds, skipped: 0"
    assert runs[0].startswith("bisect: testing #11 sha256:") and runs[0].endswith(": good")
    assert runs[1].startswith("bisect: testing #0 sha256:") and ": bad (exit 1)" in runs[1]
    # Nothing pulled for the bisect is left behind.
    assert local_digests(plugin_env) == set()


def test_json_counts_and_keep(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, images: Images,
    tags: dict[str, list[list[str]]],
) -> None:
    history = tags["latest"]
    good_digest = history[2][1]
    # --good as a digest prefix, --bad as a time: the build current then (broken 10).
    result = plugin_env.cghistory("bisect", image(front), "--good", good_digest[7:19],
                                  "--bad", history[10][0], "--keep", "--format", "json",
                                  "--", *COMMAND, timeout=300)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    # The same PascalCase keys as `list --format json`; Index numbers builds as `list` does.
    assert document["FirstBad"] == {"Index": 4, "Updated": shown(history[7][0]),
                                    "Digest": history[7][1],
                                    "Reference": pinned(front, history[7][1])}
    assert document["LastGood"]["Digest"] == history[6][1]
    assert document["LastGood"]["Index"] == 5
    assert document["FromLine"] == f"FROM {image(front)}@{history[6][1]}"
    assert document["PinCommand"] == (f"docker-cghistory pin --image {image(front)} "
                                      f"--digest {history[6][1][7:19]}")
    assert document["Candidates"] == [document["FirstBad"]]
    # What changed: no package data in these builds, so Changes is unknown (null), not empty.
    assert document["Changes"] is None
    assert document["Diff"]["Source"] == {"Old": "none", "New": "none"}
    assert (document["Diff"]["Old"]["Digest"], document["Diff"]["New"]["Digest"]) == (
        history[6][1], history[7][1])
    assert document["Skipped"] == 0
    assert document["Tested"] == len(document["Runs"]) <= math.ceil(math.log2(9)) + 2
    assert [run["Digest"] for run in document["Runs"][:2]] == [good_digest, history[10][1]]
    assert all(run["ExitCode"] == (0 if run["Verdict"] == "good" else 1)
               for run in document["Runs"])
    # --keep: every build tested is still there.
    assert local_digests(plugin_env) == {run["Reference"] for run in document["Runs"]}


def test_skipped_builds_are_stepped_around(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, images: Images,
    tags: dict[str, list[list[str]]],
) -> None:
    history = tags["skips"]
    result = plugin_env.cghistory("bisect", image(front, "skips"), "--good", "9",
                                  "--format", "json", "--", *COMMAND, timeout=300)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["FirstBad"]["Digest"] == history[6][1] == images.digests["broken 7"]
    assert document["LastGood"]["Digest"] == images.digests["ok 4"]
    assert document["Skipped"] == 1
    skipped = [run for run in document["Runs"] if run["Verdict"] == "skip"]
    assert [(run["Digest"], run["ExitCode"]) for run in skipped] == [
        (images.digests["skip a"], 125)]
    assert ": skip (exit 125)" in result.stderr


@pytest.mark.parametrize(("extra", "words"), [
    (["--format", "yaml", "--", "true"], ["--format", "yaml", "text", "json"]),
    (["--format", "json"], ["COMMAND", "after '--'"]),
    (["true"], ["unrecognized arguments: true"]),
])
def test_usage_errors_through_the_docker_cli(plugin_env: DockerConfig, extra: list[str],
                                            words: list[str]) -> None:
    """Refused by the parser before anything is read or pulled: exit 2, one line."""
    result = plugin_env.run("docker", "cghistory", "bisect", "cgr.example/x/y", "--good", "1",
                            *extra, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("docker cghistory: ")
    assert all(word in result.stderr for word in words), result.stderr


def test_skips_that_hide_the_boundary_give_the_range(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, images: Images,
    tags: dict[str, list[list[str]]],
) -> None:
    result = plugin_env.cghistory("bisect", image(front, "hidden"), "--good", "5",
                                  "--", *COMMAND, timeout=300)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "the first bad build is one of:"
    assert [line.split()[0] for line in lines[1:4]] == [
        pinned(front, images.digests[m]) for m in ("skip a", "skip b", "broken 7")]
    assert lines[4].startswith(f"last good build: {pinned(front, images.digests['ok 1'])} ")
    assert "the first bad build is one of 3" in result.stderr.splitlines()[-1]
    assert local_digests(plugin_env) == set()


def test_a_good_build_that_is_bad_is_reported(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, images: Images,
    tags: dict[str, list[list[str]]],
) -> None:
    result = plugin_env.cghistory("bisect", image(front), "--good", "2", "--", *COMMAND,
                                  timeout=300)
    assert result.returncode == 1
    assert result.stdout == ""
    last = result.stderr.splitlines()[-1]
    assert last.startswith("docker-cghistory: --good #2 sha256:")
    assert last.endswith("is bad (the command exited 1): give an older --good")
    # Only --good was tested: a wrong bound stops before anything else is pulled.
    assert len(verdict_lines(result.stderr)) == 1
    assert local_digests(plugin_env) == set()


def test_images_present_before_are_left_alone(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, images: Images,
    tags: dict[str, list[list[str]]],
) -> None:
    history = tags["latest"]
    mine = pinned(front, history[0][1])
    pulled = plugin_env.run("docker", "pull", mine, timeout=120)
    assert pulled.returncode == 0, pulled.stderr
    result = plugin_env.cghistory("bisect", image(front), "--good", "11", "--", *COMMAND,
                                  timeout=300)
    assert result.returncode == 0, result.stderr
    assert local_digests(plugin_env) == {mine}


def test_a_command_killed_by_a_signal_stops_with_the_state(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, images: Images,
    tags: dict[str, list[list[str]]],
) -> None:
    """The second run (--bad) kills itself: the bisect stops and says how far it got."""
    script = ('case "$CGHISTORY_IMAGE" in *' + images.digests["broken 11"]
              + ') kill -9 $$;; esac; exit 0')
    result = plugin_env.cghistory("bisect", image(front), "--good", "11", "--",
                                  "sh", "-c", script, timeout=300)
    assert result.returncode == 1
    assert result.stdout == ""
    last = result.stderr.splitlines()[-1]
    assert "the command was killed by SIGKILL while testing" in last
    assert "So far: last good #11 sha256:" in last
    assert local_digests(plugin_env) == set()


def test_ctrl_c_stops_with_the_state_and_cleans_up(
    plugin_env: DockerConfig, dockerd: Dockerd, front: Front, images: Images,
    tags: dict[str, list[list[str]]], tmp_path: Path,
) -> None:
    """SIGINT while the third run is going: exit 130, the bounds so far, nothing left over."""
    count, started = tmp_path / "count", tmp_path / "started"
    script = (f'n=$(($(cat {count} 2>/dev/null || echo 0) + 1)); echo $n > {count}; '
              f'if [ $n -ge 3 ]; then touch {started}; exec sleep 60; fi; [ $n -eq 1 ]')
    process = subprocess.Popen(
        [sys.executable, "-m", "docker_cghistory", "bisect", image(front), "--good", "11",
         "--", "sh", "-c", script],
        env=plugin_env.env, cwd=plugin_env.home, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not started.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists(), process.communicate(timeout=30)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert stdout == ""
    last = stderr.splitlines()[-1]
    assert last.startswith("docker-cghistory: interrupted. So far: last good #11 sha256:")
    assert "first bad at or before #0 sha256:" in last
    assert "resume with --good sha256:" in last
    assert local_digests(plugin_env) == set()
