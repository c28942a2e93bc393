"""``docker cghistory pin [PATH ...]``: pin Dockerfiles and compose files to a build.

Recipe: find the files, find the references in them (pure readers), resolve each distinct
reference once and concurrently (history API, or a manifest HEAD where there is none), rewrite
the spans, write each changed file atomically. ``--check`` and ``--dry-run`` stop before
writing. A file is written only if it is still the one read (resolving takes a while, and an
edit made meanwhile must survive), has no other hard link and is not read-only; a file refused
is left as it is, reported in one line, and makes the exit status non-zero.
"""

from __future__ import annotations

import argparse
import difflib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, TextIO

from .. import rewrite, selection
from ..complete import remember_reference
from ..context import Context
from ..errors import CghistoryError, NoHistoryAPI, escape_controls, sanitize
from ..reference import Reference
from ..selection import Selector
from ..timespec import utcnow

if TYPE_CHECKING:
    from ..streams import Streams

# Registries known to have no tag history API: skip the attempt and read the manifest.
NO_HISTORY_API = ("docker.io", "ghcr.io", "quay.io", "gcr.io", "mcr.microsoft.com",
                  "public.ecr.aws", "registry.k8s.io", "nvcr.io")
# The registry client keeps 16 connections per host; a tree rarely names more references.
MAX_RESOLVERS = 16


@dataclass(frozen=True)
class Wanted:
    """What one distinct reference resolves to, or why it cannot be."""

    digest: str | None = None
    problem: str | None = None
    build_time: datetime | None = None


Key = tuple[str, str, str]  # (registry, repository, tag)
Resolve = Callable[[Key], Wanted]


@dataclass
class Tally:
    files: int = 0
    changed_files: int = 0
    pinned: int = 0
    updated: int = 0
    already: int = 0
    skipped: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


@dataclass
class FilePins:
    """One file's replacements, shown and counted only once the file is written."""

    lines: list[str] = field(default_factory=list)
    pinned: int = 0
    updated: int = 0

    def commit(self, tally: Tally, out: TextIO | None) -> None:
        tally.changed_files += 1
        tally.pinned += self.pinned
        tally.updated += self.updated
        if out is not None:
            out.writelines(line + "\n" for line in self.lines)


Found = tuple[rewrite.Snapshot, tuple[list[rewrite.Site], list[rewrite.Skip]]]


def _digest_only_pin(site: rewrite.Site) -> bool:
    """``name@sha256:…``: which tag it came from is unknown, so it is never moved."""
    return site.pinned and site.reference.tag is None


def _key(reference: Reference) -> Key:
    return reference.registry, reference.repository, reference.tag_or_latest


def _has_history_api(registry: str) -> bool:
    host = registry.lower()
    return not any(host == known or host.endswith("." + known) for known in NO_HISTORY_API)


def _resolver(context: Context, selector: Selector | None, now: datetime) -> Resolve:
    """A function resolving one (registry, repository, tag) to the wanted build.

    The build is chosen by ``selection`` (reads, rule and error wording), as ``pull`` chooses
    it: the same ``--at`` or ``--cooldown`` pins the build ``pull`` would pull, and no flag
    pins the newest build. Where there is no history API and no flag, the tag's current
    digest (a manifest HEAD) is the newest build.
    """

    def resolve(key: Key) -> Wanted:
        registry, repository, tag = key
        reference = Reference(registry, repository, tag)
        client = context.client(registry)
        try:
            if _has_history_api(registry):
                try:
                    choice = selection.fetch(client, reference, selector or selection.NEWEST,
                                             now)
                except NoHistoryAPI:
                    pass  # read the manifest below
                else:
                    return Wanted(choice.build.digest, build_time=choice.build.updated)
            if selector is not None:
                return Wanted(problem=f"{selector.flag} needs the tag history API, which "
                                      f"{registry} does not have")
            digest = client.manifest_digest(reference)
            if digest is None:
                return Wanted(problem=f"tag not found: {reference.tagged}")
            return Wanted(digest)
        except CghistoryError as error:
            return Wanted(problem=str(error))

    return resolve


def _resolve_all(keys: Iterable[Key], resolve: Resolve) -> dict[Key, Wanted]:
    keys = sorted(set(keys))
    if len(keys) <= 1:
        return {key: resolve(key) for key in keys}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(MAX_RESOLVERS, len(keys))) as pool:
        return dict(zip(keys, pool.map(resolve, keys), strict=True))


def _read(target: rewrite.Target, tally: Tally) -> Found | None:
    try:
        snapshot = rewrite.read_snapshot(target)
        sites, skips = rewrite.find_sites(target.path, snapshot.data)
    except CghistoryError as error:
        tally.failures.append(str(error))
        return None
    for skip in skips:
        tally.skipped.append(f"{sanitize(skip.path)}:{skip.line}: {sanitize(skip.text)}: "
                             f"{sanitize(skip.reason)}")
    return snapshot, (sites, skips)


def run(args: argparse.Namespace, context: Context, streams: Streams) -> int:
    now = utcnow()
    selector = selection.parse(args, now)  # --at or --cooldown (the parser allows one)
    paths = args.paths or ["."]
    for path in paths:
        if not os.path.exists(path):
            raise CghistoryError(f"no such file or directory: {sanitize(path)}")
    tally = Tally()
    files, outside = rewrite.discover_targets(paths)
    tally.files = len(files)
    tally.skipped.extend(outside)
    read: dict[str, Found] = {}
    for target in files:
        found = _read(target, tally)
        if found is not None:
            read[target.path] = found

    def needs(site: rewrite.Site) -> bool:
        return (not site.pinned or args.update) and not _digest_only_pin(site)

    if args.update:
        for _, (sites, _) in read.values():
            tally.skipped.extend(
                f"{sanitize(site.path)}:{site.line}: {sanitize(site.text)}: a digest-only pin "
                "names no tag to update from; write NAME:TAG@DIGEST to let --update move it"
                for site in sites if _digest_only_pin(site)
            )

    keys = [_key(site.reference) for _, (sites, _) in read.values() for site in sites
            if needs(site)]
    wanted = _resolve_all(keys, _resolver(context, selector, now))
    for key, result in sorted(wanted.items()):
        if result.problem:
            tally.failures.append(f"{'/'.join(key[:2])}:{key[2]}: {sanitize(result.problem)}")

    out = streams.stdout
    current = FilePins()

    def replacement(site: rewrite.Site) -> str | None:
        if not needs(site):
            if not (args.update and _digest_only_pin(site)):  # those are counted as skipped
                tally.already += 1
            return None
        result = wanted[_key(site.reference)]
        if result.digest is None:
            return None
        if site.reference.digest == result.digest:
            tally.already += 1
            return None
        text = rewrite.pinned_text(site.text, result.digest, args.digest_only)
        where = f"{sanitize(site.path)}:{site.line}"
        if args.check:
            tally.violations.append(f"{where}: {site.text} -> {text}")
            return None
        if site.pinned:
            current.updated += 1
        else:
            current.pinned += 1
        current.lines.append(f"{where}: {site.text} -> {text}")
        return text

    for path, (snapshot, found) in read.items():
        current = FilePins()
        try:
            new_data, _, _ = rewrite.rewrite(path, snapshot.data, replacement, found=found)
        except CghistoryError as error:
            tally.failures.append(str(error))
            continue
        if new_data == snapshot.data:
            continue
        if args.dry_run:
            current.commit(tally, None)
            _diff(path, snapshot.data, new_data, out)
            continue
        try:
            rewrite.atomic_write(path, new_data, snapshot)
        except CghistoryError as error:
            tally.failures.append(str(error))
            continue
        current.commit(tally, out)
    _summary(tally, args, streams.stderr)
    for registry, repository, tag in wanted:
        if wanted[(registry, repository, tag)].digest:
            remember_reference(f"{registry}/{repository}:{tag}")
    if tally.violations:
        for line in tally.violations:
            out.write(line + "\n")
        return 1
    return 1 if tally.failures else 0


def _diff(path: str, old: bytes, new: bytes, out: TextIO) -> None:
    """A unified diff ``git apply`` takes, with the file's control characters made visible.

    The text is the user's file, possibly hostile: an escape sequence in a comment must not
    reach the terminal. Tabs and line endings (``\\r\\n`` included) are kept as they are.
    """
    shown = sanitize(path)
    for line in difflib.unified_diff(_lines(old), _lines(new), f"a/{shown}", f"b/{shown}"):
        body, newline = (line[:-1], "\n") if line.endswith("\n") else (line, "")
        carriage = "\r" if newline and body.endswith("\r") else ""
        if carriage:
            body = body[:-1]
        out.write(escape_controls(body, keep="\t") + carriage + newline)
        if not newline:
            out.write("\n\\ No newline at end of file\n")


def _lines(data: bytes) -> list[str]:
    """Lines as git counts them (``\\n`` only; ``str.splitlines`` also splits at \\x1c, \\f…)."""
    parts = data.decode("utf-8").split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _summary(tally: Tally, args: argparse.Namespace, err: TextIO) -> None:
    verb = "would pin" if args.dry_run or args.check else "pinned"
    err.write(
        f"{tally.files} file{'s' if tally.files != 1 else ''} scanned, "
        f"{tally.pinned} reference{'s' if tally.pinned != 1 else ''} {verb}, "
        f"{tally.updated} updated, {tally.already} already pinned, "
        f"{len(tally.skipped)} skipped"
        + (f", {len(tally.violations)} not pinned as wanted" if args.check else "")
        + (f", {len(tally.failures)} failed" if tally.failures else "") + "\n"
    )
    for line in tally.skipped:
        err.write(f"  skipped {line}\n")
    for line in tally.failures:
        err.write(f"  error: {line}\n")

