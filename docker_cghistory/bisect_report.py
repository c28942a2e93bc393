"""What a finished bisect prints: git bisect's ``key: value`` lines, or one JSON object.

Why its own module: rendering is read by people and scripts (``grep``, ``jq``) and changes for
their sake, never for the search's; it takes a finished ``Bisection`` and its ``Result`` and
returns text, so ``commands/bisect.py`` decides where it goes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

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


def render_text(bisection: Bisection, result: Result, program: str) -> str:
    """git bisect's shape: ``key: value`` lines a person reads and ``grep``/``cut`` take apart."""
    candidates = bisection.candidates
    last_good = candidates[result.last_good]
    lines = []
    if result.first_bad is not None:
        first_bad = candidates[result.first_bad]
        lines.append(f"first bad build: {first_bad.pinned} ({first_bad.updated})")
    else:
        lines.append("the first bad build is one of:")
        for index in result.candidates:
            candidate = candidates[index]
            tag = "skipped" if index != result.candidates[-1] else "bad"
            lines.append(f"  {candidate.pinned} ({candidate.updated}) {tag}")
    lines.append(f"last good build: {last_good.pinned} ({last_good.updated})")
    lines.append(from_line(last_good))
    lines.append(f"tested: {bisection.tested} builds, skipped: {bisection.skipped}")
    lines.append(f"pin: {pin_command(program, last_good, candidates)}")
    return "\n".join(lines) + "\n"


def render_json(bisection: Bisection, result: Result, program: str) -> str:
    """The result as one JSON object, keyed the way docker (and ``list``) key JSON: PascalCase."""
    candidates = bisection.candidates
    last_good = candidates[result.last_good]
    document = {
        "FirstBad": (candidates[result.first_bad].as_json()
                     if result.first_bad is not None else None),
        "LastGood": last_good.as_json(),
        "FromLine": from_line(last_good),
        "Candidates": [candidates[index].as_json() for index in result.candidates],
        "Tested": bisection.tested,
        "Skipped": bisection.skipped,
        "Runs": [run.as_json() for run in bisection.runs],
        "PinCommand": pin_command(program, last_good, candidates),
    }
    return json.dumps(document, separators=(",", ":")) + "\n"
