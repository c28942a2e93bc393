"""The per-user key, and what it protects: sealed registry tokens and signed cache entries.

Split from ``cache`` because key handling is its own concern, and the part of the cache that
must be right for secrets: tokens are sealed with a key derived from the credential that
obtained them plus a per-user random key (a copied cache file is useless without the docker
credential, and the cache never holds a secret in clear), and entries that decide where
credentials go are authenticated with the same key. Only ``os`` at import: ``hashlib``,
``hmac`` and ``json`` are imported where they are used, so a cached TAB never pays for them.
"""

from __future__ import annotations

import os
from _thread import get_ident

from .cache_trust import (
    NOFOLLOW,
    NONBLOCK,
    cache_root,
    ensure_dir,
    key_problem,
    refuse,
    usable_folder,
)


def signature(kind: str, name: str, value: object) -> str | None:
    """HMAC-SHA256 under the per-user key over kind, name and the value's canonical JSON.

    Kind and name are inside the MAC so an entry copied to another name (another registry's
    realm) fails too; ``None`` for a value JSON cannot encode canonically.
    """
    import hashlib
    import hmac
    import json

    try:
        canonical = json.dumps([kind, name, value], sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return None
    return hmac.new(local_key(), b"json\0" + canonical.encode(), hashlib.sha256).hexdigest()


class _Untrusted(Exception):
    """The key file is there but not ours alone."""


_ephemeral: list[bytes] = []


def _run_key() -> bytes:
    """A key for this run only, the same for the whole run (its sealed values die with it)."""
    if not _ephemeral:
        _ephemeral.append(os.urandom(32))
    return _ephemeral[0]


def local_key() -> bytes:
    """A random per-user key, created once, 0600.

    Published with a hard link, so a concurrent run never reads a key file that is still being
    written (it would seal with a wrong, possibly empty key). A cache that cannot be written, or
    is refused (``trusted_dir``), gives a key for this run only: the cache must never fail a
    command, and a key others can read or replace would let them forge or read entries.
    """
    root = cache_root()
    path = os.path.join(root, "key")
    try:
        existing = _read_key(path) if usable_folder(root) else None
    except _Untrusted as refused:
        refuse(root, str(refused))
        return _run_key()
    if existing is not None and len(existing) == 32:
        return existing
    key = os.urandom(32)
    temporary = f"{path}.{os.getpid()}.{get_ident()}.tmp"
    try:
        ensure_dir(root)
        descriptor = os.open(
            temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NOFOLLOW, 0o600)
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
        return _run_key()
    finally:
        try:  # noqa: SIM105
            os.unlink(temporary)
        except OSError:
            pass
    try:
        stored = _read_key(path)
    except _Untrusted as refused:
        refuse(root, str(refused))
        return _run_key()
    return stored if stored is not None and len(stored) == 32 else key


def _read_key(path: str) -> bytes | None:
    """The key file's bytes; ``None`` when absent, ``_Untrusted`` when not ours alone."""
    try:
        descriptor = os.open(path, os.O_RDONLY | NOFOLLOW | NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError:
        try:
            problem = key_problem(os.lstat(path))
        except OSError:
            return None
        if problem:
            raise _Untrusted(problem) from None
        return None
    with os.fdopen(descriptor, "rb") as handle:
        problem = key_problem(os.fstat(descriptor))
        if problem:
            raise _Untrusted(problem)
        try:
            return handle.read(64)
        except OSError:
            return None


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    """HMAC-SHA256 in counter mode: a stream cipher from the standard library alone."""
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

    key = hmac.new(local_key(), b"seal\0" + material, hashlib.sha256).digest()
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
    key = hmac.new(local_key(), b"seal\0" + material, hashlib.sha256).digest()
    nonce, tag, cipher = raw[:16], raw[16:48], raw[48:]
    expected = hmac.new(key, b"mac\0" + nonce + cipher, hashlib.sha256).digest()
    if not hmac.compare_digest(tag, expected):
        return None
    plain = bytes(a ^ b for a, b in zip(cipher, _keystream(key, nonce, len(cipher)), strict=True))
    try:
        return plain.decode()
    except UnicodeDecodeError:
        return None
