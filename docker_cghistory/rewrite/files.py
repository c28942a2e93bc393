"""Which files to look at, how to read them, and how to store them back safely.

Files are handled as bytes and decoded as strict UTF-8 with any BOM kept as a character, so
that encoding the rewritten text gives back every untouched byte exactly.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import stat
from collections.abc import Callable, Iterable

from ..errors import UsageError, sanitize
from .compose import find_compose_sites
from .dockerfile import find_dockerfile_sites
from .pins import ParseFailure, Site, Skip, WriteFailure, apply, line_of

DOCKERFILE = "dockerfile"
COMPOSE = "compose"

# Version-control metadata: never ours to edit, and a Dockerfile inside .git is history.
VCS_DIRS = frozenset({".git", ".hg", ".svn", ".bzr", "_darcs", "CVS", ".jj", ".pijul"})

_DOCKERFILE_PATTERNS = (
    "dockerfile",
    "dockerfile.*",
    "*.dockerfile",
    "containerfile",
    "containerfile.*",
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


def discover(paths: Iterable[str]) -> list[str]:
    """The files to pin: explicit files whatever their name, and matches under directories.

    Directories are walked without following symlinked directories (no loops, no escaping the
    tree) and without entering VCS folders; unreadable subdirectories are passed over. The
    result is sorted and free of duplicates, so runs are reproducible.
    """
    found: set[str] = set()
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in VCS_DIRS)
                for name in files:
                    full = os.path.normpath(os.path.join(root, name))
                    if kind_by_name(name) is not None and os.path.isfile(full):
                        found.add(full)
        elif os.path.isfile(path):
            # Named explicitly (a pre-commit hook passes every staged file that matched its
            # pattern): take it unless its name says it is not a Dockerfile.
            lowered = os.path.basename(path).lower()
            if not any(fnmatch.fnmatchcase(lowered, p) for p in _NOT_DOCKERFILE):
                found.add(os.path.normpath(path))
        elif os.path.exists(path):
            raise UsageError(f"{sanitize(path)}: not a regular file or directory")
        else:
            raise UsageError(f"{sanitize(path)}: no such file or directory")
    # One file reached twice (a symlink, ``.`` and ``./x``) is pinned once, under the first name.
    unique: dict[str, str] = {}
    for path in sorted(found):
        unique.setdefault(os.path.realpath(path), path)
    return sorted(unique.values())


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


def atomic_write(path: str, data: bytes) -> None:
    """Replace a file's content all at once, keeping its mode (and owner where allowed).

    The data goes to a temporary file in the same directory, is flushed to disk, then renamed
    over the target, so a crash leaves either the old file or the new one, never half of it,
    and no temporary file survives a failure. A symlink is followed, not replaced.
    """
    target = os.path.realpath(path)
    directory = os.path.dirname(target)
    try:
        existing: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        existing = None
    except OSError as error:
        raise WriteFailure(f"{sanitize(path)}: cannot write: {error.strerror}") from None
    temporary: str | None = None
    try:
        # The name is known before the file exists (not tempfile.mkstemp, which creates it and
        # then returns the name): a Ctrl-C landing right after the creation still removes it.
        temporary = os.path.join(
            directory, f".{os.path.basename(target)}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        )
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o600)
        except FileExistsError:
            temporary = None  # not ours
            raise
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if existing is not None:
            os.chmod(temporary, stat.S_IMODE(existing.st_mode))
            if (existing.st_uid, existing.st_gid) != _owner(temporary):
                with contextlib.suppress(OSError):
                    os.chown(temporary, existing.st_uid, existing.st_gid)
        else:
            os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
        temporary = None
    except OSError as error:
        raise WriteFailure(f"{sanitize(path)}: cannot write: {error.strerror or error}") from None
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    _sync_directory(directory)


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _owner(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_uid, info.st_gid


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sync_directory(directory: str) -> None:
    """Make the rename itself durable; not every platform or filesystem allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
