"""Shared set-up for the dashboard and patient-list tests: a regimen with ANC rules, a course
with cycles, and lab history, built from the treatments and labs factories."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from labs.models import LabTest, PreCycleAction
from labs.tests.factories import LabResultFactory, LabTestFactory, PreCycleRuleFactory
from patients.models import Patient
from treatments.models import ChemoCycle, Course, DoseBasis, Regimen
from treatments.tests.factories import (
    ChemoCycleFactory,
    CourseFactory,
    regimen_approved,
    regimen_create,
)


def anc_test() -> LabTest:
    return LabTestFactory.create(short_name="ANC", name="Neutrophils (test)", unit="10*3/uL")


def regimen_with_anc_rules(*, cycles: int = 12, anc: LabTest | None = None) -> Regimen:
    """ANC >= 1.5 treat; ANC >= 1.0 delay 7 days; ANC < 1.0 hold; results at most 3 days old."""
    regimen = regimen_create(
        phases=((14, cycles, (("Oxaliplatin", "85", DoseBasis.MG_M2),)),), approved=False
    )
    anc = anc or anc_test()
    PreCycleRuleFactory.create(
        regimen=regimen,
        test=anc,
        comparator=">=",
        value=Decimal("1.5"),
        priority=1,
        action=PreCycleAction.TREAT,
        source="Test protocol",
    )
    PreCycleRuleFactory.create(
        regimen=regimen,
        test=anc,
        comparator=">=",
        value=Decimal("1.0"),
        priority=2,
        action=PreCycleAction.DELAY,
        action_delay_days=7,
        source="Test protocol",
    )
    PreCycleRuleFactory.create(
        regimen=regimen,
        test=anc,
        comparator="<",
        value=Decimal("1.0"),
        priority=3,
        action=PreCycleAction.HOLD,
        source="Test protocol",
    )
    return regimen_approved(regimen)


def course_with_cycles(
    patient: Patient, *, regimen: Regimen, given: int, total: int, start: dt.date | None = None
) -> Course:
    """`given` cycles given, the rest planned, every 14 days from `start`."""
    start = start or timezone.localdate() - dt.timedelta(days=14 * given)
    course = CourseFactory.create(patient=patient, regimen=regimen, start_date=start)
    for number in range(1, total + 1):
        planned = start + dt.timedelta(days=14 * (number - 1))
        ChemoCycleFactory.create(
            course=course,
            number=number,
            planned_start=planned,
            actual_start=planned if number <= given else None,
            status=ChemoCycle.Status.GIVEN if number <= given else ChemoCycle.Status.PLANNED,
        )
    return course


def lab_history(patient: Patient, *, test: LabTest, count: int, latest_value: str) -> None:
    """`count` results, one a day back in time; the newest (2 hours ago) is `latest_value`."""
    now = timezone.now()
    for i in range(count):
        LabResultFactory.create(
            patient=patient,
            test=test,
            value=Decimal(latest_value) if i == 0 else Decimal("3.0"),
            collected_at=now - dt.timedelta(hours=2) - dt.timedelta(days=i),
        )
