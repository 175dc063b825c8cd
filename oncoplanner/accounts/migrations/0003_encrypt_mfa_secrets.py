"""Encrypt the TOTP secrets and recovery-code seeds stored in plain text before
MFAAdapter.encrypt existed (oncoplanner.accounts.secret_box). Idempotent: a value already
encrypted ("enc1:...") is left alone. The reverse decrypts, for a rollback to code that reads
plain values. Both use the keys in settings.MFA_ENCRYPTION_KEYS (DJANGO_MFA_ENCRYPTION_KEY).
"""

from __future__ import annotations

from django.conf import settings
from django.db import migrations

from oncoplanner.accounts import secret_box

# allauth's Authenticator.Type values whose data the adapter encrypts (WebAuthn holds none).
TYPES = ("totp", "recovery_codes")


def _apply(apps, change) -> None:
    Authenticator = apps.get_model("mfa", "Authenticator")
    keys = settings.MFA_ENCRYPTION_KEYS
    for authenticator in Authenticator.objects.filter(type__in=TYPES).order_by("pk").iterator():
        if isinstance(authenticator.data, dict) and change(authenticator.data, keys=keys):
            authenticator.save(update_fields=["data"])


def encrypt_secrets(apps, schema_editor) -> None:
    _apply(apps, secret_box.encrypt_data)


def decrypt_secrets(apps, schema_editor) -> None:
    _apply(apps, secret_box.decrypt_data)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_api_token"),
        ("mfa", "0003_authenticator_type_uniq"),
    ]

    operations = [
        migrations.RunPython(encrypt_secrets, decrypt_secrets, elidable=False),
    ]
