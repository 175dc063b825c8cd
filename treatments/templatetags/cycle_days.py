"""Cycle days as the day unit reads them: a weekend day is marked where it is shown, and a
dose's input dates are written as every page writes dates."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from oncoplanner.dates import day_text
from treatments.models import ChemoCycle
from treatments.schedule import falls_on_weekend
from treatments.services import OPEN_CYCLE_STATUSES

register = template.Library()


@register.filter
def weekend_badge(planned: ChemoCycle | dt.date | None) -> SafeString | str:
    """A "weekend" badge after a planned day 1 on a Saturday or Sunday (a date, or a cycle
    still to give), else nothing."""
    if isinstance(planned, ChemoCycle):
        # Only a cycle still to give: given and cancelled ones are history.
        planned = planned.planned_start if planned.status in OPEN_CYCLE_STATUSES else None
    if planned is None or not falls_on_weekend(planned):
        return ""
    return format_html(
        ' <span class="badge warn weekend" title="{}">weekend</span>',  # after the date
        f"Planned on a {planned:%A}: move it if the day unit is closed then.",
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
