"""A layer read through the registry (``buildfacts.open_layer``): the scan reads it as a file,
the download checks its digest, and a swapped layer yields nothing, even when the scan found
what it wanted before the end."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import pytest

from docker_cghistory.buildfacts import open_layer
from docker_cghistory.content import Content
from docker_cghistory.errors import RegistryError
from docker_cghistory.layers import Layer, find_package_databases
from docker_cghistory.registry import RegistryClient

BASE = "https://reg.example/v2/team/app"
APK = b"C:Q1abc=\nP:musl\nV:1.2.5-r0\nA:x86_64\n\nC:Q1def=\nP:zlib\nV:1.3.1-r0\nA:x86_64\n\n"


def layer_bytes(padding: int = 0) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in (("lib/apk/db/installed", APK), ("pad", b"\0" * padding)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def scan(requests_mock, served: bytes, digest: str):
    requests_mock.get(f"{BASE}/blobs/{digest}", content=served)
    content = Content(RegistryClient("reg.example", use_disk_cache=False,
                                     sleep=lambda _: None), "team/app")
    layer = Layer(lambda: open_layer(content, digest, len(served)), name=digest,
                  size=len(served))
    return find_package_databases([layer]).packages()


def test_a_layer_is_scanned_through_the_pipe(requests_mock) -> None:
    blob = layer_bytes(padding=3_000_000)  # many chunks: the pipe's queue fills and drains
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    found = scan(requests_mock, blob, digest)
    assert {(p.name, p.version) for p in found} == {("musl", "1.2.5-r0"), ("zlib", "1.3.1-r0")}


def test_a_swapped_layer_is_refused_though_the_database_came_first(requests_mock) -> None:
    blob = layer_bytes(padding=3_000_000)
    claimed = "sha256:" + hashlib.sha256(layer_bytes(padding=1)).hexdigest()
    with pytest.raises(RegistryError, match="does not match its digest"):
        scan(requests_mock, blob, claimed)
