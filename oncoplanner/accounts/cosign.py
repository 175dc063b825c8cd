"""A colleague's co-signature: the second person of a two-person check types their own password.

Chemotherapy is given only after an independent double check by a second competent person
(ASCO/ONS 2024). Picking that person from a list proves nothing: the giver could name anyone.
So the checker confirms on the giver's screen with their own password, as dual sign-off works
in hospital medication systems. The password is a login credential, so a wrong one counts as a
failed login of the checker's account (axes locks it after AXES_FAILURE_LIMIT, and the access
log records it): a co-sign form must not become a way to guess a colleague's password.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest

from oncoplanner.accounts.models import User
from oncoplanner.accounts.throttling import account_is_locked, record_failed_code


def colleague_cosign(*, request: HttpRequest, checker: User, password: str, field: str) -> None:
    """Raise a ValidationError on `field` unless `password` is the checker's own password.

    A locked account is refused before any hash is computed, with the same message as a wrong
    password (no hint to someone trying passwords).
    """
    if (
        password
        and checker.is_active
        and not account_is_locked(request, checker)
        and checker.check_password(password)
    ):
        return
    if password:
        record_failed_code(request, checker)
    raise ValidationError(
        {
            field: (
                f"{checker} must confirm the check with their own password; the password "
                "given was not accepted."
            )
        }
    )
