"""WHEN and AGE values, and the timestamp forms the registry and the user see."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from docker_cghistory.errors import TimeSpecError, UsageError
from docker_cghistory.timespec import (
    Moment,
    format_age,
    format_query_time,
    format_timestamp,
    parse_age,
    parse_timestamp,
    parse_when,
)

NOW = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
UTC = timezone.utc
RAW_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("45s", timedelta(seconds=45)),
        ("90m", timedelta(minutes=90)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("0d", timedelta(0)),
        (" 7 d ", timedelta(days=7)),
        ("7D", timedelta(days=7)),
        ("9999999s", timedelta(seconds=9999999)),
    ],
)
def test_parse_age(text: str, delta: timedelta) -> None:
    assert parse_age(text) == delta
    assert parse_when(text, NOW) == Moment.instant(NOW - delta)  # an age is an instant


@pytest.mark.parametrize(
    "text", ["7", "d", "7y", "7dd", "-7d", "1.5h", "7 days", "", "12345678d", "7\u0661d", "٧d"],
)
def test_bad_age(text: str) -> None:
    with pytest.raises(TimeSpecError) as caught:
        parse_age(text)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, UsageError)  # exit status 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-06-01", datetime(2024, 6, 1, tzinfo=UTC)),
        ("2024-06-01T09:30", datetime(2024, 6, 1, 9, 30, tzinfo=UTC)),
        ("2024-06-01T09:30:15", datetime(2024, 6, 1, 9, 30, 15, tzinfo=UTC)),
        ("2024-06-01T09:30:15Z", datetime(2024, 6, 1, 9, 30, 15, tzinfo=UTC)),
        ("2024-06-01t09:30:15z", datetime(2024, 6, 1, 9, 30, 15, tzinfo=UTC)),
        ("2024-06-01 09:30:15Z", datetime(2024, 6, 1, 9, 30, 15, tzinfo=UTC)),
        ("2024-06-01T09:30:15+02:00", datetime(2024, 6, 1, 7, 30, 15, tzinfo=UTC)),
        ("2024-06-01T09:30:15+0200", datetime(2024, 6, 1, 7, 30, 15, tzinfo=UTC)),
        ("2024-06-01T09:30:15-05:30", datetime(2024, 6, 1, 15, 0, 15, tzinfo=UTC)),
        ("2024-06-01T00:30:00+01:00", datetime(2024, 5, 31, 23, 30, tzinfo=UTC)),
        ("2024-06-01T09:30:15 +02:00", datetime(2024, 6, 1, 7, 30, 15, tzinfo=UTC)),
        ("2023-05-12T13:46:10.555Z", datetime(2023, 5, 12, 13, 46, 10, 555000, tzinfo=UTC)),
        ("2023-05-12T13:46:10.5Z", datetime(2023, 5, 12, 13, 46, 10, 500000, tzinfo=UTC)),
        ("2023-05-12T13:46:10.12Z", datetime(2023, 5, 12, 13, 46, 10, 120000, tzinfo=UTC)),
        ("2023-05-12T13:46:10.123456Z", datetime(2023, 5, 12, 13, 46, 10, 123456, tzinfo=UTC)),
        ("2023-05-12T13:46:10.1234567Z", datetime(2023, 5, 12, 13, 46, 10, 123456, tzinfo=UTC)),
        ("2023-05-12T13:46:10.123456789Z", datetime(2023, 5, 12, 13, 46, 10, 123456, tzinfo=UTC)),
        ("2023-05-12T13:46:10,5Z", datetime(2023, 5, 12, 13, 46, 10, 500000, tzinfo=UTC)),
        ("2024-02-29", datetime(2024, 2, 29, tzinfo=UTC)),
    ],
)
def test_dates_and_date_times(text: str, expected: datetime) -> None:
    parsed = parse_when(text, NOW)
    assert parsed.start == expected
    assert parsed.start.utcoffset() == parsed.end.utcoffset() == timedelta(0)
    assert parse_timestamp(text) == expected
    if re.search(r"\d[.,]\d", text):  # a fraction: that exact instant
        assert parsed == Moment.instant(expected)
    else:  # none: the whole second, up to its last microsecond
        assert parsed.end == expected + timedelta(seconds=1) - timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("2024-06-29T09:07:00Z", "2024-06-29T09:07:00Z"),
        ("2024-06-29T11:07+02:00", "2024-06-29T09:07:00Z"),
        ("2024-06-29", "2024-06-29T00:00:00Z"),
        ("2024-06-29T09:07:00.971Z", "2024-06-29T09:07:00.971Z"),
        ("2024-06-29T09:07:00.000Z", "2024-06-29T09:07:00.000Z"),
    ],
)
def test_a_moment_prints_as_it_reads_back(text: str, shown: str) -> None:
    """Messages name a moment so that, typed back, it is the same moment."""
    assert str(parse_when(text, NOW)) == shown
    assert parse_when(shown, NOW) == parse_when(text, NOW)


def test_the_last_second_of_the_calendar() -> None:
    moment = parse_when("9999-12-31T23:59:59Z", NOW)
    assert moment.end == datetime.max.replace(tzinfo=UTC)


@pytest.mark.parametrize("fraction_digits", range(1, 10))
def test_every_fraction_length(fraction_digits: int) -> None:
    digits = "987654321"[:fraction_digits]
    parsed = parse_timestamp(f"2024-01-02T03:04:05.{digits}Z")
    assert parsed.microsecond == int(digits[:6].ljust(6, "0"))


def test_now() -> None:
    assert parse_when("now", NOW) == Moment.instant(NOW)
    assert parse_when(" NOW ", NOW).end is NOW


@pytest.mark.parametrize(
    "text",
    [
        "", "yesterday", "2024/06/01", "2024-6-1", "24-06-01", "2024-13-01", "2024-02-30",
        "2023-02-29", "2024-06-01T25:00", "2024-06-01T09:60", "2024-06-01T09:30:61Z",
        "2024-06-01T09:30:00+24:00", "2024-06-01T09:30:00+05:99", "2024-06-01T09:30:00+2",
        "2024-06-01T09:30:00.Z", "2024-06-01T", "2024-06-01Tnoon", "0000-01-01",
        "٢٠٢٤-٠٦-٠١", "2024-06-01\x1b[2J", "2024-06-01\n2024-06-02", "9999999w", "9999999d",
        "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00",
    ],
)
def test_invalid_when_is_one_line(text: str) -> None:
    with pytest.raises(TimeSpecError) as caught:
        parse_when(text, NOW)
    message = str(caught.value)
    assert "\n" not in message
    assert not RAW_CONTROL.search(message)
    assert "invalid time" in message


def test_parse_timestamp_raises_value_error() -> None:
    with pytest.raises(ValueError):
        parse_timestamp("2024-06-01 garbage")


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        # Always a fraction: a bare second, typed back, would cover the whole second.
        (datetime(2024, 6, 1, 9, 30, tzinfo=UTC), "2024-06-01T09:30:00.000Z"),
        (datetime(2024, 6, 1, 9, 30, 0, 500000, tzinfo=UTC), "2024-06-01T09:30:00.500Z"),
        (datetime(2024, 6, 1, 9, 30, 0, 123, tzinfo=UTC), "2024-06-01T09:30:00.000123Z"),
        (datetime(2024, 6, 1, 11, 30, tzinfo=timezone(timedelta(hours=2))),
         "2024-06-01T09:30:00.000Z"),
        (datetime(999, 1, 1, tzinfo=UTC), "0999-01-01T00:00:00.000Z"),
    ],
)
def test_format_timestamp(moment: datetime, text: str) -> None:
    assert format_timestamp(moment) == text


@pytest.mark.parametrize(
    ("moment", "down", "up"),
    [
        (datetime(2024, 6, 1, 9, 30, tzinfo=UTC),
         "2024-06-01T09:30:00.000Z", "2024-06-01T09:30:00.000Z"),
        (datetime(2024, 6, 1, 9, 30, 0, 555000, tzinfo=UTC),
         "2024-06-01T09:30:00.555Z", "2024-06-01T09:30:00.555Z"),
        (datetime(2024, 6, 1, 9, 30, 0, 555001, tzinfo=UTC),
         "2024-06-01T09:30:00.555Z", "2024-06-01T09:30:00.556Z"),
        (datetime(2024, 6, 1, 23, 59, 59, 999500, tzinfo=UTC),
         "2024-06-01T23:59:59.999Z", "2024-06-02T00:00:00.000Z"),
    ],
)
def test_format_query_time(moment: datetime, down: str, up: str) -> None:
    assert format_query_time(moment) == down
    assert format_query_time(moment, round_up=True) == up


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=-5), "in the future"),
        (timedelta(0), "just now"),
        (timedelta(seconds=1), "1 second ago"),
        (timedelta(seconds=45), "45 seconds ago"),
        (timedelta(minutes=1), "1 minute ago"),
        (timedelta(hours=3, minutes=59), "3 hours ago"),
        (timedelta(days=1), "1 day ago"),
        (timedelta(days=13), "1 week ago"),
        (timedelta(days=45), "1 month ago"),
        (timedelta(days=800), "2 years ago"),
    ],
)
def test_format_age(delta: timedelta, text: str) -> None:
    assert format_age(delta) == text


# --- properties ---------------------------------------------------------------------------------

_moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                               timezone(-timedelta(hours=8))]),
)


@settings(max_examples=300, deadline=None)
@given(_moments)
def test_format_then_parse_round_trips(moment: datetime) -> None:
    text = format_timestamp(moment)
    assert text.endswith("Z")
    assert parse_timestamp(text) == moment
    assert parse_when(text, NOW) == Moment.instant(moment)  # printed: exact, never a second


@settings(max_examples=300, deadline=None)
@given(_moments)
def test_query_time_rounds_the_right_way(moment: datetime) -> None:
    down = parse_timestamp(format_query_time(moment))
    up = parse_timestamp(format_query_time(moment, round_up=True))
    assert down <= moment <= up
    assert moment - down < timedelta(milliseconds=1)
    assert up - moment < timedelta(milliseconds=1)
    assert down.microsecond % 1000 == 0 and up.microsecond % 1000 == 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", format_query_time(moment))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_parse_when_only_raises_time_spec_error(text: str) -> None:
    try:
        parsed = parse_when(text, NOW)
    except TimeSpecError as error:
        assert not RAW_CONTROL.search(str(error))
    else:
        assert parsed.start.utcoffset() == parsed.end.utcoffset() == timedelta(0)
        assert parsed.start <= parsed.end
