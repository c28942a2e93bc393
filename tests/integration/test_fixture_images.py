"""The fixture images (tests/support/images) as a client sees them through the front.

The diff and platform tests trust these builds to be what Series says they are, so this file
reads them back by hand (plain ``requests``, the front's token flow, a tiny local parser of
the package databases and SBOMs) and never through the product's code.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.front import Front
from tests.support.images import (
    WRONG_SUBJECT_MARKER,
    Build,
    PlatformImage,
    Series,
    config_changes,
    package_changes,
    push_all,
    register,
)
from tests.support.services import Dockerd, Registry

pytestmark = pytest.mark.integration

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SPDX = "https://spdx.dev/Document"


@pytest.fixture(scope="module")
def images(registry: Registry, front: Front) -> dict[str, Series]:
    series = push_all(registry)
    register(front, series.values())
    front.save_baseline()
    return series


class Client:
    """Anonymous pulls through the front: a token per repository, then plain GETs."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.session = requests.Session()
        self.tokens: dict[str, str] = {}

    def get(self, repo: str, path: str, **kwargs: Any) -> requests.Response:
        if repo not in self.tokens:
            r = self.session.get(f"{self.front.url}/token", timeout=10, params={
                "service": self.front.service, "scope": f"repository:{repo}:pull"})
            assert r.status_code == 200, r.text
            self.tokens[repo] = r.json()["token"]
        headers = {"Authorization": f"Bearer {self.tokens[repo]}", "Accept": ACCEPT}
        return self.session.get(f"{self.front.url}/v2/{repo}/{path}", headers=headers,
                                timeout=30, **kwargs)

    def manifest(self, repo: str, ref: str) -> tuple[dict[str, Any], bytes]:
        r = self.get(repo, f"manifests/{ref}")
        assert r.status_code == 200, (ref, r.text)
        return r.json(), r.content

    def blob(self, repo: str, digest: str) -> bytes:
        r = self.get(repo, f"blobs/{digest}")
        assert r.status_code == 200, (digest, r.status_code)
        assert "sha256:" + hashlib.sha256(r.content).hexdigest() == digest
        return r.content


@pytest.fixture
def client(front: Front) -> Iterator[Client]:
    c = Client(front)
    yield c
    c.session.close()


def digest_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


# --------------------------------------------------------------------------- local parsers
def stanzas(text: str) -> list[dict[str, str]]:
    """RFC 822-like records separated by blank lines; continuation lines are skipped."""
    out = []
    for block in text.split("\n\n"):
        record: dict[str, str] = {}
        for line in block.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                record.setdefault(key, value.strip())
        if record:
            out.append(record)
    return out


def apk_db(text: str) -> dict[str, str]:
    return {r["P"]: r["V"] for r in stanzas(text)}


def dpkg_db(text: str, need_status: bool = True) -> dict[str, str]:
    return {r["Package"]: r["Version"] for r in stanzas(text)
            if not need_status or r.get("Status") == "install ok installed"}


def member_names(blob: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        return tar.getnames()


def overlay(layers: list[bytes]) -> dict[str, bytes]:
    """The files of the image: layers bottom to top, whiteouts and opaque folders applied."""
    files: dict[str, bytes] = {}
    for blob in layers:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
            members = [(m, tar.extractfile(m)) for m in tar.getmembers()]
            added: dict[str, bytes] = {}
            for member, f in members:
                folder, _, name = member.name.rpartition("/")
                if name == ".wh..wh..opq":
                    files = {p: d for p, d in files.items() if not p.startswith(folder + "/")}
                elif name.startswith(".wh."):
                    gone = f"{folder}/{name[4:]}" if folder else name[4:]
                    files = {p: d for p, d in files.items()
                             if p != gone and not p.startswith(gone + "/")}
                elif member.isfile() and f is not None:
                    added[member.name] = f.read()
            files.update(added)
    return files


def packages_in(files: dict[str, bytes]) -> tuple[str | None, dict[str, str] | None]:
    """(which database, name -> version) of an image's files; (None, None) without one."""
    if "lib/apk/db/installed" in files:
        return "apk", apk_db(files["lib/apk/db/installed"].decode())
    if "var/lib/dpkg/status" in files:
        return "dpkg", dpkg_db(files["var/lib/dpkg/status"].decode())
    status_d = {p: d for p, d in files.items() if p.startswith("var/lib/dpkg/status.d/")
                and not p.endswith(".md5sums")}
    if status_d:
        merged = {k: v for d in status_d.values() for k, v in dpkg_db(d.decode(), False).items()}
        return "dpkg-status.d", merged
    return None, None


def statement_of(envelope: dict[str, Any]) -> dict[str, Any]:
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    return json.loads(base64.b64decode(envelope["payload"]))


def sbom_packages(stmt: dict[str, Any]) -> dict[str, str]:
    """Name -> version of an SPDX or CycloneDX predicate, without the image and OS entries."""
    predicate = stmt["predicate"]
    if stmt["predicateType"] == SPDX:
        assert predicate["spdxVersion"] == "SPDX-2.3"
        return {p["name"]: p["versionInfo"] for p in predicate["packages"]
                if p.get("primaryPackagePurpose") not in ("OPERATING_SYSTEM", "CONTAINER")}
    assert predicate["bomFormat"] == "CycloneDX"
    return {c["name"]: c["version"] for c in predicate["components"] if c["type"] == "library"}


def subject_digest(stmt: dict[str, Any]) -> str:
    return "sha256:" + stmt["subject"][0]["digest"]["sha256"]


def all_images(images: dict[str, Series]) -> Iterator[tuple[Series, Build, PlatformImage]]:
    for series in images.values():
        for build in series.builds:
            for image in build.platforms.values():
                yield series, build, image


# --------------------------------------------------------------------------- tests
def test_indexes_platforms_and_the_byte_identical_amd64(images: dict[str, Series],
                                                         client: Client) -> None:
    series = images["latest"]
    repo = series.repo
    indexes = []
    for build in series.builds:
        index, body = client.manifest(repo, build.digest)
        assert digest_of(body) == build.digest
        real = [m for m in index["manifests"] if m["platform"]["os"] != "unknown"]
        named = {f"{m['platform']['os']}/{m['platform']['architecture']}": m for m in real}
        assert set(named) == set(build.platforms)
        for platform, entry in named.items():
            assert entry["digest"] == build.platforms[platform].digest
        if "linux/arm64" in named:
            assert named["linux/arm64"]["platform"]["variant"] == "v8"
        indexes.append(index)
    # buildkit's attestation-manifest entries point at the platform manifests.
    refs = {m["annotations"]["vnd.docker.reference.digest"] for m in indexes[0]["manifests"]
            if m["platform"] == {"architecture": "unknown", "os": "unknown"}}
    assert refs == {i.digest for i in series.builds[0].platforms.values()}

    amd = series.platform_digests("linux/amd64")
    arm = series.platform_digests("linux/arm64")
    assert amd[0] == amd[1] and arm[0] != arm[1]
    assert series.builds[0].digest != series.builds[1].digest
    _, first = client.manifest(repo, amd[0] or "")
    _, again = client.manifest(repo, amd[1] or "")
    assert first == again and digest_of(first) == amd[0]
    assert arm[5] is None and amd[5] is not None
    missing = series.expected_diff(series.builds[0], series.builds[1], "linux/amd64")
    assert missing.identical and missing.other_changed == ("linux/arm64",)

    # The tag names the newest build; a single-platform build is a plain manifest.
    tagged = client.get(repo, f"manifests/{series.tag}")
    assert tagged.headers["Docker-Content-Digest"] == series.by_index(0).digest
    single = images["single"]
    plain, _ = client.manifest(single.repo, single.tag)
    assert plain["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    config = json.loads(client.blob(single.repo, plain["config"]["digest"]))
    assert (config["os"], config["architecture"]) == ("linux", "amd64")


def test_history_lists_every_series(images: dict[str, Series], client: Client) -> None:
    for series in images.values():
        r = client.get(series.repo, f"_chainguard/history/{series.tag}")
        assert r.status_code == 200, r.text
        listed = [(e["updateTimestamp"], e["digest"]) for e in r.json()["history"]]
        assert listed == [(b.updated, b.digest) for b in series.builds]
        assert [b.list_index for b in series.builds] == list(range(len(series.builds)))[::-1]


def test_layers_hold_the_declared_package_databases(images: dict[str, Series],
                                                    client: Client) -> None:
    blobs: dict[str, bytes] = {}
    kinds_seen = set()
    markers: set[str] = set()
    for series, _build, image in all_images(images):
        manifest, _ = client.manifest(series.repo, image.digest)
        layers = [d["digest"] for d in manifest["layers"]]
        assert tuple(layers) == image.layers
        assert sum(d["size"] for d in manifest["layers"]) == image.size
        for digest in layers:
            if digest not in blobs:
                blobs[digest] = client.blob(series.repo, digest)
        files = overlay([blobs[d] for d in layers])
        assert packages_in(files) == (image.database, image.packages or None)
        # The older copy is really there, below, and differs from the answer.
        _, stale = packages_in(overlay([blobs[d] for d in layers[:2]]))
        assert stale == image.stale_packages != image.packages
        config = json.loads(client.blob(series.repo, manifest["config"]["digest"]))
        assert config["config"] == image.config
        assert files["bin/busybox"][:4] == b"\x7fELF"
        kinds_seen.add(image.database)
        names = {n for d in layers for n in member_names(blobs[d])}
        if image.database == "apk":
            assert "etc/.wh.motd" in names and "etc/motd" not in files
        markers.update(n for n in names if "/.wh." in n)
    assert kinds_seen == {"apk", "dpkg", "dpkg-status.d", None}
    assert {"lib/apk/db/.wh..wh..opq", "lib/apk/db/.wh.installed",
            "var/lib/dpkg/status.d/.wh..wh..opq", "var/lib/dpkg/status.d/.wh.netbase"} <= markers
    single = images["single"].builds
    assert single[1].platforms["linux/amd64"].source == "none"


def test_cosign_att_tags_carry_the_platform_digest(images: dict[str, Series],
                                                   client: Client) -> None:
    checked = {"cosign": 0, "cosign-cyclonedx": 0, "cosign-both": 0, "wrong-subject": 0}
    for series, _build, image in all_images(images):
        if image.attestation not in checked or image.attestation_digests == ():
            continue
        tag = image.digest.replace(":", "-") + ".att"
        att, body = client.manifest(series.repo, tag)
        assert digest_of(body) == image.attestation_digests[0]
        statements = []
        for layer in att["layers"]:
            assert layer["mediaType"] == "application/vnd.dsse.envelope.v1+json"
            stmt = statement_of(json.loads(client.blob(series.repo, layer["digest"])))
            assert layer["annotations"]["predicateType"] == stmt["predicateType"]
            assert stmt["_type"].startswith("https://in-toto.io/Statement/")
            statements.append(stmt)
        types = [s["predicateType"] for s in statements]
        if image.attestation == "wrong-subject":
            assert subject_digest(statements[0]) != image.digest
            assert WRONG_SUBJECT_MARKER in sbom_packages(statements[0])
            assert image.sbom_packages is None and image.source == "layers"
        else:
            assert {subject_digest(s) for s in statements} == {image.digest}
            assert all(sbom_packages(s) == image.sbom_packages == image.packages
                       for s in statements)
        if image.attestation == "cosign-both":
            assert types == ["https://cyclonedx.org/bom", SPDX]
        if image.attestation == "cosign":
            spdx = statements[0]["predicate"]
            purposes = {p.get("primaryPackagePurpose") for p in spdx["packages"]}
            assert {"CONTAINER", "OPERATING_SYSTEM"} <= purposes
            locators = [r["referenceLocator"] for p in spdx["packages"]
                        for r in p.get("externalRefs", [])]
            assert any(loc.startswith("pkg:apk/wolfi/") for loc in locators)
        checked[image.attestation] += 1
    assert all(checked.values()), checked


def test_referrers_api_lists_the_sigstore_bundles(images: dict[str, Series], client: Client,
                                                  front: Front) -> None:
    series = images["latest"]
    repo = series.repo
    with_extras = series.builds[2].platforms["linux/amd64"]
    plain = series.builds[1].platforms["linux/arm64"]
    for image in (plain, with_extras):
        r = client.get(repo, f"referrers/{image.digest}", params={"artifactType": BUNDLE})
        assert r.status_code == 200 and r.headers["OCI-Filters-Applied"] == "artifactType"
        listed = r.json()["manifests"]
        assert listed and all(d["artifactType"] == BUNDLE for d in listed)
        spdx = [d for d in listed
                if d["annotations"]["dev.sigstore.bundle.predicateType"] == SPDX]
        assert len(spdx) == 1
        manifest, body = client.manifest(repo, spdx[0]["digest"])
        assert digest_of(body) == spdx[0]["digest"]  # stored and served byte-identical
        assert manifest["subject"]["digest"] == image.digest
        bundle = json.loads(client.blob(repo, manifest["layers"][0]["digest"]))
        assert bundle["mediaType"] == BUNDLE
        stmt = statement_of(bundle["dsseEnvelope"])
        assert subject_digest(stmt) == image.digest
        assert sbom_packages(stmt) == image.packages

    unfiltered = client.get(repo, f"referrers/{with_extras.digest}").json()["manifests"]
    filtered = client.get(repo, f"referrers/{with_extras.digest}",
                          params={"artifactType": BUNDLE}).json()["manifests"]
    assert len(unfiltered) == len(with_extras.attestation_digests) > len(filtered)
    assert client.get(repo, f"referrers/{series.builds[0].platforms['linux/amd64'].digest}",
                      ).json()["manifests"] == []

    front.update_repo(repo, referrers="ignore_filter")
    ignored = client.get(repo, f"referrers/{with_extras.digest}", params={"artifactType": BUNDLE})
    assert "OCI-Filters-Applied" not in ignored.headers
    assert ignored.json()["manifests"] == unfiltered
    front.update_repo(repo, referrers="off")
    assert client.get(repo, f"referrers/{plain.digest}").status_code == 404


def test_blob_downloads_are_classified(images: dict[str, Series], client: Client,
                                       front: Front) -> None:
    series = images["latest"]
    image = series.builds[2].platforms["linux/amd64"]
    front.reset_log()
    client.blob(series.repo, image.config_digest)
    bundle_manifest, _ = client.manifest(series.repo, image.attestation_digests[-2])
    client.blob(series.repo, bundle_manifest["layers"][0]["digest"])
    assert client.get(series.repo, f"blobs/{image.layers[-1]}").status_code == 200
    client.session.head(f"{front.url}/v2/{series.repo}/blobs/{image.layers[0]}", timeout=10,
                        headers={"Authorization": f"Bearer {client.tokens[series.repo]}"})
    downloads = front.blob_downloads(series.repo)
    assert [d.kind for d in downloads] == ["config", "attestation", "layer"]
    assert [d.digest for d in downloads][::2] == [image.config_digest, image.layers[-1]]
    assert front.blob_downloads("some/other-repo") == []


def test_expected_diffs_match_what_the_registry_serves(images: dict[str, Series],
                                                       client: Client) -> None:
    """Series.expected_diff recomputed from the registry's bytes, for every consecutive pair."""

    def read(series: Series, image: PlatformImage) -> tuple[dict[str, str], dict[str, Any]]:
        manifest, _ = client.manifest(series.repo, image.digest)
        config = json.loads(client.blob(series.repo, manifest["config"]["digest"]))["config"]
        if image.source == "sbom":
            return dict(image.sbom_packages or {}), config  # checked against the bytes above
        files = overlay([client.blob(series.repo, d["digest"]) for d in manifest["layers"]])
        return packages_in(files)[1] or {}, config

    count = 0
    for series in images.values():
        platforms = {p for b in series.builds for p in b.platforms}
        for platform in sorted(platforms):
            for old, new, expected in series.consecutive_diffs(platform):
                if expected.identical:
                    assert expected.packages == {"Added": [], "Removed": [], "Changed": []}
                    continue
                (old_pk, old_cfg) = read(series, old.platforms[platform])
                (new_pk, new_cfg) = read(series, new.platforms[platform])
                sides = (old.platforms[platform].source, new.platforms[platform].source)
                if "none" in sides:  # no package data on one side: no package diff at all
                    assert expected.packages == {"Added": [], "Removed": [], "Changed": []}
                else:
                    assert expected.packages == package_changes(old_pk, new_pk)
                assert expected.config == config_changes(old_cfg, new_cfg)
                assert any(expected.packages.values()) or expected.config or "none" in sides
                count += 1
    assert count >= 10
    latest = images["latest"]
    grew = latest.expected_diff(latest.builds[1], latest.builds[2], "linux/amd64")
    assert grew.size["New"] > grew.size["Old"]
    assert any(c["Field"] == "Env.PYTHON_VERSION" for c in grew.config)


def test_amd64_images_pull_and_run_in_dockerd(images: dict[str, Series], front: Front,
                                              dockerd: Dockerd) -> None:
    """dockerd checks every layer against the config's diff_ids: the images are real."""
    latest, distroless = images["latest"], images["distroless"]
    build = latest.builds[1]
    ref = f"{front.host}/{latest.repo}@{build.digest}"
    dockerd.docker("pull", "--platform", "linux/amd64", ref)
    out = dockerd.docker("run", "--rm", "--network", "none", "--platform", "linux/amd64", ref,
                         "cat", "/build").stdout.decode()
    amd64 = build.platforms["linux/amd64"]
    assert out == amd64.marker + "\n"
    assert amd64 == latest.builds[0].platforms["linux/amd64"]  # build 1 reuses build 0's amd64
    plain = distroless.by_index(0)
    ref = f"{front.host}/{distroless.repo}@{plain.digest}"
    out = dockerd.docker("run", "--rm", "--network", "none", "--entrypoint", "/bin/cat", ref,
                         "/var/lib/dpkg/status.d/libssl3").stdout.decode()
    assert f"Version: {plain.platforms['linux/amd64'].packages['libssl3']}\n" in out
