"""Days the day unit may be closed: weekends and the clinic's public holidays.

A cycle is planned a whole number of days after the one before it: a course started on a
Saturday, or a delay by a number of days, can put a day 1 on a weekend, and a fortnightly
course started in October puts one on Christmas Day, when most day units are closed. Nothing is
refused (some units open at weekends, and the unit decides its own holidays); the pages mark
those days and the prescriber is told when a course or a delay makes one.

The public holidays are those of settings.CLINIC_HOLIDAYS ("GB-ENG", England's bank holidays, by
default; checked at start-up by oncoplanner.env.env_holidays), from the `holidays` package.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable

from django.conf import settings
from django.utils import dateformat

from oncoplanner.env import holiday_calendar

SATURDAY = 5


def falls_on_weekend(day: dt.date) -> bool:
    return day.weekday() >= SATURDAY


def public_holiday(day: dt.date) -> str:
    """The name of the clinic's public holiday on `day` ("Christmas Day"), or ""."""
    if not settings.CLINIC_HOLIDAYS:
        return ""
    return _public_holidays(settings.CLINIC_HOLIDAYS, day.year).get(day, "")


def closed_day(day: dt.date) -> str:
    """Why the day unit may be closed on `day`: a public holiday's name, "weekend", or ""."""
    return public_holiday(day) or ("weekend" if falls_on_weekend(day) else "")


def closed_days_warning(cycles: Iterable[tuple[int, dt.date]]) -> str:
    """A sentence naming the cycles (number, planned day 1) that fall on a weekend or a public
    holiday, or ""."""
    closed = [(number, day, closed_day(day)) for number, day in cycles]
    closed = [(number, day, why) for number, day, why in closed if why]
    if not closed:
        return ""
    shown = ", ".join(_cycle_on(number, day, why) for number, day, why in closed[:3])
    more = f" and {len(closed) - 3} more" if len(closed) > 3 else ""
    one = len(closed) == 1
    kinds = {"a weekend" if why == "weekend" else "a public holiday" for _, _, why in closed}
    return (
        f"{shown[0].upper()}{shown[1:]}{more} {'falls' if one else 'fall'} on "
        f"{' or '.join(sorted(kinds, reverse=True))}: move {'it' if one else 'them'} (delay, or "
        "start on another day) if the day unit is closed then."
    )


def _cycle_on(number: int, day: dt.date, why: str) -> str:
    holiday = "" if why == "weekend" else f", {why}"
    return f"cycle {number} ({dateformat.format(day, 'D j M Y')}{holiday})"


@functools.cache
def _public_holidays(code: str, year: int) -> dict[dt.date, str]:
    # One plain dict per year: the package's own object grows as years are looked up, which
    # threads of one worker must not do at once.
    return dict(holiday_calendar(code, year))
