"""Whatever ``list`` prints, pasted back, selects that very build (issue 12 items 2 and 3).

For random histories (several builds within one second, stamps with and without fractions,
nanoseconds, offsets) and every listing option (``--since``, ``--until``, ``-n`` and their
combinations), every printed row's ``#`` given to ``--index`` / ``--good``, and its printed
time given to ``--at`` / ``pin --at`` / ``--good`` / ``--since`` / ``--until``, selects that
row's build. Only the transport is faked: the registry's answers go through the product's own
page parser, window reader, listing, selection, bisect and pin functions.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from docker_cghistory import history, picker, selection
from docker_cghistory.bisect import parse_build, resolve_build
from docker_cghistory.commands import list as list_command
from docker_cghistory.commands import pin as pin_command
from docker_cghistory.errors import UsageError
from docker_cghistory.history import Build, Window
from docker_cghistory.reference import Reference
from docker_cghistory.timespec import format_query_time, parse_timestamp, parse_when, utcnow

UTC = timezone.utc
REF = Reference("cgr.dev", "chainguard/python", "latest")
BASE = datetime(2024, 6, 29, 9, 7, 0, tzinfo=UTC)


class Registry:
    """The history API as cgr.dev serves it: ``start``/``end`` sent as millisecond RFC 3339
    (``end`` rounded up) and inclusive, oldest first, at most ``PAGE_CAP`` records. ``history``
    reads it the way ``RegistryClient.history`` does, through ``history.read_*``."""

    def __init__(self, entries: list[dict[str, str]]) -> None:
        self.builds = history.parse_page({"history": entries}, "cgr.dev", utcnow())

    def history_page(self, reference: Reference, window: Window) -> list[Build]:
        start = parse_timestamp(format_query_time(window.start)) if window.start else None
        end = (parse_timestamp(format_query_time(window.end, round_up=True))
               if window.end else None)
        inside = [b for b in self.builds if Window(start, end).contains(b.updated)]
        return sorted(inside)[: history.PAGE_CAP]

    def history(self, reference: Reference, *, since: datetime | None = None,
                until: datetime | None = None, last: int | None = None) -> list[Build]:
        window = Window(since, until)

        def fetch(part: Window) -> list[Build]:
            return self.history_page(reference, part)

        def parallel(function, windows):  # type: ignore[no-untyped-def]
            return [function(part) for part in windows]

        if last is not None:
            return history.read_newest(fetch, parallel, last, window, utcnow())
        return history.read_all(fetch, parallel, window, utcnow())


class Context:
    """What ``list`` and ``pin`` ask of ``context.Context``."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def parse(self, text: str) -> Reference:
        return REF

    def client(self, host: str) -> Registry:
        return self.registry


def _stamp(when: datetime, form: str, nanos: int) -> str:
    """The registry's text for ``when`` in one of the forms seen in the wild."""
    second = when.replace(microsecond=0, tzinfo=None).isoformat()
    if form == "bare":
        return second + "Z"
    if form == "millis":
        return f"{second}.{when.microsecond // 1000:03d}Z"
    if form == "micros":
        return f"{second}.{when.microsecond:06d}Z"
    if form == "nanos":
        return f"{second}.{when.microsecond:06d}{nanos:03d}Z"
    local = when.astimezone(timezone(timedelta(hours=2)))
    return local.replace(tzinfo=None).isoformat() + "+02:00"


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, str]]:
    """Up to 14 builds within a few seconds: many share a second, some are whole seconds."""
    count = draw(st.integers(1, 14))
    entries, seen = [], set()
    for index in range(count):
        form = draw(st.sampled_from(["bare", "millis", "micros", "nanos", "offset"]))
        second = draw(st.integers(0, 4))
        micro = {"bare": 0, "millis": draw(st.integers(0, 999)) * 1000}.get(
            form, draw(st.integers(0, 999_999)))
        when = BASE + timedelta(seconds=second, microseconds=micro)
        if when in seen:  # builds at the very same instant differ only by # and digest
            continue
        seen.add(when)
        # Small numbers (hypothesis's favourites) make short digests of digits alone, which
        # 'list' prints for about 1 build in 280: they must read back as digests too.
        digest = "sha256:" + f"{index:02d}{draw(st.integers(0, 16**62 - 1)):062x}"
        entries.append({"updateTimestamp": _stamp(when, form, draw(st.integers(0, 999))),
                        "digest": digest})
    return draw(st.permutations(entries))  # the order is untrusted


def _when(draw: st.DrawFn, builds: list[Build]) -> str | None:
    """A WHEN as a user would give it: nothing, a printed time, a bare second, a date."""
    kind = draw(st.sampled_from(["none", "printed", "second", "between", "date"]))
    if kind == "none":
        return None
    if kind == "printed":
        return draw(st.sampled_from(builds)).timestamp
    if kind == "second":
        return draw(st.sampled_from(builds)).updated.strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "between":
        return (BASE + timedelta(seconds=draw(st.integers(-1, 5)))).strftime(
            "%Y-%m-%dT%H:%M:%S")
    return draw(st.sampled_from(["2024-06-29", "2024-06-30"]))


def _args(**given: object) -> argparse.Namespace:
    base = {"digest": None, "index": None, "previous": False, "at": None, "cooldown": None,
            "image": "python", "since": None, "until": None, "last": None}
    base.update(given)
    return argparse.Namespace(**base)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=histories(), data=st.data())
def test_every_printed_index_and_time_selects_its_build(entries: list[dict[str, str]],
                                                        data: st.DataObject) -> None:
    registry = Registry(entries)
    full = history.merge([registry.builds])  # the full listing, as `list` alone numbers it
    since = _when(data.draw, full)
    until = _when(data.draw, full)
    last = data.draw(st.one_of(st.none(), st.integers(1, len(full) + 1)))
    context = Context(registry)
    args = _args(since=since, until=until, last=last)
    try:
        _, listed, _ = list_command.fetch_builds(args, context)  # type: ignore[arg-type]
    except UsageError:
        now = utcnow()
        assume(not (since and until and parse_when(since, now).start > parse_when(until, now).end))
        raise
    now = utcnow()

    # The listing is the rule applied to the full listing, each build with its full index.
    start = parse_when(since, now).start if since else None
    end = parse_when(until, now).end if until else None
    expected = [(i, b) for i, b in enumerate(full) if Window(start, end).contains(b.updated)]
    assert listed == expected[:last]

    rows = list_command.rows_for(REF, listed, None)
    _, cells = list_command.table_for(listed, rows, False, None)
    resolve = pin_command._resolver(context, None, now)  # type: ignore[arg-type]
    for (index, build), row, cell in zip(listed, rows, cells, strict=True):
        printed = row["Updated"]
        assert (row["Index"], cell[0], cell[1]) == (index, str(index), printed)
        assert full[index] == build

        # pull --index / --at, through the same reads `pull` makes.
        for flags in ({"index": row["Index"]}, {"at": printed}):
            selector = selection.parse(_args(**flags), now)
            assert selector is not None
            choice = selection.fetch(registry, REF, selector, now)
            assert choice.build == build, (flags, choice)
            assert choice.index in (None, index)

        # Typed by hand without the fraction: the newest build of that second.
        bare = build.updated.strftime("%Y-%m-%dT%H:%M:%SZ")
        same_second = [b for b in full if b.updated.replace(microsecond=0)
                       == build.updated.replace(microsecond=0)]
        selector = selection.parse(_args(at=bare), now)
        assert selector is not None
        assert selection.fetch(registry, REF, selector, now).build == same_second[0]

        # bisect --good/--bad and diff OLD NEW: the printed index, time or short digest.
        assert build.short in cell
        for text in (str(index), printed, build.short):
            assert resolve_build(full, parse_build(text, "--good", now), text, now) == index

        # pin --at: the build `pin` writes is the one `pull --at` pulls.
        pin_at = selection.parse(_args(at=printed), now)
        pin_resolve = pin_command._resolver(context, pin_at, now)  # type: ignore[arg-type]
        assert pin_resolve(("cgr.dev", REF.repository, "latest")).digest == build.digest

        # --until and --since at a printed time end and start the listing at that build.
        _, upto, _ = list_command.fetch_builds(_args(until=printed), context)  # type: ignore[arg-type]
        assert upto[0] == (index, build)
        _, after, _ = list_command.fetch_builds(_args(since=printed), context)  # type: ignore[arg-type]
        assert after[-1] == (index, build)
    assert resolve(("cgr.dev", REF.repository, "latest")).digest == full[0].digest

    # The picker shows the whole history with the same numbers and times.
    for index, line in enumerate(picker.rows(full, None, now)):
        number, shown = line.split()[:2]
        assert number == f"#{index}"
        assert selection.choose(full, selection.parse(_args(at=shown), now), now).index == index


def test_a_time_without_a_fraction_covers_its_whole_second() -> None:
    """The issue's case: #1 is at 09:07:00.971; the table once showed 09:07:00Z, which picked
    #2. Now it shows the exact time, and the bare second typed by hand picks the newest
    build in that second (the README says so)."""
    registry = Registry([
        {"updateTimestamp": "2024-06-29T10:00:00.5Z", "digest": "sha256:" + "0" * 64},
        {"updateTimestamp": "2024-06-29T09:07:00.971Z", "digest": "sha256:" + "1" * 64},
        {"updateTimestamp": "2024-06-29T09:07:00.2Z", "digest": "sha256:" + "2" * 64},
        {"updateTimestamp": "2024-06-29T09:07:00Z", "digest": "sha256:" + "3" * 64},
        {"updateTimestamp": "2024-06-28T09:07:00Z", "digest": "sha256:" + "4" * 64},
    ])
    now = utcnow()
    full = history.merge([registry.builds])
    assert [b.timestamp for b in full[1:4]] == [
        "2024-06-29T09:07:00.971Z", "2024-06-29T09:07:00.2Z", "2024-06-29T09:07:00.000Z"]

    def pull_at(text: str) -> Build:
        selector = selection.parse(_args(at=text), now)
        assert selector is not None
        return selection.fetch(registry, REF, selector, now).build

    assert pull_at("2024-06-29T09:07:00Z") == full[1]  # the newest in that second
    assert pull_at("2024-06-29T09:07:00.000Z") == full[3]  # the exact instant
    assert pull_at("2024-06-29T11:07:00+02:00") == full[1]
    _, listed, _ = list_command.fetch_builds(_args(until="2024-06-29T09:07:00Z"),
                                          Context(registry))  # type: ignore[arg-type]
    assert [index for index, _ in listed] == [1, 2, 3, 4]
    _, listed, _ = list_command.fetch_builds(_args(since="2024-06-29T09:07:00Z", last=2),
                                          Context(registry))  # type: ignore[arg-type]
    assert [index for index, _ in listed] == [0, 1]
