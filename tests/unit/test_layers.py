"""Layer semantics over real tar+gzip streams built here: whiteouts, opaque folders, lower
copies of the database, hostile names, truncated and bomb-like streams."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from docker_cghistory.errors import CghistoryError, RegistryError
from docker_cghistory.layers import (
    Layer,
    LayerError,
    clean_path,
    find_package_databases,
    packages_from_layers,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "pkgdb"
APK = (DATA / "apk_installed").read_bytes()
STATUS = (DATA / "dpkg_status").read_bytes()
OLD_APK = b"P:glibc\nV:2.39-r1\n\nP:libssl3\nV:3.3.2-r0\n\nP:ncurses\nV:6.5-r0\n\n"


def tar_bytes(entries) -> bytes:
    """entries: (name, bytes) for files, (name, None) for folders, (name, "->target") links."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(content, str):
                info.type = tarfile.SYMTYPE
                info.linkname = content[2:]
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def gz(entries) -> bytes:
    return gzip.compress(tar_bytes(entries), mtime=0)


class Opened:
    """Counts opens and closes, so tests can see which layers were read."""

    def __init__(self, data: bytes) -> None:
        self.data, self.opened, self.closed = data, 0, 0

    def __call__(self):
        self.opened += 1
        stream = io.BytesIO(self.data)
        original = stream.close

        def close():
            self.closed += 1
            original()
        stream.close = close
        return stream


def versions(packages):
    return {p.name: p.version for p in packages}


def test_the_top_layers_database_wins_and_lower_layers_are_not_read():
    bottom = Opened(gz([("lib/apk/db/installed", OLD_APK)]))
    top = Opened(gz([("etc/os-release", b"ID=wolfi\n"), ("lib/apk/db/installed", APK)]))
    found = find_package_databases([bottom, top])
    assert found.kind == "apk" and found.layers_read == 1
    assert versions(found.packages())["glibc"] == "2.40-r3"
    assert bottom.opened == 0 and top.closed == 1


def test_a_layer_without_the_database_leaves_the_lower_copy_visible():
    layers = [gz([("./lib/apk/db/installed", OLD_APK)]), gz([("usr/bin/app", b"x")])]
    found = find_package_databases([Layer(lambda d=d: io.BytesIO(d)) for d in layers])
    assert versions(found.packages()) == {"glibc": "2.39-r1", "libssl3": "3.3.2-r0",
                                          "ncurses": "6.5-r0"}
    assert found.layers_read == 2


@pytest.mark.parametrize("hiding", [
    [("lib/apk/db/.wh.installed", b"")],
    [("lib/apk/.wh.db", b"")],
    [("lib/.wh..wh..opq", b""), ("lib/x", b"")],
    [("lib/apk/db/.wh..wh..opq", b"")],
    [("lib", "->usr/lib")],
])
def test_whiteouts_opaque_folders_and_replaced_parents_hide_the_lower_database(hiding):
    layers = [gz([("lib/apk/db/installed", OLD_APK)]), gz(hiding)]
    assert packages_from_layers([Layer(lambda d=d: io.BytesIO(d)) for d in layers]) is None


def test_an_opaque_folder_keeps_its_own_layers_files():
    layers = [gz([("lib/apk/db/installed", OLD_APK)]),
              gz([("lib/apk/db/.wh..wh..opq", b""), ("lib/apk/db/installed", APK)])]
    found = packages_from_layers([Layer(lambda d=d: io.BytesIO(d)) for d in layers])
    assert "ncurses" not in versions(found) and "python-3.12" in versions(found)


def test_a_usr_merged_image_is_read_from_usr_lib():
    layers = [gz([("lib/apk/db/installed", OLD_APK)]),
              gz([("lib", "->usr/lib"), ("usr/lib/apk/db/installed", APK)])]
    found = find_package_databases([Layer(lambda d=d: io.BytesIO(d)) for d in layers])
    assert found.apk_path == "usr/lib/apk/db/installed"
    assert versions(found.packages())["glibc"] == "2.40-r3"


def test_hostile_names_never_match():
    layers = [gz([("/lib/apk/db/installed", APK), ("x/../lib/apk/db/installed", APK),
                  ("../lib/apk/db/installed", APK)])]
    assert packages_from_layers([Layer(lambda d=d: io.BytesIO(d)) for d in layers]) is None


@pytest.mark.parametrize(("name", "clean"), [
    ("./a//b/", "a/b"), ("a/./b", "a/b"), ("/etc/passwd", None), ("a/../b", None),
    ("..", None), ("./", None), ("a\\..\\b", None),
])
def test_clean_path(name, clean):
    assert clean_path(name) == clean


def test_dpkg_status_and_an_uncompressed_layer():
    found = find_package_databases([lambda: io.BytesIO(tar_bytes([
        ("var/lib/dpkg/status", STATUS), ("var/lib/dpkg/status-old", b"junk")]))])
    assert found.kind == "dpkg"
    assert "vim-tiny" not in versions(found.packages())
    assert versions(found.packages())["libssl3"] == "3.0.15-1~deb12u1"


def _status_d(*names):
    return [(f"var/lib/dpkg/status.d/{n}", (DATA / "status.d" / n).read_bytes()) for n in names]


def test_distroless_status_d_collects_files_from_every_layer():
    bottom = gz([("var/lib/dpkg/status.d", None), *_status_d("base-files", "netbase")])
    middle = gz(_status_d("libc6", "libc6.md5sums"))
    top = gz([("var/lib/dpkg/status.d/.wh.netbase", b""), *_status_d("tzdata")])
    found = find_package_databases([Layer(lambda d=d: io.BytesIO(d)) for d in (bottom, middle,
                                                                                 top)])
    assert found.layers_read == 3
    assert sorted(found.status_d) == ["base-files", "libc6", "libc6.md5sums", "tzdata"]
    assert set(versions(found.packages())) == {"base-files", "libc6", "tzdata"}


def test_an_opaque_status_d_hides_the_files_below_it():
    bottom = gz([*_status_d("base-files", "netbase"), ("var/lib/dpkg/status", STATUS)])
    top = gz([("var/lib/dpkg/status.d/.wh..wh..opq", b""), *_status_d("libc6")])
    found = find_package_databases([Layer(lambda d=d: io.BytesIO(d)) for d in (bottom, top)])
    assert sorted(found.status_d) == ["libc6"]
    assert found.dpkg_status == STATUS  # the status file is not under the opaque folder


def test_the_search_stops_once_every_path_is_settled():
    bottom = Opened(gz([("var/lib/dpkg/status", b"Package: x\nStatus: install ok installed\n")]))
    top = gz([("var/lib/.wh.dpkg", b""), ("lib/apk/.wh.db", b""), ("usr/lib/.wh.apk", b"")])
    assert packages_from_layers([bottom, lambda: io.BytesIO(top)]) is None
    assert bottom.opened == 0


def test_an_upper_copy_of_a_status_d_file_wins():
    old = b"Package: libc6\nVersion: 2.36-9+deb12u4\n"
    layers = [gz([("var/lib/dpkg/status.d/libc6", old)]), gz(_status_d("libc6"))]
    found = packages_from_layers([Layer(lambda d=d: io.BytesIO(d)) for d in layers])
    assert versions(found) == {"libc6": "2.36-9+deb12u9"}


def test_no_database_at_all_is_none():
    assert packages_from_layers([lambda: io.BytesIO(gz([("app", b"x"), ("etc", None)]))]) is None


def test_progress_hears_every_compressed_byte_read():
    data = gz([("lib/apk/db/installed", APK)])
    heard = []
    find_package_databases([Layer(lambda: io.BytesIO(data), size=len(data))],
                           progress=heard.append)
    assert 0 < sum(heard) <= len(data)


def _layer_error(layers, **caps) -> str:
    with pytest.raises(LayerError) as caught:
        find_package_databases(layers, **caps)
    assert isinstance(caught.value, RegistryError)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 200
    return message


def test_truncated_gzip_is_one_line_naming_the_layer():
    data = gz([("usr/bin/big", bytes(range(256)) * 400), ("lib/apk/db/installed", APK)])
    message = _layer_error([Layer(lambda: io.BytesIO(data[: len(data) // 2]),
                                  name="sha256:" + "ab" * 32)])
    assert "layer 1 of 1 (sha256:abababab" in message and "truncated" in message


def test_a_stream_shorter_than_its_descriptor_is_truncated():
    data = tar_bytes([("usr/bin/app", b"x")])
    assert "truncated" in _layer_error([Layer(lambda: io.BytesIO(data), size=len(data) + 10)])


@pytest.mark.parametrize(("data", "words"), [
    (b"<html><body>502 Bad Gateway</body></html>" * 20, "not a tar stream"),
    (b"\x28\xb5\x2f\xfd" + b"\x00" * 100, "zstd"),
    (b"BZh91AY&SY" + b"\x00" * 100, "bzip2"),
    (gzip.compress(b"not a tar at all" * 100), "not a tar stream"),
    (b"\x1f\x8b\x08\x00" + b"\xff" * 600, "gzip"),
])
def test_data_that_is_not_a_tar_layer_is_one_line(data, words):
    assert words in _layer_error([lambda: io.BytesIO(data)])


def test_a_gzip_bomb_stops_at_the_scan_budget():
    big = io.BytesIO()
    with gzip.GzipFile(fileobj=big, mode="wb", mtime=0) as zipped, \
            tarfile.open(fileobj=zipped, mode="w|") as tar:
        info = tarfile.TarInfo("zeros")
        info.size = 64 * 1024 * 1024
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    data = big.getvalue()
    assert len(data) < 256 * 1024
    assert "more than 4 MB" in _layer_error([lambda: io.BytesIO(data)],
                                            max_scan=4 * 1024 * 1024)


def test_a_database_over_the_file_cap_is_refused():
    data = gz([("var/lib/dpkg/status", STATUS)])
    message = _layer_error([lambda: io.BytesIO(data)], max_file=1000)
    assert "var/lib/dpkg/status is larger than" in message


def test_network_errors_from_the_stream_pass_through_unchanged():
    class Broken(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, buffer):
            raise RegistryError("connection reset while reading the layer")

    with pytest.raises(RegistryError, match="connection reset"):
        find_package_databases([Broken])


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, made as they are read, so building the test layer holds no copy."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def test_scanning_a_large_layer_with_many_entries_holds_neither_the_layer_nor_its_headers():
    import tracemalloc

    big = io.BytesIO()
    with gzip.GzipFile(fileobj=big, mode="wb", mtime=0, compresslevel=1) as zipped, \
            tarfile.open(fileobj=zipped, mode="w|") as tar:
        info = tarfile.TarInfo("usr/share/blob")
        info.size = 48 * 1024 * 1024
        tar.addfile(info, io.BufferedReader(_Zeros(info.size)))
        for n in range(20_000):
            tar.addfile(tarfile.TarInfo(f"usr/share/doc/file-{n:05d}-" + "x" * 60))
        info = tarfile.TarInfo("lib/apk/db/installed")
        info.size = len(APK)
        tar.addfile(info, io.BytesIO(APK))
    data = big.getvalue()
    tracemalloc.start()
    try:
        found = packages_from_layers([Layer(lambda: io.BytesIO(data), size=len(data))])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "glibc" in versions(found)
    assert peak < 8 * 1024 * 1024


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2048), st.booleans())
def test_arbitrary_bytes_give_an_answer_or_one_typed_error(data, compress):
    blob = gzip.compress(data, mtime=0) if compress else data
    try:
        find_package_databases([lambda: io.BytesIO(blob)]).packages()
    except CghistoryError as exc:
        assert "\n" not in str(exc)
