from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection
from django.db.models import ForeignKey
from django.test.utils import CaptureQueriesContext

from audit.registry import NOT_PHI, PHI_MODELS, patient_id_for
from patients.models import BodyMeasurement, Patient
from treatments.models import Administration, ChemoCycle, Course, DoseModification


def _reaches_patient(model: type, depth: int = 3) -> bool:
    if model is Patient:
        return True
    if depth == 0:
        return False
    return any(
        _reaches_patient(field.related_model, depth - 1)
        for field in model._meta.get_fields()
        if field.concrete and isinstance(field, ForeignKey)
    )


def test_registry_classifies_every_model_that_reaches_a_patient() -> None:
    unclassified = [
        model._meta.label
        for model in apps.get_models()
        if _reaches_patient(model)
        and model._meta.label not in PHI_MODELS
        and model._meta.label not in NOT_PHI
    ]
    assert unclassified == [], f"add these to audit/registry.py: {unclassified}"


def test_registry_labels_all_exist() -> None:
    for label in (*PHI_MODELS, *NOT_PHI):
        assert apps.get_model(label) is not None


@pytest.mark.django_db
def test_patient_id_for_follows_each_path_without_queries() -> None:
    # Parents already in memory, as inside a service: no query to find the patient.
    course = Course(pk=11, patient_id=7)
    cycle = ChemoCycle(pk=12, course=course)
    objects = [
        Patient(pk=7),
        BodyMeasurement(patient_id=7),
        course,
        cycle,
        DoseModification(course=course),
        Administration(cycle=cycle),
    ]
    with CaptureQueriesContext(connection) as queries:
        found = [patient_id_for(obj) for obj in objects]
    assert found == [7] * len(objects)
    assert len(queries) == 0


@pytest.mark.django_db
def test_patient_id_for_returns_none_when_parent_is_gone() -> None:
    assert patient_id_for(DoseModification(course_id=999_999)) is None
