"""The inbox as a triage queue: the patient's own words, why a report is urgent, the number to
call back, and urgent items first.

A reviewer found symptom reports shown only as "Patient report: Shortness of breath (Very
severe)", and the queue in plain arrival order.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from labs.models import LabResult, LabTest
from labs.tests.factories import LabResultFactory
from oncoplanner.accounts.tests.factories import sign_in as _login
from patients.models import SymptomReport
from patients.tests.factories import patient_through_service
from treatments.models import CtcaeTerm, SideEffect

pytestmark = pytest.mark.django_db

PHONE = "07700 900123"
PHONE_LINK = '<a href="tel:07700900123">07700 900123</a>'


@pytest.fixture
def caller(care_team):
    """A patient of the team with a phone number on the chart."""
    return patient_through_service(care_team, family_name="Quillfeather", phone=PHONE)


def _critical(patient, *, hours_ago: float) -> LabResult:
    test = LabTest.objects.get(loinc="751-8")
    result = LabResultFactory.create(
        patient=patient, test=test, value=Decimal("0.3"), flag="LL", unit=test.unit
    )
    LabResult.objects.filter(pk=result.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=hours_ago)
    )
    return result


def _side_effect(patient, user, *, hours_ago: float) -> SideEffect:
    term = CtcaeTerm.objects.filter(max_grade__gte=4).order_by("pk").first()
    side_effect = SideEffect.objects.create(
        patient=patient,
        term=term,
        grade=3,
        ctcae_version=term.version,
        onset=dt.date(2026, 4, 19),
        reported_by=user,
    )
    SideEffect.objects.filter(pk=side_effect.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=hours_ago)
    )
    return side_effect


def _report(patient, user, *, hours_ago: float = 1, **fields) -> SymptomReport:
    fields = {"symptom": "Shortness of breath", "severity": 4, "description": "", **fields}
    report = SymptomReport.objects.create(patient=patient, reported_by=user, **fields)
    SymptomReport.objects.filter(pk=report.pk).update(
        reported_at=timezone.now() - dt.timedelta(hours=hours_ago)
    )
    return report


def _item(content: str, dom_id: str) -> str:
    return content.split(f'id="{dom_id}"', 1)[1].split("</li>", 1)[0]


def test_inbox_shows_the_patients_words_why_urgent_and_the_callback_number(
    client, treating_clinician, caller
):
    report = _report(
        caller,
        treating_clinician,
        symptom="Being sick (vomiting)",
        severity=2,
        description="vomited 6 times today, can't keep fluids down",
    )
    _login(client, treating_clinician)
    content = client.get(reverse("labs:inbox")).content.decode()
    item = _item(content, f"inbox-symptom-{report.pk}")
    assert "vomited 6 times today, can&#x27;t keep fluids down" in item
    assert "Why urgent:</strong> red flag: dehydration risk" in item
    assert f"Call back: {PHONE_LINK}" in item


def test_inbox_escapes_and_shortens_the_patients_words_and_links_the_full_report(
    client, treating_clinician, caller
):
    long_words = "<b>bold</b> " + "I feel short of breath walking upstairs. " * 12 + "TAILMARK"
    report = _report(caller, treating_clinician, description=long_words)
    _login(client, treating_clinician)
    content = client.get(reverse("labs:inbox")).content.decode()
    item = _item(content, f"inbox-symptom-{report.pk}")
    assert "&lt;b&gt;bold&lt;/b&gt;" in item
    assert "<b>bold</b>" not in item
    assert "TAILMARK" not in item  # cut, with an ellipsis
    assert "…" in item
    chart = reverse("patients:patient_detail", args=[caller.pk]) + f"#symptom-{report.pk}"
    assert f'href="{chart}">full report on the chart</a>' in item
    # The chart has the whole text, escaped, under that anchor.
    page = client.get(reverse("patients:patient_detail", args=[caller.pk])).content.decode()
    on_chart = page.split(f'id="symptom-{report.pk}"', 1)[1].split("</li>", 1)[0]
    assert "TAILMARK" in on_chart
    assert "&lt;b&gt;bold&lt;/b&gt;" in on_chart


def test_inbox_says_so_when_the_patient_gave_no_description_or_phone(
    client, treating_clinician, patient
):
    patient.phone = ""
    patient.save()
    report = _report(patient, treating_clinician, description="")
    _login(client, treating_clinician)
    item = _item(client.get(reverse("labs:inbox")).content.decode(), f"inbox-symptom-{report.pk}")
    assert "No description given." in item
    assert "no phone number on the chart" in item
    assert (
        "Why urgent:</strong> red flag: breathlessness or chest pain; reported as very severe"
        in item
    )


def test_inbox_puts_unseen_urgent_items_first_each_group_oldest_first(
    client, treating_clinician, caller
):
    side_effect = _side_effect(caller, treating_clinician, hours_ago=5)  # oldest of all
    lab = _critical(caller, hours_ago=4)
    older_report = _report(caller, treating_clinician, hours_ago=3)
    newer_report = _report(caller, treating_clinician, hours_ago=1)
    _login(client, treating_clinician)
    content = client.get(reverse("labs:inbox")).content.decode()
    ids = [
        f"inbox-lab-{lab.pk}",
        f"inbox-symptom-{older_report.pk}",
        f"inbox-symptom-{newer_report.pk}",
        f"inbox-side_effect-{side_effect.pk}",
    ]
    positions = [content.index(f'id="{dom_id}"') for dom_id in ids]
    assert positions == sorted(positions)


def test_inbox_hides_the_patients_words_from_an_outsider(
    client, other_clinician, caller, admin_user
):
    _report(caller, admin_user, description="MARKER-WORDS-XYZZY")
    _login(client, other_clinician)
    content = client.get(reverse("labs:inbox")).content.decode()
    assert "MARKER-WORDS-XYZZY" not in content
    assert "Quillfeather" not in content
    assert PHONE not in content


def test_inbox_query_count_stays_flat_with_words_reasons_and_phones(
    client, treating_clinician, care_team
):
    _login(client, treating_clinician)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("labs:inbox")).status_code == 200
        return len(ctx.captured_queries)

    # From two patients: an inbox of one is logged against that patient alone, a longer one
    # also indexes each patient it showed (one insert, however many).
    first = patient_through_service(care_team, phone=PHONE)
    _report(first, treating_clinician, description="can't keep fluids down")
    second = patient_through_service(care_team, phone="07700 900119")
    _report(second, treating_clinician, description="feverish")
    count()
    before = count()
    for n in range(5):
        other = patient_through_service(care_team, phone=f"07700 90011{n}")
        _report(other, treating_clinician, description=f"bloody diarrhoea {n}")
        _report(other, treating_clinician, symptom="Tiredness", severity=3, description="x" * 400)
        _critical(other, hours_ago=n)
    assert count() == before
