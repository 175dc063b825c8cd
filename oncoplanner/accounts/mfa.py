"""Who must use a second factor, and whether they have one."""

from __future__ import annotations

from typing import Any

from allauth.mfa.models import Authenticator

from oncoplanner.accounts.models import User


def mfa_required_for(user: Any) -> bool:
    """TOTP is required for clinicians, administrators and anyone who can open Django admin
    (SECURITY.md #11); patients are offered it but not made to enrol."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return bool(
        user.is_staff
        or user.is_superuser
        or getattr(user, "role", None) in {User.Role.CLINICIAN, User.Role.ADMINISTRATOR}
    )


def has_totp(user: Any) -> bool:
    return Authenticator.objects.filter(user_id=user.pk, type=Authenticator.Type.TOTP).exists()
