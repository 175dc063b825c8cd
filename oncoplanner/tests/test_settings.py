"""Start-up refuses a bad configuration, naming the variable (issue 2: settings from env)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "s" * 50,
    "DJANGO_MFA_ENCRYPTION_KEY": "bWZhLWtleS1mb3ItdGhlLXNldHRpbmdzLXRlc3RzISE=",
    "DJANGO_ALLOWED_HOSTS": "oncology.example.org",
}


def _load(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-c",
            "import oncoplanner.settings as s; print(s.DATABASES['default']['ENGINE'])",
        ],
        cwd=ROOT,
        env={**clean, **GOOD, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_good_production_configuration_loads():
    result = _load(DATABASE_URL="postgres://u:p@db.example.org:5432/onco")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.postgresql"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG"),
        ({"DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_MFA_ENCRYPTION_KEY": ""}, "DJANGO_MFA_ENCRYPTION_KEY"),
        ({"DJANGO_MFA_ENCRYPTION_KEY": "not-a-fernet-key"}, "DJANGO_MFA_ENCRYPTION_KEY"),
        ({"DJANGO_ALLOWED_HOSTS": ""}, "DJANGO_ALLOWED_HOSTS"),
        ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL"),
        ({"SESSION_IDLE_TIMEOUT_SECONDS": "soon"}, "SESSION_IDLE_TIMEOUT_SECONDS"),
        ({"DJANGO_HSTS_SECONDS": "-5"}, "DJANGO_HSTS_SECONDS"),
        ({"CLINIC_HOLIDAYS": "GB-XYZ"}, "CLINIC_HOLIDAYS"),
        ({"CLINIC_HOLIDAYS": "Narnia"}, "CLINIC_HOLIDAYS"),
    ],
)
def test_bad_configuration_stops_start_up_naming_the_variable(env, named):
    result = _load(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr


def test_development_key_only_in_debug_mode():
    result = _load(DJANGO_DEBUG="true", DJANGO_SECRET_KEY="", DJANGO_MFA_ENCRYPTION_KEY="")
    assert result.returncode == 0, result.stderr


# --- the MFA encryption keys (oncoplanner.env.env_fernet_keys), called directly --------------

KEY_A = "bWZhLWtleS1mb3ItdGhlLXNldHRpbmdzLXRlc3RzISE="
KEY_B = "c2Vjb25kLW1mYS1rZXktZm9yLXJvdGF0aW9uLXRlc3Q="


def test_mfa_keys_are_required_in_production(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from oncoplanner.env import env_fernet_keys

    monkeypatch.delenv("DJANGO_MFA_ENCRYPTION_KEY", raising=False)
    with pytest.raises(ImproperlyConfigured, match="DJANGO_MFA_ENCRYPTION_KEY must be set"):
        env_fernet_keys("DJANGO_MFA_ENCRYPTION_KEY", default=None)
    # Debug mode passes the development key as the default.
    assert env_fernet_keys("DJANGO_MFA_ENCRYPTION_KEY", default=[KEY_A]) == [KEY_A]


def test_mfa_keys_list_for_rotation_and_each_is_checked(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from oncoplanner.env import env_fernet_keys

    monkeypatch.setenv("DJANGO_MFA_ENCRYPTION_KEY", f"{KEY_B}, {KEY_A}")
    assert env_fernet_keys("DJANGO_MFA_ENCRYPTION_KEY", default=None) == [KEY_B, KEY_A]
    monkeypatch.setenv("DJANGO_MFA_ENCRYPTION_KEY", f"{KEY_B},{KEY_A[:-4]}")
    with pytest.raises(ImproperlyConfigured, match="key 2 is not a Fernet key"):
        env_fernet_keys("DJANGO_MFA_ENCRYPTION_KEY", default=None)


def test_the_holiday_calendar_is_a_known_code_or_none(monkeypatch):
    from oncoplanner.env import env_holidays

    monkeypatch.setenv("CLINIC_HOLIDAYS", " gb-sct ")
    assert env_holidays("CLINIC_HOLIDAYS", default="GB-ENG") == "GB-SCT"
    monkeypatch.setenv("CLINIC_HOLIDAYS", "none")
    assert env_holidays("CLINIC_HOLIDAYS", default="GB-ENG") == ""
    monkeypatch.delenv("CLINIC_HOLIDAYS")
    assert env_holidays("CLINIC_HOLIDAYS", default="GB-ENG") == "GB-ENG"
