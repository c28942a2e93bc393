"""Programs are found on PATH's absolute entries only, as Go's ``exec.LookPath`` (docker) does:
an empty (``PATH=/usr/bin:``, ``::``) or relative (``.``, ``bin``) entry never makes a program
in the current folder run — not a credential helper, not ``docker``, not bisect's test."""

from __future__ import annotations

import io
import os
import stat
import sys
from pathlib import Path

import pytest

from docker_cghistory.complete import sources
from docker_cghistory.programs import find_program, is_plain_name, search_path
from docker_cghistory.testcommand import CannotRun, run_command


def program(folder: Path, name: str, body: str = "") -> Path:
    """An executable shell script that leaves ``<name>.ran`` beside itself when it runs."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    marker = folder / f"{name}.ran"
    path.write_text(f"#!/bin/sh\n: > '{marker}'\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current folder holding programs it must not be able to slip in."""
    folder = tmp_path / "checkout"
    folder.mkdir()
    (folder / "bin").mkdir()
    monkeypatch.chdir(folder)
    return folder


UNSAFE_PATHS = ["/usr/bin:/bin:", ":/usr/bin", "/usr/bin::/bin", ".:/usr/bin", "bin:/usr/bin",
                "./bin", ""]


@pytest.mark.parametrize("path", UNSAFE_PATHS)
def test_empty_and_relative_entries_are_ignored(cwd: Path, path: str) -> None:
    program(cwd, "cgh-probe")
    program(cwd / "bin", "cgh-probe")
    assert find_program("cgh-probe", path) is None
    assert all(os.path.isabs(entry) for entry in search_path(path))


def test_absolute_entries_still_work_and_give_absolute_paths(cwd: Path, tmp_path: Path) -> None:
    program(cwd, "cgh-probe")
    first, second = tmp_path / "first", tmp_path / "second"
    program(second, "cgh-probe")
    path = os.pathsep.join(["", ".", str(first), "bin", str(second)])
    assert find_program("cgh-probe", path) == str(second / "cgh-probe")
    program(first, "cgh-probe")
    assert find_program("cgh-probe", path) == str(first / "cgh-probe")


def test_the_environment_path_is_the_default(cwd: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    program(cwd, "cgh-probe")
    monkeypatch.setenv("PATH", f"{os.defpath}:")
    assert find_program("cgh-probe") is None
    program(tmp_path / "abs", "cgh-probe")
    monkeypatch.setenv("PATH", f":{tmp_path / 'abs'}")
    assert find_program("cgh-probe") == str(tmp_path / "abs" / "cgh-probe")


@pytest.mark.parametrize("name", ["bin/cgh-probe", "./cgh-probe", "../cgh-probe",
                                  "/usr/bin/env", "", ".", "..", "a\0b"])
def test_names_with_a_folder_part_are_refused(cwd: Path, name: str) -> None:
    program(cwd / "bin", "cgh-probe")
    assert not is_plain_name(name)
    assert find_program(name, f"{cwd}:/usr/bin:/bin") is None


def test_folders_and_files_that_are_not_executable_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "a" / "cgh-probe").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "cgh-probe").write_text("#!/bin/sh\n")
    program(tmp_path / "c", "cgh-probe")
    path = os.pathsep.join(str(tmp_path / d) for d in "abc")
    assert find_program("cgh-probe", path) == str(tmp_path / "c" / "cgh-probe")


# --- bisect's test command ---------------------------------------------------------------


@pytest.mark.parametrize("path", UNSAFE_PATHS)
def test_a_test_command_found_only_through_an_unsafe_entry_is_not_run(
        cwd: Path, path: str) -> None:
    program(cwd, "cgh-test")
    program(cwd / "bin", "cgh-test")
    with pytest.raises(CannotRun) as error:
        run_command(["cgh-test", "{}"], "img", env={"PATH": path}, output=io.StringIO())
    assert str(error.value) == "cannot run 'cgh-test': not found on PATH"
    assert not (cwd / "cgh-test.ran").exists() and not (cwd / "bin" / "cgh-test.ran").exists()


def test_a_test_command_is_looked_up_on_the_path_it_runs_with(
        cwd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tools = tmp_path / "tools"
    program(tools, "cgh-test", 'echo "image $1 $CGHISTORY_IMAGE"; exit 3')
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # ours lacks it; the command's has it
    out = io.StringIO()
    status = run_command(["cgh-test", "{}"], "img", env={"PATH": f":{tools}"}, output=out)
    assert status == 3 and out.getvalue() == "image img img\n"


def test_a_test_command_with_a_slash_is_the_users_explicit_path(cwd: Path) -> None:
    program(cwd, "cgh-test", "exit 4")
    program(cwd / "bin", "cgh-test", "exit 5")
    env = {"PATH": "/usr/bin:/bin"}
    assert run_command(["./cgh-test"], "img", env=env, output=io.StringIO()) == 4
    assert run_command(["bin/cgh-test"], "img", env=env, output=io.StringIO()) == 5
    assert run_command([str(cwd / "cgh-test")], "img", env=env, output=io.StringIO()) == 4


def test_a_test_command_keeps_its_argv0(tmp_path: Path) -> None:
    """Only the file executed is pinned down: multi-call programs (busybox) read argv[0]."""
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "cgh-python").symlink_to(sys.executable)
    out = io.StringIO()
    code = "import sys; print(sys.orig_argv[0])"
    status = run_command(["cgh-python", "-c", code], "img", env={**os.environ, "PATH": str(tools)},
                         output=out)
    assert status == 0 and out.getvalue() == "cgh-python\n"


# --- completion's local image list -------------------------------------------------------


def test_completion_never_runs_a_docker_from_the_current_folder(
        cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program(cwd, "docker", "echo evil:latest")
    monkeypatch.setenv("PATH", ":.:bin")
    assert sources._docker_images(timeout=5) is None
    assert not (cwd / "docker.ran").exists()


def test_completion_runs_docker_from_an_absolute_path_entry(
        cwd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program(cwd, "docker", "echo evil:latest")
    program(tmp_path / "tools", "docker", "echo cgr.dev/chainguard/go:latest")
    monkeypatch.setenv("PATH", f":{tmp_path / 'tools'}")
    assert sources._docker_images(timeout=5) == ["cgr.dev/chainguard/go:latest"]
    assert not (cwd / "docker.ran").exists()


def test_unsafe_path_entries_are_dropped_from_our_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docker-py starts ``ssh`` by bare name: our own PATH must not reach the current folder."""
    from docker_cghistory.programs import drop_unsafe_path_entries

    monkeypatch.setenv("PATH", "/usr/bin::.:bin:/bin:")
    drop_unsafe_path_entries()
    assert os.environ["PATH"] == "/usr/bin:/bin"


def test_relative_xdg_cache_home_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    from docker_cghistory import cache

    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", "/home/someone")
    assert cache.cache_dir() == "/home/someone/.cache/docker-cghistory"
