"""A form that never reaches the server, or that the server fails on, says so: a reviewer's lab
entry on a dropped connection left the form as it was, with no message, and a nurse could
believe a critical value was recorded. Screenshots go to screenshots/request-error-*.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, Route, expect

from labs.models import LabResult
from tests_browser.conftest import screenshot
from tests_browser.helpers import folfox_course_ready_for_cycle_2, log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_lab_entry_that_fails_to_send_or_on_the_server_says_it_may_not_be_saved(
    page: Page, live_server
):
    world = folfox_course_ready_for_cycle_2(mrn="MRN-E-0001")
    before = LabResult.objects.filter(patient=world.patient).count()
    log_in(page, live_server, world.clinician)
    page.goto(f"{live_server.url}/patients/{world.patient.pk}/labs/")
    banner = page.locator("#request-error")
    expect(banner).to_be_hidden()

    def fill_and_send() -> None:
        entry = page.locator("#lab-entry")
        entry.locator("input[name=value]").fill("1.9")
        entry.locator("input[name=collected_on]").fill("2026-01-05")
        entry.locator("input[name=collected_time]").fill("08:00")
        entry.get_by_role("button", name="Record result").click()

    page.route("**/labs/new/**", lambda route: route.abort("internetdisconnected"))
    fill_and_send()
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("could not be reached, so this may not have been saved")
    screenshot(page, "request-error-offline")

    page.unroute("**/labs/new/**")

    def server_error(route: Route) -> None:
        route.fulfill(status=503, body="Service unavailable")

    page.route("**/labs/new/**", server_error)
    fill_and_send()
    expect(banner).to_contain_text("Not saved: the server could not complete this (error 503)")
    assert LabResult.objects.filter(patient=world.patient).count() == before
