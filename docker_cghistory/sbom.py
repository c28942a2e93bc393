"""SBOM attestations → packages, trusting only what is provably about our image.

The attestation arrives as a DSSE envelope (cosign's ``.att`` layers), a Sigstore bundle
(referrers, ``dsseEnvelope`` inside) or, from BuildKit, a bare in-toto Statement. Whatever the
wrapping, the Statement's ``subject`` must name the platform manifest we compare: a referrer or
tag that points at the wrong image must fail, never show another image's packages.
Signatures are not verified here; the subject check is about mix-ups, not forgery.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .errors import CghistoryError, sanitize
from .packages import Package, merge
from .platforms import Descriptor, ManifestError, descriptor, load_document
from .reference import DIGEST_RE
from .safejson import MAX_DEPTH, MAX_DOCUMENT, load_json

SPDX = "https://spdx.dev/Document"
CYCLONEDX = "https://cyclonedx.org/bom"
IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
STATEMENT_TYPES = frozenset({"https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1"})
BUNDLE_ARTIFACT = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"
DSSE_LAYER = "application/vnd.dsse.envelope.v1+json"
COSIGN_PREDICATE_ANNOTATION = "predicateType"
IN_TOTO_LAYER = "application/vnd.in-toto+json"  # BuildKit attestation manifests: bare statements
BUILDKIT_PREDICATE_ANNOTATION = "in-toto.io/predicate-type"
_PREDICATE_KEYS = (BUNDLE_PREDICATE_ANNOTATION, COSIGN_PREDICATE_ANNOTATION,
                   BUILDKIT_PREDICATE_ANNOTATION)

# Entries that describe the image or its distribution rather than something installed in it.
_NOT_PACKAGES_PURPOSE = frozenset({"OPERATING-SYSTEM", "CONTAINER", "DEVICE", "FIRMWARE"})
_NOT_PACKAGES_CDX = frozenset({"operating-system", "container", "device", "firmware"})
_NOT_PACKAGES_PURL = frozenset({"oci", "docker"})
_OS_SPDXID = "SPDXRef-OperatingSystem"  # apko's and Trivy's id for the distribution itself


class SbomError(CghistoryError):
    """An attestation or SBOM we cannot read or must not trust."""


class SbomSubjectMismatch(SbomError):
    """The attestation is about another image: a type, so callers can try the next candidate."""


class UnsupportedPredicate(SbomError):
    """An attestation that is not an SBOM (provenance, vulnerability scan ...)."""


@dataclass(frozen=True)
class Statement:
    predicate_type: str
    subject_digests: tuple[str, ...]
    predicate: Any


@dataclass(frozen=True)
class Sbom:
    format: str  # "spdx" | "cyclonedx"
    predicate_type: str
    packages: tuple[Package, ...]


def predicate_rank(predicate_type: str | None) -> int | None:
    """0 for SPDX, 1 for CycloneDX, None for anything else: SPDX wins where both exist.
    Versioned forms (``https://spdx.dev/Document/v2.3``) count as their family."""
    if not isinstance(predicate_type, str):
        return None
    for rank, family in enumerate((SPDX, CYCLONEDX)):
        if predicate_type == family or predicate_type.startswith(family + "/"):
            return rank
    return None


def choose(candidates: Iterable[tuple[str | None, Any]]) -> list[Any]:
    """Order ``(predicate_type, item)`` candidates (referrers, ``.att`` layers) by preference,
    dropping non-SBOMs; a caller tries them in turn until one's subject is right."""
    ranked = [(r, n, item) for n, (kind, item) in enumerate(candidates)
              if (r := predicate_rank(kind)) is not None]
    return [item for _, _, item in sorted(ranked, key=lambda t: (t[0], t[1]))]


def _str(value: Any) -> str | None:
    """Foreign values compared against sets must be strings first (a list is unhashable)."""
    return value if isinstance(value, str) else None


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SbomError(f"{what} is not a JSON object")
    return value


def _b64(text: Any, what: str, max_bytes: int) -> bytes:
    if not isinstance(text, str):
        raise SbomError(f"{what} has no base64 payload")
    if len(text) > max_bytes * 4 // 3 + 4:
        raise SbomError(f"{what} payload is larger than {max_bytes // (1024 * 1024)} MB")
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SbomError(f"{what} payload is not valid base64") from None


def statement_from_envelope(envelope: Mapping[str, Any], max_bytes: int = MAX_DOCUMENT,
                            max_depth: int = MAX_DEPTH) -> Statement:
    kind = envelope.get("payloadType")
    if kind != IN_TOTO_PAYLOAD:
        raise SbomError(f"DSSE envelope payloadType is {sanitize(kind, 60)!r}, "
                        f"not {IN_TOTO_PAYLOAD}")
    payload = _b64(envelope.get("payload"), "DSSE envelope", max_bytes)
    value = load_json(payload, "in-toto statement", max_bytes=max_bytes, max_depth=max_depth,
                      error=SbomError)
    return statement_from_json(value)


def statement_from_json(value: Any) -> Statement:
    doc = _object(value, "in-toto statement")
    if _str(doc.get("_type")) not in STATEMENT_TYPES:
        raise SbomError(f"in-toto statement has _type {sanitize(doc.get('_type'), 60)!r}")
    subjects = doc.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise SbomError("in-toto statement has no subject")
    digests = []
    for subject in subjects:
        digest = subject.get("digest") if isinstance(subject, Mapping) else None
        if isinstance(digest, Mapping) and isinstance(digest.get("sha256"), str):
            digests.append("sha256:" + digest["sha256"].lower())
    kind = doc.get("predicateType")
    if not isinstance(kind, str):
        raise SbomError("in-toto statement has no predicateType")
    return Statement(kind, tuple(digests), doc.get("predicate"))


def read_statement(data: bytes | str | Mapping[str, Any], max_bytes: int = MAX_DOCUMENT,
                   max_depth: int = MAX_DEPTH) -> Statement:
    """A DSSE envelope, a Sigstore bundle (any v0.x: ``dsseEnvelope``) or a bare Statement."""
    value = data if isinstance(data, Mapping) else load_json(
        data, "attestation", max_bytes=max_bytes, max_depth=max_depth, error=SbomError)
    doc = _object(value, "attestation")
    if "dsseEnvelope" in doc:
        return statement_from_envelope(_object(doc["dsseEnvelope"], "Sigstore bundle envelope"),
                                       max_bytes, max_depth)
    if "payloadType" in doc:
        return statement_from_envelope(doc, max_bytes, max_depth)
    if "_type" in doc:
        return statement_from_json(doc)
    raise SbomError("attestation is neither a DSSE envelope, a Sigstore bundle nor a statement")


def _purl_type(purl: Any) -> str | None:
    if not isinstance(purl, str) or not purl.startswith("pkg:"):
        return None
    kind = purl[4:].lstrip("/").split("/", 1)[0]
    return unquote(kind).lower() or None


def _spdx_packages(doc: Mapping[str, Any]) -> list[Package]:
    describes = doc.get("documentDescribes") or []
    describes = {d for d in describes if isinstance(d, str)} if isinstance(describes, list) \
        else set()
    entries = doc.get("packages") or []
    if not isinstance(entries, list):
        raise SbomError("SPDX document packages is not a list")
    out = []
    for number, entry in enumerate(entries):
        entry = _object(entry, f"SPDX package {number}")
        # apko writes OPERATING_SYSTEM, the SPDX 2.3 schema OPERATING-SYSTEM: both are meant.
        purpose = (_str(entry.get("primaryPackagePurpose")) or "").upper().replace("_", "-")
        spdx_id = _str(entry.get("SPDXID")) or ""
        if purpose in _NOT_PACKAGES_PURPOSE or spdx_id.startswith(_OS_SPDXID):
            continue
        refs = entry.get("externalRefs") or []
        purls = [r.get("referenceLocator") for r in refs if isinstance(r, Mapping)
                 and r.get("referenceType") == "purl"] if isinstance(refs, list) else []
        kinds = [k for k in map(_purl_type, purls) if k]
        kind = kinds[0] if kinds else None
        if kind in _NOT_PACKAGES_PURL or (kind is None and spdx_id in describes):
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise SbomError(f"SPDX package {number} has no name")
        version = entry.get("versionInfo")
        out.append(Package(kind or "generic", name.strip(),
                           version.strip() if isinstance(version, str) else ""))
    return out


def _cyclonedx_packages(doc: Mapping[str, Any]) -> list[Package]:
    out = []
    stack = [doc.get("components") or []]
    while stack:
        components = stack.pop()
        if not isinstance(components, list):
            raise SbomError("CycloneDX components is not a list")
        for entry in components:
            entry = _object(entry, "CycloneDX component")
            stack.append(entry.get("components") or [])
            name = entry.get("name")
            if not isinstance(name, str) or not name.strip():
                raise SbomError("CycloneDX component has no name")
            if _str(entry.get("type")) in _NOT_PACKAGES_CDX:
                continue
            kind = _purl_type(entry.get("purl"))
            if kind in _NOT_PACKAGES_PURL:
                continue
            version = entry.get("version")
            out.append(Package(kind or "generic", name.strip(),
                               version.strip() if isinstance(version, str) else ""))
    return out


def _embedded(predicate: Any, max_bytes: int, max_depth: int) -> Any:
    # Older cosign wrapped the document as a string under "Data".
    if isinstance(predicate, Mapping) and isinstance(predicate.get("Data"), str) \
            and "spdxVersion" not in predicate and "bomFormat" not in predicate:
        predicate = predicate["Data"]
    if isinstance(predicate, str):
        return load_json(predicate, "SBOM", max_bytes=max_bytes, max_depth=max_depth,
                         error=SbomError)
    return predicate


def sbom_from_statement(statement: Statement, subject_digest: str, max_bytes: int = MAX_DOCUMENT,
                        max_depth: int = MAX_DEPTH) -> Sbom:
    if not DIGEST_RE.match(subject_digest):
        raise ValueError(f"not a sha256 digest: {subject_digest!r}")
    if subject_digest not in statement.subject_digests:
        named = statement.subject_digests[0][:19] + "…" if statement.subject_digests else "nothing"
        raise SbomSubjectMismatch(f"SBOM attestation is for {named}, "
                                  f"not {subject_digest[:19]}…")
    rank = predicate_rank(statement.predicate_type)
    if rank is None:
        raise UnsupportedPredicate(f"attestation predicate "
                                   f"{sanitize(statement.predicate_type, 80)!r} is not an SBOM")
    doc = _object(_embedded(statement.predicate, max_bytes, max_depth), "SBOM predicate")
    if rank == 0:
        version = doc.get("spdxVersion")
        if not isinstance(version, str) or not version.startswith("SPDX-"):
            raise SbomError("SPDX predicate has no spdxVersion")
        return Sbom("spdx", statement.predicate_type, merge(_spdx_packages(doc)))
    if doc.get("bomFormat") != "CycloneDX":
        raise SbomError("CycloneDX predicate has no bomFormat CycloneDX")
    return Sbom("cyclonedx", statement.predicate_type, merge(_cyclonedx_packages(doc)))


def read_sbom(data: bytes | str | Mapping[str, Any], subject_digest: str,
              max_bytes: int = MAX_DOCUMENT, max_depth: int = MAX_DEPTH) -> Sbom:
    """The packages of an attestation (envelope, bundle or statement) about ``subject_digest``."""
    return sbom_from_statement(read_statement(data, max_bytes, max_depth), subject_digest,
                               max_bytes, max_depth)


def cosign_tag(digest: str) -> str:
    """cosign's attestation tag for a manifest: ``sha256-<hex>.att``."""
    if not DIGEST_RE.match(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest.replace(":", "-") + ".att"


def _predicate_of(entry: Descriptor, fallback: Mapping[str, str] | None = None) -> str | None:
    for source in (entry.annotations, fallback or {}):
        for key in _PREDICATE_KEYS:
            if isinstance(source.get(key), str):
                return source[key]
    return None


def sbom_referrers(referrers: bytes | str | Mapping[str, Any]) -> list[Descriptor]:
    """The referrers API answer (an OCI index) → the Sigstore bundles worth fetching, SPDX
    first. Entries of another artifactType are dropped here, for registries that ignore the
    ``artifactType`` filter."""
    doc = load_document(referrers, "referrers list")
    entries = doc.get("manifests") or []
    if not isinstance(entries, list):
        raise ManifestError("referrers list has no manifests list")
    found = []
    for number, raw in enumerate(entries):
        if not isinstance(raw, Mapping) or raw.get("artifactType") != BUNDLE_ARTIFACT:
            continue
        entry = descriptor(raw, f"referrer {number}")
        found.append((_predicate_of(entry), entry))
    return choose(found)


def attestation_layers(manifest: bytes | str | Mapping[str, Any]) -> list[Descriptor]:
    """The SBOM layers of an attestation manifest, SPDX first: a cosign ``.att`` manifest (DSSE
    envelopes with a ``predicateType`` annotation), a Sigstore bundle referrer (the bundle,
    its predicate type possibly only on the manifest) or a BuildKit attestation manifest."""
    doc = load_document(manifest, "attestation manifest")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ManifestError("attestation manifest has no layers list")
    top = doc.get("annotations") if isinstance(doc.get("annotations"), Mapping) else {}
    found = []
    for number, raw in enumerate(layers):
        if not isinstance(raw, Mapping) or raw.get("mediaType") not in (
                DSSE_LAYER, BUNDLE_ARTIFACT, IN_TOTO_LAYER):
            continue
        entry = descriptor(raw, f"attestation layer {number}")
        found.append((_predicate_of(entry, top), entry))
    return choose(found)
