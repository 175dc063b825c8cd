"""Personal API tokens: create (shown once), store hashed, expire, revoke, authenticate.

A token is `op_` + 43 URL-safe characters (256 bits). Only its SHA-256 is stored, so a copy of
the database does not hand out working tokens; a fast hash is right here because the token is
random and long (nothing to brute-force, unlike a password). Every token expires within
MAX_LIFETIME: a forgotten token on a lost tablet must die by itself.

The page /accounts/api-tokens/ lets a signed-in user create and revoke their own tokens; the
accounts middleware has already forced MFA enrolment on clinicians and administrators, and the
view checks the session's MFA mark again, so a token (which skips MFA) can only be made from
a session that passed it. Administrators create and revoke tokens for anyone in admin.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from oncoplanner import access_context
from oncoplanner.accounts.mfa import mfa_required_for
from oncoplanner.accounts.middleware import MFA_ENROLLED_KEY
from oncoplanner.accounts.models import ApiToken, User
from oncoplanner.signals import access_changed

TOKEN_PREFIX = "op_"  # noqa: S105 - a public marker, not a secret
MAX_LIFETIME = dt.timedelta(days=90)
DEFAULT_LIFETIME_DAYS = 30
# One message for unknown, expired, revoked and dead-user tokens: a caller cannot tell which.
INVALID_TOKEN_MESSAGE = "Invalid or expired API token."  # noqa: S105 - a message


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the token a name (what it is for)."})
    if "\x00" in name or len(name) > 80:
        raise ValidationError({"name": "A name is at most 80 ordinary characters."})
    return name


@transaction.atomic
def api_token_create(
    *, user: User, name: str, expires_at: dt.datetime, created_by: User
) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns the record and the raw token (shown once, never
    stored). `expires_at` must be in the future and at most 90 days away."""
    name = _clean_name(name)
    now = timezone.now()
    if timezone.is_naive(expires_at):
        raise ValidationError({"expires_at": "Give the expiry with a time zone."})
    if expires_at <= now:
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    if expires_at > now + MAX_LIFETIME:
        raise ValidationError({"expires_at": "A token lives at most 90 days."})
    if not user.is_active:
        raise ValidationError({"user": "An inactive user cannot get a token."})
    if created_by.pk != user.pk and not created_by.is_administrator:
        raise ValidationError({"user": "Only administrators make tokens for someone else."})
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name,
        prefix=raw[:10],
        token_hash=token_hash(raw),
        expires_at=expires_at,
    )
    token.full_clean()
    token.save()
    _log_token_change(token, actor=created_by, granted=True)
    return token, raw


def _log_token_change(token: ApiToken, *, actor: User | None, granted: bool) -> None:
    # A token is a credential that opens every door its user may open: its making and its
    # end go in the access log, with who did it, like a care-team change.
    access_changed.send(
        sender=ApiToken,
        patient=None,
        actor=actor,
        granted=granted,
        detail={"api_token_id": token.pk, "user_id": token.user_id, "prefix": token.prefix},
    )


@transaction.atomic
def api_token_revoke(*, token: ApiToken, by: User) -> ApiToken:
    """Revoke `token` (its owner or an administrator); revoking twice keeps the first time."""
    if by.pk != token.user_id and not by.is_administrator:
        raise ValidationError({"token": "Only the owner or an administrator revokes a token."})
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.revoked_by = by
        token.save(update_fields=["revoked_at", "revoked_by"])
        _log_token_change(token, actor=by, granted=False)
    return token


@transaction.atomic
def api_tokens_revoke_all(*, user: User, by: User | None) -> int:
    """Revoke every live token of `user` (on deactivation); returns how many.

    Precondition: the caller is retiring `user` (an administrator in admin, or a command, where
    `by` may be None). An inactive user's tokens are refused anyway, but only a revoked token
    stays dead when the account is made active again.
    """
    now = timezone.now()
    live = ApiToken.objects.select_for_update().filter(
        user=user, revoked_at__isnull=True, expires_at__gt=now
    )
    revoked = 0
    for token in live:
        token.revoked_at = now
        token.revoked_by = by
        token.save(update_fields=["revoked_at", "revoked_by"])
        _log_token_change(token, actor=by, granted=False)
        revoked += 1
    return revoked


def _live_tokens(raw: str) -> QuerySet[ApiToken]:
    # Live: not revoked, not expired, and its user still active.
    return ApiToken.objects.filter(
        token_hash=token_hash(raw),
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
        user__is_active=True,
    )


def api_token_is_live(raw: str, *, user_id: int) -> bool:
    """Whether `raw` still opens requests for `user_id`: what a long-lived stream checks
    before each delivery, without marking the token used again."""
    return _live_tokens(raw).filter(user_id=user_id).exists()


def api_token_authenticate(raw: str) -> User | None:
    """The active user behind a live token, or None (unknown, expired, revoked, inactive user).

    Marks the token used and sets the access context (user, surface "api") so every log row
    of the request names the token's user.
    """
    if not raw or len(raw) > 200 or not raw.startswith(TOKEN_PREFIX):
        return None
    now = timezone.now()
    token = _live_tokens(raw).select_related("user").first()
    if token is None:
        return None
    # Not on every call: one write per minute of use is enough to tell when it was last used.
    if token.last_used_at is None or now - token.last_used_at > dt.timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    access_context.update(user=token.user, surface="api")
    return token.user


def api_tokens_of(*, user: User) -> list[ApiToken]:
    return list(ApiToken.objects.filter(user=user).order_by("-created_at", "-pk"))


# --- The page ---------------------------------------------------------------------------------


def _needs_mfa(request: HttpRequest) -> bool:
    return mfa_required_for(request.user) and not request.session.get(MFA_ENROLLED_KEY)


def _page(
    request: HttpRequest, *, raw_token: str = "", errors: Any = None, status: int = 200
) -> HttpResponse:
    context = {
        "tokens": api_tokens_of(user=request.user),  # type: ignore[arg-type]
        "raw_token": raw_token,
        "errors": errors or {},
        "default_days": DEFAULT_LIFETIME_DAYS,
        "max_days": MAX_LIFETIME.days,
        "now": timezone.now(),
        "values": request.POST if request.method == "POST" else {},
    }
    return render(request, "api/tokens.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """List my tokens; POST creates one and shows it once on this response only."""
    if _needs_mfa(request):
        return redirect(reverse("mfa_activate_totp"))
    if request.method == "GET":
        return _page(request)
    try:
        days = int(request.POST.get("days", ""))
    except ValueError:
        return _page(request, errors={"days": ["Enter a number of days (1 to 90)."]}, status=400)
    if not 1 <= days <= MAX_LIFETIME.days:
        return _page(request, errors={"days": ["A token lives 1 to 90 days."]}, status=400)
    try:
        _, raw = api_token_create(
            user=request.user,  # type: ignore[arg-type]
            name=request.POST.get("name", ""),
            expires_at=timezone.now() + dt.timedelta(days=days),
            created_by=request.user,  # type: ignore[arg-type]
        )
    except ValidationError as error:
        return _page(request, errors=error.message_dict, status=400)
    response = _page(request, raw_token=raw)
    response["Cache-Control"] = "no-store, private"
    return response


@login_required
@require_POST
def api_token_revoke_view(request: HttpRequest, token_id: int) -> HttpResponse:
    if _needs_mfa(request):
        return redirect(reverse("mfa_activate_totp"))
    token = ApiToken.objects.filter(pk=token_id, user=request.user).first()
    if token is None:
        raise Http404("No API token matches the given query.")
    api_token_revoke(token=token, by=request.user)  # type: ignore[arg-type]
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("api_tokens")


BOTH_CREDENTIALS_MESSAGE = "Send either a session or an API token, not both."


class BearerRefused(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def bearer_token_user(request: HttpRequest) -> tuple[User, str] | None:
    """The user and raw token of a request's `Authorization: Bearer` header, or None when it
    has no such header. BearerRefused (message, status) for a request that also carries a
    session cookie (400: one credential per request) or whose token does not open (401).
    The doors that take tokens outside django-ninja (GraphQL, the live stream) share it."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    if settings.SESSION_COOKIE_NAME in request.COOKIES:
        raise BearerRefused(BOTH_CREDENTIALS_MESSAGE, 400)
    scheme, _, raw = header.partition(" ")
    raw = raw.strip()
    user = api_token_authenticate(raw) if scheme.lower() == "bearer" else None
    if user is None:
        raise BearerRefused(INVALID_TOKEN_MESSAGE, 401)
    return user, raw


def graphql_token_middleware(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Personal API tokens on /graphql/, for clients that are not browsers (mobile apps).

    A bearer token is not an ambient credential, so a request that carries one and no session
    cookie needs no CSRF token: the view itself stays CSRF-protected (never csrf_exempt) and a
    cookie session still needs the CSRF token. An invalid, expired or revoked token is a 401.
    Sits last in MIDDLEWARE: the session and MFA middlewares have already seen an anonymous
    request, and the CSRF check runs later, in the view phase.
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/graphql/"):
            return get_response(request)
        try:
            bearer = bearer_token_user(request)
        except BearerRefused as refused:
            return JsonResponse({"errors": [{"message": refused.message}]}, status=refused.status)
        if bearer is None:
            return get_response(request)
        access_context.update(surface="graphql")
        request.user = bearer[0]
        request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]  # see docstring
        return get_response(request)

    return middleware
