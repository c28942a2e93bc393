"""Pin image references in Dockerfiles and compose files by rewriting their text in place.

Pure: readers find where references are written (``Site``) and why some are left alone
(``Skip``); the caller decides each replacement (``pinned_text`` spells it). Only the
replaced characters change. No network, no argv, no environment; the only I/O is
``discover`` (reads directories), ``read_snapshot`` and ``atomic_write``.
"""

from __future__ import annotations

from .compose import find_compose_sites
from .dockerfile import find_dockerfile_sites
from .files import (
    COMPOSE,
    DOCKERFILE,
    VCS_DIRS,
    Snapshot,
    Target,
    atomic_write,
    decode,
    discover,
    discover_targets,
    find_sites,
    find_text_sites,
    kind_by_name,
    kind_of,
    read_snapshot,
    rewrite,
)
from .pins import (
    KIND_ARG,
    KIND_COMPOSE,
    KIND_COPY_FROM,
    KIND_FROM,
    KIND_MOUNT_FROM,
    ParseFailure,
    ReadFailure,
    Site,
    Skip,
    WriteFailure,
    apply,
    line_of,
    pinned_text,
)

__all__ = [
    "COMPOSE",
    "DOCKERFILE",
    "KIND_ARG",
    "KIND_COMPOSE",
    "KIND_COPY_FROM",
    "KIND_FROM",
    "KIND_MOUNT_FROM",
    "VCS_DIRS",
    "ParseFailure",
    "ReadFailure",
    "Site",
    "Skip",
    "Snapshot",
    "Target",
    "WriteFailure",
    "apply",
    "atomic_write",
    "decode",
    "discover",
    "discover_targets",
    "find_compose_sites",
    "find_dockerfile_sites",
    "find_sites",
    "find_text_sites",
    "kind_by_name",
    "kind_of",
    "line_of",
    "pinned_text",
    "read_snapshot",
    "rewrite",
]
