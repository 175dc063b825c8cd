from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from patients.models import BodyMeasurement
from patients.services import measurement_record, patient_update

pytestmark = pytest.mark.django_db


def test_care_team_member_gets_view_and_change_on_team_patients(
    patient, treating_clinician, other_clinician
):
    assert treating_clinician.has_perm("patients.view_patient", patient)
    assert treating_clinician.has_perm("patients.change_patient", patient)
    assert not other_clinician.has_perm("patients.view_patient", patient)


def test_measurement_record_rejects_future_date_and_writes_nothing(patient):
    with pytest.raises(ValidationError) as error:
        measurement_record(
            patient=patient,
            measured_on=dt.date(2999, 1, 1),
            height_cm=Decimal("170"),
            weight_kg=Decimal("70"),
            recorded_by=None,
        )
    assert "measured_on" in error.value.message_dict
    assert not BodyMeasurement.objects.exists()


def test_measurement_record_needs_height_or_weight(patient):
    with pytest.raises(ValidationError):
        measurement_record(
            patient=patient,
            measured_on=dt.date(2026, 1, 1),
            height_cm=None,
            weight_kg=None,
            recorded_by=None,
        )
    assert not BodyMeasurement.objects.exists()


def test_patient_update_rejects_bad_icd10_and_keeps_old_value(patient):
    with pytest.raises(ValidationError) as error:
        patient_update(patient=patient, updated_by=None, icd10_code="not-a-code")
    assert "icd10_code" in error.value.message_dict
    patient.refresh_from_db()
    assert patient.icd10_code == "C18.7"
