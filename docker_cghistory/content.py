"""Content-addressed reads from a registry: manifests, blobs and referrers, by digest.

Why it looks like this:
- ``diff`` and the platform features read manifests, configs and attestations by digest.
  Every byte read by digest is checked against that digest, so neither the registry nor
  anything between us and it can swap a build's content (a wrong answer is refused in one
  line, naming the digest).
- Content never changes for a digest, so small documents (manifests, configs) are kept on
  disk under their digest and re-checked against it when read back: a planted file is simply
  not used. The folder is bounded (oldest entries go first).
- Layers are streamed to a sink under their own cap and hashed on the way; the rest of a
  layer the sink did not need is read (within the cap) only to finish the check.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import cache, log
from .errors import NotFoundError, RegistryError
from .reference import DIGEST_RE
from .transport import Body

if TYPE_CHECKING:
    from .registry import RegistryClient

INDEX_TYPES = frozenset({
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
})
IMAGE_TYPES = frozenset({
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
})
ACCEPT = ", ".join(sorted(INDEX_TYPES | IMAGE_TYPES))
MANIFEST_LIMIT = 4 * 1024 * 1024  # distribution refuses manifests over 4 MiB
CONFIG_LIMIT = 8 * 1024 * 1024
# Disk kept for manifests and configs; past it the oldest entries are dropped.
CACHE_BUDGET = 64 * 1024 * 1024
_CACHE_KIND = "content"


@dataclass(frozen=True)
class Manifest:
    """A manifest or an index as the registry sent it, checked against ``digest``."""

    digest: str
    media_type: str
    raw: bytes = field(repr=False)
    document: dict[str, Any] = field(repr=False)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def _hasher() -> Any:
    import hashlib

    return hashlib.sha256()


def digest_of(data: bytes) -> str:
    hasher = _hasher()
    hasher.update(data)
    return "sha256:" + hasher.hexdigest()


def _parse_manifest(raw: bytes, digest: str, declared: str, what: str) -> Manifest:
    """The manifest's JSON and media type; anything that is not one is refused in one line."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise RegistryError(f"the {what} {digest} is not valid JSON") from None
    if not isinstance(document, dict):
        raise RegistryError(f"the {what} {digest} is not a JSON object")
    media_type = document.get("mediaType") or declared.split(";")[0].strip()
    if not isinstance(media_type, str) or media_type not in INDEX_TYPES | IMAGE_TYPES:
        if isinstance(document.get("manifests"), list):
            media_type = "application/vnd.oci.image.index.v1+json"
        elif isinstance(document.get("layers"), list):
            media_type = "application/vnd.oci.image.manifest.v1+json"
        else:
            raise RegistryError(f"the {what} {digest} is neither an image manifest nor an index")
    return Manifest(digest, media_type, raw, document)


_pruned = threading.Event()


def _prune_once() -> None:
    """Bound the folder once per run (not after every document: a listing stores dozens)."""
    if not _pruned.is_set():
        _pruned.set()
        cache.prune(_CACHE_KIND, CACHE_BUDGET)


class Content:
    """One repository's content on one registry, read by digest and verified."""

    def __init__(self, client: RegistryClient, repository: str, *,
                 use_cache: bool = True) -> None:
        self.client = client
        self.repository = repository
        self.use_cache = use_cache and client.use_disk_cache

    # --- manifests ---------------------------------------------------------------------

    def manifest(self, target: str, *, what: str = "manifest") -> Manifest:
        """The manifest a digest (or a tag) names; a missing one is a ``NotFoundError``."""
        found = self.find_manifest(target, what=what)
        if found is None:
            raise NotFoundError(f"registry {self.client.registry} has no {what} "
                                f"{self.repository}@{target}" if DIGEST_RE.match(target)
                                else f"registry {self.client.registry} has no {what} "
                                f"{self.repository}:{target}")
        return found

    def find_manifest(self, target: str, *, what: str = "manifest",
                      optional: bool = False) -> Manifest | None:
        """The manifest, or ``None`` when the registry has none by that name (404).

        ``optional``: something we can do without (an attestation), so a refusal (401, 403)
        counts as absent too; a registry may deny what the user's pull rights do not cover.
        """
        by_digest = bool(DIGEST_RE.match(target))
        if by_digest:
            cached = self._cached(target)
            if cached is not None:
                try:
                    return _parse_manifest(cached, target, "", what)
                except RegistryError:
                    pass  # a damaged entry: read it again
        answer = self.client._authorized(
            "GET", f"/v2/{self.repository}/manifests/{quote(target, safe=':')}",
            self.repository, headers={"Accept": ACCEPT}, what=what,
            body=Body(limit=MANIFEST_LIMIT))
        if answer.status == 404 or (optional and answer.status in (401, 403)):
            return None
        self._refuse_status(answer.status, what, target)
        digest = digest_of(answer.body)
        if by_digest and digest != target:
            raise RegistryError(f"registry {self.client.registry} sent a {what} that does not "
                                f"match its digest {target}; refusing it")
        sent = answer.header("docker-content-digest")
        if not by_digest and sent and sent != digest:
            # A registry may hash a converted manifest; what we verify is what we got.
            log.debug(f"{what} {target}: Docker-Content-Digest {sent} differs from {digest}")
        manifest = _parse_manifest(answer.body, digest, answer.header("content-type"), what)
        self._store(digest, answer.body)
        return manifest

    # --- blobs -------------------------------------------------------------------------

    def blob(self, digest: str, *, what: str, limit: int = CONFIG_LIMIT,
             keep: bool = True) -> bytes:
        """A small blob (a config, an attestation), verified; kept on disk when ``keep``."""
        self._check_digest(digest, what)
        cached = self._cached(digest) if keep else None
        if cached is not None:
            return cached
        answer = self.client._authorized(
            "GET", f"/v2/{self.repository}/blobs/{digest}", self.repository, what=what,
            body=Body(limit=limit))
        self._refuse_status(answer.status, what, digest)
        if digest_of(answer.body) != digest:
            raise RegistryError(f"registry {self.client.registry} sent a {what} that does not "
                                f"match its digest {digest}; refusing it")
        if keep:
            self._store(digest, answer.body)
        return answer.body

    def stream_blob(self, digest: str, sink: Callable[[Iterator[bytes]], Any], *,
                    what: str, limit: int) -> Any:
        """What ``sink`` makes of a large blob (a layer), once the blob matched its digest.

        The sink may stop early; the rest is read (within ``limit``) to finish the check,
        so nothing derived from a swapped layer is ever returned.
        """
        self._check_digest(digest, what)

        def verified(chunks: Iterator[bytes]) -> Any:
            hasher = _hasher()

            def hashed() -> Iterator[bytes]:
                for chunk in chunks:
                    hasher.update(chunk)
                    yield chunk

            stream = hashed()
            value = sink(stream)
            for _ in stream:  # the rest, only to finish the digest
                pass
            if "sha256:" + hasher.hexdigest() != digest:
                raise RegistryError(f"registry {self.client.registry} sent a {what} that does "
                                    f"not match its digest {digest}; refusing it")
            return value

        answer = self.client._authorized(
            "GET", f"/v2/{self.repository}/blobs/{digest}", self.repository, what=what,
            body=Body(limit=limit, sink=verified))
        self._refuse_status(answer.status, what, digest)
        return answer.value

    # --- referrers ---------------------------------------------------------------------

    def referrers(self, digest: str, artifact_type: str | None = None) -> list[dict] | None:
        """The OCI referrers of ``digest`` (descriptors), or ``None`` without the API.

        A registry that ignores ``artifactType`` sends every referrer: the filter is applied
        here again. Entries that are not well-formed descriptors are skipped.
        """
        self._check_digest(digest, "manifest")
        params = {"artifactType": artifact_type} if artifact_type else None
        answer = self.client._authorized(
            "GET", f"/v2/{self.repository}/referrers/{digest}", self.repository,
            params=params, headers={"Accept": "application/vnd.oci.image.index.v1+json"},
            what="referrers", body=Body(limit=MANIFEST_LIMIT))
        if answer.status in (400, 401, 403, 404, 405):
            return None  # no referrers API here, or none we may read: other sources follow
        self._refuse_status(answer.status, "referrers", digest)
        document = answer.json("referrers", self.client.registry)
        entries = document.get("manifests") if isinstance(document, dict) else None
        found = []
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or not DIGEST_RE.match(str(entry.get("digest"))):
                continue
            if artifact_type and entry.get("artifactType") != artifact_type:
                continue
            found.append(entry)
        return found

    # --- helpers -----------------------------------------------------------------------

    def _check_digest(self, digest: str, what: str) -> None:
        if not DIGEST_RE.match(digest):
            raise RegistryError(f"invalid {what} digest in a registry answer: {digest[:80]!r}")

    def _refuse_status(self, status: int, what: str, target: str) -> None:
        if status == 200:
            return
        if status in (401, 403):
            raise RegistryError(
                f"access to the {what} {self.repository}@{target} denied (HTTP {status}) with "
                f"{self.client.credential.source}")
        if status == 404:
            raise NotFoundError(f"registry {self.client.registry} has no {what} "
                                f"{self.repository}@{target}")
        raise RegistryError(f"registry {self.client.registry} answered HTTP {status} for the "
                            f"{what} {self.repository}@{target}")

    def _path(self, digest: str) -> str:
        return os.path.join(cache.cache_dir(), _CACHE_KIND, digest.replace(":", "-"))

    def is_kept(self, digest: str) -> bool:
        """Whether ``digest`` is on disk, without reading it: enough to plan reads (a file
        that no longer hashes to its name is still refused, and fetched, when read)."""
        return self.use_cache and os.path.isfile(self._path(digest))

    def _cached(self, digest: str) -> bytes | None:
        """A kept document, only if it still hashes to its name."""
        if not self.use_cache:
            return None
        found = cache.read_file(self._path(digest))
        if found is None or digest_of(found[0]) != digest:
            return None
        return found[0]

    def _store(self, digest: str, data: bytes) -> None:
        if not self.use_cache or len(data) > CACHE_BUDGET // 8:
            return
        try:
            # Checked against its digest when read back: not worth an fsync per document.
            cache.write_atomic(self._path(digest), data, durable=False)
        except OSError:
            return
        _prune_once()

