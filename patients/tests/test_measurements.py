"""Recording weight and height from the chart, and the dosing rules that depend on them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessLog
from oncoplanner.dates import day_text
from patients.models import BodyMeasurement
from patients.tests.dashboard_world import course_with_cycles, regimen_with_anc_rules
from treatments.tests.factories import AdministrationFactory

pytestmark = pytest.mark.django_db


def _url(patient) -> str:
    return reverse("patients:measurement_create", args=[patient.pk])


def _today() -> dt.date:
    return timezone.localdate()


def test_nurse_records_a_weight_and_the_dashboard_shows_it(
    client, login, patient, treating_clinician
):
    login(client, treating_clinician)
    form = client.get(_url(patient))
    assert form.status_code == 200
    assert form.context["form"].initial["measured_on"] == _today()

    response = client.post(_url(patient), {"measured_on": _today(), "weight_kg": "64.5"})

    assert response.status_code == 302
    assert response["Location"] == reverse("patients:patient_detail", args=[patient.pk])
    row = BodyMeasurement.objects.get(patient=patient)
    assert (row.weight_kg, row.height_cm, row.recorded_by) == (
        Decimal("64.5"),
        None,
        treating_clinician,
    )
    assert AccessLog.objects.filter(
        patient_id=patient.pk, object_type="BodyMeasurement", object_id=str(row.pk)
    ).exists()
    dashboard = client.get(response["Location"]).content.decode()
    assert f"Recorded weight 64.5 kg on {day_text(_today())}." in dashboard
    assert "64.5 kg" in dashboard
    again = client.get(_url(patient)).content.decode()
    assert f"Last on record: weight 64.5 kg ({day_text(_today())}); no height." in again


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "weight_kg"),  # neither a weight nor a height
        ({"weight_kg": "0"}, "weight_kg"),
        ({"weight_kg": "401"}, "weight_kg"),
        ({"weight_kg": "sixty"}, "weight_kg"),
        ({"height_cm": "12"}, "height_cm"),
        ({"weight_kg": "60", "measured_on": "tomorrow"}, "measured_on"),
        ({"weight_kg": "60", "measured_on": "future"}, "measured_on"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_writes_nothing(
    client, login, patient, treating_clinician, data, field
):
    login(client, treating_clinician)
    dates = {"future": (_today() + dt.timedelta(days=1)).isoformat()}
    body = {"measured_on": _today().isoformat(), **data}
    body["measured_on"] = dates.get(body["measured_on"], body["measured_on"])

    response = client.post(_url(patient), body)

    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not BodyMeasurement.objects.filter(patient=patient).exists()


def test_outsider_gets_404_and_writes_nothing(client, login, patient, other_clinician):
    login(client, other_clinician)
    assert client.get(_url(patient)).status_code == 404
    response = client.post(_url(patient), {"measured_on": _today(), "weight_kg": "60"})
    assert response.status_code == 404
    assert not BodyMeasurement.objects.filter(patient=patient).exists()


def test_a_weight_far_from_the_last_is_refused_until_confirmed(
    client, login, patient, treating_clinician
):
    # 5.5 for 55 kg: every weight-based dose would drop to a tenth.
    BodyMeasurement.objects.create(
        patient=patient, measured_on=_today() - dt.timedelta(days=20), weight_kg=Decimal("55")
    )
    login(client, treating_clinician)
    body = {"measured_on": _today().isoformat(), "weight_kg": "5.5"}

    refused = client.post(_url(patient), body)

    assert refused.status_code == 400
    (message,) = refused.context["form"].errors["weight_kg"]
    assert message.startswith("Weight 5.5 kg is 90% less than the last one on record (55")
    assert 'name="confirm_change"' in refused.content.decode()  # offered only now
    assert BodyMeasurement.objects.filter(patient=patient).count() == 1

    confirmed = client.post(_url(patient), {**body, "confirm_change": "on"})

    assert confirmed.status_code == 302
    assert BodyMeasurement.objects.filter(patient=patient, weight_kg=Decimal("5.5")).exists()


def test_the_confirmation_box_is_not_on_the_blank_form(client, login, patient, treating_clinician):
    login(client, treating_clinician)
    assert 'name="confirm_change"' not in client.get(_url(patient)).content.decode()


def test_a_height_far_from_the_last_is_refused_too(client, login, patient, treating_clinician):
    BodyMeasurement.objects.create(
        patient=patient, measured_on=_today() - dt.timedelta(days=90), height_cm=Decimal("165")
    )
    login(client, treating_clinician)
    response = client.post(_url(patient), {"measured_on": _today(), "height_cm": "61.5"})
    assert response.status_code == 400
    assert "Height 61.5 cm is 63% less" in response.context["form"].errors["height_cm"][0]


def test_a_measurement_dated_before_birth_is_refused(client, login, patient, treating_clinician):
    login(client, treating_clinician)
    response = client.post(_url(patient), {"measured_on": "1900-01-01", "weight_kg": "60"})
    assert response.status_code == 400
    assert "before the patient's date of birth" in response.context["form"].errors["measured_on"][0]
    assert not BodyMeasurement.objects.filter(patient=patient).exists()


def _dosed_at(patient, weight: str) -> None:
    course = course_with_cycles(patient, regimen=regimen_with_anc_rules(), given=1, total=6)
    AdministrationFactory.create(
        cycle=course.cycles.get(number=1),
        inputs={"weight_kg": weight, "on_date": course.start_date.isoformat(), "bsa_m2": "1.8"},
    )


def test_a_weight_change_of_ten_percent_asks_for_the_dose_to_be_reviewed(
    client, login, patient, treating_clinician
):
    _dosed_at(patient, "70.0")
    login(client, treating_clinician)

    response = client.post(_url(patient), {"measured_on": _today(), "weight_kg": "62.0"})

    warnings = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert len(warnings) == 1
    assert "Weight -11.4% against the 70.0 kg the last dose was computed from" in warnings[0]


def test_a_small_weight_change_does_not_warn(client, login, patient, treating_clinician):
    _dosed_at(patient, "70.0")
    login(client, treating_clinician)
    response = client.post(_url(patient), {"measured_on": _today(), "weight_kg": "66.0"})
    assert not [m for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]


def test_dashboard_asks_to_weigh_when_the_weight_is_too_old_for_the_next_dose(
    client, login, patient, treating_clinician, settings
):
    settings.DOSING_WEIGHT_MAX_AGE_DAYS = 14
    course_with_cycles(patient, regimen=regimen_with_anc_rules(), given=1, total=6)
    BodyMeasurement.objects.create(
        patient=patient, measured_on=_today() - dt.timedelta(days=30), height_cm=170, weight_kg=70
    )
    login(client, treating_clinician)
    detail = reverse("patients:patient_detail", args=[patient.pk])
    assert 'id="weight-warning"' in client.get(detail).content.decode()

    client.post(_url(patient), {"measured_on": _today(), "weight_kg": "69.5"})

    assert 'id="weight-warning"' not in client.get(detail).content.decode()
