"""Reads by digest (``content.py``): every byte checked against its digest, kept on disk only
while it still matches, referrers filtered even when the registry ignores the filter.

Edge cases against requests-mock; the real registry is exercised by the diff integration tests.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from docker_cghistory import cache, content
from docker_cghistory.content import Content, digest_of
from docker_cghistory.errors import NotFoundError, RegistryError
from docker_cghistory.registry import RegistryClient

BASE = "https://reg.example/v2/team/app"
INDEX = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [],
}).encode()
INDEX_DIGEST = digest_of(INDEX)


def reader(use_cache: bool = True) -> Content:
    client = RegistryClient("reg.example", use_disk_cache=use_cache, sleep=lambda _: None)
    return Content(client, "team/app")


def test_a_manifest_is_read_by_digest_and_checked(requests_mock) -> None:
    requests_mock.get(f"{BASE}/manifests/{INDEX_DIGEST}", content=INDEX)
    manifest = reader().manifest(INDEX_DIGEST)
    assert manifest.digest == INDEX_DIGEST
    assert manifest.is_index
    assert manifest.document["manifests"] == []


def test_a_manifest_that_does_not_match_its_digest_is_refused(requests_mock) -> None:
    other = INDEX.replace(b"[]", b"[ ]")
    requests_mock.get(f"{BASE}/manifests/{INDEX_DIGEST}", content=other)
    with pytest.raises(RegistryError, match="does not match its digest"):
        reader().manifest(INDEX_DIGEST)


@pytest.mark.parametrize("body", [b"<html>", b"[1, 2]", b'{"schemaVersion": 2}',
                                  b"[" * 100_000])
def test_what_is_not_a_manifest_is_one_line(requests_mock, body: bytes) -> None:
    digest = digest_of(body)
    requests_mock.get(f"{BASE}/manifests/{digest}", content=body)
    with pytest.raises(RegistryError) as caught:
        reader().manifest(digest)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


def test_a_missing_manifest(requests_mock) -> None:
    requests_mock.get(f"{BASE}/manifests/{INDEX_DIGEST}", status_code=404)
    assert reader().find_manifest(INDEX_DIGEST) is None
    with pytest.raises(NotFoundError):
        reader().manifest(INDEX_DIGEST)


def test_a_kept_manifest_is_not_read_again_and_a_planted_one_is_ignored(requests_mock) -> None:
    route = requests_mock.get(f"{BASE}/manifests/{INDEX_DIGEST}", content=INDEX)
    reader().manifest(INDEX_DIGEST)
    reader().manifest(INDEX_DIGEST)
    assert route.call_count == 1
    path = os.path.join(cache.cache_dir(), "content", INDEX_DIGEST.replace(":", "-"))
    with open(path, "wb") as handle:  # someone swaps the kept copy
        handle.write(INDEX.replace(b"[]", b'[{"x": 1}]'))
    assert reader().manifest(INDEX_DIGEST).document["manifests"] == []
    assert route.call_count == 2


def test_the_kept_documents_stay_within_their_budget(requests_mock, monkeypatch) -> None:
    monkeypatch.setattr(content, "CACHE_BUDGET", 4000)
    for number in range(12):  # one document per run: the folder is bounded once a run
        content._pruned.clear()
        blob = json.dumps({"n": number, "pad": "x" * 400}).encode()
        digest = digest_of(blob)
        requests_mock.get(f"{BASE}/blobs/{digest}", content=blob)
        assert reader().blob(digest, what="config") == blob
    folder = os.path.join(cache.cache_dir(), "content")
    sizes = [os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder)]
    assert sum(sizes) <= 4000
    assert 0 < len(sizes) < 12


def test_a_streamed_layer_is_checked_even_when_the_sink_stops_early(requests_mock) -> None:
    layer = os.urandom(200_000)
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    requests_mock.get(f"{BASE}/blobs/{digest}", content=layer)

    def first_chunk(chunks) -> bytes:
        return next(iter(chunks))

    assert layer.startswith(reader().stream_blob(digest, first_chunk, what="layer",
                                                 limit=len(layer)))
    swapped = "sha256:" + hashlib.sha256(b"another layer").hexdigest()
    requests_mock.get(f"{BASE}/blobs/{swapped}", content=layer)
    with pytest.raises(RegistryError, match="does not match its digest"):
        reader().stream_blob(swapped, first_chunk, what="layer", limit=len(layer))


def test_an_invalid_digest_is_never_requested(requests_mock) -> None:
    with pytest.raises(RegistryError, match="invalid config digest"):
        reader().blob("sha256:../../etc", what="config")
    assert requests_mock.call_count == 0


BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def test_referrers_are_filtered_here_too(requests_mock) -> None:
    entries = [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": BUNDLE,
         "digest": "sha256:" + "a" * 64, "size": 10},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json",
         "artifactType": "application/example", "digest": "sha256:" + "b" * 64, "size": 10},
        {"digest": "not a digest"},
        "junk",
    ]
    requests_mock.get(f"{BASE}/referrers/{INDEX_DIGEST}", json={"manifests": entries})
    found = reader().referrers(INDEX_DIGEST, BUNDLE)
    assert [entry["digest"] for entry in found] == ["sha256:" + "a" * 64]
    assert requests_mock.last_request.qs == {"artifacttype": [BUNDLE.lower()]}


def test_a_registry_without_the_referrers_api(requests_mock) -> None:
    requests_mock.get(f"{BASE}/referrers/{INDEX_DIGEST}", status_code=404)
    assert reader().referrers(INDEX_DIGEST, BUNDLE) is None
