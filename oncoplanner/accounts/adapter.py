from __future__ import annotations

import time
from typing import Any

from allauth.account import app_settings as account_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.internal.flows.login import get_authentication_records
from allauth.core import context
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.http import HttpRequest

from oncoplanner.accounts import secret_box
from oncoplanner.accounts.mfa import mfa_required_for


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Security: an open sign-up could attach an account to someone else's chart.
        # Patients join only through an invitation created for their own record.
        return False

    def is_reauthentication_required(self, *, app: str, **kwargs: Any) -> bool:
        # allauth counts only explicit re-authentications as "recent", so a clinician enrolling
        # in TOTP right after their first login would have to type the password twice. A
        # password login in this session within the re-authentication window is as fresh as a
        # re-authentication, so it counts too (for MFA set-up only).
        required = super().is_reauthentication_required(app=app, **kwargs)
        if not required or app != "allauth.mfa":
            return required
        request = context.request
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return True
        records = get_authentication_records(request, user)
        last_at = max((r["at"] for r in records if r.get("method") == "password"), default=None)
        return last_at is None or time.time() - last_at >= account_settings.REAUTHENTICATION_TIMEOUT


class MFAAdapter(DefaultMFAAdapter):
    def can_delete_authenticator(self, authenticator: Authenticator) -> bool:
        # Clinicians and administrators must keep their authenticator app (SECURITY.md #11):
        # letting them switch it off would undo the requirement. Patients may remove theirs.
        if authenticator.type == Authenticator.Type.TOTP and mfa_required_for(authenticator.user):
            return False
        return super().can_delete_authenticator(authenticator)

    # Security: allauth stores the TOTP secret and the recovery-code seed through these two
    # hooks; encrypted, a database dump or backup no longer holds anyone's second factor
    # (oncoplanner.accounts.secret_box says how and why). decrypt raises SecretBoxError for a
    # plain, altered or foreign value; the code forms turn that into a refused code.
    def encrypt(self, text: str) -> str:
        return secret_box.encrypt(text, keys=settings.MFA_ENCRYPTION_KEYS)

    def decrypt(self, encrypted_text: str) -> str:
        return secret_box.decrypt(encrypted_text, keys=settings.MFA_ENCRYPTION_KEYS)
