"""Whose folder is this? The trust checks every read and write of the cache passes first.

Split from ``cache`` because it is one concern with its own state (a verdict per folder, one
warning per refusal) that both the cache entries and the sealing key (``cache_seal``) rely on.
A folder that is a symbolic link, is not ours or is writable by others (a shared or
pre-created ``$XDG_CACHE_HOME``) is not used at all: another user could plant entries there.
Standard library ``os`` and ``stat`` only (``os`` imports ``stat``): completion pays nothing.
"""

from __future__ import annotations

import os
import stat

APP = "docker-cghistory"


def cache_dir() -> str:
    """``$XDG_CACHE_HOME/docker-cghistory``, else ``~/.cache/docker-cghistory``.

    A relative ``XDG_CACHE_HOME`` is ignored, as the XDG spec says: it would put the cache (and
    what decides where credentials go) in whatever folder the command runs in.
    """
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, APP)


# os imports stat, so the checks below cost this module no import; each folder is checked once
# per process (a TAB pays one lstat per level), and refused once with one warning.
_verdicts: dict[str, str] = {}  # folder -> "" when trusted, else why it is refused
_warned: set[str] = set()
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted as an entry must not hang a TAB


def cache_root() -> str:
    """``cache_dir()`` normalised: verdicts are kept per path string, so spell it one way."""
    return os.path.normpath(cache_dir())


def euid() -> int | None:
    """Our effective uid, the owner every cache folder and file must have."""
    geteuid = getattr(os, "geteuid", None)  # not on Windows: there, no owner check
    return geteuid() if geteuid is not None else None


def _folder_problem(path: str) -> str:
    """Why ``path`` may not hold cache entries, or ``""``; ``OSError`` when it is absent."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a folder"
    return _ownership_problem(info, 0o022, "", "writable by others")


def key_problem(info: os.stat_result) -> str:
    """Why the key file is not ours alone, or ``""``: a key others can read forges entries."""
    if not stat.S_ISREG(info.st_mode):
        return "key file is not a regular file"
    return _ownership_problem(info, 0o077, "key file ",
                              f"key file has mode {stat.S_IMODE(info.st_mode):04o}")


def _ownership_problem(info: os.stat_result, loose_bits: int, subject: str,
                       loose: str) -> str:
    """Someone else's file, or one with ``loose_bits`` set, is not ours alone (POSIX only)."""
    uid = euid()
    if uid is None:
        return ""
    if info.st_uid != uid:
        return f"{subject}owned by uid {info.st_uid}"
    return loose if info.st_mode & loose_bits else ""


def refuse(path: str, reason: str) -> None:
    """Remember the refusal and say it once: the command goes on without a cache."""
    _verdicts[path] = reason
    if path in _warned:
        return
    _warned.add(path)
    import sys

    try:  # noqa: SIM105 - a closed stderr must not fail the command either
        sys.stderr.write(f"{APP}: ignoring cache folder {path}: {reason}\n")
    except (AttributeError, OSError, ValueError):
        pass


def trusted_dir(path: str) -> bool:
    """Whether the existing folder ``path`` may be used for cache entries.

    It must be a real folder (not a symbolic link), owned by our effective uid, and not
    writable by group or others: otherwise another user could plant or swap entries. The
    cache root must also hold no key file but a private one of ours. The verdict is kept for
    the process; a refusal prints one warning. An absent folder is ``False`` without a
    warning and without a verdict (a write creates it, 0700).
    """
    verdict = _verdicts.get(path)
    if verdict is None:
        try:
            verdict = _folder_problem(path)
        except OSError:
            return False
        if not verdict and path == cache_root():
            try:  # noqa: SIM105
                verdict = key_problem(os.lstat(os.path.join(path, "key")))
            except OSError:
                pass  # no key yet: cache_seal creates it in this folder, privately
        if verdict:
            refuse(path, verdict)
        else:
            _verdicts[path] = ""
    return not verdict


def usable_folder(folder: str, create: bool = False) -> bool:
    """Whether ``folder`` (the cache root or a folder under it) may be read or written.

    Every level from the root down is checked with ``trusted_dir``, so a trusted root cannot
    hide a planted subfolder. ``create`` makes missing levels 0700 first (``makedirs`` would
    give them the umask). A folder outside the root is never usable: this module writes only
    there.
    """
    root, folder = cache_root(), os.path.normpath(folder)
    levels = [root]
    if folder != root:
        if not folder.startswith(root + os.sep):
            return False
        for part in folder[len(root) + 1:].split(os.sep):
            levels.append(os.path.join(levels[-1], part))
    for level in levels:
        if create:  # always tried: a folder removed mid-run (a cleared cache) comes back
            try:
                if level == root:
                    os.makedirs(os.path.dirname(root) or os.curdir, exist_ok=True)
                os.mkdir(level, 0o700)
                _verdicts.pop(level, None)  # ours now, whatever stood there before
            except FileExistsError:
                pass
            except OSError:
                return False
        if not trusted_dir(level):
            return False
    return True


def usable_root(create: bool = False) -> str | None:
    """The cache root when it may be used in this run, else ``None`` (no cache at all)."""
    root = cache_root()
    return root if usable_folder(root, create) else None


def ensure_dir(path: str) -> str:
    """``path``, created 0700 if missing; ``PermissionError`` (an ``OSError``, which callers
    already treat as no cache) when it is refused."""
    if not usable_folder(path, create=True):
        raise PermissionError(13, "cache folder not usable", path)
    return path
