"""The bytes real images and attestations are made of, written the way real tools write them.

Pure functions (no I/O besides reading /bin/busybox): apk's ``installed`` database as apk-tools
writes it, dpkg's ``status`` file and distroless's ``status.d``, deterministic gzip'd tar layers
with whiteouts, SPDX 2.3 documents shaped like apko's (the image entry, the operating system
entry, one entry per apk), CycloneDX 1.5, in-toto Statements, DSSE envelopes and Sigstore
bundles v0.3. The diff command is tested against these, so they follow the real layouts (field
letters, stanza order, continuation lines, annotations) rather than the product's parser.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MTIME = 1_700_000_000
IN_TOTO_V01 = "https://in-toto.io/Statement/v0.1"
IN_TOTO_V1 = "https://in-toto.io/Statement/v1"
SPDX = "https://spdx.dev/Document"
CYCLONEDX = "https://cyclonedx.org/bom"
SLSA = "https://slsa.dev/provenance/v1"
DSSE_MEDIA = "application/vnd.dsse.envelope.v1+json"
IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
BUNDLE_MEDIA = "application/vnd.dev.sigstore.bundle.v0.3+json"

APK_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(obj: object) -> bytes:
    """Compact, key-sorted JSON: the same object always gives the same digest."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def filler(size: int, seed: str) -> bytes:
    """Incompressible, deterministic bytes, so a layer's compressed size tracks ``size``."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


# --------------------------------------------------------------------------- package databases
def _apk_checksum(name: str, version: str) -> str:
    # apk's C: is "Q1" + base64(sha1 of the package's control segment).
    return "Q1" + base64.b64encode(hashlib.sha1(f"{name}-{version}".encode()).digest()).decode()


def apk_installed(packages: Mapping[str, str], arch: str) -> bytes:
    """``lib/apk/db/installed`` for ``packages`` (name -> version) on ``arch`` (amd64/arm64).

    Stanzas in apk-tools' field order, each ending with a blank line; file lists (``F:``,
    ``R:``, ``a:``, ``Z:``) and ``p:`` provides follow the metadata as they do for real.
    """
    apk_arch = APK_ARCH[arch]
    out = []
    for name in sorted(packages):
        version = packages[name]
        digest = hashlib.sha1(f"{name}{version}{arch}".encode()).hexdigest()
        lines = [
            f"C:{_apk_checksum(name, version + arch)}",
            f"P:{name}",
            f"V:{version}",
            f"A:{apk_arch}",
            f"S:{1000 + len(name) * 97}",
            f"I:{4096 + len(name) * 1013}",
            f"T:{name} for the fixture images",
            f"U:https://example.invalid/{name}",
            "L:Apache-2.0",
            f"o:{name.split('-')[0]}",
            "m:Wolfi",
            f"t:{MTIME - len(name)}",
            f"c:{digest}",
            "D:wolfi-baselayout so:libc.so.6" if name != "wolfi-baselayout" else "D:",
            f"p:cmd:{name}={version}",
            "F:usr",
            "F:usr/share",
            f"F:usr/share/{name}",
            "R:README",
            "a:0:0:644",
            f"Z:{_apk_checksum(name + 'readme', version)}",
        ]
        out.append("\n".join(line for line in lines if line != "D:") + "\n\n")
    return "".join(out).encode()


def dpkg_stanza(name: str, version: str, arch: str, status: str | None) -> str:
    """One dpkg record with the fields Debian writes, a Conffiles list and a long
    Description whose continuation lines (and ``" ."`` paragraph break) start with a space."""
    lines = [f"Package: {name}"]
    if status is not None:
        lines.append(f"Status: {status}")
    lines += [
        "Priority: optional",
        "Section: libs",
        f"Installed-Size: {100 + len(name) * 37}",
        "Maintainer: Debian Fixture Maintainers <fixtures@lists.debian.org>",
        f"Architecture: {arch}",
        "Multi-Arch: same",
        f"Source: {name.rstrip('0123456789')} ({version})",
        f"Version: {version}",
        "Depends: libc6 (>= 2.34)" if name != "libc6" else "Depends: libgcc-s1",
        "Conffiles:",
        f" /etc/{name}/{name}.conf 0123456789abcdef0123456789abcdef",
        f"Description: {name} for the fixture images",
        f" {name} is a package of the fixture images. This line continues the",
        " description, as dpkg's long descriptions do.",
        " .",
        " A second paragraph, separated by a line holding a single dot.",
        f"Homepage: https://example.invalid/{name}",
    ]
    return "\n".join(lines) + "\n"


def dpkg_status(packages: Mapping[str, str], arch: str, removed: Iterable[str] = ()) -> bytes:
    """``var/lib/dpkg/status``: installed ``packages`` plus ``removed`` ones that left their
    configuration behind (``deinstall ok config-files``), which are not installed packages."""
    records = {n: dpkg_stanza(n, v, arch, "install ok installed") for n, v in packages.items()}
    for name in removed:
        records[name] = dpkg_stanza(name, "1.0-1", arch, "deinstall ok config-files")
    return "\n".join(records[n] for n in sorted(records)).encode()


def dpkg_status_d(name: str, version: str, arch: str) -> bytes:
    """A distroless ``var/lib/dpkg/status.d/<name>`` file: one record, no Status field."""
    return dpkg_stanza(name, version, arch, None).encode()


# --------------------------------------------------------------------------- layers
@dataclass(frozen=True)
class Entry:
    """One tar member: a file (``data``), a directory (``data is None``) or a symlink."""

    path: str
    data: bytes | None = b""
    mode: int = 0o644
    link: str | None = None


def whiteout(path: str) -> Entry:
    """The OCI whiteout deleting ``path`` from the layers below."""
    folder, _, name = path.rpartition("/")
    return Entry(f"{folder}/.wh.{name}" if folder else f".wh.{name}", b"")


def opaque(folder: str) -> Entry:
    """The marker hiding everything the layers below hold under ``folder``."""
    return Entry(f"{folder}/.wh..wh..opq", b"")


def tar_bytes(entries: Iterable[Entry]) -> bytes:
    """A PAX tar of ``entries`` with parent folders added, fixed owners and mtimes."""
    buf = io.BytesIO()
    seen: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(info: tarfile.TarInfo, data: bytes | None = None) -> None:
            info.mtime, info.uid, info.gid = MTIME, 0, 0
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        for entry in entries:
            parts = entry.path.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                if folder not in seen:
                    seen.add(folder)
                    info = tarfile.TarInfo(folder)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    add(info)
            info = tarfile.TarInfo(entry.path)
            if entry.link is not None:
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.link, 0o777
                add(info)
            elif entry.data is None:
                if entry.path in seen:
                    continue
                seen.add(entry.path)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                add(info)
            else:
                info.size, info.mode = len(entry.data), entry.mode
                add(info, entry.data)
    return buf.getvalue()


@dataclass(frozen=True)
class Layer:
    """A compressed layer blob and its uncompressed digest (the config's diff_id)."""

    blob: bytes
    diff_id: str
    paths: tuple[str, ...]

    @property
    def digest(self) -> str:
        return sha256(self.blob)

    @property
    def size(self) -> int:
        return len(self.blob)


def make_layer(entries: Iterable[Entry]) -> Layer:
    entries = list(entries)
    raw = tar_bytes(entries)
    return Layer(gzip.compress(raw, compresslevel=6, mtime=0), sha256(raw),
                 tuple(e.path for e in entries))


BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "cat", "echo", "ls", "sleep", "true", "false", "env", "test", "grep")


def busybox_entries(busybox: bytes) -> list[Entry]:
    """/bin/busybox (Debian's busybox-static) and applet links, so amd64 images can run."""
    out = [Entry("tmp", None), Entry("bin/busybox", busybox, 0o755)]
    out += [Entry(f"bin/{a}", link="busybox") for a in APPLETS]
    return out


# --------------------------------------------------------------------------- SBOMs
def purl_apk(name: str, version: str, arch: str, distro: str = "wolfi") -> str:
    return f"pkg:apk/{distro}/{name}@{version}?arch={APK_ARCH[arch]}"


def purl_oci(digest: str, arch: str, repo: str) -> str:
    quoted = digest.replace(":", "%3A")
    return (f"pkg:oci/{repo.rsplit('/', 1)[-1]}@{quoted}?arch={arch}"
            "&mediaType=application%2Fvnd.oci.image.manifest.v1%2Bjson&os=linux")


def spdx_document(subject: str, arch: str, repo: str, packages: Mapping[str, str],
                  os_version: str = "20230201") -> dict:
    """An SPDX 2.3 document as apko writes it for one platform image: first the image itself
    (name = its digest, a ``pkg:oci`` purl), then the operating system (``primaryPackagePurpose:
    OPERATING_SYSTEM``), then one package per apk with a ``pkg:apk/wolfi`` purl."""
    hex_ = subject.split(":", 1)[1]
    image_id = f"SPDXRef-Package-sha256-{hex_}"
    doc_packages: list[dict] = [
        {
            "SPDXID": image_id,
            "name": subject,
            "versionInfo": subject,
            "filesAnalyzed": False,
            "description": "apko container image",
            "downloadLocation": "NOASSERTION",
            "supplier": "Organization: Chainguard, Inc.",
            "primaryPackagePurpose": "CONTAINER",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER",
                              "referenceLocator": purl_oci(subject, arch, repo),
                              "referenceType": "purl"}],
        },
        {
            "SPDXID": "SPDXRef-OperatingSystem-wolfi",
            "name": "wolfi",
            "versionInfo": os_version,
            "filesAnalyzed": False,
            "description": "Operating System",
            "downloadLocation": "NOASSERTION",
            "supplier": "Organization: Wolfi",
            "primaryPackagePurpose": "OPERATING_SYSTEM",
        },
    ]
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                      "relatedSpdxElement": image_id},
                     {"spdxElementId": image_id, "relationshipType": "CONTAINS",
                      "relatedSpdxElement": "SPDXRef-OperatingSystem-wolfi"}]
    for name in sorted(packages):
        version = packages[name]
        pkg_id = f"SPDXRef-Package-{name}-{version}"
        doc_packages.append({
            "SPDXID": pkg_id,
            "name": name,
            "versionInfo": version,
            "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "Apache-2.0",
            "downloadLocation": "NOASSERTION",
            "originator": "Organization: Wolfi",
            "supplier": "Organization: Wolfi",
            "copyrightText": "\n",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER",
                              "referenceLocator": purl_apk(name, version, arch),
                              "referenceType": "purl"}],
        })
        relationships.append({"spdxElementId": image_id, "relationshipType": "CONTAINS",
                              "relatedSpdxElement": pkg_id})
    return {
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"sbom-{subject}",
        "spdxVersion": "SPDX-2.3",
        "creationInfo": {"created": "2024-06-01T00:00:00Z",
                         "creators": ["Tool: apko (v0.14.0)", "Organization: Chainguard, Inc"],
                         "licenseListVersion": "3.22"},
        "dataLicense": "CC0-1.0",
        "documentNamespace": f"https://spdx.org/spdxdocs/apko/{hex_}",
        "documentDescribes": [image_id],
        "packages": doc_packages,
        "relationships": relationships,
    }


def cyclonedx_document(subject: str, arch: str, repo: str, packages: Mapping[str, str]) -> dict:
    """A CycloneDX 1.5 BOM: the image as ``metadata.component``, the OS and apks as
    ``components`` (type ``operating-system`` and ``library``)."""
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": "urn:uuid:" + hashlib.md5(subject.encode()).hexdigest(),
        "version": 1,
        "metadata": {"timestamp": "2024-06-01T00:00:00Z",
                     "component": {"bom-ref": purl_oci(subject, arch, repo), "type": "container",
                                   "name": subject, "purl": purl_oci(subject, arch, repo)}},
        "components": [{"bom-ref": "os-wolfi", "type": "operating-system", "name": "wolfi",
                        "version": "20230201"}]
        + [{"bom-ref": purl_apk(n, packages[n], arch), "type": "library", "name": n,
            "version": packages[n], "purl": purl_apk(n, packages[n], arch)}
           for n in sorted(packages)],
    }


def statement(subject_name: str, subject_digest: str, predicate_type: str, predicate: dict,
              version: str = IN_TOTO_V01) -> dict:
    return {"_type": version, "predicateType": predicate_type,
            "subject": [{"name": subject_name,
                         "digest": {"sha256": subject_digest.split(":", 1)[1]}}],
            "predicate": predicate}


def dsse_envelope(payload: dict) -> dict:
    """A DSSE envelope; the signature is a stand-in (nothing here verifies signatures)."""
    body = canonical(payload)
    return {"payloadType": IN_TOTO_PAYLOAD,
            "payload": base64.b64encode(body).decode(),
            "signatures": [{"keyid": "",
                            "sig": base64.b64encode(hashlib.sha512(body).digest()).decode()}]}


def sigstore_bundle(envelope: dict) -> dict:
    """A Sigstore bundle v0.3 carrying ``envelope`` under ``dsseEnvelope``."""
    return {
        "mediaType": BUNDLE_MEDIA,
        "verificationMaterial": {
            "certificate": {"rawBytes": base64.b64encode(b"fixture certificate").decode()},
            "tlogEntries": [{"logIndex": "1", "logId": {"keyId": "Zml4dHVyZQ=="},
                             "kindVersion": {"kind": "dsse", "version": "0.0.1"},
                             "integratedTime": str(MTIME)}],
        },
        "dsseEnvelope": envelope,
    }
