"""Test settings (HackSoft's test.py pattern): production settings plus a few fast overrides."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-" + "t" * 40)
# base64 of b"test-only-mfa-key-for-the-suite!"
os.environ.setdefault("DJANGO_MFA_ENCRYPTION_KEY", "dGVzdC1vbmx5LW1mYS1rZXktZm9yLXRoZS1zdWl0ZSE=")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")

from oncoplanner.settings import *  # noqa: E402,F403

# A real Argon2 check costs ~0.5 s here; the authentication tests switch it back on.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve static files straight from the finders (no collectstatic before tests).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
