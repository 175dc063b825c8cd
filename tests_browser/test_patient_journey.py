"""A patient signs in with a password (no MFA for patients), reports a severe symptom and sees
that the care team was alerted, sees only the results the care team released, and after
logout nothing of the portal stays in the browser. Screenshots at desktop, tablet and phone."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from labs.models import LabResult, LabTest
from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import ClinicianFactory, UserFactory
from patients.models import Patient, SymptomReport
from patients.services import care_team_add_member, care_team_create, patient_create
from tests_browser.conftest import screenshot
from treatments.models import ChemoCycle, Course, Intent, Regimen, RegimenPhase

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

PASSWORD = "correct-horse-battery-staple"
UNRELEASED_MARKER = "987.6"
PHONE = {"width": 375, "height": 812}
TABLET = {"width": 820, "height": 1180}


def _portal_patient() -> tuple[User, Patient]:
    team = care_team_create(name="GI oncology (portal browser)", phone_24h="020 7946 0999")
    nurse = ClinicianFactory.create(
        username="nurse.portal",
        first_name="Maria",
        last_name="Okafor",
        discipline=User.Discipline.NURSE,
    )
    care_team_add_member(team=team, clinician=nurse, granted_by=None)
    patient = patient_create(
        created_by=None,
        care_team=team,
        mrn="MRN-P-0001",
        given_name="Ana",
        family_name="Portalova",
        date_of_birth="1961-04-02",
        sex="female",
        primary_diagnosis="Adenocarcinoma of sigmoid colon",
        icd10_code="C18.7",
        stage="IIIB",
        ecog=1,
    )
    user = UserFactory.create(username="ana.portal", first_name="Ana", last_name="Portalova")
    patient.portal_user = user
    patient.save()

    today = timezone.localdate()
    regimen = Regimen.objects.create(name="mFOLFOX6 (portal)", version=1, intent=Intent.CURATIVE)
    phase = RegimenPhase.objects.create(
        regimen=regimen, order=1, name="FOLFOX", cycle_length_days=14, planned_cycles=6
    )
    start = today - dt.timedelta(days=42)
    course = Course.objects.create(
        patient=patient,
        regimen=regimen,
        start_date=start,
        intent=Intent.ADJUVANT,
        status=Course.Status.ACTIVE,
        created_by=nurse,
    )
    for number in range(1, 7):
        planned = start + dt.timedelta(days=14 * (number - 1))
        given = planned < today
        ChemoCycle.objects.create(
            course=course,
            phase=phase,
            number=number,
            planned_start=planned,
            actual_start=planned if given else None,
            status=ChemoCycle.Status.GIVEN if given else ChemoCycle.Status.PLANNED,
        )

    anc, _ = LabTest.objects.get_or_create(
        loinc="751-8",
        defaults={
            "name": "Neutrophils [#/volume] in Blood",
            "short_name": "ANC",
            "unit": "10*3/uL",
        },
    )
    for days_ago, value, released in (
        (40, "3.9", True),
        (26, "1.4", True),
        (12, "2.6", True),
        (1, UNRELEASED_MARKER, False),
    ):
        LabResult.objects.create(
            patient=patient,
            test=anc,
            value=Decimal(value),
            unit=anc.unit,
            collected_at=timezone.now() - dt.timedelta(days=days_ago),
            ref_low=Decimal("1.5"),
            ref_high=Decimal("7.5"),
            is_released=released,
        )
    return user, patient


def _log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def _storage(page) -> str:
    return page.evaluate(
        "() => JSON.stringify({local: Object.assign({}, localStorage),"
        " session: Object.assign({}, sessionStorage)})"
    )


def test_patient_reports_a_severe_symptom_and_sees_released_results_only(page, live_server):
    user, patient = _portal_patient()
    _log_in(page, live_server, user.username)
    assert "/accounts/" not in page.url  # no MFA step for a patient
    main = page.inner_text("main")
    assert "Your next treatment" in main
    assert "cycle 4 of 6" in main
    screenshot(page, "portal-home")

    page.get_by_role("link", name="Report a symptom").first.click()
    page.wait_for_load_state("networkidle")
    page.select_option("select[name=symptom]", "Fever or chills")
    page.get_by_label("Severe: It stopped me doing many things").check()
    page.fill("textarea[name=description]", "Shivering since last night")
    screenshot(page, "portal-symptom-form")
    page.get_by_role("button", name="Send to my care team").click()
    page.wait_for_load_state("networkidle")
    alert = page.inner_text("#symptom-sent")
    assert "Your care team has been alerted" in alert
    assert "Call your clinic's 24-hour number now: 020 7946 0999" in alert  # a fever: call now
    assert "Waiting for review" in page.inner_text("main")
    screenshot(page, "portal-symptom-severe-confirmation")
    report = SymptomReport.objects.get(patient=patient)
    assert (report.symptom, report.severity) == ("Fever or chills", 3)

    page.get_by_role("link", name="Test results").first.click()
    page.wait_for_load_state("networkidle")
    page.wait_for_selector(".portal-chart .main-svg")  # plotly drew the trend
    results = page.inner_text("main")
    assert "2.6" in results
    assert "Below the usual range" not in results.split("Latest:")[1].split("\n")[0]
    assert UNRELEASED_MARKER not in page.content()
    screenshot(page, "portal-results")

    page.get_by_role("link", name="Care team").click()
    page.wait_for_load_state("networkidle")
    assert "Maria Okafor" in page.inner_text("main")
    assert "Oncology nurse" in page.inner_text("main")
    page.get_by_role("link", name="Who viewed my record").click()
    page.wait_for_load_state("networkidle")
    assert "You" in page.inner_text("main")
    assert patient.mrn not in page.inner_text("main")
    screenshot(page, "portal-access-history")
    assert page.csp_violations == []  # type: ignore[attr-defined]

    for label, size in (("tablet", TABLET), ("phone", PHONE)):
        page.set_viewport_size(size)
        for name, path in (("home", "/portal/"), ("results", "/portal/results/")):
            page.goto(f"{live_server.url}{path}")
            page.wait_for_load_state("networkidle")
            # Readable on a small screen: nothing wider than the viewport.
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name} scrolls sideways on a {label}"
            screenshot(page, f"portal-{name}-{label}")
        page.goto(f"{live_server.url}/portal/symptoms/")
        screenshot(page, f"portal-symptoms-{label}")
    assert page.csp_violations == []  # type: ignore[attr-defined]

    page.click("text=Log out")
    page.wait_for_load_state("networkidle")
    storage = _storage(page)
    for marker in ("Portalova", "Fever", "mFOLFOX6", "2.6", patient.mrn):
        assert marker not in storage
    page.go_back()
    page.wait_for_load_state("networkidle")
    assert "Fever or chills" not in page.content()
