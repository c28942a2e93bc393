"""What a build is for one platform: its manifest, config, size and packages, from the registry.

Why it looks like this:
- One place answers "this build's manifest for platform P" (``platform_manifest``), for diff,
  the listing's platform columns, pin and bisect: an index is read once per digest (kept on
  disk by ``content``) and a plain manifest counts as the one platform its config names.
- Packages come from the best source the registry has, in the issue's order: an SBOM
  attestation about this very platform manifest (referrers API, then cosign's ``.att`` tag,
  then BuildKit's attestation inside the index), else the image's own apk or dpkg database
  read from its layers (streamed, top layer first, nothing written to disk), else none.
- A build never changes, so the package list derived for a platform digest is kept on disk,
  signed with the per-user key (a planted list would lie about what changed), and bounded.
- Nothing here prints or knows argv: ``progress`` is a callback for the command to render.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from . import cache, log, packages, sbom
from .changes import ImageSize, size_of
from .content import Content, Manifest
from .errors import CghistoryError, NotFoundError, RegistryError
from .layers import Layer, find_package_databases
from .packages import Package
from .platforms import (
    Descriptor,
    Platform,
    attestation_for,
    layer_descriptors,
    names,
    platform_manifests,
    platform_of_config,
)

# An attestation (an SBOM) may be large; a Chainguard SBOM is a few hundred kilobytes.
ATTESTATION_LIMIT = 64 * 1024 * 1024
LAYER_LIMIT = 4 * 1024 * 1024 * 1024
PACKAGE_CACHE_BUDGET = 32 * 1024 * 1024
_PACKAGES_KIND = "packages"
# Chunks queued between the download and the layer scan: bounds memory (64 KiB each).
_PIPE_CHUNKS = 16

Progress = Callable[[int], None]
Warn = Callable[[str], None]


class PlatformMissing(CghistoryError):
    """The build has no manifest for the platform asked for: a type, so callers can say so."""

    def __init__(self, message: str, available: list[Platform]) -> None:
        super().__init__(message)
        self.available = available


@dataclass(frozen=True)
class PlatformImage:
    """One build's image for one platform."""

    build_digest: str
    platform: Platform
    digest: str  # the platform manifest's digest (the build's own for a plain manifest)
    manifest: Manifest
    platforms: tuple[Platform, ...]  # every platform the build has


@dataclass(frozen=True)
class BuildFacts:
    """What ``diff`` compares: config, size and packages of one platform image."""

    image: PlatformImage
    config: dict[str, Any]
    size: ImageSize
    packages: tuple[Package, ...] | None
    source: str  # "sbom" | "layers" | "none"


def platforms_of_build(content: Content, build_digest: str) -> dict[Platform, str]:
    """Every platform of a build and its manifest digest (a plain manifest: one, from its
    config)."""
    top = content.manifest(build_digest, what="build manifest")
    if top.is_index:
        return {platform: entry.digest
                for platform, entry in platform_manifests(top.document).items()}
    config = _config_of(content, top)
    return {platform_of_config(config): top.digest}


def platform_manifest(content: Content, build_digest: str, platform: Platform) -> PlatformImage:
    """The build's manifest for ``platform``; ``PlatformMissing`` names the ones it has."""
    top = content.manifest(build_digest, what="build manifest")
    if top.is_index:
        entries = platform_manifests(top.document)
        available = tuple(sorted(entries))
        entry = entries.get(platform)
        if entry is None:
            raise PlatformMissing(
                f"build {build_digest[:19]}… has no {platform} image; it has "
                f"{names(list(available))}", list(available))
        manifest = content.manifest(entry.digest, what=f"{platform} manifest")
        if manifest.is_index:
            raise RegistryError(f"the {platform} entry of build {build_digest[:19]}… is "
                                "another index, not an image")
        return PlatformImage(build_digest, platform, entry.digest, manifest, available)
    own = platform_of_config(_config_of(content, top))
    if own != platform:
        raise PlatformMissing(f"build {build_digest[:19]}… has no {platform} image; it has "
                              f"{own}", [own])
    return PlatformImage(build_digest, own, top.digest, top, (own,))


def facts(content: Content, image: PlatformImage, *, layers_allowed: bool = True,
          progress: Progress | None = None, warn: Warn | None = None) -> BuildFacts:
    """Config, size and packages of ``image``, packages from the best source there is."""
    config = _config_of(content, image.manifest)
    size = size_of(image.manifest.document)
    found, source = packages_of(content, image, layers_allowed=layers_allowed,
                                progress=progress, warn=warn)
    return BuildFacts(image, config, size, found, source)


def packages_of(content: Content, image: PlatformImage, *, layers_allowed: bool = True,
                progress: Progress | None = None,
                warn: Warn | None = None) -> tuple[tuple[Package, ...] | None, str]:
    """The image's packages and where they came from: ``sbom``, ``layers`` or ``none``.

    ``warn`` hears of an attestation refused because it is about another image.
    """
    key = cache.key_name(content.client.registry, image.digest)
    kept = cache.read_signed_json(_PACKAGES_KIND, key) if content.use_cache else None
    if isinstance(kept, dict) and kept.get("source") in ("sbom", "layers", "none"):
        try:
            listed = kept.get("packages")
            return (packages.from_json(listed) if listed is not None else None), kept["source"]
        except CghistoryError:
            pass  # damaged: derive it again
    found = _from_attestations(content, image, warn)
    source = "sbom"
    if found is None and layers_allowed:
        found = _from_layers(content, image, progress)
        source = "layers" if found is not None else "none"
    elif found is None:
        return None, "none"  # not remembered: the layers may still be read another time
    if content.use_cache:
        cache.write_signed_json(_PACKAGES_KIND, key, {
            "source": source,
            "packages": packages.to_json(found) if found is not None else None,
        })
        cache.prune(_PACKAGES_KIND, PACKAGE_CACHE_BUDGET)
    return found, source


# --- the sources --------------------------------------------------------------------------


def _from_attestations(content: Content, image: PlatformImage,
                       warn: Warn | None) -> tuple[Package, ...] | None:
    """The first SBOM, SPDX preferred, whose subject is this platform manifest."""
    for candidate in _attestation_candidates(content, image):
        try:
            data = content.blob(candidate.digest, what="SBOM attestation",
                                limit=ATTESTATION_LIMIT, keep=False)
            return sbom.read_sbom(data, image.digest).packages
        except sbom.SbomSubjectMismatch as error:
            if warn is not None:
                warn(f"ignoring an SBOM attestation of {image.platform} image "
                     f"{image.digest[:19]}…: {error}")
        except sbom.UnsupportedPredicate:
            continue
        except (sbom.SbomError, NotFoundError) as error:
            log.debug(f"SBOM attestation {candidate.digest[:19]}… unusable: {error}")
    return None


def _attestation_candidates(content: Content, image: PlatformImage) -> Iterator[Descriptor]:
    """Attestation layers worth reading, lazily: a later source is asked only if needed."""
    referrers = content.referrers(image.digest, sbom.BUNDLE_ARTIFACT)
    for entry in sbom.sbom_referrers({"manifests": referrers or []}):
        found = content.find_manifest(entry.digest, what="attestation manifest",
                                            optional=True)
        if found is not None:
            yield from sbom.attestation_layers(found.document)
    tagged = content.find_manifest(sbom.cosign_tag(image.digest), what="attestation manifest",
                                            optional=True)
    if tagged is not None:
        yield from sbom.attestation_layers(tagged.document)
    if image.build_digest != image.digest:
        top = content.manifest(image.build_digest, what="build manifest")
        inside = attestation_for(top.document, image.digest)
        if inside is not None:
            found = content.find_manifest(inside.digest, what="attestation manifest",
                                            optional=True)
            if found is not None:
                yield from sbom.attestation_layers(found.document)


def _from_layers(content: Content, image: PlatformImage,
                 progress: Progress | None) -> tuple[Package, ...] | None:
    layers = [
        Layer(lambda digest=entry.digest, size=entry.size: open_layer(content, digest, size),
              name=entry.digest, size=entry.size)
        for entry in layer_descriptors(image.manifest.document)
    ]
    return find_package_databases(layers, progress=progress).packages()


def _config_of(content: Content, manifest: Manifest) -> dict[str, Any]:
    config = manifest.document.get("config")
    digest = config.get("digest") if isinstance(config, dict) else None
    if not isinstance(digest, str):
        raise RegistryError(f"manifest {manifest.digest[:19]}… names no config")
    from .safejson import load_json

    value = load_json(content.blob(digest, what="image config"), "image config")
    if not isinstance(value, dict):
        raise RegistryError(f"the image config {digest[:19]}… is not a JSON object")
    return value


# --- a layer as a file ---------------------------------------------------------------------


class _LayerPipe(io.RawIOBase):
    """A layer download as a readable file: the scan pulls, a thread pushes.

    ``Content.stream_blob`` checks the digest once the whole blob has gone by, so closing the
    pipe early lets the download finish (unqueued) and raises if the digest did not match:
    nothing derived from a swapped layer is kept.
    """

    def __init__(self, content: Content, digest: str, size: int) -> None:
        self._chunks: queue.Queue[bytes | None] = queue.Queue(_PIPE_CHUNKS)
        self._pending = b""
        self._draining = threading.Event()
        self._failure: BaseException | None = None
        self._done = threading.Event()
        limit = min(LAYER_LIMIT, size) if size > 0 else LAYER_LIMIT
        self._thread = threading.Thread(
            target=self._download, args=(content, digest, limit), daemon=True,
            name="layer")
        self._thread.start()

    def _download(self, content: Content, digest: str, limit: int) -> None:
        def sink(chunks: Iterator[bytes]) -> None:
            for chunk in chunks:
                while not self._draining.is_set():
                    try:
                        self._chunks.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue

        try:
            content.stream_blob(digest, sink, what="layer", limit=limit)
        except BaseException as error:  # handed to the reader
            self._failure = error
        finally:
            self._done.set()
            while not self._draining.is_set():
                try:
                    self._chunks.put(None, timeout=0.1)
                    break
                except queue.Full:
                    continue

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self._chunks.get()
            if chunk is None:
                self._chunks.put(None)  # later reads see the end too
                if self._failure is not None:
                    raise self._failure
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        if self.closed:
            return
        self._draining.set()
        while True:  # unblock the producer
            try:
                self._chunks.get_nowait()
            except queue.Empty:
                break
        self._done.wait()
        super().close()
        if self._failure is not None:
            raise self._failure


def open_layer(content: Content, digest: str, size: int) -> BinaryIO:
    """A layer blob as a stream for ``layers``; the digest is checked when it is closed."""
    return _LayerPipe(content, digest, size)  # type: ignore[return-value]
