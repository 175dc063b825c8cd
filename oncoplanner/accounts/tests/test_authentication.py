"""Login throttling, enumeration, admin's door, password reset/change, Argon2 (SECURITY.md #9)."""

from __future__ import annotations

import importlib
import re
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
import time_machine
from django.contrib.auth.hashers import Argon2PasswordHasher, check_password
from django.core import mail
from django.test import override_settings
from django.urls import reverse

from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.conftest import (
    MISMATCH,
    PASSWORD,
    code_step,
    form_errors,
    password_login,
    totp_code,
)
from oncoplanner.accounts.tests.factories import (
    AdministratorFactory,
    ClinicianFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ARGON2 = "django.contrib.auth.hashers.Argon2PasswordHasher"
NOON = datetime(2026, 3, 2, 12, 0, 5, tzinfo=UTC)


def _fail_five_times(client, username: str) -> None:
    for _ in range(5):
        response = password_login(client, username, password="wrong-password-123")
        assert response.status_code == 200


def test_login_unknown_user_wrong_password_and_locked_account_get_one_answer(client) -> None:
    known = UserFactory.create(username="maria")
    locked = UserFactory.create(username="joseph")
    _fail_five_times(client, locked.username)

    unknown = password_login(client, "nobody-by-this-name", password="wrong-password-123")
    wrong = password_login(client, known.username, password="wrong-password-123")
    # The locked account is tried with its *correct* password: still the same answer.
    locked_try = password_login(client, locked.username, password=PASSWORD)

    answers = {(r.status_code, tuple(form_errors(r))) for r in (unknown, wrong, locked_try)}
    assert answers == {(200, (MISMATCH,))}
    assert not client.session.get("_auth_user_id")


def test_login_locks_after_five_failures(client) -> None:
    patient_user = UserFactory.create()
    for _ in range(4):
        password_login(client, patient_user.username, password="wrong-password-123")
    # Four failures: the right password still works.
    assert password_login(client, patient_user.username).status_code == 302
    client.post(reverse("account_logout"))
    # Success reset the counter; five more failures lock.
    _fail_five_times(client, patient_user.username)
    response = password_login(client, patient_user.username)
    assert response.status_code == 200
    assert form_errors(response) == [MISMATCH]


def test_login_lock_clears_itself_within_fifteen_minutes(client) -> None:
    patient_user = UserFactory.create()
    with time_machine.travel(NOON, tick=False) as traveller:
        _fail_five_times(client, patient_user.username)
        traveller.shift(timedelta(minutes=14, seconds=50))
        assert password_login(client, patient_user.username).status_code == 200
        traveller.shift(timedelta(seconds=15))
        assert password_login(client, patient_user.username).status_code == 302


def test_login_attempts_during_a_lock_do_not_extend_it(client) -> None:
    patient_user = UserFactory.create()
    with time_machine.travel(NOON, tick=False) as traveller:
        _fail_five_times(client, patient_user.username)
        for _ in range(5):
            traveller.shift(timedelta(minutes=2))
            password_login(client, patient_user.username, password="wrong-password-123")
        traveller.shift(timedelta(minutes=5, seconds=5))  # 15 min 5 s after the lock
        assert password_login(client, patient_user.username).status_code == 302


def test_login_case_variants_share_one_lock(client) -> None:
    UserFactory.create(username="grace")
    for spelling in ("grace", "Grace", "GRACE", "gRace", "graCE"):
        password_login(client, spelling, password="wrong-password-123")
    assert password_login(client, "grace").status_code == 200


@override_settings(PASSWORD_HASHERS=[ARGON2])
def test_login_locked_attempt_does_not_run_the_password_hasher(client) -> None:
    patient_user = UserFactory.create()
    assert patient_user.password.startswith("argon2$")
    _fail_five_times(client, patient_user.username)
    with (
        mock.patch.object(Argon2PasswordHasher, "verify", autospec=True) as verify,
        mock.patch.object(Argon2PasswordHasher, "encode", autospec=True) as encode,
    ):
        response = password_login(client, patient_user.username)
    assert response.status_code == 200
    verify.assert_not_called()
    encode.assert_not_called()


@override_settings(PASSWORD_HASHERS=[ARGON2])
def test_login_unlocked_attempt_does_run_the_password_hasher(client) -> None:
    patient_user = UserFactory.create()
    with mock.patch.object(
        Argon2PasswordHasher, "verify", autospec=True, side_effect=lambda *a: False
    ) as verify:
        password_login(client, patient_user.username)
    verify.assert_called()


def test_admin_login_form_redirects_to_allauth_login(client) -> None:
    response = client.get("/admin/login/?next=/admin/auth/group/")
    assert response.status_code == 302
    assert response["Location"] == reverse("account_login") + "?next=/admin/auth/group/"


def test_admin_login_post_is_not_a_way_in(client) -> None:
    administrator = AdministratorFactory.create()
    response = client.post(
        "/admin/login/", {"username": administrator.username, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


def test_admin_login_for_a_logged_in_non_staff_user_does_not_loop(client) -> None:
    clinician = ClinicianFactory.create()
    with time_machine.travel(NOON, tick=False):
        password_login(client, clinician.username)
        code_step(client, totp_code(clinician.totp_secret))
        response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0] == reverse("home")


def test_admin_login_failures_are_throttled_by_the_same_lock(client) -> None:
    administrator = AdministratorFactory.create()
    _fail_five_times(client, administrator.username)
    response = client.get("/admin/", follow=True)
    assert response.request["PATH_INFO"] == reverse("account_login")
    login = password_login(client, administrator.username)
    assert login.status_code == 200
    assert form_errors(login) == [MISMATCH]


def test_signup_is_closed(client) -> None:
    response = client.post(
        reverse("account_signup"),
        {
            "username": "intruder",
            "password1": "a-long-password-99",
            "password2": "a-long-password-99",
        },
    )
    assert response.status_code == 200
    assert "Sign Up Closed" in response.content.decode()
    assert not User.objects.filter(username="intruder").exists()


def test_password_reset_sends_mail_to_an_existing_user(client) -> None:
    UserFactory.create(email="ana@example.org")
    response = client.post(reverse("account_reset_password"), {"email": "ana@example.org"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ana@example.org"]
    assert "/accounts/password/reset/key/" in mail.outbox[0].body


def test_password_reset_answers_an_unknown_address_identically(client) -> None:
    UserFactory.create(email="ana@example.org")
    known = client.post(reverse("account_reset_password"), {"email": "ana@example.org"})
    unknown = client.post(reverse("account_reset_password"), {"email": "ghost@example.org"})
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert len(mail.outbox) == 1  # nothing sent to the unknown address


def test_password_reset_from_the_mailed_link_sets_a_new_password(client) -> None:
    user = UserFactory.create(email="ana@example.org")
    client.post(reverse("account_reset_password"), {"email": "ana@example.org"})
    link = re.search(r"http://testserver(\S+)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    new_password = "Lindisfarne-gospels-1984"
    response = client.post(
        form_page.request["PATH_INFO"], {"password1": new_password, "password2": new_password}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert check_password(new_password, user.password)


def test_password_change_applies_the_validators(client) -> None:
    patient_user = UserFactory.create()
    password_login(client, patient_user.username)
    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": "short", "password2": "short"},
    )
    assert response.status_code == 200
    patient_user.refresh_from_db()
    assert check_password(PASSWORD, patient_user.password)


def test_production_settings_hash_with_argon2() -> None:
    production = importlib.import_module("oncoplanner.settings")
    assert production.PASSWORD_HASHERS[0] == ARGON2
    assert production.AXES_FAILURE_LIMIT == 5
    assert production.AXES_COOLOFF_TIME * 60 == 15
    assert production.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"


@override_settings(PASSWORD_HASHERS=[ARGON2])
def test_new_passwords_are_stored_as_argon2() -> None:
    user = UserFactory.create()
    assert user.password.startswith("argon2$argon2id$")


@pytest.mark.parametrize(
    "url_name",
    ["account_login", "account_reset_password", "account_change_password", "mfa_activate_totp"],
)
def test_account_pages_render_under_base_without_inline_scripts(client, url_name) -> None:
    patient_user = UserFactory.create()
    if url_name in {"account_change_password", "mfa_activate_totp"}:
        password_login(client, patient_user.username)
    response = client.get(reverse(url_name))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="main"' in html  # the site layout, not allauth's bare one
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
