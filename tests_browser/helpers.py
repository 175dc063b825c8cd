"""Shared steps for the browser tests: signing in with password and TOTP, and building the
clinical world a journey needs through the same services the pages use."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from decimal import Decimal

from allauth.mfa.totp.internal.auth import (
    format_hotp_value,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.utils import timezone
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from labs.models import LabTest
from labs.services import lab_result_record
from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import ClinicianFactory
from patients.models import CareTeam, Patient
from patients.services import (
    care_team_add_member,
    care_team_create,
    measurement_record,
    patient_create,
)
from treatments.models import Course, Intent, Regimen
from treatments.services import course_start, cycle_give

PASSWORD = "correct-horse-battery-staple"

ANC, PLT, BILI, CREAT = "751-8", "777-3", "1975-2", "2160-0"


def current_code(secret: str) -> str:
    counter = next(iter(yield_hotp_counters_from_time()))
    return format_hotp_value(hotp_value(secret, counter))


def log_in(page: Page, live_server, user: User, *, on_code_page=None) -> None:
    """Password, then the authenticator code; ends on the page the login lands on."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("input[name=code]")
    if on_code_page is not None:
        on_code_page(page)
    # A code typed in the last moments of its 30 s window may reach the server in the next one
    # (allauth allows no drift by default): wait for a fresh window instead of flaking.
    if time.time() % 30 > 28:
        page.wait_for_timeout((30 - time.time() % 30) * 1000 + 50)
    page.fill("input[name=code]", current_code(user.totp_secret))  # type: ignore[attr-defined]
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "/accounts/" not in page.url, f"login did not complete: {page.url}"


def clinician(username: str, *, team: CareTeam | None = None, **extra) -> User:
    user = ClinicianFactory.create(username=username, **extra)
    if team is not None:
        care_team_add_member(team=team, clinician=user, granted_by=None)
    return user


def team_patient(team: CareTeam | None, *, mrn: str, family_name: str) -> Patient:
    return patient_create(
        created_by=None,
        care_team=team,
        mrn=mrn,
        given_name="Ana",
        family_name=family_name,
        date_of_birth="1961-04-02",
        sex="female",
        primary_diagnosis="Adenocarcinoma of sigmoid colon",
        icd10_code="C18.7",
        stage="IIIB",
        ecog=1,
    )


@dataclass
class CourseWorld:
    team: CareTeam
    clinician: User
    patient: Patient
    course: Course


def folfox_course_ready_for_cycle_2(*, mrn: str = "MRN-W-0001") -> CourseWorld:
    """A patient on the shipped mFOLFOX6 (q14d): height and weight recorded, cycle 1 given 14
    days ago, cycle 2 due today, and yesterday's ANC 2.4, platelets 210, bilirubin 0.6 and
    creatinine 0.8, all inside the pre-cycle rules: readiness says treat."""
    team = care_team_create(name="GI oncology (workflow browser)")
    doctor = clinician("dr.workflow", team=team, first_name="Ines", last_name="Moreau")
    patient = team_patient(team, mrn=mrn, family_name="Workflow")
    today = timezone.localdate()
    measurement_record(
        patient=patient,
        measured_on=today - dt.timedelta(days=14),
        height_cm=Decimal("165"),
        weight_kg=Decimal("68.0"),
        recorded_by=doctor,
    )
    # Weighed again at today's visit: cycle 2's doses need a current weight.
    measurement_record(
        patient=patient,
        measured_on=today,
        height_cm=None,
        weight_kg=Decimal("67.5"),
        recorded_by=doctor,
    )
    regimen = Regimen.objects.get(name="mFOLFOX6", is_active=True)
    start = today - dt.timedelta(days=14)
    course = course_start(
        patient=patient,
        regimen=regimen,
        start_date=start,
        intent=Intent.ADJUVANT,
        created_by=doctor,
        confirm_past_start=True,
    )
    cycle_give(
        cycle=course.cycles.get(number=1),
        actual_start=start,
        given_by=doctor,
        override_reason="Cycle 1 bloods were drawn at the referring hospital",
    )
    yesterday = timezone.now() - dt.timedelta(days=1)
    tests = {t.loinc: t for t in LabTest.objects.filter(loinc__in=[ANC, PLT, BILI, CREAT])}
    # ANC before cycle 1 too, so the chart starts with two points.
    lab_result_record(
        patient=patient,
        test=tests[ANC],
        value=Decimal("3.6"),
        unit=tests[ANC].unit,
        collected_at=timezone.now() - dt.timedelta(days=15),
        recorded_by=doctor,
    )
    for loinc, value in ((ANC, "2.4"), (PLT, "210"), (BILI, "0.6"), (CREAT, "0.8")):
        lab_result_record(
            patient=patient,
            test=tests[loinc],
            value=Decimal(value),
            unit=tests[loinc].unit,
            collected_at=yesterday,
            recorded_by=doctor,
        )
    return CourseWorld(team=team, clinician=doctor, patient=patient, course=course)


def enter_lab_result(page: Page, *, test: LabTest, value: str, minutes_ago: int = 5) -> None:
    """Fill and submit the lab entry form on the trends page (clinic time)."""
    when = timezone.localtime(timezone.now() - dt.timedelta(minutes=minutes_ago))
    entry = page.locator("#lab-entry")
    entry.locator("select[name=test]").select_option(value=str(test.pk))
    # Choosing the test re-renders the form (its unit follows the test): wait for that.
    expect(entry.locator("select[name=unit]")).to_have_value(test.unit)
    entry.locator("input[name=value]").fill(value)
    entry.locator("input[name=collected_on]").fill(when.strftime("%Y-%m-%d"))
    entry.locator("input[name=collected_time]").fill(when.strftime("%H:%M"))
    with page.expect_response(lambda r: "/labs/new/" in r.url and r.request.method == "POST"):
        entry.get_by_role("button", name="Record result").click()
    page.wait_for_load_state("networkidle")


def new_page(browser: Browser) -> Page:
    """A page in its own browser context (own cookies: another person at another desk), with
    the same CSP-violation capture as the conftest's `page` fixture. Close its context after."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.csp_violations = []  # type: ignore[attr-defined]

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            page.csp_violations.append(message.text)  # type: ignore[attr-defined]

    page.on("console", on_console)
    return page


def fill_administration_form(page: Page, *, dose_key: str, checker: User, label_mg: object):
    """The cycle page's record-administration form as a nurse fills it at the chair: the drug
    and day, given five minutes ago, the second checker with their password, the dose read
    off the label, the checklist ticked. Returns the form (not yet sent)."""
    form = page.locator("form.adm-form")
    form.locator("select[name=regimen_drug]").select_option(value=dose_key)
    given = timezone.localtime() - dt.timedelta(minutes=5)
    form.locator("input[name=given_at]").fill(given.strftime("%Y-%m-%dT%H:%M"))
    form.locator("select[name=verified_by]").select_option(value=str(checker.pk))
    form.locator("input[name=checker_password]").fill(PASSWORD)
    form.locator("input[name=label_dose_mg]").fill(str(label_mg))
    form.locator("input[name=checklist]").check()
    return form
