"""WHEN and AGE values: ``2024-06-01``, ``2024-06-01T09:30:00Z``, ``90m``, ``12h``, ``7d``, ``2w``.

A WHEN is a moment: an ISO 8601 date (midnight UTC), an RFC 3339 date-time (UTC when no
offset is given), ``now``, or an age (that long before now). An AGE is a duration. Pure: the
caller passes ``now``.

The one rule for times, in both directions (README, "Listing builds"), so that any time the
tool prints, pasted into any flag, selects that very build:

- printed: a build's exact time, always with a fraction of a second (``format_timestamp``);
- typed with a fraction (or an age, or ``now``): that exact instant;
- typed without a fraction: the whole second (``Moment``): ``--at``/``--good``/``--bad`` look
  back from its end, ``--until`` includes it, ``--since`` starts at its beginning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .ages import describe_age
from .errors import TimeSpecError, sanitize

_AGE_RE = re.compile(r"^\s*(\d{1,7})\s*([smhdw])\s*$", re.IGNORECASE | re.ASCII)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# RFC 3339 plus the shapes people type: space for 'T', any number of fractional digits.
_DATETIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*([Zz]|[+-]\d{2}:?\d{2})?$",
    re.ASCII,
)


def parse_age(text: str) -> timedelta:
    """Read an AGE such as ``90m``, ``12h``, ``7d`` or ``2w``."""
    match = _AGE_RE.match(text)
    if not match:
        raise TimeSpecError(
            f"invalid age {sanitize(text)!r}: use a number and a unit s, m, h, d or w (e.g. 7d)"
        )
    return timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})


@dataclass(frozen=True)
class Moment:
    """A WHEN as typed: every instant from ``start`` to ``end``, both included.

    A time typed without a fraction of a second names the whole second, not its first
    microsecond: a build at ``09:07:00.971`` is current at ``09:07:00``, as a person reading
    "09:07:00" means it. With a fraction, an age or ``now``, ``start == end``. Callers pick
    the side their flag needs (``--since``: ``start``; ``--until``, ``--at``: ``end``).
    """

    start: datetime
    end: datetime

    @classmethod
    def instant(cls, moment: datetime) -> Moment:
        """One exact instant (a typed fraction, an age, ``now``)."""
        return cls(moment, moment)

    def __str__(self) -> str:
        """As the user could type it back for the same meaning (messages name it so)."""
        if self.start == self.end:
            return format_timestamp(self.start)
        return self.start.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def parse_timestamp(text: str) -> datetime:
    """Read an RFC 3339 / ISO 8601 date or date-time; the result is aware and in UTC.

    Raises ``ValueError`` for anything else, so callers can word the error for their context
    (a user's flag, or a registry's answer).
    """
    return _read_timestamp(text)[0]


def _read_timestamp(text: str) -> tuple[datetime, bool]:
    """``parse_timestamp``, and whether the text had a fraction of a second."""
    match = _DATETIME_RE.match(text.strip())
    if not match:
        raise ValueError(f"not an ISO 8601 date or date-time: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    tz = timezone.utc
    if zone and zone not in "Zz":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if offset >= timedelta(hours=24) or int(digits[2:]) >= 60:
            raise ValueError(f"offset out of range: {text!r}")
        tz = timezone(sign * offset)
    moment = datetime(
        int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
        micro, tzinfo=tz,
    )
    return moment.astimezone(timezone.utc), fraction is not None


def parse_when(text: str, now: datetime) -> Moment:
    """Read a WHEN: a date, a date-time, ``now``, or an age meaning that long ago.

    A date or date-time without a fraction of a second covers that whole second (``Moment``).
    """
    stripped = text.strip()
    if stripped.lower() == "now":
        return Moment.instant(now)
    try:
        if _AGE_RE.match(stripped):
            return Moment.instant(now - parse_age(stripped))
        start, exact = _read_timestamp(stripped)
        if exact:
            return Moment.instant(start)
        try:
            end = start + timedelta(seconds=1, microseconds=-1)
        except OverflowError:  # the calendar's last second
            end = datetime.max.replace(tzinfo=timezone.utc)
        return Moment(start, end)
    except (ValueError, OverflowError):
        raise TimeSpecError(
            f"invalid time {sanitize(text)!r}: use a date (2024-06-01), a date-time "
            "(2024-06-01T09:30:00Z) or an age (7d, 12h, 90m, 2w)"
        ) from None


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with ``Z`` and always a fraction: milliseconds, or microseconds when
    the moment has them.

    Never a bare second: typed back, a bare second covers the whole second (``Moment``) and
    would select a newer build of that second. ``.000`` keeps the printed time exact.
    """
    moment = moment.astimezone(timezone.utc)
    # isoformat, not strftime: strftime("%Y") does not pad years before 1000 on glibc.
    precision = "microseconds" if moment.microsecond % 1000 else "milliseconds"
    return moment.replace(tzinfo=None).isoformat(timespec=precision) + "Z"


def format_query_time(moment: datetime, round_up: bool = False) -> str:
    """The form the history API takes for ``start``/``end``: millisecond RFC 3339 in UTC.

    A start is rounded down and an end up, so that a window never loses its edge builds.
    """
    moment = moment.astimezone(timezone.utc)
    if round_up and moment.microsecond % 1000:
        moment += timedelta(microseconds=1000 - moment.microsecond % 1000)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def format_age(delta: timedelta) -> str:
    """Docker's "2 days ago" style: ``45 seconds ago``, ``3 hours ago``, ``12 days ago``."""
    return describe_age(delta.total_seconds())


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
