"""The chart's patient-reported symptoms: the patient's own words, in full, with why a report is
urgent; routine reports waiting for review are on the chart too."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from patients.models import SymptomReport
from patients.services import symptom_report_review

pytestmark = pytest.mark.django_db


def _url(patient) -> str:
    return reverse("patients:patient_detail", args=[patient.pk])


def _report(patient, user, *, days_ago: float = 0, **fields) -> SymptomReport:
    report = SymptomReport.objects.create(patient=patient, reported_by=user, **fields)
    SymptomReport.objects.filter(pk=report.pk).update(
        reported_at=timezone.now() - dt.timedelta(days=days_ago)
    )
    report.refresh_from_db()  # a later save (a review) must not write the old time back
    return report


def _section(html: str, dom_id: str) -> str:
    return html.split(f'id="{dom_id}"', 1)[1].split("</section>", 1)[0]


def test_chart_shows_urgent_report_with_words_and_reason_in_needs_attention(
    client, login, patient, treating_clinician
):
    report = _report(
        patient,
        treating_clinician,
        symptom="Being sick (vomiting)",
        severity=2,
        description="vomited 6 times today,\ncan't keep fluids down",
    )
    login(client, treating_clinician)
    html = client.get(_url(patient)).content.decode()
    alerts = _section(html, "open-alerts")
    assert "Being sick (vomiting)" in alerts
    assert "vomited 6 times today," in alerts
    assert "Why urgent: red flag: dehydration risk" in alerts
    assert f'href="#symptom-{report.pk}"' not in alerts  # short: all of it is shown here
    long_report = _report(
        patient, treating_clinician, symptom="Fever or chills", severity=1, description="y" * 300
    )
    html = client.get(_url(patient)).content.decode()
    assert f'href="#symptom-{long_report.pk}">full report</a>' in _section(html, "open-alerts")
    listed = _section(html, "symptom-reports")
    entry = listed.split(f'id="symptom-{report.pk}"', 1)[1].split("</li>", 1)[0]
    assert "vomited 6 times today,<br>can&#x27;t keep fluids down" in entry  # whole, escaped
    assert "urgent, not reviewed" in entry


def test_chart_lists_routine_unreviewed_and_recent_reports_not_old_reviewed_ones(
    client, login, patient, treating_clinician
):
    routine = _report(
        patient,
        treating_clinician,
        symptom="Tiredness",
        severity=1,
        description="<i>tired</i> after lunch",
        days_ago=45,
    )
    old_reviewed = _report(
        patient, treating_clinician, symptom="Mouth sores", severity=1, days_ago=60
    )
    symptom_report_review(report=old_reviewed, by=treating_clinician, note="Mouthwash advised")
    recent_reviewed = _report(
        patient, treating_clinician, symptom="Skin rash", severity=1, days_ago=2
    )
    symptom_report_review(report=recent_reviewed, by=treating_clinician, note="MARKER-NOTE-QV")
    login(client, treating_clinician)
    listed = _section(client.get(_url(patient)).content.decode(), "symptom-reports")
    assert f'id="symptom-{routine.pk}"' in listed  # waiting for review, however old
    assert "&lt;i&gt;tired&lt;/i&gt; after lunch" in listed
    assert f'id="symptom-{recent_reviewed.pk}"' in listed
    assert "MARKER-NOTE-QV" in listed
    assert f'id="symptom-{old_reviewed.pk}"' not in listed


def test_chart_says_when_there_are_no_reports(client, login, patient, treating_clinician):
    login(client, treating_clinician)
    listed = _section(client.get(_url(patient)).content.decode(), "symptom-reports")
    assert "No symptom reports from the patient in the last 30 days." in listed
