"""Dose banding and a cycle's history, as the clinic works them in the browser: the pharmacist
verifies cycle 2 with oxaliplatin dispensed at a banded dose within the range the page shows;
the nurse's bag at the calculated dose is refused, the banded bag recorded with both doses
kept; an oncologist delays cycle 3 twice and the cycle page's History lists both, newest first,
and the course page says "delayed twice". Screenshots go to screenshots/banding-*.png and
screenshots/history-*.png."""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from oncoplanner.accounts.models import User
from patients.services import patient_no_known_allergies_record
from tests_browser.conftest import screenshot
from tests_browser.helpers import (
    clinician,
    fill_administration_form,
    folfox_course_ready_for_cycle_2,
    log_in,
    new_page,
)
from treatments.models import Administration, ChemoCycle, CycleStatusChange, Drug, RegimenDrug
from treatments.services import cycle_give

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

TOLERANCE = Decimal("5")


def _banded(calculated: Decimal) -> Decimal:
    """The pharmacy's band table, roughly: the nearest 10 mg if within the tolerance, else the
    nearest 1 mg; never the calculated dose itself (that would be no banding)."""
    for step in (Decimal("10"), Decimal("1")):
        banded = (calculated / step).quantize(Decimal("1"), rounding=ROUND_HALF_UP) * step
        if banded != calculated and abs(banded - calculated) <= calculated * TOLERANCE / 100:
            return banded
    return calculated + Decimal("1")


def _mg(value: Decimal) -> str:
    """As the page writes a dose: 150.0 -> "150", 149.6 -> "149.6"."""
    return f"{value.normalize():f}"


def test_pharmacist_bands_oxaliplatin_and_the_nurse_records_the_banded_bag(
    page: Page, browser: Browser, live_server
):
    world = folfox_course_ready_for_cycle_2(mrn="MRN-B-0001")
    patient, course = world.patient, world.course
    nurse = clinician(
        "nurse.band", team=world.team, discipline=User.Discipline.NURSE, last_name="Band"
    )
    pharmacist = clinician(
        "pharm.band", team=world.team, discipline=User.Discipline.PHARMACIST, last_name="Rx"
    )
    Drug.objects.filter(name__iexact="oxaliplatin").update(dose_banding_tolerance_percent=TOLERANCE)
    cycle = cycle_give(
        cycle=course.cycles.get(number=2), actual_start=timezone.localdate(), given_by=nurse
    )
    patient_no_known_allergies_record(patient=patient, recorded_by=pharmacist)
    oxaliplatin = RegimenDrug.objects.get(
        phase__regimen=course.regimen, drug__name__iexact="oxaliplatin"
    )
    url = f"{live_server.url}/patients/{patient.pk}/courses/{course.pk}/cycles/2/"

    # The pharmacist: the range beside the dispensed-dose box, a banded dose typed within it.
    log_in(page, live_server, pharmacist)
    page.goto(url)
    banding = page.locator("#dose-banding")
    row = banding.locator(".banding-row", has_text="Oxaliplatin")
    expect(row).to_have_count(1)
    shown = re.search(r"calculated ([\d.]+) mg", row.inner_text())
    assert shown, row.inner_text()
    calculated = Decimal(shown.group(1))
    band = re.search(r"([\d.]+)–([\d.]+) mg, ±5%", row.locator(".band-range").inner_text())
    assert band, row.locator(".band-range").inner_text()
    low, high = Decimal(band.group(1)), Decimal(band.group(2))
    assert low < calculated < high
    banded = _banded(calculated)
    assert low <= banded <= high
    box = row.get_by_label("Dispensed (banded) dose, mg")
    expect(box).to_be_visible()
    box.fill(str(banded))
    form = page.locator("form.verify-form")
    form.locator("textarea[name=note], input[name=note]").fill(
        "Banded from the pharmacy band table"
    )
    screenshot(page, "banding-01-verify-form-with-range")
    form.get_by_role("button", name="Verify the doses of cycle 2").click()
    verification = page.locator("#pharmacy-verification")
    expect(verification).to_contain_text("Pharmacy verified")
    # The bag's dose in large type, the calculated one beside it.
    row = page.locator("td.dose", has=page.locator(".banded-dose"))
    expect(row.locator(".mg")).to_have_text(f"{_mg(banded)} mg")
    expect(page.locator(".banded-dose")).to_contain_text("banded from")
    dispensed_cell = page.locator("#verified-doses tr", has_text="Oxaliplatin").locator(
        "td.dispensed"
    )
    expect(dispensed_cell).to_contain_text(f"{_mg(banded)} mg")
    expect(dispensed_cell).to_contain_text("banded, +" if banded > calculated else "banded, -")
    screenshot(page, "banding-02-verified-banded")
    assert cycle.verifications.get().dispensed_for(oxaliplatin.pk, 1) == banded

    # The nurse at the chair: a bag at the calculated dose is refused, the banded bag recorded.
    chair = new_page(browser)
    try:
        log_in(chair, live_server, nurse)
        chair.goto(url)
        form = fill_administration_form(
            chair, dose_key=f"{oxaliplatin.pk}:1", checker=world.clinician, label_mg=calculated
        )
        form.get_by_role("button", name="Record administration").click()
        refused = chair.locator("form.adm-form")
        expect(refused).to_contain_text(
            f"the pharmacy verified a banded dose of {_mg(banded)} mg "
            f"(calculated {_mg(calculated)} mg): the bag must be the banded one"
        )
        screenshot(chair, "banding-03-calculated-label-refused")
        assert not Administration.objects.filter(cycle=cycle).exists()

        # The checker's password was accepted and is kept while the form is corrected.
        form = chair.locator("form.adm-form")
        form.locator("input[name=label_dose_mg]").fill(str(banded))
        if not form.locator("input[name=checklist]").is_checked():
            form.locator("input[name=checklist]").check()
        form.get_by_role("button", name="Record administration").click()
        percent = (banded - calculated) / calculated * 100
        note = (
            f"{_mg(banded)} mg given (banded from {_mg(calculated)} mg calculated, "
            f"{percent.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP):+}%)"
        )
        dose_cell = chair.locator("table.doses tr.recorded", has_text="Oxaliplatin").locator(
            "td.dose"
        )
        expect(dose_cell).to_contain_text(note)
        expect(chair.locator("body")).to_contain_text(
            f"oxaliplatin {note.replace(' given', '')} recorded for day 1"
        )
        screenshot(chair, "banding-04-banded-dose-recorded")
        recorded = Administration.objects.get(cycle=cycle)
        assert (recorded.dispensed_dose_mg, recorded.dose_mg) == (banded, calculated)
        assert recorded.verified_by == world.clinician
        assert chair.csp_violations == []  # type: ignore[attr-defined]
    finally:
        chair.context.close()
    assert page.csp_violations == []  # type: ignore[attr-defined]


def test_oncologist_delays_cycle_3_twice_and_the_history_shows_both(page: Page, live_server):
    world = folfox_course_ready_for_cycle_2(mrn="MRN-B-0002")
    patient, course = world.patient, world.course
    cycle = course.cycles.get(number=3)
    start = cycle.planned_start
    base = f"{live_server.url}/patients/{patient.pk}/courses/{course.pk}"
    reasons = ("ANC 1.1 at the nadir visit: neutropenia", "Patient's request: family wedding")

    log_in(page, live_server, world.clinician)
    page.goto(f"{base}/cycles/3/")
    expect(page.locator("#status-history")).to_contain_text("Not given, delayed, held")
    history = page.locator("#status-history table.status-history tbody tr")
    for done, (days, reason) in enumerate(zip((7, 3), reasons, strict=True), start=1):
        delay = page.locator("form", has=page.get_by_role("heading", name="Delay"))
        delay.locator("input[name=days]").fill(str(days))
        delay.locator("textarea[name=reason]").fill(reason)
        delay.get_by_role("button", name="Delay").click()
        # The page reloads after the delay (HX-Redirect): its History has one more row.
        expect(history).to_have_count(done)
        expect(page.locator("ul.messages")).to_contain_text("Cycle 3 delayed")
        expect(page.locator("h1")).to_contain_text("Delayed")
    screenshot(page, "history-01-after-the-second-delay")
    cycle.refresh_from_db()
    assert cycle.status == ChemoCycle.Status.DELAYED
    assert cycle.planned_start == start + dt.timedelta(days=10)
    assert list(CycleStatusChange.objects.filter(cycle=cycle).values_list("reason", flat=True)) == [
        reasons[1],
        reasons[0],
    ]

    page.goto(f"{base}/cycles/3/")
    rows = page.locator("#status-history table.status-history tbody tr")
    expect(rows).to_have_count(2)
    middle = start + dt.timedelta(days=7)
    end = start + dt.timedelta(days=10)
    expect(rows.nth(0)).to_contain_text("Delayed 3 days")
    expect(rows.nth(0)).to_contain_text(reasons[1])
    expect(rows.nth(0)).to_contain_text(f"{middle.day} {middle:%b}")
    expect(rows.nth(0)).to_contain_text(f"{end.day} {end:%b %Y}")
    expect(rows.nth(1)).to_contain_text("Delayed 7 days")
    expect(rows.nth(1)).to_contain_text(reasons[0])
    expect(rows.nth(1)).to_contain_text(f"{start.day} {start:%b}")
    for row in (rows.nth(0), rows.nth(1)):
        expect(row).to_contain_text("Ines Moreau")
    screenshot(page, "history-02-cycle-page-history")

    page.goto(f"{base}/")
    line = page.locator("table.cycles tbody tr", has_text="Cycle 3")
    expect(line.locator(".delay-count")).to_have_text("delayed twice")
    expect(
        page.locator("table.cycles tbody tr", has_text="Cycle 4").locator(".delay-count")
    ).to_have_count(0)
    screenshot(page, "history-03-course-page-delayed-twice")
    assert page.csp_violations == []  # type: ignore[attr-defined]
