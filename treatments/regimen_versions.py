"""Regimen versions: a version that a course uses is frozen; a change is a new version.

DOMAIN.md section 2: "Regimens are versioned: a course keeps the version it started on." The
models refuse to change a version in use (treatments.models.regimen_refuse_if_frozen); this
module reads whether a version is frozen and makes the next version to edit instead.
"""

from __future__ import annotations

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.db import models, transaction

from labs.models import PreCycleRule
from oncoplanner.accounts.models import User
from treatments.models import Regimen


def regimen_course_count(*, regimen: Regimen) -> int:
    """How many courses (any status) use this exact version; more than 0 means frozen."""
    return regimen.courses.count() if regimen.pk else 0


def regimen_frozen_note(*, regimen: Regimen) -> str:
    """Why a version is read-only and how to change it; '' for a version no course uses."""
    count = regimen_course_count(regimen=regimen)
    if not count:
        return ""
    courses = f"{count} course uses" if count == 1 else f"{count} courses use"
    return (
        f"{courses} this version ({regimen}), so it is read-only: a course keeps the version it "
        "started on (only whether it is offered for new courses can still change). Create a new "
        "version to change it: select it in the Regimens list and "
        "choose the action \u201cCreate a new version\u201d."
    )


def _copy[M: models.Model](obj: M, **overrides: object) -> M:
    values = {
        field.attname: getattr(obj, field.attname)
        for field in obj._meta.concrete_fields
        if not field.primary_key
    }
    clone = type(obj)(**(values | overrides))
    clone.full_clean()
    clone.save()
    return clone


@transaction.atomic
def regimen_new_version(*, regimen: Regimen, by: User) -> Regimen:
    """Copy `regimen` with its phases, their drugs and its pre-cycle rules as the next version
    of its name (latest version + 1), which no course uses yet and so can be edited.

    Permission precondition: the caller has checked that `by` may add regimens (the admin
    action asks for treatments.add_regimen). The old version and its courses are untouched.
    The copy is not offered for new courses (is_active False) until an administrator has
    finished editing it and ticks "Offered for new courses": a course started on a half-edited
    copy would freeze it. Side effect: an admin history entry (LogEntry) by `by` for the copy.
    """
    # Lock the name's versions so that two administrators cannot both make the same next one
    # (PostgreSQL refuses FOR UPDATE with an aggregate, hence max() in Python).
    versions = Regimen.objects.select_for_update().filter(name=regimen.name)
    latest = max(versions.values_list("version", flat=True), default=regimen.version)
    copy = _copy(regimen, version=latest + 1, is_active=False)
    for phase in regimen.phases.order_by("order").prefetch_related("drugs"):
        phase_copy = _copy(phase, regimen_id=copy.pk)
        for drug in phase.drugs.all():
            _copy(drug, phase_id=phase_copy.pk)
    for rule in PreCycleRule.objects.filter(regimen=regimen).order_by("pk"):
        _copy(rule, regimen_id=copy.pk)
    LogEntry.objects.log_actions(
        user_id=by.pk,
        queryset=[copy],
        action_flag=ADDITION,
        change_message=f"New version of {regimen}: copied its phases, drugs and pre-cycle rules.",
        single_object=True,
    )
    return copy


@transaction.atomic
def regimen_retire_other_versions(*, regimen: Regimen, by: User) -> list[Regimen]:
    """When `regimen` is offered for new courses, stop offering the other versions of its name
    and return them: one version per regimen is offered, so that planning a course never
    shows "mFOLFOX6 v1" and "mFOLFOX6 v2" side by side with nothing to choose between them.

    Courses on a retired version keep it (retiring changes no course). Side effect: an admin
    history entry (LogEntry) by `by` for each version retired.
    """
    if not regimen.is_active:
        return []
    others = list(
        Regimen.objects.select_for_update()
        .filter(name=regimen.name, is_active=True)
        .exclude(pk=regimen.pk)
        .order_by("version")
    )
    for other in others:
        other.is_active = False
        other.save(update_fields=["is_active"])
    if others:
        LogEntry.objects.log_actions(
            user_id=by.pk,
            queryset=others,
            action_flag=CHANGE,
            change_message=f"No longer offered for new courses: {regimen} replaces it.",
        )
    return others
