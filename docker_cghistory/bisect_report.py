"""What a finished bisect prints: git bisect's ``key: value`` lines, or one JSON object.

Why its own module: rendering is read by people and scripts (``grep``, ``jq``) and changes for
their sake, never for the search's; it takes a finished ``Bisection`` and its ``Result`` and
returns text, so ``commands/bisect.py`` decides where it goes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import diffreport
from .changes import to_json
from .errors import sanitize

if TYPE_CHECKING:
    from .bisect import Bisection, Candidate
    from .bisect_search import Result



def pin_command(program: str, last_good: Candidate,
                candidates: Sequence[Candidate] = ()) -> str:
    """The ``pin`` command that writes the last good build, and only it, into Dockerfiles and
    compose files: ``--image`` names the bisected tag (its full name, which reads the same
    whatever ``--registry``/``--org`` defaults the user has), so no other image moves, and
    ``--digest`` names the build.

    The digest is cut where ``list`` cuts it (12 characters), longer only if another digest
    among ``candidates`` shares that prefix. ``pin --digest`` resolves a prefix over the whole
    history and refuses an ambiguous one, so the command can never pin another build.
    """
    digest = last_good.build.digest.split(":", 1)[1]
    others = {c.build.digest.split(":", 1)[1] for c in candidates} - {digest}
    length = len(last_good.build.short)
    while length < len(digest) and any(other.startswith(digest[:length]) for other in others):
        length += 1
    return f"{program} pin --image {last_good.reference.tagged} --digest {digest[:length]}"


def from_line(last_good: Candidate) -> str:
    return f"FROM {last_good.reference.tagged}@{last_good.build.digest}"


def _every_build(bisection: Bisection) -> list[Candidate]:
    return [build for candidate in bisection.candidates for build in candidate.group]


def _between(result: Result, missing: Sequence[Candidate],
             bisection: Bisection) -> list[Candidate]:
    """The builds without the platform's image between the last good and the first bad
    build: left out of the search, they are where the answer could hide."""
    if result.first_bad is None:
        return []
    newer = bisection.candidates[result.last_good].position
    older = bisection.candidates[result.first_bad].first.position
    return [c for c in missing if older < c.position < newer]


def _changes_text(changes: diffreport.DiffReport | str | None) -> list[str]:
    """The "What changed" section: ``diff``'s own report, or one line saying why not."""
    if changes is None:
        return []
    if isinstance(changes, str):
        return ["", f"What changed: could not be read: {sanitize(changes, limit=300)}"]
    return ["", "What changed (last good → first bad):",
            *diffreport.render_text(changes).rstrip("\n").split("\n")]


def render_text(bisection: Bisection, result: Result, program: str, *,
                platform: str | None = None, missing: Sequence[Candidate] = (),
                changes: diffreport.DiffReport | str | None = None) -> str:
    """git bisect's shape: ``key: value`` lines a person reads and ``grep``/``cut`` take apart,
    then what changed between the last good and the first bad build."""
    candidates = bisection.candidates
    last_good = candidates[result.last_good]
    lines = []
    if result.first_bad is not None:
        first_bad = candidates[result.first_bad].first
        lines.append(f"first bad build: {first_bad.pinned} ({first_bad.updated})")
        lines += [f"same image: {c.pinned} ({c.updated})"
                  for c in candidates[result.first_bad].group[1:]]
    else:
        lines.append("the first bad build is one of:")
        for index in result.candidates:
            candidate = candidates[index].first
            tag = "skipped" if index != result.candidates[-1] else "bad"
            lines.append(f"  {candidate.pinned} ({candidate.updated}) {tag}")
    lines += [f"no {platform} image: {c.pinned} ({c.updated})"
              for c in _between(result, missing, bisection)]
    lines.append(f"last good build: {last_good.pinned} ({last_good.updated})")
    lines.append(from_line(last_good))
    lines.append(f"tested: {bisection.tested} builds, skipped: {bisection.skipped}")
    lines.append(f"pin: {pin_command(program, last_good, _every_build(bisection))}")
    lines += _changes_text(changes)
    return "\n".join(lines) + "\n"


def render_json(bisection: Bisection, result: Result, program: str, *,
                platform: str | None = None, missing: Sequence[Candidate] = (),
                changes: diffreport.DiffReport | str | None = None) -> str:
    """The result as one JSON object, keyed the way docker (and ``list``) key JSON: PascalCase.

    ``Changes`` has the ``{"Added", "Removed", "Changed"}`` shape of ``list --changes`` (null
    when there is no first bad build, no package data on a side, or the diff could not be
    read); ``Diff`` is ``diff --format json``'s whole object (config and size too), or null.
    With ``--platform``: ``Platform``, ``SameImage`` (the other builds sharing the first bad
    build's image) and ``NoImage`` (builds without it between last good and first bad).
    """
    candidates = bisection.candidates
    last_good = candidates[result.last_good]
    document: dict[str, Any] = {
        "FirstBad": (candidates[result.first_bad].first.as_json()
                     if result.first_bad is not None else None),
        "LastGood": last_good.as_json(),
        "FromLine": from_line(last_good),
        "Candidates": [candidates[index].first.as_json() for index in result.candidates],
        "Tested": bisection.tested,
        "Skipped": bisection.skipped,
        "Runs": [run.as_json() for run in bisection.runs],
        "PinCommand": pin_command(program, last_good, _every_build(bisection)),
    }
    if platform is not None:
        same = candidates[result.first_bad].group[1:] if result.first_bad is not None else ()
        document["Platform"] = platform
        document["SameImage"] = [c.as_json() for c in same]
        document["NoImage"] = [c.as_json() for c in _between(result, missing, bisection)]
    report = changes if isinstance(changes, diffreport.DiffReport) else None
    known = report is not None and "none" not in (report.old.source, report.new.source)
    document["Changes"] = to_json(report.packages) if report is not None and known else None
    document["Diff"] = diffreport.to_document(report) if report is not None else None
    return json.dumps(document, separators=(",", ":")) + "\n"
