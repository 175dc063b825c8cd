from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from labs.models import (
    CtcaeGradeCriterion,
    LabResult,
    LabTest,
    PreCycleAction,
    PreCycleRule,
    ReferenceRange,
)
from patients.tests.factories import PatientFactory
from treatments.models import CtcaeTerm, Regimen


class LabTestFactory(DjangoModelFactory[LabTest]):
    """A test outside the shipped catalogue (LOINC-shaped codes from 90000-0 up)."""

    class Meta:
        model = LabTest

    loinc = factory.Sequence(lambda n: f"{90000 + n}-0")
    name = factory.Sequence(lambda n: f"Test analyte {n}")
    short_name = factory.Sequence(lambda n: f"T{n}")
    unit = "10*3/uL"
    ref_low = Decimal("1.8")
    ref_high = Decimal("7.8")
    critical_low = None
    critical_high = None
    max_plausible = Decimal("500")


class ReferenceRangeFactory(DjangoModelFactory[ReferenceRange]):
    class Meta:
        model = ReferenceRange

    test = factory.SubFactory(LabTestFactory)
    sex = ReferenceRange.Sex.ANY
    low = Decimal("1.0")
    high = Decimal("2.0")
    source = "Test laboratory ranges"


class LabResultFactory(DjangoModelFactory[LabResult]):
    """A stored result. Bypasses the service: use it to set up history, not to test flags."""

    class Meta:
        model = LabResult

    patient = factory.SubFactory(PatientFactory)
    test = factory.SubFactory(LabTestFactory)
    value = Decimal("3.0")
    unit = factory.LazyAttribute(lambda r: r.test.unit)
    collected_at = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
    ref_low = factory.LazyAttribute(lambda r: r.test.ref_low)
    ref_high = factory.LazyAttribute(lambda r: r.test.ref_high)
    flag = "N"


class RegimenFactory(DjangoModelFactory[Regimen]):
    class Meta:
        model = Regimen

    name = factory.Sequence(lambda n: f"Test regimen {n}")
    version = 1
    is_active = True


class PreCycleRuleFactory(DjangoModelFactory[PreCycleRule]):
    class Meta:
        model = PreCycleRule

    regimen = factory.SubFactory(RegimenFactory)
    test = factory.SubFactory(LabTestFactory)
    comparator = ">="
    value = Decimal("1.5")
    unit = factory.LazyAttribute(lambda r: r.test.unit)
    max_age_days = 3
    action = PreCycleAction.TREAT
    priority = 1


class CtcaeTermFactory(DjangoModelFactory[CtcaeTerm]):
    class Meta:
        model = CtcaeTerm
        django_get_or_create = ("term", "version")

    term = factory.Sequence(lambda n: f"Test term {n}")
    version = "5.0"
    max_grade = 5


class CtcaeGradeCriterionFactory(DjangoModelFactory[CtcaeGradeCriterion]):
    class Meta:
        model = CtcaeGradeCriterion

    term = factory.SubFactory(CtcaeTermFactory)
    test = factory.SubFactory(LabTestFactory)
    grade = 1
    direction = CtcaeGradeCriterion.Direction.BELOW
    basis = CtcaeGradeCriterion.Basis.LLN
    threshold = None
