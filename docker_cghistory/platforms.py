"""Platforms: what ``--platform`` means, and which manifest of an index is that platform's.

One implementation for diff, list, pin, bisect and completion, so ``linux/arm64/v8`` and
``linux/arm64`` are the same platform everywhere, as they are to docker (containerd's
``platforms.Normalize``).
"""

from __future__ import annotations

import platform as _host
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import RegistryError, UsageError, sanitize
from .reference import DIGEST_RE
from .safejson import load_json

INDEX_TYPES = frozenset({
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
})
MANIFEST_TYPES = frozenset({
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
})
MAX_INDEX = 4 * 1024 * 1024
FORM = "OS/ARCH[/VARIANT]"

_WORD = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}\Z")
_REFERENCE_TYPE = "vnd.docker.reference.type"
_REFERENCE_DIGEST = "vnd.docker.reference.digest"


class InvalidPlatform(UsageError):
    """A ``--platform`` value that is not ``OS/ARCH[/VARIANT]``."""


class ManifestError(RegistryError):
    """An index, manifest or image config whose shape cannot be trusted."""


def _normalize_arch(arch: str, variant: str) -> tuple[str, str]:
    """containerd's normalizeArch, case for case."""
    if arch == "i386":
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if arch in ("aarch64", "arm64"):
        return "arm64", "" if variant in ("8", "v8") else variant
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            return "arm", "v7"
        if variant in ("5", "6", "8"):
            return "arm", "v" + variant
    return arch, variant


@dataclass(frozen=True, order=True)
class Platform:
    """Always normalised on construction, so ``==`` is docker's notion of the same platform."""

    os: str
    architecture: str
    variant: str = field(default="")

    def __post_init__(self) -> None:
        os_name = self.os.lower()
        if os_name == "macos":
            os_name = "darwin"
        arch, variant = _normalize_arch(self.architecture.lower(), self.variant.lower())
        object.__setattr__(self, "os", os_name)
        object.__setattr__(self, "architecture", arch)
        object.__setattr__(self, "variant", variant)

    def __str__(self) -> str:
        # After normalisation a variant is left only where it tells platforms apart (arm/v7).
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


def parse_platform(text: str) -> Platform:
    """``OS/ARCH[/VARIANT]`` as a user types it; anything else is a usage error naming the form."""
    parts = text.strip().lower().split("/")
    if not 2 <= len(parts) <= 3 or not all(_WORD.match(p) for p in parts):
        raise InvalidPlatform(f"invalid platform {sanitize(text, 60)!r}: expected {FORM}, "
                              "for example linux/amd64 or linux/arm/v7")
    return Platform(*parts)


def _platform_from(data: Any) -> Platform | None:
    if not isinstance(data, Mapping):
        return None
    os_name, arch, variant = data.get("os"), data.get("architecture"), data.get("variant", "")
    if not isinstance(os_name, str) or not isinstance(arch, str):
        return None
    if not isinstance(variant, str):
        return None
    if not _WORD.match(os_name.lower()) or not _WORD.match(arch.lower()):
        return None
    if variant and not _WORD.match(variant.lower()):
        return None
    return Platform(os_name, arch, variant)


_MACHINES = {
    "x86_64": ("amd64", ""), "amd64": ("amd64", ""), "i386": ("386", ""), "i686": ("386", ""),
    "aarch64": ("arm64", ""), "arm64": ("arm64", ""), "armv8l": ("arm", "v8"),
    "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"), "armv5tel": ("arm", "v5"),
    "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""), "riscv64": ("riscv64", ""),
}


def local_platform(machine: str | None = None) -> Platform:
    """This machine's platform for Linux images (Docker Desktop runs Linux images on macOS and
    Windows too, so the OS is always linux). ``machine`` defaults to ``platform.machine()``."""
    name = (machine if machine is not None else _host.machine()).lower()
    arch, variant = _MACHINES.get(name, (name or "amd64", ""))
    return Platform("linux", arch, variant)


def default_platform(engine_answer: str | None, machine: str | None = None) -> Platform:
    """The engine's platform (``"linux/amd64"``, as the caller read it within its time budget),
    else this machine's. A garbled engine answer is not the user's mistake, so it falls back."""
    if engine_answer:
        try:
            return parse_platform(engine_answer)
        except InvalidPlatform:
            pass
    return local_platform(machine)


@dataclass(frozen=True)
class Descriptor:
    """One validated entry of an index (or one layer of a manifest)."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_attestation(self) -> bool:
        return (self.annotations.get(_REFERENCE_TYPE) == "attestation-manifest"
                or (self.platform is not None
                    and (self.platform.os, self.platform.architecture) == ("unknown", "unknown")))


def descriptor(data: Any, where: str) -> Descriptor:
    """Validate one descriptor strictly: a digest we will put in a URL must be a digest."""
    if not isinstance(data, Mapping):
        raise ManifestError(f"{where} is not an object")
    media_type, digest, size = data.get("mediaType"), data.get("digest"), data.get("size")
    if not isinstance(media_type, str) or not media_type or len(media_type) > 255:
        raise ManifestError(f"{where} has no valid mediaType")
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise ManifestError(f"{where} has an invalid digest {sanitize(digest, 80)!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ManifestError(f"{where} has an invalid size")
    annotations = data.get("annotations") or {}
    if not isinstance(annotations, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise ManifestError(f"{where} has invalid annotations")
    platform = None
    if "platform" in data:
        platform = _platform_from(data["platform"])
        if platform is None:
            raise ManifestError(f"{where} has an invalid platform")
    return Descriptor(media_type, digest, size, platform, dict(annotations))


def load_document(data: bytes | str | Mapping[str, Any], what: str) -> Mapping[str, Any]:
    """A registry JSON answer (index, manifest, config, referrers), parsed under the caps."""
    if isinstance(data, Mapping):
        return data
    value = load_json(data, what, max_bytes=MAX_INDEX, error=ManifestError)
    if not isinstance(value, Mapping):
        raise ManifestError(f"{what} is not a JSON object")
    return value


def is_index(document: bytes | str | Mapping[str, Any]) -> bool:
    doc = load_document(document, "manifest")
    media_type = doc.get("mediaType")
    if isinstance(media_type, str) and media_type in INDEX_TYPES:
        return True
    return media_type is None and isinstance(doc.get("manifests"), list)


def index_entries(index: bytes | str | Mapping[str, Any]) -> list[Descriptor]:
    """Every image manifest of the index that names a platform, attestations included.

    Entries of media types we do not know (artifacts, nested indexes) are skipped, as the OCI
    spec asks of clients; a malformed entry of a known type fails the whole index."""
    doc = load_document(index, "image index")
    if not is_index(doc):
        raise ManifestError("not an image index")
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise ManifestError("image index has no manifests list")
    out = []
    for number, entry in enumerate(manifests):
        if isinstance(entry, Mapping) and not (
                isinstance(entry.get("mediaType"), str) and entry["mediaType"] in MANIFEST_TYPES):
            continue
        found = descriptor(entry, f"image index entry {number}")
        if found.platform is not None:
            out.append(found)
    return out


def platform_manifests(index: bytes | str | Mapping[str, Any]) -> dict[Platform, Descriptor]:
    """Platform → its manifest, attestation entries left out; the first entry wins, as docker's
    own platform matching takes the first match."""
    out: dict[Platform, Descriptor] = {}
    for entry in index_entries(index):
        if not entry.is_attestation and entry.platform is not None:
            out.setdefault(entry.platform, entry)
    return out


def platforms_of(index: bytes | str | Mapping[str, Any]) -> list[Platform]:
    """The index's platforms in its own order (``linux/amd64``, ``linux/arm64``)."""
    return list(platform_manifests(index))


def platform_digests(index: bytes | str | Mapping[str, Any]) -> dict[str, str]:
    """``{"linux/amd64": "sha256:…"}``: the json ``Platforms`` object of the listing."""
    return {str(p): d.digest for p, d in platform_manifests(index).items()}


def manifest_for(index: bytes | str | Mapping[str, Any], platform: Platform) -> Descriptor | None:
    return platform_manifests(index).get(platform)


def attestation_for(index: bytes | str | Mapping[str, Any], digest: str) -> Descriptor | None:
    """BuildKit's attestation manifest for the platform manifest ``digest`` (Docker Hub images
    carry their SBOM this way, inside the index, rather than as referrers)."""
    for entry in index_entries(index):
        if entry.is_attestation and entry.annotations.get(_REFERENCE_DIGEST) == digest:
            return entry
    return None


def platform_of_config(config: bytes | str | Mapping[str, Any]) -> Platform:
    """A plain (single-platform) image's platform, read from its config blob."""
    found = _platform_from(load_document(config, "image config"))
    if found is None:
        raise ManifestError("image config names no valid os and architecture")
    return found


def layer_descriptors(manifest: bytes | str | Mapping[str, Any]) -> list[Descriptor]:
    """An image manifest's layers, validated, bottom → top: one opener each for
    ``layers.find_package_databases``, and the sizes ``changes.size_of`` adds up."""
    doc = load_document(manifest, "image manifest")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ManifestError(f"image manifest has no layers list "
                            f"(mediaType {sanitize(doc.get('mediaType'), 80)!r})")
    return [descriptor(layer, f"image manifest layer {n}") for n, layer in enumerate(layers)]


def names(platforms: list[Platform]) -> str:
    """``linux/amd64, linux/arm64``: for the line that names the platforms an image has."""
    return ", ".join(str(p) for p in platforms) or "none"
