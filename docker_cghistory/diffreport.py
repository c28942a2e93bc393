"""``diff``'s answer rendered: the terminal report, ``--format json``, ``markdown`` and ``-q``.

Why it looks like this:
- Pure: a ``DiffReport`` (what two builds hold for one platform, already compared by
  ``changes``) in, text out. The command gathers the facts; list, bisect and pin can render
  the same object later without a registry.
- Everything shown comes from a registry or an image (package names, versions, Env values):
  control characters are escaped in the text report and Markdown cells are escaped, so an
  image cannot draw on the user's terminal or break the table of a pull request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .changes import ConfigChange, ImageSize, PackageChanges, to_json
from .errors import sanitize

NO_PACKAGES = "no SBOM attestation and no apk or dpkg database"
SOURCES = {
    "sbom": "packages from the SBOM attestation",
    "layers": "packages from the layers (apk/dpkg database)",
    "none": f"no package data ({NO_PACKAGES})",
}
ARROW = "→"


@dataclass(frozen=True)
class Side:
    """One of the two builds. ``index`` and ``updated`` are ``None`` for a build named by a
    full reference (no history was read)."""

    index: int | None
    digest: str
    platform_digest: str
    updated: str | None
    source: str = "none"
    size: ImageSize = field(default_factory=lambda: ImageSize(0, 0))

    @property
    def short(self) -> str:
        return self.digest.split(":", 1)[-1][:12]

    def label(self) -> str:
        """``#1 3f9a1c2b4d5e`` (or the short digest alone)."""
        return f"#{self.index} {self.short}" if self.index is not None else self.short

    def to_json(self) -> dict[str, Any]:
        return {"Index": self.index, "Digest": self.digest,
                "PlatformDigest": self.platform_digest, "Updated": self.updated}


@dataclass(frozen=True)
class DiffReport:
    """What changed for ``platform`` between ``old`` and ``new``.

    ``identical``: the platform manifest is the same in both builds; ``others`` then names the
    platforms in which the builds do differ.
    """

    image: str
    platform: str
    old: Side
    new: Side
    packages: PackageChanges = field(default_factory=PackageChanges)
    config: tuple[ConfigChange, ...] = ()
    identical: bool = False
    others: tuple[str, ...] = ()

    @property
    def differs(self) -> bool:
        """What ``--exit-code`` judges: the chosen platform's image, nothing else."""
        return not self.identical


# --- units ---------------------------------------------------------------------------------


def human_size(size: int) -> str:
    """Decimal units, as docker prints image sizes (``12.3 MB``)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def size_change(old: ImageSize, new: ImageSize) -> str:
    """``12.3 MB → 12.5 MB (+204,800 bytes)``, and the layer count when it moved."""
    delta = new.total - old.total
    text = f"{human_size(old.total)} {ARROW} {human_size(new.total)} ({delta:+,} bytes)"
    if old.layers != new.layers:
        text += f", {old.layers} {ARROW} {new.layers} layers"
    return text


def _value(value: Any) -> str:
    """A config value as one line: strings bare, lists and the rest as JSON, absent marked."""
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return sanitize(value, limit=200)
    return sanitize(json.dumps(value, ensure_ascii=False), limit=200)


# --- json ----------------------------------------------------------------------------------


def to_document(report: DiffReport) -> dict[str, Any]:
    """The issue's keys, in its order; lists empty when the platform image is identical."""
    return {
        "Image": report.image,
        "Platform": report.platform,
        "Old": report.old.to_json(),
        "New": report.new.to_json(),
        "Source": {"Old": report.old.source, "New": report.new.source},
        "Packages": to_json(report.packages),
        "Config": [change.to_json() for change in report.config],
        "Size": {"Old": report.old.size.total, "New": report.new.size.total},
        "Identical": report.identical,
    }


def render_json(report: DiffReport) -> str:
    return json.dumps(to_document(report), ensure_ascii=False) + "\n"


# --- -q ------------------------------------------------------------------------------------


def render_quiet(report: DiffReport) -> str:
    names = report.packages.names()
    return "".join(sanitize(name, limit=200) + "\n" for name in names)


# --- the terminal report -------------------------------------------------------------------


def identical_line(report: DiffReport) -> str:
    """The one line of an identical platform image, naming where the builds do differ."""
    where = (f"the builds differ only in {', '.join(report.others)}" if report.others
             else "the builds do not differ")
    return (f"{report.platform} image {report.new.platform_digest[:19]}… is identical in "
            f"{report.old.label()} and {report.new.label()}; {where}")


def _aligned(rows: list[tuple[str, str]], indent: str = "  ") -> list[str]:
    width = max((len(left) for left, _ in rows), default=0)
    return [f"{indent}{left:<{width}}  {right}".rstrip() for left, right in rows]


def _source_text(side: Side) -> str:
    return SOURCES.get(side.source, side.source)


def _header(report: DiffReport) -> list[str]:
    lines = [f"{sanitize(report.image)}  {report.platform}"]
    rows = []
    for word, side in (("old", report.old), ("new", report.new)):
        when = side.updated or "(by digest)"
        rows.append((f"{word} {side.label()}", f"{when}  {_source_text(side)}"))
    return lines + _aligned(rows)


def render_text(report: DiffReport) -> str:
    """The readable report: header, packages, config, size; one line when identical."""
    if report.identical:
        return identical_line(report) + "\n"
    lines = _header(report)
    changes = report.packages
    sections: list[tuple[str, list[tuple[str, str]]]] = [
        ("Packages changed", [(c.name, f"{c.old} {ARROW} {c.new}") for c in changes.changed]),
        ("Packages added", [(p.name, p.version) for p in changes.added]),
        ("Packages removed", [(p.name, p.version) for p in changes.removed]),
        ("Config", [(c.field, f"{_value(c.old)} {ARROW} {_value(c.new)}")
                    for c in report.config]),
    ]
    for title, rows in sections:
        if rows:
            lines += ["", f"{title} ({len(rows)})" if title != "Config" else title]
            lines += _aligned([(sanitize(left), sanitize(right, limit=400))
                               for left, right in rows])
    if not changes and not report.config and report.old.source != "none" \
            and report.new.source != "none":
        lines += ["", "No package or config change."]
    lines += ["", "Size", f"  {size_change(report.old.size, report.new.size)}"]
    return "\n".join(lines) + "\n"


# --- markdown ------------------------------------------------------------------------------


def _cell(text: object) -> str:
    """A table cell: one line, pipes and backticks escaped, HTML not interpreted."""
    value = sanitize(text if text is not None else "", limit=200)
    for char in ("\\", "|", "`", "<", ">", "*", "_", "[", "]"):
        value = value.replace(char, "\\" + char)
    return value


def _code(text: str) -> str:
    return f"`{text.replace('`', '')}`"


def render_markdown(report: DiffReport) -> str:
    """A short report for a pull request or an issue: the packages as a table."""
    old, new = report.old, report.new
    title = (f"### {_cell(report.image)} ({report.platform}): {_cell(old.label())} {ARROW} "
             f"{_cell(new.label())}")
    if report.identical:
        return f"{title}\n\n{_cell(identical_line(report))}\n"
    lines = [title, ""]
    for word, side in (("Old", old), ("New", new)):
        when = f", {side.updated}" if side.updated else ""
        lines.append(f"- {word}: {_code(side.digest)}{when}; {_source_text(side)}")
    lines.append("")
    changes = report.packages
    rows = ([(c.name, c.old, c.new) for c in changes.changed]
            + [(p.name, "", p.version) for p in changes.added]
            + [(p.name, p.version, "") for p in changes.removed])
    if rows:
        lines += ["| Package | Old | New |", "| --- | --- | --- |"]
        lines += [f"| {_cell(name)} | {_cell(a)} | {_cell(b)} |" for name, a, b in rows]
    elif old.source == "none" or new.source == "none":
        lines.append(f"No package data for one of the builds ({NO_PACKAGES}).")
    else:
        lines.append("No package changes.")
    if report.config:
        lines += ["", "| Config | Old | New |", "| --- | --- | --- |"]
        lines += [f"| {_cell(c.field)} | {_cell(_value(c.old))} | {_cell(_value(c.new))} |"
                  for c in report.config]
    lines += ["", f"Size: {size_change(old.size, new.size)}"]
    return "\n".join(lines) + "\n"


def render(report: DiffReport, fmt: str | None, quiet: bool = False) -> str:
    """The chosen output: ``-q`` names, ``json``, ``markdown``, or the text report."""
    if quiet:
        return render_quiet(report)
    if fmt == "json":
        return render_json(report)
    if fmt == "markdown":
        return render_markdown(report)
    return render_text(report)
