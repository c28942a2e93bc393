"""What the fixture pushed, as data tests assert against: builds, platform images, package
sets, configs, attestations, and the diff a correct ``docker cghistory diff`` must report.

Nothing here knows digests in advance: every digest is the one the push produced, so tests
never hard-code them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

Attestation = Literal["cosign", "cosign-cyclonedx", "cosign-both", "referrers", "wrong-subject"]
Source = Literal["sbom", "layers", "none"]
Database = Literal["apk", "dpkg", "dpkg-status.d"]

# The config fields compared whole (Env and Labels are compared per key).
WHOLE_FIELDS = ("User", "Entrypoint", "Cmd", "WorkingDir", "ExposedPorts", "Volumes",
                "StopSignal")


@dataclass(frozen=True)
class PlatformImage:
    """One platform's image manifest in one build.

    ``packages`` is what the image really holds (the package database after applying the
    layers bottom to top with whiteouts); ``stale_packages`` the older copy of the database in
    a lower layer that a reader must not use. ``sbom_packages`` is what the valid SBOM of this
    manifest lists (None without one); ``source`` is where a correct diff takes its package
    list from. ``config`` is the image config's ``config`` object (Env, User, Cmd, Labels...).
    ``marker`` is the content of ``/build`` (plus a newline), to tell which image ran.
    """

    platform: str
    digest: str
    manifest_size: int
    config_digest: str
    config: dict[str, Any]
    layers: tuple[str, ...]
    layer_sizes: tuple[int, ...]
    database: Database | None
    packages: dict[str, str]
    stale_packages: dict[str, str]
    attestation: Attestation | None
    attestation_digests: tuple[str, ...]
    sbom_packages: dict[str, str] | None
    marker: str = ""

    @property
    def size(self) -> int:
        """Total compressed layer size, as the diff's ``Size`` reports it."""
        return sum(self.layer_sizes)

    @property
    def source(self) -> Source:
        if self.sbom_packages is not None:
            return "sbom"
        return "layers" if self.database is not None else "none"

    @property
    def effective_packages(self) -> dict[str, str]:
        """The package list a correct diff shows for this image (from ``source``)."""
        if self.sbom_packages is not None:
            return dict(self.sbom_packages)
        return dict(self.packages)


@dataclass(frozen=True)
class Build:
    """One build of the tag. ``position`` counts from the oldest (0); ``list_index`` is the
    index the listing shows (0 = newest). ``digest`` is what history lists: an index digest,
    or a plain manifest's for a single-platform build. ``notes`` says what the build is for."""

    position: int
    list_index: int
    digest: str
    media_type: str
    updated: str
    platforms: dict[str, PlatformImage]
    notes: str

    @property
    def is_index(self) -> bool:
        return self.media_type.endswith("index.v1+json")


@dataclass(frozen=True)
class ExpectedDiff:
    """What ``diff`` must answer for one platform between two builds (the issue's json keys).

    ``identical`` is True when the platform manifest is the same in both; ``other_changed``
    then names the platforms that did change.
    """

    platform: str
    identical: bool
    other_changed: tuple[str, ...]
    source: dict[str, Source]
    packages: dict[str, list[dict[str, str]]]
    config: list[dict[str, Any]]
    size: dict[str, int]

    @property
    def changed_names(self) -> list[str]:
        """What ``diff -q`` prints: the names of changed, added and removed packages."""
        return sorted({p["Name"] for kind in self.packages.values() for p in kind})


@dataclass
class Series:
    """The builds of ``repo:tag`` (oldest first) and what the front needs to serve them.

    ``history`` is the entry list registered with the front; ``blob_kinds`` maps every blob
    pushed to layer/config/attestation; ``referrers`` maps a subject digest to the descriptors
    the referrers API lists for it; ``tags`` every tag pushed (the series tag and cosign's
    ``sha256-<hex>.att`` tags), all public at the front.
    """

    repo: str
    tag: str
    builds: list[Build]
    history: list[list[str]]
    blob_kinds: dict[str, str] = field(default_factory=dict)
    referrers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)

    def by_index(self, list_index: int) -> Build:
        """The build the listing shows at ``list_index`` (0 = newest)."""
        return self.builds[len(self.builds) - 1 - list_index]

    def build(self, digest: str) -> Build:
        for build in self.builds:
            if build.digest == digest:
                return build
        raise KeyError(digest)

    def platform_digests(self, platform: str) -> list[str | None]:
        """Each build's manifest digest for ``platform``, oldest first (None: missing)."""
        return [b.platforms[platform].digest if platform in b.platforms else None
                for b in self.builds]

    def expected_diff(self, old: Build, new: Build, platform: str) -> ExpectedDiff:
        return expected_diff(old, new, platform)

    def consecutive_diffs(self, platform: str) -> list[tuple[Build, Build, ExpectedDiff]]:
        """(older, newer, diff) for each pair of consecutive builds having ``platform``."""
        have = [b for b in self.builds if platform in b.platforms]
        return [(a, b, expected_diff(a, b, platform)) for a, b in itertools.pairwise(have)]


def package_changes(old: dict[str, str], new: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """``{"Added", "Removed", "Changed"}`` between two name -> version maps, sorted by name."""
    return {
        "Added": [{"Name": n, "Version": new[n]} for n in sorted(set(new) - set(old))],
        "Removed": [{"Name": n, "Version": old[n]} for n in sorted(set(old) - set(new))],
        "Changed": [{"Name": n, "Old": old[n], "New": new[n]}
                    for n in sorted(set(old) & set(new)) if old[n] != new[n]],
    }


def _env(config: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in config.get("Env") or [])


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{"Field", "Old", "New"}]``: Env and Labels per key, the others whole; None for
    absent; sorted by field."""
    out: list[dict[str, Any]] = []
    for prefix, a, b in (("Env", _env(old), _env(new)),
                         ("Labels", old.get("Labels") or {}, new.get("Labels") or {})):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                out.append({"Field": f"{prefix}.{key}", "Old": a.get(key), "New": b.get(key)})
    for name in WHOLE_FIELDS:
        if old.get(name) != new.get(name):
            out.append({"Field": name, "Old": old.get(name), "New": new.get(name)})
    return sorted(out, key=lambda c: c["Field"])


def expected_diff(old: Build, new: Build, platform: str) -> ExpectedDiff:
    a, b = old.platforms[platform], new.platforms[platform]
    if a.digest == b.digest:
        others = sorted(
            p for p in set(old.platforms) | set(new.platforms)
            if p != platform and (p not in old.platforms or p not in new.platforms
                                  or old.platforms[p].digest != new.platforms[p].digest))
        empty: dict[str, list[dict[str, str]]] = {"Added": [], "Removed": [], "Changed": []}
        return ExpectedDiff(platform, True, tuple(others), {"Old": a.source, "New": b.source},
                            empty, [], {"Old": a.size, "New": b.size})
    # A side without package data (no SBOM, no database) is not "every package removed":
    # diff says there is no package data and compares config and size only.
    packages = (package_changes(a.effective_packages, b.effective_packages)
                if "none" not in (a.source, b.source)
                else {"Added": [], "Removed": [], "Changed": []})
    return ExpectedDiff(
        platform, False, (), {"Old": a.source, "New": b.source},
        packages,
        config_changes(a.config, b.config), {"Old": a.size, "New": b.size})
