from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError

from labs.models import LabResult, LabTest
from labs.services import lab_result_acknowledge, lab_result_record, lab_results_release
from labs.tasks import notify_care_team_of_critical_result
from oncoplanner.accounts.tests.factories import ClinicianFactory

pytestmark = pytest.mark.django_db

ANC = "751-8"
COLLECTED = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def _anc(patient, value: str) -> LabResult:
    test = LabTest.objects.get(loinc=ANC)
    return lab_result_record(
        patient=patient,
        test=test,
        value=Decimal(value),
        unit=test.unit,
        collected_at=COLLECTED,
        recorded_by=None,
    )


def test_lab_result_acknowledge_records_who_when_and_what(patient):
    result = _anc(patient, "0.3")
    clinician = ClinicianFactory.create()
    with time_machine.travel(dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC), tick=False):
        lab_result_acknowledge(
            result=result, by=clinician, note="Patient called; admitted for review."
        )
    result.refresh_from_db()
    assert result.acknowledged_by == clinician
    assert result.acknowledged_at == dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
    assert result.acknowledgement_note == "Patient called; admitted for review."


@pytest.mark.parametrize("note", ["", "   "])
def test_lab_result_acknowledge_needs_a_note_and_writes_nothing(patient, note):
    result = _anc(patient, "0.3")
    with pytest.raises(ValidationError) as error:
        lab_result_acknowledge(result=result, by=ClinicianFactory.create(), note=note)
    assert "note" in error.value.message_dict
    result.refresh_from_db()
    assert result.acknowledged_at is None


def test_lab_result_acknowledge_refuses_a_non_critical_result(patient):
    result = _anc(patient, "1.2")  # low, not critical
    with pytest.raises(ValidationError) as error:
        lab_result_acknowledge(result=result, by=ClinicianFactory.create(), note="Seen.")
    assert "result" in error.value.message_dict


def test_lab_result_acknowledge_twice_keeps_the_first(patient):
    result = _anc(patient, "0.3")
    first, second = ClinicianFactory.create(), ClinicianFactory.create()
    lab_result_acknowledge(result=result, by=first, note="Called the patient.")
    with pytest.raises(ValidationError):
        lab_result_acknowledge(result=result, by=second, note="Also seen.")
    result.refresh_from_db()
    assert result.acknowledged_by == first


def test_lab_results_release_marks_only_unreleased_results(patient):
    first, second = _anc(patient, "2.0"), _anc(patient, "2.1")
    clinician = ClinicianFactory.create()
    assert lab_results_release(results=[first], by=clinician) == 1
    assert lab_results_release(results=[first, second], by=clinician) == 1
    first.refresh_from_db()
    assert first.is_released
    assert first.released_by == clinician
    assert first.released_at is not None


def test_critical_result_email_names_no_patient(patient, treating_clinician):
    result = _anc(patient, "0.3")
    assert notify_care_team_of_critical_result.call(lab_result_id=result.pk) == 1
    (message,) = mail.outbox
    assert message.to == [treating_clinician.email]
    for secret in (patient.family_name, patient.mrn, "0.3"):
        assert secret not in message.body
        assert secret not in message.subject


def _course_due_in_two_days(patient, prescriber):
    from patients.services import measurement_record
    from treatments.models import Regimen
    from treatments.services import course_start

    measurement_record(
        patient=patient,
        measured_on=dt.date(2026, 1, 1),
        height_cm=Decimal("170"),
        weight_kg=Decimal("70"),
        recorded_by=None,
    )
    regimen = Regimen.objects.get(name="mFOLFOX6", version=1)
    return course_start(
        patient=patient,
        regimen=regimen,
        start_date=dt.date(2026, 3, 4),
        intent="adjuvant",
        created_by=prescriber,
        confirm_past_start=True,
    )


@time_machine.travel(dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC), tick=False)
def test_low_anc_before_a_planned_cycle_tells_the_care_team_once(
    patient, treating_clinician, admin_user
):
    from labs.tasks import notify_if_next_cycle_not_ready

    _course_due_in_two_days(patient, treating_clinician)
    _anc(patient, "1.2")  # ANC >= 1.0 but < 1.5: delay by the mFOLFOX6 rules
    assert notify_if_next_cycle_not_ready.call(patient_id=patient.pk) is True
    assert notify_if_next_cycle_not_ready.call(patient_id=patient.pk) is False  # once per cycle
    (message,) = mail.outbox
    assert "not ready" in message.subject
    assert patient.mrn not in message.body


@time_machine.travel(dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC), tick=False)
def test_good_counts_before_a_planned_cycle_tell_nobody(patient, treating_clinician, admin_user):
    from labs.tasks import notify_if_next_cycle_not_ready

    _course_due_in_two_days(patient, treating_clinician)
    _anc(patient, "3.0")
    assert notify_if_next_cycle_not_ready.call(patient_id=patient.pk) is False
    assert mail.outbox == []
