"""The patient dashboard's chart, rendered once per state of the records it shows.

Every open dashboard re-fetches its chart when anything changes for the patient (the live
stream), and a clinician at the chair reloads it between steps: the same records, rendered
again and again. The chart is kept, rendered, under a key that names the state it shows:

- the patient's token and the reference token (patients.models.DataVersion), changed by every
  write through the ORM in the writer's own transaction (the receivers below). The one write
  path guarantees every change to patient data is a save or a delete; reference data
  (regimens, the lab catalogue, care teams, users) changes through saves too. A reader reads
  the tokens before the records, so what it renders is never older than its key says;
- the minute: the chart says "3 hours, 5 minutes ago", "evaluated 14:02", judges a weight's
  age by today's date, and pre-cycle results age out of their window by the hour. A minute's
  lag is the most a time-only change waits, and every write shows at once;
- what about the viewer the chart depends on (on the care team, break-glass, and whether they
  decide to treat: only an oncologist is offered "Plan a course"; a non-medical prescriber
  shares the other clinicians' chart). The chart is rendered without the request or the user,
  so nothing else about the viewer can reach it; its forms carry a placeholder that each
  response replaces with the viewer's own CSRF token.

Not kept: the access gate and its access-log row (every read, hit or miss), who accessed the
record, emergency accesses, the portal invitation, and any render with a form's errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.apps import apps as global_apps
from django.conf import settings
from django.core.cache import caches
from django.db import models
from django.db.models import CharField, OuterRef, Subquery, Value
from django.db.models.functions import Cast, Concat
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from patients.models import DataVersion
from patients.selectors import PHI_PATIENT_PATHS, patient_id_for

CACHE_ALIAS = "charts"
REFERENCE = "reference"
# Rendered in place of the CSRF token; never a valid token (the alphabet has no "-"), so a
# chart served without the swap fails closed on its forms.
CSRF_PLACEHOLDER = "chart-csrf-placeholder"

# Written on every request, or never shown on a chart: a write here changes no chart, and
# bumping a token for it would make every read a miss.
NEVER_ON_A_CHART = frozenset(
    {
        "patients.DataVersion",
        "audit.AccessLog",  # "who accessed" is read afresh on every view, outside the cache
        "audit.AccessLogSeal",
        "audit.AccessLogPatient",  # written with a list view's log row
        "sessions.Session",
        "axes.AccessAttempt",
        "axes.AccessAttemptExpiration",
        "axes.AccessFailureLog",
        "axes.AccessLog",
        "live.ChangeEvent",
        "django_tasks_database.DBTaskResult",
        "mfa.Authenticator",
        "admin.LogEntry",
        "account.EmailConfirmation",
        "accounts.ApiToken",
    }
)


def patient_key(patient_id: int) -> str:
    return f"patient:{patient_id}"


def data_versions_bump(keys: Iterable[str]) -> None:
    """New tokens for `keys`, in the caller's transaction (one upsert; sends no signals)."""
    rows = [DataVersion(key=key, token=uuid.uuid4()) for key in sorted(set(keys))]
    DataVersion.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["key"], update_fields=["token"]
    )


def forget_all_charts() -> None:
    """After writes that send no signals (the demo's bulk seeding): no kept chart matches."""
    data_versions_bump([REFERENCE])


def _keys_changed_by(instance: models.Model) -> list[str]:
    if instance._meta.label in PHI_PATIENT_PATHS:
        patient_id = patient_id_for(instance)
        if patient_id is not None:
            return [patient_key(patient_id)]
    return [REFERENCE]  # shared data, or a patient row whose patient cannot be told


def _saved(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    update_fields = kwargs.get("update_fields")
    # Signing in stamps last_login, which no chart shows: a login is not a change.
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    data_versions_bump(_keys_changed_by(instance))


def _deleted(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    data_versions_bump(_keys_changed_by(instance))


def _related_changed(
    sender: type[models.Model], instance: models.Model, action: str, **kwargs: Any
) -> None:
    # Care-team membership is a user's groups: who is on the team, and so what the care-team
    # card lists. Shared data either way.
    if action.startswith("post_"):
        data_versions_bump([REFERENCE])


def connect_receivers() -> None:
    """Bump tokens on every save and delete of a model a chart can show (PatientsConfig.ready).

    Connected per model rather than for every sender: a model left out (sessions, the access
    log) keeps Django's fast delete, and historical models in migrations send nothing here.
    """
    for model in global_apps.get_models(include_auto_created=True):
        label = model._meta.label
        if label in NEVER_ON_A_CHART:
            continue
        uid = f"chart_cache:{label}"
        if model._meta.auto_created:
            m2m_changed.connect(_related_changed, sender=model, dispatch_uid=uid + ":m2m")
            continue
        post_save.connect(_saved, sender=model, dispatch_uid=uid + ":save")
        post_delete.connect(_deleted, sender=model, dispatch_uid=uid + ":delete")


@dataclass(frozen=True)
class Viewer:
    """Everything about the viewer a chart may depend on: part of the key."""

    on_care_team: bool
    break_glass: bool
    may_decide_to_treat: bool  # the chart offers "Plan a course" (User.may_decide_to_treat)

    @property
    def key(self) -> str:
        return "".join(
            "1" if flag else "0"
            for flag in (self.on_care_team, self.break_glass, self.may_decide_to_treat)
        )


def token_annotations() -> dict[str, Any]:
    """The patient's and the reference tokens, for the gate's own query of the patient: read in
    the same statement as the patient row, so the row is never older than the key it is kept
    under (a separate read could see a write land between the two)."""

    def token(key: Any) -> Subquery:
        return Subquery(DataVersion.objects.filter(key=key).values("token")[:1])

    return {
        "_chart_token": token(Concat(Value("patient:"), Cast(OuterRef("pk"), CharField()))),
        "_reference_token": token(REFERENCE),
    }


def _cache_key(patient: Any, viewer: Viewer) -> str:
    tokens = (getattr(patient, "_chart_token", None), getattr(patient, "_reference_token", None))
    minute = int(timezone.now().timestamp() // 60)
    return f"chart:{patient.pk}:{tokens[0] or '-'}:{tokens[1] or '-'}:{minute}:{viewer.key}"


def chart_html(
    request: HttpRequest,
    *,
    patient: Any,
    viewer: Viewer,
    render: Callable[[str], str],
    keep: bool = True,
) -> SafeString:
    """The chart of `patient` (read with token_annotations()) for `viewer`: kept if this state was rendered in this minute, else
    `render(csrf_placeholder)`, kept when `keep` (no form errors in it). The viewer's own CSRF
    token goes into its forms either way."""
    if not settings.CHART_CACHE or not keep:
        return mark_safe(render(get_token(request)))  # noqa: S308  (a rendered template)
    cache = caches[CACHE_ALIAS]
    key = _cache_key(patient, viewer)
    html = cache.get(key)
    if html is None:
        html = render(CSRF_PLACEHOLDER)
        cache.set(key, html)
    return mark_safe(html.replace(CSRF_PLACEHOLDER, get_token(request)))  # noqa: S308
