"""Migration patients/0008: reports written before red-flag words made a report urgent."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from patients.models import SymptomReport
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

migration = importlib.import_module("patients.migrations.0008_symptom_report_urgent_free_text")


def _old_report(patient, user, symptom: str, description: str = "", severity: int = 1):
    report = SymptomReport.objects.create(
        patient=patient,
        symptom=symptom,
        description=description,
        severity=severity,
        reported_by=user,
    )
    # As stored before the rule: save() derives urgency now, so undo it the way old rows are.
    SymptomReport.objects.filter(pk=report.pk).update(urgent=False)
    return report


def test_backfill_marks_old_free_text_red_flags_urgent_and_nothing_else(admin_user) -> None:
    patient = PatientFactory.create()
    fever = _old_report(patient, admin_user, "Something else", "Temperature 38.6 and shivering")
    bleeding = _old_report(patient, admin_user, "Nosebleeds")
    blood_test = _old_report(patient, admin_user, "Tired", "Had a blood test on Monday")
    not_had_it = _old_report(patient, admin_user, "Fever", severity=0)

    migration.mark_free_text_red_flags(apps, None)

    urgent = dict(SymptomReport.objects.values_list("pk", "urgent"))
    assert urgent[fever.pk] is True
    assert urgent[bleeding.pk] is True
    assert urgent[blood_test.pk] is False  # "blood test" is not bleeding
    assert urgent[not_had_it.pk] is False  # "I did not have it"
    # The migration's frozen rule agrees with the model's rule on each of these.
    for report in (fever, bleeding, blood_test, not_had_it):
        report.refresh_from_db()
        expected = SymptomReport.is_urgent_report(
            symptom=report.symptom, severity=report.severity, description=report.description
        )
        assert report.urgent is expected
