"""The MFA code forms, throttled by the same axes lock as the password step."""

from __future__ import annotations

import logging

from allauth.core import context
from allauth.mfa.adapter import get_adapter
from allauth.mfa.base.forms import AuthenticateForm, ReauthenticateForm
from django import forms

from oncoplanner.accounts.secret_box import SecretBoxError
from oncoplanner.accounts.throttling import account_is_locked, record_failed_code

logger = logging.getLogger(__name__)


class _ThrottledCodeMixin:
    """Wrong TOTP or recovery codes count as failed logins of the account in axes.

    Security: someone who knows a clinician's password must not get unlimited guesses at a
    six-digit code. Five failures (password or code, in any mix) lock the account for 15
    minutes; while it is locked no code is checked at all (so a correct code is not consumed),
    and the answer is the ordinary "Incorrect code." error.
    """

    user: object
    cleaned_data: dict[str, object]

    def clean_code(self) -> str:
        request = context.request
        if account_is_locked(request, self.user):
            raise get_adapter().validation_error("incorrect_code")
        try:
            return super().clean_code()  # type: ignore[misc]
        except forms.ValidationError:
            record_failed_code(request, self.user)
            raise
        except SecretBoxError:
            # A stored secret that does not decrypt (altered in the database, or the wrong
            # DJANGO_MFA_ENCRYPTION_KEY) must refuse the code like a wrong one, not answer 500;
            # operators learn of it from the log (the user id only, never the value).
            logger.error("MFA secret of user %s does not decrypt", getattr(self.user, "pk", None))
            record_failed_code(request, self.user)
            raise get_adapter().validation_error("incorrect_code") from None


class ThrottledAuthenticateForm(_ThrottledCodeMixin, AuthenticateForm):
    pass


class ThrottledReauthenticateForm(_ThrottledCodeMixin, ReauthenticateForm):
    pass
