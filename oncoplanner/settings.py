"""OncoPlanner settings: one file, every value from the environment, secure by default.

Development (`make run`) sets DJANGO_DEBUG=true and gets SQLite and a development secret key.
Production sets DATABASE_URL (PostgreSQL), DJANGO_SECRET_KEY, DJANGO_MFA_ENCRYPTION_KEY and
DJANGO_ALLOWED_HOSTS; a bad or missing value stops start-up with a message naming the variable.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
import plotly
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from oncoplanner.env import (
    env_bool,
    env_fernet_keys,
    env_holidays,
    env_int,
    env_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", default=False)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is not true "
            "(a development key is only used in debug mode)"
        )
    SECRET_KEY = "dev-only-insecure-key-never-use-in-production-" + "x" * 20  # noqa: S105

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else []
)
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must list the host names this server answers")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "oncoplanner.accounts",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "guardian",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "axes",
    "django_tasks_db",
    # django-ninja: in INSTALLED_APPS so the API playground's assets are served from its static
    # files instead of a CDN.
    "ninja",
    "patients",
    "treatments",
    "labs",
    "audit",
    "oncoplanner.demo",
    "oncoplanner.docs",
    "oncoplanner.live",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # A database outage or statement timeout answers 503 + Retry-After, never a 500 with a
    # stack trace (SECURITY.md #18): near the top so it sees errors from every layer below.
    "oncoplanner.db_outage.DatabaseOutageMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Idle/absolute session timeout, then MFA enrolment for clinicians and administrators:
    # both before anything else sees request.user (SECURITY.md #10, #11).
    "oncoplanner.accounts.middleware.session_timeout_middleware",
    "oncoplanner.accounts.middleware.mfa_enrolment_middleware",
    "oncoplanner.access_context.access_context_middleware",
    "oncoplanner.http.no_store_for_authenticated",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "axes.middleware.AxesMiddleware",
    # Last: personal API tokens for GraphQL clients (see its docstring for the CSRF rule).
    "oncoplanner.accounts.api_tokens.graphql_token_middleware",
]

ROOT_URLCONF = "oncoplanner.urls"
WSGI_APPLICATION = "oncoplanner.wsgi.application"
ASGI_APPLICATION = "oncoplanner.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "oncoplanner.context_processors.emergency_number",
            ],
        },
    },
]

# SQLite file by default so `make run` needs no server; production and CI use PostgreSQL.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
except ValueError as error:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {error}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Persistent connections in production (checked before reuse, so a restarted PostgreSQL costs
# one failed request per worker at most); a runaway query is ended by the server and answered
# 503 (oncoplanner.db_outage), and an unreachable server fails fast instead of hanging a worker.
DATABASES["default"]["CONN_MAX_AGE"] = env_int(
    "DB_CONN_MAX_AGE", default=0 if DEBUG else 60, minimum=0
)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})
    # JIT off: our queries are short index probes, and PostgreSQL's cost model switched JIT on
    # for the patient search at 10,000 patients, spending 38 ms compiling a 14 ms query.
    DATABASES["default"]["OPTIONS"]["options"] = (
        f"-c statement_timeout={env_int('DB_STATEMENT_TIMEOUT_MS', default=15000, minimum=0)}"
        " -c jit=off"
    )
    DATABASES["default"]["OPTIONS"]["connect_timeout"] = env_int(
        "DB_CONNECT_TIMEOUT_S", default=5, minimum=1
    )
# Benchmarks only (scripts/bench.py): mounts the bare baseline view at /bench/baseline/.
BENCHMARK_BASELINE = env_bool("BENCHMARK_BASELINE", default=False)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # axes first: a locked-out login is refused before any password hash is computed.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
    "guardian.backends.ObjectPermissionBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "account_login"

# allauth: username login, no open sign-up (patients join only through an invitation).
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*", "password2*"]
ACCOUNT_ADAPTER = "oncoplanner.accounts.adapter.AccountAdapter"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_PREVENT_ENUMERATION = True
# axes does login throttling, MFA code failures included (oncoplanner.accounts.forms counts
# them against the same per-account lock): one mechanism, one lock, one answer.
ACCOUNT_RATE_LIMITS = False
# No "remember me": the session cookie dies with the browser (shared clinic computers).
ACCOUNT_SESSION_REMEMBER = False
# A reset request for an unknown address answers exactly like a known one and sends nothing:
# no mail to arbitrary addresses on demand.
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_ADAPTER = "oncoplanner.accounts.adapter.MFAAdapter"
MFA_FORMS = {
    "authenticate": "oncoplanner.accounts.forms.ThrottledAuthenticateForm",
    "reauthenticate": "oncoplanner.accounts.forms.ThrottledReauthenticateForm",
}
MFA_TOTP_ISSUER = "OncoPlanner"
# Keys that encrypt the TOTP secrets and recovery-code seeds in the database (the adapter's
# encrypt/decrypt, oncoplanner.accounts.secret_box), kept apart from SECRET_KEY so rotating one
# does not touch the other. Required in production; the first key encrypts, all decrypt.
# Debug mode uses a fixed, public development key: fine for the demo database, never for PHI.
MFA_ENCRYPTION_KEYS = env_fernet_keys(
    "DJANGO_MFA_ENCRYPTION_KEY",
    # base64 of b"dev-only-mfa-key-not-production!"
    default=["ZGV2LW9ubHktbWZhLWtleS1ub3QtcHJvZHVjdGlvbiE="] if DEBUG else None,
)

# axes: at most 5 failures, then a lock that clears itself (SECURITY.md #9).
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = 0.25  # hours: 15 minutes
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "login"
# allauth authenticates with credentials["username"], not "login": read the account from there
# (case-folded, as allauth matches usernames), or axes records nothing and never locks.
AXES_USERNAME_CALLABLE = "oncoplanner.accounts.throttling.axes_username"
# A locked account gets the same answer as a wrong password (no enumeration): see
# oncoplanner.accounts.throttling.lockout_response.
AXES_LOCKOUT_CALLABLE = "oncoplanner.accounts.throttling.lockout_response"
# Attempts during a lock do not restart it, so the lock always clears within 15 minutes.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_ENABLED = env_bool("AXES_ENABLED", default=True)
# Successful logins are rows of the access log (audit); axes keeps only what the lock needs.
AXES_DISABLE_ACCESS_LOG = True
# We lock per account on purpose: an IP lock would shut a whole clinic behind one NAT address
# out, and a per-username lock cannot be dodged by rotating user agents or cookies.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]

# guardian: no anonymous user object; no model-wide permission opens a chart.
ANONYMOUS_USER_NAME = None

# Sessions: 15 minutes idle, 12 hours absolute (oncoplanner.accounts.middleware).
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = 12 * 60 * 60
SESSION_IDLE_TIMEOUT_SECONDS = env_int("SESSION_IDLE_TIMEOUT_SECONDS", default=15 * 60, minimum=60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True

# Transport security: on unless debugging locally.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", default=0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:", "blob:"],
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("DJANGO_TIME_ZONE", "Europe/London")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# plotly.js is served from the installed plotly package (same version as requirements.txt),
# never from a CDN: the clinic may have no internet, and the CSP allows only 'self'.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/plotly", Path(plotly.__file__).parent / "package_data"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# A cache every worker process and server shares: MFA replay protection (used TOTP codes) and
# rate limits must hold across gunicorn workers, so no per-process locmem cache.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "oncoplanner_cache",
    },
    # Rendered patient charts (patients.chart_cache), in each process's memory: an entry is
    # found only under the tokens read from the database with the chart's own gate query, so
    # a worker never serves a chart another worker's write has changed. At most ~60 KB each.
    "charts": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "charts",
        "TIMEOUT": 120,
        "OPTIONS": {"MAX_ENTRIES": 2000},
    },
}
# Off: every chart is rendered afresh (for comparing in benchmarks; tests of the cache).
CHART_CACHE = env_bool("CHART_CACHE", default=True)

# The public holidays a cycle day is marked on (treatments.schedule): most day units close on
# them, and a fortnightly course started in October puts a day 1 on Christmas Day.
CLINIC_HOLIDAYS = env_holidays("CLINIC_HOLIDAYS", default="GB-ENG")

# What a patient is told to call when their team has no 24-hour number, or it does not answer
# (the portal never points at a blank). The default is the UK's, with the European 112.
EMERGENCY_NUMBER = env_str("EMERGENCY_NUMBER", "999 (or 112)").strip()[:40] or "999 (or 112)"

# Live updates (server-sent events): a stream ends after this long and the browser reconnects
# with Last-Event-ID; while idle it waits this long for a NOTIFY before re-checking the session.
LIVE_STREAM_MAX_SECONDS = env_int("LIVE_STREAM_MAX_SECONDS", default=300, minimum=1)
LIVE_STREAM_WAIT_SECONDS = env_int("LIVE_STREAM_WAIT_SECONDS", default=15, minimum=1)

# Dosing: a weight-based dose (mg/m², mg/kg, Calvert) is computed only from a weight taken at
# most this many days before the dose date. Patients lose weight on chemotherapy; a dose from
# an old weight is an overdose. A clinic default (set it to its own policy), not a guideline.
DOSING_WEIGHT_MAX_AGE_DAYS = env_int("DOSING_WEIGHT_MAX_AGE_DAYS", default=14, minimum=1)
# Calvert (carboplatin) dosing uses the latest serum creatinine on record if at most this old.
CALVERT_CREATININE_MAX_AGE_DAYS = env_int("CALVERT_CREATININE_MAX_AGE_DAYS", default=7, minimum=1)
# A new weight this many percent or more away from the one the last dose was computed from
# asks for the dose to be reviewed (the common 10 % re-dosing threshold).
DOSING_WEIGHT_CHANGE_REVIEW_PERCENT = env_int(
    "DOSING_WEIGHT_CHANGE_REVIEW_PERCENT", default=10, minimum=1
)

# A cycle may be given this many days before the previous cycle has run its length (a holiday,
# a clinic closure), never earlier. A clinic default, to set to its own policy.
CYCLE_EARLY_TOLERANCE_DAYS = env_int("CYCLE_EARLY_TOLERANCE_DAYS", default=2, minimum=0)
# A course is planned from today or a little before (a first cycle entered after the fact);
# a start further back is almost always a mistyped year, which would put every cycle in it.
COURSE_START_MAX_DAYS_AGO = env_int("COURSE_START_MAX_DAYS_AGO", default=28, minimum=0)

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# Django 6.1 mailers (EMAIL_BACKEND is deprecated). Console in development, SMTP in production.
MAILERS = {
    "default": {
        "BACKEND": env_str(
            "DJANGO_EMAIL_BACKEND",
            "django.core.mail.backends.console.EmailBackend"
            if DEBUG
            else "django.core.mail.backends.smtp.EmailBackend",
        ),
        "OPTIONS": {
            "host": env_str("DJANGO_EMAIL_HOST", "localhost"),
            "port": env_int("DJANGO_EMAIL_PORT", default=25, minimum=1),
        },
    }
}
if MAILERS["default"]["BACKEND"].endswith("console.EmailBackend"):
    MAILERS["default"]["OPTIONS"] = {}
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "oncoplanner@localhost")
# Absolute links in emails (patient invitations) are built from this, never from the Host header.
PUBLIC_BASE_URL = env_str("DJANGO_PUBLIC_BASE_URL", "http://127.0.0.1:8000")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "WARNING")},
}
