"""The one way this package replaces a file: whole and durable, or not at all.

The cache, the plugin launcher and pinned Dockerfiles all need the same guarantee: a reader,
another shell or a crash sees the old file or the new one, never half of either, and no
temporary file survives a failure. Each caller keeps its own policy (which folder is trusted,
which mode, what to check before the rename) and passes it in; the steps live here once.

Only ``os`` is imported: completion writes its cache through this on a TAB.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs a TAB an import
    from collections.abc import Callable

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def write(
    path: str,
    data: bytes,
    *,
    mode: int,
    owner: tuple[int, int] | None = None,
    before_rename: Callable[[], None] | None = None,
    durable: bool = True,
) -> None:
    """Replace ``path`` with ``data``: temporary file in its folder, fsync, rename, fsync folder.

    ``durable=False`` skips both fsyncs, for entries that are checked when read back (content
    kept under its digest): after a crash such an entry is at worst empty, and then ignored.
    The rename still means no reader ever sees half a file.

    ``mode`` is set exactly (the umask does not apply): 0600 for the cache, 0755 for the
    launcher, the file's own mode for a pinned file. ``owner`` (uid, gid) is given back where
    the system allows, so pinning a file as root does not take it from its owner.
    ``before_rename`` runs after the data is on disk and right before the rename, the last
    moment to refuse (pinning checks nobody edited the file meanwhile); whatever it raises
    propagates, as does any ``OSError``, and the temporary file is removed either way.

    The rename replaces ``path`` itself: a caller that means to write through a symbolic
    link passes the resolved path.
    """
    folder = os.path.dirname(path) or os.curdir
    # The name is known before the file exists (not tempfile.mkstemp, which creates it and then
    # returns the name): a Ctrl-C landing right after the creation still removes it. O_EXCL
    # never opens a file or link someone planted under that name.
    temporary: str | None = os.path.join(
        folder, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        try:
            descriptor = os.open(
                temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC | _NOFOLLOW, 0o600)
        except FileExistsError:
            temporary = None  # not ours to remove
            raise
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            if owner is not None:  # first: a change of owner may clear set-id mode bits
                _give_back(descriptor, owner)
            _set_mode(descriptor, temporary, mode)
            if durable:
                os.fsync(descriptor)
        if before_rename is not None:
            before_rename()
        os.replace(temporary, path)
        temporary = None
    finally:
        if temporary is not None:
            try:  # noqa: SIM105 - contextlib costs a TAB 2 ms of import
                os.unlink(temporary)
            except OSError:
                pass
    if durable:
        sync_folder(folder)


def _set_mode(descriptor: int, path: str, mode: int) -> None:
    """On the open file where the system can, so a swapped name cannot redirect the chmod."""
    if os.chmod in os.supports_fd:
        os.chmod(descriptor, mode)
    else:
        os.chmod(path, mode)


def _give_back(descriptor: int, owner: tuple[int, int]) -> None:
    """Best effort: only root may give a file away, and a user editing their own file need not."""
    info = os.fstat(descriptor)
    fchown = getattr(os, "fchown", None)
    if fchown is None or (info.st_uid, info.st_gid) == owner:
        return
    try:  # noqa: SIM105
        fchown(descriptor, *owner)
    except OSError:
        pass


def sync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable; not every platform or file system allows it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY | _CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
