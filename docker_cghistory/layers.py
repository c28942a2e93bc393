"""Finding the package database in an image's layers, streamed, as the union filesystem would.

Layers are read from the top down, so the first layer that has the file (or hides it) settles
it, and reading stops once every path we care about is settled: for a Chainguard image that is
usually the first layer read. ``var/lib/dpkg/status.d`` is a folder, so its lower files still
count until a layer whites them out, makes the folder opaque or hides one of its parents.

Nothing is extracted or written: entries are matched by name, and only the database files are
read, each under a cap. Names that are absolute or contain ``..`` can never name our paths and
are simply not matched.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from .errors import RegistryError
from .packages import Package, merge
from .pkgdb import parse_apk_installed, parse_dpkg_status, parse_dpkg_status_d

APK_PATHS = ("lib/apk/db/installed", "usr/lib/apk/db/installed")  # usr/lib after a usr merge
DPKG_STATUS = "var/lib/dpkg/status"
STATUS_D = "var/lib/dpkg/status.d"
MAX_FILE = 64 * 1024 * 1024
MAX_SCAN = 4 * 1024 * 1024 * 1024
_CHUNK = 256 * 1024
_FILES = (*APK_PATHS, DPKG_STATUS)
_OPAQUE = ".wh..wh..opq"
_WHITEOUT = ".wh."

Progress = Callable[[int], None]


class LayerError(RegistryError):
    """A layer that is not the tar stream it claims, or is bigger than we agree to read."""


@dataclass(frozen=True)
class Layer:
    """``open`` returns the blob as served (gzip or plain tar); ``name`` (a digest) is for
    messages; with ``size`` a stream that ends early is reported as truncated."""

    open: Callable[[], BinaryIO]
    name: str = ""
    size: int | None = None


@dataclass(frozen=True)
class PackageDatabases:
    apk: bytes | None = None
    apk_path: str | None = None
    dpkg_status: bytes | None = None
    status_d: Mapping[str, bytes] = field(default_factory=dict)
    layers_read: int = 0

    @property
    def kind(self) -> str | None:
        if self.apk is not None:
            return "apk"
        if self.dpkg_status is not None or any(
                not n.endswith(".md5sums") for n in self.status_d):
            return "dpkg"
        return None

    def packages(self) -> tuple[Package, ...] | None:
        """None when the image has no database at all (not the same as an empty one)."""
        if self.apk is not None:
            return parse_apk_installed(self.apk, self.apk_path or APK_PATHS[0])
        if self.kind == "dpkg":
            found = parse_dpkg_status(self.dpkg_status) if self.dpkg_status is not None else ()
            return merge([*found, *parse_dpkg_status_d(self.status_d)])
        return None


class _Source(io.RawIOBase):
    """The compressed stream: counts and reports bytes, and can give back a peeked prefix."""

    def __init__(self, raw: BinaryIO, progress: Progress | None) -> None:
        self.raw, self.progress, self.count, self.prefix = raw, progress, 0, b""

    def readable(self) -> bool:
        return True

    def peek(self, size: int) -> bytes:
        while len(self.prefix) < size:
            chunk = self._read(size - len(self.prefix))
            if not chunk:
                break
            self.prefix += chunk
        return self.prefix[:size]

    def _read(self, size: int) -> bytes:
        chunk = self.raw.read(size)
        if chunk:
            self.count += len(chunk)
            if self.progress is not None:
                self.progress(len(chunk))
        return chunk or b""

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.prefix:
            n = min(len(buffer), len(self.prefix))
            buffer[:n], self.prefix = self.prefix[:n], self.prefix[n:]
            return n
        chunk = self._read(min(len(buffer), _CHUNK))
        buffer[: len(chunk)] = chunk
        return len(chunk)


class _Budget(io.RawIOBase):
    """The decompressed stream, cut off at the scan budget shared by all layers: a gzip bomb
    costs at most ``MAX_SCAN`` of CPU, never memory or disk."""

    def __init__(self, inner: BinaryIO, scanner: _Scanner) -> None:
        self.inner, self.scanner = inner, scanner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self.inner.read(min(len(buffer), _CHUNK))
        self.scanner.scanned += len(chunk)
        if self.scanner.scanned > self.scanner.max_scan:
            raise LayerError(f"more than {self.scanner.max_scan // (1024 * 1024)} MB "
                             "of layer data to scan")
        buffer[: len(chunk)] = chunk
        return len(chunk)


def clean_path(name: str) -> str | None:
    """A tar name as a relative path (``./a//b/`` → ``a/b``); None for names we never trust."""
    if name.startswith("/") or "\\" in name:
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


_RELEVANT = frozenset(a for p in (*_FILES, STATUS_D) for a in [*_ancestors(p), p])


@dataclass
class _LayerView:
    """What one layer says about the paths of interest."""

    files: dict[str, bytes] = field(default_factory=dict)
    irregular: set[str] = field(default_factory=set)
    entries: dict[str, bytes] = field(default_factory=dict)
    gone_entries: set[str] = field(default_factory=set)
    whiteouts: set[str] = field(default_factory=set)
    opaque: set[str] = field(default_factory=set)
    nondirs: set[str] = field(default_factory=set)

    def hides_below(self, path: str) -> bool:
        """Whether lower layers' ``path`` (and what is under it) is hidden by this layer."""
        if path in self.whiteouts:
            return True
        return any(a in self.whiteouts or a in self.opaque or a in self.nondirs
                   for a in _ancestors(path))


class _Scanner:
    def __init__(self, max_file: int, max_scan: int) -> None:
        self.max_file, self.max_scan, self.scanned = max_file, max_scan, 0
        self.settled: dict[str, bytes | None] = {}
        self.entries: dict[str, bytes | None] = {}
        self.entry_bytes = 0
        self.status_d_closed = False
        self.apk: tuple[str, bytes] | None = None

    def done(self) -> bool:
        return self.apk is not None or (
            all(p in self.settled for p in _FILES) and self.status_d_closed)

    def _read(self, tar: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> bytes:
        if member.size > self.max_file:
            raise LayerError(f"{path} is larger than {self.max_file // (1024 * 1024)} MB")
        handle = tar.extractfile(member)
        assert handle is not None
        return handle.read(member.size)

    def member(self, tar: tarfile.TarFile, member: tarfile.TarInfo, view: _LayerView) -> None:
        path = clean_path(member.name)
        if path is None:
            return
        parent, _, base = path.rpartition("/")
        if base == _OPAQUE:
            if parent in _RELEVANT:
                view.opaque.add(parent)
            return
        if base.startswith(_WHITEOUT):
            if base.startswith(_WHITEOUT + _WHITEOUT):
                return  # other AUFS bookkeeping (.wh..wh.plnk ...)
            target = f"{parent}/{base[len(_WHITEOUT):]}" if parent else base[len(_WHITEOUT):]
            if target in _RELEVANT:
                view.whiteouts.add(target)
            elif parent == STATUS_D:
                view.gone_entries.add(base[len(_WHITEOUT):])
            return
        if path in _RELEVANT and not member.isdir():
            view.nondirs.add(path)
        if path in _FILES and path not in self.settled:
            if member.isreg():
                view.files[path] = self._read(tar, member, path)
                view.irregular.discard(path)
                if path in APK_PATHS and self.apk is None:
                    self.apk = (path, view.files[path])
            else:
                view.files.pop(path, None)
                view.irregular.add(path)
        elif parent == STATUS_D and not self.status_d_closed and base not in self.entries:
            if member.isreg():
                content = self._read(tar, member, path)
                self.entry_bytes += len(content)
                if self.entry_bytes > self.max_file:
                    raise LayerError(f"{STATUS_D} holds more than "
                                     f"{self.max_file // (1024 * 1024)} MB")
                view.entries[base] = content
            else:
                view.gone_entries.add(base)

    def close_layer(self, view: _LayerView) -> None:
        for path in _FILES:
            if path in self.settled:
                continue
            if path in view.files:
                self.settled[path] = view.files[path]
            elif path in view.irregular or view.hides_below(path):
                self.settled[path] = None
        if not self.status_d_closed:
            for name, content in view.entries.items():
                self.entries.setdefault(name, content)
            for name in view.gone_entries:
                self.entries.setdefault(name, None)
            self.status_d_closed = (STATUS_D in view.opaque or STATUS_D in view.nondirs
                                    or view.hides_below(STATUS_D))


_ZSTD = b"\x28\xb5\x2f\xfd"
_GZIP = b"\x1f\x8b"
_OTHER = {b"BZh": "bzip2", b"\xfd7zXZ": "xz"}


def _scan_layer(layer: Layer, scanner: _Scanner, progress: Progress | None) -> None:
    raw = layer.open()
    try:
        source = _Source(raw, progress)
        magic = source.peek(4)
        if magic.startswith(_ZSTD):
            raise LayerError("zstd-compressed layers are not supported")
        for prefix, kind in _OTHER.items():
            if magic.startswith(prefix):
                raise LayerError(f"{kind}-compressed layers are not supported")
        reader = io.BufferedReader(source, _CHUNK)
        inner: BinaryIO = gzip.GzipFile(fileobj=reader, mode="rb") \
            if magic.startswith(_GZIP) else reader  # type: ignore[assignment]
        budget = io.BufferedReader(_Budget(inner, scanner), _CHUNK)
        view = _LayerView()
        with tarfile.open(fileobj=budget, mode="r|") as tar:
            while (member := tar.next()) is not None:
                tar.members.clear()  # stream mode keeps every header otherwise
                scanner.member(tar, member, view)
                if scanner.apk is not None:
                    break
            else:
                _check_length(layer, source)
        scanner.close_layer(view)
    finally:
        raw.close()


def _check_length(layer: Layer, source: _Source) -> None:
    if layer.size is None:
        return
    while source.count <= layer.size and source._read(_CHUNK):
        pass
    if source.count != layer.size:
        raise LayerError(f"truncated: {source.count} of {layer.size} bytes"
                         if source.count < layer.size else f"longer than its {layer.size} bytes")


def find_package_databases(
    layers: Sequence[Layer | Callable[[], BinaryIO]],
    *,
    progress: Progress | None = None,
    max_file: int = MAX_FILE,
    max_scan: int = MAX_SCAN,
) -> PackageDatabases:
    """``layers`` bottom → top, as a manifest lists them. ``progress(n)`` hears of every ``n``
    compressed bytes read. Failures of the stream's own ``read`` (network) pass through."""
    scanner = _Scanner(max_file, max_scan)
    given = [item if isinstance(item, Layer) else Layer(item) for item in layers]
    read = 0
    for number in range(len(given) - 1, -1, -1):
        layer = given[number]
        read += 1
        try:
            _scan_layer(layer, scanner, progress)
        except LayerError as exc:
            raise LayerError(f"{_label(layer, number, len(given))}: {exc}") from None
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise LayerError(f"{_label(layer, number, len(given))}: {_why(exc)}") from None
        if scanner.done():
            break
    entries = {n: c for n, c in scanner.entries.items() if c is not None}
    apk_path, apk = scanner.apk if scanner.apk else (None, None)
    if apk is None:
        for path in APK_PATHS:  # the topmost settled alias with content
            if scanner.settled.get(path) is not None:
                apk_path, apk = path, scanner.settled[path]
                break
    return PackageDatabases(apk, apk_path, scanner.settled.get(DPKG_STATUS), entries, read)


def _label(layer: Layer, number: int, total: int) -> str:
    name = f" ({layer.name[:19]}…)" if layer.name else ""
    return f"layer {number + 1} of {total}{name}"


def _why(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "truncated gzip data"
    if isinstance(exc, gzip.BadGzipFile | zlib.error):
        return "corrupt gzip data"
    text = str(exc)
    if text.startswith("zlib error"):  # tarfile's own wording of a zlib.error
        return "corrupt gzip data"
    if "unexpected end of data" in text:
        return "truncated tar data"
    return "not a tar stream" if "header" in text or "empty" in text else "unreadable tar data"


def packages_from_layers(
    layers: Sequence[Layer | Callable[[], BinaryIO]],
    *,
    progress: Progress | None = None,
    max_file: int = MAX_FILE,
    max_scan: int = MAX_SCAN,
) -> tuple[Package, ...] | None:
    """The packages the image's database lists, or None when it has none (source "none")."""
    return find_package_databases(layers, progress=progress, max_file=max_file,
                                  max_scan=max_scan).packages()
