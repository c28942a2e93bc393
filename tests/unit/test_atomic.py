"""The one atomic writer: whole files, durable, exact modes, and nothing left behind."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest

import docker_cghistory.atomic as atomic
from docker_cghistory import cache
from docker_cghistory.commands import install


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder of its own: the isolated environment keeps HOME and the cache in tmp_path."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What happened, in order: ``file`` and ``folder`` for each fsync, ``rename``."""
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    def replace(source: str, target: str) -> None:
        events.append("rename")
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_the_file_is_synced_before_the_rename_and_the_folder_after(
        folder: Path, synced: list[str]) -> None:
    target = folder / "f"
    target.write_bytes(b"old")
    atomic.write(str(target), b"new", mode=0o640)
    assert target.read_bytes() == b"new" and mode(target) == 0o640
    assert synced == ["file", "rename", "folder"]
    assert os.listdir(folder) == ["f"]


@pytest.mark.parametrize(("umask", "wanted"), [(0o077, 0o755), (0o000, 0o600), (0o022, 0o640)])
def test_the_mode_is_exact_whatever_the_umask(folder: Path, umask: int, wanted: int) -> None:
    previous = os.umask(umask)
    try:
        atomic.write(str(folder / "f"), b"x", mode=wanted)
    finally:
        os.umask(previous)
    assert mode(folder / "f") == wanted


def test_the_same_owner_is_not_changed(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fchown", lambda *a: pytest.fail("no chown for the same owner"))
    atomic.write(str(folder / "f"), b"x", mode=0o600, owner=(os.getuid(), os.getgid()))
    assert (folder / "f").read_bytes() == b"x"


def fail(*args: object) -> None:
    raise OSError(28, "No space left on device")


class Refused(Exception):
    pass


def refuse() -> None:
    raise Refused


@pytest.mark.parametrize("broken", ["fsync", "replace", "before_rename", "interrupt"])
def test_a_failure_leaves_the_old_file_and_no_temporary(
        folder: Path, monkeypatch: pytest.MonkeyPatch, broken: str) -> None:
    target = folder / "f"
    target.write_bytes(b"old")
    check = refuse if broken == "before_rename" else None
    if broken in ("fsync", "replace"):
        monkeypatch.setattr(os, broken, fail)
    if broken == "interrupt":
        def interrupted(fd: int) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(os, "fsync", interrupted)
    expected = {"before_rename": Refused, "interrupt": KeyboardInterrupt}.get(broken, OSError)
    with pytest.raises(expected):
        atomic.write(str(target), b"new", mode=0o600, before_rename=check)
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert os.listdir(folder) == ["f"]


def test_a_missing_folder_is_an_oserror(folder: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic.write(str(folder / "gone" / "f"), b"x", mode=0o600)


def test_the_cache_and_the_launcher_write_through_it(
        isolated_env: object, folder: Path, synced: list[str]) -> None:
    entry = os.path.join(cache.cache_dir(), "plans", "k")
    cache.write_atomic(entry, b"{}")
    assert mode(entry) == 0o600 and synced == ["file", "rename", "folder"]
    synced.clear()
    launcher = folder / "plugins" / "docker-cghistory"
    launcher.parent.mkdir()
    install._write(str(launcher), "#!/bin/sh\n")
    assert mode(launcher) == 0o755 and synced == ["file", "rename", "folder"]


def test_the_module_imports_only_os() -> None:
    """Completion writes its cache through this module on a TAB: no import may cost it."""
    tree = ast.parse(Path(atomic.__file__).read_text())
    imported = {alias.name for node in tree.body if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in tree.body if isinstance(node, ast.ImportFrom)}
    assert imported == {"os", "__future__"}
