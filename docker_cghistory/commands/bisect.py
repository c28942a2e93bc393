"""``docker cghistory bisect IMAGE[:TAG] --good BUILD [--bad BUILD] -- COMMAND [ARG...]``.

The recipe: read the history, place ``--good`` and ``--bad`` in it, then let the pure
``Search`` pick builds while this module pulls each one and runs the user's command on it.
stdout carries only the result (text or JSON), so ``$(docker cghistory bisect ...)`` works;
progress, the command's own output and the per-build log go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from ..bisect import (
    SKIP_CODE,
    Problem,
    Result,
    Search,
    Verdict,
    classify,
    parse_build,
    resolve_build,
)
from ..context import Context
from ..errors import (
    CghistoryError,
    EngineError,
    Interrupted,
    SelectionError,
    UsageError,
    sanitize,
)
from ..history import Build
from ..reference import Reference
from ..timespec import format_timestamp, utcnow

if TYPE_CHECKING:
    from ..engine import Engine
    from ..registry import RegistryClient

IMAGE_ENV = "CGHISTORY_IMAGE"
FORMATS = ("text", "json")


class Stop(CghistoryError):
    """The bisect cannot go on; the message already says how far it got."""


class CannotRun(CghistoryError):
    """The test command does not start at all (a typo, not a verdict on a build)."""


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
        return format_timestamp(self.build.updated)

    def describe(self) -> str:
        return f"#{self.position} sha256:{self.build.short} ({self.updated})"

    def as_json(self) -> dict[str, str]:
        return {"reference": self.pinned, "digest": self.build.digest, "updated": self.updated}


@dataclass(frozen=True)
class Run:
    """One verdict: from a command run, or reused for a digest already tested."""

    candidate: Candidate
    verdict: Verdict
    returncode: int | None  # None: reused, the command did not run again

    def as_json(self) -> dict[str, object]:
        return {**self.candidate.as_json(), "verdict": self.verdict.value,
                "exit_code": self.returncode}


def candidates_between(reference: Reference, builds: Sequence[Build], good: int,
                       bad: int) -> list[Candidate]:
    """The builds from ``good`` to ``bad`` (listing positions, newest first) in time order."""
    return [Candidate(position, builds[position], reference)
            for position in range(good, bad - 1, -1)]


# --- running the command -------------------------------------------------------------------


def substitute(command: Sequence[str], image: str) -> list[str]:
    """Every ``{}`` in every word becomes the build, as ``find -exec`` and ``xargs -I`` do."""
    return [word.replace("{}", image) for word in command]


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


def run_command(command: Sequence[str], image: str, *,
                env: dict[str, str] | None = None, output: IO[str] | None = None) -> int:
    """Run the test on one build and return its exit status (negative: killed by a signal).

    The command's stdout goes to our stderr, so that stdout holds nothing but the result. A
    command that cannot start at all is the user's typo, not a verdict on a build: it stops
    the bisect instead of marking every build bad.
    """
    argv = substitute(command, image)
    environment = dict(os.environ if env is None else env)
    environment[IMAGE_ENV] = image
    sink = output if output is not None else sys.stderr
    try:
        target: int | None = sink.fileno()
    except (AttributeError, OSError, ValueError):
        target = None  # a stream without a descriptor (pytest's capture): copy through a pipe
    sink.flush()
    try:
        process = subprocess.Popen(
            argv, env=environment,
            stdout=target if target is not None else subprocess.PIPE,
            stderr=None if target is not None or output is None else subprocess.STDOUT,
            text=target is None,
        )
    except OSError as error:
        raise CannotRun(f"cannot run {sanitize(argv[0])!r}: {error.strerror or error}") \
            from None
    try:
        if target is None and process.stdout is not None:
            for line in process.stdout:
                sink.write(line)
        return process.wait()
    except BaseException:
        _end(process)
        raise


def _end(process: subprocess.Popen[str]) -> None:
    """Stop a command we started (after Ctrl-C or the docker CLI asking us to stop)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()


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
    candidates = bisection.candidates
    last_good = candidates[result.last_good]
    document = {
        "first_bad": (candidates[result.first_bad].as_json()
                      if result.first_bad is not None else None),
        "last_good": last_good.as_json(),
        "from_line": from_line(last_good),
        "candidates": [candidates[index].as_json() for index in result.candidates],
        "tested": bisection.tested,
        "skipped": bisection.skipped,
        "runs": [run.as_json() for run in bisection.runs],
        "pin_command": pin_command(program, last_good),
    }
    return json.dumps(document, separators=(",", ":")) + "\n"


# --- the engine ----------------------------------------------------------------------------


class ImageKeeper:
    """Pulls the builds under test and removes afterwards only the ones it brought in.

    Whether a digest was already local is asked right before its pull: an image the user had
    (or pulled meanwhile in another terminal) is theirs and stays.
    """

    def __init__(self, client: RegistryClient, *, platform: str | None = None,
                 progress: IO[str] | None = None) -> None:
        self.client = client
        self.platform = platform
        self.progress = progress if progress is not None else sys.stderr
        self.pulled: list[str] = []
        self._engine: Engine | None = None

    def connect(self) -> Engine:
        if self._engine is None:
            from ..engine import Engine

            self._engine = Engine.connect()
        return self._engine

    @property
    def engine(self) -> Engine:
        return self.connect()

    def pull(self, candidate: Candidate) -> None:
        from ..engine import PullProgress
        from ..registry import hint_for

        name, digest = candidate.reference.name, candidate.build.digest
        if digest not in self.engine.local_digests(name) and candidate.pinned not in self.pulled:
            # Counted as ours before the pull starts: a Ctrl-C after the engine finished but
            # before we heard back must not leave the image behind.
            self.pulled.append(candidate.pinned)
        credential = self.client.credential
        on_event = PullProgress(self.progress) if _is_terminal(self.progress) else None
        self.engine.pull(
            name, digest, auth=self.client.engine_auth(), platform=self.platform,
            credential_source=credential.source, hint=hint_for(self.client.registry),
            on_event=on_event,
        )

    def cleanup(self, log: Logger) -> None:
        """Remove what we pulled; a failure (a container still using it) is a warning only."""
        if not self.pulled:
            self.close()
            return
        removed = 0
        for image in self.pulled:
            try:
                if remove_image(self.engine, image):
                    removed += 1
            except CghistoryError as error:
                log(f"warning: could not remove {image}: {error}")
        log(f"removed {removed} image{'s' if removed != 1 else ''} pulled for the bisect "
            "(--keep keeps them)")
        self.close()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


def remove_image(engine: Engine, image: str) -> bool:
    """Untag ``image`` (``HOST/REPO@DIGEST``); the engine deletes it if nothing else uses it.

    Not in ``engine.py``, which has no removal: written here, on its ``api``. ``False`` when
    the image is already gone.
    """
    import requests
    from docker.errors import APIError, DockerException, NotFound

    from ..engine import scrub, unreachable

    try:
        engine.api.remove_image(image)
    except NotFound:
        return False
    except APIError as error:
        explanation = getattr(error, "explanation", None) or error
        raise EngineError(f"the Docker engine did not remove it: {scrub(explanation)}") from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
        raise unreachable(engine.endpoint, error) from None
    except (DockerException, requests.exceptions.RequestException) as error:
        raise EngineError(f"the Docker engine failed: {scrub(error)}") from None
    return True


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# --- wiring --------------------------------------------------------------------------------


def _log(message: str) -> None:
    sys.stderr.write(f"bisect: {message}\n")
    sys.stderr.flush()


def locate(reference: Reference, builds: Sequence[Build], good_text: str,
           bad_text: str | None) -> tuple[int, int]:
    """Listing positions of ``--good`` and ``--bad``, checked to make a range to search."""
    now = utcnow()
    good_selector = parse_build(good_text, "--good", now)
    bad_selector = parse_build(bad_text, "--bad", now) if bad_text is not None else None
    if not builds:
        raise SelectionError(f"{reference.tagged} has no builds")
    good = resolve_build(builds, good_selector, good_text, now)
    bad = resolve_build(builds, bad_selector, bad_text, now) if bad_selector and bad_text else 0
    describe = {position: f"#{position} sha256:{builds[position].short} "
                f"({format_timestamp(builds[position].updated)})" for position in (good, bad)}
    if good == bad:
        raise UsageError(f"--good and --bad are the same build, {describe[good]}")
    if good < bad:
        raise UsageError(
            f"--good {describe[good]} is newer than --bad {describe[bad]}: bisect looks for "
            "the first bad build after a good one"
        )
    return good, bad


def run(args: argparse.Namespace, context: Context) -> int:
    # cli.parse puts the words after "--" in ``command``; without "--" there is none.
    command = list(getattr(args, "command", None) or [])
    if not command:
        raise UsageError(
            f"give the test command after '--': {context.program} bisect IMAGE --good BUILD "
            "-- COMMAND [ARG...] ({} in ARG becomes the build's reference)"
        )
    if not args.good:
        raise UsageError("--good is required: a build known to pass the test command")
    fmt = (args.format or "text").strip()
    if fmt not in FORMATS:
        raise UsageError(f"--format takes text or json, not {sanitize(fmt)!r}")
    reference = context.parse(args.image)
    client = context.client(reference.registry)
    images = ImageKeeper(client, platform=args.platform)
    try:
        images.connect()  # an unreachable engine fails before the history is read
        builds = client.history(reference)
        good, bad = locate(reference, builds, args.good, args.bad)
        bisection = Bisection(candidates_between(reference, builds, good, bad))
        _log(f"{len(bisection.candidates)} builds from {bisection.candidates[0].describe()} "
             f"to {bisection.candidates[-1].describe()}: at most "
             f"{bisection.search.steps_left} runs unless builds are skipped")

        def test(candidate: Candidate) -> int:
            images.pull(candidate)
            return run_command(command, candidate.pinned)

        result = bisection.drive(test, _log)
    finally:
        if args.keep:
            images.close()
        else:
            images.cleanup(_log)
    render = render_json if fmt == "json" else render_text
    sys.stdout.write(render(bisection, result, context.program))
    sys.stdout.flush()
    if result.ambiguous:
        raise Undecided(
            f"skipped builds hide the boundary: the first bad build is one of "
            f"{len(result.candidates)} (listed on stdout)"
        )
    return 0
