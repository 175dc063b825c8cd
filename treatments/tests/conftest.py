from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
import time_machine

from oncoplanner.accounts.models import User
from patients.tests.factories import BodyMeasurementFactory
from treatments.tests.factories import on_the_team


@pytest.fixture
def on_20_march_2026() -> Iterator[None]:
    """Today is Friday 20 March 2026, noon UTC, for the modules whose courses, weights and
    doses are dated around it (each names it in its pytestmark)."""
    with time_machine.travel(dt.datetime(2026, 3, 20, 12, 0, tzinfo=dt.UTC), tick=False):
        yield


@pytest.fixture
def on_1_march_2026() -> Iterator[None]:
    """Today is Sunday 1 March 2026, noon UTC, for the closed-day modules: their courses start
    on the Monday after, or later in the year (each names it in its pytestmark)."""
    with time_machine.travel(dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC), tick=False):
        yield


@pytest.fixture
def no_holidays(settings) -> None:
    """No public holidays: a course from a March Monday runs into Easter and the May bank
    holidays, which would mix into tests of weekends or of the unit's own closures."""
    settings.CLINIC_HOLIDAYS = ""


@pytest.fixture
def mfolfox6():
    """The seeded mFOLFOX6, version 1: 12 cycles of 14 days."""
    from treatments.models import Regimen

    return Regimen.objects.get(name="mFOLFOX6", version=1)


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
    return on_the_team(care_team, admin_user, username="nurse.colleague")


@pytest.fixture
def pharmacist(care_team, admin_user):
    """A pharmacist on the patient's care team (verifies the doses)."""
    return on_the_team(care_team, admin_user, discipline=User.Discipline.PHARMACIST)
