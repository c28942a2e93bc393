"""Which files to look at, how to read them, and how to store them back safely.

Files are handled as bytes and decoded as strict UTF-8 with any BOM kept as a character, so
that encoding the rewritten text gives back every untouched byte exactly.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .. import atomic
from ..errors import UsageError, sanitize
from .compose import find_compose_sites
from .dockerfile import find_dockerfile_sites
from .pins import ParseFailure, ReadFailure, Site, Skip, WriteFailure, apply, line_of

DOCKERFILE = "dockerfile"
COMPOSE = "compose"

# Version-control metadata: never ours to edit, and a Dockerfile inside .git is history.
VCS_DIRS = frozenset({".git", ".hg", ".svn", ".bzr", "_darcs", "CVS", ".jj", ".pijul"})

# Docker's and Podman's default names, the suffixes people add to them (``Dockerfile.prod``,
# ``Dockerfile-prod``, ``Dockerfile_prod``), and the extensions GitHub Linguist reads as a
# Dockerfile (``prod.Dockerfile``, ``app.containerfile``). Matched on the lowercased name.
_DOCKERFILE_PATTERNS = (
    "dockerfile",
    "dockerfile.*",
    "dockerfile-*",
    "dockerfile_*",
    "*.dockerfile",
    "containerfile",
    "containerfile.*",
    "containerfile-*",
    "containerfile_*",
    "*.containerfile",
)
# BuildKit reads ``<Dockerfile>.dockerignore`` next to a Dockerfile; it is not one.
_NOT_DOCKERFILE = ("*.dockerignore",)
_COMPOSE_PATTERNS = (
    "compose.yaml",
    "compose.yml",
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose*.yaml",
    "docker-compose*.yml",
)


def looked_for() -> str:
    """The names a directory search takes, for the message when it finds none: made from the
    patterns above, so that the message never names fewer files than the search finds.
    Dockerfile names match in any case; they are shown as docker spells them."""
    dockerfiles = [pattern.replace("dockerfile", "Dockerfile").replace("containerfile",
                                                                        "Containerfile")
                   for pattern in _DOCKERFILE_PATTERNS]
    return f"{', '.join(dockerfiles)} (in any case) and {', '.join(_COMPOSE_PATTERNS)}"


def kind_by_name(path: str) -> str | None:
    """``"dockerfile"``, ``"compose"`` or None when a directory search should not take it.

    Dockerfile names match case-insensitively (``dockerfile`` is what docker falls back to);
    compose names are matched exactly, as ``docker compose`` looks them up.
    """
    name = os.path.basename(path)
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in _COMPOSE_PATTERNS):
        return COMPOSE
    lowered = name.lower()
    if any(fnmatch.fnmatchcase(lowered, p) for p in _NOT_DOCKERFILE):
        return None
    if any(fnmatch.fnmatchcase(lowered, p) for p in _DOCKERFILE_PATTERNS):
        return DOCKERFILE
    return None


def kind_of(path: str) -> str:
    """The kind of a file named explicitly: by its name, else YAML by extension, else Dockerfile."""
    kind = kind_by_name(path)
    if kind is not None:
        return kind
    if path.lower().endswith((".yml", ".yaml")):
        return COMPOSE
    return DOCKERFILE


@dataclass(frozen=True)
class Target:
    """A file to pin: the name shown to the user, and the resolved file read and written."""

    path: str
    real: str


@dataclass(frozen=True)
class Snapshot:
    """A file as it was read, to check before writing that nobody changed it since.

    Pinning waits on the network between reading and writing; an editor saving the file
    meanwhile must not have its change replaced by text computed from the old content.
    """

    target: Target
    data: bytes
    identity: tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns


def _inside(real: str, root: str) -> bool:
    return os.path.commonpath([real, root]) == root


def discover(paths: Iterable[str]) -> list[str]:
    """The names of the files to pin (see ``discover_targets``; files it refuses are left out)."""
    targets, _ = discover_targets(paths)
    return [target.path for target in targets]


def discover_targets(paths: Iterable[str]) -> tuple[list[Target], list[str]]:
    """The files to pin: explicit files whatever their name, and matches under directories.

    Directories are walked without following symlinked directories (no loops, no escaping the
    tree) and without entering VCS folders; unreadable subdirectories are passed over. A
    symlinked file is taken only if it resolves inside the directory given (for a file named
    explicitly: inside the directory holding it): a checkout can hold ``Dockerfile ->
    ~/.aws/credentials`` or ``-> ../../elsewhere/Dockerfile``, and pinning must neither read
    nor rewrite what is outside the tree it was pointed at. Those found by the walk are
    returned as messages, left alone; one named explicitly is a usage error. The files are
    sorted and free of duplicates (one file reached twice is pinned once, under its first
    name), so runs are reproducible.
    """
    found: dict[str, str] = {}
    outside: set[str] = set()
    for path in paths:
        if os.path.isdir(path):
            root = os.path.realpath(path)
            for walked, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in VCS_DIRS)
                for name in files:
                    full = os.path.normpath(os.path.join(walked, name))
                    if kind_by_name(name) is None or not os.path.isfile(full):
                        continue
                    real = os.path.realpath(full)
                    if _inside(real, root):
                        found[full] = real
                    else:
                        outside.add(full)
        elif os.path.isfile(path):
            # Named explicitly (a pre-commit hook passes every staged file that matched its
            # pattern): take it unless its name says it is not a Dockerfile.
            lowered = os.path.basename(path).lower()
            if any(fnmatch.fnmatchcase(lowered, p) for p in _NOT_DOCKERFILE):
                continue
            real = os.path.realpath(path)
            if not _inside(real, os.path.realpath(os.path.dirname(path) or ".")):
                raise UsageError(
                    f"{sanitize(path)}: a symlink to a file outside its folder; not followed "
                    "(name the file it points to instead)"
                )
            found[os.path.normpath(path)] = real
        elif os.path.exists(path):
            raise UsageError(f"{sanitize(path)}: not a regular file or directory")
        else:
            raise UsageError(f"{sanitize(path)}: no such file or directory")
    unique: dict[str, Target] = {}
    for path in sorted(found):
        unique.setdefault(found[path], Target(path, found[path]))
    refused = [
        f"{sanitize(path)}: a symlink to a file outside the directory being pinned; not followed"
        for path in sorted(outside)
    ]
    return sorted(unique.values(), key=lambda target: target.path), refused


def read_snapshot(target: Target) -> Snapshot:
    """The file's bytes and identity, read from the resolved file without following a link.

    The resolved path was checked to lie inside the tree; opening it with ``O_NOFOLLOW`` makes
    sure it is still that file and not a symlink put there since. ``O_NONBLOCK`` keeps a FIFO
    swapped in from blocking the run; it is then refused as not a regular file.
    """
    flags = os.O_RDONLY | _CLOEXEC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(target.real, flags)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ReadFailure(f"{sanitize(target.path)}: became a symlink; not followed") from None
        raise ReadFailure(f"{sanitize(target.path)}: cannot read: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ReadFailure(f"{sanitize(target.path)}: not a regular file")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise ReadFailure(f"{sanitize(target.path)}: cannot read: {error.strerror}") from None
    finally:
        os.close(fd)
    return Snapshot(target, data, _identity(info))


def _identity(info: os.stat_result) -> tuple[int, int, int, int]:
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def decode(path: str, data: bytes) -> str:
    """Strict UTF-8, BOM kept as ``\\ufeff`` so that ``encode`` restores the same bytes."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ParseFailure(
            path, line, f"not valid UTF-8 (byte {error.start}); files are read as UTF-8"
        ) from None


def find_text_sites(path: str, text: str, kind: str | None = None) -> tuple[list[Site], list[Skip]]:
    """Sites of already decoded text, the kind taken from the name unless given."""
    if (kind or kind_of(path)) == COMPOSE:
        return find_compose_sites(path, text)
    return find_dockerfile_sites(path, text)


def find_sites(path: str, data: bytes, kind: str | None = None) -> tuple[list[Site], list[Skip]]:
    """Sites of a file's bytes; offsets index ``decode(path, data)``."""
    return find_text_sites(path, decode(path, data), kind)


def rewrite(
    path: str,
    data: bytes,
    new_text: Callable[[Site], str | None],
    kind: str | None = None,
    found: tuple[list[Site], list[Skip]] | None = None,
) -> tuple[bytes, list[Site], list[Skip]]:
    """The file's bytes with each site replaced by ``new_text(site)`` (None: left as is).

    ``found`` is what ``find_sites`` returned for ``data``, to spare a second parse. The result
    is read back before it is returned: it must still parse, and each new text must be found
    again as a reference. A rewrite that would break the file (for instance a
    replacement YAML would read differently) fails instead of being written.
    """
    text = decode(path, data)
    sites, skips = found if found is not None else find_text_sites(path, text, kind)
    replacements: dict[tuple[int, int], str] = {}
    for site in sites:
        replacement = new_text(site)
        if replacement is not None and replacement != site.text:
            replacements[(site.start, site.end)] = replacement
    if not replacements:
        return data, sites, skips
    result = apply(text, replacements)
    try:
        again, _ = find_text_sites(path, result, kind)
    except ParseFailure as error:
        raise ParseFailure(
            path, error.line, f"rewriting would break the file: {error.reason}"
        ) from None
    found = sorted(site.text for site in again)
    expected = sorted([replacements.get((site.start, site.end), site.text) for site in sites])
    if found != expected:
        first = min(replacements)
        raise ParseFailure(
            path, line_of(text, first[0]), "rewriting would change how the file is read"
        )
    return result.encode("utf-8"), sites, skips


def atomic_write(path: str, data: bytes, expected: Snapshot | None = None) -> None:
    """Replace a file's content all at once, keeping its mode (and owner where allowed).

    ``atomic.write`` does the replacing (temporary file, fsync, rename, fsync of the folder),
    so a crash leaves either the old file or the new one, never half of it, and no temporary
    file survives a failure. A symlink is followed, not replaced.

    Renaming is refused where it would do more than the user asked: a file with other hard
    links (they would keep the old text), a read-only file (the rename would get past the
    mode that says "do not edit"), and, given the ``expected`` snapshot the new data was made
    from, a file that changed since (someone's edit would be lost). The last check runs right
    before the rename.
    """
    target = expected.target.real if expected is not None else os.path.realpath(path)
    shown = sanitize(path)
    try:
        existing: os.stat_result | None = os.lstat(target)
    except FileNotFoundError:
        existing = None
    except OSError as error:
        raise WriteFailure(f"{shown}: cannot write: {error.strerror}") from None
    if expected is not None:
        _check_unchanged(shown, target, expected)
    if existing is not None:
        _check_replaceable(shown, target, existing)
        mode, owner = stat.S_IMODE(existing.st_mode), (existing.st_uid, existing.st_gid)
    else:
        mode, owner = 0o666 & ~_umask(), None
    def still_unchanged() -> None:
        if expected is not None:
            _check_unchanged(shown, target, expected)

    try:
        atomic.write(target, data, mode=mode, owner=owner, before_rename=still_unchanged)
    except OSError as error:
        raise WriteFailure(f"{shown}: cannot write: {error.strerror or error}") from None


def _check_replaceable(shown: str, target: str, info: os.stat_result) -> None:
    """Refuse a rename that would split hard links or override a read-only mode."""
    if not stat.S_ISREG(info.st_mode):
        raise WriteFailure(f"{shown}: not a regular file; not written")
    if info.st_nlink > 1:
        raise WriteFailure(
            f"{shown}: has {info.st_nlink} hard links, which would keep the old text; not written"
        )
    # root may write anything (os.access says yes), so the owner's write bit decides as well.
    if not os.access(target, os.W_OK) or not info.st_mode & stat.S_IWUSR:
        raise WriteFailure(f"{shown}: read-only; not written")


def _check_unchanged(shown: str, target: str, expected: Snapshot) -> None:
    """The file on disk must still be the one read: same inode, size, mtime and bytes."""
    changed = WriteFailure(f"{shown}: changed while pinning; run again")
    try:
        fd = os.open(target, os.O_RDONLY | _CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        raise changed from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or _identity(info) != expected.identity:
            raise changed
        _check_replaceable(shown, target, info)  # a hard link made since
        with os.fdopen(os.dup(fd), "rb") as handle:
            now = handle.read(len(expected.data) + 1)
    except OSError:
        raise changed from None
    finally:
        os.close(fd)
    if now != expected.data:
        raise changed


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
