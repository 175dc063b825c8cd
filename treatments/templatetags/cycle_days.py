"""Cycle days as the day unit reads them: a day 1 on a weekend or a public holiday is marked
where it is shown, and a dose's input dates are written as every page writes dates."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from oncoplanner.dates import day_text
from treatments.models import ChemoCycle
from treatments.schedule import closed_day

register = template.Library()


@register.filter
def closed_day_badge(planned: ChemoCycle | dt.date | None) -> SafeString | str:
    """A badge after a planned day 1 on which the day unit may be closed, naming why
    ("weekend", "Christmas Day"), for a date or a cycle still to give; else nothing."""
    if isinstance(planned, ChemoCycle):
        why, planned = planned.planned_on_closed_day, planned.planned_start
    else:
        why = closed_day(planned) if planned is not None else ""
    if not why:
        return ""
    on = f"a {planned:%A}" if why == "weekend" else f"{why}, a public holiday"
    return format_html(
        ' <span class="badge warn closed-day" title="{}">{}</span>',  # after the date
        f"Planned on {on}: move it if the day unit is closed then.",
        why,
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
