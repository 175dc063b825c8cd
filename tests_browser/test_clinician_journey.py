"""A clinician signs in with password and TOTP, finds a patient and opens the chart; a patient
outside the care team never appears; after logout nothing of the chart stays in the browser."""

from __future__ import annotations

import pytest

from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import ClinicianFactory
from patients.services import care_team_add_member, care_team_create
from tests_browser.conftest import screenshot
from tests_browser.helpers import log_in, team_patient

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def clinician_with_patient() -> User:
    team = care_team_create(name="GI oncology (browser)")
    clinician = ClinicianFactory.create(username="dr.browser")
    care_team_add_member(team=team, clinician=clinician, granted_by=None)
    team_patient(team, mrn="MRN-B-0001", family_name="Visible")
    team_patient(None, mrn="MRN-B-0002", family_name="Hiddenmarker")
    return clinician


def test_clinician_signs_in_with_totp_and_opens_a_care_team_chart(
    page, live_server, clinician_with_patient
):
    clinician = clinician_with_patient
    log_in(page, live_server, clinician, on_code_page=lambda p: screenshot(p, "mfa-code"))
    assert page.url.rstrip("/") == live_server.url
    screenshot(page, "home-clinician")
    page.get_by_role("link", name="All my patients").click()
    page.wait_for_load_state("networkidle")
    body = page.inner_text("body")
    assert "MRN-B-0001" in body
    assert "Hiddenmarker".upper() not in body.upper()

    page.get_by_role("link", name="VISIBLE, Ana").click()
    page.wait_for_load_state("networkidle")
    assert "/patients/" in page.url
    assert "MRN-B-0001" in page.inner_text("main")
    screenshot(page, "patient-detail")
    assert page.csp_violations == []  # type: ignore[attr-defined]


def test_logout_leaves_no_patient_data_in_browser_storage(
    page, live_server, clinician_with_patient
):
    log_in(page, live_server, clinician_with_patient)
    page.goto(f"{live_server.url}/")
    page.click("text=Log out")
    page.wait_for_load_state("networkidle")
    storage = page.evaluate(
        "() => JSON.stringify({local: Object.assign({}, localStorage), session: Object.assign({}, sessionStorage)})"
    )
    assert "MRN-B" not in storage
    assert "Visible" not in storage
    page.go_back()
    page.wait_for_load_state("networkidle")
    assert "MRN-B-0001" not in page.content()
