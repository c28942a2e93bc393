"""Real images for the diff and platform features: pushed to the real registry over its HTTP
API (no dockerd, no build tool), deterministic, a few hundred kilobytes besides busybox.

Usage (integration tests)::

    from tests.support.images import push_all, register
    fixtures = push_all(registry)          # {"latest": Series, "single": ..., ...}
    register(front, fixtures.values())     # history, referrers and blob kinds, per repo
    front.save_baseline()                  # in a session fixture, so reset() keeps them

``fixtures/python:latest`` (``push_build_series``), oldest first; each build an OCI index of
linux/amd64 and linux/arm64 (arm64 with variant v8) apk images (busybox, an OLDER apk database
in a lower layer, the current one above it with a whiteout of ``etc/motd``, an app layer)::

    0  SPDX via cosign's .att tag; the index also has buildkit attestation-manifest entries
       (platform unknown/unknown, annotation vnd.docker.reference.digest)
    1  only arm64 changed (openssl 3.3.0-r1); amd64 is build 0's manifest, same digest.
       arm64: SPDX through the referrers API (Sigstore bundle v0.3)
    2  python-3.12 3.12.4 and Env PYTHON_VERSION, +libexpat1, -ncurses, bigger; referrers on
       both (amd64 also lists a SLSA provenance bundle first and a notary signature)
    3  openssl 3.3.1-r0, a label added; ``lib/apk/db`` is an opaque folder; the .att holds a
       CycloneDX layer and then an SPDX one
    4  zlib 1.3.1-r1, User 65532 -> 0; CycloneDX only
    5  no linux/arm64 at all; no attestation (layer fallback); +libffi; bigger
    6  busybox 1.36.1-r7, Cmd; amd64's .att SPDX names build 5's amd64 digest as its subject
       and lists ``wrong-subject-marker`` (must be refused: layers are used); arm64 referrers

``fixtures/python:single`` (``push_single_platform_series``): three plain linux/amd64
manifests: apk database; database whited out (no package data, Entrypoint added); database
back in a layer above the whiteout. ``fixtures/debian:dpkg``: two builds with
``var/lib/dpkg/status`` (continuation lines, an older copy below, a ``deinstall`` record).
``fixtures/debian:distroless``: two builds with ``var/lib/dpkg/status.d/<pkg>`` files, a
whiteout of one entry, then an opaque folder.

Every image's amd64 variant runs in the private dockerd (``cat /build`` prints its marker).
``Series`` (model.py) holds per build the digests, per platform the manifest, config, layers,
package sets, attestation way and source, and ``expected_diff`` between any two builds.
The front serves the referrers API for the registered repos (``referrers`` mode: on, off,
ignore_filter) and classifies blob downloads (``Front.blob_downloads``).

``python -m tests.support.images REGISTRY_URL`` pushes everything and prints the front's
``repos`` configuration as JSON, for scripts (demo.sh) that start the front from a file.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from .catalog import (
    push_build_series,
    push_distroless_series,
    push_dpkg_series,
    push_single_platform_series,
)
from .model import Build, ExpectedDiff, PlatformImage, Series, config_changes, package_changes
from .oci import HasUrl
from .series import WRONG_SUBJECT_MARKER

__all__ = [
    "WRONG_SUBJECT_MARKER",
    "Build",
    "ExpectedDiff",
    "PlatformImage",
    "Series",
    "config_changes",
    "package_changes",
    "push_all",
    "push_build_series",
    "push_distroless_series",
    "push_dpkg_series",
    "push_single_platform_series",
    "register",
    "repo_configs",
]


class FrontLike(Protocol):
    def set_repo(self, name: str, config: dict[str, Any] | None = None,
                 **overrides: Any) -> None: ...


def push_all(registry: HasUrl, end: datetime | None = None) -> dict[str, Series]:
    """Every series, keyed by tag: latest, single (fixtures/python), dpkg, distroless
    (fixtures/debian). ``end`` is the newest build's time (default: a little before now)."""
    return {
        "latest": push_build_series(registry, end=end),
        "single": push_single_platform_series(registry, end=end),
        "dpkg": push_dpkg_series(registry, end=end),
        "distroless": push_distroless_series(registry, end=end),
    }


def repo_configs(series: Iterable[Series], referrers: str = "on",
                 public: bool = True) -> dict[str, dict[str, Any]]:
    """The front's REPO configuration for each repository the series live in: history per
    tag, all tags public (cosign's .att tags too, as cgr.dev serves them to anyone), the
    referrers descriptors, the blob kinds."""
    out: dict[str, dict[str, Any]] = {}
    for s in series:
        cfg = out.setdefault(s.repo, {"public": public, "public_tags": [], "history": {},
                                      "referrers": referrers, "referrer_manifests": {},
                                      "blob_kinds": {}})
        cfg["public_tags"] = sorted({*cfg["public_tags"], *s.tags, s.tag, "latest",
                                     "latest-dev"})
        cfg["history"][s.tag] = [list(e) for e in s.history]
        for subject, descriptors in s.referrers.items():
            known = cfg["referrer_manifests"].setdefault(subject, [])
            known.extend(d for d in descriptors if d not in known)
        cfg["blob_kinds"].update(s.blob_kinds)
    return out


def register(front: FrontLike, series: Iterable[Series], referrers: str = "on",
             public: bool = True) -> None:
    """Configure ``front`` (a Front or RemoteFront) to serve ``series``; replaces the
    configuration of their repositories."""
    for repo, cfg in repo_configs(series, referrers, public).items():
        front.set_repo(repo, cfg)
