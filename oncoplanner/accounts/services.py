"""Writes on accounts: ending a user's sessions."""

from __future__ import annotations

from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone


@transaction.atomic
def user_sessions_end(*, user_id: int) -> int:
    """Delete every stored session of one user; returns how many ended.

    Session rows only know their user inside the encoded data, so this decodes the unexpired
    ones. It runs on rare events (deactivation, password change), never per request.
    """
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user_id):
            session.delete()
            ended += 1
    return ended
