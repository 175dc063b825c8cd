"""Days the day unit may be closed: weekends, the clinic's public holidays, and the closures the
unit records itself (a staff training day, a refurbishment week, a local holiday).

A cycle is planned a whole number of days after the one before it: a course started on a
Saturday, or a delay by a number of days, can put a day 1 on a weekend, and a fortnightly
course started in October puts one on Christmas Day, when most day units are closed. Nothing is
refused (some units open at weekends, and the unit decides its own holidays); the pages mark
those days and the prescriber is told when a course or a delay makes one.

The public holidays are those of settings.CLINIC_HOLIDAYS ("GB-ENG", England's bank holidays, by
default; checked at start-up by oncoplanner.env.env_holidays), from the `holidays` package. The
unit's own closures are treatments.models.UnitClosure rows, entered by administrators: a day in
one is closed for certain, so its reason is what a page says about the day ("Staff training
day"), before a public holiday's name or "weekend".

The course page, the patient list and the API ask about every cycle row they show: the closures
are read once per request (one query, on the first question asked), never once per row. Outside a
request (a command, a task, a test calling these directly) every question reads them afresh; a
closure saved or deleted during a request is seen by that request's later questions too. Each
request reads the table itself, so a closure an administrator adds is marked on the next page of
every worker process at once, with nothing to clear.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db.models.signals import post_delete, post_save
from django.utils import dateformat

from oncoplanner.env import holiday_calendar

SATURDAY = 5

# What closes the day unit on a day, strongest first: how a page words it.
# (Also the names the clinician API gives them: REST closed_day_kind, GraphQL ClosedDayKind.)
UNIT_CLOSURE = "unit_closure"
PUBLIC_HOLIDAY = "public_holiday"
WEEKEND = "weekend"


@dataclass(frozen=True)
class Closure:
    """Why the day unit may be closed on a day: `kind` one of UNIT_CLOSURE, PUBLIC_HOLIDAY,
    WEEKEND, and `why` the closure's reason, the holiday's name or "weekend"; both "" (and the
    closure false) on a day it is open."""

    kind: str = ""
    why: str = ""

    def __bool__(self) -> bool:
        return bool(self.kind)


OPEN = Closure()


def falls_on_weekend(day: dt.date) -> bool:
    return day.weekday() >= SATURDAY


def public_holiday(day: dt.date) -> str:
    """The name of the clinic's public holiday on `day` ("Christmas Day"), or ""."""
    if not settings.CLINIC_HOLIDAYS:
        return ""
    return _public_holidays(settings.CLINIC_HOLIDAYS, day.year).get(day, "")


def unit_closure(day: dt.date) -> str:
    """The reason the day unit recorded for closing on `day` ("Staff training day"), or ""."""
    for first_day, last_day, reason in _unit_closures():
        if first_day <= day <= last_day:
            return reason
    return ""


def day_closure(day: dt.date) -> Closure:
    """Why the day unit may be closed on `day`: a closure it recorded beats a public holiday,
    which beats a weekend (a refurbishment week names itself on its Saturday too)."""
    reason = unit_closure(day)
    if reason:
        return Closure(UNIT_CLOSURE, reason)
    holiday = public_holiday(day)
    if holiday:
        return Closure(PUBLIC_HOLIDAY, holiday)
    return Closure(WEEKEND, "weekend") if falls_on_weekend(day) else OPEN


def closed_day(day: dt.date) -> str:
    """Why the day unit may be closed on `day`: the reason of a closure it recorded ("Staff
    training day"), a public holiday's name, "weekend", or ""."""
    return day_closure(day).why


# The kinds as a warning names them, in the order it names them.
_KIND_WORDS = {
    WEEKEND: "a weekend",
    PUBLIC_HOLIDAY: "a public holiday",
    UNIT_CLOSURE: "a unit closure day",
}


def closed_days_warning(cycles: Iterable[tuple[int, dt.date]]) -> str:
    """A sentence naming the cycles (number, planned day 1) that fall on a weekend, a public
    holiday or a day the unit recorded as closed, or ""."""
    closed = [(number, day, day_closure(day)) for number, day in cycles]
    closed = [(number, day, closure) for number, day, closure in closed if closure]
    if not closed:
        return ""
    shown = ", ".join(_cycle_on(number, day, closure) for number, day, closure in closed[:3])
    more = f" and {len(closed) - 3} more" if len(closed) > 3 else ""
    one = len(closed) == 1
    kinds = [
        words for kind, words in _KIND_WORDS.items() if any(c.kind == kind for *_, c in closed)
    ]
    kinds_text = " or ".join(kinds) if len(kinds) < 3 else f"{kinds[0]}, {kinds[1]} or {kinds[2]}"
    # A recorded closure is certain; a weekend or a holiday only usually closes the unit.
    certain = all(closure.kind == UNIT_CLOSURE for *_, closure in closed)
    then = "; the day unit is closed then." if certain else " if the day unit is closed then."
    return (
        f"{shown[0].upper()}{shown[1:]}{more} {'falls' if one else 'fall'} on {kinds_text}: "
        f"move {'it' if one else 'them'} (delay, or start on another day){then}"
    )


def _cycle_on(number: int, day: dt.date, closure: Closure) -> str:
    named = "" if closure.kind == WEEKEND else f", {closure.why}"
    return f"cycle {number} ({dateformat.format(day, 'D j M Y')}{named})"


# --- The unit's own closures, read once per request -------------------------------------------


class _RequestClosures:
    """The closures as one request read them (None until it first asks)."""

    rows: tuple[tuple[dt.date, dt.date, str], ...] | None = None


# Set at the start of each request, cleared at its end; None outside a request. A context
# variable, so each thread (and each asyncio task) of a worker has its own.
_request: ContextVar[_RequestClosures | None] = ContextVar("unit_closures", default=None)


def _read_unit_closures() -> tuple[tuple[dt.date, dt.date, str], ...]:
    from treatments.models import UnitClosure  # the model's module imports this one

    return tuple(
        UnitClosure.objects.order_by("first_day", "pk").values_list(
            "first_day", "last_day", "reason"
        )
    )


def _unit_closures() -> tuple[tuple[dt.date, dt.date, str], ...]:
    held = _request.get()
    if held is None:
        return _read_unit_closures()
    if held.rows is None:
        held.rows = _read_unit_closures()
    return held.rows


def _request_began(**kwargs: Any) -> None:
    _request.set(_RequestClosures())


def _request_ended(**kwargs: Any) -> None:
    _request.set(None)


def _closures_changed(**kwargs: Any) -> None:
    held = _request.get()
    if held is not None:
        held.rows = None  # read again on the next question, this request's change included


def connect_receivers() -> None:
    """Hold the closures per request, and forget them when one is saved or deleted
    (TreatmentsConfig.ready)."""
    from treatments.models import UnitClosure

    request_started.connect(_request_began, dispatch_uid="unit_closures_request_began")
    request_finished.connect(_request_ended, dispatch_uid="unit_closures_request_ended")
    post_save.connect(_closures_changed, sender=UnitClosure, dispatch_uid="unit_closure_saved")
    post_delete.connect(_closures_changed, sender=UnitClosure, dispatch_uid="unit_closure_deleted")


@functools.cache
def _public_holidays(code: str, year: int) -> dict[dt.date, str]:
    # One plain dict per year: the package's own object grows as years are looked up, which
    # threads of one worker must not do at once.
    return dict(holiday_calendar(code, year))
