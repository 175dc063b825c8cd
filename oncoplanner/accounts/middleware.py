"""Session lifetime and MFA enrolment, enforced on every request (SECURITY.md #10, #11).

Both middlewares sit right after AuthenticationMiddleware, so an expired or not-yet-enrolled
session never reaches a view, the access context or the audit receivers as a logged-in user.

THE BACKGROUND RULE (for everyone building HTMX polling and live streams): a request is
"background" — it is served normally but does NOT count as activity and so cannot keep an idle
session alive — when

    its path starts with /stream/           (server-sent events, live updates), or
    it carries the header X-OncoPlanner-Background: 1   (htmx polling: put
        hx-headers='{"X-OncoPlanner-Background": "1"}' on every element with hx-trigger="every …"
        or "load delay:…" that refreshes by itself).

Every other request (page loads, form posts, user-initiated HTMX clicks) refreshes the idle
clock. Background requests are still refused once the session has expired.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import resolve_url
from django.urls import reverse

from oncoplanner.accounts.mfa import has_totp, mfa_required_for

LOGIN_AT_KEY = "_op_login_at"
LAST_ACTIVITY_KEY = "_op_last_activity"
MFA_ENROLLED_KEY = "_op_mfa_enrolled"

BACKGROUND_HEADER = "X-OncoPlanner-Background"
STREAM_PREFIX = "/stream/"
ABSOLUTE_LIFETIME_SECONDS = 12 * 60 * 60
ACTIVITY_STAMP_SECONDS = 30

GetResponse = Callable[[HttpRequest], HttpResponseBase]


def is_background_request(request: HttpRequest) -> bool:
    """True for requests that must not extend the idle timeout (see the module docstring)."""
    return request.path.startswith(STREAM_PREFIX) or request.headers.get(BACKGROUND_HEADER) == "1"


def stamp_login(request: HttpRequest) -> None:
    """Start both clocks; called from the user_logged_in receiver (every login path)."""
    now = time.time()
    request.session[LOGIN_AT_KEY] = now
    request.session[LAST_ACTIVITY_KEY] = now


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _send_to(request: HttpRequest, url: str, *, next_url: str | None) -> HttpResponseBase:
    """Redirect in the way each kind of client understands."""
    if request.path.startswith(STREAM_PREFIX):
        # EventSource cannot follow a redirect to an HTML page; a 401 closes the stream and
        # the page's next ordinary request is redirected.
        return HttpResponse(status=401)
    if _is_htmx(request):
        # A partial swapped into the page would be the login form inside a dashboard card;
        # HX-Redirect makes htmx load the whole login page instead.
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        page = current.path + (f"?{current.query}" if current.query else "")
        response = HttpResponse(status=200)
        if next_url is not None and page:
            response["HX-Redirect"] = redirect_to_login(page, login_url=url)["Location"]
        else:
            response["HX-Redirect"] = url
        return response
    if next_url is not None:
        return redirect_to_login(next_url, login_url=url)
    response = HttpResponse(status=302)
    response["Location"] = url
    return response


def _htmx_login_redirect(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """A logged-out HTMX request that a view redirects to the login page (login_required) gets
    HX-Redirect instead: htmx would otherwise follow the 302 and swap the login form into a
    fragment of the page."""
    location = response.get("Location", "")
    login_url = resolve_url(settings.LOGIN_URL)
    if _is_htmx(request) and response.status_code == 302 and location.startswith(login_url):
        converted = HttpResponse(status=200)
        converted["HX-Redirect"] = location
        return converted
    return response


def session_expired(session: SessionBase, now: float) -> bool:
    """Idle or absolute limit passed. Also used by live streams, which outlive their request."""
    login_at = session.get(LOGIN_AT_KEY)
    last_activity = session.get(LAST_ACTIVITY_KEY)
    # Fail closed: a session without our clocks did not come through a login we know of.
    return (
        login_at is None
        or last_activity is None
        or now - login_at >= ABSOLUTE_LIFETIME_SECONDS
        or now - last_activity >= settings.SESSION_IDLE_TIMEOUT_SECONDS
    )


def _activity_stamp_due(session: SessionBase, now: float) -> bool:
    """Whether to move the idle clock: at most every ACTIVITY_STAMP_SECONDS.

    Stamping every request rewrote the session row on every page and fragment (one UPDATE per
    request). Stamping at most every 30 s can only end an idle session up to 30 s *early*
    (never late), so the 15-minute limit still holds.
    """
    return now - session.get(LAST_ACTIVITY_KEY, 0) >= ACTIVITY_STAMP_SECONDS


def session_timeout_middleware(get_response: GetResponse) -> GetResponse:
    """Idle timeout (settings.SESSION_IDLE_TIMEOUT_SECONDS, 15 min) and absolute lifetime
    (12 h from login). Expired sessions are logged out and sent to the login page."""

    def middleware(request: HttpRequest) -> HttpResponseBase:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return _htmx_login_redirect(request, get_response(request))
        session = request.session
        now = time.time()
        if session_expired(session, now):
            logout(request)  # flushes the session: the old cookie is dead from here on
            return _send_to(request, resolve_url(settings.LOGIN_URL), next_url=request.path)
        if not is_background_request(request) and _activity_stamp_due(session, now):
            session[LAST_ACTIVITY_KEY] = now
        return get_response(request)

    return middleware


@cache
def _enrolment_paths() -> tuple[str, ...]:
    names = (
        "account_logout",
        "account_reauthenticate",
        "mfa_activate_totp",
        "mfa_view_recovery_codes",
        "mfa_generate_recovery_codes",
        "mfa_download_recovery_codes",
    )
    return tuple(reverse(name) for name in names)


def _is_enrolment_path(path: str) -> bool:
    static_url = "/" + settings.STATIC_URL.lstrip("/")
    return path.startswith(static_url) or path in _enrolment_paths()


def mfa_enrolment_middleware(get_response: GetResponse) -> GetResponse:
    """Clinicians, administrators and staff without a TOTP authenticator can reach nothing but
    TOTP activation (then their recovery codes) and logout: enrolment on first login.

    Users who already have TOTP are asked for a code by allauth's login stage before they are
    logged in at all; admin's own login form is redirected to allauth's, so there is no
    password-only way in.
    """

    def middleware(request: HttpRequest) -> HttpResponseBase:
        user = getattr(request, "user", None)
        if (
            user is None
            or not mfa_required_for(user)
            or request.session.get(MFA_ENROLLED_KEY)
            or _is_enrolment_path(request.path)
        ):
            return get_response(request)
        if has_totp(user):
            # Remembered for this session: one query per session, not per request.
            request.session[MFA_ENROLLED_KEY] = True
            return get_response(request)
        return _send_to(request, reverse("mfa_activate_totp"), next_url=None)

    return middleware
