from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

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
