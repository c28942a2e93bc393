"""``docker cghistory pin [PATH ...]``: pin Dockerfiles and compose files to a build.

Recipe: find the files, find the references in them (pure readers), resolve each distinct
reference once and concurrently (history API, or a manifest HEAD where there is none), rewrite
the spans, write each changed file atomically. ``--check`` and ``--dry-run`` stop before
writing.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TextIO

from .. import rewrite
from ..complete import remember_reference
from ..context import Context
from ..errors import CghistoryError, UsageError, sanitize
from ..reference import Reference
from ..timespec import format_timestamp, parse_age, parse_when, utcnow

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


def _digest_only_pin(site: rewrite.Site) -> bool:
    """``name@sha256:…``: which tag it came from is unknown, so it is never moved."""
    return site.pinned and site.reference.tag is None


def _key(reference: Reference) -> Key:
    return reference.registry, reference.repository, reference.tag or "latest"


def _has_history_api(registry: str) -> bool:
    host = registry.lower()
    return not any(host == known or host.endswith("." + known) for known in NO_HISTORY_API)


def _resolver(context: Context, at: datetime | None, cooldown: timedelta | None) -> Resolve:
    """A function resolving one (registry, repository, tag) to the wanted build."""
    now = utcnow()
    cutoff = at if at is not None else (now - cooldown if cooldown is not None else None)
    asked = "--at" if at is not None else "--cooldown" if cooldown is not None else None

    def resolve(key: Key) -> Wanted:
        registry, repository, tag = key
        reference = Reference(registry, repository, tag)
        client = context.client(registry)
        try:
            if _has_history_api(registry):
                try:
                    builds = client.history(reference, until=cutoff, last=1)
                except CghistoryError as error:
                    if "no tag history API" not in str(error):
                        raise
                else:
                    if not builds:
                        when = format_timestamp(cutoff) if cutoff else "now"
                        return Wanted(problem=f"no build of {reference.tagged} at {when}")
                    return Wanted(builds[0].digest, build_time=builds[0].updated)
            if asked:
                return Wanted(problem=f"{asked} needs the tag history API, which "
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


def _read(
    path: str, tally: Tally
) -> tuple[bytes, tuple[list[rewrite.Site], list[rewrite.Skip]]] | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        sites, skips = rewrite.find_sites(path, data)
    except OSError as error:
        tally.failures.append(f"{sanitize(path)}: cannot read: {error.strerror}")
        return None
    except CghistoryError as error:
        tally.failures.append(str(error))
        return None
    for skip in skips:
        tally.skipped.append(f"{sanitize(skip.path)}:{skip.line}: {sanitize(skip.text)}: "
                             f"{sanitize(skip.reason)}")
    return data, (sites, skips)


def run(args: argparse.Namespace, context: Context) -> int:
    if args.at and args.cooldown:
        raise UsageError("--at and --cooldown cannot be used together")
    now = utcnow()
    at = parse_when(args.at, now) if args.at else None
    cooldown = parse_age(args.cooldown) if args.cooldown else None
    paths = args.paths or ["."]
    for path in paths:
        if not os.path.exists(path):
            raise CghistoryError(f"no such file or directory: {sanitize(path)}")
    tally = Tally()
    files = rewrite.discover(paths)
    tally.files = len(files)
    read: dict[str, tuple[bytes, tuple[list[rewrite.Site], list[rewrite.Skip]]]] = {}
    for path in files:
        found = _read(path, tally)
        if found is not None:
            read[path] = found

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
    wanted = _resolve_all(keys, _resolver(context, at, cooldown))
    for key, result in sorted(wanted.items()):
        if result.problem:
            tally.failures.append(f"{'/'.join(key[:2])}:{key[2]}: {sanitize(result.problem)}")

    out = sys.stdout

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
            tally.updated += 1
        else:
            tally.pinned += 1
        if not args.dry_run:
            out.write(f"{where}: {site.text} -> {text}\n")
        return text

    for path, (data, found) in read.items():
        try:
            new_data, _, _ = rewrite.rewrite(path, data, replacement, found=found)
        except CghistoryError as error:
            tally.failures.append(str(error))
            continue
        if new_data == data:
            continue
        tally.changed_files += 1
        if args.dry_run:
            _diff(path, data, new_data, out)
            continue
        try:
            rewrite.atomic_write(path, new_data)
        except CghistoryError as error:
            tally.failures.append(str(error))
    _summary(tally, args)
    for registry, repository, tag in wanted:
        if wanted[(registry, repository, tag)].digest:
            remember_reference(f"{registry}/{repository}:{tag}")
    if tally.violations:
        for line in tally.violations:
            out.write(line + "\n")
        return 1
    return 1 if tally.failures else 0


def _diff(path: str, old: bytes, new: bytes, out: TextIO) -> None:
    before = old.decode("utf-8").splitlines(keepends=True)
    after = new.decode("utf-8").splitlines(keepends=True)
    shown = sanitize(path)
    out.writelines(difflib.unified_diff(before, after, f"a/{shown}", f"b/{shown}"))


def _summary(tally: Tally, args: argparse.Namespace) -> None:
    err = sys.stderr
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

