"""Starting a course past several warnings, as an oncologist does it in the browser: a start
date two months back, a recorded paclitaxel allergy and an open mFOLFOX6 course are asked
together after one press of "Start course", each warning beside its own tick; ticking all three
with a reason starts the course, and the course page keeps every warning that was confirmed.
Screenshot: screenshots/course-start-warnings.png."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from patients.services import allergy_record
from tests_browser.conftest import screenshot
from tests_browser.helpers import folfox_course_ready_for_cycle_2, log_in
from treatments.models import Course

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_every_warning_is_asked_at_once_and_kept_on_the_course(page: Page, live_server):
    world = folfox_course_ready_for_cycle_2(mrn="MRN-CW-0001")
    patient, doctor = world.patient, world.clinician
    allergy_record(
        patient=patient,
        substance="Paclitaxel",
        reaction="Anaphylaxis",
        severity="severe",
        recorded_by=doctor,
    )
    start = timezone.localdate() - dt.timedelta(days=60)

    log_in(page, live_server, doctor)
    page.goto(f"{live_server.url}/patients/{patient.pk}/courses/new/")
    page.get_by_label("Regimen").select_option(
        label="Dose-dense AC-T v1: AC q14d x 4 then T q14d x 4"
    )
    page.get_by_label("Start date").fill(start.isoformat())
    page.get_by_label("Intent").select_option("adjuvant")
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="Start course").click()

    asked = page.locator("#course-confirmations")
    expect(asked).to_be_visible()
    expect(asked.locator("input[type=checkbox]")).to_have_count(3)
    expect(asked).to_contain_text("60 days ago")
    expect(asked).to_contain_text("Recorded allergy: Paclitaxel (severe: Anaphylaxis)")
    expect(asked).to_contain_text("already has an open course: mFOLFOX6")
    screenshot(page, "course-start-warnings")
    assert not Course.objects.filter(patient=patient, regimen__name="Dose-dense AC-T").exists()

    page.get_by_label("The course really began on this date").check()
    page.get_by_label("Plan it despite the recorded allergy").check()
    page.get_by_label("Start it beside the open course").check()
    page.get_by_label("Why (kept on the course)").fill(
        "Paclitaxel under the desensitisation protocol; FOLFOX stops after this cycle."
    )
    page.wait_for_load_state("networkidle")  # each tick refreshes the preview (hx-get)
    page.get_by_role("button", name="Start course").click()

    expect(page.get_by_role("heading", name="Dose-dense AC-T v1", exact=True)).to_be_visible()
    course = Course.objects.get(patient=patient, regimen__name="Dose-dense AC-T")
    assert course.start_date == start
    assert len(course.confirmed_warnings) == 4  # the three warnings and the reason given
    for words in ("60 days ago", "Paclitaxel (severe: Anaphylaxis)", "desensitisation"):
        expect(page.locator("body")).to_contain_text(words)
