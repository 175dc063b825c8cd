"""One clinician's working session, as it is done at the clinic (issue 4): sign in with password
and TOTP, find the patient by MRN, read readiness for the cycle due today, give it, record the
nausea the patient mentions, then enter the nadir ANC and see the chart and readiness change.

The order follows the clinic day: cycle 2 is given while readiness says treat; the low ANC
(1.2, mid-cycle) then makes readiness for cycle 3 say delay. Screenshots of every main page go
to screenshots/workflow-*.png."""

from __future__ import annotations

import re
import time

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from labs.models import LabTest
from tests_browser.conftest import screenshot
from tests_browser.helpers import (
    ANC,
    enter_lab_result,
    folfox_course_ready_for_cycle_2,
    log_in,
    team_patient,
)
from treatments.models import ChemoCycle, SideEffect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

ANC_POINTS = """() => {
  const section = Array.from(document.querySelectorAll('section.analyte'))
    .find((el) => el.querySelector('h2').textContent.trim().startsWith('ANC'));
  const plot = section && section.querySelector('.lab-chart');
  const trace = plot && (plot.data || []).find((t) => t.name === 'ANC');
  return trace ? trace.x.length : -1;
}"""


def _no_csp_violations(page: Page, where: str) -> None:
    assert page.csp_violations == [], f"{where}: {page.csp_violations}"  # type: ignore[attr-defined]


def _anc_points(page: Page, *, wait_for: int | None = None) -> int:
    """Points in the drawn ANC trace, polled (wait_for_function evaluates a string, which the
    CSP rightly refuses)."""
    deadline = time.monotonic() + 5
    points = page.evaluate(ANC_POINTS)
    while time.monotonic() < deadline and (points < 0 or (wait_for and points != wait_for)):
        page.wait_for_timeout(100)
        points = page.evaluate(ANC_POINTS)
    return points


def test_clinician_gives_a_cycle_logs_nausea_and_sees_the_nadir_anc_delay_the_next(
    page: Page, live_server
):
    world = folfox_course_ready_for_cycle_2(mrn="MRN-W-0001")
    team_patient(world.team, mrn="MRN-W-0002", family_name="Otherpatient")
    patient, course = world.patient, world.course
    base = live_server.url

    # Sign in: password, then the authenticator code.
    log_in(page, live_server, world.clinician)
    _no_csp_violations(page, "home")

    # Find the patient on the patient list by MRN (the search filters as one types).
    page.goto(f"{base}/patients/")
    expect(page.locator("#patient-table")).to_contain_text("OTHERPATIENT")
    page.fill("input[name=q]", "MRN-W-0001")
    expect(page.locator("#patient-table")).not_to_contain_text("OTHERPATIENT")
    expect(page.locator("#patient-table")).to_contain_text("MRN-W-0001")
    screenshot(page, "workflow-01-patient-list")
    _no_csp_violations(page, "patient list")

    # The dashboard: readiness for cycle 2 says treat, from yesterday's labs.
    page.locator("#patient-table").get_by_role("link", name=re.compile("WORKFLOW")).first.click()
    page.wait_for_load_state("networkidle")
    assert page.url.rstrip("/").endswith(f"/patients/{patient.pk}")
    readiness = page.locator("#readiness")
    expect(readiness).to_contain_text("OK to treat at the planned dose")
    expect(readiness).to_contain_text("Cycle 2")
    screenshot(page, "workflow-02-dashboard-ok")
    _no_csp_violations(page, "dashboard")

    # The cycle page: give cycle 2 today with the give form.
    page.goto(f"{base}/patients/{patient.pk}/courses/{course.pk}/cycles/2/")
    expect(page.locator("#cycle-actions #readiness")).to_contain_text("Treat")
    screenshot(page, "workflow-03-cycle-2-before")
    give = page.locator("form.action-give")
    give.locator("input[name=actual_start]").fill(timezone.localdate().isoformat())
    give.get_by_role("button", name="Give cycle 2").click()
    expect(page.locator("body")).to_contain_text("Cycle 2 given from")
    expect(page.locator("form.action-give")).to_have_count(0)
    assert course.cycles.get(number=2).status == ChemoCycle.Status.GIVEN
    screenshot(page, "workflow-04-cycle-2-given")
    _no_csp_violations(page, "cycle page")

    # The side-effect form: the CTCAE picker finds nausea; grade 2; linked to cycle 2.
    page.goto(f"{base}/patients/{patient.pk}/side-effects/new/")
    page.fill("#ctcae-q", "nausea")
    # The picker first lists the common terms; wait for the search to narrow them.
    expect(page.locator("#term-results")).not_to_contain_text("Alopecia")
    term = page.locator("#term-results button.term", has_text=re.compile(r"^\s*Nausea\b"))
    expect(term.first).to_be_visible()
    term.first.click()
    grades = page.locator("#grades")
    expect(grades).to_contain_text("Term: Nausea")
    grades.locator("input[name=grade][value='2']").check()
    page.locator("select[name=cycle]").select_option(value=str(course.cycles.get(number=2).pk))
    screenshot(page, "workflow-05-side-effect-form")
    _no_csp_violations(page, "side-effect form")
    page.get_by_role("button", name="Record side effect").click()
    page.wait_for_load_state("networkidle")
    expect(page.locator("#side-effects")).to_contain_text("Nausea")
    expect(page.locator("#side-effects")).to_contain_text("Grade 2")
    nausea = SideEffect.objects.get(patient=patient)
    assert (nausea.term.term, nausea.grade, nausea.cycle.number) == ("Nausea", 2, 2)

    # The lab trends page: record the nadir ANC 1.2; the ANC chart gains a point.
    page.goto(f"{base}/patients/{patient.pk}/labs/")
    page.wait_for_load_state("networkidle")
    screenshot(page, "workflow-06-lab-trends-before")
    before = _anc_points(page)
    assert before == 2  # 3.6 before cycle 1, 2.4 yesterday
    _no_csp_violations(page, "lab trends on load")
    enter_lab_result(page, test=LabTest.objects.get(loinc=ANC), value="1.2")
    assert _anc_points(page, wait_for=before + 1) == before + 1
    expect(page.locator("#lab-workspace")).to_contain_text("1.2")
    screenshot(page, "workflow-06-lab-trends-after")
    _no_csp_violations(page, "lab trends")

    # Back on the dashboard: cycle 3 is two weeks away, so readiness is judged for its day:
    # today's nadir ANC will be too old by then, and the pre-cycle bloods are due.
    page.goto(f"{base}/patients/{patient.pk}/")
    readiness = page.locator("#readiness")
    expect(readiness).to_contain_text("Labs due")
    expect(readiness).to_contain_text("Cycle 3")
    expect(readiness.locator("tr", has_text="ANC")).to_contain_text("1.2 ×10³/µL")
    expect(readiness.locator("tr", has_text="ANC")).to_contain_text("Too old by the cycle day")
    expect(readiness).not_to_contain_text("OK to treat at the planned dose")
    screenshot(page, "workflow-07-dashboard-labs-due")
    _no_csp_violations(page, "dashboard after")
