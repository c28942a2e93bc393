"""``pin``'s choices end to end without a registry: ``--image``, the build selectors, pins at
other builds, empty runs, file names, ``${VAR:-default}``, ``--strict``, ``--format json`` and
the colours of ``--dry-run``.

The resolver is the stand-in of ``test_rewrite_pin_command`` (``fake_digest`` of the tag): what
it answers is "the selected build", whichever selector was given, so each test is about what
pin does with that answer.
"""

from __future__ import annotations

import fnmatch
import io
import json
import re
from pathlib import Path

import pytest

from docker_cghistory import cli, rewrite
from docker_cghistory.streams import Streams
from tests.unit import test_rewrite_pin_command as base
from tests.unit.conftest import Env
from tests.unit.pinning import fake_digest

errors, run_pin = base.errors, base.run_pin
tree, resolved = base.tree, base.resolved  # fixtures: a tree to pin, a resolver without network

PY = "cgr.dev/chainguard/python"
OLD = "sha256:" + "0d" * 32


def wanted(reference: str) -> str:
    """The digest the stand-in registry gives ``HOST/REPO:TAG``."""
    return fake_digest(reference)


def test_image_touches_only_that_image(tree: Path, resolved: list,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    dockerfile = (f"FROM {PY}:latest AS a\nFROM {PY}:3.12 AS b\nFROM cgr.dev/chainguard/go\n"
                  "FROM python:3.12\n")
    (tree / "Dockerfile").write_text(dockerfile)
    code, out, err = run_pin(capsys, "--image", "python:latest", "--previous")
    assert code == 0, err
    latest = f"{PY}:latest@{wanted(f'{PY}:latest')}"
    assert (tree / "Dockerfile").read_text() == dockerfile.replace(f"{PY}:latest", latest)
    assert out.splitlines() == [f"Dockerfile:1: {PY}:latest -> {latest}"]
    assert err.startswith("1 file scanned, 1 reference pinned, 0 updated, 0 already pinned, ")

    # Without a tag, every tag of the image; Docker Hub's python is another image.
    code, out, err = run_pin(capsys, "--image", "python")
    assert code == 0, err
    assert out.splitlines() == [f"Dockerfile:2: {PY}:3.12 -> {PY}:3.12@{wanted(f'{PY}:3.12')}"]
    assert "FROM cgr.dev/chainguard/go\nFROM python:3.12\n" in (tree / "Dockerfile").read_text()
    # Repeatable, with the full name of another registry.
    code, out, _ = run_pin(capsys, "--image", "go", "--image", "docker.io/library/python")
    assert code == 0 and [line.split(":")[0] for line in out.splitlines()] == ["Dockerfile"] * 2


@pytest.mark.parametrize("words", [
    ["--previous"],
    ["--index", "2", "--image", "python"],
    ["--digest", "abcdef", "--image", "python:latest", "--image", "go:latest"],
])
def test_one_build_selectors_without_one_tag_are_usage_errors(
        tree: Path, resolved: list, capsys: pytest.CaptureFixture[str], words: list[str]) -> None:
    (tree / "Dockerfile").write_text(f"FROM {PY}:latest\n")
    code, out, err = run_pin(capsys, *words)
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1 and "exactly one --image IMAGE:TAG" in err
    assert (tree / "Dockerfile").read_text() == f"FROM {PY}:latest\n"


def test_an_image_that_names_nothing_fails(tree: Path, resolved: list,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tree / "Dockerfile").write_text(f"FROM {PY}:latest\n")
    code, out, err = run_pin(capsys, "--image", "pyhton", "--check")
    assert (code, out) == (1, "")
    assert errors(err) == [
        "error: --image pyhton: no reference to cgr.dev/chainguard/pyhton in the 1 file scanned"]


def test_pins_at_other_builds_are_reported_checked_and_moved_by_update(
        tree: Path, resolved: list, capsys: pytest.CaptureFixture[str]) -> None:
    at_old = f"{PY}:latest@{OLD}"
    selected = f"{PY}:latest@{wanted(f'{PY}:latest')}"
    (tree / "Dockerfile").write_text(f"FROM {at_old}\nFROM {selected} AS again\n")
    before = (tree / "Dockerfile").read_text()

    # No selector: a pin is a pin, nothing is asked and --check passes (as before).
    code, out, err = run_pin(capsys, "--check")
    assert (code, out) == (0, ""), err
    assert "2 already pinned" in err

    for selector in (["--at", "2024-06-01"], ["--image", "python:latest", "--previous"]):
        code, out, err = run_pin(capsys, *selector)
        assert (code, out) == (0, ""), err
        assert (tree / "Dockerfile").read_text() == before
        assert err.splitlines()[0] == (
            "1 file scanned, 0 references pinned, 0 updated, 1 already pinned, "
            "1 pinned to other builds, 0 skipped")
        assert f"  other build Dockerfile:1: {at_old}" in err.splitlines()
        assert err.splitlines()[-1].endswith("--update moves it")

        code, out, err = run_pin(capsys, "--check", *selector)
        assert code == 1
        assert out.splitlines() == [f"Dockerfile:1: {at_old} -> {selected}"]

    code, out, err = run_pin(capsys, "--update", "--at", "2024-06-01")
    assert code == 0, err
    assert out.splitlines() == [f"Dockerfile:1: {at_old} -> {selected}"]
    assert (tree / "Dockerfile").read_text() == before.replace(at_old, selected)
    assert run_pin(capsys, "--check", "--at", "2024-06-01")[0] == 0


@pytest.mark.parametrize("mode", [[], ["--check"], ["--dry-run"], ["--check", "sub"]])
def test_no_file_found_is_a_failure(tree: Path, resolved: list,
                                    capsys: pytest.CaptureFixture[str], mode: list[str]) -> None:
    (tree / "sub").mkdir()
    (tree / "README.md").write_text("FROM python\n")
    (tree / "Dockerfile.dockerignore").write_text("*.log\n")
    code, out, err = run_pin(capsys, *mode)
    assert (code, out) == (1, "")
    where = "sub" if "sub" in mode else "."
    assert err.startswith(f"docker-cghistory: no Dockerfile or compose file found in {where} ")
    assert len(err.splitlines()) == 1


NAMES = ("Dockerfile-prod", "Dockerfile_ci", "Dockerfile.prod", "prod.Dockerfile",
         "x.dockerfile", "Containerfile", "Containerfile-arm", "Containerfile.ci",
         "app.containerfile", "DOCKERFILE")


def test_common_dockerfile_names_are_found(tree: Path, resolved: list,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    for index, name in enumerate(NAMES):
        (tree / f"d{index}").mkdir()
        (tree / f"d{index}" / name).write_text("FROM go:1\n")
    (tree / "notes.txt").write_text("FROM go:1\n")
    (tree / "Dockerfiles").mkdir()
    code, out, err = run_pin(capsys)
    assert code == 0, err
    assert sorted(line.split(":")[0] for line in out.splitlines()) == sorted(
        f"d{index}/{name}" for index, name in enumerate(NAMES))
    assert err.startswith(f"{len(NAMES)} files scanned, {len(NAMES)} references pinned")


COMPOSE_NAMES = ("compose.yaml", "compose.yml", "compose.override.yaml",
                 "compose.override.yml", "docker-compose.yml", "docker-compose.yaml",
                 "docker-compose.prod.yaml")


def test_the_no_file_message_names_what_the_search_takes_and_nothing_else(
        tree: Path, resolved: list, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_pin(capsys)
    assert code == 1
    listed = err.split("(looked for ", 1)[1].rsplit(")", 1)[0]
    patterns = [word for word in re.findall(r"[\w*.-]+", listed)
                if "file" in word.lower() or "compose" in word]
    # Every name the search takes is one the message names...
    for name in (*NAMES, *COMPOSE_NAMES):
        assert any(fnmatch.fnmatch(name.lower(), p.lower()) for p in patterns), (name, listed)
    # ...and every name the message names is one the search takes.
    for number, pattern in enumerate(patterns):
        (tree / str(number)).mkdir()
        (tree / str(number) / pattern.replace("*", "x")).write_text("FROM go:1\n")
    found = rewrite.discover(["."])
    assert sorted(found) == sorted(f"{n}/{p.replace('*', 'x')}" for n, p in enumerate(patterns))


COMPOSE = ("services:\n"
           "  app:\n"
           f"    image: ${{APP_IMAGE:-{PY}:latest}}\n"
           "  worker:\n"
           "    image: \"${WORKER-redis}\"  # only when unset\n"
           "  custom:\n"
           "    image: ${CUSTOM_IMAGE}\n")


def test_compose_defaults_are_pinned_and_strict_fails_on_what_cannot_be(
        tree: Path, resolved: list, capsys: pytest.CaptureFixture[str]) -> None:
    path = tree / "compose.yaml"
    path.write_text(COMPOSE)
    code, out, err = run_pin(capsys, "--check")
    assert code == 1
    assert len(out.splitlines()) == 2

    code, out, err = run_pin(capsys)
    assert code == 0, err
    python = f"{PY}:latest@{wanted(f'{PY}:latest')}"
    redis = f"redis:latest@{wanted('docker.io/library/redis:latest')}"
    assert path.read_text() == COMPOSE.replace(f"{PY}:latest", python).replace(
        "-redis}", f"-{redis}}}")
    assert "  skipped compose.yaml:7: ${CUSTOM_IMAGE}: uses variable interpolation: no default " \
           "value to pin (write ${VAR:-IMAGE})" in err.splitlines()

    code, out, err = run_pin(capsys, "--check")  # what it can check is pinned; one skipped
    assert (code, out) == (0, ""), err
    assert err.splitlines()[0].endswith("2 already pinned, 1 skipped, 0 not pinned as wanted")
    code, out, err = run_pin(capsys, "--check", "--strict")
    assert (code, out) == (1, "")
    assert errors(err) == ["error: --strict: 1 skipped (listed above): a reference that "
                           "cannot be pinned cannot be checked"]


def test_strict_fails_on_a_dockerfile_base_without_default(
        tree: Path, resolved: list, capsys: pytest.CaptureFixture[str]) -> None:
    (tree / "Dockerfile").write_text(f"ARG BASE\nFROM $BASE\nFROM {PY}@{OLD}\n")
    assert run_pin(capsys, "--check")[0] == 0
    code, _, err = run_pin(capsys, "--check", "--strict")
    assert code == 1 and "skipped Dockerfile:2: $BASE: build argument BASE has no default" in err


def test_format_json_one_object_per_reference(tree: Path, resolved: list,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tree / "Dockerfile").write_text(f"FROM {PY}:latest\nFROM {PY}:3.12@{OLD}\nFROM $X\n")
    (tree / "compose.yaml").write_text("services:\n  a:\n    image: [not, a, string]\n")
    selected = wanted(f"{PY}:3.12")
    for mode in (["--dry-run"], ["--check"], []):  # the last one writes
        code, out, err = run_pin(capsys, "--format", "json", "--at", "1d", *mode)
        assert code == (1 if mode == ["--check"] else 0), err
        objects = [json.loads(line) for line in out.splitlines()]
        assert objects == [
            {"File": "Dockerfile", "Line": 1, "Old": f"{PY}:latest",
             "New": f"{PY}:latest@{wanted(f'{PY}:latest')}", "Status": "pinned", "Reason": None},
            {"File": "Dockerfile", "Line": 2, "Old": f"{PY}:3.12@{OLD}",
             "New": f"{PY}:3.12@{selected}", "Status": "other-build",
             "Reason": "pinned to another build than the selected one; --update moves it"},
            {"File": "Dockerfile", "Line": 3, "Old": "$X", "New": None, "Status": "skipped",
             "Reason": "build argument X is not declared before the first FROM"},
            {"File": "compose.yaml", "Line": 3, "Old": "", "New": None, "Status": "skipped",
             "Reason": "image is not a string"},
        ], mode
    assert (tree / "Dockerfile").read_text().startswith(f"FROM {PY}:latest@")


def test_format_json_reports_files_that_failed(tree: Path, resolved: list,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    (tree / "Dockerfile").write_text("FROM go:1\n")
    (tree / "Dockerfile").chmod(0o444)
    (tree / "compose.yaml").write_text("services: [\n")
    code, out, _ = run_pin(capsys, "--format", "json")
    assert code == 1
    objects = [json.loads(line) for line in out.splitlines()]
    assert [(o["File"], o["Status"]) for o in objects] == [
        ("Dockerfile", "failed"), ("compose.yaml", "failed")]
    assert objects[0]["Reason"] == "Dockerfile: read-only; not written"
    assert objects[0]["New"] is not None and objects[1]["Old"] is None


@pytest.mark.parametrize(("tty", "no_color", "painted"), [
    (True, False, True), (True, True, False), (False, False, False)])
def test_dry_run_diff_colours_only_a_terminal_without_no_color(
        tree: Path, resolved: list, tty: bool, no_color: bool, painted: bool) -> None:
    (tree / "Dockerfile").write_text("# \x1b[2J\nFROM go:1\n")
    out, err = io.StringIO(), io.StringIO()
    streams = Streams(out, err, io.StringIO(), stdout_is_tty=tty, no_color=no_color)
    assert cli.run(["pin", "--dry-run"], streams) == 0, err.getvalue()
    text = out.getvalue()
    assert ("\x1b[31m-FROM go:1\x1b[0m\n" in text) is painted
    assert ("\x1b[32m+FROM go:1@sha256:" in text) is painted
    assert "\x1b[2J" not in text and "\\x1b[2J" in text
    if not painted:
        assert "\x1b" not in text


class _Pipe:
    """stdout and stderr on one pipe, as ``2>&1`` or a CI log has them: stdout reaches it
    when flushed (block-buffered, as Python's stdout on a pipe), stderr at once."""

    def __init__(self) -> None:
        self.chunks: list[tuple[str, str]] = []
        self.stdout, self.stderr = _Buffered(self), _Direct(self)


class _Buffered(io.StringIO):
    def __init__(self, pipe: _Pipe) -> None:
        super().__init__()
        self.pipe = pipe

    def flush(self) -> None:
        if self.getvalue():
            self.pipe.chunks.append(("out", self.getvalue()))
        self.seek(0)
        self.truncate()


class _Direct(io.StringIO):
    def __init__(self, pipe: _Pipe) -> None:
        super().__init__()
        self.pipe = pipe

    def write(self, text: str) -> int:
        self.pipe.chunks.append(("err", text))
        return len(text)


@pytest.mark.parametrize("mode", [[], ["--update"], ["--check"], ["--update", "--check"],
                                  ["--dry-run"], ["--update", "--dry-run"],
                                  ["--format", "json"], ["--check", "--format", "json"]])
def test_every_mode_shows_the_references_first_and_the_summary_last(
        tree: Path, resolved: list, mode: list[str]) -> None:
    (tree / "Dockerfile").write_text(f"FROM go:1\nFROM {PY}:latest@{OLD}\n")
    pipe = _Pipe()
    streams = Streams(pipe.stdout, pipe.stderr, io.StringIO(), stdout_is_tty=False)
    cli.run(["pin", *mode], streams)
    kinds = [kind for kind, _ in pipe.chunks]
    assert "out" in kinds and kinds[-1] == "err", pipe.chunks
    assert kinds == sorted(kinds, key=["out", "err"].index), pipe.chunks
    assert "".join(text for kind, text in pipe.chunks if kind == "err").startswith(
        "1 file scanned, ")


def test_no_color_is_read_from_the_environment() -> None:
    assert Streams.from_process({"NO_COLOR": "1"}).no_color
    assert not Streams.from_process({"NO_COLOR": ""}).no_color
    assert not Streams.from_process({}).no_color


# --------------------------------------------------------------------------- --platform, --changes
def platforms_of(*words: str) -> tuple[list[str], bool]:
    from docker_cghistory.commands import pin as pin_module
    from docker_cghistory.context import Context
    from docker_cghistory.settings import Settings

    _, args = cli.parse(["pin", "--update", *words], "docker-cghistory")
    found, named = pin_module._platforms(args, Context(program="docker-cghistory",
                                                       settings=Settings(vars(args))))
    return [str(platform) for platform in found], named


def test_platforms_default_from_the_config_then_the_environment_then_the_flag(
        isolated_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    assert platforms_of() == ([], False)  # no filter: today's behaviour
    isolated_env.write_config({"plugins": {"cghistory": {
        "platforms": "linux/amd64, linux/arm64/v8"}}})
    assert platforms_of() == (["linux/amd64", "linux/arm64"], False)
    isolated_env.write_config({"plugins": {"cghistory": {"platforms": ["linux/arm64"]}}})
    assert platforms_of() == (["linux/arm64"], False)
    # The first source that names platforms wins: narrower lists replace, never add up.
    monkeypatch.setenv("CGHISTORY_PLATFORMS", '["linux/arm/v7"]')
    assert platforms_of() == (["linux/arm/v7"], False)
    assert platforms_of("--platform", "linux/amd64", "--platform", "linux/amd64") == (
        ["linux/amd64"], True)


@pytest.mark.parametrize("source", ["flag", "env", "config"])
def test_an_invalid_platform_anywhere_is_one_usage_line_naming_the_form(
        tree: Path, resolved: list, capsys: pytest.CaptureFixture[str], isolated_env: Env,
        monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    (tree / "Dockerfile").write_text(f"FROM {PY}:latest@{OLD}\n")
    words = ["--update"]
    if source == "flag":
        words += ["--platform", "linux"]
    elif source == "env":
        monkeypatch.setenv("CGHISTORY_PLATFORMS", "linux/amd64,amd64")
    else:
        isolated_env.write_config({"plugins": {"cghistory": {"platforms": ["x/y/z/w"]}}})
    code, out, err = run_pin(capsys, *words)
    assert (code, out) == (2, "")
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "expected OS/ARCH[/VARIANT]" in lines[0], err
    named = {"flag": "--platform", "env": "CGHISTORY_PLATFORMS",
             "config": "plugins.cghistory.platforms"}[source]
    assert named in lines[0]
    assert (tree / "Dockerfile").read_text() == f"FROM {PY}:latest@{OLD}\n"


@pytest.mark.parametrize(("words", "needs"), [
    (["--platform", "linux/amd64"], "--platform decides whether a pinned reference moves"),
    (["--changes"], "--changes shows what moving pins changes"),
    (["--changes", "--platform", "linux/amd64", "--previous", "--image", "python:latest"],
     "--changes shows what moving pins changes"),
])
def test_platform_and_changes_without_a_comparison_are_usage_errors(
        tree: Path, resolved: list, capsys: pytest.CaptureFixture[str], words: list[str],
        needs: str) -> None:
    (tree / "Dockerfile").write_text(f"FROM {PY}:latest\n")
    code, out, err = run_pin(capsys, *words)
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1 and needs in err
    assert (tree / "Dockerfile").read_text() == f"FROM {PY}:latest\n"


def test_a_configured_default_does_not_refuse_a_plain_pin(
        tree: Path, resolved: list, capsys: pytest.CaptureFixture[str],
        isolated_env: Env) -> None:
    isolated_env.write_config({"plugins": {"cghistory": {"platforms": "linux/amd64"}}})
    (tree / "Dockerfile").write_text(f"FROM {PY}:latest\n")
    code, _, err = run_pin(capsys)
    assert code == 0, err
    assert (tree / "Dockerfile").read_text() == f"FROM {PY}:latest@{wanted(f'{PY}:latest')}\n"
    assert "0 unchanged for linux/amd64" in err.splitlines()[0]
