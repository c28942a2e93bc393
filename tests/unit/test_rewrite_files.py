"""The corpus (exact bytes in, exact bytes out), discovery, decoding and safe writing."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from docker_cghistory.errors import CghistoryError, InvalidReference, UsageError
from docker_cghistory.rewrite import (
    ParseFailure,
    ReadFailure,
    Site,
    Target,
    WriteFailure,
    apply,
    atomic_write,
    decode,
    discover,
    discover_targets,
    find_sites,
    kind_of,
    pinned_text,
    read_snapshot,
    rewrite,
)
from docker_cghistory.rewrite import files as files_module
from tests.unit.pinning import ADDED_BY_PIN, fake_digest

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "pin"
CASES = sorted(CORPUS.glob("*/*.in"))
DIGEST = re.compile(ADDED_BY_PIN.pattern.encode())
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64




def pin_unpinned(site: Site) -> str | None:
    return None if site.pinned else pinned_text(site.text, fake_digest(site.text))


def report(sites: list[Site], skips: list) -> str:
    lines = []
    for site in sites:
        used = f" used-by {','.join(map(str, site.used_by))}" if site.used_by else ""
        lines.append(f"site {site.line} {site.kind} {site.text}{used}")
    lines += [f"skip {skip.line} {skip.text}: {skip.reason}" for skip in skips]
    return "\n".join(lines) + "\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty directory of our own: shared fixtures may put files in ``tmp_path``."""
    path = tmp_path / "work"
    path.mkdir()
    return path


# --- Corpus ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_corpus_output_is_exact(case: Path) -> None:
    data = case.read_bytes()
    expected = case.with_suffix(".out").read_bytes()
    out, sites, skips = rewrite(case.name, data, pin_unpinned, kind=case.parent.name)
    assert out == expected
    assert report(sites, skips) == case.with_suffix(".report").read_text()
    # Independent of the reader: removing digests gives back the input, byte for byte.
    assert DIGEST.sub(b"", out) == DIGEST.sub(b"", data)


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_corpus_second_pass_is_a_no_op(case: Path) -> None:
    pinned = case.with_suffix(".out").read_bytes()
    out, sites, _ = rewrite(case.name, pinned, pin_unpinned, kind=case.parent.name)
    assert out == pinned
    assert all(site.pinned for site in sites)


def test_corpus_covers_the_shapes_it_claims() -> None:
    names = {f"{p.parent.name}/{p.stem}" for p in CASES}
    assert {
        "dockerfile/crlf",
        "dockerfile/heredoc",
        "dockerfile/escape",
        "compose/anchors",
    } <= names
    assert b"\r\n" in (CORPUS / "dockerfile" / "crlf.in").read_bytes()
    assert (CORPUS / "compose" / "crlf-bom.in").read_bytes().startswith(b"\xef\xbb\xbf\x73")


# --- pinned_text and apply -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "digest_only", "expected"),
    [
        ("python:3.12", False, f"python:3.12@{D1}"),
        ("python:3.12", True, f"python@{D1}"),
        ("python", False, f"python:latest@{D1}"),
        ("cgr.dev/chainguard/python:latest", False, f"cgr.dev/chainguard/python:latest@{D1}"),
        ("docker.io/library/python:3", False, f"docker.io/library/python:3@{D1}"),
        (f"python:3.12@{D2}", False, f"python:3.12@{D1}"),
        (f"python:3.12@{D2}", True, f"python@{D1}"),
        ("localhost:5000/app", True, f"localhost:5000/app@{D1}"),
        ("localhost:5000/app:1", True, f"localhost:5000/app@{D1}"),
    ],
)
def test_pinned_text(written: str, digest_only: bool, expected: str) -> None:
    assert pinned_text(written, D1, digest_only=digest_only) == expected


def test_pinned_text_rejects_bad_input() -> None:
    with pytest.raises(InvalidReference):
        pinned_text("python", "sha256:abc")
    with pytest.raises(InvalidReference):
        pinned_text("Python", D1)


def test_apply() -> None:
    assert apply("abcdef", {(1, 2): "XY", (4, 6): ""}) == "aXYcd"
    assert apply("abc", {}) == "abc"
    assert apply("abc", {(3, 3): "!"}) == "abc!"
    with pytest.raises(ValueError, match="overlaps"):
        apply("abcdef", {(1, 3): "x", (2, 4): "y"})
    with pytest.raises(ValueError, match="outside"):
        apply("abc", {(2, 5): "x"})


# --- Decoding and kinds ----------------------------------------------------------------------


def test_decode_keeps_the_bom_and_rejects_invalid_utf8() -> None:
    assert decode("f", b"\xef\xbb\xbfFROM a\n") == "\ufeffFROM a\n"
    with pytest.raises(ParseFailure, match=r"^Dockerfile:2: not valid UTF-8 \(byte 8\)") as caught:
        find_sites("Dockerfile", b"FROM a\r\n\xff\n")
    assert isinstance(caught.value, CghistoryError)
    assert "\n" not in str(caught.value)


def test_parse_failure_message_is_sanitized() -> None:
    error = ParseFailure("bad\x1bname", 3, "line one\nline two")
    assert str(error).startswith("bad\\x1bname:3: line one")
    assert "\n" not in str(error)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("Dockerfile", "dockerfile"),
        ("x/Dockerfile.prod", "dockerfile"),
        ("api.Dockerfile", "dockerfile"),
        ("Containerfile", "dockerfile"),
        ("dockerfile", "dockerfile"),
        ("compose.yaml", "compose"),
        ("compose.yml", "compose"),
        ("docker-compose.override.yml", "compose"),
        ("deploy/stack.yaml", "compose"),
        ("build.txt", "dockerfile"),
    ],
)
def test_kind_of(path: str, kind: str) -> None:
    assert kind_of(path) == kind


def test_find_sites_dispatches_by_name() -> None:
    sites, _ = find_sites("compose.yaml", b"services:\n  a:\n    image: redis\n")
    assert [s.kind for s in sites] == ["compose"]
    sites, _ = find_sites("anything", b"FROM redis\n")
    assert [s.kind for s in sites] == ["from"]


# --- Discovery -------------------------------------------------------------------------------


def make(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("FROM a\n")


def test_discover_walks_directories_and_skips_vcs(folder: Path) -> None:
    make(
        folder,
        "Dockerfile",
        "Dockerfile.dockerignore",
        "svc/Dockerfile.dev",
        "svc/web.Dockerfile",
        "svc/Containerfile",
        "svc/Containerfile.arm",
        "compose.yaml",
        "ops/docker-compose.prod.yml",
        "ops/compose.override.yaml",
        "ops/stack.yaml",
        "README.md",
        ".git/Dockerfile",
        ".hg/compose.yaml",
        "sub/.svn/Dockerfile",
        "node_modules/pkg/Dockerfile",
    )
    (folder / "Dockerfile.d").mkdir()
    found = discover([str(folder)])
    assert [os.path.relpath(p, folder) for p in found] == [
        "Dockerfile",
        "compose.yaml",
        "node_modules/pkg/Dockerfile",
        "ops/compose.override.yaml",
        "ops/docker-compose.prod.yml",
        "svc/Containerfile",
        "svc/Containerfile.arm",
        "svc/Dockerfile.dev",
        "svc/web.Dockerfile",
    ]
    assert discover([str(folder)]) == found


def test_discover_takes_explicit_files_whatever_their_name(folder: Path) -> None:
    make(folder, "build/recipe.txt", "Dockerfile")
    explicit = str(folder / "build" / "recipe.txt")
    found = discover([explicit, str(folder), str(folder / "Dockerfile")])
    assert found == sorted([explicit, str(folder / "Dockerfile")])


def test_discover_does_not_follow_directory_symlinks(folder: Path) -> None:
    make(folder, "real/Dockerfile")
    (folder / "link").symlink_to(folder / "real", target_is_directory=True)
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    assert discover([str(folder)]) == [str(folder / "real" / "Dockerfile")]


def test_discover_leaves_symlinks_out_of_the_tree_alone(tmp_path: Path) -> None:
    """``Dockerfile -> ../outside/Dockerfile`` and a symlinked folder pointing outside are
    neither read nor listed; a symlink that stays inside the tree is pinned as before."""
    tree, outside = tmp_path / "tree", tmp_path / "outside"
    make(outside, "Dockerfile", "sub/compose.yaml")
    make(tree, "real/Dockerfile.base")
    (tree / "Dockerfile").symlink_to(outside / "Dockerfile")
    (tree / "rel").mkdir()
    (tree / "rel" / "Containerfile").symlink_to(Path("..", "..", "outside", "Dockerfile"))
    (tree / "linked").symlink_to(outside / "sub", target_is_directory=True)
    (tree / "app.Dockerfile").symlink_to(tree / "real" / "Dockerfile.base")
    targets, refused = discover_targets([str(tree)])
    assert [os.path.relpath(t.path, tree) for t in targets] == ["app.Dockerfile"]
    assert targets[0].real == os.path.realpath(tree / "real" / "Dockerfile.base")
    assert refused == [
        f"{tree / name}: a symlink to a file outside the directory being pinned; not followed"
        for name in ("Dockerfile", "rel/Containerfile")
    ]
    assert discover([str(tree)]) == [str(tree / "app.Dockerfile")]
    # The root itself may be a symlink: what counts is where it leads.
    (tmp_path / "alias").symlink_to(outside, target_is_directory=True)
    alias = tmp_path / "alias"
    assert discover([str(alias)]) == [str(alias / "Dockerfile"), str(alias / "sub/compose.yaml")]


def test_an_explicit_symlink_out_of_its_folder_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "home" / ".aws" / "credentials"
    secret.parent.mkdir(parents=True)
    secret.write_text("[default]\naws_secret_access_key = wJalrXUtnFEMI\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "Containerfile").symlink_to(secret)
    (tree / "sub").mkdir()
    (tree / "sub" / "Dockerfile").symlink_to(Path("..", "Containerfile"))
    monkeypatch.chdir(tree)
    for name in ("Containerfile", "sub/Dockerfile"):
        with pytest.raises(UsageError, match=f"^{name}: a symlink to a file outside its folder"):
            discover([name])
    (tree / "Dockerfile.real").write_text("FROM a\n")
    (tree / "Dockerfile").symlink_to("Dockerfile.real")
    assert discover(["Dockerfile"]) == ["Dockerfile"]


def test_read_snapshot_refuses_what_is_no_longer_the_file_found(folder: Path) -> None:
    make(folder, "Dockerfile", "other")
    target = Target("Dockerfile", str(folder / "Dockerfile"))
    assert read_snapshot(target).data == b"FROM a\n"
    (folder / "Dockerfile").unlink()
    (folder / "Dockerfile").symlink_to(folder / "other")
    with pytest.raises(ReadFailure, match=r"^Dockerfile: became a symlink; not followed$"):
        read_snapshot(target)
    (folder / "Dockerfile").unlink()
    os.mkfifo(folder / "Dockerfile")
    with pytest.raises(ReadFailure, match=r"^Dockerfile: not a regular file$"):
        read_snapshot(target)


def test_discover_missing_path(folder: Path) -> None:
    with pytest.raises(UsageError, match="no such file or directory"):
        discover([str(folder / "nope")])


def test_discover_default_is_current_directory(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(folder, "Dockerfile")
    monkeypatch.chdir(folder)
    assert discover(["."]) == ["Dockerfile"]


# --- rewrite ---------------------------------------------------------------------------------


def test_rewrite_leaves_bytes_alone_when_nothing_changes() -> None:
    data = b"FROM python:3.12\r\n"
    out, sites, _ = rewrite("Dockerfile", data, lambda site: None)
    assert out is data
    assert [s.text for s in sites] == ["python:3.12"]


def test_rewrite_refuses_a_replacement_that_changes_the_reading() -> None:
    data = b"services:\n  a: {image: redis, ports: [1]}\n"
    with pytest.raises(ParseFailure, match="rewriting would"):
        rewrite("compose.yaml", data, lambda site: "redis, extra: 1")
    with pytest.raises(ParseFailure, match="rewriting would"):
        rewrite("Dockerfile", b"FROM redis\n", lambda site: "redis AS x y")


# --- atomic_write ----------------------------------------------------------------------------


def test_atomic_write_replaces_content_and_keeps_mode(folder: Path) -> None:
    target = folder / "Dockerfile"
    target.write_bytes(b"old")
    target.chmod(0o640)
    atomic_write(str(target), b"new\r\n")
    assert target.read_bytes() == b"new\r\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in folder.iterdir()) == ["Dockerfile"]


def test_atomic_write_follows_symlinks(folder: Path) -> None:
    real = folder / "real.Dockerfile"
    real.write_bytes(b"old")
    link = folder / "Dockerfile"
    link.symlink_to(real)
    atomic_write(str(link), b"new")
    assert link.is_symlink()
    assert real.read_bytes() == b"new"


def test_atomic_write_new_file_gets_default_mode(folder: Path) -> None:
    target = folder / "compose.yaml"
    mask = os.umask(0o022)
    try:
        atomic_write(str(target), b"x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_atomic_write_failure_mid_write_leaves_original_and_no_temp(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = folder / "Dockerfile"
    target.write_bytes(b"original")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files_module.os, "fsync", broken_fsync)
    with pytest.raises(WriteFailure, match="Dockerfile: cannot write: No space left on device"):
        atomic_write(str(target), b"new content")
    assert target.read_bytes() == b"original"
    assert sorted(p.name for p in folder.iterdir()) == ["Dockerfile"]


def test_atomic_write_failure_on_replace_cleans_up(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = folder / "Dockerfile"
    target.write_bytes(b"original")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(files_module.os, "replace", broken_replace)
    with pytest.raises(WriteFailure):
        atomic_write(str(target), b"new")
    assert target.read_bytes() == b"original"
    assert sorted(p.name for p in folder.iterdir()) == ["Dockerfile"]


def test_atomic_write_interrupted_cleans_up(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = folder / "Dockerfile"
    target.write_bytes(b"original")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(files_module.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(str(target), b"new")
    assert target.read_bytes() == b"original"
    assert sorted(p.name for p in folder.iterdir()) == ["Dockerfile"]


def test_atomic_write_unwritable_directory(folder: Path) -> None:
    missing = folder / "gone" / "Dockerfile"
    with pytest.raises(WriteFailure, match="cannot write"):
        atomic_write(str(missing), b"x")


def test_atomic_write_refuses_a_file_changed_since_it_was_read(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edit made while the references were resolving survives; the pin is refused."""
    target = folder / "Dockerfile"
    target.write_bytes(b"FROM a\n")
    snapshot = read_snapshot(Target("Dockerfile", str(target)))
    with target.open("ab") as handle:
        handle.write(b"RUN added meanwhile\n")
    with pytest.raises(WriteFailure, match=r"^Dockerfile: changed while pinning; run again$"):
        atomic_write("Dockerfile", b"FROM a@sha256:1\n", snapshot)
    assert target.read_bytes() == b"FROM a\nRUN added meanwhile\n"
    assert sorted(p.name for p in folder.iterdir()) == ["Dockerfile"]


def test_atomic_write_checks_for_a_change_right_before_the_rename(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same size, same mtime, different bytes, made while the temporary file is written."""
    target = folder / "Dockerfile"
    target.write_bytes(b"FROM a\n")
    before = target.stat()
    snapshot = read_snapshot(Target("Dockerfile", str(target)))
    real_fsync = files_module.os.fsync

    def edit_then_fsync(fd: int) -> None:
        target.write_bytes(b"FROM b\n")
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
        real_fsync(fd)

    monkeypatch.setattr(files_module.os, "fsync", edit_then_fsync)
    with pytest.raises(WriteFailure, match="changed while pinning"):
        atomic_write("Dockerfile", b"FROM a@sha256:1\n", snapshot)
    assert target.read_bytes() == b"FROM b\n"
    assert sorted(p.name for p in folder.iterdir()) == ["Dockerfile"]


def test_atomic_write_refuses_a_hard_linked_file(folder: Path) -> None:
    target = folder / "Dockerfile"
    target.write_bytes(b"FROM a\n")
    os.link(target, folder / "Dockerfile.copy")
    snapshot = read_snapshot(Target("Dockerfile", str(target)))
    with pytest.raises(WriteFailure, match=r"^Dockerfile: has 2 hard links"):
        atomic_write("Dockerfile", b"FROM a@sha256:1\n", snapshot)
    with pytest.raises(WriteFailure, match="has 2 hard links"):
        atomic_write(str(target), b"FROM a@sha256:1\n")
    assert target.read_bytes() == (folder / "Dockerfile.copy").read_bytes() == b"FROM a\n"
    assert os.path.samefile(target, folder / "Dockerfile.copy")
    assert sorted(p.name for p in folder.iterdir()) == ["Dockerfile", "Dockerfile.copy"]


def test_atomic_write_refuses_a_read_only_file(folder: Path) -> None:
    target = folder / "Dockerfile"
    target.write_bytes(b"FROM a\n")
    target.chmod(0o444)
    snapshot = read_snapshot(Target("Dockerfile", str(target)))
    with pytest.raises(WriteFailure, match=r"^Dockerfile: read-only; not written$"):
        atomic_write("Dockerfile", b"FROM a@sha256:1\n", snapshot)
    with pytest.raises(WriteFailure, match="read-only; not written"):
        atomic_write(str(target), b"FROM a@sha256:1\n")
    assert target.read_bytes() == b"FROM a\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o444
    assert sorted(p.name for p in folder.iterdir()) == ["Dockerfile"]


def test_atomic_write_syncs_the_file_and_then_its_folder(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = folder / "Dockerfile"
    target.write_bytes(b"FROM a\n")
    snapshot = read_snapshot(Target("Dockerfile", str(target)))
    synced: list[bool] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(files_module.os, "fsync", fsync)
    atomic_write(str(target), b"FROM a@sha256:1\n", snapshot)
    assert synced == [False, True]  # the new content, then the rename
