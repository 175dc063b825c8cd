"""A cycle's nadir counts the blood drawn on the cycle's days as the clinic counts days.

course_nadirs read each result's day as its UTC date: in summer (BST) a count drawn between
midnight and 1 am on the first day of cycle 2 is, in UTC, still the last day of cycle 1, so the
course summary put cycle 2's ANC nadir under cycle 1 and showed none for cycle 2.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest

from labs.models import LabResult, LabTest
from treatments.models import ChemoCycle
from treatments.selectors import course_nadirs
from treatments.tests.factories import ChemoCycleFactory, CourseFactory

pytestmark = pytest.mark.django_db

LONDON = zoneinfo.ZoneInfo("Europe/London")  # settings.TIME_ZONE


def _anc(patient, value: str, at: dt.datetime) -> None:
    anc = LabTest.objects.get(loinc="751-8")
    LabResult.objects.create(
        patient=patient, test=anc, value=Decimal(value), unit=anc.unit, collected_at=at
    )


def test_a_count_drawn_after_midnight_in_summer_is_in_that_days_cycle(patient, treating_clinician):
    course = CourseFactory.create(patient=patient, start_date=dt.date(2026, 6, 1))
    given = ChemoCycle.Status.GIVEN
    first = ChemoCycleFactory.create(
        course=course,
        number=1,
        status=given,
        actual_start=dt.date(2026, 6, 1),
        end_date=dt.date(2026, 6, 14),
    )
    second = ChemoCycleFactory.create(
        course=course,
        number=2,
        status=given,
        actual_start=dt.date(2026, 6, 15),
        end_date=dt.date(2026, 6, 28),
    )
    _anc(patient, "1.6", dt.datetime(2026, 6, 8, 12, 0, tzinfo=LONDON))
    # Monday 15 June, 00:30 in the clinic (BST): 23:30 UTC on Sunday 14 June.
    _anc(patient, "0.8", dt.datetime(2026, 6, 15, 0, 30, tzinfo=LONDON))

    rows = course_nadirs(user=treating_clinician, course=course, cycles=[first, second])

    lowest = [(row.cycle, row.values["ANC"] and row.values["ANC"][0]) for row in rows]
    assert lowest == [(first, "1.6"), (second, "0.8")]
