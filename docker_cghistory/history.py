"""A tag's builds: parse registry pages, merge them, plan time windows, choose a build.

The history API returns at most ``PAGE_CAP`` records per response, oldest first, bounded by
``start``/``end``. Everything here is pure: the registry adapter fetches what ``plan_windows``
asks for and hands the pages back to ``merge``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from .errors import InvalidDigest, RegistryError, SelectionError, sanitize
from .reference import DIGEST_RE
from .timespec import format_timestamp, parse_timestamp

PAGE_CAP = 1000
# Windows are sized to hold this many builds at the observed rate, well under the cap, so an
# uneven rate rarely fills one (a full window is continued, so that only costs a request).
WINDOW_TARGET = 700
MAX_WINDOWS = 64
# Earliest and latest timestamps we accept from a registry; anything outside is nonsense.
_EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
_LATEST_SKEW = timedelta(days=2)


# RFC 3339 in UTC with "Z" and a fraction, the form we print: a registry's own text in this
# form is kept. A bare second is not: typed back, it would cover its whole second.
_CANONICAL_UTC = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{1,9}Z\Z")


@dataclass(frozen=True, order=True)
class Build:
    """One build of a tag: the digest the tag pointed at from ``updated`` on."""

    updated: datetime
    digest: str
    # The registry's own timestamp text when it is already canonical UTC; not compared.
    stamp: str = field(default="", compare=False)

    @property
    def timestamp(self) -> str:
        """The build's exact time, the only form any output shows: RFC 3339 in UTC, as the
        registry wrote it (``.500Z`` stays ``.500Z``, nanoseconds stay), or formatted when it
        used an offset, another shape or no fraction (``10Z`` prints ``10.000Z``). Always with
        a fraction, so that pasted into ``--at`` it names this instant, not its whole second
        (``timespec``), and selects this build."""
        return self.stamp or format_timestamp(self.updated)

    @property
    def short(self) -> str:
        return self.digest.split(":", 1)[1][:12]


def parse_page(payload: object, registry: str, now: datetime) -> list[Build]:
    """Validate one history response; anything untrustworthy is a ``RegistryError``.

    Accepts both key spellings (``updateTimestamp``/``digest`` and the early
    ``UpdateTimestamp``/``Digest``) and every RFC 3339 form. Server text is never echoed raw.
    """
    where = f"registry {sanitize(registry)} sent an invalid history"
    if not isinstance(payload, dict) or not isinstance(payload.get("history"), list):
        raise RegistryError(f"{where}: expected an object with a 'history' list")
    builds = []
    for position, entry in enumerate(payload["history"]):
        if not isinstance(entry, dict):
            raise RegistryError(f"{where}: entry {position} is not an object")
        digest = entry.get("digest", entry.get("Digest"))
        stamp = entry.get("updateTimestamp", entry.get("UpdateTimestamp"))
        if not isinstance(digest, str) or not DIGEST_RE.match(digest):
            raise RegistryError(f"{where}: entry {position} has an invalid digest")
        if not isinstance(stamp, str):
            raise RegistryError(f"{where}: entry {position} has no timestamp")
        try:
            updated = parse_timestamp(stamp)
        except (ValueError, OverflowError):
            raise RegistryError(f"{where}: entry {position} has an invalid timestamp") from None
        if not _EARLIEST <= updated <= now + _LATEST_SKEW:
            raise RegistryError(f"{where}: entry {position} has a timestamp out of range")
        builds.append(Build(updated, digest, stamp if _CANONICAL_UTC.match(stamp) else ""))
    return builds


def merge(pages: Iterable[Iterable[Build]], window: Window | None = None) -> list[Build]:
    """All builds of overlapping pages, each once, newest first, whatever order pages came in.

    With ``window``, only the builds inside it: requests round its bounds outward to the
    millisecond, and a registry may ignore them.
    """
    unique = {(build.updated, build.digest): build for page in pages for build in page
              if window is None or window.contains(build.updated)}
    return sorted(unique.values(), reverse=True)


@dataclass(frozen=True)
class Window:
    """A ``start``/``end`` pair for one request; ``None`` leaves that side open."""

    start: datetime | None
    end: datetime | None

    def contains(self, moment: datetime) -> bool:
        return (self.start is None or moment >= self.start) and (
            self.end is None or moment <= self.end
        )


def is_full(page: Sequence[Build]) -> bool:
    """A page at the cap may have been cut: more builds may follow its newest one."""
    return len(page) >= PAGE_CAP


def continuation(window: Window, page: Sequence[Build]) -> Window:
    """The window that reads on after a full page: from its newest entry (inclusive) on.

    Starting at the newest entry rather than just after it keeps builds that share that
    timestamp; the repeat is removed by ``merge``. A page that does not move forward means a
    registry that ignores ``start``, which would loop forever: refuse it.
    """
    newest = max(build.updated for build in page)
    if window.start is not None and newest <= window.start:
        raise RegistryError(
            "the registry keeps answering the same full page of history (it ignores 'start'); "
            "stopping instead of looping"
        )
    return Window(newest, window.end)


def plan_windows(first_page: Sequence[Build], end: datetime) -> list[Window]:
    """Split the time after a full first page into windows that can be fetched at once.

    The first (oldest) page tells the tag's build rate; windows are sized to hold about
    ``WINDOW_TARGET`` builds at that rate, so they are rarely full. Adjacent windows share their
    boundary instant (both sides inclusive), and ``merge`` removes the repeat.
    """
    oldest = min(build.updated for build in first_page)
    newest = max(build.updated for build in first_page)
    if newest >= end:
        return []
    seconds_per_build = max((newest - oldest).total_seconds() / max(len(first_page) - 1, 1), 1)
    remaining = (end - newest).total_seconds()
    count = min(MAX_WINDOWS, max(1, math.ceil(remaining / (seconds_per_build * WINDOW_TARGET))))
    step = (end - newest) / count
    bounds = [newest + step * index for index in range(count)] + [end]
    windows = [Window(bounds[i], bounds[i + 1]) for i in range(count)]
    # The last window stays open-ended so that a build pushed while we read is not lost.
    windows[-1] = Window(windows[-1].start, None)
    return windows


# --- choosing a build ----------------------------------------------------------------------


# How every selection refuses an empty history (``selection.choose`` checks it first).
NO_BUILDS = "the tag has no builds"


def by_index(builds: Sequence[Build], index: int) -> Build:
    """The build numbered ``index`` in the listing (0 = newest)."""
    if index < 0:
        raise SelectionError(f"index {index} is negative; 0 is the newest build")
    if index >= len(builds):
        raise SelectionError(
            f"index {index} is out of range: the tag has {len(builds)} "
            f"build{'s' if len(builds) != 1 else ''} (0 to {len(builds) - 1})"
        )
    return builds[index]


def normalise_digest_prefix(text: str) -> str:
    """``sha256:abc123`` or ``abc123`` → ``abc123``; at least 6 lowercase hex characters."""
    value = text.strip().lower()
    if value.startswith("sha256:"):
        value = value[len("sha256:") :]
    if len(value) < 6 or len(value) > 64 or any(c not in "0123456789abcdef" for c in value):
        raise InvalidDigest(
            f"invalid digest {sanitize(text)!r}: give sha256: and 64 hex characters, "
            "or a prefix of at least 6"
        )
    return value


def by_digest(builds: Sequence[Build], text: str) -> tuple[int, Build]:
    """The build whose digest is ``text`` or starts with it; ambiguity lists the candidates."""
    prefix = normalise_digest_prefix(text)
    matches = [(i, b) for i, b in enumerate(builds) if b.digest[7:].startswith(prefix)]
    distinct = {b.digest for _, b in matches}
    if not matches:
        raise SelectionError(f"no build of this tag has a digest starting with {prefix}")
    if len(distinct) > 1:
        listed = ", ".join(f"#{i} {b.short}" for i, b in matches[:10])
        more = f" and {len(matches) - 10} more" if len(matches) > 10 else ""
        raise SelectionError(f"digest prefix {prefix} is ambiguous: {listed}{more}")
    # The same digest can recur (a rebuild that produced identical content): take the newest.
    return matches[0]


def at(builds: Sequence[Build], moment: datetime, shown: str | None = None) -> tuple[int, Build]:
    """The build the tag pointed at, at ``moment``: the newest one updated at or before it.

    ``shown`` is the time as the user gave it, for the error (``moment`` may be the end of a
    typed second).
    """
    for index, build in enumerate(builds):
        if build.updated <= moment:
            return index, build
    if builds:
        raise SelectionError(
            f"no build at or before {shown or format_timestamp(moment)}: that is before the "
            f"tag's first build ({builds[-1].timestamp})"
        )
    raise SelectionError(NO_BUILDS)


def cooldown(builds: Sequence[Build], age: timedelta, now: datetime) -> tuple[int, Build]:
    """The newest build at least ``age`` old (registries may refuse younger digests)."""
    try:
        moment = now - age
    except OverflowError:  # an age beyond the calendar: older than any build
        moment = datetime.min.replace(tzinfo=timezone.utc)
    try:
        return at(builds, moment)
    except SelectionError:
        if builds:
            raise SelectionError(
                f"no build is old enough: the oldest ({builds[-1].timestamp}) "
                f"is younger than the cooldown"
            ) from None
        raise


# --- reading a whole window through a fetch function ------------------------------------------
# ``fetch(window)`` performs one request; ``parallel(fn, items)`` maps concurrently. Both are
# supplied by the registry adapter, which keeps this logic testable without HTTP.

# What one read of one tag may cost at most. Real tags have a few thousand builds (hourly for
# years: tens of thousands); a registry sending full pages that each move a little further
# would otherwise be read until memory runs out.
MAX_RECORDS = 250_000
MAX_REQUESTS = 1_000

Fetch = Callable[[Window], list[Build]]
ParallelMap = Callable[[Callable[[Window], list[Build]], list[Window]], list[list[Build]]]
# How far back the first guess for ``--last N`` looks: nightly tags build about once a day.
_GUESS_PER_BUILD = timedelta(hours=36)
_MAX_CONTINUATIONS = 10_000


def bounded(fetch: Fetch, records: int = MAX_RECORDS, requests: int = MAX_REQUESTS) -> Fetch:
    """``fetch`` that stops a read once it has cost ``records`` records or ``requests`` requests.

    One per read; safe to share between the threads of that read.
    """
    import threading

    lock = threading.Lock()
    spent = {"records": 0, "requests": 0}

    def limited(window: Window) -> list[Build]:
        with lock:
            spent["requests"] += 1
            if spent["requests"] > requests:
                raise RegistryError(
                    f"the registry's history took more than {requests} requests; stopping"
                )
        page = fetch(window)
        with lock:
            spent["records"] += len(page)
            if spent["records"] > records:
                raise RegistryError(
                    f"the registry sent more than {records} history records for one tag; "
                    "stopping"
                )
        return page

    return limited


def read_window(fetch: Fetch, window: Window) -> list[Build]:
    """Everything in ``window``: one request, plus continuations while pages come back full."""
    collected: list[Build] = []
    for _ in range(_MAX_CONTINUATIONS):
        page = fetch(window)
        collected.extend(page)
        if not is_full(page):
            return collected
        window = continuation(window, page)
    raise RegistryError("the registry's history never ends; stopping")


def boundaries(builds: Sequence[Build]) -> list[datetime]:
    """Instants that cut a newest-first history into windows of ``WINDOW_TARGET`` builds.

    Remembered after a full read, they let the next read fetch every window at once.
    """
    oldest_first = builds[::-1]
    return [oldest_first[i].updated for i in range(WINDOW_TARGET, len(oldest_first),
                                                      WINDOW_TARGET)]


def windows_between(cuts: Sequence[datetime], window: Window) -> list[Window]:
    """``window`` cut at ``cuts`` (those inside it); adjacent windows share their boundary."""
    inside = sorted(c for c in set(cuts) if window.contains(c) and c not in (window.start,
                                                                              window.end))
    edges: list[datetime | None] = [window.start, *inside, window.end]
    return [Window(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def read_all(
    fetch: Fetch, parallel: ParallelMap, window: Window, now: datetime,
    cuts: Sequence[datetime] = (),
) -> list[Build]:
    """Every build in ``window``, newest first.

    With ``cuts`` remembered from an earlier read, every window is fetched at once. Without,
    the first page is read alone (it tells the build rate) and the windows after it at once.
    Either way a window that comes back full is read on, so stale cuts cost time, not builds.
    """
    if cuts:
        parts = windows_between(cuts, window)
        if len(parts) > 1:
            return merge(parallel(lambda part: read_window(fetch, part), parts), window)
    first = fetch(window)
    if not is_full(first):
        return merge([first], window)
    rest = plan_windows(first, window.end or now)
    if window.end is not None and rest:
        rest[-1] = Window(rest[-1].start, window.end)
    pages = parallel(lambda part: read_window(fetch, part), rest)
    return merge([first, *pages], window)


def read_newest(
    fetch: Fetch, parallel: ParallelMap, count: int, window: Window, now: datetime
) -> list[Build]:
    """The newest ``count`` builds in ``window``, without reading the whole history.

    First a guess at how far back ``count`` builds go (nightly builds: about a day each). If
    that falls short, the oldest page before it tells where the history starts and its build
    rate; then windows of that rate are read backward until ``count`` builds are known.
    """
    top = window.end or now
    try:
        guess_start = top - _GUESS_PER_BUILD * max(count, 1)
    except OverflowError:  # a count beyond the calendar at the guessed rate: read it all
        return read_all(fetch, parallel, window, now)[:count]
    if window.start is not None and guess_start <= window.start:
        return read_all(fetch, parallel, window, now)[:count]
    found = read_window(fetch, Window(guess_start, window.end))
    if len(merge([found], window)) >= count:
        return merge([found], window)[:count]
    # Before the guess: the oldest page tells where the history starts and how dense it is.
    older = fetch(Window(window.start, guess_start))
    if not is_full(older):
        return merge([found, older], window)[:count]
    # Walk backward from the guess toward the oldest page, a rate-sized window at a time.
    oldest_end = max(build.updated for build in older)
    spacing = (oldest_end - min(b.updated for b in older)) / max(len(older) - 1, 1)
    span = max(spacing * WINDOW_TARGET, timedelta(minutes=1))
    recent = [found]
    upper = guess_start
    while len(merge(recent, window)) < count and upper > oldest_end:
        lower = max(upper - span, oldest_end)
        page = read_window(fetch, Window(lower, upper))
        recent.append(page)
        upper = lower
        if len(page) < WINDOW_TARGET // 2:
            # Sparser than the oldest page said (a burst of early builds, then quiet years):
            # widen the next window, so a quiet stretch costs a few requests, not thousands.
            span *= 2
    if len(merge(recent, window)) >= count:
        return merge(recent, window)[:count]
    return merge([*recent, older], window)[:count]
