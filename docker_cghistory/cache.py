"""The small on-disk cache shared by tokens and completion.

Lives in a 0700 folder under the user's cache folder; every file is 0600 and written
atomically (temporary file + rename), so concurrent shells never see a torn file. Registry
tokens are sealed with a key derived from the credential that obtained them plus a per-user
random key: a copied cache file is useless without the docker credential, and the cache
never holds a secret in clear. Standard library only: completion reads this without paying
for ``requests``.

Nothing in the cache is trusted blindly: a folder that is a symbolic link, is not ours or is
writable by others (a shared or pre-created ``$XDG_CACHE_HOME``) is not used at all, because
another user could plant entries there, and entries that decide where credentials go (token
realms) are authenticated with the per-user key (``write_signed_json``).
"""

from __future__ import annotations

import os
import stat
import time
from _thread import get_ident

# hashlib, hmac and json are imported where they are used, and contextlib not at all:
# completion reads this module on every TAB and needs none of them on a cache hit.

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


# --- trust: whose folder is this? ------------------------------------------------------------

# os imports stat, so the checks below cost this module no import; each folder is checked once
# per process (a TAB pays one lstat per level), and refused once with one warning.
_verdicts: dict[str, str] = {}  # folder -> "" when trusted, else why it is refused
_warned: set[str] = set()
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted as an entry must not hang a TAB


def _root() -> str:
    """``cache_dir()`` normalised: verdicts are kept per path string, so spell it one way."""
    return os.path.normpath(cache_dir())


def _euid() -> int | None:
    geteuid = getattr(os, "geteuid", None)  # not on Windows: there, no owner check
    return geteuid() if geteuid is not None else None


def _folder_problem(path: str) -> str:
    """Why ``path`` may not hold cache entries, or ``""``; ``OSError`` when it is absent."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a folder"
    uid = _euid()
    if uid is not None and info.st_uid != uid:
        return f"owned by uid {info.st_uid}"
    if uid is not None and info.st_mode & 0o022:
        return "writable by others"
    return ""


def _key_problem(info: os.stat_result) -> str:
    """Why the key file is not ours alone, or ``""``: a key others can read forges entries."""
    if not stat.S_ISREG(info.st_mode):
        return "key file is not a regular file"
    uid = _euid()
    if uid is not None and info.st_uid != uid:
        return f"key file owned by uid {info.st_uid}"
    if uid is not None and info.st_mode & 0o077:
        return f"key file has mode {stat.S_IMODE(info.st_mode):04o}"
    return ""


def _refuse(path: str, reason: str) -> None:
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
        if not verdict and path == _root():
            try:  # noqa: SIM105
                verdict = _key_problem(os.lstat(os.path.join(path, "key")))
            except OSError:
                pass  # no key yet: _local_key creates it in this folder, privately
        if verdict:
            _refuse(path, verdict)
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
    root, folder = _root(), os.path.normpath(folder)
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
    root = _root()
    return root if usable_folder(root, create) else None


def _ensure_dir(path: str) -> str:
    if not usable_folder(path, create=True):
        raise PermissionError(13, "cache folder not usable", path)
    return path


def read_file(path: str) -> tuple[bytes, float] | None:
    """The bytes of a cache file and its modification time, or ``None`` (never an error).

    ``None`` when the file is absent, is not a regular file of ours, or lies in a folder that
    ``usable_folder`` refuses; a symbolic link is never followed.
    """
    if not usable_folder(os.path.dirname(path)):
        return None
    try:
        descriptor = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
    except OSError:
        return None
    try:
        with os.fdopen(descriptor, "rb") as handle:
            info = os.fstat(descriptor)
            uid = _euid()
            if not stat.S_ISREG(info.st_mode) or (uid is not None and info.st_uid != uid):
                return None
            return handle.read(), info.st_mtime
    except OSError:
        return None


def key_name(*parts: str) -> str:
    """A file name for a cache entry: a hash, so names never leak what they key."""
    import hashlib

    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a private temporary file and a rename.

    ``PermissionError`` when the folder is not one ``usable_folder`` accepts: callers already
    treat a cache that cannot be written as no cache.
    """
    folder = _ensure_dir(os.path.dirname(path))
    temporary = os.path.join(
        folder, f".{os.path.basename(path)}.{os.getpid()}.{get_ident()}.tmp"
    )
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o600)
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
    folder = os.path.join(cache_dir(), kind)
    if not usable_folder(folder):
        return
    try:  # noqa: SIM105
        os.unlink(os.path.join(folder, name))
    except OSError:
        pass


# --- authenticated values (token realms) -------------------------------------------------------


def _signature(kind: str, name: str, value: object) -> str | None:
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
    return hmac.new(_local_key(), b"json\0" + canonical.encode(), hashlib.sha256).hexdigest()


def write_signed_json(kind: str, name: str, value: object) -> None:
    """Store a JSON value that ``read_signed_json`` will only return if we wrote it.

    For entries that decide where credentials are sent: a planted realm entry would send the
    user's credentials to another host before the registry is even asked.
    """
    mac = _signature(kind, name, value)
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
    expected = _signature(kind, name, entry["value"])
    if not isinstance(mac, str) or expected is None:
        return None
    import hmac

    return entry["value"] if hmac.compare_digest(mac.encode(), expected.encode()) else None


# --- sealed values (registry tokens) ---------------------------------------------------------


class _Untrusted(Exception):
    """The key file is there but not ours alone."""


_ephemeral: list[bytes] = []


def _run_key() -> bytes:
    """A key for this run only, the same for the whole run (its sealed values die with it)."""
    if not _ephemeral:
        _ephemeral.append(os.urandom(32))
    return _ephemeral[0]


def _local_key() -> bytes:
    """A random per-user key, created once, 0600.

    Published with a hard link, so a concurrent run never reads a key file that is still being
    written (it would seal with a wrong, possibly empty key). A cache that cannot be written, or
    is refused (``trusted_dir``), gives a key for this run only: the cache must never fail a
    command, and a key others can read or replace would let them forge or read entries.
    """
    root = _root()
    path = os.path.join(root, "key")
    try:
        existing = _read_key(path) if usable_folder(root) else None
    except _Untrusted as refused:
        _refuse(root, str(refused))
        return _run_key()
    if existing is not None and len(existing) == 32:
        return existing
    key = os.urandom(32)
    temporary = f"{path}.{os.getpid()}.{get_ident()}.tmp"
    try:
        _ensure_dir(root)
        descriptor = os.open(
            temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o600)
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
        _refuse(root, str(refused))
        return _run_key()
    return stored if stored is not None and len(stored) == 32 else key


def _read_key(path: str) -> bytes | None:
    """The key file's bytes; ``None`` when absent, ``_Untrusted`` when not ours alone."""
    try:
        descriptor = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError:
        try:
            problem = _key_problem(os.lstat(path))
        except OSError:
            return None
        if problem:
            raise _Untrusted(problem) from None
        return None
    with os.fdopen(descriptor, "rb") as handle:
        problem = _key_problem(os.fstat(descriptor))
        if problem:
            raise _Untrusted(problem)
        try:
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
