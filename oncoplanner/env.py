"""Reading settings from the environment, failing loudly on bad values (healthchecks' way).

A misconfigured clinical system must not start half-right: any value we cannot parse stops
start-up with ImproperlyConfigured naming the variable.
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, *, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, *, default: int, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_list(name: str, *, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_fernet_keys(name: str, *, default: list[str] | None) -> list[str]:
    """Comma-separated Fernet keys: the first encrypts, every one decrypts (key rotation).

    `default=None` makes the variable required. Each key is checked here, so a truncated or
    mistyped key stops start-up instead of failing at the first login.
    """
    keys = env_list(name, default=[])
    if not keys:
        if default is None:
            raise ImproperlyConfigured(
                f"{name} must be set when DJANGO_DEBUG is not true (a development key is only "
                "used in debug mode); generate one with: python -c 'from cryptography.fernet "
                "import Fernet; print(Fernet.generate_key().decode())'"
            )
        return default
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: key {number} is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None
    return keys


def env_holidays(name: str, *, default: str) -> str:
    """A public-holiday calendar as the `holidays` package names it: a country code, then an
    optional subdivision ("GB-ENG", "US", "DE-BY"), or "" for none ("none" or "off" too).

    An unknown code stops start-up: a clinic that meant to have its holidays marked must not
    silently get none.
    """
    raw = os.environ.get(name, default).strip().upper()
    if raw.lower() in {"", "none", "off"}:
        return ""
    try:
        holiday_calendar(raw)
    except NotImplementedError as error:
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a calendar the holidays package knows ({error}); use e.g. "
            "GB-ENG, GB-SCT, US, DE-BY, or none."
        ) from None
    return raw


def holiday_calendar(code: str, year: int | None = None) -> Any:
    """The `holidays` package's calendar for `code` ("GB-ENG": country, then an optional
    subdivision), for `year` or none yet; NotImplementedError for a code it does not know."""
    import holidays  # only where a calendar is configured

    country, _, subdivision = code.partition("-")
    return holidays.country_holidays(country, subdiv=subdivision or None, years=year)
