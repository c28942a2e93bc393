"""Pushing OCI images, indexes and attestations straight into the registry's HTTP API.

No dockerd and no build tool: the blobs are made in memory (formats.py) and uploaded the way
``services.push_blob`` does, so the fixture is fast and byte-for-byte deterministic. The pusher
remembers what each blob is (layer, config, attestation), so tests can read the front's log and
say which kind of blob a client downloaded.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from .formats import (
    BUNDLE_MEDIA,
    DSSE_MEDIA,
    IN_TOTO_PAYLOAD,
    Layer,
    canonical,
    dsse_envelope,
    sha256,
    sigstore_bundle,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"

BlobKind = Literal["layer", "config", "attestation"]


class HasUrl(Protocol):
    """The registry: services.Registry, or anything with the base URL of one."""

    @property
    def url(self) -> str: ...


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    extra: tuple[tuple[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size,
                **dict(self.extra)}


@dataclass
class Pusher:
    """Uploads to one repository of one registry; ``kinds`` maps every blob digest pushed
    to what it is."""

    registry: HasUrl
    repo: str
    kinds: dict[str, BlobKind] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    _present: set[str] = field(default_factory=set)

    @property
    def base(self) -> str:
        return self.registry.url.rstrip("/") + f"/v2/{self.repo}"

    def blob(self, data: bytes, kind: BlobKind) -> Descriptor:
        digest = sha256(data)
        self.kinds.setdefault(digest, kind)
        if digest not in self._present and not self._exists(digest):
            start = urllib.request.Request(f"{self.base}/blobs/uploads/", method="POST", data=b"")
            with urllib.request.urlopen(start, timeout=30) as response:
                location = response.headers["Location"]
            if location.startswith("/"):
                location = self.registry.url.rstrip("/") + location
            separator = "&" if "?" in location else "?"
            put = urllib.request.Request(
                f"{location}{separator}digest={digest}", method="PUT", data=data,
                headers={"Content-Type": "application/octet-stream"})
            with urllib.request.urlopen(put, timeout=30):
                pass
        self._present.add(digest)
        return Descriptor("", digest, len(data))

    def _exists(self, digest: str) -> bool:
        head = urllib.request.Request(f"{self.base}/blobs/{digest}", method="HEAD")
        try:
            with urllib.request.urlopen(head, timeout=30) as response:
                return response.status == 200
        except urllib.error.HTTPError:
            return False

    def manifest(self, body: bytes, media_type: str, tag: str | None = None) -> str:
        """PUT ``body`` by digest (and under ``tag``); the registry keeps the exact bytes."""
        digest = sha256(body)
        for ref in [digest] + ([tag] if tag else []):
            put = urllib.request.Request(f"{self.base}/manifests/{ref}", method="PUT", data=body,
                                         headers={"Content-Type": media_type})
            with urllib.request.urlopen(put, timeout=30) as response:
                answered = response.headers.get("Docker-Content-Digest")
            if answered and answered != digest:
                raise RuntimeError(f"registry rewrote the manifest: {answered} != {digest}")
        if tag and tag not in self.tags:
            self.tags.append(tag)
        return digest

    # ------------------------------------------------------------------ images
    def image(self, config: dict[str, Any], layers: list[Layer],
              tag: str | None = None) -> tuple[str, bytes]:
        """Push an OCI image manifest; returns (digest, manifest bytes)."""
        config = {**config, "rootfs": {"type": "layers", "diff_ids": [ly.diff_id for ly in layers]}}
        config_desc = self.blob(canonical(config), "config")
        layer_descs = [self.blob(ly.blob, "layer") for ly in layers]
        body = canonical({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_desc.digest,
                       "size": config_desc.size},
            "layers": [{"mediaType": OCI_LAYER, "digest": d.digest, "size": d.size}
                       for d in layer_descs],
        })
        return self.manifest(body, OCI_MANIFEST, tag), body

    def index(self, entries: list[dict[str, Any]], tag: str | None = None) -> str:
        body = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        return self.manifest(body, OCI_INDEX, tag)

    # ------------------------------------------------------------------ attestations
    def buildkit_attestation(self, subject: str, statement: dict) -> tuple[str, int]:
        """An attestation manifest as buildkit writes it (in-toto layers, not DSSE), for the
        ``unknown/unknown`` entry of an index; returns (digest, size)."""
        layer = self.blob(canonical(statement), "attestation")
        config = self.blob(canonical({"architecture": "unknown", "os": "unknown",
                                      "config": {}, "rootfs": {"type": "layers",
                                                               "diff_ids": [layer.digest]}}),
                           "config")
        body = canonical({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size},
            "layers": [{"mediaType": IN_TOTO_PAYLOAD, "digest": layer.digest, "size": layer.size,
                        "annotations": {"in-toto.io/predicate-type":
                                        statement["predicateType"]}}],
        })
        return self.manifest(body, OCI_MANIFEST), len(body)

    def cosign_att(self, subject: str, statements: list[dict]) -> str:
        """cosign's tag scheme: ``sha256-<hex>.att`` holding one DSSE layer per statement,
        each annotated with its ``predicateType``."""
        layers = []
        for stmt in statements:
            blob = canonical(dsse_envelope(stmt))
            desc = self.blob(blob, "attestation")
            layers.append({"mediaType": DSSE_MEDIA, "digest": desc.digest, "size": desc.size,
                           "annotations": {"dev.cosignproject.cosign/signature": "",
                                           "predicateType": stmt["predicateType"]}})
        config = self.blob(canonical({
            "architecture": "", "created": "0001-01-01T00:00:00Z", "os": "", "config": {},
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in layers]}}), "config")
        body = canonical({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size},
            "layers": layers,
        })
        return self.manifest(body, OCI_MANIFEST, tag=subject.replace(":", "-") + ".att")

    def bundle_referrer(self, subject: str, subject_size: int, stmt: dict) -> dict[str, Any]:
        """A Sigstore bundle v0.3 manifest with ``subject`` (cosign's new bundle format);
        returns the descriptor a referrers answer lists for it."""
        bundle = self.blob(canonical(sigstore_bundle(dsse_envelope(stmt))), "attestation")
        empty = self.blob(EMPTY_JSON, "config")
        annotations = {"dev.sigstore.bundle.content": "dsse-envelope",
                       "dev.sigstore.bundle.predicateType": stmt["predicateType"],
                       "org.opencontainers.image.created": "2024-06-01T00:00:00Z"}
        return self._referrer(subject, subject_size, BUNDLE_MEDIA, bundle, empty, annotations)

    def other_referrer(self, subject: str, subject_size: int, artifact_type: str,
                       payload: bytes) -> dict[str, Any]:
        """A referrer of another artifact type (a signature), for filter tests."""
        blob = self.blob(payload, "attestation")
        empty = self.blob(EMPTY_JSON, "config")
        return self._referrer(subject, subject_size, artifact_type, blob, empty,
                              {"org.opencontainers.image.created": "2024-06-01T00:00:00Z"})

    def _referrer(self, subject: str, subject_size: int, artifact_type: str, layer: Descriptor,
                  empty: Descriptor, annotations: dict[str, str]) -> dict[str, Any]:
        body = canonical({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": OCI_EMPTY, "digest": empty.digest, "size": empty.size},
            "layers": [{"mediaType": artifact_type, "digest": layer.digest, "size": layer.size}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size},
            "annotations": annotations,
        })
        digest = self.manifest(body, OCI_MANIFEST)
        return {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body),
                "artifactType": artifact_type, "annotations": annotations}
