"""The small on-disk cache shared by tokens and completion: entries, read and written.

Lives in a 0700 folder under the user's cache folder; every file is 0600 and written through
``atomic.write`` (temporary file, fsync, rename), so concurrent shells never see a torn file.
Standard library only: completion reads this without paying for ``requests``.

Nothing in the cache is trusted blindly. Two concerns live beside this module and are
re-exported here, so callers keep one name, ``cache``: ``cache_trust`` decides which folders
may be used at all (a symbolic link, a folder not ours or writable by others is refused), and
``cache_seal`` holds the per-user key that seals registry tokens and signs the entries that
decide where credentials go (token realms, ``write_signed_json``).
"""

from __future__ import annotations

import os
import stat
import time

from . import atomic
from .cache_seal import local_key, seal, signature, unseal
from .cache_trust import (
    APP,
    NOFOLLOW,
    NONBLOCK,
    cache_dir,
    ensure_dir,
    euid,
    trusted_dir,
    usable_folder,
    usable_root,
)

# hashlib, hmac and json are imported where they are used, and contextlib not at all:
# completion reads this module on every TAB and needs none of them on a cache hit.

__all__ = [
    "APP", "cache_dir", "delete", "key_name", "prune", "read_file", "read_json",
    "read_signed_json",
    "seal", "trusted_dir", "unseal", "usable_folder", "usable_root", "write_atomic",
    "write_json", "write_signed_json",
]

_local_key = local_key  # the name older callers and tests use


def read_file(path: str) -> tuple[bytes, float] | None:
    """The bytes of a cache file and its modification time, or ``None`` (never an error).

    ``None`` when the file is absent, is not a regular file of ours, or lies in a folder that
    ``usable_folder`` refuses; a symbolic link is never followed.
    """
    if not usable_folder(os.path.dirname(path)):
        return None
    try:
        descriptor = os.open(path, os.O_RDONLY | NOFOLLOW | NONBLOCK)
    except OSError:
        return None
    try:
        with os.fdopen(descriptor, "rb") as handle:
            info = os.fstat(descriptor)
            uid = euid()
            if not stat.S_ISREG(info.st_mode) or (uid is not None and info.st_uid != uid):
                return None
            return handle.read(), info.st_mtime
    except OSError:
        return None


def key_name(*parts: str) -> str:
    """A file name for a cache entry: a hash, so names never leak what they key."""
    import hashlib

    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]


def write_atomic(path: str, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` (0600) once its folder passes the trust checks.

    The cache's thin wrapper around ``atomic.write``: the folder, and every level above it up
    to the cache root, must be one ``usable_folder`` accepts (created 0700 when missing), else
    ``PermissionError``; callers already treat a cache that cannot be written as no cache.
    """
    ensure_dir(os.path.dirname(path))
    atomic.write(path, data, mode=0o600, durable=durable)


def read_json(kind: str, name: str, max_age: float | None = None) -> object | None:
    """A cached JSON value, or ``None`` when absent, stale, unreadable or untrusted."""
    found = read_file(os.path.join(cache_dir(), kind, name))
    if found is None:
        return None
    data, modified = found
    if max_age is not None and time.time() - modified > max_age:
        return None
    import json

    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def write_json(kind: str, name: str, value: object) -> None:
    """Store a JSON value; a cache that cannot be written is not worth failing for."""
    import json

    try:  # noqa: SIM105
        write_atomic(os.path.join(cache_dir(), kind, name), json.dumps(value).encode())
    except OSError:
        pass


def delete(kind: str, name: str) -> None:
    """Drop an entry (a token the registry refused); a folder we do not trust is left alone."""
    folder = os.path.join(cache_dir(), kind)
    if not usable_folder(folder):
        return
    try:  # noqa: SIM105
        os.unlink(os.path.join(folder, name))
    except OSError:
        pass


def prune(kind: str, budget: int) -> None:
    """Drop the oldest entries of ``kind`` until they fit ``budget`` bytes.

    For caches that grow with use (manifests, package lists): each entry is cheap to fetch
    again, so a bound matters more than keeping everything.
    """
    folder = os.path.join(cache_dir(), kind)
    if not usable_folder(folder):
        return
    entries = []
    try:
        with os.scandir(folder) as listing:
            for entry in listing:
                if entry.is_file(follow_symlinks=False):
                    info = entry.stat(follow_symlinks=False)
                    entries.append((info.st_mtime, info.st_size, entry.path))
    except OSError:
        return
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= budget:
            break
        try:
            os.unlink(path)
        except OSError:
            continue
        total -= size


# --- authenticated values (token realms) -------------------------------------------------------


def write_signed_json(kind: str, name: str, value: object) -> None:
    """Store a JSON value that ``read_signed_json`` will only return if we wrote it.

    For entries that decide where credentials are sent: a planted realm entry would send the
    user's credentials to another host before the registry is even asked.
    """
    mac = signature(kind, name, value)
    if mac is not None:
        write_json(kind, name, {"mac": mac, "value": value})


def read_signed_json(kind: str, name: str, max_age: float | None = None) -> object | None:
    """The value ``write_signed_json`` stored under this kind and name, else ``None``.

    ``None`` as well for a plain entry, a forged or altered one, or one copied from another
    name or from another user's cache (another key).
    """
    entry = read_json(kind, name, max_age)
    if not isinstance(entry, dict) or set(entry) != {"mac", "value"}:
        return None
    mac = entry["mac"]
    expected = signature(kind, name, entry["value"])
    if not isinstance(mac, str) or expected is None:
        return None
    import hmac

    return entry["value"] if hmac.compare_digest(mac.encode(), expected.encode()) else None
