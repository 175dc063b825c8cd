from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.tasks import default_task_backend

from oncoplanner.accounts.tests.factories import ClinicianFactory
from patients.models import SymptomReport
from patients.services import symptom_report_create, symptom_report_review
from patients.tasks import notify_care_team_of_severe_symptom_report

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_tasks():
    default_task_backend.clear()
    yield
    default_task_backend.clear()


def test_severe_symptom_report_alerts_care_team_after_commit(
    patient, portal_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        report = symptom_report_create(
            patient=patient,
            reported_by=portal_user,
            symptom="Diarrhoea",
            severity=SymptomReport.Severity.SEVERE,
            description="7 times a day",
        )
    (queued,) = default_task_backend.results
    assert queued.task.func is notify_care_team_of_severe_symptom_report.func
    assert queued.kwargs == {"symptom_report_id": report.pk}


def test_moderate_symptom_report_alerts_nobody(
    patient, portal_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        symptom_report_create(
            patient=patient,
            reported_by=portal_user,
            symptom="Tiredness",
            severity=SymptomReport.Severity.MODERATE,
        )
    assert default_task_backend.results == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"severity": 5}, "severity"),
        ({"severity": -1}, "severity"),
        ({"symptom": ""}, "symptom"),
        ({"symptom": "Pain\x00"}, "symptom"),
        ({"description": "x" * 4001}, "description"),
    ],
)
def test_symptom_report_bad_input_names_field_and_writes_nothing(
    patient, portal_user, changes, field
):
    params = {"symptom": "Nausea", "severity": 1, "description": ""} | changes
    with pytest.raises(ValidationError) as error:
        symptom_report_create(patient=patient, reported_by=portal_user, **params)
    assert field in error.value.message_dict
    assert not SymptomReport.objects.exists()


def test_symptom_report_review_once(patient, portal_user):
    report = symptom_report_create(
        patient=patient, reported_by=portal_user, symptom="Nausea", severity=3
    )
    nurse = ClinicianFactory.create()
    symptom_report_review(report=report, by=nurse, note="Phoned; antiemetic adjusted.")
    report.refresh_from_db()
    assert report.reviewed_by == nurse
    with pytest.raises(ValidationError):
        symptom_report_review(report=report, by=nurse, note="again")
