"""Re-encrypt every stored second-factor secret under the first DJANGO_MFA_ENCRYPTION_KEY.

Key rotation: put the new key first in DJANGO_MFA_ENCRYPTION_KEY (the old one after it, so
both decrypt), restart, run this command, then drop the old key and restart again.
"""

from __future__ import annotations

from typing import Any

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from oncoplanner.accounts import secret_box


class Command(BaseCommand):
    help = "Re-encrypt the stored TOTP secrets and recovery-code seeds under the first key."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        keys = settings.MFA_ENCRYPTION_KEYS
        rotated = 0
        authenticators = Authenticator.objects.select_for_update().filter(
            type__in=[Authenticator.Type.TOTP, Authenticator.Type.RECOVERY_CODES]
        )
        for authenticator in authenticators.order_by("pk"):
            # A plain value left over from before the encryption migration is encrypted too,
            # so after this command nothing readable remains.
            changed = secret_box.encrypt_data(authenticator.data, keys=keys)
            changed |= secret_box.rotate_data(authenticator.data, keys=keys)
            if changed:
                authenticator.save(update_fields=["data"])
                rotated += 1
        self.stdout.write(f"{rotated} authenticator(s) re-encrypted under the first key.")
