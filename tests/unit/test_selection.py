"""Selectors: parsing the flags, choosing among builds, and reading only what is needed."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from docker_cghistory import history, selection
from docker_cghistory.errors import SelectionError, TimeSpecError, UsageError
from docker_cghistory.history import Build, Window
from docker_cghistory.reference import Reference
from docker_cghistory.selection import Choice, Selector
from docker_cghistory.timespec import Moment, format_query_time, parse_timestamp

NOW = datetime(2024, 6, 10, 12, 0, 0, tzinfo=timezone.utc)
REF = Reference("cgr.dev", "chainguard/python", "latest")


def digest(n: int | str) -> str:
    text = f"{n}"
    return "sha256:" + (text * 64)[:64] if len(text) == 1 else "sha256:" + text.ljust(64, "0")


def daily(count: int, newest: datetime = NOW - timedelta(hours=1)) -> list[Build]:
    """``count`` builds a day apart, newest first (the listing's order)."""
    return [Build(newest - timedelta(days=i), "sha256:" + f"{i:064x}") for i in range(count)]


def exactly_at(moment: datetime) -> Selector:
    """``--at`` with an exact instant (as a time typed with a fraction reads)."""
    return Selector("at", Moment.instant(moment), "--at")


def args(**given: object) -> argparse.Namespace:
    base = {"digest": None, "index": None, "previous": False, "at": None, "cooldown": None}
    base.update(given)
    return argparse.Namespace(**base)


class FakeSource:
    """The history a registry would serve, with its rules: ``end`` inclusive, rounded up to
    the millisecond, as ``RegistryClient`` sends it; every call recorded."""

    def __init__(self, builds: list[Build]) -> None:
        self.builds = sorted(builds, reverse=True)
        self.calls: list[tuple[str, dict]] = []

    def history(self, reference: Reference, *, since: datetime | None = None,
                until: datetime | None = None, last: int | None = None) -> list[Build]:
        self.calls.append(("history", {"since": since, "until": until, "last": last}))
        found = self.builds
        if until is not None:
            end = parse_timestamp(format_query_time(until, round_up=True))
            found = [b for b in found if b.updated <= end]
        if since is not None:
            found = [b for b in found if b.updated >= since]
        return found[:last] if last is not None else list(found)

    def history_page(self, reference: Reference, window: Window) -> list[Build]:
        self.calls.append(("page", {"window": window}))
        inside = [b for b in self.builds if window.contains(b.updated)]
        return sorted(inside)[: history.PAGE_CAP]


# --- parse --------------------------------------------------------------------------------


def test_no_selector_is_none() -> None:
    assert selection.parse(args(), NOW) is None


@pytest.mark.parametrize(
    ("given", "kind", "value"),
    [
        ({"digest": "abcdef"}, "digest", "abcdef"),
        ({"index": 0}, "index", 0),
        ({"index": 7}, "index", 7),
        ({"previous": True}, "index", 1),
        # A time without a fraction covers its whole second; an age is an instant.
        ({"at": "2024-06-01"}, "at", Moment(datetime(2024, 6, 1, tzinfo=timezone.utc),
                                            datetime(2024, 6, 1, 0, 0, 0, 999999,
                                                     tzinfo=timezone.utc))),
        ({"at": "2d"}, "at", Moment.instant(NOW - timedelta(days=2))),
        ({"cooldown": "7d"}, "cooldown", timedelta(days=7)),
        ({"cooldown": "12h"}, "cooldown", timedelta(hours=12)),
    ],
)
def test_each_selector(given: dict, kind: str, value: object) -> None:
    selector = selection.parse(args(**given), NOW)
    assert selector is not None
    assert (selector.kind, selector.value) == (kind, value)


def test_negative_index_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="0 \\(the newest build\\)"):
        selection.parse(args(index=-1), NOW)


@pytest.mark.parametrize("text", ["abc", "sha256:12345", "xyzxyzxyz", "", "a" * 65])
def test_malformed_digest_fails_before_any_request(text: str) -> None:
    with pytest.raises(SelectionError, match="invalid digest"):
        selection.parse(args(digest=text), NOW)


def test_malformed_times_are_usage_errors() -> None:
    with pytest.raises(TimeSpecError):
        selection.parse(args(at="yesterday-ish"), NOW)
    with pytest.raises(TimeSpecError):
        selection.parse(args(cooldown="2024-01-01"), NOW)


# --- choose: index ------------------------------------------------------------------------


def test_index_zero_is_newest_and_previous_is_one() -> None:
    builds = daily(5)
    assert selection.choose(builds, Selector("index", 0, "--index"), NOW) == Choice(builds[0], 0)
    previous = selection.parse(args(previous=True), NOW)
    assert previous is not None
    assert selection.choose(builds, previous, NOW) == Choice(builds[1], 1)


@pytest.mark.parametrize(("count", "index"), [(5, 5), (1, 1), (3, 100)])
def test_index_out_of_range(count: int, index: int) -> None:
    with pytest.raises(SelectionError, match="out of range"):
        selection.choose(daily(count), Selector("index", index, "--index"), NOW)


def test_previous_of_a_single_build_is_out_of_range() -> None:
    with pytest.raises(SelectionError, match="has 1 build \\(0 to 0\\)"):
        selection.choose(daily(1), Selector("index", 1, "--previous"), NOW)


# --- choose: digest -----------------------------------------------------------------------


def _collision_builds() -> list[Build]:
    return [
        Build(NOW - timedelta(days=1), "sha256:abcdef01" + "1" * 56),
        Build(NOW - timedelta(days=2), "sha256:abcdef02" + "2" * 56),
        Build(NOW - timedelta(days=3), "sha256:123456" + "3" * 58),
    ]


@pytest.mark.parametrize(
    "text",
    ["123456", "1234563", "sha256:123456", "SHA256:123456", "123456" + "3" * 58,
     "sha256:123456" + "3" * 58, "  123456  "],
)
def test_digest_forms(text: str) -> None:
    builds = _collision_builds()
    assert selection.choose(builds, Selector("digest", text, "--digest"), NOW) == Choice(
        builds[2], 2)


def test_uppercase_prefix() -> None:
    builds = _collision_builds()
    chosen = selection.choose(builds, Selector("digest", "ABCDEF01", "--digest"), NOW)
    assert chosen == Choice(builds[0], 0)


def test_ambiguous_prefix_lists_what_matched() -> None:
    with pytest.raises(SelectionError) as caught:
        selection.choose(_collision_builds(), Selector("digest", "abcdef", "--digest"), NOW)
    message = str(caught.value)
    assert "ambiguous" in message
    assert "#0 abcdef011111" in message and "#1 abcdef022222" in message
    assert "123456" not in message


def test_longer_prefix_resolves_the_collision() -> None:
    builds = _collision_builds()
    chosen = selection.choose(builds, Selector("digest", "sha256:abcdef02", "--digest"), NOW)
    assert chosen == Choice(builds[1], 1)


def test_unknown_digest() -> None:
    with pytest.raises(SelectionError, match="no build of this tag has a digest starting with"):
        selection.choose(_collision_builds(), Selector("digest", "fedcba", "--digest"), NOW)


def test_recurring_digest_is_its_newest_build() -> None:
    same = "sha256:" + "9" * 64
    builds = [Build(NOW - timedelta(days=1), "sha256:" + "8" * 64),
              Build(NOW - timedelta(days=2), same), Build(NOW - timedelta(days=5), same)]
    assert selection.choose(builds, Selector("digest", "999999", "--digest"), NOW) == Choice(
        builds[1], 1)


# --- choose: at / cooldown ----------------------------------------------------------------


def test_at_exactly_a_build_timestamp_is_that_build() -> None:
    builds = daily(5)
    chosen = selection.choose(builds, exactly_at(builds[2].updated), NOW)
    assert chosen == Choice(builds[2], 2)


def test_at_just_before_a_build_is_the_one_before() -> None:
    builds = daily(5)
    moment = builds[2].updated - timedelta(microseconds=1)
    assert selection.choose(builds, exactly_at(moment), NOW) == Choice(builds[3], 3)


def test_at_before_the_first_build() -> None:
    builds = daily(3)
    with pytest.raises(SelectionError, match="before the tag's first build"):
        selection.choose(builds, exactly_at(builds[-1].updated - timedelta(seconds=1)), NOW)


def test_at_after_the_newest_is_the_newest() -> None:
    builds = daily(3)
    assert selection.choose(builds, exactly_at(NOW + timedelta(days=9)), NOW) == (
        Choice(builds[0], 0))


def test_cooldown_longer_than_the_history() -> None:
    with pytest.raises(SelectionError, match="no build is old enough"):
        selection.choose(daily(3), Selector("cooldown", timedelta(days=30), "--cooldown"), NOW)


def test_cooldown_picks_the_newest_old_enough() -> None:
    builds = daily(10)  # newest is 1 h old, then 1 d 1 h, 2 d 1 h, ...
    chosen = selection.choose(builds, Selector("cooldown", timedelta(days=2), "--cooldown"), NOW)
    assert chosen == Choice(builds[2], 2)


def test_cooldown_zero_is_the_newest() -> None:
    builds = daily(3)
    assert selection.choose(builds, Selector("cooldown", timedelta(0), "--cooldown"), NOW) == (
        Choice(builds[0], 0))


def test_empty_history() -> None:
    """Every selector refuses an empty history in the same words."""
    for selector in (exactly_at(NOW), Selector("index", 0, "--index"),
                     Selector("digest", "abcdef", "--digest"),
                     Selector("cooldown", timedelta(days=1), "--cooldown")):
        with pytest.raises(SelectionError, match=r"^the tag has no builds$"):
            selection.choose([], selector, NOW)


def test_build_values_and_flags_read_a_digest_the_same_way() -> None:
    """``bisect --good`` and ``pull --digest`` share the reading and the wording."""
    from_flag = selection.parse(args(digest="abcdef"), NOW)
    assert selection.parse_build("abcdef", "--digest", NOW) == from_flag
    with pytest.raises(SelectionError) as flag_error:
        selection.parse(args(digest="sha256:abc"), NOW)
    with pytest.raises(UsageError) as build_error:
        selection.parse_build("sha256:abc", "--good", NOW)
    assert str(build_error.value) == f"--good: {flag_error.value}"


# --- fetch: reading only what is needed ---------------------------------------------------


def test_index_reads_the_newest_n_plus_one() -> None:
    source = FakeSource(daily(50))
    chosen = selection.fetch(source, REF, Selector("index", 3, "--index"), NOW)
    assert chosen == Choice(source.builds[3], 3)
    assert source.calls == [("history", {"since": None, "until": None, "last": 4})]


def test_index_out_of_range_names_the_real_count() -> None:
    source = FakeSource(daily(3))
    with pytest.raises(SelectionError, match="the tag has 3 builds"):
        selection.fetch(source, REF, Selector("index", 5, "--index"), NOW)


def test_digest_reads_everything() -> None:
    source = FakeSource(daily(20))
    target = source.builds[13]
    chosen = selection.fetch(source, REF, Selector("digest", target.digest[7:], "--digest"), NOW)
    assert chosen == Choice(target, 13)
    assert source.calls == [("history", {"since": None, "until": None, "last": None})]


def test_at_is_a_bounded_read() -> None:
    source = FakeSource(daily(30))
    moment = source.builds[10].updated + timedelta(hours=3)
    chosen = selection.fetch(source, REF, exactly_at(moment), NOW)
    assert chosen.build == source.builds[10]
    assert source.calls[0] == ("history", {"since": None, "until": moment, "last": 4})
    assert len(source.calls) == 1


def test_at_before_first_build_names_the_first_build() -> None:
    source = FakeSource(daily(30))
    first = source.builds[-1]
    with pytest.raises(SelectionError) as caught:
        selection.fetch(source, REF, exactly_at(first.updated - timedelta(days=1)),
                        NOW)
    assert "before the tag's first build" in str(caught.value)
    assert first.updated.strftime("%Y-%m-%dT%H:%M:%S") in str(caught.value)


def test_cooldown_longer_than_history_via_fetch() -> None:
    source = FakeSource(daily(5))
    with pytest.raises(SelectionError, match="no build is old enough"):
        selection.fetch(source, REF, Selector("cooldown", timedelta(days=60), "--cooldown"), NOW)


def test_moment_in_the_future_is_the_newest_and_numbered() -> None:
    source = FakeSource(daily(5))
    chosen = selection.fetch(source, REF, exactly_at(NOW + timedelta(days=1)), NOW)
    assert chosen == Choice(source.builds[0], 0)


def test_builds_within_the_servers_rounding_do_not_hide_the_answer() -> None:
    """The server rounds ``end`` up to the millisecond: builds in that sliver come back too."""
    moment = datetime(2024, 6, 1, 0, 0, 0, 100, tzinfo=timezone.utc)
    wanted = Build(moment - timedelta(hours=1), digest(1))
    sliver = [Build(moment + timedelta(microseconds=100 + i), "sha256:" + f"{i + 16:064x}")
              for i in range(6)]
    source = FakeSource([wanted, *sliver, Build(moment + timedelta(days=1), digest(2))])
    chosen = selection.fetch(source, REF, exactly_at(moment), NOW)
    assert chosen.build == wanted


_moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2024, 1, 3),
    timezones=st.just(timezone.utc),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_moments, max_size=12), _moments, st.booleans())
def test_fetch_agrees_with_choosing_on_the_full_history(
    stamps: list[datetime], moment: datetime, as_cooldown: bool
) -> None:
    builds = [Build(stamp, "sha256:" + f"{i:064x}") for i, stamp in enumerate(stamps)]
    full = sorted(builds, reverse=True)
    now = datetime(2024, 1, 4, tzinfo=timezone.utc)
    selector = (Selector("cooldown", now - moment, "--cooldown") if as_cooldown
                else exactly_at(moment))
    try:
        expected: Choice | str = selection.choose(full, selector, now)
    except SelectionError as error:
        expected = str(error)
    try:
        got: Choice | str = selection.fetch(FakeSource(builds), REF, selector, now)
    except SelectionError as error:
        got = str(error)
    if isinstance(expected, Choice):
        assert isinstance(got, Choice)
        assert got.build == expected.build
        assert got.index in (None, expected.index)
    else:
        assert got == expected


# --- the picker (driven through a pipe; the pseudo-terminal run is an integration test) ----


def run_picker(keys: str, builds: list[Build], local: set[str] | None = None) -> Choice:
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from docker_cghistory import picker

    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        return picker.pick(REF, builds, local, NOW, input=pipe, output=DummyOutput())


def test_picker_rows_show_index_time_age_digest_and_local() -> None:
    from docker_cghistory import picker

    builds = daily(12)
    lines = picker.rows(builds, {builds[3].digest}, NOW)
    assert lines[0] == (f"#0   2024-06-10T11:00:00.000Z  1 hour ago        "
                        f"sha256:{builds[0].short}")
    assert lines[3].endswith(f"sha256:{builds[3].short}  local")
    assert lines[11].startswith("#11  2024-05-30T11:00:00.000Z  1 week ago")
    assert not any(line.endswith("local") for i, line in enumerate(lines) if i != 3)


def test_picker_enter_takes_the_newest() -> None:
    builds = daily(4)
    assert run_picker("\r", builds) == Choice(builds[0], 0)


def test_picker_arrows_move() -> None:
    builds = daily(4)
    assert run_picker("\x1b[B\x1b[B\x1b[A\r", builds) == Choice(builds[1], 1)


def test_picker_typing_filters() -> None:
    builds = _collision_builds()
    assert run_picker("123456\r", builds) == Choice(builds[2], 2)
    assert run_picker("ABCDEF02\r", builds) == Choice(builds[1], 1)


def test_picker_filter_on_local() -> None:
    builds = daily(6)
    assert run_picker("local\r", builds, {builds[4].digest}) == Choice(builds[4], 4)


@pytest.mark.parametrize("keys", ["\x03", "\x1b"])
def test_picker_cancel_is_exit_130(keys: str) -> None:
    from docker_cghistory.errors import Interrupted

    with pytest.raises(Interrupted, match="cancelled") as caught:
        run_picker(keys, daily(3))
    assert caught.value.exit_code == 130


def test_picker_filter_matching_nothing_answers_nothing() -> None:
    """No build on screen, so Enter pulls nothing; once the filter is erased the arrows and
    Enter work again (more in tests/unit/test_picker.py)."""
    builds = daily(3)
    assert run_picker("zzzz\x1b[B\r\b\b\b\b\x1b[B\r", builds) == Choice(builds[1], 1)


def test_picker_without_builds() -> None:
    with pytest.raises(SelectionError, match="no builds"):
        run_picker("\r", [])
