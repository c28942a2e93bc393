"""Bisecting a tag's builds: BUILD values, the candidates, and the loop that tests them.

Pure: nothing here pulls, runs or prints. ``bisect_search.Search`` is the bare state: it says
which candidate to test next and takes the verdict back, never knowing what a build is.
``Bisection`` puts real builds (``Candidate``) behind it and drives it with a tester and a
logger it is given; ``commands/bisect.py`` passes one that pulls the build and runs the
user's command (``testcommand.py``) and a logger to stderr. ``bisect_report`` renders the
result. Their names are re-exported here: ``bisect`` is the one name callers import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from .bisect_report import from_line, pin_command, render_json, render_text
from .bisect_search import (
    SKIP_CODE,
    Problem,
    Result,
    Search,
    Verdict,
    classify,
    describe_status,
    max_runs,
)
from .errors import CghistoryError, Interrupted, SelectionError, UsageError, sanitize
from .history import Build
from .reference import Reference
from .selection import BUILD_HELP, INDEX_DIGITS, Selector, choose, parse_build

__all__ = [  # the search and the report are re-exported: callers import ``bisect`` alone
    "BUILD_HELP", "SKIP_CODE", "Bisection", "Candidate", "Logger", "Problem", "Result", "Run",
    "Search", "Stop", "Tester", "Undecided", "Verdict", "candidates_between", "classify",
    "describe_status", "from_line", "group_by_image", "locate", "max_runs", "parse_build",
    "pin_command", "render_json", "render_text", "resolve_build",
]


# --- BUILD values: read by ``selection.parse_build``, placed by ``selection.choose`` --------


def resolve_build(builds: Sequence[Build], selector: Selector, text: str, now: datetime) -> int:
    """The listing position (0 = newest) of the build ``selector`` names in ``builds``.

    Errors say how the value was read, since that is the surprise behind most of them.
    """
    try:
        index = choose(builds, selector, now).index
    except SelectionError as error:
        hint = ""
        if selector.kind == "index" and len(text.strip()) == INDEX_DIGITS:
            hint = f" (read as an index; for a digest prefix write sha256:{text.strip()})"
        elif selector.kind == "digest" and not text.strip().lower().startswith("sha256:"):
            hint = " (read as a digest prefix)"
        raise SelectionError(f"{selector.flag} {sanitize(text)}{hint}: {error}") from None
    assert index is not None  # choosing on the whole history always numbers the build
    return index


def locate(builds: Sequence[Build], good_text: str, bad_text: str | None,
           now: datetime) -> tuple[int, int]:
    """Listing positions of ``--good`` and ``--bad``, checked to make a range to search.

    Both are read and placed by ``selection`` (an empty history is refused there), so a
    BUILD means here what ``pull`` would pull for it.
    """
    good_selector = parse_build(good_text, "--good", now)
    bad_selector = parse_build(bad_text, "--bad", now) if bad_text is not None else None
    good = resolve_build(builds, good_selector, good_text, now)
    bad = resolve_build(builds, bad_selector, bad_text, now) if bad_selector and bad_text else 0
    describe = {position: f"#{position} sha256:{builds[position].short} "
                f"({builds[position].timestamp})" for position in (good, bad)}
    if good == bad:
        raise UsageError(f"--good and --bad are the same build, {describe[good]}")
    if good < bad:
        raise UsageError(
            f"--good {describe[good]} is newer than --bad {describe[bad]}: bisect looks for "
            "the first bad build after a good one"
        )
    return good, bad



# --- how a bisect ends ---------------------------------------------------------------------


class Stop(CghistoryError):
    """The bisect cannot go on; the message already says how far it got."""


class Undecided(CghistoryError):
    """Skipped builds hide the boundary: the result is a range, and the exit status says so."""


# --- what is tested ------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A build in the range, with what the messages and the command need to name it.

    With ``--platform`` a candidate stands for a group: consecutive builds whose manifest for
    that platform is one and the same (``image``). The candidate is the group's newest build
    (what is pulled and tested, and the last good build when the group is good); ``same``
    holds the group's older builds, oldest first, the oldest being the first bad build when
    the group is bad.
    """

    position: int  # its number in 'list' (0 = newest), so log lines match what users saw
    build: Build
    reference: Reference  # the tag, for the FROM line
    image: str | None = None  # the platform manifest's digest, with --platform
    same: tuple[Candidate, ...] = ()

    @property
    def pinned(self) -> str:
        """``HOST/REPO@DIGEST``: the build, unambiguous whatever the tag does next."""
        return f"{self.reference.name}@{self.build.digest}"

    @property
    def target(self) -> str:
        """What is pulled and what ``{}`` becomes: the build, or with ``--platform`` its
        platform manifest (``HOST/REPO@sha256:…`` of one image), which ``docker run`` runs
        as it is, whatever the engine's own platform and image store."""
        return f"{self.reference.name}@{self.image}" if self.image else self.pinned

    @property
    def key(self) -> str:
        """What a verdict is about: the image tested (a manifest that comes back later gets
        the verdict it had without running again)."""
        return self.image or self.build.digest

    @property
    def group(self) -> tuple[Candidate, ...]:
        """Every build of the group, oldest first (itself alone without ``--platform``)."""
        return (*self.same, self)

    @property
    def first(self) -> Candidate:
        """The oldest build of the group: the first bad build when the group is bad."""
        return self.same[0] if self.same else self

    @property
    def updated(self) -> str:
        return self.build.timestamp

    def describe(self) -> str:
        return f"#{self.position} sha256:{self.build.short} ({self.updated})"

    def as_json(self) -> dict[str, object]:
        """The build as ``list --format json`` shows it (docker's PascalCase keys), with
        ``PlatformDigest`` as ``list --platform`` shows it."""
        document: dict[str, object] = {"Index": self.position, "Updated": self.updated,
                                       "Digest": self.build.digest, "Reference": self.pinned}
        if self.image is not None:
            document["PlatformDigest"] = self.image
        return document


@dataclass(frozen=True)
class Run:
    """One verdict: from a command run, or reused for a digest already tested."""

    candidate: Candidate
    verdict: Verdict
    returncode: int | None  # None: reused, the command did not run again

    def as_json(self) -> dict[str, object]:
        return {**self.candidate.as_json(), "Verdict": self.verdict.value,
                "ExitCode": self.returncode}


def candidates_between(reference: Reference, builds: Sequence[Build], good: int,
                       bad: int) -> list[Candidate]:
    """The builds from ``good`` to ``bad`` (listing positions, newest first) in time order."""
    return [Candidate(position, builds[position], reference)
            for position in range(good, bad - 1, -1)]


def group_by_image(candidates: Sequence[Candidate],
                   images: Sequence[str | None]) -> tuple[list[Candidate], list[Candidate]]:
    """Consecutive builds (time order) with the same platform manifest become one candidate.

    ``images`` holds each build's manifest digest for the platform, ``None`` for a build
    without one. Such a build cannot run the platform's image: it is left out of the search
    (returned second, for the report) and, as a build in between, it ends a group, as a
    different manifest would: the listing's SAME column never joins across it either. A
    manifest that comes back after a different one is a group of its own.
    """
    groups: list[list[Candidate]] = []
    missing: list[Candidate] = []
    previous: str | None = None
    for candidate, image in zip(candidates, images, strict=True):
        if image is None:
            missing.append(candidate)
        elif image == previous and groups:
            groups[-1].append(replace(candidate, image=image))
        else:
            groups.append([replace(candidate, image=image)])
        previous = image
    out = [replace(group[-1], same=tuple(group[:-1])) for group in groups]
    return out, missing


# --- the loop ------------------------------------------------------------------------------

Tester = Callable[[Candidate], int]
Logger = Callable[[str], None]


@dataclass
class Bisection:
    """A search over real candidates: the pure state plus what was run to move it."""

    candidates: list[Candidate]
    search: Search = field(init=False)
    runs: list[Run] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.search = Search(len(self.candidates))

    def step(self, test: Tester, log: Logger) -> bool:
        """Test the next candidate; ``False`` once there is nothing left to test.

        A digest already tested at another point of the history gets the same verdict
        without running again: the test is meant to depend on the image alone.
        """
        index = self.search.next_candidate()
        if index is None:
            return False
        candidate = self.candidates[index]
        known = next((run for run in self.runs if run.candidate.key == candidate.key), None)
        if known is not None:
            self.runs.append(Run(candidate, known.verdict, None))
            self.search.record(index, known.verdict)
            same = "image" if candidate.image else "digest"
            log(f"testing {candidate.describe()}: {known.verdict.value} "
                f"(same {same} as {known.candidate.describe()})")
            return True
        log(f"pulling {candidate.describe()}{self._shared(candidate)}: {self._progress()}")
        try:
            returncode = test(candidate)
        except CghistoryError as error:
            # A failed pull or a command that cannot start: the bisect ends, and says how far
            # it got, with the failure's own exit status.
            stop = Stop(f"{error}; stopped at {candidate.describe()}. {self.so_far()}")
            stop.exit_code = error.exit_code
            raise stop from None
        verdict = classify(returncode)
        if verdict is None:
            raise Stop(f"the command {describe_status(returncode)} while testing "
                       f"{candidate.pinned}; stopped. {self.so_far()}")
        self.runs.append(Run(candidate, verdict, returncode))
        self.search.record(index, verdict)
        log(f"testing {candidate.describe()}: {verdict.value}"
            + (f" (exit {returncode})" if returncode not in (0,) else ""))
        return True

    def _shared(self, candidate: Candidate) -> str:
        """`` [the platform image of #6, #5 too]``: the other builds a run decides for."""
        if not candidate.same:
            return ""
        return f" [same image as {', '.join(f'#{c.position}' for c in candidate.same)}]"

    def _progress(self) -> str:
        search = self.search
        if search.good is None:
            return "checking that --good is good"
        if search.bad is None:
            return "checking that --bad is bad"
        left = search.remaining
        return (f"{left} build{'s' if left != 1 else ''} left to search, "
                f"about {search.steps_left} more run{'s' if search.steps_left != 1 else ''}")

    @property
    def tested(self) -> int:
        return sum(1 for run in self.runs if run.verdict is not Verdict.SKIP)

    @property
    def skipped(self) -> int:
        return sum(1 for run in self.runs if run.verdict is Verdict.SKIP)

    def so_far(self) -> str:
        """The bounds reached, for a bisect that ends early: enough to resume by hand."""
        search = self.search
        if search.good is None:
            return "Nothing was decided yet."
        good = self.candidates[search.good]
        if search.bad is None:
            return f"So far: last good {good.describe()}; --bad not checked yet."
        bad = self.candidates[search.bad]
        left = search.remaining
        return (f"So far: last good {good.describe()}, first bad at or before "
                f"{bad.describe()}, {left} untested build{'s' if left != 1 else ''} between; "
                f"resume with --good {good.build.digest} --bad {bad.build.digest}")

    def check_bounds(self) -> None:
        """Turn a failed check of ``--good`` or ``--bad`` into the one line that explains it."""
        problem = self.search.problem
        if problem is None:
            return
        # The builds the user named: the oldest of the first group, the newest of the last.
        first, last = self.candidates[0].first, self.candidates[-1]
        run = self.runs[-1]
        status = "" if run.returncode is None else f" (the command exited {run.returncode})"
        if problem is Problem.GOOD_IS_BAD:
            message = f"--good {first.describe()} is bad{status}: give an older --good"
        elif problem is Problem.BAD_IS_GOOD:
            message = f"--bad {last.describe()} is good{status}: nothing to look for up to it"
        elif problem is Problem.GOOD_UNTESTABLE:
            message = (f"--good {first.describe()} cannot be tested (the command exited "
                       f"{SKIP_CODE}): give another --good")
        else:
            message = (f"--bad {last.describe()} cannot be tested (the command exited "
                       f"{SKIP_CODE}): give another --bad")
        raise Stop(message)

    def drive(self, test: Tester, log: Logger) -> Result:
        """Run the search to its end; every way out but a result raises with the state."""
        try:
            while self.step(test, log):
                self.check_bounds()
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted. {self.so_far()}") from None
        result = self.search.result
        assert result is not None
        return result
