"""Account admin: second factors are never shown or edited, only removed (a lost phone), and
retiring a user kills their API tokens for good (SECURITY.md #10, #11)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from django.contrib.sessions.models import Session
from django.forms import CheckboxInput, MultiWidget
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from audit.models import AccessLog
from oncoplanner.accounts.api_tokens import api_token_create
from oncoplanner.accounts.models import ApiToken
from oncoplanner.accounts.tests.conftest import password_login
from oncoplanner.accounts.tests.factories import AdministratorFactory, ClinicianFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user, login):
    return login(client, admin_user)


@pytest.fixture
def clinician():
    user = ClinicianFactory.create()
    RecoveryCodes.activate(user)
    return user


def _totp(user) -> Authenticator:
    return Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)


def _recovery(user) -> Authenticator:
    return Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)


def _secrets(user) -> list[str]:
    """Everything that would let someone else pass this user's second factor."""
    recovery = _recovery(user)
    return [
        user.totp_secret,
        _totp(user).data["secret"],
        recovery.data["seed"],
        *RecoveryCodes(recovery).get_unused_codes(),
    ]


def _bearer(raw: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {raw}"})


# --- second factors ---------------------------------------------------------------------------


def test_authenticator_admin_pages_never_show_the_secret_or_recovery_codes(
    admin_client, clinician
) -> None:
    secrets = _secrets(clinician)
    # (url, whether the page names the owner: proof it rendered the clinician's rows)
    pages = [(reverse("admin:mfa_authenticator_changelist"), True)]
    for authenticator in (_totp(clinician), _recovery(clinician)):
        pages += [
            (reverse("admin:mfa_authenticator_change", args=[authenticator.pk]), True),
            (reverse("admin:mfa_authenticator_history", args=[authenticator.pk]), False),
            (reverse("admin:mfa_authenticator_delete", args=[authenticator.pk]), False),
        ]
    for url, names_owner in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        if names_owner:
            assert escape(str(clinician)) in html, url
        for secret in secrets:
            assert secret not in html, url
        assert "secret" not in html.lower(), url
        assert 'name="data"' not in html, url


def test_authenticator_admin_change_page_is_read_only(admin_client, clinician) -> None:
    totp = _totp(clinician)
    stored = totp.data["secret"]
    url = reverse("admin:mfa_authenticator_change", args=[totp.pk])
    response = admin_client.get(url)
    assert b'name="_save"' not in response.content
    forged = {"user": str(clinician.pk), "type": "totp", "data": '{"secret": "JBSWY3DPEHPK3PXP"}'}
    assert admin_client.post(url, forged).status_code == 403
    totp.refresh_from_db()
    assert totp.data["secret"] == stored


def test_authenticator_admin_add_is_refused(admin_client, admin_user) -> None:
    url = reverse("admin:mfa_authenticator_add")
    assert admin_client.get(url).status_code == 403
    planted = {"user": str(admin_user.pk), "type": "totp", "data": '{"secret": "JBSWY3DPEHPK3PXP"}'}
    assert admin_client.post(url, planted).status_code == 403
    assert Authenticator.objects.filter(data__secret="JBSWY3DPEHPK3PXP").count() == 0


def test_authenticator_admin_refuses_filtering_on_the_secret(admin_client, clinician) -> None:
    # Django admin accepts lookups on a model's own fields from the query string: counting rows
    # for ?data__secret__startswith=A, B, … would read the secret one character at a time.
    base = reverse("admin:mfa_authenticator_changelist")
    for lookup in ("data__secret__startswith", "data__contains", "data__seed__startswith"):
        response = admin_client.get(base, {lookup: clinician.totp_secret[:1]})
        assert response.status_code == 400, lookup
    # The ordinary filters still work.
    response = admin_client.get(base, {"type__exact": "totp", "q": clinician.username})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [_totp(clinician)]


def test_authenticator_admin_has_no_bulk_actions(admin_client) -> None:
    response = admin_client.get(reverse("admin:mfa_authenticator_changelist"))
    assert response.context["action_form"] is None


def test_authenticator_admin_removal_forces_enrolment_ends_sessions_and_is_logged(
    admin_client, admin_user, clinician
) -> None:
    their_device = Client()
    password_login(their_device, clinician.username)
    totp, recovery = _totp(clinician), _recovery(clinician)
    mark = AccessLog.objects.count()
    url = reverse("admin:mfa_authenticator_delete", args=[totp.pk])
    response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    # The recovery codes went with the authenticator: they cannot stand in for it any more.
    assert not Authenticator.objects.filter(user=clinician).exists()
    assert not any(
        str(s.get_decoded().get("_auth_user_id")) == str(clinician.pk)
        for s in Session.objects.all()
    )
    rows = AccessLog.objects.order_by("pk")[mark:]
    removals = [r for r in rows if r.action == AccessLog.Action.ACCESS_CHANGE]
    assert [(r.user_id, r.object_type, r.surface) for r in removals] == [
        (admin_user.pk, "Authenticator", "admin")
    ] * 2
    assert sorted(r.detail["authenticator_id"] for r in removals) == sorted([totp.pk, recovery.pk])
    assert {r.detail["user_id"] for r in removals} == {clinician.pk}
    assert all(r.detail["granted"] is False for r in removals)
    # Their next sign-in is a password, then enrolment in a new authenticator app.
    fresh = Client()
    assert password_login(fresh, clinician.username).status_code == 302
    assert fresh.get("/")["Location"] == reverse("mfa_activate_totp")
    assert fresh.get("/admin/")["Location"] == reverse("mfa_activate_totp")


def test_authenticator_admin_cannot_remove_own_second_factor(admin_client, admin_user) -> None:
    totp = _totp(admin_user)
    url = reverse("admin:mfa_authenticator_delete", args=[totp.pk])
    assert admin_client.get(url).status_code == 403
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert Authenticator.objects.filter(pk=totp.pk).exists()


def test_authenticator_admin_view_only_administrator_cannot_remove(
    client, login, clinician
) -> None:
    from django.contrib.auth.models import Permission

    viewer = AdministratorFactory.create()
    viewer.user_permissions.set(Permission.objects.filter(codename="view_authenticator"))
    viewer_client = login(client, viewer)
    totp = _totp(clinician)
    assert viewer_client.get(reverse("admin:mfa_authenticator_changelist")).status_code == 200
    url = reverse("admin:mfa_authenticator_delete", args=[totp.pk])
    assert viewer_client.post(url, {"post": "yes"}).status_code == 403
    assert Authenticator.objects.filter(pk=totp.pk).exists()


# --- retiring a user --------------------------------------------------------------------------


def _user_form_data(admin_client, user) -> dict[str, object]:
    """The user's admin change form as the browser would submit it, unchanged."""
    form = (
        admin_client.get(reverse("admin:accounts_user_change", args=[user.pk]))
        .context["adminform"]
        .form
    )
    data: dict[str, object] = {}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = form[name].value()
        widget = getattr(field.widget, "widget", field.widget)  # admin's related-field wrapper
        if isinstance(widget, MultiWidget):
            for i, part in enumerate(widget.decompress(value)):
                data[f"{name}_{i}"] = "" if part is None else str(part)
        elif isinstance(widget, CheckboxInput):
            if value:
                data[name] = "on"
        elif isinstance(value, list | tuple):
            data[name] = [str(v) for v in value]
        else:
            data[name] = "" if value is None else str(value)
    return data


def _set_active(admin_client, user, active: bool) -> None:
    data = _user_form_data(admin_client, user)
    if active:
        data["is_active"] = "on"
    else:
        data.pop("is_active", None)
    response = admin_client.post(reverse("admin:accounts_user_change", args=[user.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert user.is_active is active


def test_user_admin_deactivation_revokes_tokens_and_reactivation_does_not_revive(
    admin_client, admin_user
) -> None:
    clinician = ClinicianFactory.create()
    token, raw = api_token_create(
        user=clinician,
        name="ward tablet",
        expires_at=timezone.now() + dt.timedelta(days=30),
        created_by=clinician,
    )
    assert _bearer(raw).get("/api/v1/me").status_code == 200
    _set_active(admin_client, clinician, False)
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token.revoked_by == admin_user
    assert _bearer(raw).get("/api/v1/me").status_code == 401
    revoked_at = token.revoked_at
    _set_active(admin_client, clinician, True)
    assert _bearer(raw).get("/api/v1/me").status_code == 401
    token.refresh_from_db()
    assert token.revoked_at == revoked_at  # the first revocation stands


def test_user_admin_can_retire_a_user_who_joined_and_signed_in_in_the_hour_clocks_go_back(
    admin_client,
) -> None:
    # 01:30 on Sunday 25 October 2026 happens twice in the clinic (BST, then GMT). The change
    # form offered date_joined and last_login as editable wall times; posted back, they could
    # not be read in Europe/London, so the user could not be saved, nor retired, at all.
    with time_machine.travel(dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC), tick=False):
        night_nurse = ClinicianFactory.create(last_login=timezone.now())

    _set_active(admin_client, night_nurse, False)

    assert night_nurse.date_joined == dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC)
    assert night_nurse.last_login == dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC)


def test_user_deactivation_outside_admin_revokes_live_tokens_without_an_actor(db) -> None:
    clinician = ClinicianFactory.create()
    live, raw = api_token_create(
        user=clinician,
        name="ward tablet",
        expires_at=timezone.now() + dt.timedelta(days=30),
        created_by=clinician,
    )
    expired = ApiToken.objects.create(
        user=clinician,
        name="old",
        prefix="op_old",
        token_hash="0" * 64,
        expires_at=timezone.now() - dt.timedelta(days=1),
    )
    clinician.is_active = False
    clinician.save()  # a shell or a command: no acting administrator is known
    live.refresh_from_db()
    expired.refresh_from_db()
    assert live.revoked_at is not None
    assert live.revoked_by is None
    assert expired.revoked_at is None  # already dead: its record is left as it was
    clinician.is_active = True
    clinician.save()
    assert _bearer(raw).get("/api/v1/me").status_code == 401
