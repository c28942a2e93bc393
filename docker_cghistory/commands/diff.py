"""``docker cghistory diff IMAGE[:TAG] [OLD [NEW]]`` and ``diff REF@sha256:A REF@sha256:B``.

The recipe: read OLD and NEW the way bisect reads a BUILD (defaults 1 and 0) and place them in
the tag's history, or take two full references as they are (no history API needed); then, for
the platform asked for (default: the engine's, asked in the background meanwhile), read both
builds' facts (``buildfacts``) in two threads and render what ``changes`` found
(``diffreport``). stdout carries only the report; progress (a terminal only) and warnings go
to stderr.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from .. import buildfacts, diffreport, hostplatform, selection
from ..bisect import resolve_build
from ..changes import PackageChanges, diff_config, diff_packages
from ..content import Content
from ..errors import NoHistoryAPI, UsageError, sanitize
from ..platforms import Platform, parse_platform
from ..reference import Reference, parse_cli
from ..timespec import utcnow

if TYPE_CHECKING:
    from datetime import datetime

    from ..context import Context
    from ..history import Build
    from ..streams import Streams

T = TypeVar("T")
DEFAULT_OLD, DEFAULT_NEW = "1", "0"


@dataclass(frozen=True)
class Named:
    """One build as the user named it: where it lives and, from the history, its place."""

    reference: Reference
    digest: str
    index: int | None = None
    updated: str | None = None


# --- naming the two builds -----------------------------------------------------------------


def _by_reference(args: argparse.Namespace, context: Context) -> tuple[Named, Named] | None:
    """``REF@sha256:A REF@sha256:B``: both builds named in full, or ``None`` for the
    ``IMAGE[:TAG] [OLD [NEW]]`` form."""
    first = parse_cli(args.image, context.default_registry, context.default_org,
                      allow_digest=True)
    if first.digest is None:
        return None
    if args.old is None or args.new is not None:
        raise UsageError(f"{sanitize(args.image)} names a build: give the other one as a "
                         "second full reference, REF@sha256:... (or IMAGE[:TAG] [OLD [NEW]])")
    second = parse_cli(args.old, context.default_registry, context.default_org,
                       allow_digest=True)
    if second.digest is None:
        raise UsageError(f"{sanitize(args.old)} names no build: compare two references "
                         "that both end in @sha256:...")
    return Named(first, first.digest), Named(second, second.digest)


def _from_history(args: argparse.Namespace, context: Context,
                  now: datetime) -> tuple[Named, Named]:
    """OLD and NEW placed in the tag's history, read as bisect reads a BUILD: the newest
    builds only when both are indexes, otherwise the whole history (a prefix or a time can
    name any build)."""
    texts = (args.old if args.old is not None else DEFAULT_OLD,
             args.new if args.new is not None else DEFAULT_NEW)
    selectors = [selection.parse_build(text, flag, now)
                 for text, flag in zip(texts, ("OLD", "NEW"), strict=True)]
    reference = context.parse(args.image)
    client = context.client(reference.registry)
    if all(s.kind == "index" for s in selectors):
        builds = client.history(reference, last=max(s.value for s in selectors) + 1)
    else:
        builds = client.history(reference)
    named = []
    for selector, text in zip(selectors, texts, strict=True):
        index = resolve_build(builds, selector, text, now)
        build: Build = builds[index]
        named.append(Named(reference, build.digest, index, build.timestamp))
    return named[0], named[1]


def _image_name(old: Named, new: Named) -> str:
    """``Image`` of the report: the tag read, or the repository both references name."""
    if old.index is not None:
        return old.reference.tagged
    first, second = old.reference.name, new.reference.name
    return first if first == second else f"{first} {diffreport.ARROW} {second}"


# --- reading the facts ---------------------------------------------------------------------


class _LayerProgress:
    """Bytes of layers read, one line redrawn on stderr; both threads report to it."""

    def __init__(self, streams: Streams) -> None:
        self.streams = streams
        self.total = 0
        self.shown: float | None = None  # when the line was last drawn
        self.lock = threading.Lock()

    def __call__(self, count: int) -> None:
        with self.lock:
            self.total += count
            now = time.monotonic()
            if self.shown is not None and now - self.shown < 0.1:
                return
            self.shown = now
            self.streams.stderr.write(f"\r\x1b[2Kreading image layers for their package "
                                      f"database: {diffreport.human_size(self.total)}")
            self.streams.stderr.flush()

    def done(self) -> None:
        with self.lock:
            if self.shown is not None:
                self.streams.stderr.write("\r\x1b[2K")
                self.streams.stderr.flush()


def _both(pool: ThreadPoolExecutor, first: Callable[[], T], second: Callable[[], T]) -> list[T]:
    """Two reads at once; the first failure is the command's."""
    futures = [pool.submit(first), pool.submit(second)]
    return [future.result() for future in futures]


def _other_platforms(old: tuple[Content, str], new: tuple[Content, str],
                     platform: Platform) -> tuple[str, ...]:
    """The platforms whose image differs between the builds (or that one of them lacks)."""
    before = buildfacts.platforms_of_build(*old)
    after = buildfacts.platforms_of_build(*new)
    return tuple(str(p) for p in sorted({*before, *after})
                 if p != platform and before.get(p) != after.get(p))


def _side(named: Named, facts: buildfacts.BuildFacts) -> diffreport.Side:
    return diffreport.Side(named.index, named.digest, facts.image.digest, named.updated,
                           facts.source, facts.size)


def compare(old: Named, new: Named, contents: tuple[Content, Content], platform: Platform,
            *, warn: Callable[[str], None],
            progress: Callable[[int], None] | None) -> diffreport.DiffReport:
    """Both builds' images for ``platform``, then their facts, each pair read in parallel."""
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="diff")
    try:
        images = _both(pool,
                       lambda: buildfacts.platform_manifest(contents[0], old.digest, platform),
                       lambda: buildfacts.platform_manifest(contents[1], new.digest, platform))
        image = _image_name(old, new)

        def facts_of(index: int) -> buildfacts.BuildFacts:
            return buildfacts.facts(contents[index], images[index], warn=warn,
                                    progress=progress)

        if images[0].digest == images[1].digest:
            shared = facts_of(1)
            others = _other_platforms((contents[0], old.digest), (contents[1], new.digest),
                                      platform)
            return diffreport.DiffReport(image, str(platform), _side(old, shared),
                                         _side(new, shared), identical=True, others=others)
        before, after = _both(pool, lambda: facts_of(0), lambda: facts_of(1))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)  # Ctrl-C: do not wait for the network
        raise
    pool.shutdown(wait=False)
    packages = (diff_packages(before.packages, after.packages)
                if before.packages is not None and after.packages is not None
                else PackageChanges())
    return diffreport.DiffReport(
        image, str(platform), _side(old, before), _side(new, after), packages,
        tuple(diff_config(before.config, after.config)))


# --- the command ---------------------------------------------------------------------------


def _warner(streams: Streams, progress: _LayerProgress | None) -> Callable[[str], None]:
    """One line each; a progress line being drawn is erased first (and redrawn later)."""
    lock = progress.lock if progress is not None else threading.Lock()

    def warn(message: str) -> None:
        with lock:
            if progress is not None and progress.shown is not None:
                streams.stderr.write("\r\x1b[2K")
            streams.stderr.write(f"warning: {sanitize(message, limit=400)}\n")
            streams.stderr.flush()

    return warn


def run(args: argparse.Namespace, context: Context, streams: Streams) -> int:
    now = utcnow()
    platform = parse_platform(args.platform) if args.platform else None
    engine_platform = hostplatform.in_background() if platform is None else None
    try:
        old, new = _by_reference(args, context) or _from_history(args, context, now)
    except NoHistoryAPI as error:
        raise NoHistoryAPI(f"{error}; compare two builds named in full instead: "
                           f"{context.program} diff REF@sha256:... REF@sha256:...") from None
    contents = (Content(context.client(old.reference.registry), old.reference.repository),
                Content(context.client(new.reference.registry), new.reference.repository))
    for content in contents:  # resolved once here, not raced by the two threads
        content.client.credential  # noqa: B018
    if platform is None:
        assert engine_platform is not None
        platform = engine_platform()
    progress = _LayerProgress(streams) if streams.stderr_is_tty else None
    try:
        report = compare(old, new, contents, platform, warn=_warner(streams, progress),
                         progress=progress)
    finally:
        if progress is not None:
            progress.done()
    streams.stdout.write(diffreport.render(report, args.format, quiet=args.quiet))
    return 1 if args.exit_code and report.differs else 0

