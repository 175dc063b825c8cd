"""Dehydration and GI toxicity as red flags (UKONS 24-hour triage: vomiting and diarrhoea).

A patient reported "Being sick (vomiting)", Moderate, "vomited 6 times today, can't keep fluids
down", and was told "Your care team will see it at your next review".
"""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.tasks import default_task_backend
from django.urls import reverse

from oncoplanner.accounts.tests.factories import UserFactory
from patients.models import SymptomReport
from patients.tasks import notify_care_team_of_severe_symptom_report
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

VOMITING = "Being sick (vomiting)"
DIARRHOEA = "Loose or watery stools (diarrhoea)"
MILD, MODERATE, SEVERE, VERY_SEVERE = 1, 2, 3, 4

backfill = importlib.import_module("patients.migrations.0010_symptom_report_urgent_dehydration")


@pytest.fixture(autouse=True)
def _clear_tasks():
    default_task_backend.clear()
    yield
    default_task_backend.clear()


# --- The rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symptom", "description", "kind"),
    [
        (VOMITING, "vomited 6 times today, can't keep fluids down", "dehydration"),
        (VOMITING, "Can’t keep anything down since last night", "dehydration"),
        (VOMITING, "I cannot keep fluids down", "dehydration"),
        (VOMITING, "vomited 6 times today", "dehydration"),
        (VOMITING, "threw up seven times", "dehydration"),
        (DIARRHOEA, "10x since this morning", "dehydration"),
        (DIARRHOEA, "unable to drink much", "dehydration"),
        (DIARRHOEA, "no urine since yesterday", "dehydration"),
        (DIARRHOEA, "I have not passed urine today", "dehydration"),
        (DIARRHOEA, "haven't passed urine since breakfast", "dehydration"),
        (DIARRHOEA, "bloody diarrhoea", "bleeding"),
        (DIARRHOEA, "there is blood in stool", "bleeding"),
        ("Something else: runny tummy", "and no urine all day", "dehydration"),
    ],
)
@pytest.mark.parametrize("severity", [MILD, MODERATE])
def test_dehydration_words_are_urgent_at_any_severity(symptom, description, kind, severity):
    assert SymptomReport.is_urgent_report(
        symptom=symptom, severity=severity, description=description
    )
    assert SymptomReport.red_flag_in(symptom=symptom, description=description) == kind


@pytest.mark.parametrize("symptom", [VOMITING, DIARRHOEA])
@pytest.mark.parametrize("severity", [SEVERE, VERY_SEVERE])
def test_severe_vomiting_or_diarrhoea_is_urgent(symptom, severity):
    assert SymptomReport.is_urgent_report(symptom=symptom, severity=severity)
    assert SymptomReport.urgency_reasons_in(symptom=symptom, severity=severity) == [
        f"reported as {dict(SymptomReport.Severity.choices)[severity].lower()}"
    ]


@pytest.mark.parametrize(
    ("symptom", "severity", "description"),
    [
        (VOMITING, MODERATE, ""),  # UKONS amber: advice and review, not an emergency
        (VOMITING, MODERATE, "vomited twice, drinking fine"),
        (VOMITING, MODERATE, "5 times yesterday"),  # under six episodes
        (DIARRHOEA, MILD, "keeping fluids down fine"),
        ("Pain", MODERATE, "woke 6 times in the night"),  # a count, but not vomiting or stools
        ("Tiredness", MILD, "I can drink and eat normally"),
        (VOMITING, 0, "can't keep fluids down"),  # "I did not have it"
    ],
)
def test_what_is_not_a_dehydration_red_flag_stays_routine(symptom, severity, description):
    assert not SymptomReport.is_urgent_report(
        symptom=symptom, severity=severity, description=description
    )
    assert (
        SymptomReport.urgency_reasons_in(
            symptom=symptom, severity=severity, description=description
        )
        == []
    )


def test_urgency_reasons_name_the_patients_words_and_the_severity():
    assert SymptomReport.urgency_reasons_in(
        symptom=VOMITING, severity=VERY_SEVERE, description="vomited 6 times, cannot drink"
    ) == [
        "red flag: dehydration risk (\u201ccannot drink\u201d)",
        "reported as very severe",
    ]
    assert SymptomReport.urgency_reasons_in(symptom="Fever or chills", severity=MILD) == [
        "red flag: fever, possible neutropenic sepsis"
    ]


def test_saved_report_derives_urgent_and_its_reasons(patient, admin_user):
    report = SymptomReport.objects.create(
        patient=patient,
        symptom=VOMITING,
        severity=MODERATE,
        description="vomited 6 times today, can't keep fluids down",
        reported_by=admin_user,
    )
    assert report.urgent is True
    assert report.red_flag == "dehydration"
    assert report.urgent_reasons == [
        "red flag: dehydration risk (\u201ccan't keep fluids down\u201d)"
    ]


# --- The portal: the reviewer's report ----------------------------------------------------------


@pytest.fixture
def portal_client(client, patient):
    user = UserFactory.create()
    patient.portal_user = user
    patient.save()
    client.force_login(user)
    return client


def test_portal_vomiting_that_stops_fluids_alerts_now_and_says_call(
    portal_client, django_capture_on_commit_callbacks
):
    body = {
        "symptom": VOMITING,
        "severity": str(MODERATE),
        "description": "vomited 6 times today, can't keep fluids down",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = portal_client.post(reverse("portal:symptoms"), body)
    report = SymptomReport.objects.get()
    assert (report.severity, report.urgent, report.red_flag) == (MODERATE, True, "dehydration")
    (queued,) = default_task_backend.results
    assert queued.task.func is notify_care_team_of_severe_symptom_report.func
    page = portal_client.get(response["Location"]).content.decode()
    alert = page.split('id="symptom-sent"', 1)[1].split("</section>", 1)[0]
    assert "Your care team has been alerted" in alert
    assert "next review" not in page
    assert "dangerously dehydrated" in alert
    assert "Do not wait for us to call" in alert


# --- Backfill: reports made before the rule -----------------------------------------------------


def _old_report(patient, user, symptom: str, description: str = "", severity: int = MODERATE):
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


def test_backfill_marks_old_dehydration_reports_urgent_and_nothing_else(admin_user):
    patient = PatientFactory.create()
    fluids = _old_report(patient, admin_user, VOMITING, "vomited 6 times, can't keep fluids down")
    six = _old_report(patient, admin_user, DIARRHOEA, "8 times since lunch")
    urine = _old_report(patient, admin_user, "Tiredness", "not passed urine since morning", MILD)
    twice = _old_report(patient, admin_user, VOMITING, "twice, drinking fine")
    pain = _old_report(patient, admin_user, "Pain", "woke 6 times")
    absent = _old_report(patient, admin_user, VOMITING, "can't keep fluids down", severity=0)

    backfill.mark_dehydration_red_flags(apps, None)

    urgent = dict(SymptomReport.objects.values_list("pk", "urgent"))
    assert [urgent[r.pk] for r in (fluids, six, urine)] == [True, True, True]
    assert [urgent[r.pk] for r in (twice, pain, absent)] == [False, False, False]
    # The migration's frozen rule agrees with the model's rule on each of these.
    for report in (fluids, six, urine, twice, pain, absent):
        report.refresh_from_db()
        assert report.urgent is SymptomReport.is_urgent_report(
            symptom=report.symptom, severity=report.severity, description=report.description
        )
