"""Completion's cache files: one small line-format file per key under ``cache_dir()/complete``.

Line format, not JSON: a cached TAB must not import ``json`` (or ``hashlib`` for a file name).
Each file starts with a header naming the format and the full key, so a file-name collision or a
file cut short reads as absent. Reads and writes go through ``cache.read_file`` and
``cache.write_atomic``: the same trust checks as the token cache (a folder that is not ours, or
a planted symbolic link, is not used) and atomic renames, so concurrent shells never see a torn
file.
"""

from __future__ import annotations

import os
import time

from .. import cache

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing and collections cost a TAB ~5 ms to import
    from collections.abc import Iterable
    from typing import Any

RECENT_MAX = 50
_FORMAT_VERSION = "cghistory-completion 1"


def cache_folder() -> str:
    """``cache.cache_dir()/complete``: completion's entries beside the tokens."""
    return os.path.join(cache.cache_dir(), "complete")


def _file_name(key: str) -> str:
    """A readable, bounded file name; the full key is checked inside the file."""
    digest = 0xCBF29CE484222325  # FNV-1a, 64 bits: no hashlib import for a file name
    for byte in key.encode():
        digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    safe = "".join(c if c.isascii() and (c.isalnum() or c in ".-") else "_" for c in key)
    return f"{safe[:80]}-{digest:016x}"


def entry_path(kind: str, key: str) -> str:
    return os.path.join(cache_folder(), kind, _file_name(key))


def read_entry(kind: str, key: str) -> tuple[list[str], float] | None:
    """The lines stored for ``key`` and their age in seconds; ``None`` when absent or foreign."""
    found = cache.read_file(entry_path(kind, key))
    if found is None:
        return None
    data, modified = found
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return None
    header, _, body = text.partition("\n")
    if header != f"{_FORMAT_VERSION}\t{key}" or not text.endswith("\n"):
        return None
    return body.splitlines(), max(time.time() - modified, 0.0)


def write_entry(kind: str, key: str, lines: Iterable[str]) -> None:
    """Store lines for ``key`` atomically; a cache that cannot be written is not an error."""
    body = "".join(f"{line}\n" for line in lines)
    try:  # noqa: SIM105 - contextlib costs a TAB 2 ms of import
        cache.write_atomic(entry_path(kind, key), f"{_FORMAT_VERSION}\t{key}\n{body}".encode())
    except (OSError, UnicodeEncodeError):
        pass


def remember_reference(text: str) -> None:
    """Offer ``text`` first next time an image is completed (list, pull and pin call this).

    Never raises and never prints: a command that succeeded must not fail because the cache
    folder is read-only. Concurrent shells may drop each other's entry; never tear the file.
    """
    try:
        text = text.strip()
        if not text or "@" in text or " " in text or len(text) > 300 or not text.isprintable():
            return
        found = read_entry("lists", "recent")
        kept = [line for line in (found[0] if found else []) if line != text]
        write_entry("lists", "recent", [text, *kept][:RECENT_MAX])
    except Exception:
        pass


def remember_builds(registry: str, repository: str, tag: str,
                    builds: Iterable[Any]) -> None:
    """Seed the ``--digest``/``--index`` completion with builds a command has just listed.

    ``builds`` are ``history.Build`` objects (``updated``, ``digest``), newest first, and
    must be the tag's newest builds without gaps (not a ``--since``/``--until`` window):
    completion numbers them for ``--index``.
    """
    try:
        lines = [f"{exact_stamp(build.updated)} {build.digest}" for build in builds]
        write_entry("builds", f"{registry}/{repository}:{tag}", lines)
    except Exception:
        pass


def exact_stamp(updated: Any) -> str:
    """``SECONDS.MICROSECONDS`` of an aware datetime: the build's exact time, so completion
    orders builds within one second as ``list`` numbers them and shows the time ``list``
    prints (a bare second, pasted into ``--at``, would cover the whole second)."""
    return f"{int(updated.timestamp())}.{updated.microsecond:06d}"


def read_stamp(text: str) -> tuple[int, int | None] | None:
    """Seconds and microseconds of a stored stamp; a bare ``SECONDS`` (written by an older
    version) has ``None``: its fraction is unknown. ``None`` for anything else."""
    seconds, dot, micro = text.partition(".")
    if not seconds.isdigit() or not seconds.isascii():
        return None
    if not dot:
        return int(seconds), None
    if len(micro) != 6 or not micro.isdigit() or not micro.isascii():
        return None
    return int(seconds), int(micro)
