"""Dates as every page and message writes them: 16 Feb 2026, and 16 Feb 2026 14:05 in clinic time.

Unambiguous wherever the software runs (03/04/2026 is March in one clinic and April in the
next) and read at a glance; the dashboard had written 2026-02-16 where the cycle page wrote
16 Feb 2026. Templates use the same formats: `|date:"j M Y"` and `|date:"j M Y H:i"`, with the
weekday ("D j M Y") where a day of the week matters (a cycle's planned day). Machine-readable
values (form inputs, FHIR, CSV, the API's JSON) stay ISO 8601.
"""

from __future__ import annotations

import datetime as dt

from django.utils import dateformat, timezone

DATE = "j M Y"
DATETIME = "j M Y H:i"


def day_text(day: dt.date) -> str:
    return dateformat.format(day, DATE)


def moment_text(at: dt.datetime) -> str:
    """In clinic time (TIME_ZONE), as the pages show it."""
    return dateformat.format(timezone.localtime(at) if timezone.is_aware(at) else at, DATETIME)
