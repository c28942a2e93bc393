"""The bisect's search as bare state: which candidate next, and what a verdict changes.

Why its own module: this is the part that must be exactly right, and it is checked
exhaustively (every count, every verdict sequence) without knowing what a build, a pull or a
command is. Candidates are numbered in time order: 0 is the ``--good`` build, ``count - 1``
the ``--bad`` one. Both ends are tested first (a wrong bound makes every later answer
meaningless), then the search halves the range between the newest known good and the oldest
known bad build. Exit statuses become verdicts here too, by git bisect run's convention.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

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
