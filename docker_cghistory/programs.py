"""Finding the programs we run (credential helpers, ``docker``, bisect's test command) on PATH.

``shutil.which`` and ``subprocess`` treat an empty PATH entry (``PATH=/usr/bin:``, ``::``) and a
relative one (``.``, ``bin``) as the current folder, so a ``docker-credential-desktop`` or a
``docker`` committed to a checkout would run as soon as a command is started in it. The docker
CLI never does that: Go's ``exec.LookPath`` refuses what it finds through such entries
(``exec.ErrDot``). ``find_program`` searches absolute entries only and returns an absolute path,
so the program that runs does not depend on the folder the user happens to be in.

Import-light on purpose: completion imports it on a TAB.
"""

from __future__ import annotations

import os


def is_plain_name(name: str) -> bool:
    """True for a program name that PATH can resolve: no folder part, nothing empty.

    A name with a separator is a path, relative to the current folder when it does not start
    with one; in a configured helper name (``../../evil/x``) that is never what was meant.
    """
    if not name or name in (".", "..") or "\0" in name:
        return False
    separators = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return not any(separator in name for separator in separators)


def search_path(path: str | None = None) -> list[str]:
    """The absolute folders of ``path`` (default: the PATH we were started with), in order.

    An unset PATH means ``os.defpath``, as for ``subprocess``; empty and relative entries are
    dropped, as Go's ``exec.LookPath`` refuses them.
    """
    if path is None:
        path = os.environ.get("PATH", os.defpath)
    return [entry for entry in path.split(os.pathsep) if entry and os.path.isabs(entry)]


def find_program(name: str, path: str | None = None) -> str | None:
    """The absolute path of the executable ``name`` on ``path``'s absolute entries, or None.

    ``path`` is a PATH string (default: ours); a command run with another environment is
    looked up on that environment's PATH, as ``subprocess`` would. Names with a separator are
    refused (``None``): callers decide whether an explicit path is acceptable.
    """
    if not is_plain_name(name):
        return None
    for folder in search_path(path):
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def drop_unsafe_path_entries() -> None:
    """Remove empty and relative PATH entries from our own environment, once, at start.

    Libraries we call start programs by bare name through ``subprocess`` (docker-py runs
    ``ssh`` for ``ssh://`` engines), and bisect's test command inherits our PATH: none of them
    may find a program in the current folder.
    """
    path = os.environ.get("PATH")
    if path is not None:
        os.environ["PATH"] = os.pathsep.join(search_path(path))
