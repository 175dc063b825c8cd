"""The chart's height, weight and BSA say how old they are, and mark what is too old to trust;
the readiness card leads to lab entry when results are missing.

A reviewer found BSA 1.73 m² on the chart from a weight and a height of 2020-01-01 with no
marker: the warning appeared only when the next cycle had a weight-based drug. And a readiness
card reading "Not evaluable" or "Labs due" had no way to the lab entry form.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from labs.tests.factories import LabResultFactory
from oncoplanner.dates import day_text
from patients.tests.dashboard_world import anc_test, course_with_cycles, regimen_with_anc_rules
from patients.tests.factories import BodyMeasurementFactory, patient_through_service

pytestmark = pytest.mark.django_db

WEIGHT_MARK = "too old to dose: weigh the patient"


def _chart(client, patient) -> str:
    return client.get(reverse("patients:patient_detail", args=[patient.pk])).content.decode()


def _vital(page: str, name: str) -> str:
    return " ".join(page.split(f'id="vital-{name}"', 1)[1].split("</div>", 1)[0].split())


def _today() -> dt.date:
    return timezone.localdate()


def test_chart_marks_a_2020_weight_and_height_and_the_bsa_made_from_them(
    client, login, patient, treating_clinician
):
    # No course: nothing to dose yet, which is why the old chart said nothing at all.
    BodyMeasurementFactory.create(
        patient=patient,
        measured_on=dt.date(2020, 1, 1),
        height_cm=Decimal("173.0"),
        weight_kg=Decimal("62.0"),
    )
    login(client, treating_clinician)

    page = _chart(client, patient)

    weight = _vital(page, "weight")
    assert "62.0 kg" in weight
    assert "measured 1 Jan 2020" in weight
    assert f'<span class="badge bad stale-measurement">{WEIGHT_MARK}</span>' in weight
    height = _vital(page, "height")
    assert "measured 1 Jan 2020" in height
    assert (
        '<span class="badge warn stale-measurement">measured 2020: re-measure if unsure</span>'
        in height
    )
    bsa = _vital(page, "bsa")
    assert "1.73 m²" in bsa
    assert "from the old height and weight above" in bsa


def test_chart_does_not_mark_recent_measurements(client, login, patient, treating_clinician):
    BodyMeasurementFactory.create(
        patient=patient,
        measured_on=_today() - dt.timedelta(days=3),
        height_cm=Decimal("170.0"),
        weight_kg=Decimal("70.0"),
    )
    login(client, treating_clinician)

    page = _chart(client, patient)

    assert f"measured {day_text(_today() - dt.timedelta(days=3))}" in _vital(page, "weight")
    assert "stale-measurement" not in page
    assert WEIGHT_MARK not in page
    assert "re-measure" not in page


@pytest.mark.parametrize(("days", "marked"), [(14, False), (15, True)])
def test_weight_is_marked_exactly_past_the_dosing_limit(
    client, login, patient, treating_clinician, settings, days, marked
):
    settings.DOSING_WEIGHT_MAX_AGE_DAYS = 14
    BodyMeasurementFactory.create(
        patient=patient, measured_on=_today() - dt.timedelta(days=days), height_cm=None
    )
    login(client, treating_clinician)
    weight = _vital(_chart(client, patient), "weight")
    assert (WEIGHT_MARK in weight) is marked


def test_a_recent_weight_with_an_old_height_marks_the_height_only(
    client, login, patient, treating_clinician
):
    BodyMeasurementFactory.create(
        patient=patient, measured_on=dt.date(2020, 1, 1), height_cm=Decimal("173.0"), weight_kg=None
    )
    BodyMeasurementFactory.create(
        patient=patient, measured_on=_today(), height_cm=None, weight_kg=Decimal("61.5")
    )
    login(client, treating_clinician)

    page = _chart(client, patient)

    assert WEIGHT_MARK not in _vital(page, "weight")
    assert "measured 2020: re-measure if unsure" in _vital(page, "height")
    assert "from the old height above" in _vital(page, "bsa")


def test_a_childs_year_old_height_is_not_given_the_adult_mark(
    client, login, care_team, treating_clinician
):
    child = patient_through_service(care_team, date_of_birth=_today().replace(year=2016))
    BodyMeasurementFactory.create(
        patient=child, measured_on=_today() - dt.timedelta(days=400), weight_kg=None
    )
    login(client, treating_clinician)
    assert "re-measure if unsure" not in _vital(_chart(client, child), "height")


# --- Readiness card: a way to enter the missing labs ------------------------------------------


def _enter_labs_link(patient) -> str:
    return f'href="{reverse("labs:lab_trends", args=[patient.pk])}#lab-entry"'


def test_not_evaluable_readiness_links_to_lab_entry(client, login, patient, treating_clinician):
    course_with_cycles(patient, regimen=regimen_with_anc_rules(), given=1, total=6)
    login(client, treating_clinician)

    page = _chart(client, patient)

    readiness = page.split('id="readiness"', 1)[1].split("</section>", 1)[0]
    assert "Not evaluable" in readiness
    assert _enter_labs_link(patient) in readiness
    assert "Enter lab results" in readiness


def test_labs_due_readiness_links_to_lab_entry(client, login, patient, treating_clinician):
    # Cycle 2 in ten days: its pre-cycle bloods are not drawn yet.
    start = _today() - dt.timedelta(days=4)
    course_with_cycles(patient, regimen=regimen_with_anc_rules(), given=1, total=6, start=start)
    login(client, treating_clinician)

    page = _chart(client, patient)

    readiness = page.split('id="readiness"', 1)[1].split("</section>", 1)[0]
    assert "Labs due" in readiness
    assert _enter_labs_link(patient) in readiness


def test_ready_to_treat_has_no_lab_entry_prompt(client, login, patient, treating_clinician):
    anc = anc_test()
    course_with_cycles(patient, regimen=regimen_with_anc_rules(anc=anc), given=2, total=6)
    LabResultFactory.create(
        patient=patient,
        test=anc,
        value=Decimal("3.2"),
        collected_at=timezone.now() - dt.timedelta(hours=2),
    )
    login(client, treating_clinician)

    page = _chart(client, patient)

    readiness = page.split('id="readiness"', 1)[1].split("</section>", 1)[0]
    assert "Treat" in readiness
    assert "readiness-enter-labs" not in readiness
