"""How long ago, in docker's words ("2 days ago").

Import-free, so that completion can describe builds without loading ``datetime``.
"""

from __future__ import annotations

_UNITS = ((86400 * 365, "year"), (86400 * 30, "month"), (86400 * 7, "week"),
          (86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))


def describe_age(seconds: float) -> str:
    """``45 seconds ago``, ``3 hours ago``, ``12 days ago``."""
    whole = int(seconds)
    if whole < 0:
        return "in the future"
    for size, unit in _UNITS:
        if whole >= size:
            count = whole // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"
