"""A length-limited reason box says how much of it is used (static/js/char-count.js): the
browser stops typing at maxlength without a word, and a reviewer lost the end of a reason
that way."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from tests_browser.conftest import screenshot
from tests_browser.helpers import folfox_course_ready_for_cycle_2, log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_reason_box_counts_its_characters_up_to_the_limit(page: Page, live_server):
    world = folfox_course_ready_for_cycle_2(mrn="MRN-CC-0001")
    log_in(page, live_server, world.clinician)
    page.goto(f"{live_server.url}{reverse('patients:emergency_access_create')}")

    reason = page.locator("textarea#id_reason")  # why the glass is broken: 2,000 at most
    limit = int(reason.get_attribute("maxlength"))
    count = page.locator("#id_reason-char-count")
    expect(count).to_have_text(f"0 of {limit} characters")

    reason.fill("ANC 0.9 on day 1")
    expect(count).to_have_text(f"16 of {limit} characters")
    reason.fill("x" * (limit + 50))  # a pasted note longer than the box keeps
    expect(count).to_have_text(
        f"{limit} of {limit} characters: the limit (anything typed or pasted past it is cut off)"
    )
    expect(count).to_have_attribute("aria-live", "polite")
    screenshot(page, "char-count-01-reason-at-the-limit")
