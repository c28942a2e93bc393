"""The small on-disk cache shared by tokens and completion.

Lives in a 0700 folder under the user's cache folder; every file is 0600 and written
atomically (temporary file + rename), so concurrent shells never see a torn file. Registry
tokens are sealed with a key derived from the credential that obtained them plus a per-user
random key: a copied cache file is useless without the docker credential, and the cache
never holds a secret in clear. Standard library only: completion reads this without paying
for ``requests``.
"""

from __future__ import annotations

import os
import time
from _thread import get_ident

# hashlib, hmac and json are imported where they are used, and contextlib not at all:
# completion reads this module on every TAB and needs none of them on a cache hit.

APP = "docker-cghistory"


def cache_dir() -> str:
    """``$XDG_CACHE_HOME/docker-cghistory``, else ``~/.cache/docker-cghistory``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, APP)


def _ensure_dir(path: str) -> str:
    # makedirs gives intermediate folders the default mode: create our root 0700 first.
    root = cache_dir()
    if path.startswith(root + os.sep):
        os.makedirs(root, mode=0o700, exist_ok=True)
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def key_name(*parts: str) -> str:
    """A file name for a cache entry: a hash, so names never leak what they key."""
    import hashlib

    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a private temporary file and a rename."""
    folder = _ensure_dir(os.path.dirname(path))
    temporary = os.path.join(
        folder, f".{os.path.basename(path)}.{os.getpid()}.{get_ident()}.tmp"
    )
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        try:  # noqa: SIM105 - contextlib costs this module 2 ms of import
            os.unlink(temporary)
        except OSError:
            pass
        raise


def read_json(kind: str, name: str, max_age: float | None = None) -> object | None:
    """A cached JSON value, or ``None`` when absent, stale or unreadable (never an error)."""
    import json

    path = os.path.join(cache_dir(), kind, name)
    try:
        if max_age is not None and time.time() - os.stat(path).st_mtime > max_age:
            return None
        with open(path, "rb") as handle:
            return json.loads(handle.read())
    except (OSError, ValueError, RecursionError):
        return None


def write_json(kind: str, name: str, value: object) -> None:
    """Store a JSON value; a cache that cannot be written is not worth failing for."""
    import json

    try:  # noqa: SIM105
        write_atomic(os.path.join(cache_dir(), kind, name), json.dumps(value).encode())
    except OSError:
        pass


def delete(kind: str, name: str) -> None:
    try:  # noqa: SIM105
        os.unlink(os.path.join(cache_dir(), kind, name))
    except OSError:
        pass


# --- sealed values (registry tokens) ---------------------------------------------------------


def _local_key() -> bytes:
    """A random per-user key, created once, 0600.

    Published with a hard link, so a concurrent run never reads a key file that is still being
    written (it would seal with a wrong, possibly empty key). A cache that cannot be written
    gives a key for this run only: the cache must never fail a command.
    """
    path = os.path.join(cache_dir(), "key")
    existing = _read_key(path)
    if existing is not None and len(existing) == 32:
        return existing
    key = os.urandom(32)
    temporary = f"{path}.{os.getpid()}.{get_ident()}.tmp"
    try:
        _ensure_dir(cache_dir())
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key)
        if existing is None:
            try:
                os.link(temporary, path)  # all 32 bytes appear at once, or another run's do
            except FileExistsError:
                pass
            except OSError:  # a file system without hard links
                os.replace(temporary, path)
        else:
            os.replace(temporary, path)  # a damaged key: tokens sealed under it are refetched
    except OSError:
        return key
    finally:
        try:  # noqa: SIM105
            os.unlink(temporary)
        except OSError:
            pass
    stored = _read_key(path)
    return stored if stored is not None and len(stored) == 32 else key


def _read_key(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(64)
    except OSError:
        return None


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    import hashlib
    import hmac

    blocks = []
    for counter in range((length + 31) // 32):
        blocks.append(hmac.new(key, nonce + counter.to_bytes(8, "big"), hashlib.sha256).digest())
    return b"".join(blocks)[:length]


def seal(value: str, material: bytes) -> str:
    """Encrypt-then-MAC ``value`` (HMAC-SHA256 in counter mode) under key + ``material``."""
    import hashlib
    import hmac

    key = hmac.new(_local_key(), b"seal\0" + material, hashlib.sha256).digest()
    nonce = os.urandom(16)
    plain = value.encode()
    cipher = bytes(a ^ b for a, b in zip(plain, _keystream(key, nonce, len(plain)), strict=True))
    tag = hmac.new(key, b"mac\0" + nonce + cipher, hashlib.sha256).digest()
    return (nonce + tag + cipher).hex()


def unseal(sealed: str, material: bytes) -> str | None:
    """The sealed value, or ``None`` if it was sealed under another key or tampered with."""
    import hashlib
    import hmac

    try:
        raw = bytes.fromhex(sealed)
    except (ValueError, TypeError):
        return None
    if len(raw) < 48:
        return None
    key = hmac.new(_local_key(), b"seal\0" + material, hashlib.sha256).digest()
    nonce, tag, cipher = raw[:16], raw[16:48], raw[48:]
    expected = hmac.new(key, b"mac\0" + nonce + cipher, hashlib.sha256).digest()
    if not hmac.compare_digest(tag, expected):
        return None
    plain = bytes(a ^ b for a, b in zip(cipher, _keystream(key, nonce, len(cipher)), strict=True))
    try:
        return plain.decode()
    except UnicodeDecodeError:
        return None
