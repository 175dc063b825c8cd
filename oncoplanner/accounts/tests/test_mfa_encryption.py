"""Second-factor secrets are encrypted at rest (oncoplanner.accounts.secret_box): a database
dump or backup holds no TOTP secret or recovery-code seed (SECURITY.md #11, #19)."""

from __future__ import annotations

import importlib
import io
import json
from datetime import UTC, datetime

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from audit.models import AccessLog
from oncoplanner.accounts import secret_box
from oncoplanner.accounts.tests.conftest import code_step, password_login, totp_code
from oncoplanner.accounts.tests.factories import ClinicianFactory

pytestmark = pytest.mark.django_db

migration = importlib.import_module("oncoplanner.accounts.migrations.0003_encrypt_mfa_secrets")

NOON = datetime(2026, 3, 2, 12, 0, 5, tzinfo=UTC)
PLANTED = "JBSWY3DPEHPK3PXP"  # a secret someone with write access to the database knows
KEY_OLD = "b2xkLW1mYS1rZXktYmVmb3JlLXRoZS1yb3RhdGlvbiE="
KEY_NEW = "bmV3LW1mYS1rZXktYWZ0ZXItdGhlLXJvdGF0aW9uISE="


def _totp(user) -> Authenticator:
    return Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)


def _stored_column(authenticator: Authenticator) -> str:
    """The `data` column as the database holds it, as a dump would show it."""
    table = Authenticator._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT data FROM {table} WHERE id = %s", [authenticator.pk])  # noqa: S608
        value = cursor.fetchone()[0]
    return value if isinstance(value, str) else json.dumps(value)


def _login(client, user, secret: str):
    with time_machine.travel(NOON, tick=False):
        password_login(client, user.username)
        return code_step(client, totp_code(secret, NOON.timestamp()))


def test_totp_secret_is_stored_encrypted_and_login_still_works(client) -> None:
    clinician = ClinicianFactory.create()
    totp = _totp(clinician)
    stored = totp.data["secret"]
    assert stored.startswith(secret_box.PREFIX)
    assert clinician.totp_secret not in _stored_column(totp)
    response = _login(client, clinician, clinician.totp_secret)
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    with time_machine.travel(NOON, tick=False):
        assert client.get("/").status_code == 200


def test_recovery_code_seed_is_stored_encrypted_and_codes_still_work(client, settings) -> None:
    clinician = ClinicianFactory.create()
    codes = RecoveryCodes.activate(clinician).get_unused_codes()
    row = Authenticator.objects.get(user=clinician, type=Authenticator.Type.RECOVERY_CODES)
    seed = secret_box.decrypt(row.data["seed"], keys=settings.MFA_ENCRYPTION_KEYS)
    assert seed not in _stored_column(row)
    assert len(codes) == 10
    password_login(client, clinician.username)
    assert code_step(client, codes[0]).status_code == 302


def test_totp_enrolment_through_allauth_stores_the_secret_encrypted(client, settings) -> None:
    clinician = ClinicianFactory.create(totp=False)
    with time_machine.travel(NOON, tick=False):
        password_login(client, clinician.username)
        client.get(reverse("mfa_activate_totp"))
        secret = client.session[SECRET_SESSION_KEY]
        response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert response.status_code == 302
    totp = _totp(clinician)
    assert secret not in _stored_column(totp)
    assert secret_box.decrypt(totp.data["secret"], keys=settings.MFA_ENCRYPTION_KEYS) == secret


def _altered(value: str) -> str:
    """The same token with one character in the middle of the ciphertext changed."""
    middle = len(value) // 2
    return value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1 :]


@pytest.mark.parametrize("tampering", ["altered_token", "planted_plain_secret"])
def test_tampered_totp_row_refuses_the_code_without_a_server_error(client, tampering) -> None:
    clinician = ClinicianFactory.create()
    totp = _totp(clinician)
    assert totp.data["secret"].startswith(secret_box.PREFIX)
    if tampering == "altered_token":
        totp.data["secret"] = _altered(totp.data["secret"])
        code_secret = clinician.totp_secret
    else:
        # Security: a plain value must not be accepted, or anyone able to write to the
        # database could plant a second factor they know.
        totp.data["secret"] = PLANTED
        code_secret = PLANTED
    totp.save(update_fields=["data"])
    response = _login(client, clinician, code_secret)
    assert response.status_code == 200
    assert "Incorrect code." in response.content.decode()
    with time_machine.travel(NOON, tick=False):
        assert client.get("/").status_code == 302  # not logged in
    # Counted as a failed login (audited, and towards the axes lock).
    assert AccessLog.objects.filter(
        action=AccessLog.Action.LOGIN_FAILED, username=clinician.username
    ).exists()


def test_secret_box_refuses_a_value_under_an_unknown_key() -> None:
    sealed = secret_box.encrypt("JBSWY3DPEHPK3PXP", keys=[KEY_OLD])
    assert secret_box.decrypt(sealed, keys=[KEY_NEW, KEY_OLD]) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(secret_box.SecretBoxError):
        secret_box.decrypt(sealed, keys=[KEY_NEW])


# --- the data migration -------------------------------------------------------------------


def test_migration_encrypts_plain_rows_and_leaves_encrypted_ones_alone(client) -> None:
    legacy = ClinicianFactory.create(totp=False)
    plain_totp = Authenticator.objects.create(
        user=legacy, type=Authenticator.Type.TOTP, data={"secret": PLANTED}
    )
    plain_codes = Authenticator.objects.create(
        user=legacy,
        type=Authenticator.Type.RECOVERY_CODES,
        data={"seed": "ab" * 40, "used_mask": 0, "migrated_codes": ["12345678"]},
    )
    current = ClinicianFactory.create()
    already = _totp(current).data["secret"]

    migration.encrypt_secrets(apps, None)
    plain_totp.refresh_from_db()
    plain_codes.refresh_from_db()
    assert PLANTED not in _stored_column(plain_totp)
    assert "ab" * 40 not in _stored_column(plain_codes)
    assert "12345678" not in _stored_column(plain_codes)
    assert plain_codes.data["used_mask"] == 0
    assert _totp(current).data["secret"] == already  # untouched, not encrypted twice

    # Idempotent: a second run changes nothing.
    first_run = plain_totp.data["secret"]
    migration.encrypt_secrets(apps, None)
    plain_totp.refresh_from_db()
    assert plain_totp.data["secret"] == first_run

    # The migrated row still logs its owner in.
    response = _login(client, legacy, PLANTED)
    assert response.status_code == 302

    # The reverse gives back the plain values, for a rollback.
    migration.decrypt_secrets(apps, None)
    plain_totp.refresh_from_db()
    plain_codes.refresh_from_db()
    assert plain_totp.data["secret"] == PLANTED
    assert plain_codes.data["seed"] == "ab" * 40
    assert plain_codes.data["migrated_codes"] == ["12345678"]


# --- key rotation ----------------------------------------------------------------------------


def test_rotate_mfa_key_re_encrypts_under_the_new_key(client, settings) -> None:
    settings.MFA_ENCRYPTION_KEYS = [KEY_OLD]
    clinician = ClinicianFactory.create()
    settings.MFA_ENCRYPTION_KEYS = [KEY_NEW, KEY_OLD]
    out = io.StringIO()
    call_command("rotate_mfa_key", stdout=out)
    assert "1 authenticator(s) re-encrypted" in out.getvalue()
    settings.MFA_ENCRYPTION_KEYS = [KEY_NEW]  # the old key retired
    assert secret_box.decrypt(_totp(clinician).data["secret"], keys=[KEY_NEW]) == (
        clinician.totp_secret
    )
    assert _login(client, clinician, clinician.totp_secret).status_code == 302
