"""Writes on accounts: ending a user's sessions, removing a second factor."""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from oncoplanner.accounts.models import User
from oncoplanner.signals import access_changed


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


@transaction.atomic
def authenticator_remove(*, authenticator: Authenticator, removed_by: User) -> list[int]:
    """Remove someone's second factor (a lost phone); returns the ids of the rows removed.

    Precondition: `removed_by` is an administrator allowed to delete authenticators (admin
    checks it) and is not the owner. Side effects, in this transaction: recovery codes left
    without an authenticator go too (as allauth's own removal does); every session of the
    owner ends, so their next sign-in goes through TOTP enrolment; one access_changed per
    removed row, naming the actor and the owner, so the access log records who did it.
    """
    owner_id = authenticator.user_id
    removed = [(authenticator.pk, authenticator.type)]
    authenticator.delete()
    left = Authenticator.objects.filter(user_id=owner_id)
    if not left.exclude(type=Authenticator.Type.RECOVERY_CODES).exists():
        removed += list(left.values_list("pk", "type"))
        left.delete()
    user_sessions_end(user_id=owner_id)
    for pk, kind in removed:
        access_changed.send(
            sender=Authenticator,
            patient=None,
            actor=removed_by,
            granted=False,
            detail={"user_id": owner_id, "authenticator_id": pk, "authenticator_type": kind},
        )
    return [pk for pk, _ in removed]
