"""The listing's platform columns: what ``--platform``, ``--platforms``, ``--distinct`` and
``--changes`` add to each row, read through ``buildindex`` and shaped for the table and json.

Why it looks like this:
- The options are checked before any request (a bad platform is a usage error naming the
  form), and the default platform of ``--changes`` is asked of the engine in the background
  while the history is read, as ``diff`` does (``hostplatform``).
- Reading is one pass per kind of fact over every listed build and the build before the
  oldest one: that build is read, never listed, so the oldest row's SAME and CHANGES say
  what it changed too.
- A build that could not be read gets one line on stderr naming it and empty cells (null in
  json); a build lacking the platform gets ``-`` (null), which is no error.
- Progress is drawn on stderr only when it is a terminal, and erased before the table.
"""

from __future__ import annotations

import argparse
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import UsageError, sanitize
from .platforms import Platform, names, parse_platform

if TYPE_CHECKING:
    from collections.abc import Callable

    from . import buildindex
    from .content import Content
    from .context import Context
    from .history import Build
    from .reference import Reference
    from .streams import Streams

MISSING = "-"  # the build has no image for the platform: not an error
SAME_MARK = "= #{index}"
_WORKERS = 16  # buildindex.WORKERS: the readers are imported only once the history is read


def short_platform(platform: Platform) -> str:
    """The PLATFORMS column's form: ``amd64``, ``arm64``, ``arm/v7`` for Linux (what nearly
    every image is), the whole name for any other OS (``windows/amd64``)."""
    text = str(platform)
    return text[len("linux/"):] if platform.os == "linux" else text


class _Reporter:
    """One progress line redrawn on stderr (a terminal only), and warnings between draws."""

    def __init__(self, streams: Streams) -> None:
        self.streams = streams
        self.tty = streams.stderr_is_tty
        self.lock = threading.Lock()
        self.drawn = False

    def progress(self, what: str) -> Callable[[int, int], None] | None:
        if not self.tty:
            return None

        def draw(done: int, total: int) -> None:
            with self.lock:
                self.streams.stderr.write(f"\r\x1b[2K{what}: {done}/{total}")
                self.streams.stderr.flush()
                self.drawn = True

        return draw

    def warn(self, message: str) -> None:
        with self.lock:
            if self.drawn:
                self.streams.stderr.write("\r\x1b[2K")
                self.drawn = False
            self.streams.stderr.write(f"warning: {sanitize(message, limit=400)}\n")
            self.streams.stderr.flush()

    def done(self) -> None:
        with self.lock:
            if self.drawn:
                self.streams.stderr.write("\r\x1b[2K")
                self.streams.stderr.flush()
                self.drawn = False


@dataclass
class Wanted:
    """What the options ask for, validated."""

    platform: Platform | None
    platforms: bool
    distinct: bool
    changes: bool
    engine: Callable[[], Platform] | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Wanted | None:
        """``None`` when no platform fact is needed (``-q`` needs only ``--distinct``'s)."""
        platform = parse_platform(args.platform) if args.platform is not None else None
        if args.distinct and platform is None:
            raise UsageError("--distinct needs --platform OS/ARCH[/VARIANT]: it keeps the builds "
                             "whose image for that platform changed")
        quiet = args.quiet
        wanted = cls(platform, args.platforms and not quiet, args.distinct,
                     args.changes and not quiet)
        if not (wanted.platforms or wanted.changes or wanted.distinct
                or (platform is not None and not quiet)):
            return None
        if wanted.changes and platform is None:
            from . import hostplatform

            wanted.engine = hostplatform.in_background()
        return wanted

    def prewarm(self, context: Context, image: str) -> None:
        """Open the connections the parallel reads will use while the history is read: the
        registry client's own head start for history windows, on the same condition (no
        token kept yet, so the run is a first one and its manifests are not kept either)."""
        reference = context.parse(image)
        client = context.client(reference.registry)
        if client.auth.tokens.get(reference.repository) is None:
            client._prewarm(_WORKERS - 1)

    def read(self, context: Context, reference: Reference, builds: list[tuple[int, Build]],
             before: Build | None, streams: Streams) -> Facts:
        from . import buildindex
        from .content import Content

        content = Content(context.client(reference.registry), reference.repository)
        listed = [build.digest for _, build in builds]
        digests = [*listed, *([before.digest] if before is not None else [])]
        reporter = _Reporter(streams)
        facts = Facts(self, listed, {b.digest: i for i, b in builds},
                      before.digest if before is not None else None)
        try:
            if self.changes:
                facts.changes_platform = self.platform or (self.engine() if self.engine
                                                           else None)
                assert facts.changes_platform is not None
                images = buildindex.read_images(
                    content, digests, facts.changes_platform, warn=reporter.warn,
                    progress=reporter.progress(f"reading the {facts.changes_platform} "
                                               "packages of each build"))
                facts.images = images
                facts.problems.update({d: f.problem for d, f in images.items() if f.problem})
            needs_index = self.platforms or (
                self.platform is not None and self.platform != facts.changes_platform)
            if needs_index:
                found = buildindex.read_platforms(
                    content, digests, check=buildindex.ALL if self.platforms else self.platform,
                    progress=reporter.progress("reading the platforms of each build"))
                facts.indexes = found
                for digest, entry in found.items():
                    if entry.problem:
                        facts.problems.setdefault(digest, entry.problem)
        finally:
            reporter.done()
        for problem in facts.problems.values():
            reporter.warn(problem)
        facts.settle()
        facts.remember_newest(reference)
        for platform in {self.platform, facts.changes_platform} - {None}:
            assert platform is not None
            facts.refuse_absent(content, platform, reference.tagged)
        return facts


@dataclass
class Facts:
    """Per listed build (by digest): the cells and json values of the platform columns."""

    wanted: Wanted
    listed: list[str]
    index_of: dict[str, int]
    before: str | None
    changes_platform: Platform | None = None
    images: dict[str, buildindex.ImageFacts] | None = None
    indexes: dict[str, buildindex.BuildPlatforms] | None = None
    problems: dict[str, str] = field(default_factory=dict)
    platform_digest: dict[str, str | None] = field(default_factory=dict)
    same: dict[str, int | None] = field(default_factory=dict)
    change: dict[str, buildindex.Change] = field(default_factory=dict)

    @property
    def changes(self) -> dict[str, buildindex.Change] | None:
        return self.change if self.wanted.changes else None

    def _digest_for(self, build: str, platform: Platform) -> str | None:
        if self.images is not None and platform == self.changes_platform:
            return self.images[build].digest
        assert self.indexes is not None
        return self.indexes[build].digest_for(platform)

    def settle(self) -> None:
        """SAME and CHANGES from what was read: each listed build against the next older."""
        from . import buildindex

        platform = self.wanted.platform
        chain = [*self.listed, *([self.before] if self.before is not None else [])]
        if platform is not None:
            digests = [self._digest_for(build, platform) for build in chain]
            self.platform_digest = dict(zip(chain, digests, strict=True))
            indexes = [self.index_of[build] for build in self.listed]
            previous = digests[len(self.listed)] if self.before is not None else None
            self.same = dict(zip(self.listed, buildindex.same_as(
                digests[:len(self.listed)], indexes, previous), strict=True))
        if self.wanted.changes and self.images is not None:
            self.change = dict(zip(self.listed, buildindex.changes_of(
                self.listed, self.before, self.images), strict=True))

    def remember_newest(self, reference: Reference) -> None:
        """The newest build's platforms, read anyway, seed ``--platform`` completion."""
        newest = self.listed[0] if self.listed else None
        entry = self.indexes.get(newest) if self.indexes and newest else None
        if entry is None or entry.found is None or self.index_of[newest] != 0:
            return
        from .complete.store import write_entry

        write_entry("platforms", f"{reference.registry}/{reference.repository}:"
                    f"{reference.tag_or_latest}", sorted(str(p) for p in entry.found))

    def refuse_absent(self, content: Content, platform: Platform, image: str) -> None:
        """A platform no listed build has (a typo, an amd64-only image) is one line naming
        the platforms the newest readable one has, not a column of dashes."""
        readable = [build for build in self.listed if build not in self.problems]
        if not readable or any(self._digest_for(build, platform) is not None
                               for build in readable):
            return
        from . import buildfacts

        newest = readable[0]
        has = sorted(buildfacts.platforms_of_build(content, newest))
        raise buildfacts.PlatformMissing(
            f"no build of {image} listed has a {platform} image; #{self.index_of[newest]} has "
            f"{names(has)}", has)

    def distinct(self, build: str) -> bool:
        """``--distinct`` keeps a build whose image for the platform changed (or that could
        not be read: nothing says it did not); a build lacking the platform is dropped."""
        if build in self.problems:
            return True
        return self.platform_digest.get(build) is not None and self.same.get(build) is None

    # --- json ----------------------------------------------------------------------------

    def row(self, build: str) -> dict[str, Any]:
        from .changes import to_json

        out: dict[str, Any] = {}
        if self.wanted.platforms:
            entry = self.indexes[build] if self.indexes is not None else None
            out["Platforms"] = (None if entry is None or entry.found is None else
                                {str(p): d for p, d in sorted(entry.found.items())})
        if self.wanted.platform is not None:
            out["PlatformDigest"] = self.platform_digest.get(build)
            out["SameAs"] = self.same.get(build)
        if self.wanted.changes:
            found = self.change.get(build)
            out["Changes"] = (to_json(found.packages) if found is not None
                              and found.packages is not None else None)
        return out

    # --- the table -----------------------------------------------------------------------

    def headers(self) -> list[str]:
        out = ["PLATFORMS"] if self.wanted.platforms else []
        if self.wanted.platform is not None:
            out += ["PLATFORM DIGEST", "SAME"]
        return out

    def cells(self, build: str, no_trunc: bool) -> list[str]:
        """PLATFORMS, PLATFORM DIGEST and SAME (CHANGES is cut to the width left over)."""
        out = []
        broken = build in self.problems
        if self.wanted.platforms:
            entry = self.indexes[build] if self.indexes is not None else None
            found = entry.found if entry is not None else None
            out.append("" if found is None else
                       ", ".join(short_platform(p) for p in sorted(found)))
        if self.wanted.platform is not None:
            digest = self.platform_digest.get(build)
            if digest is None:
                out.append("" if broken else MISSING)
            else:
                out.append(digest if no_trunc else digest.split(":", 1)[1][:12])
            same = self.same.get(build)
            out.append(SAME_MARK.format(index=same) if same is not None else "")
        return out

    def change_cell(self, build: str, width: int | None) -> str:
        """``openssl 3.4.0-r3, +libexpat1, -ncurses``, cut to ``width`` (``None``: whole)."""
        from .changes import ELLIPSIS, summary

        found = self.change.get(build)
        platform = self.changes_platform
        if found is None or found.kind == "unreadable":
            return ""
        index = self.index_of[build]
        text = {
            "first": "(first build)",
            "same": f"(same {platform} image)",
            "missing": f"(no {platform} image)",
            "previous-missing": f"(#{index + 1} has no {platform} image)",
            "no-data": "(no package data)",
        }.get(found.kind)
        if text is None:
            assert found.packages is not None
            text = (summary(found.packages, width if width is not None else 1 << 30)
                    or "(no package changes)")
        if width is not None and len(text) > width:
            text = text[: width - 1] + ELLIPSIS
        return text
