"""Signal receivers that turn every access into exactly one access-log row.

Connected once in AuditConfig.ready() (each with a dispatch_uid, so a second connect() is a
no-op and cannot double the rows). Domain apps never import audit: they save models (post_save
/ post_delete) and the access gate sends oncoplanner.signals.record_read / access_changed.

Signals run synchronously in the sender's transaction and these receivers do not catch errors:
if the row cannot be written the exception reaches the service, its transaction rolls back, and
the request fails. That is deliberate (fail closed); never move these writes to on_commit.

The rule for "exactly one row per access": one row per save, per delete, per read signal, per
login event. A service that saves the same object twice writes two rows (two writes happened);
a save that changes nothing still writes one (someone wrote). A failed login that meets or
causes an axes lock is logged once, as LOCKOUT, not also as LOGIN_FAILED.
"""

from __future__ import annotations

from typing import Any

from allauth.mfa import signals as mfa_signals
from axes.signals import user_locked_out
from django.apps import apps
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import models
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest

from audit.models import AccessLog
from audit.registry import PHI_MODELS, patient_id_for
from audit.services import access_log_record
from oncoplanner import access_context
from oncoplanner.signals import access_changed, record_read

Action = AccessLog.Action
Outcome = AccessLog.Outcome

READ_ACTIONS = {Action.READ, Action.LIST, Action.EXPORT}
# Keys under which login forms pass the attempted name; the password is never read.
USERNAME_KEYS = ("username", "login", "email")


def _type_name(obj: object) -> str:
    meta = getattr(obj, "_meta", None)
    return meta.object_name if meta is not None else ""


# --- writes to PHI models ---------------------------------------------------------------------


def phi_saved(
    sender: type[models.Model],
    instance: models.Model,
    created: bool,
    raw: bool = False,
    update_fields: frozenset[str] | None = None,
    **kwargs: Any,
) -> None:
    detail: dict[str, Any] = {}
    if update_fields:
        # Field names only: values would copy PHI into the log.
        detail["fields"] = sorted(update_fields)
    if raw:
        detail["raw"] = True  # loaddata: fixtures are writes too
    patient_id = patient_id_for(instance)
    access_log_record(
        action=Action.CREATE if created else Action.UPDATE,
        patient_ids=[patient_id] if patient_id else [],
        object_type=_type_name(instance),
        object_id=instance.pk,
        detail=detail,
    )


def phi_deleted(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    patient_id = patient_id_for(instance)
    access_log_record(
        action=Action.DELETE,
        patient_ids=[patient_id] if patient_id else [],
        object_type=_type_name(instance),
        object_id=instance.pk,
    )


# --- reads and access changes (project signals) -----------------------------------------------


def record_read_received(
    sender: Any,
    patients: list[Any] | tuple[Any, ...] = (),
    target: models.Model | None = None,
    action: str = Action.READ,
    outcome: str = Outcome.SUCCESS,
    detail: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """One row per read signal: the gate sends one per page, fragment, route or export.

    Optional kwargs beyond the documented ones: outcome="denied" for a refused access (the
    gate's 404), detail (no PHI values), action="export".
    """
    if action not in READ_ACTIONS:
        raise ValueError(
            f"record_read action must be one of {sorted(READ_ACTIONS)}, not {action!r}"
        )
    if target is not None:
        object_type, object_id = _type_name(target), target.pk
    else:
        object_type, object_id = _type_name(sender), ""
    access_log_record(
        action=action,
        patient_ids=[p.pk for p in patients],
        object_type=object_type,
        object_id=object_id,
        outcome=outcome,
        detail=detail,
    )


def access_changed_received(
    sender: Any,
    patient: Any = None,
    actor: Any = None,
    granted: bool = True,
    detail: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    details = {"granted": bool(granted), **(detail or {})}
    if patient is not None:
        object_type, object_id = "Patient", patient.pk
    else:
        object_type = _type_name(sender)
        # The changed object's own id: a team, an API token, a second factor.
        ids = (details.get(key) for key in ("care_team_id", "api_token_id", "authenticator_id"))
        object_id = next((i for i in ids if i is not None), "")
    access_log_record(
        action=Action.ACCESS_CHANGE,
        patient_ids=[patient.pk] if patient is not None else [],
        object_type=object_type,
        object_id=object_id,
        detail=details,
        **({"user": actor} if actor is not None else {}),
    )


# --- authentication ---------------------------------------------------------------------------


def _context_active() -> bool:
    # Only refresh the context inside a request the middleware opened; outside one (the test
    # client's login(), a shell) a refresh would leak the user into the thread's context.
    return access_context._current.get() is not None


def logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    # The context was set before login, with no user: the signal's user is the one logging in.
    access_log_record(action=Action.LOGIN, user=user, object_type="User", object_id=user.pk)
    if _context_active():
        access_context.update(user=user)


def logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    access_log_record(
        action=Action.LOGOUT,
        user=user,
        object_type="User",
        object_id=getattr(user, "pk", "") or "",
    )
    if _context_active():
        access_context.update(user=None)


def login_failed(
    sender: Any,
    credentials: dict[str, Any],
    request: HttpRequest | None = None,
    **kwargs: Any,
) -> None:
    if request is not None and getattr(request, "axes_locked_out", False):
        return  # axes sends user_locked_out for this attempt: one row, as LOCKOUT
    attempted = next((str(credentials[k]) for k in USERNAME_KEYS if credentials.get(k)), "")
    access_log_record(
        action=Action.LOGIN_FAILED,
        user=None,
        username=attempted,
        outcome=Outcome.DENIED,
        object_type="User",
    )


def locked_out(
    sender: Any, request: HttpRequest | None = None, username: str | None = None, **kwargs: Any
) -> None:
    access_log_record(
        action=Action.LOCKOUT,
        user=None,
        username=username or "",
        outcome=Outcome.DENIED,
        object_type="User",
    )


def _mfa_receiver(change: str) -> Any:
    def receiver(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
        authenticator = kwargs.get("authenticator")
        access_log_record(
            action=Action.MFA_CHANGE,
            user=user,
            object_type="Authenticator",
            object_id=getattr(authenticator, "pk", "") or "",
            detail={"change": change, "type": str(getattr(authenticator, "type", ""))},
        )

    receiver.__name__ = f"mfa_{change}"
    return receiver


mfa_added = _mfa_receiver("added")
mfa_removed = _mfa_receiver("removed")
mfa_reset = _mfa_receiver("reset")


def connect() -> None:
    """Connect every receiver; idempotent (dispatch_uid), called from AuditConfig.ready()."""
    for label in PHI_MODELS:
        model = apps.get_model(label)  # a typo or a removed model fails start-up, loudly
        post_save.connect(phi_saved, sender=model, dispatch_uid=f"audit_save_{label}")
        post_delete.connect(phi_deleted, sender=model, dispatch_uid=f"audit_delete_{label}")
    record_read.connect(record_read_received, dispatch_uid="audit_record_read")
    access_changed.connect(access_changed_received, dispatch_uid="audit_access_changed")
    user_logged_in.connect(logged_in, dispatch_uid="audit_logged_in")
    user_logged_out.connect(logged_out, dispatch_uid="audit_logged_out")
    user_login_failed.connect(login_failed, dispatch_uid="audit_login_failed")
    user_locked_out.connect(locked_out, dispatch_uid="audit_locked_out")
    mfa_signals.authenticator_added.connect(mfa_added, dispatch_uid="audit_mfa_added")
    mfa_signals.authenticator_removed.connect(mfa_removed, dispatch_uid="audit_mfa_removed")
    mfa_signals.authenticator_reset.connect(mfa_reset, dispatch_uid="audit_mfa_reset")
