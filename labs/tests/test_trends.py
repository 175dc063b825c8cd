"""labs.selectors.lab_trends_for: the read model behind the Plotly charts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.http import Http404

from audit.models import AccessLog
from labs.models import LabResult, LabTest
from labs.selectors import duration_text, lab_tests_for_trends, lab_trends_for
from labs.tests.factories import LabResultFactory
from treatments.models import ChemoCycle, Course, Intent, Regimen, RegimenPhase

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 4, 20, 12, 0, tzinfo=dt.UTC)
ANC, CEA, PLT = "751-8", "2039-6", "777-3"


def _result(patient, loinc: str, value: str, day: dt.date, **kwargs) -> LabResult:
    test = LabTest.objects.get(loinc=loinc)
    return LabResultFactory.create(
        patient=patient,
        test=test,
        value=Decimal(value),
        collected_at=dt.datetime.combine(day, dt.time(8), tzinfo=dt.UTC),
        critical_low=test.critical_low,
        **kwargs,
    )


def _cycles(patient, admin_user, starts: list[dt.date]) -> None:
    regimen, _ = Regimen.objects.get_or_create(
        name="Trend regimen", version=1, defaults={"intent": Intent.CURATIVE}
    )
    phase, _ = RegimenPhase.objects.get_or_create(
        regimen=regimen,
        order=1,
        defaults={"name": "FOLFOX", "cycle_length_days": 14, "planned_cycles": 12},
    )
    course = Course.objects.create(
        patient=patient,
        regimen=regimen,
        start_date=starts[0],
        intent=Intent.ADJUVANT,
        created_by=admin_user,
    )
    for number, start in enumerate(starts, 1):
        ChemoCycle.objects.create(course=course, phase=phase, number=number, planned_start=start)


@time_machine.travel(NOW, tick=False)
def test_lab_trends_for_marks_the_lowest_value_per_cycle_window_as_nadir(
    patient, treating_clinician, admin_user
):
    _cycles(patient, admin_user, [dt.date(2026, 3, 2), dt.date(2026, 3, 16)])
    _result(patient, ANC, "4.10", dt.date(2026, 2, 27))  # before treatment: baseline only
    _result(patient, ANC, "1.20", dt.date(2026, 3, 10))  # cycle 1 nadir
    _result(patient, ANC, "2.50", dt.date(2026, 3, 13))
    _result(patient, ANC, "3.00", dt.date(2026, 3, 18))
    _result(patient, ANC, "0.90", dt.date(2026, 3, 24))  # cycle 2 nadir
    anc = LabTest.objects.get(loinc=ANC)

    trends = lab_trends_for(
        user=treating_clinician, patient_id=patient.pk, tests=[anc], period="90"
    )

    points = trends.analytes[0].points
    assert [str(p.result.value.normalize()) for p in points if p.is_nadir] == ["1.2", "0.9"]
    assert [c.number for c in trends.cycles] == [1, 2]
    data = trends.as_json()
    assert data["cycles"][0] == {"number": 1, "date": "2026-03-02", "actual": False}
    assert data["analytes"][0]["nadir"] == [False, True, False, False, True]


@time_machine.travel(NOW, tick=False)
def test_lab_trends_for_marks_no_nadir_for_the_open_cycles_first_value_or_for_creatinine(
    patient, treating_clinician, admin_user
):
    _cycles(patient, admin_user, [dt.date(2026, 3, 2), dt.date(2026, 3, 16)])
    _result(patient, ANC, "1.20", dt.date(2026, 3, 10))  # cycle 1 nadir
    _result(patient, ANC, "3.00", dt.date(2026, 3, 16))  # cycle 2's day 1: not a nadir yet
    _result(patient, "2160-0", "0.70", dt.date(2026, 3, 10))
    _result(patient, "2160-0", "0.90", dt.date(2026, 3, 12))
    tests = list(LabTest.objects.filter(loinc__in=[ANC, "2160-0"]).order_by("loinc"))

    trends = lab_trends_for(
        user=treating_clinician, patient_id=patient.pk, tests=tests, period="90"
    )

    nadirs = {a.test.loinc: [p.is_nadir for p in a.points] for a in trends.analytes}
    assert nadirs == {ANC: [True, False], "2160-0": [False, False]}


@time_machine.travel(NOW, tick=False)
def test_lab_trends_for_tumour_marker_percent_change_from_baseline_and_nadir(
    patient, treating_clinician
):
    for value, day in (("40", 1), ("20", 15), ("10", 29), ("15", 43)):
        _result(patient, CEA, value, dt.date(2026, 2, 1) + dt.timedelta(days=day))
    cea = LabTest.objects.get(loinc=CEA)

    trend = lab_trends_for(
        user=treating_clinician, patient_id=patient.pk, tests=[cea], period="180"
    ).analytes[0]

    assert [p.pct_from_baseline for p in trend.points] == [0.0, -50.0, -75.0, -62.5]
    assert trend.latest.pct_from_nadir == 50.0  # 10 -> 15: rising from the nadir
    assert trend.lowest.result.value == Decimal("10")


@time_machine.travel(NOW, tick=False)
def test_lab_trends_for_keeps_results_in_another_unit_off_the_chart(patient, treating_clinician):
    _result(patient, PLT, "180", dt.date(2026, 4, 1))
    _result(patient, PLT, "175000", dt.date(2026, 4, 8), unit="/uL")
    plt = LabTest.objects.get(loinc=PLT)

    trend = lab_trends_for(
        user=treating_clinician, patient_id=patient.pk, tests=[plt], period="30"
    ).analytes[0]

    assert [p.result.value for p in trend.points] == [Decimal("180")]
    assert [r.unit for r in trend.other_unit] == ["/uL"]
    assert trend.as_json()["y"] == [180.0]


@time_machine.travel(NOW, tick=False)
def test_lab_trends_for_period_and_stored_reference_band(patient, treating_clinician):
    _result(patient, ANC, "3.0", dt.date(2025, 12, 1))  # 140 days ago: outside 90 days
    _result(patient, ANC, "0.4", dt.date(2026, 4, 1), ref_low=Decimal("2.0"), flag="LL")
    anc = LabTest.objects.get(loinc=ANC)

    in_90 = lab_trends_for(user=treating_clinician, patient_id=patient.pk, tests=[anc], period="90")
    everything = lab_trends_for(
        user=treating_clinician, patient_id=patient.pk, tests=[anc], period="all"
    )

    data = in_90.as_json()["analytes"][0]
    assert data["y"] == [0.4]
    assert data["ref_low"] == [2.0]  # the range stored on the result, not today's catalogue
    assert data["critical_low"] == [0.5]
    assert data["flag"] == ["LL"]
    assert len(everything.analytes[0].points) == 2


def test_lab_trends_for_outsider_gets_404_and_denied_log(patient, other_clinician):
    with pytest.raises(Http404):
        lab_trends_for(user=other_clinician, patient_id=patient.pk, tests=[], period="90")
    assert AccessLog.objects.filter(patient_id=patient.pk, outcome="denied").count() == 1


def test_lab_trends_for_logs_one_list_read(patient, treating_clinician):
    before = AccessLog.objects.count()
    lab_trends_for(
        user=treating_clinician,
        patient_id=patient.pk,
        tests=lab_tests_for_trends(loincs=None),
        period="90",
    )
    rows = AccessLog.objects.order_by("pk")[before:]
    assert [(r.action, r.object_type, r.patient_id) for r in rows] == [
        ("list", "LabResult", patient.pk)
    ]


def test_lab_tests_for_trends_defaults_and_unknown_codes():
    defaults = {t.short_name for t in lab_tests_for_trends(loincs=None)}
    assert defaults == {"ANC", "PLT", "Hb", "WBC"}
    assert [t.loinc for t in lab_tests_for_trends(loincs=[CEA, ANC])] == [CEA, ANC]
    assert lab_tests_for_trends(loincs=[ANC, "99999-9"]) is None


def test_duration_text_is_compact():
    assert duration_text(dt.timedelta(minutes=45)) == "45 min"
    assert duration_text(dt.timedelta(hours=3, minutes=10)) == "3 h 10 min"
    assert duration_text(dt.timedelta(days=2, hours=4, minutes=5)) == "2 d 4 h"


@time_machine.travel(NOW, tick=False)
def test_day_1_bloods_are_drawn_before_the_drugs_and_are_never_a_nadir(
    patient, treating_clinician, admin_user
):
    # A reviewer's pre-treatment Hb on cycle 1's day 1 was labelled "nadir" on the chart.
    _cycles(patient, admin_user, [dt.date(2026, 3, 2), dt.date(2026, 3, 16)])
    _result(patient, ANC, "0.80", dt.date(2026, 3, 2))  # cycle 1's day 1: baseline
    _result(patient, ANC, "1.50", dt.date(2026, 3, 9))  # cycle 1's lowest after its drugs
    _result(patient, ANC, "2.20", dt.date(2026, 3, 16))  # cycle 2's day 1: cycle 1's recovery
    anc = LabTest.objects.get(loinc=ANC)

    trends = lab_trends_for(
        user=treating_clinician, patient_id=patient.pk, tests=[anc], period="90"
    )

    assert [p.is_nadir for p in trends.analytes[0].points] == [False, True, False]
