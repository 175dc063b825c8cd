"""The infusion chair, as a nurse works it: the pharmacist has verified cycle 2's doses; the
nurse records oxaliplatin with the second checker typing their own password and the dose read
off the bag; a cycle changed in another tab is refused with a message on the page, not
silently. Screenshots go to screenshots/chair-*.png."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from oncoplanner.accounts.models import User
from patients.services import patient_no_known_allergies_record
from tests_browser.conftest import screenshot
from tests_browser.helpers import (
    clinician,
    fill_administration_form,
    folfox_course_ready_for_cycle_2,
    log_in,
)
from treatments.models import Administration, ChemoCycle, RegimenDrug
from treatments.services import cycle_doses_verify, cycle_give, cycle_hold

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_nurse_records_a_verified_dose_with_a_co_signed_check_and_sees_a_stale_tab_refused(
    page: Page, live_server
):
    world = folfox_course_ready_for_cycle_2(mrn="MRN-C-0001")
    patient, course = world.patient, world.course
    nurse = clinician(
        "nurse.chair", team=world.team, discipline=User.Discipline.NURSE, last_name="Chair"
    )
    pharmacist = clinician(
        "pharm.chair", team=world.team, discipline=User.Discipline.PHARMACIST, last_name="Rx"
    )
    cycle = cycle_give(
        cycle=course.cycles.get(number=2), actual_start=timezone.localdate(), given_by=nurse
    )
    patient_no_known_allergies_record(patient=patient, recorded_by=pharmacist)
    verification = cycle_doses_verify(cycle=cycle, by=pharmacist)
    oxaliplatin = RegimenDrug.objects.get(
        phase__regimen=course.regimen, drug__name__iexact="oxaliplatin"
    )
    dose = verification.dose_for(oxaliplatin.pk, 1)
    base = f"{live_server.url}/patients/{patient.pk}/courses/{course.pk}/cycles"

    log_in(page, live_server, nurse)
    page.goto(f"{base}/2/")
    expect(page.locator("#pharmacy-verification")).to_contain_text("Pharmacy verified")
    form = fill_administration_form(
        page, dose_key=f"{oxaliplatin.pk}:1", checker=world.clinician, label_mg=dose
    )
    screenshot(page, "chair-01-record-administration")
    form.get_by_role("button", name="Record administration").click()
    expect(page.locator("body")).to_contain_text(f"verified by {world.clinician}")
    recorded = Administration.objects.get(cycle=cycle)
    assert (recorded.dose_mg, recorded.verified_by) == (dose, world.clinician)
    screenshot(page, "chair-02-recorded")

    # A second tab: cycle 3 is held by the oncologist after this page was opened.
    page.goto(f"{base}/3/")
    cycle_hold(cycle=course.cycles.get(number=3), reason="Await echo", by=world.clinician)
    delay = page.locator("form", has=page.get_by_role("heading", name="Delay"))
    delay.locator("input[name=days]").fill("2")
    delay.locator("textarea[name=reason]").fill("Chair availability")
    delay.get_by_role("button", name="Delay").click()
    expect(page.locator("#cycle-actions")).to_contain_text("changed after this page was opened")
    screenshot(page, "chair-03-stale-tab-refused")
    assert course.cycles.get(number=3).status == ChemoCycle.Status.HELD
