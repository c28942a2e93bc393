"""What changed between two builds for one platform: the one implementation ``diff`` and
``bisect`` share (``bisect`` shows it for its last good and first bad build).

Why it looks like this:
- Both builds' images for the platform are found first (``buildfacts.platform_manifest``), in
  two threads; when the image is the same manifest in both, its facts are read once and the
  report says which other platforms differ. Otherwise both builds' facts (config, size,
  packages from the best source) are read in parallel and compared by ``changes``.
- The answer is a ``diffreport.DiffReport``: the caller picks the rendering (text, json, the
  ``Changes`` object of bisect's json).
- Progress (bytes of layers read, on a terminal) and warnings are drawn here for the commands,
  one line on stderr each, so ``diff`` and ``bisect`` show them the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import buildfacts, diffreport
from .changes import PackageChanges, diff_config, diff_packages
from .content import Content
from .errors import sanitize
from .platforms import Platform
from .reference import Reference
from .workers import both

if TYPE_CHECKING:
    from .streams import Streams



@dataclass(frozen=True)
class Named:
    """One build as the user named it: where it lives and, from the history, its place."""

    reference: Reference
    digest: str
    index: int | None = None
    updated: str | None = None


def image_name(old: Named, new: Named) -> str:
    """``Image`` of the report: the tag read, or the repository both references name."""
    if old.index is not None:
        return old.reference.tagged
    first, second = old.reference.name, new.reference.name
    return first if first == second else f"{first} {diffreport.ARROW} {second}"


# --- progress and warnings -----------------------------------------------------------------


class LayerProgress:
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


def warner(streams: Streams, progress: LayerProgress | None) -> Callable[[str], None]:
    """One line each; a progress line being drawn is erased first (and redrawn later)."""
    lock = progress.lock if progress is not None else threading.Lock()

    def warn(message: str) -> None:
        with lock:
            if progress is not None and progress.shown is not None:
                streams.stderr.write("\r\x1b[2K")
            streams.stderr.write(f"warning: {sanitize(message, limit=400)}\n")
            streams.stderr.flush()

    return warn


# --- the comparison ------------------------------------------------------------------------


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
    images = both(lambda: buildfacts.platform_manifest(contents[0], old.digest, platform),
                  lambda: buildfacts.platform_manifest(contents[1], new.digest, platform),
                  "diff")
    image = image_name(old, new)

    def facts_of(index: int) -> buildfacts.BuildFacts:
        return buildfacts.facts(contents[index], images[index], warn=warn, progress=progress)

    if images[0].digest == images[1].digest:
        shared = facts_of(1)
        others = _other_platforms((contents[0], old.digest), (contents[1], new.digest),
                                  platform)
        return diffreport.DiffReport(image, str(platform), _side(old, shared),
                                     _side(new, shared), identical=True, others=others)
    before, after = both(lambda: facts_of(0), lambda: facts_of(1), "diff")
    packages = (diff_packages(before.packages, after.packages)
                if before.packages is not None and after.packages is not None
                else PackageChanges())
    return diffreport.DiffReport(
        image, str(platform), _side(old, before), _side(new, after), packages,
        tuple(diff_config(before.config, after.config)))
