"""What ``pin --platform`` and ``pin --changes`` read about builds: platforms and diffs.

Why it looks like this:
- ``--platform`` compares, per pinned reference, the pinned build's manifest for each named
  platform with the selected build's. A build's platforms come from its index, read once per
  digest through ``content`` (checked against the digest, kept on disk), so a second run reads
  nothing. The pinned builds are known before anything is resolved: their reads are queued
  into pin's resolver pool ahead of the resolutions, and each resolution reads its selected
  build's index in the same thread right after choosing it.
- ``--changes`` shows what moving a pin changes for one platform: ``builddiff.compare`` (what
  ``diff`` and bisect show), once per (image, old build, new build), in parallel. A diff that
  cannot be computed is one line in the output; it never changes pin's result.
- Imported by ``pin`` only when ``--platform``, ``--changes`` or markdown asks for it: a plain
  pin does not pay for the content and package readers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from . import buildfacts
from .content import Content
from .context import Context
from .diffreport import DiffReport
from .errors import CghistoryError, sanitize
from .pinning import BuildKey, BuildPlatforms
from .platforms import Platform
from .reference import Reference
from .workers import parallel

Warn = Callable[[str], None]


class PlatformReads:
    """Builds' platforms, read from any thread; each result kept under its build key."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.found: dict[BuildKey, BuildPlatforms] = {}
        self._lock = threading.Lock()

    def read(self, key: BuildKey) -> BuildPlatforms:
        with self._lock:
            known = self.found.get(key)
        if known is not None:
            return known
        registry, repository, digest = key
        try:
            content = Content(self.context.client(registry), repository)
            result = BuildPlatforms(buildfacts.platforms_of_build(content, digest))
        except CghistoryError as error:
            result = BuildPlatforms(problem=sanitize(str(error)))
        with self._lock:
            self.found[key] = result
        return result

    def jobs(self, keys: Iterable[BuildKey]) -> list[Callable[[], object]]:
        """One job per build not read yet, for pin's resolver pool."""
        return [lambda key=key: self.read(key) for key in dict.fromkeys(keys)]


@dataclass(frozen=True)
class Move:
    """One distinct move of a pin: an image from one build to another, and where it is."""

    image: str  # HOST/REPO:TAG as the registry knows it
    registry: str
    repository: str
    old: str
    new: str
    new_time: str | None = None  # Build.timestamp, as every output prints a build's time
    old_time: str | None = None  # known when the resolution read the pinned build
    tag: str | None = None  # the tag whose history places the old build (None: no history API)


@dataclass(frozen=True)
class MoveChanges:
    """What the move changes for ``platform``, or why that could not be read."""

    move: Move
    report: DiffReport | None = None
    problem: str | None = None


def compare_moves(context: Context, moves: Sequence[Move], platform: Platform, *,
                  warn: Warn, workers: int) -> dict[Move, MoveChanges]:
    """Each distinct move compared once, in parallel; a failure is that move's ``problem``."""
    from .builddiff import Named, compare

    def one(move: Move) -> MoveChanges:
        try:
            content = Content(context.client(move.registry), move.repository)
            reference = Reference(move.registry, move.repository, None)
            old = Named(reference, move.old, updated=move.old_time or _time_of(context, move))
            new = Named(reference, move.new, updated=move.new_time)
            report = compare(old, new, (content, content), platform, warn=warn,
                             progress=None)
            return MoveChanges(move, report=_named(report, move.image))
        except CghistoryError as error:
            return MoveChanges(move, problem=sanitize(str(error), limit=300))

    distinct = list(dict.fromkeys(moves))
    if len(distinct) <= 1:
        return {move: one(move) for move in distinct}
    return dict(zip(distinct, parallel(one, distinct, workers, "pin-changes"), strict=True))


def _time_of(context: Context, move: Move) -> str | None:
    """The pinned build's time from the tag's history, as ``diff`` shows a build named by
    digest; ``None`` (nothing shown) when the history has no such build or cannot be read:
    the move's changes are still worth showing."""
    if move.tag is None:
        return None
    try:
        builds = context.client(move.registry).history(
            Reference(move.registry, move.repository, move.tag))
    except CghistoryError:
        return None
    return next((build.timestamp for build in builds if build.digest == move.old), None)


def _named(report: DiffReport, image: str) -> DiffReport:
    from dataclasses import replace

    return replace(report, image=image)
