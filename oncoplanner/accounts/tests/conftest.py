"""Helpers for the authentication, session and MFA tests: real logins through allauth."""

from __future__ import annotations

import time

from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.test.client import Client as ClientType
from django.urls import reverse

PASSWORD = "correct-horse-battery-staple"  # the factories' password
MISMATCH = "The username and/or password you specified are not correct."


def totp_code(secret: str, at: float | None = None) -> str:
    """The code an authenticator app shows now (RFC 6238, 30 s steps, 6 digits)."""
    return format_hotp_value(hotp_value(secret, int(time.time() if at is None else at) // 30))


def password_login(client: ClientType, username: str, password: str = PASSWORD, **extra: str):
    return client.post(reverse("account_login"), {"login": username, "password": password}, **extra)


def code_step(client: ClientType, code: str):
    return client.post(reverse("mfa_authenticate"), {"code": code})


def form_errors(response) -> list[str]:
    form = response.context["form"] if response.context else None
    return [str(e) for e in form.non_field_errors()] if form is not None else []
