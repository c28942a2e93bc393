"""``pin --changes`` and ``pin --format markdown`` rendered: what moving each pin changes.

Pure: the moves (an image from one build to another, and where it is written) and ``diff``'s
reports in, text out. One block per distinct move, not per reference: a tag written in forty
files moves once and changes the same things everywhere, so it is shown once with its places.
The Markdown is meant as a scheduled job's pull request body: a table of the images moved,
then per image ``diff``'s own Markdown (a package table old -> new), so the two commands show
one answer the same way. Everything from a registry or a file is escaped (``diffreport``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from . import diffreport
from .changes import summary
from .diffreport import ARROW, NO_PACKAGES, DiffReport, _cell, _code, _value
from .errors import sanitize

# Places listed per move before "+N more" (a tag may be written in hundreds of files).
SHOWN_PLACES = 6
# Width of the package summary line (changes.summary cuts it with an ellipsis).
SUMMARY_WIDTH = 400


class Moved:
    """One distinct move as shown: image, both digests, the places, and what it changes."""

    __slots__ = ("image", "new", "old", "places", "problem", "report")

    def __init__(self, image: str, old: str, new: str, places: Sequence[str],
                 report: DiffReport | None = None, problem: str | None = None) -> None:
        self.image, self.old, self.new = image, old, new
        self.places = list(places)
        self.report, self.problem = report, problem


def _short(digest: str) -> str:
    return "sha256:" + digest.split(":", 1)[-1][:12]


def _places(places: Sequence[str]) -> str:
    shown = ", ".join(places[:SHOWN_PLACES])
    more = len(places) - SHOWN_PLACES
    return shown + (f" (+{more} more)" if more > 0 else "")


def _report_lines(report: DiffReport) -> list[str]:
    """The indented summary of one diff: packages, config, size; one line when identical."""
    if report.identical:
        return [diffreport.identical_line(report)]
    lines = []
    if report.old.source == "none" or report.new.source == "none":
        lines.append(f"packages: no package data for one of the builds ({NO_PACKAGES})")
    else:
        words = summary(report.packages, SUMMARY_WIDTH)
        lines.append(f"packages: {sanitize(words, limit=SUMMARY_WIDTH) or 'no change'}")
    if report.config:
        lines.append("config: " + ", ".join(
            f"{sanitize(c.field)} {_value(c.old)} {ARROW} {_value(c.new)}"
            for c in report.config))
    lines.append(f"size: {diffreport.size_change(report.old.size, report.new.size)}")
    return lines


def render_text(moves: Sequence[Moved], platform: str) -> str:
    """The ``--changes`` section of the text output (stdout, after pin's own lines)."""
    if not moves:
        return ""
    out = [f"What moving the pins changes ({platform}):"]
    for move in moves:
        out.append(f"  {sanitize(move.image)}  {_short(move.old)} {ARROW} {_short(move.new)}"
                   f"  ({_places(move.places)})")
        if move.report is not None:
            out += [f"    {line}" for line in _report_lines(move.report)]
        else:
            out.append(f"    what changed could not be read: {move.problem or 'unknown'}")
    return "\n".join(out) + "\n"


def render_markdown(moves: Sequence[Moved], platform: str | None, verb: str = "moved") -> str:
    """A pull request body: the table of images moved, then (``--changes``) each one's
    packages. ``platform`` is ``None`` without ``--changes``."""
    if not moves:
        return "No pinned image moves.\n"
    lines = [f"## Pinned images {verb}", "", "| Image | From | To | Where |",
             "| --- | --- | --- | --- |"]
    lines += [f"| {_code(sanitize(m.image))} | {_code(_short(m.old))} | {_code(_short(m.new))}"
              f" | {_cell(_places(m.places))} |" for m in moves]
    if platform is None:
        return "\n".join(lines) + "\n"
    lines += ["", f"What each move changes for {platform}:"]
    for move in moves:
        lines.append("")
        if move.report is not None:
            lines.append(diffreport.render_markdown(move.report).rstrip("\n"))
        else:
            lines += [f"### {_cell(move.image)}", "",
                      f"What changed could not be read: {_cell(move.problem or 'unknown')}"]
    return "\n".join(lines) + "\n"


def group(places: Mapping[tuple[str, str, str], Sequence[str]],
          reports: Mapping[tuple[str, str, str], tuple[DiffReport | None, str | None]]
          ) -> list[Moved]:
    """``(image, old, new)`` -> places and -> (report, problem), as ``Moved`` in image order."""
    out = []
    for key in sorted(places):
        report, problem = reports.get(key, (None, None))
        out.append(Moved(key[0], key[1], key[2], places[key], report, problem))
    return out
