"""``docker cghistory [list] IMAGE[:TAG]``: every build of a tag, newest first.

``--platform``/``--platforms``/``--distinct``/``--changes`` add per-build platform facts
(``listfacts``); the rows keep their full-listing ``#`` whatever is filtered or cut, since
that number is what ``pull --index`` and ``bisect`` read.
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

from .. import output, selection
from ..complete import remember_builds, remember_reference
from ..context import Context
from ..errors import CghistoryError, RepositoryNotFound, TagNotFound, UsageError
from ..history import Build, Window
from ..notfound import with_command_hint, with_digest_hint
from ..reference import Reference
from ..timespec import format_age, parse_when, utcnow

if TYPE_CHECKING:
    from ..listfacts import Facts
    from ..local import LocalState
    from ..streams import Streams

# CHANGES is cut to what the terminal leaves it, but never below this.
MIN_CHANGES_WIDTH = 20
FIELDS = ("Index", "Updated", "Age", "Digest", "Reference", "Tag", "Local", "LocalTag")
JSON_FIELDS = ("Index", "Updated", "Digest", "Reference", "Tag", "Local", "LocalTag")
# Added by the options that compute them, in this order, after the fields above.
EXTRA_FIELDS = (("Platforms", "--platforms"), ("PlatformDigest", "--platform"),
                ("SameAs", "--platform"), ("Changes", "--changes"))
HEADERS = {"Index": "#", "Updated": "UPDATED", "Age": "AGE", "Digest": "DIGEST",
           "Reference": "REFERENCE", "Tag": "TAG", "Local": "LOCAL", "LocalTag": "LOCAL TAG",
           "Platforms": "PLATFORMS", "PlatformDigest": "PLATFORM DIGEST", "SameAs": "SAME",
           "Changes": "CHANGES"}
# The LOCAL column: the build the local IMAGE:TAG points at, and builds merely present.
MARK_TAG, MARK_PRESENT = "tag", "yes"


def fetch_builds(args: argparse.Namespace, context: Context, *, previous: bool = False
                 ) -> tuple[Reference, list[tuple[int, Build]], Build | None]:
    """The reference and its builds as ``--since``/``--until``/``--last`` ask, each with its
    index in the full listing (``selection.listing``): the ``#`` is what ``--index`` reads.

    ``previous``: also the build just before the oldest listed one (``None`` when that is the
    tag's first build), which the platform columns compare the oldest row with. With ``-n``
    and no ``--since`` it comes in the same read (one more build asked for)."""
    reference = context.parse(args.image)
    now = utcnow()
    since = parse_when(args.since, now) if args.since else None
    until = parse_when(args.until, now) if args.until else None
    if since and until and since.start > until.end:
        raise UsageError("--since is later than --until")
    if args.last is not None and args.last < 1:
        raise UsageError("--last takes a number of builds, 1 or more")
    client = context.client(reference.registry)
    if not previous:
        return reference, selection.listing(client, reference, since=since, until=until,
                                            last=args.last), None
    if args.last is not None and since is None:
        builds = selection.listing(client, reference, until=until, last=args.last + 1)
        before = builds.pop()[1] if len(builds) > args.last else None
        return reference, builds, before
    builds = selection.listing(client, reference, since=since, until=until, last=args.last)
    return reference, builds, build_before(client, reference, builds)


def build_before(client: selection.HistorySource, reference: Reference,
                 builds: list[tuple[int, Build]]) -> Build | None:
    """The build just older than the oldest listed one, or ``None`` when it is the first.

    Builds sharing the oldest one's time are ordered by digest (``Build``'s order), so as many
    builds as share it, plus one, are read from that time back."""
    if not builds:
        return None
    oldest = builds[-1][1]
    sharing = sum(1 for _, build in builds if build.updated == oldest.updated)
    older = [build for build in client.history(reference, until=oldest.updated,
                                               last=sharing + 1) if build < oldest]
    return max(older, default=None)


def rows_for(reference: Reference, builds: list[tuple[int, Build]],
             local: LocalState | None) -> list[dict]:
    """One row per build for every format; ``Index`` is the full-listing index, ``Updated``
    the exact time (``Build.timestamp``): both, pasted back, select this build. ``Local``:
    the engine has this build; ``LocalTag``: the local ``IMAGE:TAG`` is this build; both
    ``None`` when the engine did not answer."""
    now = utcnow()
    return [
        {
            "Index": index,
            "Updated": build.timestamp,
            "Age": format_age(now - build.updated),
            "Digest": build.digest,
            "Reference": f"{reference.name}@{build.digest}",
            "Tag": reference.tag_or_latest,
            "Local": (build.digest in local.present) if local is not None else None,
            "LocalTag": (build.digest in local.tagged) if local is not None else None,
        }
        for index, build in builds
    ]


def _mark(row: dict) -> str:
    return MARK_TAG if row["LocalTag"] else MARK_PRESENT if row["Local"] else ""


def table_for(builds: list[tuple[int, Build]], rows: list[dict], no_trunc: bool,
              local: LocalState | None, facts: Facts | None = None,
              width: int | None = None) -> tuple[list[str], list[list[str]]]:
    """The table's header and cells; ``width``: the terminal's columns the CHANGES column is
    cut to fit (``None``: not cut)."""
    header = ["#", "UPDATED", "AGE", "DIGEST"]
    if facts is not None:
        header += facts.headers()
    header += ["LOCAL"] if local is not None else []
    cells = []
    for (_, build), row in zip(builds, rows, strict=True):
        line = [
            str(row["Index"]),
            str(row["Updated"]),  # exact: a bare second, pasted into --at, covers it all
            str(row["Age"]),
            build.digest if no_trunc else build.short,
        ]
        if facts is not None:
            line += facts.cells(build.digest, no_trunc)
        if local is not None:
            line.append(_mark(row))
        cells.append(line)
    if facts is not None and facts.changes is not None:
        header.append("CHANGES")
        room = None
        if width is not None:
            used = [max(len(cell) for cell in column) + output.PADDING
                    for column in zip(header[:-1], *cells, strict=True)]
            room = max(width - sum(used), MIN_CHANGES_WIDTH)
        for (_, build), line in zip(builds, cells, strict=True):
            line.append(facts.change_cell(build.digest, room))
    return header, cells


def _wants_local(args: argparse.Namespace) -> bool:
    """The table, json and templates that name ``.Local`` (or print the whole row) ask the
    engine; ``-q`` and other templates never pay for it."""
    fmt = (args.format or "").strip() or "table"
    return not args.quiet and (fmt in ("table", "json") or ".Local" in fmt
                               or re.search(r"json\s+\.\s*-?}}", fmt) is not None)


def _extra_fields(args: argparse.Namespace) -> tuple[str, ...]:
    """The fields the platform options add; a template naming one without its option is a
    usage error that names the option (rather than an empty column)."""
    given = {"--platforms": args.platforms, "--platform": args.platform is not None,
             "--changes": args.changes}
    fmt = args.format or ""
    for name, flag in EXTRA_FIELDS:
        if not given[flag] and re.search(rf"\.{name}\b", fmt):
            raise UsageError(f"the field .{name} needs {flag}")
    return tuple(name for name, flag in EXTRA_FIELDS if given[flag])


def nothing_matched(args: argparse.Namespace, context: Context, reference: Reference) -> str:
    """Why a listing is empty, and when the newest build is from (and the first, when
    ``--until`` lies before it): the one line that replaces a bare header's silence."""
    asked = " ".join(f"{flag} {value}" for flag, value in
                     (("--since", args.since), ("--until", args.until)) if value is not None)
    line = f"no build of {reference.tagged} matches {asked}"
    client = context.client(reference.registry)
    try:
        newest = client.history(reference, last=1)
        if not newest:
            return f"{reference.tagged} has no builds"
        line += (f"; the newest, #0, is from {newest[0].timestamp} "
                 f"({format_age(utcnow() - newest[0].updated)})")
        if args.until is not None:
            oldest = min(client.history_page(reference, Window(None, None)), default=None)
            if oldest is not None and oldest.updated > parse_when(args.until, utcnow()).end:
                line += f", the first is from {oldest.timestamp}"
    except CghistoryError:
        pass  # the listing itself worked: say what is known
    return line


def run(args: argparse.Namespace, context: Context, streams: Streams) -> int:
    wanted_facts = None
    if args.platform is not None or args.platforms or args.distinct or args.changes:
        from ..listfacts import Wanted  # buildfacts and its readers: only when asked for

        wanted_facts = Wanted.from_args(args)  # usage errors before any request
    extra = () if args.quiet else _extra_fields(args)
    lookup = None
    if _wants_local(args):
        from ..local import LocalLookup

        # Started before the history reads so the engine answers while the network works.
        wanted = context.parse(args.image)
        lookup = LocalLookup(wanted.name, tag=wanted.tag_or_latest)
    if wanted_facts is not None:
        wanted_facts.prewarm(context, args.image)
    try:
        reference, builds, before = fetch_builds(args, context,
                                                 previous=wanted_facts is not None)
    except TagNotFound as error:
        wanted = context.parse(args.image)
        raise with_digest_hint(error, wanted, args.image, context.program) from None
    except RepositoryNotFound as error:
        raise with_command_hint(error, args.image, context.program) from None
    facts = None
    listed = len(builds)
    if wanted_facts is not None and builds:
        facts = wanted_facts.read(context, reference, builds, before, streams)
        if args.distinct:
            builds = [(index, build) for index, build in builds if facts.distinct(build.digest)]
    local = lookup.state(wait=context.settings.local_wait) if lookup is not None else None
    out = streams.stdout
    if args.quiet:
        out.writelines(build.digest + "\n" for _, build in builds)
    else:
        rows = rows_for(reference, builds, local)
        if facts is not None:
            for (_, build), row in zip(builds, rows, strict=True):
                row.update(facts.row(build.digest))
        json_format = (args.format or "").strip() == "json"
        fields = (JSON_FIELDS if json_format else FIELDS) + extra
        width = None
        if streams.stdout_is_tty and not args.no_trunc:
            width = terminal_width(streams)
        output.render(rows, args.format, out, fields=fields, headers=HEADERS,
                      table=table_for(builds, rows, args.no_trunc, local, facts, width))
    if not listed:
        # Like docker's filters: an empty result is not an error (exit 0), but say so.
        streams.stderr.write(nothing_matched(args, context, reference) + "\n")
    elif not builds:
        streams.stderr.write(f"none of the {listed} builds listed changed for {args.platform}\n")
    remember_reference(args.image)
    if args.since is None and args.until is None and not args.distinct:
        # The newest builds without gaps, as --index numbers them: completion may offer them.
        remember_builds(reference.registry, reference.repository, reference.tag_or_latest,
                        [build for _, build in builds])
    return 0


def terminal_width(streams: Streams) -> int:
    """The columns of the terminal stdout writes to (the table's), else stderr's."""
    import os

    try:
        return os.get_terminal_size(streams.stdout.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return streams.width
