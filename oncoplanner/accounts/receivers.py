"""Session housekeeping driven by signals: clocks start at login, sessions die with access."""

from __future__ import annotations

from typing import Any

from allauth.account.signals import password_changed, password_reset, password_set
from allauth.mfa.signals import authenticator_removed
from django.contrib.auth import user_logged_in
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest

from oncoplanner import access_context
from oncoplanner.accounts.api_tokens import api_tokens_revoke_all
from oncoplanner.accounts.middleware import MFA_ENROLLED_KEY, stamp_login
from oncoplanner.accounts.models import User
from oncoplanner.accounts.services import user_sessions_end


@receiver(user_logged_in, dispatch_uid="accounts_stamp_login")
def _stamp_login(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        stamp_login(request)


@receiver(post_save, sender=User, dispatch_uid="accounts_end_sessions_on_deactivate")
def _end_sessions_of_inactive_user(sender: Any, instance: User, **kwargs: Any) -> None:
    # Security: a deactivated account (leaver, compromised) is logged out everywhere at once,
    # and stays out even if it is reactivated later: its old cookies and its API tokens are
    # gone, not just refused while inactive. Runs in the saver's transaction (admin's change
    # view is atomic), so a failed revocation rolls the deactivation back too.
    if not instance.is_active:
        user_sessions_end(user_id=instance.pk)
        actor = access_context.current().user  # the administrator, when a request set it
        api_tokens_revoke_all(user=instance, by=actor)


@receiver(password_changed, dispatch_uid="accounts_end_sessions_on_password_changed")
@receiver(password_reset, dispatch_uid="accounts_end_sessions_on_password_reset")
@receiver(password_set, dispatch_uid="accounts_end_sessions_on_password_set")
def _end_sessions_on_password_change(sender: Any, user: User, **kwargs: Any) -> None:
    # Django's session auth hash already refuses old sessions after a password change; deleting
    # the rows as well means no stale session can come back if the hash check is ever bypassed.
    user_sessions_end(user_id=user.pk)


@receiver(authenticator_removed, dispatch_uid="accounts_forget_mfa_enrolment")
def _forget_enrolment(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        request.session.pop(MFA_ENROLLED_KEY, None)
