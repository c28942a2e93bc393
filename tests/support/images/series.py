"""The fixture's build series: which builds exist, what each holds, and pushing them.

Every series is declared as data (package sets, configs, layer layouts, attestation way per
build) and pushed through ``oci.Pusher``; the returned ``Series`` holds the digests the
registry computed. See ``tests/support/images/__init__.py`` for the tour of the builds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..front import history_from_digests
from .formats import (
    BUSYBOX,
    CYCLONEDX,
    IN_TOTO_V1,
    SLSA,
    SPDX,
    Entry,
    Layer,
    apk_installed,
    busybox_entries,
    cyclonedx_document,
    dpkg_status,
    dpkg_status_d,
    filler,
    make_layer,
    opaque,
    spdx_document,
    statement,
    whiteout,
)
from .model import Attestation, Build, Database, PlatformImage, Series
from .oci import OCI_INDEX, OCI_MANIFEST, HasUrl, Pusher

DAY = timedelta(days=1)
WRONG_SUBJECT_MARKER = "wrong-subject-marker"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PYTHON_LABELS = {
    "org.opencontainers.image.authors": "Chainguard Team https://www.chainguard.dev/",
    "org.opencontainers.image.source":
        "https://github.com/chainguard-images/images/tree/main/images/python",
}


@functools.lru_cache(maxsize=1)
def busybox_layer() -> Layer:
    """The one busybox layer every fixture image starts with (compressed once a process)."""
    with open(BUSYBOX, "rb") as f:
        return make_layer(busybox_entries(f.read()))


@dataclass
class Spec:
    """One platform image to push: its config, its layers and what they hold."""

    arch: str
    config: dict[str, Any]
    layers: list[Layer]
    database: Database | None
    packages: dict[str, str]
    stale: dict[str, str] = field(default_factory=dict)
    attestation: Attestation | None = None
    extra_referrers: bool = False
    marker: str = ""


def image_config(arch: str, config: dict[str, Any], created: str) -> dict[str, Any]:
    out: dict[str, Any] = {"architecture": arch, "os": "linux", "created": created,
                           "config": config, "history": [{"created": created,
                                                          "created_by": "fixture"}]}
    if arch == "arm64":
        out["variant"] = "v8"
    return out


def platform_of(arch: str) -> dict[str, str]:
    return {"architecture": arch, "os": "linux", **({"variant": "v8"} if arch == "arm64" else {})}


class _Builder:
    """Pushes one series and collects its builds."""

    def __init__(self, registry: HasUrl, repo: str, tag: str) -> None:
        self.pusher = Pusher(registry, repo)
        self.repo, self.tag = repo, tag
        self.pending: list[tuple[str, str, dict[str, PlatformImage], str]] = []
        self.referrers: dict[str, list[dict[str, Any]]] = {}

    def platform(self, spec: Spec, created: str, wrong_subject: str | None = None) -> PlatformImage:
        digest, body = self.pusher.image(image_config(spec.arch, spec.config, created),
                                         spec.layers)
        config_digest = _config_digest(body)
        att_digests, sbom = self._attest(spec, digest, len(body), wrong_subject)
        return PlatformImage(
            platform=f"linux/{spec.arch}", digest=digest, manifest_size=len(body),
            config_digest=config_digest, config=spec.config,
            layers=tuple(ly.digest for ly in spec.layers),
            layer_sizes=tuple(ly.size for ly in spec.layers), database=spec.database,
            packages=dict(spec.packages), stale_packages=dict(spec.stale),
            attestation=spec.attestation, attestation_digests=att_digests, sbom_packages=sbom,
            marker=spec.marker)

    def _attest(self, spec: Spec, digest: str, size: int,
                wrong_subject: str | None) -> tuple[tuple[str, ...], dict[str, str] | None]:
        kind, name, arch = spec.attestation, self.repo, spec.arch
        if kind is None:
            return (), None

        def spdx(subject: str, packages: dict[str, str], version: str = "") -> dict:
            doc = spdx_document(subject, arch, self.repo, packages)
            if version:
                return statement(name, subject, SPDX, doc, version)
            return statement(name, subject, SPDX, doc)

        cdx = statement(name, digest, CYCLONEDX,
                        cyclonedx_document(digest, arch, self.repo, spec.packages))
        if kind == "cosign":
            return (self.pusher.cosign_att(digest, [spdx(digest, spec.packages)]),), spec.packages
        if kind == "cosign-cyclonedx":
            return (self.pusher.cosign_att(digest, [cdx]),), spec.packages
        if kind == "cosign-both":
            both = [cdx, spdx(digest, spec.packages)]
            return (self.pusher.cosign_att(digest, both),), spec.packages
        if kind == "wrong-subject":
            if wrong_subject is None:
                raise ValueError("a wrong-subject attestation needs another image's digest")
            bogus = {**spec.packages, WRONG_SUBJECT_MARKER: "6.6.6-r6"}
            return (self.pusher.cosign_att(digest, [spdx(wrong_subject, bogus)]),), None
        descriptors = [self.pusher.bundle_referrer(digest, size,
                                                   spdx(digest, spec.packages, IN_TOTO_V1))]
        if spec.extra_referrers:  # provenance first, and a non-bundle artifact type
            provenance = statement(name, digest, SLSA, {"buildDefinition": {"buildType":
                                   "https://apko.dev/build"}}, IN_TOTO_V1)
            descriptors.insert(0, self.pusher.bundle_referrer(digest, size, provenance))
            descriptors.append(self.pusher.other_referrer(
                digest, size, "application/vnd.cncf.notary.signature", b"fixture-signature"))
        self.referrers.setdefault(digest, []).extend(descriptors)
        return tuple(d["digest"] for d in descriptors), spec.packages

    def add_index(self, images: list[PlatformImage], notes: str,
                  buildkit_attestations: bool = False) -> None:
        entries: list[dict[str, Any]] = []
        for image in images:
            arch = image.platform.split("/")[1]
            entries.append({"mediaType": OCI_MANIFEST, "digest": image.digest,
                            "size": image.manifest_size, "platform": platform_of(arch)})
        if buildkit_attestations:
            for image in images:
                arch = image.platform.split("/")[1]
                stmt = statement(self.repo, image.digest, SPDX,
                                 spdx_document(image.digest, arch, self.repo, image.packages),
                                 IN_TOTO_V1)
                digest, size = self.pusher.buildkit_attestation(image.digest, stmt)
                entries.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                                "annotations": {"vnd.docker.reference.digest": image.digest,
                                                "vnd.docker.reference.type":
                                                "attestation-manifest"},
                                "platform": {"architecture": "unknown", "os": "unknown"}})
        digest = self.pusher.index(entries)
        self.pending.append((digest, OCI_INDEX, {i.platform: i for i in images}, notes))

    def add_single(self, image: PlatformImage, notes: str) -> None:
        self.pending.append((image.digest, OCI_MANIFEST, {image.platform: image}, notes))

    def finish(self, end: datetime | None, step: timedelta = DAY) -> Series:
        """Tag the newest build, make the history, number the builds."""
        newest_digest, newest_type = self.pending[-1][0], self.pending[-1][1]
        body = self._fetch(newest_digest, newest_type)
        self.pusher.manifest(body, newest_type, tag=self.tag)
        history = history_from_digests([p[0] for p in self.pending], end=end, step=step)
        n = len(self.pending)
        builds = [Build(position=i, list_index=n - 1 - i, digest=d, media_type=t,
                        updated=history[i][0], platforms=p, notes=notes)
                  for i, (d, t, p, notes) in enumerate(self.pending)]
        return Series(self.repo, self.tag, builds, history, dict(self.pusher.kinds),
                      {k: list(v) for k, v in self.referrers.items()}, list(self.pusher.tags))

    def _fetch(self, digest: str, media_type: str) -> bytes:
        import urllib.request

        req = urllib.request.Request(f"{self.pusher.base}/manifests/{digest}",
                                     headers={"Accept": media_type})
        with urllib.request.urlopen(req, timeout=30) as response:
            return bytes(response.read())


def _config_digest(manifest: bytes) -> str:
    import json

    return str(json.loads(manifest)["config"]["digest"])


def created(position: int) -> str:
    return f"2024-06-{position + 1:02d}T00:00:00Z"


# --------------------------------------------------------------------------- apk layers
def apk_base_layer(arch: str, stale: dict[str, str]) -> Layer:
    """The lower layer with an OLDER copy of the apk database (and files a later layer
    deletes)."""
    return make_layer([
        Entry("etc/os-release", b'ID=wolfi\nNAME="Wolfi"\nPRETTY_NAME="Wolfi"\n'),
        Entry("etc/motd", b"removed by a whiteout in the layer above\n"),
        Entry("lib/apk/db/installed", apk_installed(stale, arch)),
        Entry("lib/apk/db/triggers", b""),
    ])


def apk_packages_layer(arch: str, packages: dict[str, str], layout: str = "plain") -> Layer:
    """The current apk database over the base layer, with a whiteout of ``etc/motd``;
    ``layout="opaque"`` also makes ``lib/apk/db`` an opaque folder (hiding ``triggers``)."""
    entries = [whiteout("etc/motd")]
    if layout == "opaque":
        entries.append(opaque("lib/apk/db"))
    entries.append(Entry("lib/apk/db/installed", apk_installed(packages, arch)))
    return make_layer(entries)


def app_layer(marker: str, size: int) -> Layer:
    """``/build`` holds ``marker`` (what ``docker run IMAGE cat /build`` prints); ``size``
    bytes of incompressible filler make the image's size known."""
    return make_layer([Entry("build", marker.encode() + b"\n"),
                       Entry("usr/share/fixture/app.bin", filler(size, marker))])


def db_whiteout_layer() -> Layer:
    return make_layer([whiteout("lib/apk/db/installed")])


# --------------------------------------------------------------------------- dpkg layers
def dpkg_layer(arch: str, packages: dict[str, str], removed: tuple[str, ...] = ()) -> Layer:
    return make_layer([Entry("var/lib/dpkg/status", dpkg_status(packages, arch, removed))])


def status_d_layer(arch: str, packages: dict[str, str], deleted: tuple[str, ...] = (),
                   opaque_folder: bool = False) -> Layer:
    """Distroless's one-file-per-package database (with the ``.md5sums`` files next to it),
    whiting out ``deleted`` entries of lower layers or hiding them all (``opaque_folder``)."""
    folder = "var/lib/dpkg/status.d"
    entries = [opaque(folder)] if opaque_folder else []
    entries += [whiteout(f"{folder}/{name}") for name in deleted]
    for name in sorted(packages):
        entries.append(Entry(f"{folder}/{name}", dpkg_status_d(name, packages[name], arch)))
        entries.append(Entry(f"{folder}/{name}.md5sums",
                             f"0123456789abcdef0123456789abcdef  usr/share/doc/{name}/copyright\n"
                             .encode()))
    return make_layer(entries)

