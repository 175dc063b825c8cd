"""TOTP for clinicians and administrators (SECURITY.md #11): 0 staff logins without it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY
from django.urls import reverse

from oncoplanner.accounts.mfa import has_totp
from oncoplanner.accounts.tests.conftest import (
    PASSWORD,
    code_step,
    password_login,
    totp_code,
)
from oncoplanner.accounts.tests.factories import (
    AdministratorFactory,
    ClinicianFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 3, 2, 12, 0, 5, tzinfo=UTC)


def _login_with_code(client, user, at=NOON):
    password_login(client, user.username)
    return code_step(client, totp_code(user.totp_secret, at.timestamp()))


def test_mfa_clinician_without_totp_is_sent_to_enrolment_from_every_page(client) -> None:
    clinician = ClinicianFactory.create(totp=False)
    response = password_login(client, clinician.username)
    assert response.status_code == 302
    for path in ("/", "/admin/", reverse("account_change_password")):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == reverse("mfa_activate_totp"), path


def test_mfa_administrator_without_totp_cannot_reach_admin(client) -> None:
    administrator = AdministratorFactory.create(totp=False)
    password_login(client, administrator.username)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")


def test_mfa_staff_flag_alone_requires_totp(client) -> None:
    staff_patient_role = UserFactory.create(is_staff=True, totp=False)
    password_login(client, staff_patient_role.username)
    assert client.get("/")["Location"] == reverse("mfa_activate_totp")


def test_mfa_enrolment_shows_qr_then_recovery_codes_then_home(client) -> None:
    clinician = ClinicianFactory.create(totp=False)
    with time_machine.travel(NOON, tick=False):
        password_login(client, clinician.username)
        page = client.get(reverse("mfa_activate_totp"))
        assert page.status_code == 200
        html = page.content.decode()
        assert 'src="data:image/svg+xml;base64,' in html
        assert "img-src 'self' data:" in page["Content-Security-Policy"]
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script on a page"
        secret = client.session[SECRET_SESSION_KEY]
        response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
        assert response.status_code == 302
        assert response["Location"] == reverse("mfa_view_recovery_codes")
        assert has_totp(clinician)
        codes_page = client.get(reverse("mfa_view_recovery_codes"))
        assert codes_page.status_code == 200
        assert len(re.findall(r"\b\d{8}\b", codes_page.content.decode())) == 10
        assert client.get("/").status_code == 200


def test_mfa_enrolment_rejects_a_wrong_code(client) -> None:
    clinician = ClinicianFactory.create(totp=False)
    password_login(client, clinician.username)
    client.get(reverse("mfa_activate_totp"))
    response = client.post(reverse("mfa_activate_totp"), {"code": "000000"})
    assert response.status_code == 200
    assert not has_totp(clinician)


def test_mfa_password_alone_does_not_log_in_an_enrolled_clinician(client) -> None:
    clinician = ClinicianFactory.create()
    response = password_login(client, clinician.username)
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    for path in ("/", "/admin/"):
        response = client.get(path, follow=True)
        chain = [url for url, _ in response.redirect_chain]
        assert any(url.startswith(reverse("account_login")) for url in chain), path
        # allauth sends a pending login on to its code step; still nobody is logged in.
        assert chain[-1] == reverse("mfa_authenticate")
        assert not response.context["user"].is_authenticated


def test_mfa_valid_code_opens_home_and_admin(client) -> None:
    administrator = AdministratorFactory.create()
    with time_machine.travel(NOON, tick=False):
        response = _login_with_code(client, administrator)
        assert response.status_code == 302
        assert response["Location"] == reverse("home")
        assert client.get("/").status_code == 200
        assert client.get("/admin/").status_code == 200


def test_mfa_code_replay_is_refused(client) -> None:
    clinician = ClinicianFactory.create()
    with time_machine.travel(NOON, tick=False):
        code = totp_code(clinician.totp_secret)
        password_login(client, clinician.username)
        assert code_step(client, code).status_code == 302
        client.post(reverse("account_logout"))
        password_login(client, clinician.username)
        replay = code_step(client, code)
    assert replay.status_code == 200
    assert "Incorrect code." in replay.content.decode()
    assert client.get("/").status_code == 302


def test_mfa_code_from_another_time_step_is_refused(client) -> None:
    clinician = ClinicianFactory.create()
    with time_machine.travel(NOON, tick=False):
        password_login(client, clinician.username)
        stale = totp_code(clinician.totp_secret, (NOON - timedelta(minutes=2)).timestamp())
        response = code_step(client, stale)
    assert response.status_code == 200
    assert client.get("/").status_code == 302


def test_mfa_wrong_codes_lock_the_account(client) -> None:
    clinician = ClinicianFactory.create()
    with time_machine.travel(NOON, tick=False):
        password_login(client, clinician.username)
        for _ in range(5):
            assert code_step(client, "000000").status_code == 200
        # Locked: even the right code is refused, with the ordinary error...
        refused = code_step(client, totp_code(clinician.totp_secret))
        assert refused.status_code == 200
        assert "Incorrect code." in refused.content.decode()
        assert client.get("/").status_code == 302
        # ...and so is a fresh password login.
        client.post(reverse("account_logout"))
        again = password_login(client, clinician.username)
        assert again.status_code == 200
    with time_machine.travel(NOON + timedelta(minutes=16), tick=False):
        response = _login_with_code(client, clinician, at=NOON + timedelta(minutes=16))
        assert response.status_code == 302
        assert client.get("/").status_code == 200


def test_mfa_recovery_code_logs_in_once(client) -> None:
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes

    clinician = ClinicianFactory.create()
    code = RecoveryCodes.activate(clinician).get_unused_codes()[0]
    password_login(client, clinician.username)
    assert code_step(client, code).status_code == 302
    client.post(reverse("account_logout"))
    password_login(client, clinician.username)
    assert code_step(client, code).status_code == 200


def test_mfa_patient_is_not_made_to_enrol_but_may(client) -> None:
    patient_user = UserFactory.create()
    password_login(client, patient_user.username)
    assert client.get("/").status_code == 200
    assert client.get(reverse("mfa_activate_totp")).status_code == 200


def test_mfa_clinician_cannot_switch_totp_off(client) -> None:
    clinician = ClinicianFactory.create()
    with time_machine.travel(NOON, tick=False):
        _login_with_code(client, clinician)
        response = client.post(reverse("mfa_deactivate_totp"))
    assert response.status_code == 200
    assert Authenticator.objects.filter(user=clinician, type="totp").exists()


def test_mfa_htmx_request_is_sent_to_enrolment_with_hx_redirect(client) -> None:
    clinician = ClinicianFactory.create(totp=False)
    password_login(client, clinician.username)
    response = client.get("/", headers={"HX-Request": "true"})
    assert response["HX-Redirect"] == reverse("mfa_activate_totp")


def test_mfa_password_still_required_on_the_form(client) -> None:
    clinician = ClinicianFactory.create()
    response = password_login(client, clinician.username, password=PASSWORD + "x")
    assert response.status_code == 200
    assert client.get(reverse("mfa_authenticate")).status_code == 302
