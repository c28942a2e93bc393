"""Per-build platform facts for the listing: each build's platform manifests, whether a
platform's manifest is the next older build's, and what each build changed for a platform.

Why it looks like this:
- ``list --platform``/``--platforms``/``--changes`` need one index (or plain manifest) per
  listed build, and ``--changes`` a package list per platform image. Each is read once per
  digest through ``content``/``buildfacts`` (kept on disk, checked against its digest), so a
  second listing reads nothing new; what is missing is read in parallel over the registry
  client's kept-alive connections (one shared client, safe for concurrent requests).
- A build whose index cannot be trusted (malformed, or listing a manifest the registry does
  not have) is one ``problem`` for the command to print, never a failed listing: the other
  builds are still shown. A build that merely lacks the platform is not a problem.
- "Same as the next older build" compares neighbours only: a manifest that comes back after
  a different one in between is a change, as it is for anyone who pulled the one between.
- Nothing here prints: ``progress`` and ``warn`` are callbacks for the command to render.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from . import buildfacts
from . import workers as _workers
from .changes import PackageChanges, diff_packages
from .content import Content
from .errors import CghistoryError, sanitize
from .packages import Package
from .platforms import Platform
from .transport import MAX_PARALLEL

# Small manifests, one request each: as many at once as the client keeps connections for
# (transport's pool holds MAX_PARALLEL * 2 per host), so none is opened only to be dropped.
WORKERS = MAX_PARALLEL * 2
T = TypeVar("T")
R = TypeVar("R")
Progress = Callable[[int, int], None]  # (done, total)
Warn = Callable[[str], None]


def parallel(function: Callable[[T], R], items: Sequence[T],
             workers: int = WORKERS) -> list[R]:
    return _workers.parallel(function, items, workers, "buildindex")


def _read_all(content: Content, function: Callable[[str], R], digests: list[str]) -> list[R]:
    """``function`` over every build: inline when each one's document is kept on disk (no
    request, no thread would wait on anything), else in parallel on the connections the
    listing's prewarm opened."""
    if all(content.is_kept(digest) for digest in digests):
        return [function(digest) for digest in digests]
    content.client.await_prewarm()
    return parallel(function, digests)


class _Slot(Generic[R]):
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: R | None = None
        self.error: BaseException | None = None


class Once(Generic[R]):
    """Each key computed once across threads; later callers wait for the first one's answer.

    The first caller computes inline, so a waiter only ever waits on work already running:
    no pool can deadlock on it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[str, _Slot[R]] = {}

    def get(self, key: str, compute: Callable[[], R]) -> R:
        with self._lock:
            slot = self._slots.get(key)
            owner = slot is None
            if slot is None:
                slot = self._slots[key] = _Slot()
        if owner:
            try:
                slot.value = compute()
            except BaseException as error:  # handed to every caller of this key
                slot.error = error
            finally:
                slot.done.set()
        else:
            slot.done.wait()
        if slot.error is not None:
            raise slot.error
        return slot.value  # type: ignore[return-value]


def _counter(total: int, progress: Progress | None) -> Callable[[], None]:
    lock, done = threading.Lock(), [0]

    def tick() -> None:
        if progress is None:
            return
        with lock:  # drawn under the lock too, so 7/7 never comes before 6/7
            done[0] += 1
            progress(done[0], total)

    return tick


# --- platforms of builds --------------------------------------------------------------------


@dataclass(frozen=True)
class BuildPlatforms:
    """One build's platforms and their manifest digests; ``found`` is ``None`` when the build
    could not be read (``problem`` says why, naming the build)."""

    found: dict[Platform, str] | None
    problem: str | None = None

    def digest_for(self, platform: Platform) -> str | None:
        return None if self.found is None else self.found.get(platform)


ALL = "all"


def read_platforms(content: Content, digests: Iterable[str], *,
                   check: Platform | str | None = None,
                   progress: Progress | None = None) -> dict[str, BuildPlatforms]:
    """Every build's platforms, read in parallel, each digest once.

    ``check``: the platform (or ``ALL``) whose child manifest must exist too; an index that
    names a manifest the registry does not have is a problem of that build. Children are read
    once per digest (consecutive builds share most of theirs) and kept on disk like indexes.
    """
    wanted = list(dict.fromkeys(digests))
    content.client.credential  # noqa: B018 - resolved once here, not raced by the threads
    children: Once[bool] = Once()
    tick = _counter(len(wanted), progress)

    def child_exists(digest: str) -> bool:
        return content.find_manifest(digest, what="platform manifest") is not None

    def one(digest: str) -> BuildPlatforms:
        try:
            found = buildfacts.platforms_of_build(content, digest)
            verify = (list(found.items()) if check == ALL else
                      [(p, d) for p, d in found.items() if p == check])
            for platform, child in verify:
                if child != digest and not children.get(child, lambda c=child: child_exists(c)):
                    return BuildPlatforms(None, f"build {digest[:19]}… lists a {platform} "
                                          f"manifest the registry does not have ({child[:19]}…)")
            return BuildPlatforms(found)
        except CghistoryError as error:
            return BuildPlatforms(None, f"build {digest[:19]}…: {sanitize(str(error), 300)}")
        finally:
            tick()

    return dict(zip(wanted, _read_all(content, one, wanted), strict=True))


def same_as(platform_digests: Sequence[str | None], indexes: Sequence[int],
            previous: str | None) -> list[int | None]:
    """For each listed build (newest first), the index of the next older build when its
    manifest is the same one, else ``None``. ``previous`` is the manifest of the build before
    the oldest listed one (read though not listed); a missing or unreadable manifest (``None``)
    is never the same as anything."""
    out: list[int | None] = []
    for position, (digest, index) in enumerate(zip(platform_digests, indexes, strict=True)):
        older = (platform_digests[position + 1] if position + 1 < len(platform_digests)
                 else previous)
        out.append(index + 1 if digest is not None and digest == older else None)
    return out


# --- what each build changed ----------------------------------------------------------------


@dataclass(frozen=True)
class ImageFacts:
    """One build's image for a platform: ``digest`` ``None`` when the build lacks the platform;
    ``packages`` ``None`` without package data; ``problem`` when it could not be read."""

    digest: str | None = None
    packages: tuple[Package, ...] | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Change:
    """What one listed build changed against the build before it.

    ``kind``: ``changes`` (``packages`` holds them), ``same`` (the same manifest), ``first``
    (no build before it), ``missing`` (this build lacks the platform), ``previous-missing``
    (the build before lacks it), ``no-data`` (no package data on one side), ``unreadable``.
    """

    kind: str
    packages: PackageChanges | None = None


def read_images(content: Content, digests: Iterable[str], platform: Platform, *,
                progress: Progress | None = None,
                warn: Warn | None = None) -> dict[str, ImageFacts]:
    """Each build's image for ``platform`` and its packages (SBOM, else the layers), read in
    parallel; a package list is derived once per platform image and kept on disk by
    ``buildfacts``."""
    wanted = list(dict.fromkeys(digests))
    content.client.credential  # noqa: B018 - resolved once here, not raced by the threads
    lists: Once[tuple[tuple[Package, ...] | None, str]] = Once()
    tick = _counter(len(wanted), progress)

    def one(digest: str) -> ImageFacts:
        try:
            image = buildfacts.platform_manifest(content, digest, platform)
            found, _ = lists.get(image.digest, lambda: buildfacts.packages_of(
                content, image, warn=warn))
            return ImageFacts(image.digest, found)
        except buildfacts.PlatformMissing:
            return ImageFacts()
        except CghistoryError as error:
            return ImageFacts(problem=f"build {digest[:19]}…: {sanitize(str(error), 300)}")
        finally:
            tick()

    return dict(zip(wanted, _read_all(content, one, wanted), strict=True))


def change(newer: ImageFacts, older: ImageFacts | None) -> Change:
    """``newer`` against ``older`` (``None``: there is no build before it)."""
    if newer.problem is not None:
        return Change("unreadable")
    if newer.digest is None:
        return Change("missing")
    if older is None:
        return Change("first")
    if older.problem is not None:
        return Change("unreadable")
    if older.digest is None:
        return Change("previous-missing")
    if older.digest == newer.digest:
        return Change("same", PackageChanges())
    if older.packages is None or newer.packages is None:
        return Change("no-data")
    return Change("changes", diff_packages(older.packages, newer.packages))


def changes_of(build_digests: Sequence[str], previous: str | None,
               images: dict[str, ImageFacts]) -> list[Change]:
    """For each listed build (newest first) its change against the next older one; the oldest
    listed is compared with ``previous``, the build before it (``None``: it is the first)."""
    out = []
    for position, digest in enumerate(build_digests):
        older = (build_digests[position + 1] if position + 1 < len(build_digests)
                 else previous)
        out.append(change(images[digest], images[older] if older is not None else None))
    return out
