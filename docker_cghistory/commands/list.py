"""``docker cghistory [list] IMAGE[:TAG]``: every build of a tag, newest first."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

from .. import output, selection
from ..complete import remember_builds, remember_reference
from ..context import Context
from ..errors import CghistoryError, TagNotFound, UsageError
from ..history import Build, Window
from ..notfound import with_digest_hint
from ..reference import Reference
from ..timespec import format_age, parse_when, utcnow

if TYPE_CHECKING:
    from ..local import LocalState
    from ..streams import Streams

FIELDS = ("Index", "Updated", "Age", "Digest", "Reference", "Tag", "Local", "LocalTag")
JSON_FIELDS = ("Index", "Updated", "Digest", "Reference", "Tag", "Local", "LocalTag")
HEADERS = {"Index": "#", "Updated": "UPDATED", "Age": "AGE", "Digest": "DIGEST",
           "Reference": "REFERENCE", "Tag": "TAG", "Local": "LOCAL", "LocalTag": "LOCAL TAG"}
# The LOCAL column: the build the local IMAGE:TAG points at, and builds merely present.
MARK_TAG, MARK_PRESENT = "tag", "yes"


def fetch_builds(args: argparse.Namespace,
                 context: Context) -> tuple[Reference, list[tuple[int, Build]]]:
    """The reference and its builds as ``--since``/``--until``/``--last`` ask, each with its
    index in the full listing (``selection.listing``): the ``#`` is what ``--index`` reads."""
    reference = context.parse(args.image)
    now = utcnow()
    since = parse_when(args.since, now) if args.since else None
    until = parse_when(args.until, now) if args.until else None
    if since and until and since.start > until.end:
        raise UsageError("--since is later than --until")
    if args.last is not None and args.last < 1:
        raise UsageError("--last takes a number of builds, 1 or more")
    client = context.client(reference.registry)
    return reference, selection.listing(client, reference, since=since, until=until,
                                        last=args.last)


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
              local: LocalState | None) -> tuple[list[str], list[list[str]]]:
    header = ["#", "UPDATED", "AGE", "DIGEST"] + (["LOCAL"] if local is not None else [])
    cells = []
    for (_, build), row in zip(builds, rows, strict=True):
        line = [
            str(row["Index"]),
            str(row["Updated"]),  # exact: a bare second, pasted into --at, covers it all
            str(row["Age"]),
            build.digest if no_trunc else build.short,
        ]
        if local is not None:
            line.append(_mark(row))
        cells.append(line)
    return header, cells


def _wants_local(args: argparse.Namespace) -> bool:
    """The table, json and templates that name ``.Local`` (or print the whole row) ask the
    engine; ``-q`` and other templates never pay for it."""
    fmt = (args.format or "").strip() or "table"
    return not args.quiet and (fmt in ("table", "json") or ".Local" in fmt
                               or re.search(r"json\s+\.\s*-?}}", fmt) is not None)


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
    lookup = None
    if _wants_local(args):
        from ..local import LocalLookup

        # Started before the history reads so the engine answers while the network works.
        wanted = context.parse(args.image)
        lookup = LocalLookup(wanted.name, tag=wanted.tag_or_latest)
    try:
        reference, builds = fetch_builds(args, context)
    except TagNotFound as error:
        wanted = context.parse(args.image)
        raise with_digest_hint(error, wanted, args.image, context.program) from None
    local = lookup.state(wait=context.settings.local_wait) if lookup is not None else None
    out = streams.stdout
    if args.quiet:
        out.writelines(build.digest + "\n" for _, build in builds)
    else:
        rows = rows_for(reference, builds, local)
        fields = JSON_FIELDS if (args.format or "").strip() == "json" else FIELDS
        output.render(rows, args.format, out, fields=fields, headers=HEADERS,
                      table=table_for(builds, rows, args.no_trunc, local))
    if not builds:
        # Like docker's filters: an empty result is not an error (exit 0), but say so.
        streams.stderr.write(nothing_matched(args, context, reference) + "\n")
    remember_reference(args.image)
    if args.since is None and args.until is None:
        # The newest builds without gaps, as --index numbers them: completion may offer them.
        remember_builds(reference.registry, reference.repository, reference.tag_or_latest,
                        [build for _, build in builds])
    return 0
