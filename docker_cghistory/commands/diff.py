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
from typing import TYPE_CHECKING

from .. import diffreport, hostplatform, selection
from ..bisect import resolve_build
from ..builddiff import LayerProgress as _LayerProgress
from ..builddiff import Named, compare
from ..builddiff import warner as _warner
from ..content import Content
from ..errors import NoHistoryAPI, UsageError, sanitize
from ..platforms import parse_platform
from ..reference import parse_cli
from ..timespec import utcnow

if TYPE_CHECKING:
    from datetime import datetime

    from ..context import Context
    from ..history import Build
    from ..streams import Streams

DEFAULT_OLD, DEFAULT_NEW = "1", "0"


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


# --- the command ---------------------------------------------------------------------------


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

