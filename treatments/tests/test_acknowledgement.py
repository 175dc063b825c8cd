from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from oncoplanner.accounts.tests.factories import ClinicianFactory
from treatments.models import CtcaeTerm
from treatments.services import side_effect_acknowledge, side_effect_record

pytestmark = pytest.mark.django_db


def _side_effect(patient, grade: int):
    term = CtcaeTerm.objects.get(term="Diarrhea", version="5.0")
    return side_effect_record(
        patient=patient,
        term=term,
        grade=grade,
        onset=dt.date(2026, 3, 1),
        recorded_by=ClinicianFactory.create(),
    )


def test_side_effect_acknowledge_grade_3(patient):
    side_effect = _side_effect(patient, 3)
    clinician = ClinicianFactory.create()
    side_effect_acknowledge(side_effect=side_effect, by=clinician, note="Admitted; G-CSF started.")
    side_effect.refresh_from_db()
    assert side_effect.acknowledged_by == clinician
    assert side_effect.acknowledgement_note == "Admitted; G-CSF started."


def test_side_effect_acknowledge_refuses_grade_2_and_empty_note(patient):
    with pytest.raises(ValidationError) as error:
        side_effect_acknowledge(
            side_effect=_side_effect(patient, 2), by=ClinicianFactory.create(), note="Seen."
        )
    assert "side_effect" in error.value.message_dict
    severe = _side_effect(patient, 3)
    with pytest.raises(ValidationError) as error:
        side_effect_acknowledge(side_effect=severe, by=ClinicianFactory.create(), note="")
    assert "note" in error.value.message_dict
    severe.refresh_from_db()
    assert severe.acknowledged_at is None
