"""The regimen library as a pharmacist works it: a new version an administrator built waits
for approval; the pharmacist opens it, checks its drugs, and signs with their password (a
wrong one first). Screenshots go to screenshots/regimen-*.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import AdministratorFactory
from tests_browser.conftest import screenshot
from tests_browser.helpers import PASSWORD, clinician, log_in
from treatments.models import Regimen, RegimenApproval
from treatments.regimen_versions import regimen_new_version

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_pharmacist_approves_a_new_regimen_version_with_their_password(page: Page, live_server):
    draft = regimen_new_version(
        regimen=Regimen.objects.get(name="CHOP", version=1), by=AdministratorFactory.create()
    )
    pharmacist = clinician(
        "pharm.library", discipline=User.Discipline.PHARMACIST, last_name="Library"
    )

    log_in(page, live_server, pharmacist)
    page.get_by_role("link", name="Regimens").click()
    awaiting = page.get_by_role("region", name="Awaiting approval")
    expect(awaiting).to_contain_text("CHOP v2")
    awaiting.get_by_role("link", name="CHOP v2").click()
    expect(page.locator("h1")).to_contain_text("CHOP v2")
    expect(page.locator("main")).to_contain_text("vincristine")

    page.check("#approve_checked")
    page.fill("#approve_password", "not-my-password")
    page.get_by_role("button", name="Approve as pharmacist").click()
    expect(page.locator("#approval")).to_contain_text("Your password was not accepted")
    assert not RegimenApproval.objects.exists()

    page.check("#approve_checked")
    page.fill("#approve_note", "Doses checked against the published regimen")
    page.fill("#approve_password", PASSWORD)
    page.get_by_role("button", name="Approve as pharmacist").click()
    expect(page.locator(".messages")).to_contain_text("Your approval of CHOP v2 is recorded")
    expect(page.locator("#approval")).to_contain_text("it awaits the oncologist")
    screenshot(page, "regimen-approved-by-pharmacist")
    approval = RegimenApproval.objects.get(regimen=draft)
    assert (approval.approved_by, approval.discipline) == (pharmacist, "pharmacist")
