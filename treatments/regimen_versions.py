"""Regimen versions: approved by an oncologist and a pharmacist before anyone prescribes
them; frozen once approved or used; a change is a new version.

DOMAIN.md section 2: "Regimens are versioned: a course keeps the version it started on." The
models refuse to change a version in use or approved (treatments.models.
regimen_refuse_if_frozen); this module reads whether a version is frozen, records approvals,
and makes the next version to edit instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import timezone

from labs.models import PreCycleRule
from oncoplanner.accounts.cosign import COSIGN_FAILURE_LIMIT, password_signature
from oncoplanner.accounts.models import User
from treatments.models import (
    DoseBasis,
    Regimen,
    RegimenApproval,
    RegimenDrug,
    SupportiveMedication,
)
from treatments.services import regimen_planned_doses


def regimen_course_count(*, regimen: Regimen) -> int:
    """How many courses (any status) use this exact version; more than 0 means frozen."""
    return regimen.courses.count() if regimen.pk else 0


def regimen_is_frozen(*, regimen: Regimen) -> bool:
    """Read-only everywhere: used by a course, approved, or with one of its two approvals."""
    return bool(regimen.pk) and (
        regimen.approved_at is not None
        or regimen.approvals.exists()
        or regimen_course_count(regimen=regimen) > 0
    )


def regimen_frozen_note(*, regimen: Regimen) -> str:
    """Why a version is read-only and how to change it; '' for a version still editable."""
    count = regimen_course_count(regimen=regimen)
    if not count and regimen.pk and (regimen.approved_at or regimen.approvals.exists()):
        return (
            f"This version ({regimen}) has been approved for prescribing, or has one of its two "
            "approvals, so it is read-only: what the oncologist and the pharmacist checked is "
            "what is prescribed. Create a new version to change it: select it in the Regimens "
            "list and choose the action \u201cCreate a new version\u201d."
        )
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
    """Copy `regimen` with its phases, their drugs, its pre-cycle rules and its supportive care
    as the next version
    of its name (latest version + 1), which no course uses yet and so can be edited.

    Permission precondition: the caller has checked that `by` may add regimens (the admin
    action asks for treatments.add_regimen). The old version and its courses are untouched.
    The copy is not offered for new courses until an oncologist and a pharmacist have approved
    it (regimen_approve) and an administrator ticks "Offered for new courses": a course started
    on a half-edited copy would freeze it. `by` is its author, who cannot approve it. Side
    effect: an admin history entry (LogEntry) by `by` for the copy.
    """
    # Lock the name's versions so that two administrators cannot both make the same next one
    # (PostgreSQL refuses FOR UPDATE with an aggregate, hence max() in Python).
    versions = Regimen.objects.select_for_update().filter(name=regimen.name)
    latest = max(versions.values_list("version", flat=True), default=regimen.version)
    copy = _copy(
        regimen, version=latest + 1, is_active=False, approved_at=None, created_by_id=by.pk
    )
    phases: dict[int, int] = {}  # old phase id -> its copy's
    drugs: dict[int, int] = {}  # old regimen drug id -> its copy's
    for phase in regimen.phases.order_by("order").prefetch_related("drugs"):
        phase_copy = _copy(phase, regimen_id=copy.pk)
        phases[phase.pk] = phase_copy.pk
        for drug in phase.drugs.all():
            drugs[drug.pk] = _copy(drug, phase_id=phase_copy.pk).pk
    for rule in PreCycleRule.objects.filter(regimen=regimen).order_by("pk"):
        _copy(rule, regimen_id=copy.pk)
    # Supportive care points at the copy's own phase and drug: a premedication left pointing
    # at the old version's paclitaxel would never be asked for on the new one.
    for sm in SupportiveMedication.objects.filter(regimen=regimen).order_by("pk"):
        _copy(
            sm,
            regimen_id=copy.pk,
            phase_id=phases.get(sm.phase_id) if sm.phase_id else None,
            required_before_id=drugs.get(sm.required_before_id) if sm.required_before_id else None,
        )
    LogEntry.objects.log_actions(
        user_id=by.pk,
        queryset=[copy],
        action_flag=ADDITION,
        change_message=f"New version of {regimen}: copied its phases, drugs, pre-cycle rules "
        "and supportive care.",
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


def _approving_discipline(user: User) -> str:
    # By discipline, never by prescribing rights: a pharmacist who is also a non-medical
    # prescriber signs as the pharmacist, never as the oncologist.
    if user.is_oncologist:
        return RegimenApproval.Discipline.ONCOLOGIST
    if user.is_pharmacist:
        return RegimenApproval.Discipline.PHARMACIST
    raise PermissionDenied("Only an oncologist or a pharmacist approves a regimen version.")


def regimen_missing_approvals(*, regimen: Regimen) -> list[str]:
    """The disciplines still to approve `regimen` ("oncologist", "pharmacist"); [] once it is
    approved (including the library approved before approvals were recorded)."""
    if regimen.approved_at is not None:
        return []
    done = {a.discipline for a in regimen.approvals.all()}
    return [d for d in RegimenApproval.Discipline.values if d not in done]


@dataclass(frozen=True)
class PlanLifetimeTotal:
    """A drug with a lifetime limit: what the version's whole plan gives at 100% (mg/m²)."""

    drug_name: str
    plan_mg_m2: Decimal
    limit_mg_m2: Decimal

    @property
    def over(self) -> bool:
        return self.plan_mg_m2 > self.limit_mg_m2


def regimen_plan_lifetime_totals(*, regimen: Regimen) -> list[PlanLifetimeTotal]:
    """Each drug with a lifetime limit, and what the whole plan gives of it. A regimen that
    alone passes a limit is a wrong dose (a tenfold doxorubicin had passed approval unseen)."""
    totals: dict[str, PlanLifetimeTotal] = {}
    for rd, count in regimen_planned_doses(regimen):
        limit = rd.drug.lifetime_limit_mg_m2
        if not limit or rd.dose_basis != DoseBasis.MG_M2:
            continue
        before = totals.get(rd.drug.name)
        totals[rd.drug.name] = PlanLifetimeTotal(
            rd.drug.name,
            Decimal(rd.dose) * count + (before.plan_mg_m2 if before else 0),
            Decimal(limit),
        )
    return sorted(totals.values(), key=lambda t: t.drug_name)


def regimen_previous_version(*, regimen: Regimen) -> Regimen | None:
    return (
        Regimen.objects.filter(name=regimen.name, version__lt=regimen.version)
        .order_by("-version")
        .first()
    )


def regimen_changes_from(*, regimen: Regimen, previous: Regimen) -> dict[int, str]:
    """For each regimen drug of `regimen` that differs from `previous` (same phase order and
    drug): what it was ("was 60 mg/m², IV, day 1"), or "new"; what approvers must look at."""
    before: dict[tuple[int, str], RegimenDrug] = {
        (rd.phase.order, rd.drug.name): rd
        for rd in RegimenDrug.objects.filter(phase__regimen=previous).select_related(
            "phase", "drug"
        )
    }
    changes: dict[int, str] = {}
    for rd in RegimenDrug.objects.filter(phase__regimen=regimen).select_related("phase", "drug"):
        old = before.get((rd.phase.order, rd.drug.name))
        if old is None:
            changes[rd.pk] = f"new in v{regimen.version}"
        elif _drug_line(old) != _drug_line(rd):
            changes[rd.pk] = f"was {_drug_line(old)} in v{previous.version}"
    return changes


def _supportive_key(sm: SupportiveMedication) -> tuple[object, ...]:
    return (sm.phase.order if sm.phase_id else None, sm.category, sm.medication.casefold())


def supportive_line(sm: SupportiveMedication) -> str:
    """One supportive medication as the version comparison shows it."""
    parts = [sm.dose_route or "no dose given", f"day {sm.days}"]
    if sm.timing:
        parts.append(sm.timing)
    if sm.required_before_id:
        parts.append(f"required before {sm.required_before.drug}")
    return ", ".join(parts)


@dataclass(frozen=True)
class SupportiveChanges:
    """What changed in the supportive care from the previous version: per row of this one
    (by pk, "new in v2" or "was ..."), and the rows the previous one had and this one has not."""

    changed: dict[int, str]
    removed: list[str]


def regimen_supportive_changes_from(*, regimen: Regimen, previous: Regimen) -> SupportiveChanges:
    """Supportive care of `regimen` against `previous`, matched on (phase order, category,
    medication): a premedication dropped from a new version must be as visible to approvers
    as a changed dose."""
    related = ("phase", "required_before__drug")
    before = {
        _supportive_key(sm): sm
        for sm in SupportiveMedication.objects.filter(regimen=previous).select_related(*related)
    }
    changed: dict[int, str] = {}
    seen: set[tuple[object, ...]] = set()
    for sm in SupportiveMedication.objects.filter(regimen=regimen).select_related(*related):
        key = _supportive_key(sm)
        seen.add(key)
        old = before.get(key)
        if old is None:
            changed[sm.pk] = f"new in v{regimen.version}"
        elif supportive_line(old) != supportive_line(sm):
            changed[sm.pk] = f"was {supportive_line(old)} in v{previous.version}"
    removed = [
        f"{sm.get_category_display()}: {sm.medication} ({supportive_line(sm)})"
        for key, sm in before.items()
        if key not in seen
    ]
    return SupportiveChanges(changed=changed, removed=removed)


def _drug_line(rd: RegimenDrug) -> str:
    cap = f", cap {rd.max_dose_mg.normalize():f} mg" if rd.max_dose_mg else ""
    return (
        f"{Decimal(rd.dose).normalize():f} {rd.get_dose_basis_display()}, {rd.route}, "
        f"day {rd.days}{cap}"
    )


def _refuse_unapprovable(regimen: Regimen, by: User, discipline: str) -> None:
    if regimen.approved_at is not None:
        raise ValidationError({"regimen": f"{regimen} is approved already."})
    if regimen.created_by_id == by.pk:
        raise ValidationError(
            {
                "regimen": f"You built {regimen}: two other people, an oncologist and a "
                "pharmacist, approve it."
            }
        )
    for approval in regimen.approvals.select_related("approved_by"):
        if approval.approved_by_id == by.pk:
            raise ValidationError(
                {"regimen": f"You approved {regimen} already; a second person approves it too."}
            )
        if approval.discipline == discipline:
            raise ValidationError(
                {
                    "regimen": f"{approval.approved_by} approved {regimen} as "
                    f"{approval.get_discipline_display().lower()} already."
                }
            )
    phases = list(regimen.phases.prefetch_related("drugs"))
    if not phases or any(not phase.drugs.all() for phase in phases):
        raise ValidationError(
            {"regimen": f"{regimen} has a phase without drugs (or no phase): finish it first."}
        )
    over = [t for t in regimen_plan_lifetime_totals(regimen=regimen) if t.over]
    if over:
        raise ValidationError(
            {
                "regimen": "; ".join(
                    f"{t.drug_name}: the whole plan gives {t.plan_mg_m2.normalize():f} mg/m², "
                    f"above its lifetime limit of {t.limit_mg_m2.normalize():f} mg/m²"
                    for t in over
                )
                + ". A dose or the number of cycles is wrong: a new version corrects it; this "
                "one is not approved."
            }
        )


def regimen_approve(
    *, regimen: Regimen, by: User, password: str, checked: bool, note: str = ""
) -> RegimenApproval:
    """Record `by`'s approval of `regimen` for prescribing, as oncologist or pharmacist.

    Refused: anyone else (PermissionDenied); the version's author; a second approval by the
    same person or in the same discipline; a version approved already or without drugs; a
    wrong password (re-entered as a signature: wrong ones are paused and logged like a
    co-sign); `checked` False (the approver confirms having checked every drug, dose, day and
    pre-cycle rule against the published source). The second approval sets approved_at, and
    the version can then be offered for new courses. Either approval freezes the version.
    Side effect: an admin history entry (LogEntry) by `by`.
    """
    discipline = _approving_discipline(by)
    _refuse_unapprovable(regimen, by, discipline)
    if not checked:
        raise ValidationError(
            {
                "checked": "Confirm that you checked every drug, dose, day, pre-cycle rule and "
                "supportive medication "
                "against the source."
            }
        )
    # Outside the approval's transaction: a wrong password's log row and pause must outlive
    # the refusal (they would be rolled back with it).
    password_signature(
        signer=by,
        password=password,
        field="password",
        door="regimen approval",
        paused="Signing regimen approvals is paused for 15 minutes after "
        f"{COSIGN_FAILURE_LIMIT} wrong passwords (you can still sign in and work). Try again "
        "later.",
        refused="Your password was not accepted: type your own password to sign the approval.",
    )
    return _approval_record(regimen, by, discipline, note)


@transaction.atomic
def _approval_record(regimen: Regimen, by: User, discipline: str, note: str) -> RegimenApproval:
    regimen = Regimen.objects.select_for_update().get(pk=regimen.pk)
    _refuse_unapprovable(regimen, by, discipline)  # again, under the lock: two at once
    approval = RegimenApproval(
        regimen=regimen, approved_by=by, discipline=discipline, note=note.strip()
    )
    approval.full_clean()
    approval.save()
    if not regimen_missing_approvals(regimen=regimen):
        regimen.approved_at = timezone.now()
        regimen.save(update_fields=["approved_at"])
    LogEntry.objects.log_actions(
        user_id=by.pk,
        queryset=[regimen],
        action_flag=CHANGE,
        change_message=f"Approved for prescribing by {by} ({approval.get_discipline_display()})"
        + (": the version is approved." if regimen.approved_at else "."),
        single_object=True,
    )
    return approval
