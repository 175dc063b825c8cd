from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from patients.models import BodyMeasurement, Patient


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
