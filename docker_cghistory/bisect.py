"""Bisecting a tag's builds: BUILD values, exit codes, the search, its loop and its result.

Pure: nothing here pulls, runs or prints. ``Search`` is the bare state: it says which
candidate to test next and takes the verdict back with ``record``, never knowing what a build
is, so it can be checked exhaustively. ``Bisection`` puts real builds (``Candidate``) behind
it and drives it with a tester and a logger it is given; ``commands/bisect.py`` passes one
that pulls the build and runs the user's command (``testcommand.py``) and a logger to stderr.

Candidates are numbered in time order: 0 is the ``--good`` build, ``count - 1`` the ``--bad``
one. Both ends are tested first (a wrong bound makes every later answer meaningless), then
the search halves the range between the newest known good and the oldest known bad build.
"""

from __future__ import annotations

import json
import math
import re
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from . import history
from .errors import (
    CghistoryError,
    Interrupted,
    SelectionError,
    TimeSpecError,
    UsageError,
    sanitize,
)
from .history import Build
from .reference import Reference
from .selection import Selector, choose
from .timespec import parse_when

# --- verdicts ------------------------------------------------------------------------------


class Verdict(str, Enum):
    GOOD = "good"
    BAD = "bad"
    SKIP = "skip"


SKIP_CODE = 125


def classify(returncode: int) -> Verdict | None:
    """What an exit status says about a build; ``None`` means the bisect cannot go on.

    git bisect run's convention, so existing test scripts work unchanged: 0 good, 125 "cannot
    test this one", 1-127 bad. A status above 127 is what a shell reports for a command killed
    by a signal, and a negative one is how Python reports a signal directly: neither says
    anything about the build (it may be the user's Ctrl-C or the OOM killer), so the bisect
    stops rather than guess.
    """
    if returncode == 0:
        return Verdict.GOOD
    if returncode == SKIP_CODE:
        return Verdict.SKIP
    if 1 <= returncode <= 127:
        return Verdict.BAD
    return None


def describe_status(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {_signal_name(-returncode)}"
    if returncode > 128:
        return (f"exited with status {returncode} (killed by "
                f"{_signal_name(returncode - 128)}?)")
    return f"exited with status {returncode}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# --- BUILD values --------------------------------------------------------------------------

BUILD_HELP = (
    "a build: an index (all digits, 0 = newest, as 'list' numbers them), a digest "
    "(sha256:... or 6+ hex characters with a letter among them; write sha256: before a "
    "prefix of digits only), or a time (2024-06-01, 2024-06-01T09:30:00Z, 7d: the build "
    "current then)"
)
_HEX_RE = re.compile(r"^[0-9a-fA-F]{6,64}$")


def parse_build(text: str, flag: str, now: datetime) -> Selector:
    """Read ``--good``/``--bad`` into the selector ``pull`` would use for the same build.

    The rule is decided by the characters alone, never by the history: all digits is an
    index, even ``123456`` (which could also be a hex prefix), because a rule that depended on
    the history would make the same command mean different builds on different days.
    ``sha256:`` or a hex string with a letter is a digest prefix; anything else is a time. No
    WHEN is all hex of 6+ characters except absurd ages (``100000d``).
    """
    value = text.strip()
    shown = sanitize(text)
    if not value:
        raise UsageError(f"{flag} is empty: give {BUILD_HELP}")
    if value.isascii() and value.isdigit():
        return Selector("index", int(value), flag)
    if value.lower().startswith("sha256:") or _HEX_RE.match(value):
        try:
            history.normalise_digest_prefix(value)
        except SelectionError:
            raise UsageError(
                f"invalid {flag} {shown!r}: a digest is sha256: and 64 hex characters, or a "
                "prefix of at least 6"
            ) from None
        return Selector("digest", value, flag)
    try:
        moment = parse_when(value, now)
    except TimeSpecError:
        raise UsageError(f"invalid {flag} {shown!r}: give {BUILD_HELP}") from None
    return Selector("at", moment, flag)


def resolve_build(builds: Sequence[Build], selector: Selector, text: str, now: datetime) -> int:
    """The listing position (0 = newest) of the build ``selector`` names in ``builds``.

    Errors say how the value was read, since that is the surprise behind most of them.
    """
    try:
        index = choose(builds, selector, now).index
    except SelectionError as error:
        hint = ""
        if selector.kind == "index" and len(text.strip()) >= 6:
            hint = f" (read as an index; for a digest prefix write sha256:{text.strip()})"
        elif selector.kind == "digest" and not text.strip().lower().startswith("sha256:"):
            hint = " (read as a digest prefix)"
        raise SelectionError(f"{selector.flag} {sanitize(text)}{hint}: {error}") from None
    assert index is not None  # choosing on the whole history always numbers the build
    return index


def locate(reference: Reference, builds: Sequence[Build], good_text: str,
           bad_text: str | None, now: datetime) -> tuple[int, int]:
    """Listing positions of ``--good`` and ``--bad``, checked to make a range to search."""
    good_selector = parse_build(good_text, "--good", now)
    bad_selector = parse_build(bad_text, "--bad", now) if bad_text is not None else None
    if not builds:
        raise SelectionError(f"{reference.tagged} has no builds")
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


# --- the search ----------------------------------------------------------------------------


class Problem(str, Enum):
    """Why a search ended without a result: one of its bounds was wrong."""

    GOOD_IS_BAD = "good-is-bad"
    GOOD_UNTESTABLE = "good-untestable"
    BAD_IS_GOOD = "bad-is-good"
    BAD_UNTESTABLE = "bad-untestable"


@dataclass(frozen=True)
class Result:
    """Where the search ended.

    ``candidates`` are the builds that may be the first bad one, oldest first: just
    ``first_bad`` when it is known, otherwise skipped builds followed by the oldest build
    known bad (the same answer git gives when skips hide the boundary).
    """

    last_good: int
    candidates: tuple[int, ...]

    @property
    def first_bad(self) -> int | None:
        return self.candidates[0] if len(self.candidates) == 1 else None

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1


def max_runs(count: int) -> int:
    """The most command runs a search of ``count`` builds needs when nothing is skipped."""
    return math.ceil(math.log2(count)) + 2


class Search:
    """The state of one bisect over ``count`` candidates in time order."""

    def __init__(self, count: int) -> None:
        if count < 2:
            raise ValueError("a bisect needs a good and a bad build")
        self.count = count
        self.verdicts: dict[int, Verdict] = {}
        self.good: int | None = None
        self.bad: int | None = None
        self.problem: Problem | None = None

    @property
    def runs(self) -> int:
        return len(self.verdicts)

    @property
    def skipped(self) -> list[int]:
        return sorted(i for i, v in self.verdicts.items() if v is Verdict.SKIP)

    def _open(self) -> Iterator[int]:
        """Untested builds between the bounds, nearest the midpoint first, sides alternating.

        A skipped build says nothing, so its nearest neighbours are the next best split; going
        outward on both sides keeps each step close to halving the range.
        """
        assert self.good is not None and self.bad is not None
        middle = (self.good + self.bad) // 2
        for distance in range(self.bad - self.good):
            for index in (middle + distance, middle - distance) if distance else (middle,):
                if self.good < index < self.bad and index not in self.verdicts:
                    yield index

    def next_candidate(self) -> int | None:
        """The candidate to test next, or ``None`` when the search is over."""
        if self.problem is not None:
            return None
        if self.good is None:
            return 0
        if self.bad is None:
            return self.count - 1
        return next(self._open(), None)

    @property
    def done(self) -> bool:
        return self.next_candidate() is None

    def record(self, index: int, verdict: Verdict) -> None:
        """Take the verdict on ``index``; only candidates the search could still ask about."""
        if not 0 <= index < self.count:
            raise ValueError(f"candidate {index} is outside 0..{self.count - 1}")
        if index in self.verdicts:
            raise ValueError(f"candidate {index} was already tested")
        if self.problem is not None:
            raise ValueError("the search has already failed")
        verdict = Verdict(verdict)
        ends = {0: (Verdict.GOOD, Problem.GOOD_IS_BAD, Problem.GOOD_UNTESTABLE),
                self.count - 1: (Verdict.BAD, Problem.BAD_IS_GOOD, Problem.BAD_UNTESTABLE)}
        if index in ends:
            expected, wrong, untestable = ends[index]
            self.verdicts[index] = verdict
            if verdict is expected:
                if index == 0:
                    self.good = 0
                else:
                    self.bad = index
            else:
                self.problem = wrong if verdict is not Verdict.SKIP else untestable
            return
        if self.good is None or self.bad is None or not self.good < index < self.bad:
            raise ValueError(f"candidate {index} is outside the open range")
        self.verdicts[index] = verdict
        if verdict is Verdict.GOOD:
            self.good = index
        elif verdict is Verdict.BAD:
            self.bad = index

    @property
    def remaining(self) -> int:
        """Builds still untested between the bounds (all of them before the ends are known)."""
        if self.good is None or self.bad is None:
            return self.count - 2
        return sum(1 for _ in self._open())

    @property
    def steps_left(self) -> int:
        """About how many more runs, if nothing more is skipped (for the progress line)."""
        if self.problem is not None:
            return 0
        ends = (self.good is None) + (self.bad is None)
        # N untested builds leave N + 1 places for the boundary; skipped ones do not count.
        return ends + math.ceil(math.log2(self.remaining + 1))

    @property
    def result(self) -> Result | None:
        """The answer once ``done`` and both bounds held; ``None`` otherwise."""
        if self.problem is not None or not self.done:
            return None
        assert self.good is not None and self.bad is not None
        return Result(self.good, tuple(range(self.good + 1, self.bad + 1)))


# --- how a bisect ends ---------------------------------------------------------------------


class Stop(CghistoryError):
    """The bisect cannot go on; the message already says how far it got."""


class Undecided(CghistoryError):
    """Skipped builds hide the boundary: the result is a range, and the exit status says so."""


# --- what is tested ------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A build in the range, with what the messages and the command need to name it."""

    position: int  # its number in 'list' (0 = newest), so log lines match what users saw
    build: Build
    reference: Reference  # the tag, for the FROM line

    @property
    def pinned(self) -> str:
        """``HOST/REPO@DIGEST``: what ``{}`` becomes, unambiguous whatever the tag does next."""
        return f"{self.reference.name}@{self.build.digest}"

    @property
    def updated(self) -> str:
        return self.build.timestamp

    def describe(self) -> str:
        return f"#{self.position} sha256:{self.build.short} ({self.updated})"

    def as_json(self) -> dict[str, object]:
        """The build as ``list --format json`` shows it (docker's PascalCase keys)."""
        return {"Index": self.position, "Updated": self.updated, "Digest": self.build.digest,
                "Reference": self.pinned}


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
        known = next((run for run in self.runs
                      if run.candidate.build.digest == candidate.build.digest), None)
        if known is not None:
            self.runs.append(Run(candidate, known.verdict, None))
            self.search.record(index, known.verdict)
            log(f"testing {candidate.describe()}: {known.verdict.value} "
                f"(same digest as {known.candidate.describe()})")
            return True
        log(f"pulling {candidate.describe()}: {self._progress()}")
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
        first, last = self.candidates[0], self.candidates[-1]
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


# --- the result ----------------------------------------------------------------------------


def pin_command(program: str, last_good: Candidate) -> str:
    """The ``pin`` command that writes the last good build into Dockerfiles and compose files.

    ``pin --at`` takes the build current at a moment: the last good build's own timestamp
    names exactly it.
    """
    return f"{program} pin --at {last_good.updated}"


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
    lines.append(f"pin: {pin_command(program, last_good)}")
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
        "PinCommand": pin_command(program, last_good),
    }
    return json.dumps(document, separators=(",", ":")) + "\n"
