"""Issue 6: a critical result reaches the care team's open inbox without a reload.

Three clinicians, each in their own browser context and signed in with password and TOTP: A
and B are on the patient's care team, C is not. B and C have the critical-result inbox open
(it listens to /stream/changes/); A records ANC 0.3 (critical low, < 0.5) through the lab entry
form. B's inbox shows it within seconds, in the same page; C's stream delivers nothing and C's
inbox never refetches. A note B is typing in the inbox survives the next live refresh."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Request, expect

from labs.models import LabResult, LabTest
from patients.services import care_team_create
from tests_browser.conftest import screenshot
from tests_browser.helpers import (
    ANC,
    clinician,
    enter_lab_result,
    log_in,
    new_page,
    team_patient,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

ARRIVES_WITHIN_MS = 10_000


@pytest.fixture
def pages(browser: Browser) -> Iterator[list[Page]]:
    opened: list[Page] = []

    def open_page() -> Page:
        opened.append(new_page(browser))
        return opened[-1]

    yield open_page  # type: ignore[misc]
    for page in opened:
        page.context.close()


@pytest.fixture(autouse=True)
def _short_streams(settings):
    # Streams end (and the browser reconnects with Last-Event-ID) well within the test, so no
    # server thread outlives it by minutes.
    settings.LIVE_STREAM_MAX_SECONDS = 30
    settings.LIVE_STREAM_WAIT_SECONDS = 1


def _open_inbox(page: Page, live_server) -> None:
    """Open the inbox and wait until its stream is connected (a new stream hears only what
    happens after it opens)."""
    with page.expect_response(lambda r: "/stream/changes/" in r.url and r.status == 200):
        page.goto(f"{live_server.url}/inbox/")
    expect(page.locator("#inbox-list")).to_contain_text("Nothing waiting")
    # Marks this document: if the page reloaded, the mark would be gone.
    page.evaluate("() => { document.body.dataset.sameDocument = 'yes'; }")


def _inbox_refetches(page: Page) -> list[str]:
    seen: list[str] = []

    def on_request(request: Request) -> None:
        if request.url.split("?")[0].endswith("/inbox/") and request.headers.get("hx-request"):
            seen.append(request.url)

    page.on("request", on_request)
    return seen


def test_critical_lab_reaches_the_care_teams_open_inbox_but_not_an_outsiders(pages, live_server):
    team = care_team_create(name="GI oncology (live browser)")
    alpha = clinician("dr.alpha", team=team, first_name="Ana", last_name="Alves")
    bravo = clinician("dr.bravo", team=team, first_name="Bea", last_name="Brandt")
    charlie = clinician("dr.charlie", first_name="Carl", last_name="Castro")  # no care team
    patient = team_patient(team, mrn="MRN-L-0001", family_name="Livefeed")

    page_a, page_b, page_c = pages(), pages(), pages()
    log_in(page_a, live_server, alpha)
    log_in(page_b, live_server, bravo)
    log_in(page_c, live_server, charlie)

    _open_inbox(page_b, live_server)
    _open_inbox(page_c, live_server)
    charlie_refetches = _inbox_refetches(page_c)
    screenshot(page_b, "live-inbox-b-before")

    page_a.goto(f"{live_server.url}/patients/{patient.pk}/labs/")
    enter_lab_result(page_a, test=LabTest.objects.get(loinc=ANC), value="0.3")
    result = LabResult.objects.get(patient=patient)
    assert result.is_critical
    assert result.flag == "LL"
    screenshot(page_a, "live-inbox-a-recorded")

    # B: the critical result appears in the open inbox, same document, no reload.
    item = page_b.locator(f"#inbox-lab-{result.pk}")
    expect(item).to_be_visible(timeout=ARRIVES_WITHIN_MS)
    expect(item).to_contain_text("MRN-L-0001")
    expect(item).to_contain_text("Critical lab")
    expect(item).to_contain_text("ANC")
    assert page_b.evaluate("() => document.body.dataset.sameDocument") == "yes"
    screenshot(page_b, "live-inbox-b-after")

    # C: B has had it for a moment, and C's stream was open all along: nothing arrived.
    page_c.wait_for_timeout(1500)
    assert charlie_refetches == []
    expect(page_c.locator("#inbox-list")).to_contain_text("Nothing waiting")
    assert "MRN-L-0001" not in page_c.inner_text("body")
    assert page_c.evaluate("() => document.body.dataset.sameDocument") == "yes"
    screenshot(page_c, "live-inbox-c-outsider")

    # B starts writing what was done about the first result; while the note is half typed a
    # second critical result arrives and the list refreshes itself: the note, and the cursor
    # in it, must survive the refresh.
    note = page_b.locator(f"#note-inbox-lab-{result.pk}")
    note.click()
    note.type("Called patient, repeat ANC tomor")
    enter_lab_result(page_a, test=LabTest.objects.get(loinc=ANC), value="0.2", minutes_ago=2)
    second = LabResult.objects.filter(patient=patient).exclude(pk=result.pk).get()
    expect(page_b.locator(f"#inbox-lab-{second.pk}")).to_be_visible(timeout=ARRIVES_WITHIN_MS)
    expect(note).to_have_value("Called patient, repeat ANC tomor")
    expect(note).to_be_focused()
    note.type("row")  # keeps typing where it was
    expect(note).to_have_value("Called patient, repeat ANC tomorrow")
    screenshot(page_b, "live-inbox-b-note-kept")

    for who, page in (("A", page_a), ("B", page_b), ("C", page_c)):
        assert page.csp_violations == [], f"{who}: {page.csp_violations}"  # type: ignore[attr-defined]
