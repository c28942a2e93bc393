"""``docker cghistory pin [PATH ...]``: pin Dockerfiles and compose files to a build.

Recipe: find the files, find the references in them (pure readers), keep those ``--image``
names, resolve each distinct reference once and concurrently (history API, or a manifest HEAD
where there is none), decide each reference's status (``pinning``, pure), rewrite the spans,
write each changed file atomically. ``--check`` and ``--dry-run`` stop before writing. A file
is written only if it is still the one read (resolving takes a while, and an edit made
meanwhile must survive), has no other hard link and is not read-only; a file refused is left
as it is, reported in one line, and makes the exit status non-zero.

``--platform``: the pinned builds' indexes are read in the same pool, queued ahead of the
resolutions, and each resolution reads its selected build's index right after choosing it
(``pinbuilds``); ``pinning.decide`` compares them. ``--changes`` then compares each distinct
move once (``diff``'s comparison) and renders it (``pinchanges``), after pin's own output.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import pinning, rewrite, selection
from ..complete import remember_reference
from ..context import Context
from ..errors import CghistoryError, InvalidReference, UsageError, sanitize
from ..pinning import Key, Outcome, Wanted
from ..pinresolve import (  # noqa: F401 - tests reach these through this module
    MAX_RESOLVERS,
    NO_HISTORY_API,
    Resolve,
    _has_history_api,
    _resolve_all,
    _resolver,
    _Seen,
    _with_platforms,
)
from ..platforms import Platform, parse_platform
from ..reference import Reference
from ..rewrite.files import looked_for
from ..timespec import utcnow

if TYPE_CHECKING:
    from .. import pinbuilds
    from ..streams import Streams

__all__ = ["Key", "Resolve", "Wanted", "run"]

Found = tuple[rewrite.Snapshot, tuple[list[rewrite.Site], list[rewrite.Skip]]]


def _platforms(args: argparse.Namespace, context: Context) -> tuple[list[Platform], bool]:
    """The platforms pins are judged by, and whether the command line named them. A bad
    one, wherever it was written, is a usage error naming its source and the form."""
    texts, source = context.settings.first_list("platforms")
    out = []
    for text in texts:
        try:
            out.append(parse_platform(text))
        except UsageError as error:
            raise UsageError(f"{source}: {error}") from None
    return list(dict.fromkeys(out)), source == "--platform"


def _filters(images: list[str], context: Context) -> list[tuple[str, Reference]]:
    """``--image`` values read as every command reads an image (short names included)."""
    filters = []
    for text in images:
        try:
            filters.append((text, context.parse(text)))
        except InvalidReference as error:
            raise UsageError(f"--image: {error}") from None
    return filters


def _nothing_found(paths: list[str], outside: list[str]) -> str:
    where = ", ".join(sanitize(path) for path in paths)
    refused = (f"; {len(outside)} symlink{'s' if len(outside) != 1 else ''} to files outside "
               "the tree not followed" if outside else "")
    return f"no Dockerfile or compose file found in {where} (looked for {looked_for()}){refused}"


def _read(target: rewrite.Target, report: pinning.Report) -> Found | None:
    try:
        snapshot = rewrite.read_snapshot(target)
        return snapshot, rewrite.find_sites(target.path, snapshot.data)
    except CghistoryError as error:
        report.failures.append(str(error))
        line = getattr(error, "line", None)
        report.outcomes.append(pinning.Outcome(target.path, line, None, None, pinning.FAILED,
                                               str(error)))
        return None


def run(args: argparse.Namespace, context: Context, streams: Streams) -> int:
    now = utcnow()
    selector = selection.parse(args, now)  # the parser lets at most one through
    filters = _filters(args.image or [], context)
    images = [reference for _, reference in filters]
    pinning.check_scope(images, selector.flag if selector else None)
    paths = args.paths or ["."]
    for path in paths:
        if not os.path.exists(path):
            raise CghistoryError(f"no such file or directory: {sanitize(path)}")
    files, outside = rewrite.discover_targets(paths)
    if not files:
        # A CI job run from the wrong folder must not pass for ever.
        raise CghistoryError(_nothing_found(paths, outside))
    platforms, named = _platforms(args, context)
    if named and not (args.update or args.check or selector):
        raise UsageError("--platform decides whether a pinned reference moves: give it with "
                         "--update, --check or a build selector")
    if args.changes and not (args.update or args.check or args.dry_run):
        raise UsageError("--changes shows what moving pins changes: give it with --update, "
                         "--check or --dry-run")
    changes_platform = None
    if args.changes:
        from .. import hostplatform

        changes_platform = ((lambda: platforms[0]) if platforms
                            else hostplatform.in_background())
    options = pinning.Options(update=args.update, check=args.check,
                              digest_only=args.digest_only, selected=selector is not None,
                              platforms=tuple(platforms))
    report = pinning.Report(files=len(files), notes=list(outside), platforms=tuple(platforms))
    read: dict[str, Found] = {}
    for target in files:
        found = _read(target, report)
        if found is not None:
            read[target.path] = found
    chosen = {path: ([s for s in sites if pinning.matches(images, s.reference)],
                     [k for k in skips if pinning.skip_matches(images, k)])
              for path, (_, (sites, skips)) in read.items()}
    _unmatched(filters, chosen, report)

    keys = [pinning.key_of(site.reference) for sites, _ in chosen.values() for site in sites
            if pinning.needs_build(site, options)]
    resolve = _resolver(context, selector, now)
    reads = None
    early: list[Callable[[], object]] = []
    if platforms:
        from .. import pinbuilds

        reads = pinbuilds.PlatformReads(context)
        pinned: dict[Key, set[str]] = {}
        for sites, _ in chosen.values():
            for site in sites:
                if (site.pinned and site.reference.digest and pinning.needs_build(site, options)
                        and not pinning.digest_only_pin(site)):
                    pinned.setdefault(pinning.key_of(site.reference), set()).add(
                        site.reference.digest)
        resolve = _with_platforms(resolve, reads, pinned)
        early = reads.jobs((key[0], key[1], digest) for key, digests in sorted(pinned.items())
                           for digest in sorted(digests))
    wanted = _resolve_all(keys, resolve, early)
    for key, result in sorted(wanted.items()):
        if result.problem:
            report.failures.append(f"{'/'.join(key[:2])}:{key[2]}: {sanitize(result.problem)}")

    as_json = args.format == "json"
    as_markdown = args.format == "markdown"
    colour = streams.stdout_is_tty and not streams.no_color
    out = streams.stdout
    for path, (snapshot, found) in read.items():
        sites, skips = chosen[path]
        decided = {(site.start, site.end): pinning.decide(
            site, wanted.get(pinning.key_of(site.reference)), options,
            reads.found if reads is not None else None) for site in sites}
        for outcome in decided.values():
            result = wanted.get(pinning.key_of(outcome.site.reference)) if outcome.site else None
            if outcome.status == pinning.FAILED and result is not None and result.digest \
                    and outcome.reason not in report.failures:
                report.failures.append(outcome.reason or "failed")  # a platform read failed
        start = len(report.outcomes)
        outcomes = sorted([*decided.values(), *map(pinning.skipped, skips)],
                          key=lambda outcome: outcome.line or 0)
        report.outcomes.extend(outcomes)
        if args.check:
            continue

        def replacement(site: rewrite.Site,
                        decided: dict[tuple[int, int], pinning.Outcome] = decided) -> str | None:
            outcome = decided.get((site.start, site.end))  # None: not an --image reference
            if outcome is None or outcome.status not in (pinning.PINNED, pinning.UPDATED):
                return None
            return outcome.new

        try:
            # Every site of the file, so that reading the result back finds them all.
            new_data, _, _ = rewrite.rewrite(path, snapshot.data, replacement, found=found)
            if new_data == snapshot.data:
                continue
            if not args.dry_run:
                rewrite.atomic_write(path, new_data, snapshot)
        except CghistoryError as error:
            report.failures.append(str(error))
            report.fail_file(path, start, str(error))
            continue
        if as_json or as_markdown:
            continue
        if args.dry_run:
            out.write(pinning.diff(path, snapshot.data, new_data, colour))
        else:
            out.writelines(outcome.change() + "\n" for outcome in outcomes
                           if outcome.status in (pinning.PINNED, pinning.UPDATED))
    if args.strict and report.skipped:
        report.failures.append(f"--strict: {report.skipped} skipped (listed above): a "
                               "reference that cannot be pinned cannot be checked")
    for (registry, repository, tag), result in wanted.items():
        if result.digest:
            remember_reference(f"{registry}/{repository}:{tag}")
    if as_markdown or changes_platform is not None:
        _show_moves(args, context, streams, report, wanted, changes_platform)
    elif as_json:
        out.write(pinning.json_lines(sorted(report.outcomes, key=lambda item: item.path)))
    elif args.check:
        out.writelines(outcome.change() + "\n" for outcome in report.violations())
    # Every mode: the lines first, the summary last. stdout is block-buffered on a pipe and
    # stderr is not, so without the flush a terminal fed by both (2>&1, CI logs) would get
    # the summary first.
    out.flush()
    streams.stderr.write(pinning.summary(report, args.check, args.dry_run, args.update))
    streams.stderr.flush()
    return report.exit_code(args.check)


def _show_moves(args: argparse.Namespace, context: Context, streams: Streams,
                report: pinning.Report, wanted: dict[Key, Wanted],
                changes_platform: Callable[[], Platform] | None) -> None:
    """stdout for ``--changes`` or ``--format markdown``: what moving each pin changes."""
    from .. import builddiff, pinbuilds, pinchanges

    out = streams.stdout
    moves = _moves(report.outcomes, wanted)
    found: dict[pinbuilds.Move, pinbuilds.MoveChanges] = {}
    if changes_platform is not None and moves:
        found = pinbuilds.compare_moves(context, list(moves), changes_platform(),
                                        warn=builddiff.warner(streams, None),
                                        workers=MAX_RESOLVERS)
    shown = pinchanges.group(
        {(m.image, m.old, m.new): places for m, places in moves.items()},
        {(m.image, m.old, m.new): (c.report, c.problem) for m, c in found.items()})
    platform_name = str(changes_platform()) if changes_platform is not None else None
    if args.format == "json":
        # In file order (a file that could not be read was reported before the others).
        ordered = sorted(report.outcomes, key=lambda item: item.path)
        out.write(_json_with_changes(ordered, wanted, found))
    elif args.format == "markdown":
        verb = "moved" if args.update and not (args.check or args.dry_run) else "to move"
        out.write(pinchanges.render_markdown(shown, platform_name, verb))
    else:
        if args.check:
            out.writelines(outcome.change() + "\n" for outcome in report.violations())
        if platform_name is not None:
            out.write(pinchanges.render_text(shown, platform_name))


def _moves(outcomes: list[Outcome],
           wanted: dict[Key, Wanted]) -> dict[pinbuilds.Move, list[str]]:
    """Each distinct move of a pinned reference (updated, or at another build), with the
    places it is written, in file order."""
    moves: dict[pinbuilds.Move, list[str]] = {}
    for outcome in sorted(outcomes, key=lambda item: (item.path, item.line or 0)):
        move = _move_of(outcome, wanted)
        if move is not None:
            moves.setdefault(move, []).append(outcome.where)
    return moves


def _move_of(outcome: Outcome, wanted: dict[Key, Wanted]) -> pinbuilds.Move | None:
    from .. import pinbuilds

    site = outcome.site
    if outcome.status not in (pinning.UPDATED, pinning.OTHER) or site is None:
        return None
    reference = site.reference
    key = pinning.key_of(reference)
    result = wanted.get(key)
    if result is None or result.digest is None or reference.digest is None:
        return None
    return pinbuilds.Move(f"{key[0]}/{key[1]}:{key[2]}", key[0], key[1], reference.digest,
                          result.digest, new_time=result.build_time,
                          old_time=result.times.get(reference.digest),
                          tag=key[2] if _has_history_api(key[0]) else None)


def _json_with_changes(outcomes: list[Outcome], wanted: dict[Key, Wanted],
                       found: dict[pinbuilds.Move, pinbuilds.MoveChanges]) -> str:
    """``--format json --changes``: a moved reference's object gets ``Changes``, ``diff``'s
    json object (or ``{"Error": why}``); the others are as without ``--changes``."""
    import json

    from ..diffreport import to_document

    lines = []
    for outcome in outcomes:
        document = outcome.as_json()
        move = _move_of(outcome, wanted)
        if move is not None:
            changes = found.get(move)
            document["Changes"] = (to_document(changes.report) if changes and changes.report
                                   else {"Error": changes.problem if changes else None})
        lines.append(json.dumps(document, separators=(",", ":"), ensure_ascii=False) + "\n")
    return "".join(lines)



def _unmatched(filters: list[tuple[str, Reference]],
               chosen: dict[str, tuple[list[rewrite.Site], list[rewrite.Skip]]],
               report: pinning.Report) -> None:
    """An ``--image`` that names nothing in the tree is a typo or the wrong folder: say so,
    rather than report success for having changed nothing."""
    for text, reference in filters:
        hit = any(pinning.matches([reference], site.reference)
                  for sites, _ in chosen.values() for site in sites)
        hit = hit or any(pinning.skip_names(reference, skip)
                         for _, skips in chosen.values() for skip in skips)
        if not hit:
            shown = f"{reference.name}:{reference.tag}" if reference.tag else reference.name
            report.failures.append(f"--image {sanitize(text)}: no reference to {shown} in the "
                                   f"{report.files} file{'s' if report.files != 1 else ''} "
                                   "scanned")
