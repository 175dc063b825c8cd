"""Fixtures for the access-gate tests: a fresh access context per test, MFA-enrolled logins,
and minimal child records (course, cycle, lab result) built directly so the gate tests do not
depend on the treatments and labs services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from oncoplanner.access_context import acting_as
from oncoplanner.accounts.models import User
from patients.models import Patient


@pytest.fixture(autouse=True)
def _access_context() -> Iterator[None]:
    # The gate flags the current context under break-glass; keep it from leaking across tests.
    with acting_as(None, surface="system"):
        yield


@pytest.fixture
def make_course(admin_user: User) -> Callable[[Patient], object]:
    from treatments.models import ChemoCycle, Course, Intent, Regimen, RegimenPhase

    def _make(patient: Patient) -> object:
        regimen, _ = Regimen.objects.get_or_create(
            name="mFOLFOX6", version=1, defaults={"intent": Intent.CURATIVE}
        )
        phase, _ = RegimenPhase.objects.get_or_create(
            regimen=regimen,
            order=1,
            defaults={"name": "FOLFOX", "cycle_length_days": 14, "planned_cycles": 12},
        )
        course = Course.objects.create(
            patient=patient,
            regimen=regimen,
            start_date=dt.date(2026, 3, 2),
            intent=Intent.ADJUVANT,
            created_by=admin_user,
        )
        ChemoCycle.objects.create(
            course=course, phase=phase, number=1, planned_start=dt.date(2026, 3, 2)
        )
        return course

    return _make


@pytest.fixture
def make_lab_result() -> Callable[..., object]:
    from labs.models import LabResult, LabTest

    def _make(patient: Patient, *, released: bool = False, value: str = "1.2") -> object:
        test, _ = LabTest.objects.get_or_create(
            loinc="751-8",
            defaults={
                "name": "Neutrophils [#/volume] in Blood",
                "short_name": "ANC",
                "unit": "10*3/uL",
            },
        )
        return LabResult.objects.create(
            patient=patient,
            test=test,
            value=Decimal(value),
            unit=test.unit,
            collected_at=timezone.now() - dt.timedelta(hours=2),
            is_released=released,
        )

    return _make


@pytest.fixture
def portal_user(patient: Patient) -> User:
    """The patient's portal account (a name no factory clinician shares)."""
    from oncoplanner.accounts.tests.factories import UserFactory

    user = UserFactory.create(first_name="Ada", last_name="Lovelace")
    patient.portal_user = user
    patient.save()
    return user


@pytest.fixture
def portal_client(client: Client, portal_user: User) -> Client:
    client.force_login(portal_user)  # patients sign in with a password; no MFA step
    return client
