"""Login throttling with django-axes: one lock per account, shared by every login pathway.

Password logins (the allauth form, Django admin which now goes through that form, API tokens
later) and the MFA code step all count failures against the same username in axes. After
AXES_FAILURE_LIMIT failures the account is locked for AXES_COOLOFF_TIME; while it is locked,
AxesStandaloneBackend refuses before any password hash is computed (SECURITY.md #9).
"""

from __future__ import annotations

from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth import user_login_failed
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponseBase


def normalise_username(username: str | None) -> str | None:
    if not username:
        return None
    # allauth matches usernames case-insensitively: "Alice" and "alice" are one account and
    # must share one failure counter, or an attacker gets 5 tries per spelling.
    return username.strip().casefold() or None


def axes_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """AXES_USERNAME_CALLABLE: the account a login attempt is aimed at.

    allauth calls authenticate(username=..., password=...), while its form field is "login";
    without this callable axes would read the wrong key, record no attempt, and never lock
    (the "set the username callable" pitfall in SECURITY.md).
    """
    credentials = credentials or {}
    username = credentials.get("username") or credentials.get("login")
    if not username and request is not None:
        data = getattr(request, "POST", {})
        username = data.get("login") or data.get("username")
    return normalise_username(username)


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponseBase | Any = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponseBase:
    """AXES_LOCKOUT_CALLABLE: a locked account gets exactly the answer of a wrong password.

    We chose this over axes' 429 page or a lockout template on purpose: a distinct lockout
    answer tells an attacker that the username exists (enumeration), so for an unknown user,
    a wrong password and a locked account the door returns the same status code and the same
    "username and/or password are not correct" form error. The response the login view
    already built (the form with that error, since the refused authenticate() returned None)
    is returned unchanged; any other door (API tokens) likewise answers as for bad credentials.
    """
    if isinstance(original_response, HttpResponseBase):
        return original_response
    # axes' async path passes no original response: send the client back to the login page.
    return redirect_to_login(request.get_full_path())


def _credentials_for(user: AbstractBaseUser) -> dict[str, Any]:
    return {"username": user.get_username()}


def account_is_locked(request: HttpRequest, user: AbstractBaseUser) -> bool:
    return AxesProxyHandler.is_locked(request, _credentials_for(user))


def record_failed_code(request: HttpRequest, user: AbstractBaseUser) -> None:
    """Count a wrong MFA code as a failed login of that account (axes and the access log both
    listen to Django's user_login_failed signal)."""
    user_login_failed.send(
        sender=__name__,
        credentials=_credentials_for(user),
        request=request,
    )
