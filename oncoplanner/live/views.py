"""Server-sent events: open pages hear that something changed for patients they may see.

The stream passes the same gate as the pages, on every delivery: the visible-patient set is
re-read from the database each time, so revoking care-team membership silences the stream at
once. Deliveries are logged as reads (surface "stream"). An open stream never extends the
session (/stream/ is a background path) and ends when the session expires, the user is
deactivated, or after LIVE_STREAM_MAX_SECONDS; the browser then reconnects with Last-Event-ID
and misses nothing, because events are rows, not messages.

Mobile apps open it with a personal API token (Authorization: Bearer), as for REST and GraphQL;
such a stream ends when the token is revoked or expires, or its user is deactivated.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from importlib import import_module
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET

from oncoplanner.access_context import acting_as
from oncoplanner.accounts.api_tokens import BearerRefused, api_token_is_live, bearer_token_user
from oncoplanner.accounts.middleware import session_expired
from oncoplanner.accounts.models import User
from oncoplanner.live.bus import listening
from oncoplanner.live.models import ChangeEvent
from oncoplanner.signals import record_read
from patients.models import Patient
from patients.selectors import patient_get_for_user, patient_list_visible_to

HEARTBEAT_SECONDS = 15


def _start_id(request: HttpRequest) -> int:
    raw = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id")
    if raw is not None:
        try:
            return max(int(raw), 0)
        except ValueError:
            pass
    # A new connection hears what happens from now on; the page it belongs to is current.
    return ChangeEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _still_signed_in(session_key: str | None, user_id: int) -> bool:
    """Whether a session-opened stream may go on (checked before every delivery)."""
    if not session_key:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    if not store.exists(session_key):
        return False  # logged out elsewhere, or ended by deactivation or a password change
    if session_expired(store, time.time()):
        return False
    return User.objects.filter(pk=user_id, is_active=True).exists()


def _format(event: ChangeEvent) -> str:
    return f"id: {event.pk}\nevent: change\ndata: {json.dumps(event.as_data())}\n\n"


def _deliveries(
    *,
    user: User,
    still_allowed: Callable[[], bool],
    last_id: int,
    patient_id: int | None,
    source_address: str | None,
) -> Iterator[str]:
    deadline = time.monotonic() + settings.LIVE_STREAM_MAX_SECONDS
    wait = min(settings.LIVE_STREAM_WAIT_SECONDS, HEARTBEAT_SECONDS)
    yield "retry: 3000\n\n"
    with acting_as(user, surface="stream", source_address=source_address), listening() as listener:
        while time.monotonic() < deadline:
            if not still_allowed():
                yield "event: signed-out\ndata: {}\n\n"
                return
            visible: Any = patient_list_visible_to(user=user)
            if patient_id is not None:
                visible = visible.filter(pk=patient_id)
            events = list(
                ChangeEvent.objects.filter(
                    pk__gt=last_id, patient_id__in=visible.values("pk")
                ).order_by("pk")[:200]
            )
            if events:
                patients = list(Patient.objects.filter(pk__in={e.patient_id for e in events}))
                record_read.send(sender=ChangeEvent, patients=patients, target=None, action="read")
                for event in events:
                    yield _format(event)
                last_id = events[-1].pk
                continue
            listener.wait(wait)
            yield ": keep-alive\n\n"


def _text(message: str, status: int) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain")


@require_GET
def changes(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    try:
        bearer = bearer_token_user(request)
    except BearerRefused as refused:
        return _text(refused.message, refused.status)
    if bearer is not None:
        user, raw = bearer
        token_user_id = user.pk

        def still_allowed() -> bool:
            return api_token_is_live(raw, user_id=token_user_id)
    elif not user.is_authenticated:
        # An EventSource cannot follow a redirect to a login page: say so plainly.
        return _text("Sign in first.", 401)
    else:
        session_key, user_id = request.session.session_key, user.pk

        def still_allowed() -> bool:
            return _still_signed_in(session_key, user_id)

    patient_id = request.GET.get("patient")
    scope: int | None = None
    if patient_id is not None:
        # The same gate as the page: a patient you may not see is a 404 here too.
        scope = patient_get_for_user(user=user, patient_id=patient_id).pk
    response = StreamingHttpResponse(
        _deliveries(
            user=user,
            still_allowed=still_allowed,
            last_id=_start_id(request),
            patient_id=scope,
            source_address=request.META.get("REMOTE_ADDR"),
        ),
        content_type="text/event-stream",
    )
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"
    return response
