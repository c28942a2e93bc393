"""``docker cghistory [list] IMAGE[:TAG]``: every build of a tag, newest first."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .. import output, selection
from ..complete import remember_builds, remember_reference
from ..context import Context
from ..errors import UsageError
from ..history import Build
from ..reference import Reference
from ..timespec import format_age, parse_when, utcnow

if TYPE_CHECKING:
    from ..streams import Streams

FIELDS = ("Index", "Updated", "Age", "Digest", "Reference", "Tag", "Local")
JSON_FIELDS = ("Index", "Updated", "Digest", "Reference", "Tag")
HEADERS = {"Index": "#", "Updated": "UPDATED", "Age": "AGE", "Digest": "DIGEST",
           "Reference": "REFERENCE", "Tag": "TAG", "Local": "LOCAL"}


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
             local: set[str] | None) -> list[dict]:
    """One row per build for every format; ``Index`` is the full-listing index, ``Updated``
    the exact time (``Build.timestamp``): both, pasted back, select this build."""
    now = utcnow()
    return [
        {
            "Index": index,
            "Updated": build.timestamp,
            "Age": format_age(now - build.updated),
            "Digest": build.digest,
            "Reference": f"{reference.name}@{build.digest}",
            "Tag": reference.tag_or_latest,
            "Local": (build.digest in local) if local is not None else None,
        }
        for index, build in builds
    ]


def table_for(builds: list[tuple[int, Build]], rows: list[dict], no_trunc: bool,
              local: set[str] | None) -> tuple[list[str], list[list[str]]]:
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
            line.append("yes" if row["Local"] else "")
        cells.append(line)
    return header, cells


def _wants_local(args: argparse.Namespace) -> bool:
    """Only the table shows LOCAL; json and templates without ``.Local`` never pay for it."""
    fmt = (args.format or "").strip() or "table"
    return not args.quiet and (fmt == "table" or ".Local" in fmt)


def run(args: argparse.Namespace, context: Context, streams: Streams) -> int:
    lookup = None
    if _wants_local(args):
        from ..engine import LocalLookup

        # Started before the history reads so the engine answers while the network works.
        lookup = LocalLookup(context.parse(args.image).name)
    reference, builds = fetch_builds(args, context)
    local = lookup.result(wait=0.2) if lookup is not None else None
    out = streams.stdout
    if args.quiet:
        out.writelines(build.digest + "\n" for _, build in builds)
    else:
        rows = rows_for(reference, builds, local)
        fields = JSON_FIELDS if (args.format or "").strip() == "json" else FIELDS
        output.render(rows, args.format, out, fields=fields, headers=HEADERS,
                      table=table_for(builds, rows, args.no_trunc, local))
    remember_reference(args.image)
    if args.since is None and args.until is None:
        # The newest builds without gaps, as --index numbers them: completion may offer them.
        remember_builds(reference.registry, reference.repository, reference.tag_or_latest,
                        [build for _, build in builds])
    return 0
