"""Catalogue v2 (labs/reference/lab_catalogue_v2.json, migration 0012): lowest plausible
values, a source for every critical limit, a WBC critical low, and no threshold without a
source."""

from __future__ import annotations

import datetime as dt
import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError

from labs.models import LabTest, ReferenceRange
from labs.services import lab_result_record

pytestmark = pytest.mark.django_db

catalogue_v2 = importlib.import_module(
    "labs.migrations.0012_plausible_minimums_and_critical_sources"
)
NOT_RECORDED = "Not recorded (set before the source was required)"
COLLECTED = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def _test(loinc: str) -> LabTest:
    return LabTest.objects.get(loinc=loinc)


def test_catalogue_minimums_after_migrate():
    minimums = dict(LabTest.objects.values_list("short_name", "min_plausible"))
    assert minimums == {
        "WBC": Decimal("0.01"),
        "ANC": Decimal("0.01"),
        "PLT": Decimal("1"),
        "Hb": Decimal("1.0"),
        "Creat": Decimal("0.05"),
        "Bili": Decimal("0.05"),
        # No unit of another scale is accepted for these: no slip to catch, and sensitive
        # assays report tumour markers far below their usual cut-offs.
        "eGFR": None,
        "ALT": None,
        "AST": None,
        "CEA": None,
        "CA-125": None,
        "CA 19-9": None,
        "PSA": None,
    }


def test_wbc_has_an_illustrative_critical_low_with_its_source():
    wbc = _test("6690-2")
    assert (wbc.critical_low, wbc.critical_low_inclusive) == (Decimal("1.0"), False)
    assert "illustrative institutional default" in wbc.critical_source
    assert "check against your local critical-value list" in wbc.critical_source


def test_every_critical_limit_in_the_catalogue_has_its_source():
    with_limits = LabTest.objects.exclude(critical_low__isnull=True, critical_high__isnull=True)
    sources = dict(with_limits.values_list("short_name", "critical_source"))
    assert set(sources) == {"WBC", "ANC", "Hb", "PLT", "Creat"}
    assert all(sources.values())
    assert sources["ANC"].startswith("OncoPlanner lab catalogue v1: example critical limits")
    for test in LabTest.objects.all():
        test.full_clean()  # the shipped catalogue passes its own rules


@pytest.mark.parametrize(("value", "flag"), [("0.9", "LL"), ("1.0", "L"), ("0.0", "LL")])
def test_wbc_below_one_is_critical(patient, value, flag):
    wbc = _test("6690-2")
    result = lab_result_record(
        patient=patient,
        test=wbc,
        value=value,
        unit=wbc.unit,
        collected_at=COLLECTED,
        recorded_by=None,
    )
    assert result.flag == flag
    assert (result.critical_low, result.critical_low_inclusive) == (Decimal("1.0"), False)


def test_migration_marks_thresholds_without_a_source_and_keeps_local_values():
    wbc, hb, alt = _test("6690-2"), _test("718-7"), _test("1742-6")
    catalogue_v2.backwards(apps, None)
    # An institution's own settings before v2: a WBC critical low of its own, an ALT critical
    # high and a hemoglobin range without a source, a range in another unit below Hb's floor.
    LabTest.objects.filter(pk=wbc.pk).update(critical_low=Decimal("0.5"))
    LabTest.objects.filter(pk=alt.pk).update(critical_high=Decimal("1000"))
    ReferenceRange.objects.filter(test=hb).update(source="")
    ReferenceRange.objects.create(
        test=hb, sex="", age_min=0, age_max=0, low=Decimal("0.5"), high=Decimal("2"), source=""
    )

    catalogue_v2.forwards(apps, None)

    wbc.refresh_from_db()
    assert (wbc.critical_low, wbc.critical_source) == (Decimal("0.5"), NOT_RECORDED)
    assert wbc.min_plausible == Decimal("0.01")
    alt.refresh_from_db()
    assert alt.critical_source == NOT_RECORDED
    assert set(ReferenceRange.objects.filter(test=hb).values_list("source", flat=True)) == {
        NOT_RECORDED
    }
    hb.refresh_from_db()
    assert hb.min_plausible is None  # a local range is below it: left for the admin to decide
    assert _test("751-8").critical_source.startswith("OncoPlanner lab catalogue v1")


def test_migration_is_reversible():
    before = list(
        LabTest.objects.order_by("loinc").values_list(
            "loinc", "min_plausible", "critical_low", "critical_low_inclusive", "critical_source"
        )
    )
    catalogue_v2.backwards(apps, None)
    wbc = _test("6690-2")
    assert (wbc.critical_low, wbc.critical_source, wbc.min_plausible) == (None, "", None)
    assert not LabTest.objects.exclude(critical_source="").exists()
    catalogue_v2.forwards(apps, None)
    after = list(
        LabTest.objects.order_by("loinc").values_list(
            "loinc", "min_plausible", "critical_low", "critical_low_inclusive", "critical_source"
        )
    )
    assert after == before


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"critical_source": ""}, "critical_source", "Say where the critical limits come from."),
        ({"range_source": ""}, "range_source", "Say where the reference range comes from."),
        ({"min_plausible": Decimal("2000")}, "min_plausible", "must be below the highest"),
        ({"critical_low": Decimal("0.001")}, "critical_low", "0.001 ×10³/µL is below the lowest"),
        ({"ref_high": Decimal("11000")}, "ref_high", "11000 ×10³/µL is above the highest"),
    ],
)
def test_a_tests_limits_need_a_source_and_a_possible_value(changes, field, message):
    wbc = _test("6690-2")
    for name, value in changes.items():
        setattr(wbc, name, value)
    with pytest.raises(ValidationError) as refused:
        wbc.full_clean()
    assert message in " ".join(refused.value.message_dict[field])
