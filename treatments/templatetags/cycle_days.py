"""Cycle days as the day unit reads them: a day 1 on a weekend, a public holiday or a day the
unit recorded as closed is marked where it is shown, and a dose's input dates are written as
every page writes dates."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from oncoplanner.dates import day_text
from treatments.models import ChemoCycle
from treatments.schedule import OPEN, PUBLIC_HOLIDAY, UNIT_CLOSURE, day_closure

register = template.Library()


@register.filter
def closed_day_badge(planned: ChemoCycle | dt.date | None) -> SafeString | str:
    """A badge after a planned day 1 on which the day unit may be closed, naming why
    ("weekend", "Christmas Day", "Staff training day"), for a date or a cycle still to give;
    else nothing."""
    if isinstance(planned, ChemoCycle):
        closure, planned = planned.planned_closure, planned.planned_start
    else:
        closure = day_closure(planned) if planned is not None else OPEN
    if not closure or planned is None:
        return ""
    if closure.kind == UNIT_CLOSURE:
        title = (
            f"Planned on a unit closure day ({closure.why}): move it; the day unit is closed then."
        )
    else:
        on = (
            f"{closure.why}, a public holiday"
            if closure.kind == PUBLIC_HOLIDAY
            else f"a {planned:%A}"
        )
        title = f"Planned on {on}: move it if the day unit is closed then."
    return format_html(
        ' <span class="badge warn closed-day" title="{}">{}</span>',  # after the date
        title,
        closure.why,
    )


@register.filter
def as_day(value: dt.date | str | None) -> str:
    """A date, or an ISO date as a dose's inputs keep it ("2026-02-16"), as pages write dates:
    16 Feb 2026 (oncoplanner.dates). Anything else is shown as it is."""
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            return value
    return "" if value is None else day_text(value)
