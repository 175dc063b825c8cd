"""Weekend cycle days. A cycle is planned a whole number of days after the one before it: a
course started on a Saturday, or a delay by a number of days, can put every later day 1 on a
weekend, when most day units are closed. Nothing is refused (some units open at weekends); the
pages mark those days and the prescriber is told when a course or a delay makes one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.utils import dateformat

SATURDAY = 5


def falls_on_weekend(day: dt.date) -> bool:
    return day.weekday() >= SATURDAY


def weekend_warning(cycles: Iterable[tuple[int, dt.date]]) -> str:
    """A sentence naming the cycles (number, planned day 1) that fall on a weekend, or ""."""
    on_weekend = [(number, day) for number, day in cycles if falls_on_weekend(day)]
    if not on_weekend:
        return ""
    shown = ", ".join(
        f"cycle {number} ({dateformat.format(day, 'D j M Y')})" for number, day in on_weekend[:3]
    )
    more = f" and {len(on_weekend) - 3} more" if len(on_weekend) > 3 else ""
    one = len(on_weekend) == 1
    return (
        f"{shown[0].upper()}{shown[1:]}{more} {'falls' if one else 'fall'} on a weekend: move "
        f"{'it' if one else 'them'} (delay, or start on a weekday) if the day unit is closed then."
    )
