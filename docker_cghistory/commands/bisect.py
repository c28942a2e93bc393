"""``docker cghistory bisect IMAGE[:TAG] --good BUILD [--bad BUILD] -- COMMAND [ARG...]``.

The recipe: read the history, place ``--good`` and ``--bad`` in it, then let the pure
``Bisection`` pick builds while ``ImageKeeper`` pulls each one and ``testcommand`` runs the
user's command on it. stdout carries only the result (text or JSON), so
``$(docker cghistory bisect ...)`` works; progress, the command's own output and the per-build
log go to stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import IO, TYPE_CHECKING

from ..bisect import (
    Bisection,
    Candidate,
    Logger,
    Undecided,
    candidates_between,
    locate,
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
        from ..progress import PullProgress
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


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# --- wiring --------------------------------------------------------------------------------


def _log(message: str) -> None:
    sys.stderr.write(f"bisect: {message}\n")
    sys.stderr.flush()


def run(args: argparse.Namespace, context: Context) -> int:
    # The parser has checked what spec says: a test command after "--" and a --format choice.
    command = list(args.command)
    if not args.good:
        raise UsageError("--good is required: a build known to pass the test command")
    reference = context.parse(args.image)
    client = context.client(reference.registry)
    images = ImageKeeper(client, platform=args.platform)
    try:
        images.connect()  # an unreachable engine fails before the history is read
        builds = client.history(reference)
        good, bad = locate(reference, builds, args.good, args.bad, utcnow())
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
    render = render_json if args.format == "json" else render_text
    sys.stdout.write(render(bisection, result, context.program))
    sys.stdout.flush()
    if result.ambiguous:
        raise Undecided(
            f"skipped builds hide the boundary: the first bad build is one of "
            f"{len(result.candidates)} (listed on stdout)"
        )
    return 0
