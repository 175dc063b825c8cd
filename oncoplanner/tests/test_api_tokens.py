"""Personal API tokens: created on /accounts/api-tokens/ (shown once) or in admin, stored as a
SHA-256 hash, expiring within 90 days, revoked by owner or administrator; every dead token is
the same 401."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from audit.models import AccessLog
from oncoplanner.accounts.api_tokens import (
    INVALID_TOKEN_MESSAGE,
    api_token_create,
    api_token_revoke,
)
from oncoplanner.accounts.models import ApiToken, User
from oncoplanner.accounts.tests.factories import ClinicianFactory, sign_in
from patients.models import Patient

pytestmark = pytest.mark.django_db


def _login(user: User) -> Client:
    return sign_in(Client(), user)


def _bearer(raw: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {raw}"})


def _create(user: User, days: int = 30) -> tuple[ApiToken, str]:
    return api_token_create(
        user=user,
        name="ward tablet",
        expires_at=timezone.now() + dt.timedelta(days=days),
        created_by=user,
    )


def test_api_tokens_page_creates_token_shown_once_hash_stored(treating_clinician: User) -> None:
    client = _login(treating_clinician)
    response = client.post("/accounts/api-tokens/", {"name": "ward tablet", "days": "30"})
    assert response.status_code == 200
    raw = response.context["raw_token"]
    assert raw.startswith("op_")
    assert raw in response.content.decode()
    token = ApiToken.objects.get(user=treating_clinician)
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in (token.prefix, token.token_hash, token.name)
    assert raw not in client.get("/accounts/api-tokens/").content.decode()  # never again
    assert _bearer(raw).get("/api/v1/me").json()["username"] == treating_clinician.username


def test_api_tokens_page_bad_input_400_nothing_written(treating_clinician: User) -> None:
    client = _login(treating_clinician)
    for data, field in (
        ({"name": "", "days": "30"}, "name"),
        ({"name": "x", "days": "91"}, "days"),
    ):
        response = client.post("/accounts/api-tokens/", data)
        assert response.status_code == 400
        assert field in response.context["errors"]
    assert ApiToken.objects.count() == 0


def test_api_tokens_page_needs_login_and_mfa_session(db: None) -> None:
    assert Client().get("/accounts/api-tokens/").status_code == 302
    client = Client()
    client.force_login(ClinicianFactory.create(totp=False))  # not enrolled in MFA
    response = client.post("/accounts/api-tokens/", {"name": "x", "days": "30"})
    assert response.status_code == 302
    assert ApiToken.objects.count() == 0


def test_api_token_expiry_is_required_and_at_most_90_days(treating_clinician: User) -> None:
    with pytest.raises(ValidationError) as too_long:
        _create(treating_clinician, days=91)
    assert "expires_at" in too_long.value.message_dict
    with pytest.raises(ValidationError):
        _create(treating_clinician, days=-1)


def test_api_token_expired_revoked_unknown_inactive_same_401(treating_clinician: User) -> None:
    expiring, raw_expiring = _create(treating_clinician, days=1)
    revoked, raw_revoked = _create(treating_clinician)
    api_token_revoke(token=revoked, by=treating_clinician)
    other = ClinicianFactory.create()
    _, raw_inactive = _create(other)
    other.is_active = False
    other.save()
    answers = []
    with time_machine.travel(timezone.now() + dt.timedelta(days=2)):
        for raw in (raw_expiring, raw_revoked, "op_" + "x" * 43, raw_inactive, ""):
            response = _bearer(raw).get("/api/v1/me")
            answers.append((response.status_code, response.json()))
    assert answers == [(401, {"detail": INVALID_TOKEN_MESSAGE})] * 4 + [
        (401, {"detail": INVALID_TOKEN_MESSAGE})
    ]
    wrong_scheme = Client(headers={"Authorization": f"Token {raw_expiring}"}).get("/api/v1/me")
    assert wrong_scheme.status_code == 401


def test_api_token_use_sets_last_used_and_logs_as_api(
    treating_clinician: User, patient: Patient
) -> None:
    token, raw = _create(treating_clinician)
    mark = AccessLog.objects.count()
    assert _bearer(raw).get(f"/api/v1/patients/{patient.pk}").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    row = AccessLog.objects.order_by("pk")[mark:].get()
    assert (row.user_id, row.surface, row.action) == (treating_clinician.pk, "api", "read")


def test_api_token_revoke_page_owner_only(treating_clinician: User) -> None:
    token, raw = _create(treating_clinician)
    intruder = _login(ClinicianFactory.create())
    assert intruder.post(f"/accounts/api-tokens/{token.pk}/revoke/").status_code == 404
    owner = _login(treating_clinician)
    assert owner.post(f"/accounts/api-tokens/{token.pk}/revoke/").status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert _bearer(raw).get("/api/v1/me").status_code == 401


def test_api_token_admin_creates_shown_once_and_revokes(
    admin_user: User, treating_clinician: User
) -> None:
    client = _login(admin_user)
    expires = (timezone.localtime() + dt.timedelta(days=10)).replace(microsecond=0)
    response = client.post(
        "/admin/accounts/apitoken/add/",
        {
            "user": treating_clinician.pk,
            "name": "integration",
            "expires_at_0": expires.date().isoformat(),
            "expires_at_1": expires.time().isoformat(),
        },
        follow=True,
    )
    assert response.status_code == 200
    token = ApiToken.objects.get(user=treating_clinician)
    shown = [str(m) for m in response.context["messages"]]
    raw = next(word for m in shown for word in m.split() if word.startswith("op_"))
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    change = client.get(f"/admin/accounts/apitoken/{token.pk}/change/")
    assert raw not in change.content.decode()
    client.post(
        "/admin/accounts/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token.revoked_by == admin_user


def test_api_token_making_and_revoking_are_in_the_access_log(treating_clinician: User) -> None:
    token, _ = _create(treating_clinician)
    api_token_revoke(token=token, by=treating_clinician)
    rows = AccessLog.objects.filter(
        action=AccessLog.Action.ACCESS_CHANGE, object_type="ApiToken", object_id=str(token.pk)
    ).order_by("pk")
    assert [(r.user_id, r.detail["granted"], r.detail["prefix"]) for r in rows] == [
        (treating_clinician.pk, True, token.prefix),
        (treating_clinician.pk, False, token.prefix),
    ]
