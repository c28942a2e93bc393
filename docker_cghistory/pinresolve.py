"""Resolving pin's references: each distinct (registry, repository, tag) to the wanted build.

Why apart from the command: this is the adapter half of ``pin`` (the registry, the history
and its selection, the thread pool), while ``commands/pin.py`` finds files and writes them and
``pinning`` decides. The build is chosen by ``selection`` exactly as ``pull`` chooses it; a
registry without the history API gives the tag's current digest (a manifest HEAD).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from . import selection
from .errors import CghistoryError, NoHistoryAPI
from .history import Build, Window
from .pinning import Key, Wanted
from .reference import Reference
from .selection import Selector

if TYPE_CHECKING:
    from . import pinbuilds
    from .context import Context

# Registries known to have no tag history API: skip the attempt and read the manifest.
NO_HISTORY_API = ("docker.io", "ghcr.io", "quay.io", "gcr.io", "mcr.microsoft.com",
                  "public.ecr.aws", "registry.k8s.io", "nvcr.io")
# The registry client keeps 16 connections per host; a tree rarely names more references.
MAX_RESOLVERS = 16

Resolve = Callable[[Key], Wanted]


def _has_history_api(registry: str) -> bool:
    host = registry.lower()
    return not any(host == known or host.endswith("." + known) for known in NO_HISTORY_API)


def _resolver(context: Context, selector: Selector | None, now: datetime) -> Resolve:
    """A function resolving one (registry, repository, tag) to the wanted build.

    The build is chosen by ``selection`` (reads, rule and error wording), as ``pull`` chooses
    it: the same selector pins the build ``pull`` would pull, and no selector pins the newest
    build. Where there is no history API and no selector, the tag's current digest (a manifest
    HEAD) is the newest build.
    """

    def resolve(key: Key) -> Wanted:
        registry, repository, tag = key
        reference = Reference(registry, repository, tag)
        client = context.client(registry)
        try:
            if _has_history_api(registry):
                seen = _Seen(client)
                try:
                    choice = selection.fetch(seen, reference, selector or selection.NEWEST, now)
                except NoHistoryAPI:
                    pass  # read the manifest below
                else:
                    return Wanted(choice.build.digest, build_time=choice.build.timestamp,
                                  times=seen.times)
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


class _Seen:
    """The history reads ``selection`` makes, with every build's time kept: the build a pin
    is at may be among them, and ``--changes`` then shows its time without another read."""

    def __init__(self, client: selection.HistorySource) -> None:
        self.client = client
        self.times: dict[str, str] = {}

    def _keep(self, builds: list[Build]) -> list[Build]:
        for build in builds:
            self.times.setdefault(build.digest, build.timestamp)
        return builds

    def history(self, reference: Reference, *, since: datetime | None = None,
                until: datetime | None = None, last: int | None = None) -> list[Build]:
        return self._keep(self.client.history(reference, since=since, until=until, last=last))

    def history_page(self, reference: Reference, window: Window) -> list[Build]:
        return self._keep(self.client.history_page(reference, window))


def _resolve_all(keys: Iterable[Key], resolve: Resolve,
                 early: Sequence[Callable[[], object]] = ()) -> dict[Key, Wanted]:
    """Each key resolved once, concurrently; ``early`` jobs (reads that need no resolution)
    are queued ahead of the resolutions in the same pool."""
    keys = sorted(set(keys))
    if len(keys) + len(early) <= 1:
        for job in early:
            job()
        return {key: resolve(key) for key in keys}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(MAX_RESOLVERS, len(keys) + len(early))) as pool:
        for job in early:
            pool.submit(job)  # a job keeps its own result (and failure)
        return dict(zip(keys, pool.map(resolve, keys), strict=True))


def _with_platforms(resolve: Resolve, reads: pinbuilds.PlatformReads,
                    pinned: dict[Key, set[str]]) -> Resolve:
    """Resolve, then read the selected build's platforms when a pin of that tag is at
    another build (in this thread: the selected build is known only now)."""

    def resolve_and_read(key: Key) -> Wanted:
        result = resolve(key)
        if result.digest and pinned.get(key, set()) - {result.digest}:
            reads.read((key[0], key[1], result.digest))
        return result

    return resolve_and_read


