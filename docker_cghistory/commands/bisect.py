"""``docker cghistory bisect IMAGE[:TAG] --good BUILD [--bad BUILD] -- COMMAND [ARG...]``.

The recipe: read the history, place ``--good`` and ``--bad`` in it, then let the pure
``Bisection`` pick builds while ``ImageKeeper`` pulls each one and ``testcommand`` runs the
user's command on it. stdout carries only the result (text or JSON), so
``$(docker cghistory bisect ...)`` works; progress, the command's own output and the per-build
log go to stderr.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..bisect import (
    Bisection,
    Candidate,
    Logger,
    Undecided,
    candidates_between,
    locate,
    parse_build,
    render_json,
    render_text,
)
from ..context import Context
from ..errors import CghistoryError, UsageError
from ..testcommand import run_command
from ..timespec import utcnow

if TYPE_CHECKING:
    from ..engine import Engine
    from ..registry import RegistryClient
    from ..streams import Streams


# --- the engine ----------------------------------------------------------------------------


class ImageKeeper:
    """Pulls the builds under test and removes afterwards only the ones it brought in.

    Whether a digest was already local is asked right before its pull: an image the user had
    (or pulled meanwhile in another terminal) is theirs and stays.
    """

    def __init__(self, client: RegistryClient, streams: Streams, *,
                 platform: str | None = None) -> None:
        self.client = client
        self.platform = platform
        self.streams = streams  # pull progress goes to its stderr, when that is a terminal
        self.pulled: list[str] = []
        # Set by the caller once the search is planned: runs still to go, this one included.
        self.steps_left: Callable[[], int] | None = None
        self._runs = 0
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
        """Pull one build; on a terminal its progress is drawn, then folded into one line
        (``pulled #3 sha256:c40ac3a1171c (run 2 of ~5)``) so the runs' own output stays
        readable."""
        from ..progress import PullProgress
        from ..registry import hint_for

        self._runs += 1
        name, digest = candidate.reference.name, candidate.build.digest
        if digest not in self.engine.local_digests(name) and candidate.pinned not in self.pulled:
            # Counted as ours before the pull starts: a Ctrl-C after the engine finished but
            # before we heard back must not leave the image behind.
            self.pulled.append(candidate.pinned)
        credential = self.client.credential
        progress = PullProgress.on(self.streams) if self.streams.stderr_is_tty else None
        self.engine.pull(
            name, digest, auth=self.client.credential.engine_auth(), platform=self.platform,
            credential_source=credential.source, hint=hint_for(self.client.registry),
            on_event=progress,
        )
        if progress is not None:
            # Short: the "pulling" line above already gave its time and why it is tested.
            progress.collapse(f"bisect: pulled #{candidate.position} "
                              f"sha256:{candidate.build.short}{self._step()}")

    def _step(self) -> str:
        """`` (run 2 of ~5)``: ``steps_left`` counts the run under way, and skips can add
        more, hence the ``~``."""
        if self.steps_left is None:
            return ""
        return f" (run {self._runs} of ~{self._runs - 1 + self.steps_left()})"

    def cleanup(self, log: Logger) -> None:
        """Remove what we pulled; a failure (a container still using it) is a warning only."""
        if not self.pulled:
            self.close()
            return
        removed = 0
        for image in self.pulled:
            try:
                if self.engine.remove(image):
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


# --- wiring --------------------------------------------------------------------------------


def _logger(streams: Streams) -> Logger:
    """The per-build log: stderr, flushed at once, between the test command's own output."""

    def log(message: str) -> None:
        streams.stderr.write(f"bisect: {message}\n")
        streams.stderr.flush()

    return log


def run(args: argparse.Namespace, context: Context, streams: Streams) -> int:
    # The parser has checked what spec says: a test command after "--" and a --format choice.
    command = list(args.command)
    if not args.good:
        raise UsageError("--good is required: a build known to pass the test command")
    for flag, text in (("--good", args.good), ("--bad", args.bad)):
        if text is not None:  # a BUILD that cannot be read is a usage error, engine or not
            parse_build(text, flag, utcnow())
    reference = context.parse(args.image)
    client = context.client(reference.registry)
    images = ImageKeeper(client, streams, platform=args.platform)
    log = _logger(streams)
    try:
        images.connect()  # an unreachable engine fails before the history is read
        builds = client.history(reference)
        good, bad = locate(builds, args.good, args.bad, utcnow())
        bisection = Bisection(candidates_between(reference, builds, good, bad))
        log(f"{len(bisection.candidates)} builds from {bisection.candidates[0].describe()} "
             f"to {bisection.candidates[-1].describe()}: at most "
             f"{bisection.search.steps_left} runs unless builds are skipped")

        images.steps_left = lambda: bisection.search.steps_left

        def test(candidate: Candidate) -> int:
            images.pull(candidate)
            return run_command(command, candidate.pinned, output=streams.stderr)

        result = bisection.drive(test, log)
    finally:
        if args.keep:
            images.close()
        else:
            images.cleanup(log)
    render = render_json if args.format == "json" else render_text
    streams.stdout.write(render(bisection, result, context.program))
    streams.stdout.flush()
    if result.ambiguous:
        raise Undecided(
            f"skipped builds hide the boundary: the first bad build is one of "
            f"{len(result.candidates)} (listed on stdout)"
        )
    return 0
