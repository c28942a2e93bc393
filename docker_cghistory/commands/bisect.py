"""``docker cghistory bisect IMAGE[:TAG] --good BUILD [--bad BUILD] -- COMMAND [ARG...]``.

The recipe: read the history, place ``--good`` and ``--bad`` in it, then let the pure
``Bisection`` pick builds while ``ImageKeeper`` pulls each one and ``testcommand`` runs the
user's command on it. stdout carries only the result (text or JSON), so
``$(docker cghistory bisect ...)`` works; progress, the command's own output and the per-build
log go to stderr.

With ``--platform P`` the range's indexes are read first (in parallel, kept on disk by
``content``) and consecutive builds with the same manifest for P become one candidate
(``bisect.group_by_image``); each run pulls that manifest by its digest, with ``--platform``,
and ``{}`` names it. Builds without P are left out of the search and named. After the result,
what changed between the last good and the first bad build (``builddiff``, as ``diff`` shows
it) for P or the default platform; a failure there is one line and changes no exit status.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import hostplatform
from ..bisect import (
    Bisection,
    Candidate,
    Logger,
    Result,
    Undecided,
    candidates_between,
    group_by_image,
    locate,
    parse_build,
    render_json,
    render_text,
)
from ..context import Context
from ..errors import CghistoryError, UsageError, sanitize
from ..platforms import Platform, parse_platform
from ..testcommand import run_command
from ..timespec import utcnow

if TYPE_CHECKING:
    from ..content import Content
    from ..diffreport import DiffReport
    from ..engine import Engine
    from ..reference import Reference
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
        name, digest = candidate.reference.name, candidate.image or candidate.build.digest
        if digest not in self.engine.local_digests(name) and candidate.target not in self.pulled:
            # Counted as ours before the pull starts: a Ctrl-C after the engine finished but
            # before we heard back must not leave the image behind.
            self.pulled.append(candidate.target)
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


# --- --platform: one candidate per distinct image ------------------------------------------


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def by_image(content: Content, candidates: list[Candidate], platform: Platform,
             log: Logger) -> tuple[list[Candidate], list[Candidate]]:
    """The range grouped by its manifest for ``platform`` (indexes read in parallel, each
    digest once, kept on disk); builds without it, or whose index cannot be read, are left
    out and named. ``--good`` or ``--bad`` without it is refused: nothing to test there."""
    from ..buildindex import read_platforms

    found = read_platforms(content, [c.build.digest for c in candidates], check=platform)
    images: list[str | None] = []
    for candidate in candidates:
        facts = found[candidate.build.digest]
        if facts.problem is not None:
            log(f"warning: {sanitize(facts.problem, limit=300)}")
        images.append(facts.digest_for(platform))
    for flag, end in (("--good", 0), ("--bad", -1)):
        facts = found[candidates[end].build.digest]
        if images[end] is None and facts.found is not None:
            has = ", ".join(str(p) for p in sorted(facts.found)) or "none"
            raise UsageError(f"{flag} {candidates[end].describe()} has no {platform} image "
                             f"(it has {has}): give another {flag}")
        if images[end] is None:
            raise CghistoryError(f"{flag} {candidates[end].describe()}: {facts.problem}")
    groups, missing = group_by_image(candidates, images)
    if missing:
        named = ", ".join(c.describe() for c in missing[:5]) + (", …" if len(missing) > 5
                                                                else "")
        log(f"not tested, no {platform} image: {named}")
    if len(groups) < 2:
        raise UsageError(f"every build from --good to --bad has the same {platform} image "
                         f"({groups[0].image}): nothing to bisect on {platform}")
    return groups, missing


# --- what changed --------------------------------------------------------------------------


def what_changed(client: RegistryClient, reference: Reference, last_good: Candidate,
                 first_bad: Candidate, platform: Platform,
                 streams: Streams) -> DiffReport | str:
    """``diff``'s answer between the two builds, or the one line saying why there is none."""
    from ..builddiff import LayerProgress, Named, compare, warner
    from ..content import Content

    content = Content(client, reference.repository)
    old = Named(reference, last_good.build.digest, last_good.position, last_good.updated)
    new = Named(reference, first_bad.build.digest, first_bad.position, first_bad.updated)
    progress = LayerProgress(streams) if streams.stderr_is_tty else None
    try:
        return compare(old, new, (content, content), platform,
                       warn=warner(streams, progress), progress=progress)
    except CghistoryError as error:
        return str(error)
    except KeyboardInterrupt:  # the bisect's answer is known: print it all the same
        return "interrupted"
    finally:
        if progress is not None:
            progress.done()


def _changes(result: Result, bisection: Bisection, client: RegistryClient,
             reference: Reference, platform: Callable[[], Platform],
             streams: Streams) -> DiffReport | str | None:
    if result.first_bad is None:
        return None  # skipped builds hide the boundary: no one pair to compare
    return what_changed(client, reference, bisection.candidates[result.last_good],
                        bisection.candidates[result.first_bad].first, platform(), streams)


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
    platform = parse_platform(args.platform) if args.platform else None
    reference = context.parse(args.image)
    client = context.client(reference.registry)
    images = ImageKeeper(client, streams, platform=str(platform) if platform else None)
    log = _logger(streams)
    default_platform = (hostplatform.in_background() if platform is None
                        else lambda: platform)
    missing: list[Candidate] = []
    try:
        images.connect()  # an unreachable engine fails before the history is read
        builds = client.history(reference)
        good, bad = locate(builds, args.good, args.bad, utcnow())
        candidates = candidates_between(reference, builds, good, bad)
        distinct = ""
        if platform is not None:
            from ..content import Content

            content = Content(client, reference.repository)
            candidates, missing = by_image(content, candidates, platform, log)
            distinct = f", {_plural(len(candidates), f'distinct {platform} image')}"
        bisection = Bisection(candidates)
        total = sum(len(c.group) for c in candidates) + len(missing)
        log(f"{total} builds from {candidates[0].first.describe()} to "
            f"{candidates[-1].describe()}{distinct}: at most "
            f"{bisection.search.steps_left} runs unless builds are skipped")

        images.steps_left = lambda: bisection.search.steps_left

        def test(candidate: Candidate) -> int:
            images.pull(candidate)
            return run_command(command, candidate.target, output=streams.stderr)

        result = bisection.drive(test, log)
    finally:
        if args.keep:
            images.close()
        else:
            images.cleanup(log)
    changes = _changes(result, bisection, client, reference, default_platform, streams)
    if isinstance(changes, str) and args.format == "json":  # text says it in its section
        log(f"what changed could not be read: {sanitize(changes, limit=300)}")
    render = render_json if args.format == "json" else render_text
    streams.stdout.write(render(bisection, result, context.program,
                                platform=str(platform) if platform else None,
                                missing=missing, changes=changes))
    streams.stdout.flush()
    if result.ambiguous:
        raise Undecided(
            f"skipped builds hide the boundary: the first bad build is one of "
            f"{len(result.candidates)} (listed on stdout)"
        )
    return 0
