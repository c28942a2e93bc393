"""``pin`` end to end without a registry: which files it may write, and what it prints.

The resolver is replaced by a stand-in (``fake_digest``), so each test is about the files:
symlinks out of the tree, a file edited while references resolve, hard links, read-only
files, escape sequences in a dry-run diff. Refused files stay as they are, the others are
pinned, and the exit status says something was refused.
"""

from __future__ import annotations

import builtins
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from docker_cghistory import cli
from docker_cghistory.commands import pin as pin_module
from tests.unit.pinning import fake_digest

SECRET_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _wanted(keys: Iterable[pin_module.Key]) -> dict[pin_module.Key, pin_module.Wanted]:
    return {key: pin_module.Wanted(fake_digest(f"{key[0]}/{key[1]}:{key[2]}")) for key in keys}


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> list[Callable[[], None]]:
    """Resolution without a network; hooks appended to the list run while it "waits"."""
    hooks: list[Callable[[], None]] = []

    def resolve_all(keys: Iterable[pin_module.Key], resolve: object,
                    early: object = ()) -> dict:
        for hook in hooks:
            hook()
        return _wanted(keys)

    monkeypatch.setattr(pin_module, "_resolve_all", resolve_all)
    return hooks


def run_pin(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.run(["pin", *args])
    out, err = capsys.readouterr()
    return code, out, err


def errors(err: str) -> list[str]:
    return [line.strip() for line in err.splitlines() if line.strip().startswith("error:")]


def pinned(reference: str) -> str:
    return f"{reference}@{fake_digest('docker.io/library/' + reference)}"


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


def test_symlinks_out_of_the_tree_are_neither_read_nor_rewritten(
    tree: Path, resolved: list, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tree.parent / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "Dockerfile").write_text("FROM redis:7\n")
    (outside / "sub" / "Dockerfile").write_text("FROM nginx:1\n")
    (tree / "Dockerfile").symlink_to(Path("..", "outside", "Dockerfile"))
    (tree / "linked").symlink_to(outside / "sub", target_is_directory=True)
    (tree / "app").mkdir()
    (tree / "app" / "Dockerfile").write_text("FROM python:3.12\n")
    (tree / "api.Dockerfile").symlink_to(Path("app", "Dockerfile"))
    opened: list[str] = []

    def spy(real: Callable[..., object]) -> Callable[..., object]:
        def opener(path: object, *args: object, **kwargs: object) -> object:
            if isinstance(path, (str, os.PathLike)):
                opened.append(os.path.realpath(path))
            return real(path, *args, **kwargs)

        return opener

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "open", spy(os.open))
        patch.setattr(builtins, "open", spy(builtins.open))
        code, _, err = run_pin(capsys)
    assert code == 0, err
    assert (outside / "Dockerfile").read_text() == "FROM redis:7\n"
    assert (outside / "sub" / "Dockerfile").read_text() == "FROM nginx:1\n"
    assert not any(path.startswith(str(outside)) for path in opened), opened
    assert (tree / "app" / "Dockerfile").read_text() == f"FROM {pinned('python:3.12')}\n"
    assert (tree / "api.Dockerfile").is_symlink()
    assert "skipped Dockerfile: a symlink to a file outside the directory being pinned" in err


@pytest.mark.parametrize("how", ["walk", "explicit"])
def test_a_symlinked_secret_never_reaches_the_output(
    tree: Path, resolved: list, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    credentials = tree.parent / "home" / ".aws" / "credentials"
    credentials.parent.mkdir(parents=True)
    credentials.write_text(
        f"[default]\naws_access_key_id = {SECRET_ID}\naws_secret_access_key = {SECRET_KEY}\n"
    )
    (tree / "Containerfile").symlink_to(credentials)
    code, out, err = run_pin(capsys, "--check", *(["Containerfile"] if how == "explicit" else []))
    # Explicit: a usage error naming it. Walked: not followed, so no file was found at all.
    assert code == (2 if how == "explicit" else 1)
    for text in (out, err):
        assert SECRET_ID not in text and "wJalr" not in text and "[default]" not in text
    assert len(err.strip().splitlines()) == 1
    if how == "explicit":
        assert "Containerfile: a symlink to a file outside its folder" in err
    else:
        assert "no Dockerfile or compose file found in ." in err
        assert "1 symlink to files outside the tree not followed" in err


def test_a_secret_inside_the_tree_is_not_quoted_either(
    tree: Path, resolved: list, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / "Containerfile").write_text(f"[default]\naws_secret_access_key = {SECRET_KEY}\n")
    code, out, err = run_pin(capsys, "--check")
    assert code == 1
    assert errors(err) == ["error: Containerfile:1: unknown instruction"]
    assert "wJalr" not in out + err


def test_an_edit_made_while_resolving_survives(
    tree: Path, resolved: list, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / "a").mkdir()
    (tree / "a" / "Dockerfile").write_text("FROM redis:7\n")
    (tree / "b").mkdir()
    (tree / "b" / "Dockerfile").write_text("FROM nginx:1\n")

    def edit() -> None:
        with open(tree / "a" / "Dockerfile", "a") as handle:
            handle.write("RUN echo added meanwhile\n")

    resolved.append(edit)
    code, out, err = run_pin(capsys)
    assert code == 1
    assert (tree / "a" / "Dockerfile").read_text() == "FROM redis:7\nRUN echo added meanwhile\n"
    assert (tree / "b" / "Dockerfile").read_text() == f"FROM {pinned('nginx:1')}\n"
    assert errors(err) == ["error: a/Dockerfile: changed while pinning; run again"]
    # Only what was written is reported as pinned.
    assert out.splitlines() == [f"b/Dockerfile:1: nginx:1 -> {pinned('nginx:1')}"]
    assert err.startswith("2 files scanned, 1 reference pinned,")


def test_hard_linked_and_read_only_files_are_refused_and_the_rest_pinned(
    tree: Path, resolved: list, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / "linked").mkdir()
    (tree / "linked" / "Dockerfile").write_text("FROM redis:7\n")
    os.link(tree / "linked" / "Dockerfile", tree.parent / "elsewhere.Dockerfile")
    (tree / "ro").mkdir()
    (tree / "ro" / "Dockerfile").write_text("FROM nginx:1\n")
    (tree / "ro" / "Dockerfile").chmod(0o444)
    (tree / "ok").mkdir()
    (tree / "ok" / "compose.yaml").write_text("services:\n  a:\n    image: python:3.12\n")

    for flag in ("--check", "--dry-run"):  # nothing is written: nothing to refuse
        code, _, err = run_pin(capsys, flag)
        assert errors(err) == [] and code == (1 if flag == "--check" else 0), err

    code, out, err = run_pin(capsys)
    assert code == 1
    assert out.splitlines() == [f"ok/compose.yaml:3: python:3.12 -> {pinned('python:3.12')}"]
    assert (tree / "linked" / "Dockerfile").read_text() == "FROM redis:7\n"
    assert (tree.parent / "elsewhere.Dockerfile").read_text() == "FROM redis:7\n"
    assert os.path.samefile(tree / "linked" / "Dockerfile", tree.parent / "elsewhere.Dockerfile")
    assert (tree / "ro" / "Dockerfile").read_text() == "FROM nginx:1\n"
    assert stat.S_IMODE((tree / "ro" / "Dockerfile").stat().st_mode) == 0o444
    assert (tree / "ok" / "compose.yaml").read_text() == (
        f"services:\n  a:\n    image: {pinned('python:3.12')}\n"
    )
    assert errors(err) == [
        "error: linked/Dockerfile: has 2 hard links, which would keep the old text; not written",
        "error: ro/Dockerfile: read-only; not written",
    ]
    assert "1 reference pinned" in err and "2 failed" in err
    assert [p.name for p in tree.rglob(".*.tmp")] == []


def test_the_dry_run_diff_shows_no_raw_control_character(
    tree: Path, resolved: list, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "# \x1b]0;owned\x07\x1b[2J\x9b31m title\r\nFROM redis:7\r\nRUN x\tand\x0cy\n# end"
    (tree / "Dockerfile").write_bytes(text.encode())
    code, out, err = run_pin(capsys, "--dry-run")
    assert code == 0, err
    for raw in ("\x1b", "\x07", "\x9b", "\x0c"):
        assert raw not in out
    assert "\\x1b]0;owned\\x07\\x1b[2J\\x9b31m" in out
    assert f"+FROM {pinned('redis:7')}\r\n" in out and " RUN x\tand\\x0cy\n" in out
    assert out.endswith(" # end\n\\ No newline at end of file\n")
    assert (tree / "Dockerfile").read_bytes() == text.encode()
