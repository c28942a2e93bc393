"""The one package type that SBOMs and package databases both produce and ``changes`` compares.

A package is identified by its purl type and name, never its version: ``openssl`` going from
3.4.0-r2 to 3.4.0-r3 is one change, not a removal and an addition.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import CghistoryError


class PackageListError(CghistoryError):
    """A stored package list (the cache) that does not have the expected shape."""


@dataclass(frozen=True, order=True)
class Package:
    """``type`` is the purl type (``apk``, ``deb``, ``pypi``, ``golang``, ``generic`` ...)."""

    type: str
    name: str
    version: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.type, self.name)


def merge(packages: Iterable[Package]) -> tuple[Package, ...]:
    """One entry per key, sorted. An image can hold one name twice (a Python library in two
    virtual environments, a Go module in two binaries): the versions are joined, so a change in
    either shows, rather than one copy silently winning."""
    versions: dict[tuple[str, str], set[str]] = defaultdict(set)
    for package in packages:
        versions[package.key].add(package.version)
    return tuple(
        Package(kind, name, ", ".join(sorted(v for v in found if v) or [""]))
        for (kind, name), found in sorted(versions.items())
    )


def display_names(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The name a user sees: the plain name, or ``type/name`` when two types share it among
    ``keys`` (pass both builds' keys, so a name reads the same on both sides of a diff)."""
    keys = set(keys)
    types_of: dict[str, set[str]] = defaultdict(set)
    for kind, name in keys:
        types_of[name].add(kind)
    return {
        (kind, name): (f"{kind}/{name}" if len(types_of[name]) > 1 else name)
        for kind, name in keys
    }


def to_json(packages: Iterable[Package]) -> list[list[str]]:
    """A compact form for the on-disk cache: ``[[type, name, version], ...]``."""
    return [[p.type, p.name, p.version] for p in merge(packages)]


def from_json(data: Any) -> tuple[Package, ...]:
    """The inverse of ``to_json``; a cache entry of another shape is an error, not a guess."""
    if not isinstance(data, list):
        raise PackageListError("stored package list is not a list")
    out = []
    for row in data:
        if (
            not isinstance(row, list)
            or len(row) != 3
            or not all(isinstance(x, str) for x in row)
            or not row[1]
        ):
            raise PackageListError("stored package list has a malformed entry")
        out.append(Package(row[0], row[1], row[2]))
    return merge(out)


def by_key(packages: Iterable[Package]) -> Mapping[tuple[str, str], Package]:
    return {p.key: p for p in merge(packages)}
