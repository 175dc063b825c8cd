from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from oncoplanner.accounts.tests.factories import ClinicianFactory
from patients.services import care_team_add_member
from patients.tests.factories import BodyMeasurementFactory


@pytest.fixture
def measured(patient):
    """The patient with a height and weight on 27 Feb 2026 (170 cm, 72 kg: BSA 1.84 m²), so
    that a course in March can be dosed."""
    BodyMeasurementFactory.create(
        patient=patient,
        measured_on=dt.date(2026, 2, 27),
        height_cm=Decimal("170"),
        weight_kg=Decimal("72"),
    )
    return patient


@pytest.fixture
def colleague(care_team, admin_user):
    """A nurse on the patient's care team beside the treating clinician (a second checker)."""
    nurse = ClinicianFactory.create(username="nurse.colleague")
    care_team_add_member(team=care_team, clinician=nurse, granted_by=admin_user)
    return nurse
