"""What ``pin`` decides for each reference, and how it says so.

Pure: ``commands/pin.py`` finds the files, resolves the wanted builds and writes; this module
takes the references the readers found (``rewrite.Site``/``rewrite.Skip``) and the builds
resolved (``Wanted``), decides for each reference one status, and renders the outcome: the
``file:line: old -> new`` lines, one JSON object per reference, the summary, and diffs. Keeping
the decision here, apart from the I/O, is what lets one table of statuses describe every mode
(write, ``--dry-run``, ``--check``) and lets tests state each rule without a registry.

The rule, in one place:

- a reference without a digest is pinned to the wanted build;
- a reference with a digest is left as it is unless a build was selected (``--digest``,
  ``--index``, ``--previous``, ``--at``, ``--cooldown``) or ``--update`` was given: then it
  is compared with the wanted build, and one at another build is moved with ``--update`` or
  reported (``other-build``) without it. With neither, ``pin --check`` passes any pinned
  reference (a pin is a choice; ``--check --update`` asks for the newest build);
- a digest-only pin (``name@sha256:…``) names no tag, so no build can be wanted for it: left
  alone, and reported as skipped when a build was selected or ``--update`` given;
- with ``--platform`` (``Options.platforms``), a reference pinned to another build than the
  wanted one moves (or is reported) only when the two builds' manifests differ for at least
  one named platform, or one of the builds lacks it; otherwise it is
  ``unchanged-for-platform``. What is written is still the index digest, which works on
  every platform.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from .errors import InvalidReference, UsageError, escape_controls, sanitize
from .platforms import Platform
from .reference import DOCKER_HUB, Reference, parse_docker
from .rewrite import Site, Skip, pinned_text

PINNED = "pinned"
UPDATED = "updated"
ALREADY = "already-pinned"
OTHER = "other-build"
UNCHANGED = "unchanged-for-platform"
SKIPPED = "skipped"
FAILED = "failed"
# What each status means, for --help and the README (the order is the order of the summary).
STATUSES = (
    (PINNED, "had no digest; pinned (with --dry-run or --check: would be)"),
    (UPDATED, "had another build's digest; moved by --update (or would be)"),
    (ALREADY, "already pinned to the wanted build, or pinned and no build was asked for"),
    (OTHER, "pinned to another build than the selected one; left, --update moves it"),
    (UNCHANGED, "pinned to another build, but its image for every --platform is the selected "
     "build's; left (Reason names the platforms)"),
    (SKIPPED, "cannot be pinned or checked (a variable without default, ...): Reason says why"),
    (FAILED, "the build could not be resolved or the file could not be written"),
)
# Statuses that make ``--check`` fail: something differs from what pin would write.
VIOLATIONS = frozenset({PINNED, UPDATED, OTHER})

Key = tuple[str, str, str]  # (registry, repository, tag)
BuildKey = tuple[str, str, str]  # (registry, repository, digest)

_DIGEST_ONLY_UPDATE = ("a digest-only pin names no tag to update from; write NAME:TAG@DIGEST "
                       "to let --update move it")
_DIGEST_ONLY_SELECTED = ("a digest-only pin names no tag, so it cannot be compared with the "
                         "selected build; write NAME:TAG@DIGEST")
_OTHER_BUILD = "pinned to another build than the selected one; --update moves it"
# The selectors that name one build of one tag; --at and --cooldown name a moment, which
# means something for every tag.
_ONE_TAG_SELECTORS = ("--digest", "--index", "--previous")


@dataclass(frozen=True)
class Wanted:
    """What one distinct reference resolves to, or why it cannot be."""

    digest: str | None = None
    problem: str | None = None
    build_time: str | None = None  # Build.timestamp, when the history was read
    # The time of every build the resolution read (digest -> Build.timestamp): a pinned
    # build among them gets its time shown without another read.
    times: Mapping[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Options:
    """The flags that change decisions; ``selected``: a build selector was given."""

    update: bool = False
    check: bool = False
    digest_only: bool = False
    selected: bool = False
    platforms: tuple[Platform, ...] = ()


@dataclass(frozen=True)
class BuildPlatforms:
    """One build's manifest digest per platform, or why it could not be read."""

    found: Mapping[Platform, str] | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Verdict:
    """Whether a pin moves for the named platforms, and the words saying why."""

    moves: bool
    reason: str
    missing: bool = False  # a platform lacking on one side: the summary names it


def platform_verdict(pinned: Mapping[Platform, str], wanted: Mapping[Platform, str],
                     platforms: Sequence[Platform]) -> Verdict:
    """Same manifest for every named platform: stays. A platform lacking on either side counts
    as a change: the pinned build may never have worked there, or the new one no longer does."""
    reasons: list[str] = []
    missing = False
    for platform in dict.fromkeys(platforms):
        before, after = pinned.get(platform), wanted.get(platform)
        if before is None or after is None:
            missing = True
            side = "pinned" if before is None else "selected"
            both = before is None and after is None
            reasons.append(f"neither build has {platform}" if both
                           else f"the {side} build has no {platform}")
        elif before != after:
            reasons.append(f"{platform} changed")
    if reasons:
        return Verdict(True, "; ".join(reasons), missing)
    return Verdict(False, "unchanged for " + ", ".join(map(str, dict.fromkeys(platforms))))


def key_of(reference: Reference) -> Key:
    return reference.registry, reference.repository, reference.tag_or_latest


def digest_only_pin(site: Site) -> bool:
    """``name@sha256:…``: which tag it came from is unknown, so it is never moved."""
    return site.pinned and site.reference.tag is None


# --------------------------------------------------------------------------- --image
def _host(registry: str) -> str:
    host = registry.lower()
    return DOCKER_HUB if host in ("index.docker.io", "registry-1.docker.io") else host


def matches(filters: Sequence[Reference], reference: Reference) -> bool:
    """Whether ``--image`` selects this reference (no filter selects all).

    A filter without a tag takes every tag of the image; one with a tag takes that tag, a
    reference written without one counting as ``latest``. A digest-only pin names no tag, so
    only a filter without a tag takes it.
    """
    if not filters:
        return True
    for wanted in filters:
        if (_host(wanted.registry), wanted.repository) != (_host(reference.registry),
                                                            reference.repository):
            continue
        if wanted.tag is None:
            return True
        if (reference.tag is not None or reference.digest is None) and (
                reference.tag_or_latest == wanted.tag):
            return True
    return False


def check_scope(filters: Sequence[Reference], flag: str | None) -> None:
    """``--digest``, ``--index`` and ``--previous`` name a build of one tag: the ``--image``
    filters must name exactly that tag, or the same number would mean a different build in
    every image of the tree."""
    if flag not in _ONE_TAG_SELECTORS:
        return
    tags = {(_host(f.registry), f.repository, f.tag) for f in filters}
    if len(tags) == 1 and next(iter(tags))[2] is not None:
        return
    if not filters:
        got = "no --image was given"
    elif any(f.tag is None for f in filters):
        untagged = next(f for f in filters if f.tag is None)
        got = f"--image {untagged.name} names every tag of that image"
    else:
        got = f"the --image filters name {len(tags)} tags"
    raise UsageError(f"{flag} picks a build of one tag: give exactly one --image IMAGE:TAG "
                     f"(for example --image python:latest); {got}")


# --------------------------------------------------------------------------- decisions
@dataclass(frozen=True)
class Outcome:
    """One reference's fate. ``new`` is what pin writes, would write (``--dry-run``,
    ``--check``), or would write with ``--update`` (``other-build``); ``None`` otherwise."""

    path: str
    line: int | None
    old: str | None
    new: str | None
    status: str
    reason: str | None = None
    site: Site | None = field(default=None, compare=False)
    missing: bool = field(default=False, compare=False)  # moved: a platform is lacking

    @property
    def where(self) -> str:
        return f"{sanitize(self.path)}:{self.line}" if self.line else sanitize(self.path)

    def as_json(self) -> dict[str, object]:
        """docker's PascalCase keys, as ``list`` and ``bisect`` write them."""
        return {"File": self.path, "Line": self.line, "Old": self.old, "New": self.new,
                "Status": self.status, "Reason": self.reason}

    def change(self) -> str:
        return f"{self.where}: {self.old} -> {self.new}"


def needs_build(site: Site, options: Options) -> bool:
    """Whether the wanted build of this reference must be resolved to decide."""
    if digest_only_pin(site):
        return False
    return not site.pinned or options.update or options.selected


def decide(site: Site, wanted: Wanted | None, options: Options,
           builds: Mapping[BuildKey, BuildPlatforms] | None = None) -> Outcome:
    """The status of one reference (see the module's rule), and its new text if any.

    ``builds``: the platforms of the pinned and wanted builds, for ``options.platforms``."""
    base = Outcome(site.path, site.line, site.text, None, ALREADY, site=site)
    if digest_only_pin(site):
        if options.update:
            return replace(base, status=SKIPPED, reason=_DIGEST_ONLY_UPDATE)
        if options.selected:
            return replace(base, status=SKIPPED, reason=_DIGEST_ONLY_SELECTED)
        return base
    if not needs_build(site, options):
        return base
    if wanted is None or wanted.digest is None:
        problem = wanted.problem if wanted is not None else None
        return replace(base, status=FAILED, reason=sanitize(problem or "not resolved"))
    if site.reference.digest == wanted.digest:
        return base
    new = pinned_text(site.text, wanted.digest, options.digest_only)
    if not site.pinned:
        return replace(base, new=new, status=PINNED)
    reason, missing = (_OTHER_BUILD if not options.update else None), False
    if options.platforms:
        verdict = _verdict(site, wanted.digest, options.platforms, builds or {})
        if isinstance(verdict, str):
            return replace(base, status=FAILED, reason=verdict)
        if not verdict.moves:
            return replace(base, status=UNCHANGED, reason=verdict.reason)
        reason = verdict.reason + ("" if options.update else "; --update moves it")
        missing = verdict.missing
    if options.update:
        return replace(base, new=new, status=UPDATED, reason=reason, missing=missing)
    return replace(base, new=new, status=OTHER, reason=reason, missing=missing)


def _verdict(site: Site, wanted: str, platforms: Sequence[Platform],
             builds: Mapping[BuildKey, BuildPlatforms]) -> Verdict | str:
    """The platform verdict, or why the builds could not be compared (a failure)."""
    reference = site.reference
    sides = []
    for digest in (reference.digest or "", wanted):
        found = builds.get((reference.registry, reference.repository, digest))
        if found is None or found.found is None:
            problem = found.problem if found is not None else "not read"
            return sanitize(f"cannot compare platforms of build {digest[:19]}…: {problem}")
        sides.append(found.found)
    return platform_verdict(sides[0], sides[1], platforms)


def skipped(skip: Skip) -> Outcome:
    return Outcome(skip.path, skip.line, skip.text, None, SKIPPED, sanitize(skip.reason))


def skip_matches(filters: Sequence[Reference], skip: Skip) -> bool:
    """A skipped reference is kept unless it reads as an image the filters exclude: one
    written with a variable (``FROM $BASE``) could be any image, so it stays."""
    if not filters:
        return True
    try:
        return matches(filters, parse_docker(skip.text))
    except InvalidReference:
        return True


def skip_names(reference: Reference, skip: Skip) -> bool:
    """Whether a skipped reference is written as this very image (not just possibly)."""
    try:
        return matches([reference], parse_docker(skip.text))
    except InvalidReference:
        return False


# --------------------------------------------------------------------------- the report
@dataclass
class Report:
    """Everything one run found and did, in file order, for every way of showing it."""

    files: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # files skipped (symlinks out of the tree)
    failures: list[str] = field(default_factory=list)
    platforms: tuple[Platform, ...] = ()  # --platform, for the summary

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def skipped(self) -> int:
        return self.count(SKIPPED) + len(self.notes)

    def violations(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.status in VIOLATIONS]

    def fail_file(self, path: str, start: int, reason: str) -> None:
        """A file that could not be written: what it would have pinned is ``failed``."""
        for position in range(start, len(self.outcomes)):
            outcome = self.outcomes[position]
            if outcome.path == path and outcome.status in (PINNED, UPDATED):
                self.outcomes[position] = replace(outcome, status=FAILED, reason=reason)

    def exit_code(self, check: bool) -> int:
        return 1 if self.failures or (check and self.violations()) else 0


def summary(report: Report, check: bool, dry_run: bool, update: bool) -> str:
    """The stderr summary: one line of counts, then a line per skip, error and hint."""
    would = dry_run or check  # nothing written: every verb says what a write would do
    pinned, other = report.count(PINNED), report.count(OTHER)
    lines = [
        f"{_plural(report.files, 'file')} scanned, {_plural(pinned, 'reference')} "
        f"{'would pin' if would else 'pinned'}, {report.count(UPDATED)} "
        f"{'would update' if would else 'updated'}, {report.count(ALREADY)} already pinned"
        + (f", {other} pinned to other builds" if other else "")
        + (f", {report.count(UNCHANGED)} unchanged for "
           f"{', '.join(map(str, report.platforms))}" if report.platforms else "")
        + f", {report.skipped} skipped"
        + (f", {len(report.violations())} not pinned as wanted" if check else "")
        + (f", {len(report.failures)} failed" if report.failures else "")
    ]
    lines += [f"  skipped {note}" for note in report.notes]
    lines += [f"  skipped {outcome.where}: {sanitize(outcome.old)}: {outcome.reason}"
              for outcome in report.outcomes if outcome.status == SKIPPED]
    if not check:  # --check lists them on stdout with the other differences
        lines += [f"  other build {outcome.where}: {outcome.old}"
                  for outcome in report.outcomes if outcome.status == OTHER]
    lines += [f"  {'would move' if would else 'moved'} {outcome.where}: "
              f"{outcome.reason}" for outcome in report.outcomes
              if outcome.missing and outcome.status in (UPDATED, OTHER)]
    lines += [f"  error: {line}" for line in report.failures]
    if other and not update:
        them = "it" if other == 1 else "them"
        lines.append(f"  {_plural(other, 'reference')} pinned to other builds than the "
                     f"selected one: --update moves {them}")
    return "\n".join(lines) + "\n"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def json_lines(outcomes: Iterable[Outcome]) -> str:
    """One JSON object per reference and line (``jq -c``-friendly), as ``list`` writes JSON."""
    return "".join(json.dumps(outcome.as_json(), separators=(",", ":")) + "\n"
                   for outcome in outcomes)


# --------------------------------------------------------------------------- diffs
_COLOURS = {"-": "\x1b[31m", "+": "\x1b[32m", "@": "\x1b[36m", "header": "\x1b[1m"}
_RESET = "\x1b[0m"


def diff(path: str, old: bytes, new: bytes, colour: bool = False) -> str:
    """A unified diff ``git apply`` takes, with the file's control characters made visible.

    The text is the user's file, possibly hostile: an escape sequence in a comment must not
    reach the terminal. Tabs and line endings (``\\r\\n`` included) are kept as they are.
    ``colour`` paints it as ``git diff`` does on a terminal (headers bold, hunks cyan, removed
    red, added green); the escapes are ours, added after the file's own were made visible, and
    each is closed before its line ends.
    """
    shown = sanitize(path)
    out: list[str] = []
    for line in difflib.unified_diff(_lines(old), _lines(new), f"a/{shown}", f"b/{shown}"):
        body, newline = (line[:-1], "\n") if line.endswith("\n") else (line, "")
        carriage = "\r" if newline and body.endswith("\r") else ""
        if carriage:
            body = body[:-1]
        body = escape_controls(body, keep="\t")
        if colour:
            kind = "header" if body.startswith(("--- ", "+++ ")) else body[:1]
            if kind in _COLOURS:
                body = f"{_COLOURS[kind]}{body}{_RESET}"
        out.append(body + carriage + newline)
        if not newline:
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)


def _lines(data: bytes) -> list[str]:
    """Lines as git counts them (``\\n`` only; ``str.splitlines`` also splits at \\x1c, \\f…)."""
    parts = data.decode("utf-8").split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines
