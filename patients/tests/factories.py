from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import factory
from factory.django import DjangoModelFactory

from patients.models import BodyMeasurement, CareTeam, Patient


class PatientFactory(DjangoModelFactory[Patient]):
    class Meta:
        model = Patient

    mrn = factory.Sequence(lambda n: f"MRN{n:07d}")
    given_name = factory.Faker("first_name")
    family_name = factory.Faker("last_name")
    date_of_birth = dt.date(1960, 5, 17)
    sex = Patient.Sex.FEMALE
    primary_diagnosis = "Adenocarcinoma of sigmoid colon"
    icd10_code = "C18.7"
    stage = "IIIB"
    ecog = 1


class BodyMeasurementFactory(DjangoModelFactory[BodyMeasurement]):
    class Meta:
        model = BodyMeasurement

    patient = factory.SubFactory(PatientFactory)
    measured_on = dt.date(2026, 1, 5)
    height_cm = Decimal("170.0")
    weight_kg = Decimal("70.0")


def patient_through_service(care_team: CareTeam | None, **fields: Any) -> Patient:
    """A factory-built patient created the way the app creates one (patients.services), so the
    care team's permissions are granted and the creation is logged."""
    from patients.services import patient_create

    built = PatientFactory.build(**fields)
    return patient_create(
        created_by=None,
        care_team=care_team,
        **{
            f.name: getattr(built, f.name)
            for f in Patient._meta.concrete_fields
            if f.name not in {"id", "care_team", "portal_user", "created_at", "updated_at"}
        },
    )


def details_form_data(patient: Patient, **changes: Any) -> dict[str, object]:
    """The chart's details form as the page posts it, every field as on record, then `changes`."""
    data = {
        "given_name": patient.given_name,
        "family_name": patient.family_name,
        "date_of_birth": patient.date_of_birth.isoformat(),
        "sex": patient.sex,
        "phone": patient.phone,
        "email": patient.email,
        "address": patient.address,
        "primary_diagnosis": patient.primary_diagnosis,
        "icd10_code": patient.icd10_code,
        "stage": patient.stage,
        "diagnosed_on": patient.diagnosed_on.isoformat() if patient.diagnosed_on else "",
        "ecog": "" if patient.ecog is None else str(patient.ecog),
        "medical_history": patient.medical_history,
    }
    return data | changes


def admin_add_form_data(care_team: CareTeam, **changes: str) -> dict[str, object]:
    """Django admin's "add patient" form as posted for a new patient (MRN-ADMIN-1) on
    `care_team`, with no measurements, then `changes`."""
    return {
        "mrn": "MRN-ADMIN-1",
        "given_name": "Ada",
        "family_name": "Okafor",
        "date_of_birth": "1958-04-09",
        "sex": "female",
        "care_team": care_team.pk,
        "is_active": "on",
        "measurements-TOTAL_FORMS": "0",
        "measurements-INITIAL_FORMS": "0",
    } | changes
