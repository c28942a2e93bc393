"""What changed between two builds: packages, config and size, as data every output shares.

``diff``, ``list --changes``, bisect's result and ``pin --changes`` all show the same
``{"Added", "Removed", "Changed"}`` answer, so it is computed and serialised here once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .packages import Package, by_key, display_names
from .platforms import ManifestError, layer_descriptors, load_document

WHOLE_FIELDS = ("User", "Entrypoint", "Cmd", "WorkingDir", "ExposedPorts", "Volumes",
                "StopSignal")
ELLIPSIS = "…"


@dataclass(frozen=True, order=True)
class PackageVersion:
    name: str
    version: str


@dataclass(frozen=True, order=True)
class PackageChange:
    name: str
    old: str
    new: str


@dataclass(frozen=True)
class PackageChanges:
    """Each tuple sorted by name."""

    added: tuple[PackageVersion, ...] = ()
    removed: tuple[PackageVersion, ...] = ()
    changed: tuple[PackageChange, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def inverted(self) -> PackageChanges:
        """The same changes seen the other way round (``diff NEW OLD``)."""
        return PackageChanges(
            added=self.removed, removed=self.added,
            changed=tuple(PackageChange(c.name, c.new, c.old) for c in self.changed))

    def names(self) -> list[str]:
        """For ``-q``: every name that changed, was added or removed, sorted."""
        return sorted({*(p.name for p in self.added), *(p.name for p in self.removed),
                       *(c.name for c in self.changed)})


def diff_packages(old: Iterable[Package], new: Iterable[Package]) -> PackageChanges:
    before, after = by_key(old), by_key(new)
    shown = display_names([*before, *after])
    added = sorted(PackageVersion(shown[k], p.version) for k, p in after.items()
                   if k not in before)
    removed = sorted(PackageVersion(shown[k], p.version) for k, p in before.items()
                     if k not in after)
    changed = sorted(PackageChange(shown[k], before[k].version, p.version)
                     for k, p in after.items() if k in before and before[k].version != p.version)
    return PackageChanges(tuple(added), tuple(removed), tuple(changed))


def to_json(changes: PackageChanges) -> dict[str, list[dict[str, str]]]:
    return {
        "Added": [{"Name": p.name, "Version": p.version} for p in changes.added],
        "Removed": [{"Name": p.name, "Version": p.version} for p in changes.removed],
        "Changed": [{"Name": c.name, "Old": c.old, "New": c.new} for c in changes.changed],
    }


def summary(changes: PackageChanges, width: int) -> str:
    """``openssl 3.4.0-r3, +libexpat1, -ncurses``: changed (new version), added, removed; cut
    to ``width`` characters with an ellipsis. Empty when nothing changed."""
    words = [f"{c.name} {c.new}" for c in changes.changed]
    words += [f"+{p.name}" for p in changes.added]
    words += [f"-{p.name}" for p in changes.removed]
    text = ", ".join(words)
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    return text[: width - 1].rstrip(", ") + ELLIPSIS


@dataclass(frozen=True)
class ConfigChange:
    """``old``/``new``: JSON values, None where absent."""

    field: str
    old: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        return {"Field": self.field, "Old": self.old, "New": self.new}


def _inner(config: bytes | str | Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The image config blob's ``config`` object (or that object itself)."""
    if config is None:
        return {}
    if isinstance(config, (bytes, bytearray, str)):
        config = load_document(config, "image config")
    if not isinstance(config, Mapping):
        raise ManifestError("image config is not a JSON object")
    inner = config.get("config", config) if "config" in config else config
    if inner is None:
        return {}
    if not isinstance(inner, Mapping):
        raise ManifestError("image config's config is not a JSON object")
    return inner


def _env(values: Any) -> dict[str, str]:
    if not values:
        return {}
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ManifestError("image config Env is not a list of strings")
    out = {}
    for item in values:  # a later entry overrides an earlier one, as in docker
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _labels(values: Any) -> dict[str, str]:
    if not values:
        return {}
    if not isinstance(values, Mapping) or not all(isinstance(v, str) for v in values.values()):
        raise ManifestError("image config Labels is not an object of strings")
    return dict(values)


def _whole(value: Any) -> Any:
    # Empty and absent mean the same to docker (no user = root, no Cmd = none); a set such as
    # ExposedPorts ({"8080/tcp": {}}) reads better as its sorted keys.
    if value in (None, "", [], {}):
        return None
    if isinstance(value, Mapping):
        return sorted(value)
    return value


def diff_config(old_config: bytes | str | Mapping[str, Any] | None,
                new_config: bytes | str | Mapping[str, Any] | None) -> list[ConfigChange]:
    """Changes in a fixed order: User, Entrypoint, Cmd, WorkingDir, Env.*, Labels.*,
    ExposedPorts, Volumes, StopSignal; keys of Env and Labels sorted."""
    old, new = _inner(old_config), _inner(new_config)
    out: list[ConfigChange] = []

    def whole(name: str) -> None:
        before, after = _whole(old.get(name)), _whole(new.get(name))
        if before != after:
            out.append(ConfigChange(name, before, after))

    def keyed(prefix: str, before: dict[str, str], after: dict[str, str]) -> None:
        for key in sorted({*before, *after}):
            if before.get(key) != after.get(key):
                out.append(ConfigChange(f"{prefix}.{key}", before.get(key), after.get(key)))

    for name in WHOLE_FIELDS[:4]:
        whole(name)
    keyed("Env", _env(old.get("Env")), _env(new.get("Env")))
    keyed("Labels", _labels(old.get("Labels")), _labels(new.get("Labels")))
    for name in WHOLE_FIELDS[4:]:
        whole(name)
    return out


@dataclass(frozen=True)
class ImageSize:
    """Total compressed layer bytes, as the registry stores them, and the number of layers."""

    total: int
    layers: int


def size_of(manifest: bytes | str | Mapping[str, Any]) -> ImageSize:
    """From an image manifest (not an index); each layer descriptor validated."""
    found = layer_descriptors(manifest)
    return ImageSize(sum(d.size for d in found), len(found))
