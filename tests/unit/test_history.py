"""History pages, merging, windows, paged reads and build selection.

``FakeRegistry`` implements the history API's documented semantics over an in-memory tag:
``start``/``end`` inclusive and sent as millisecond RFC 3339 (start rounded down, end up),
entries oldest first, at most 1000 per response. The paged readers must return exactly the
tag's true history, newest first, whatever its size and rhythm.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import random
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docker_cghistory import history
from docker_cghistory.errors import RegistryError, SelectionError
from docker_cghistory.history import (
    MAX_WINDOWS,
    PAGE_CAP,
    Build,
    Window,
    at,
    by_digest,
    by_index,
    continuation,
    cooldown,
    merge,
    parse_page,
    plan_windows,
    read_all,
    read_newest,
    read_window,
)
from docker_cghistory.timespec import format_query_time, parse_timestamp

UTC = timezone.utc
NOW = datetime(2025, 3, 10, 12, 0, 0, tzinfo=UTC)
RAW_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def digest_of(seed: object) -> str:
    return "sha256:" + hashlib.sha256(str(seed).encode()).hexdigest()


def sequential(function: Callable[[Window], list[Build]], items: list[Window]) -> list[list[Build]]:
    return [function(item) for item in items]


def ms(moment: datetime) -> datetime:
    """Millisecond precision, like the registry's timestamps."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class FakeRegistry:
    """The tag history API over a list of builds; counts requests and records served."""

    def __init__(self, builds: Sequence[Build], cap: int = PAGE_CAP) -> None:
        self.builds = sorted(builds)  # oldest first
        self.times = [build.updated for build in self.builds]
        self.cap = cap
        self.requests: list[Window] = []
        self.records = 0

    @property
    def truth(self) -> list[Build]:
        return sorted(self.builds, reverse=True)

    def fetch(self, window: Window) -> list[Build]:
        self.requests.append(window)
        # What goes over the wire: the adapter's query strings, read back by the server.
        start = parse_timestamp(format_query_time(window.start)) if window.start else None
        end = (parse_timestamp(format_query_time(window.end, round_up=True))
               if window.end else None)
        low = bisect.bisect_left(self.times, start) if start else 0
        high = bisect.bisect_right(self.times, end) if end else len(self.builds)
        page = self.builds[low : min(high, low + self.cap)]
        self.records += len(page)
        return list(page)


def make_history(count: int, newest: datetime, spacing: Callable[[int], timedelta],
                 seed: str = "") -> list[Build]:
    """``count`` builds, the newest at ``newest``; ``spacing(i)`` is the gap before build i."""
    builds, moment = [], ms(newest)
    for index in range(count):
        builds.append(Build(moment, digest_of(f"{seed}{index}")))
        moment = ms(moment - spacing(index))
    return builds


def irregular(seed: int) -> Callable[[int], timedelta]:
    """Bursts of rebuilds minutes apart, then quiet days."""
    rng = random.Random(seed)

    def gap(_: int) -> timedelta:
        if rng.random() < 0.3:
            return timedelta(milliseconds=rng.randint(1, 120_000))
        return timedelta(seconds=rng.randint(600, 4 * 86400))

    return gap


SPACINGS = {
    "daily": lambda _: timedelta(days=1),
    "hourly": lambda _: timedelta(hours=1),
    "irregular": irregular(7),
}
SIZES = [0, 1, 999, 1000, 1001, 2500, 5000]


def ended_long_ago() -> list[Build]:
    return make_history(5000, NOW - timedelta(days=3 * 365), lambda _: timedelta(hours=1), "old")


def shared_at_page_boundary() -> list[Build]:
    """2500 builds where 40 around the 1000th (oldest first) share one timestamp."""
    builds = make_history(2500, NOW - timedelta(hours=2), lambda _: timedelta(minutes=7), "tie")
    oldest_first = sorted(builds)
    tie = oldest_first[980].updated
    for index in range(980, 1020):
        oldest_first[index] = Build(tie, oldest_first[index].digest)
    return oldest_first


def many_per_second() -> list[Build]:
    """1800 builds a few milliseconds apart (sub-second windows and ms rounding)."""
    return make_history(1800, NOW - timedelta(minutes=5), lambda i: timedelta(microseconds=1700))


HISTORIES: dict[str, Callable[[], list[Build]]] = {
    f"{size}-{name}": (lambda size=size, gap=gap: make_history(size, NOW - timedelta(hours=3),
                                                               gap, str(size)))
    for size in SIZES for name, gap in SPACINGS.items()
}
HISTORIES["ended-long-ago"] = ended_long_ago
HISTORIES["shared-timestamp-at-boundary"] = shared_at_page_boundary
HISTORIES["many-per-second"] = many_per_second
# Built once per run: the builds are immutable and FakeRegistry sorts its own copy.
HISTORIES = {name: functools.cache(make) for name, make in HISTORIES.items()}


# --- parse_page ------------------------------------------------------------------------------


def entry(stamp: str = "2024-05-12T13:46:10.555Z", digest: str | None = None,
          upper: bool = False) -> dict:
    digest = digest or digest_of(stamp)
    if upper:
        return {"UpdateTimestamp": stamp, "Digest": digest}
    return {"updateTimestamp": stamp, "digest": digest}


def test_parse_page_both_spellings_and_forms() -> None:
    payload = {"history": [
        entry("2024-05-12T13:46:10.555Z", digest_of(1)),
        entry("2024-05-13T13:46:10Z", digest_of(2), upper=True),
        entry("2024-05-11T01:02:03.123456789Z", digest_of(3)),
        entry("2024-05-14T15:00:00+02:00", digest_of(4), upper=True),
    ]}
    builds = parse_page(payload, "cgr.dev", NOW)
    assert builds == [
        Build(datetime(2024, 5, 12, 13, 46, 10, 555000, tzinfo=UTC), digest_of(1)),
        Build(datetime(2024, 5, 13, 13, 46, 10, tzinfo=UTC), digest_of(2)),
        Build(datetime(2024, 5, 11, 1, 2, 3, 123456, tzinfo=UTC), digest_of(3)),
        Build(datetime(2024, 5, 14, 13, 0, tzinfo=UTC), digest_of(4)),
    ]
    # The order is untrusted: merge sorts newest first.
    assert [b.digest for b in merge([builds])] == [digest_of(i) for i in (4, 2, 1, 3)]
    assert builds[0].short == digest_of(1)[7:19]


def test_parse_page_empty_history() -> None:
    assert parse_page({"history": []}, "cgr.dev", NOW) == []


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 65,
        "sha256:$(rm -rf ~)" + "a" * 50,
        "sha256:" + "a" * 60 + "`id`",
        "sha256:\x1b[2J\x1b[H" + "a" * 56,
        "sha256:" + "a" * 64 + "\n",
        "sha256:" + "a" * 64 + "\x1b[31m",
        "sha512:" + "a" * 128,
        "a" * 64,
        "",
        None,
        64,
        ["sha256:" + "a" * 64],
    ],
)
def test_parse_page_rejects_bad_digests(digest: object) -> None:
    payload = {"history": [entry("2024-01-01T00:00:00Z", digest_of(0)),
                           {"updateTimestamp": "2024-01-02T00:00:00Z", "digest": digest}]}
    with pytest.raises(RegistryError) as caught:
        parse_page(payload, "cgr.dev", NOW)
    message = str(caught.value)
    assert "entry 1" in message and "digest" in message
    assert not RAW_CONTROL.search(message)
    assert "rm -rf" not in message and "`id`" not in message


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (None, "expected an object"),
        ([], "expected an object"),
        ("history", "expected an object"),
        (42, "expected an object"),
        ({}, "expected an object"),
        ({"history": None}, "expected an object"),
        ({"history": {"0": entry()}}, "expected an object"),
        ({"history": "[]"}, "expected an object"),
        ({"History": [entry()]}, "expected an object"),
        ({"history": [entry(), "sha256:abc"]}, "entry 1 is not an object"),
        ({"history": [[entry()]]}, "entry 0 is not an object"),
        ({"history": [{"digest": digest_of(1)}]}, "entry 0 has no timestamp"),
        ({"history": [{"updateTimestamp": "2024-01-01T00:00:00Z"}]}, "entry 0 has an invalid"),
        ({"history": [{"digest": digest_of(1), "updateTimestamp": 1714000000}]}, "no timestamp"),
        ({"history": [{"digest": digest_of(1), "updateTimestamp": None}]}, "no timestamp"),
        ({"history": [entry("yesterday")]}, "invalid timestamp"),
        ({"history": [entry("2024-02-30T00:00:00Z")]}, "invalid timestamp"),
        ({"history": [entry("2024-01-01T00:00:00Z\x1b]0;x\x07")]}, "invalid timestamp"),
        ({"history": [entry("1999-12-31T23:59:59Z")]}, "out of range"),
        ({"history": [entry("0001-01-01T00:00:00Z")]}, "out of range"),
        ({"history": [entry("2025-03-13T12:00:00Z")]}, "out of range"),
        ({"history": [entry("9999-12-31T23:59:59-23:59")]}, "invalid timestamp"),
    ],
)
def test_parse_page_rejects_untrusted_payloads(payload: object, words: str) -> None:
    with pytest.raises(RegistryError) as caught:
        parse_page(payload, "cgr.dev", NOW)
    message = str(caught.value)
    assert words in message
    assert "cgr.dev" in message
    assert not RAW_CONTROL.search(message)


def test_parse_page_accepts_small_clock_skew() -> None:
    ahead = NOW + timedelta(days=1)
    assert parse_page({"history": [entry("2025-03-11T12:00:00Z", digest_of(1))]},
                      "cgr.dev", NOW) == [Build(ahead, digest_of(1))]


def test_parse_page_sanitizes_the_registry_name() -> None:
    with pytest.raises(RegistryError) as caught:
        parse_page([], "evil\x1b[2J.example", NOW)
    assert not RAW_CONTROL.search(str(caught.value))


# --- merge -------------------------------------------------------------------------------------


def test_merge_dedups_and_sorts_shuffled_pages() -> None:
    truth = make_history(50, NOW, irregular(3))
    rng = random.Random(1)
    pages = [truth[0:20], truth[15:40], truth[35:50], truth[10:12]]
    for page in pages:
        rng.shuffle(page)
    rng.shuffle(pages)
    assert merge(pages) == sorted(truth, reverse=True)
    assert merge([]) == []


def test_merge_keeps_a_digest_that_recurs_at_another_time() -> None:
    same = digest_of("same")
    builds = [Build(NOW - timedelta(days=2), same), Build(NOW - timedelta(days=1), digest_of(1)),
              Build(NOW, same)]
    merged = merge([builds, builds[:1]])
    assert [b.updated for b in merged] == [NOW, NOW - timedelta(days=1), NOW - timedelta(days=2)]


@st.composite
def _split_history(draw: st.DrawFn) -> tuple[list[Build], list[list[Build]]]:
    count = draw(st.integers(0, 120))
    stamps = draw(st.lists(st.integers(0, 10_000), min_size=count, max_size=count))
    builds = sorted({Build(NOW - timedelta(seconds=s), digest_of(i))
                     for i, s in enumerate(stamps)})
    cuts = sorted(draw(st.lists(st.integers(0, len(builds)), max_size=8)))
    edges = [0, *cuts, len(builds)]
    pages = []
    for low, high in pairwise(edges):
        before = draw(st.integers(0, 5))
        after = draw(st.integers(0, 5))
        pages.append(builds[max(0, low - before) : high + after])
    pages = draw(st.permutations(pages))
    pages = [draw(st.permutations(page)) for page in pages]
    return builds, pages


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_split_history())
def test_any_overlapping_split_merges_to_the_history(case) -> None:
    builds, pages = case
    assert merge(pages) == sorted(builds, reverse=True)


# --- windows -----------------------------------------------------------------------------------


@st.composite
def _first_pages(draw: st.DrawFn) -> list[Build]:
    size = draw(st.integers(1, 1000))
    gap = draw(st.integers(0, 3 * 86400))
    start = NOW - timedelta(days=draw(st.integers(1, 4000)))
    return [Build(start + timedelta(seconds=gap * i), digest_of(i)) for i in range(size)]


@settings(max_examples=200, deadline=None)
@given(_first_pages(), st.integers(-10**6, 10**9))
def test_plan_windows_covers_the_rest_contiguously(page: list[Build], seconds: int) -> None:
    newest = max(b.updated for b in page)
    end = newest + timedelta(seconds=seconds)
    windows = plan_windows(page, end)
    if end <= newest:
        assert windows == []
        return
    assert 1 <= len(windows) <= MAX_WINDOWS
    assert windows[0].start == newest
    assert windows[-1].end is None  # open: a build pushed while reading is not lost
    for before, after in pairwise(windows):
        assert before.end == after.start
        assert before.start < before.end
    assert windows[-1].start < end
    for moment in (newest, end, newest + (end - newest) / 3):
        assert any(window.contains(moment) for window in windows)


def test_window_contains_is_inclusive() -> None:
    window = Window(NOW - timedelta(hours=1), NOW)
    assert window.contains(NOW) and window.contains(NOW - timedelta(hours=1))
    assert not window.contains(NOW + timedelta(microseconds=1))
    assert Window(None, None).contains(datetime(2000, 1, 1, tzinfo=UTC))


def test_continuation_reads_on_from_the_newest_entry() -> None:
    page = make_history(PAGE_CAP, NOW, lambda _: timedelta(minutes=1))
    newest = max(b.updated for b in page)
    assert continuation(Window(None, None), page) == Window(newest, None)
    assert continuation(Window(newest - timedelta(days=30), NOW), page) == Window(newest, NOW)


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(seconds=1)])
def test_continuation_refuses_a_page_that_does_not_advance(offset: timedelta) -> None:
    page = make_history(PAGE_CAP, NOW, lambda _: timedelta(minutes=1))
    with pytest.raises(RegistryError, match="same full page"):
        continuation(Window(NOW + offset, None), page)


# --- paged reads against the fake registry -------------------------------------------------------


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_read_all_returns_the_true_history(name: str) -> None:
    fake = FakeRegistry(HISTORIES[name]())
    result = read_all(fake.fetch, sequential, Window(None, None), NOW)
    assert result == fake.truth
    if len(fake.builds) < PAGE_CAP:
        assert len(fake.requests) == 1


@pytest.mark.parametrize("name", ["2500-irregular", "5000-hourly", "shared-timestamp-at-boundary",
                                  "ended-long-ago", "1001-daily", "many-per-second"])
def test_read_all_in_a_bounded_window(name: str) -> None:
    fake = FakeRegistry(HISTORIES[name]())
    times = fake.times
    rng = random.Random(name)
    windows = [
        Window(times[len(times) // 3], None),
        Window(None, times[len(times) * 2 // 3]),
        Window(times[len(times) // 5], times[len(times) * 4 // 5]),
        Window(times[rng.randrange(len(times))], times[-1]),
        Window(times[10] + timedelta(microseconds=1000), times[-10] - timedelta(microseconds=1000)),
    ]
    for window in windows:
        fake.requests.clear()
        expected = [b for b in fake.truth if window.contains(b.updated)]
        assert read_all(fake.fetch, sequential, window, NOW) == expected, window


@pytest.mark.parametrize("name", sorted(HISTORIES))
@pytest.mark.parametrize("count", [1, 2, 10, 999, 1000, 1001, 3000])
def test_read_newest_returns_the_newest_builds(name: str, count: int) -> None:
    fake = FakeRegistry(HISTORIES[name]())
    assert read_newest(fake.fetch, sequential, count, Window(None, None), NOW) == (
        fake.truth[:count]
    )


@pytest.mark.parametrize("name", ["5000-hourly", "2500-irregular", "ended-long-ago",
                                  "shared-timestamp-at-boundary"])
@pytest.mark.parametrize("count", [1, 5, 1500])
def test_read_newest_in_a_bounded_window(name: str, count: int) -> None:
    fake = FakeRegistry(HISTORIES[name]())
    times = fake.times
    for window in (Window(times[len(times) // 4], None), Window(None, times[len(times) // 2]),
                   Window(times[len(times) // 4], times[len(times) * 3 // 4])):
        expected = [b for b in fake.truth if window.contains(b.updated)][:count]
        assert read_newest(fake.fetch, sequential, count, window, NOW) == expected, window


@pytest.mark.parametrize(
    ("name", "count", "budget"),
    [
        ("5000-daily", 1, 10),
        ("5000-daily", 10, 30),
        ("5000-hourly", 10, 1000),
        ("5000-hourly", 100, 4000),
        ("2500-daily", 100, 200),
    ],
)
def test_read_newest_does_not_download_everything(name: str, count: int, budget: int) -> None:
    fake = FakeRegistry(HISTORIES[name]())
    assert read_newest(fake.fetch, sequential, count, Window(None, None), NOW) == (
        fake.truth[:count]
    )
    assert fake.records <= budget, (fake.records, len(fake.requests))
    assert fake.records < len(fake.builds)


def test_read_newest_with_a_huge_count_reads_everything() -> None:
    fake = FakeRegistry(HISTORIES["1001-daily"]())
    for count in (5_000_000, 10**12):
        assert read_newest(fake.fetch, sequential, count, Window(None, None), NOW) == fake.truth


def test_read_window_follows_full_pages() -> None:
    fake = FakeRegistry(HISTORIES["2500-hourly"]())
    assert merge([read_window(fake.fetch, Window(None, None))]) == fake.truth
    assert len(fake.requests) == 3


def test_read_all_uses_parallel_for_the_later_windows() -> None:
    fake = FakeRegistry(HISTORIES["5000-hourly"]())
    batches: list[int] = []

    def parallel(function, items):
        batches.append(len(items))
        return [function(item) for item in items]

    assert read_all(fake.fetch, parallel, Window(None, None), NOW) == fake.truth
    assert batches and batches[0] >= 5  # 4000 builds after the first page, ~700 per window


def test_read_all_with_remembered_cuts() -> None:
    """Cuts remembered from an earlier, smaller history still read the grown one exactly."""
    fake = FakeRegistry(HISTORIES["5000-hourly"]())
    old = [b for b in fake.truth if b.updated < NOW - timedelta(days=60)]
    for cuts in (history.boundaries(fake.truth), history.boundaries(old),
                 [fake.times[0]], [NOW + timedelta(days=1)]):
        assert read_all(fake.fetch, sequential, Window(None, None), NOW, cuts) == fake.truth


class StuckRegistry:
    """Ignores start and end: always the same full page."""

    def __init__(self) -> None:
        self.page = make_history(PAGE_CAP, NOW - timedelta(days=10), lambda _: timedelta(minutes=5))
        self.calls = 0

    def fetch(self, window: Window) -> list[Build]:
        self.calls += 1
        if self.calls > 50:
            raise AssertionError("looping on a registry that ignores 'start'")
        return list(self.page)


@pytest.mark.parametrize(
    "read",
    [
        lambda f: read_window(f, Window(None, None)),
        lambda f: read_all(f, sequential, Window(None, None), NOW),
        lambda f: read_all(f, sequential, Window(NOW - timedelta(days=30), NOW), NOW),
        lambda f: read_newest(f, sequential, 3000, Window(None, None), NOW),
        lambda f: read_newest(f, sequential, 5, Window(None, None), NOW),
    ],
)
def test_a_registry_ignoring_start_raises_instead_of_looping(read) -> None:
    stuck = StuckRegistry()
    with pytest.raises(RegistryError, match=r"same full page|never ends"):
        read(stuck.fetch)
    assert stuck.calls <= 3


# --- selection -----------------------------------------------------------------------------------

BUILDS = merge([make_history(6, NOW - timedelta(hours=1), lambda _: timedelta(days=1), "sel")])


def test_by_index() -> None:
    assert by_index(BUILDS, 0) is BUILDS[0]
    assert by_index(BUILDS, 5) is BUILDS[5]
    with pytest.raises(SelectionError, match=r"out of range: the tag has 6 builds \(0 to 5\)"):
        by_index(BUILDS, 6)
    with pytest.raises(SelectionError, match="negative"):
        by_index(BUILDS, -1)
    with pytest.raises(SelectionError, match="has 0 builds"):
        by_index([], 0)
    with pytest.raises(SelectionError, match="has 1 build "):
        by_index(BUILDS[:1], 1)


@pytest.mark.parametrize("form", [
    lambda d: d, lambda d: d[7:], lambda d: d[7:13], lambda d: d[:13], lambda d: d.upper(),
    lambda d: d[7:20].upper(), lambda d: f"  {d[:20]}  ",
])
def test_by_digest_forms(form) -> None:
    target = BUILDS[3]
    assert by_digest(BUILDS, form(target.digest)) == (3, target)


@pytest.mark.parametrize("text", ["abcde", "sha256:abcde", "xyz123", "sha256:" + "a" * 65, "",
                                  "sha256:\x1b[2Jabcdef"])
def test_by_digest_invalid(text: str) -> None:
    with pytest.raises(SelectionError, match="invalid digest") as caught:
        by_digest(BUILDS, text)
    assert not RAW_CONTROL.search(str(caught.value))


def test_by_digest_unknown() -> None:
    with pytest.raises(SelectionError, match="no build of this tag has a digest starting with"):
        by_digest(BUILDS, "0" * 64 if not any(b.digest[7:].startswith("000000")
                                              for b in BUILDS) else "f" * 64)


def test_by_digest_ambiguous_lists_candidates() -> None:
    shared = "abcdef"
    builds = [Build(NOW - timedelta(days=i), f"sha256:{shared}{i:058x}") for i in range(15)]
    with pytest.raises(SelectionError) as caught:
        by_digest(builds, shared)
    message = str(caught.value)
    assert "ambiguous" in message
    assert "#0 abcdef000000" in message and "#9 " in message
    assert "#10 " not in message and "and 5 more" in message
    assert by_digest(builds, f"{shared}{3:058x}") == (3, builds[3])


def test_by_digest_repeated_digest_takes_the_newest() -> None:
    same = digest_of("rebuild")
    builds = [Build(NOW, digest_of("x")), Build(NOW - timedelta(days=1), same),
              Build(NOW - timedelta(days=2), same)]
    assert by_digest(builds, same[7:15]) == (1, builds[1])


def test_at() -> None:
    assert at(BUILDS, NOW) == (0, BUILDS[0])
    assert at(BUILDS, BUILDS[2].updated) == (2, BUILDS[2])  # inclusive
    assert at(BUILDS, BUILDS[2].updated - timedelta(microseconds=1)) == (3, BUILDS[3])
    assert at(BUILDS, BUILDS[2].updated + timedelta(hours=1)) == (2, BUILDS[2])
    assert at(BUILDS, BUILDS[-1].updated) == (5, BUILDS[-1])
    with pytest.raises(SelectionError, match="before the tag's first build") as caught:
        at(BUILDS, BUILDS[-1].updated - timedelta(seconds=1))
    assert BUILDS[-1].updated.strftime("%Y-%m-%dT%H:%M:%S") in str(caught.value)
    with pytest.raises(SelectionError, match="no builds"):
        at([], NOW)


def test_cooldown() -> None:
    # Builds are 1h, 1d+1h, 2d+1h, ... old.
    assert cooldown(BUILDS, timedelta(0), NOW) == (0, BUILDS[0])
    assert cooldown(BUILDS, timedelta(days=1), NOW) == (1, BUILDS[1])
    assert cooldown(BUILDS, timedelta(days=1, hours=1), NOW) == (1, BUILDS[1])  # exactly N old
    assert cooldown(BUILDS, timedelta(days=3), NOW) == (3, BUILDS[3])
    with pytest.raises(SelectionError, match="no build is old enough"):
        cooldown(BUILDS, timedelta(days=30), NOW)
    with pytest.raises(SelectionError, match="no builds"):
        cooldown([], timedelta(days=1), NOW)


def test_cooldown_longer_than_the_calendar() -> None:
    with pytest.raises(SelectionError, match="no build is old enough"):
        cooldown(BUILDS, timedelta(weeks=9_999_999), NOW)


@pytest.mark.parametrize(
    ("written", "printed"),
    [
        ("2023-05-12T13:46:10.500Z", "2023-05-12T13:46:10.500Z"),  # not shortened to .5Z
        ("2023-05-12T13:46:10.5Z", "2023-05-12T13:46:10.5Z"),
        # A bare second gets its fraction: typed back, a bare second covers the whole second.
        ("2023-05-12T13:46:10Z", "2023-05-12T13:46:10.000Z"),
        ("2023-05-12T13:46:10.123456789Z", "2023-05-12T13:46:10.123456789Z"),  # nanoseconds
        ("2023-05-12T15:46:10.5+02:00", "2023-05-12T13:46:10.500Z"),  # an offset is normalised
        ("2023-05-12t13:46:10z", "2023-05-12T13:46:10.000Z"),
    ],
)
def test_timestamps_print_as_the_registry_wrote_them_when_already_utc(
    written: str, printed: str
) -> None:
    (build,) = history.parse_page(
        {"history": [{"updateTimestamp": written, "digest": "sha256:" + "a" * 64}]},
        "registry.test", NOW,
    )
    assert build.timestamp == printed
