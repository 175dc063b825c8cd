"""The urgent inbox is worked by acuity first, then by how long items have waited (UKONS).

A clinical reviewer found a very severe chest pain report listed below an older mild fever:
the queue was oldest first within "not yet seen by a clinician". The routine section stays
oldest first (the one-working-day promise).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from labs.models import LabResult, LabTest
from labs.selectors import inbox_acuity, inbox_for
from labs.tests.factories import LabResultFactory
from oncoplanner.accounts.tests.factories import sign_in
from patients.models import SymptomReport
from patients.tests.factories import patient_through_service
from treatments.models import CtcaeTerm, SideEffect

pytestmark = pytest.mark.django_db


@pytest.fixture
def caller(care_team):
    return patient_through_service(care_team, family_name="Acuityworth")


def _aged(model, obj, field: str, hours_ago: float):
    model.objects.filter(pk=obj.pk).update(
        **{field: timezone.now() - dt.timedelta(hours=hours_ago)}
    )
    return obj


def _report(patient, user, *, symptom: str, severity: int, hours_ago: float, description=""):
    report = SymptomReport.objects.create(
        patient=patient,
        reported_by=user,
        symptom=symptom,
        severity=severity,
        description=description,
        urgent=SymptomReport.is_urgent_report(
            symptom=symptom, severity=severity, description=description
        ),
    )
    return _aged(SymptomReport, report, "reported_at", hours_ago)


def _side_effect(patient, user, *, grade: int, hours_ago: float) -> SideEffect:
    term = CtcaeTerm.objects.filter(max_grade__gte=grade).order_by("pk").first()
    side_effect = SideEffect.objects.create(
        patient=patient,
        term=term,
        grade=grade,
        ctcae_version=term.version,
        onset=dt.date(2026, 3, 18),
        reported_by=user,
    )
    return _aged(SideEffect, side_effect, "created_at", hours_ago)


def _critical(patient, *, hours_ago: float) -> LabResult:
    test = LabTest.objects.get(loinc="751-8")
    result = LabResultFactory.create(
        patient=patient, test=test, value=Decimal("0.3"), flag="LL", unit=test.unit
    )
    return _aged(LabResult, result, "created_at", hours_ago)


def _order(user) -> list[tuple[str, int]]:
    return [(item.kind, item.obj.pk) for item in inbox_for(user=user).open]


def _page_order(client, ids: list[str]) -> list[int]:
    content = client.get(reverse("labs:inbox")).content.decode()
    return [content.index(f'id="{dom_id}"') for dom_id in ids]


def test_inbox_severe_chest_pain_comes_before_an_older_mild_fever(
    client, treating_clinician, caller
):
    fever = _report(caller, treating_clinician, symptom="Fever or chills", severity=1, hours_ago=6)
    chest = _report(
        caller,
        treating_clinician,
        symptom="Something else",
        description="chest pain since this morning",
        severity=3,
        hours_ago=1,
    )
    # Both red flags: both in the urgent queue.
    assert fever.urgent
    assert chest.urgent

    assert _order(treating_clinician) == [("symptom", chest.pk), ("symptom", fever.pk)]
    sign_in(client, treating_clinician)
    positions = _page_order(client, [f"inbox-symptom-{chest.pk}", f"inbox-symptom-{fever.pk}"])
    assert positions == sorted(positions)


def test_inbox_orders_across_kinds_by_acuity_then_oldest_first(treating_clinician, caller):
    mild_fever = _report(
        caller, treating_clinician, symptom="Fever or chills", severity=1, hours_ago=9
    )
    moderate_breath = _report(
        caller, treating_clinician, symptom="Shortness of breath", severity=2, hours_ago=8
    )
    grade3 = _side_effect(caller, treating_clinician, grade=3, hours_ago=7)
    severe_report = _report(
        caller, treating_clinician, symptom="Diarrhoea", severity=3, hours_ago=2
    )
    grade4 = _side_effect(caller, treating_clinician, grade=4, hours_ago=5)
    critical = _critical(caller, hours_ago=3)
    very_severe = _report(
        caller, treating_clinician, symptom="Shortness of breath", severity=4, hours_ago=1
    )

    assert _order(treating_clinician) == [
        # life-threatening (4), and every red flag (UKONS red): by the patient's own severity,
        # then oldest first
        ("side_effect", grade4.pk),
        ("lab", critical.pk),
        ("symptom", very_severe.pk),
        ("symptom", moderate_breath.pk),
        ("symptom", mild_fever.pk),
        # severe (3): oldest first
        ("side_effect", grade3.pk),
        ("symptom", severe_report.pk),
    ]


def test_inbox_acuity_is_read_from_what_each_item_records(treating_clinician, caller):
    assert inbox_acuity(_critical(caller, hours_ago=1)) == 4
    for grade, acuity in ((3, 3), (4, 4), (5, 4)):
        side_effect = _side_effect(caller, treating_clinician, grade=grade, hours_ago=1)
        assert inbox_acuity(side_effect) == acuity
    for severity in (1, 2, 3, 4):
        report = _report(
            caller,
            treating_clinician,
            symptom="Fever or chills",
            severity=severity,
            hours_ago=1,
        )
        # A fever is a red flag (possible neutropenic sepsis): UKONS red, whatever its severity.
        assert inbox_acuity(report) == 4
    diarrhoea = _report(caller, treating_clinician, symptom="Diarrhoea", severity=3, hours_ago=1)
    assert inbox_acuity(diarrhoea) == 3


def test_inbox_says_how_the_urgent_list_is_ordered_and_shows_each_acuity(
    client, treating_clinician, caller
):
    chest = _report(
        caller, treating_clinician, symptom="Shortness of breath", severity=4, hours_ago=1
    )
    sign_in(client, treating_clinician)
    content = client.get(reverse("labs:inbox")).content.decode()
    order = content.split('id="inbox-order">', 1)[1].split("</span>", 1)[0]
    assert "the most acute first" in order
    assert "waiting longest" in order
    item = content.split(f'id="inbox-symptom-{chest.pk}"', 1)[1].split("</li>", 1)[0]
    assert "acuity: red flag: assess now" in item
    severe = _side_effect(caller, treating_clinician, grade=4, hours_ago=2)
    content = client.get(reverse("labs:inbox")).content.decode()
    item = content.split(f'id="inbox-side_effect-{severe.pk}"', 1)[1].split("</li>", 1)[0]
    assert "acuity: life-threatening" in item


def test_inbox_routine_reports_stay_oldest_first_whatever_their_severity(
    treating_clinician, caller
):
    older_mild = _report(caller, treating_clinician, symptom="Fatigue", severity=1, hours_ago=5)
    newer_moderate = _report(caller, treating_clinician, symptom="Nausea", severity=2, hours_ago=1)
    assert not older_mild.urgent
    assert not newer_moderate.urgent
    inbox = inbox_for(user=treating_clinician)
    assert inbox.open == []
    assert [item.obj.pk for item in inbox.routine] == [older_mild.pk, newer_moderate.pk]
    assert all(item.acuity_label == "" for item in inbox.routine)
