"""Writes to courses, cycles, doses and side effects: the one write path (STYLE.md).

Every write validates with full_clean() and saves in one transaction, row by row (never
QuerySet.update(), which sends no post_save and so would escape the access log). A failed write
raises a ValidationError naming the field and writes nothing. Every give, delay, hold and
cancellation of a cycle (course_stop's included) also adds a row to the cycle's history
(CycleStatusChange, append-only), in the same transaction.

Permission precondition for every function: the caller has already authorised the acting user
on the patient (patients.selectors, perm change_patient). These functions do not check access.

Three reads live here beside the rules they serve: `dose_percent_for` (the carry-forward rule
that administration_record applies), `cycle_dose_plan` (a cycle's doses and whether their
verification holds, as the page, the pharmacist, the chair and the worklist all see them) and
`cumulative_dose_per_drug`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import partial

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from labs.rules import fmt_decimal
from oncoplanner.accounts.models import User
from oncoplanner.acknowledgement import acknowledge
from oncoplanner.confirmation import ConfirmationRequired, refuse_unconfirmed
from oncoplanner.dates import day_text
from patients.models import Allergy, Patient, latest_measurement
from patients.selectors import allergy_status_recorded
from treatments.dosing import (
    DoseCalculation,
    MeasurementReader,
    Number,
    dose_compute,
    measurements_read,
    remembered_measurements,
    round_mg,
    to_decimal,
)
from treatments.models import (
    Administration,
    ChemoCycle,
    Course,
    CtcaeTerm,
    CycleStatusChange,
    DoseBasis,
    DoseModification,
    DoseVerification,
    Drug,
    Regimen,
    RegimenDrug,
    SideEffect,
    SupportiveMedication,
    parse_days,
)
from treatments.tasks import notify_care_team_of_severe_side_effect

OPEN_CYCLE_STATUSES = (
    ChemoCycle.Status.PLANNED,
    ChemoCycle.Status.READY,
    ChemoCycle.Status.DELAYED,
    ChemoCycle.Status.HELD,
)
OPEN_COURSE_STATUSES = (Course.Status.PLANNED, Course.Status.ACTIVE)


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Give a reason."})
    return reason


DECISION_TO_TREAT_ONLY = (
    "Only an oncologist decides to treat: starting a course and stopping a course. Within a "
    "course an oncologist or a non-medical prescriber (a nurse or pharmacist authorised for "
    "SACT) changes dose levels, cancels cycles and releases held ones."
)
CYCLE_PRESCRIBER_ONLY = (
    "Only an oncologist or a non-medical prescriber (a nurse or pharmacist authorised for SACT) "
    "prescribes a course's cycles: changing a dose level, cancelling a cycle, releasing a held "
    "cycle. Starting and stopping a course are an oncologist's decisions."
)


# Who may prescribe what (BOPA/UKONS guidance on non-medical prescribing of SACT): refused, not
# hidden, so every door (page, REST, GraphQL) answers 403 alike. Nurses give, pharmacists
# verify; those the trust authorised (User.sact_prescriber) also prescribe cycles.
def _require_decision_to_treat(user: User) -> None:
    # Starting and ending treatment stay with the consultant oncologist.
    if not user.may_decide_to_treat:
        raise PermissionDenied(DECISION_TO_TREAT_ONLY)


def _require_cycle_prescriber(user: User) -> None:
    # After the decision to treat: an oncologist or a non-medical prescriber.
    if not user.may_prescribe_cycles:
        raise PermissionDenied(CYCLE_PRESCRIBER_ONLY)


def _require_open_course(course: Course, field: str = "course") -> None:
    if course.status not in OPEN_COURSE_STATUSES:
        raise ValidationError(
            {field: f"The course is {course.get_status_display().lower()}; it cannot change."}
        )


def cycle_drug_days(*, cycle: ChemoCycle) -> list[tuple[RegimenDrug, int]]:
    """Every (drug, day) the cycle's phase plans, in drug order then day."""
    return _phase_drug_days([cycle.phase_id])[cycle.phase_id]


def _phase_drug_days(phase_ids: Iterable[int]) -> dict[int, list[tuple[RegimenDrug, int]]]:
    """cycle_drug_days of each phase in `phase_ids`, in one query: every (drug, day) it plans,
    in drug order then day."""
    by_phase: dict[int, list[tuple[RegimenDrug, int]]] = {pk: [] for pk in phase_ids}
    regimen_drugs = RegimenDrug.objects.filter(phase_id__in=by_phase).select_related("drug")
    for rd in regimen_drugs.order_by("order", "pk"):
        by_phase[rd.phase_id].extend((rd, day) for day in parse_days(rd.days))
    return by_phase


def supportive_medications_for_phase(
    *, phase_id: int, regimen_id: int
) -> list[SupportiveMedication]:
    """The regimen version's supportive care that goes with cycles of `phase_id`: the rows of
    that phase and the rows for every phase, in order. Reference data (no patient): no gate."""
    return list(
        SupportiveMedication.objects.filter(regimen_id=regimen_id)
        .filter(Q(phase_id=phase_id) | Q(phase__isnull=True))
        .select_related("phase", "required_before__drug")
        .order_by("phase__order", "order", "pk")
    )


@dataclass(frozen=True)
class SupportiveDue:
    """A supportive medication due on a day of a cycle, with the day's date."""

    medication: SupportiveMedication
    day: int
    date: dt.date


def cycle_supportive_care(*, cycle: ChemoCycle) -> list[SupportiveDue]:
    """What supportive care is due with `cycle`, by day (the cycle page and the chair)."""
    rows = supportive_medications_for_phase(
        phase_id=cycle.phase_id, regimen_id=cycle.course.regimen_id
    )
    due = [
        SupportiveDue(medication=sm, day=day, date=cycle.start + dt.timedelta(days=day - 1))
        for sm in rows
        for day in sm.day_list
    ]
    return sorted(due, key=lambda d: (d.day, d.medication.phase_id is None, d.medication.order))


def required_premedication(
    *, regimen_drug: RegimenDrug, day_of_cycle: int
) -> list[SupportiveMedication]:
    """The supportive medication that must be given before `regimen_drug` on that day."""
    return [
        sm
        for sm in SupportiveMedication.objects.filter(required_before=regimen_drug).order_by(
            "order", "pk"
        )
        if day_of_cycle in sm.day_list
    ]


def supportive_line(sm: SupportiveMedication) -> str:
    """ "dexamethasone 20 mg PO (12 h and 6 h before paclitaxel)": as the nurse confirms it."""
    dose = f" {sm.dose_route}" if sm.dose_route else ""
    timing = f" ({sm.timing})" if sm.timing else ""
    return f"{sm.medication}{dose}{timing}"


class PremedicationToConfirm(ConfirmationRequired):
    """A drug with required premedication: recorded only once the nurse confirms it was given
    (paclitaxel without its premedication risks a severe hypersensitivity reaction)."""

    confirm_with = "confirm_premedication"


def _premedication_confirmed(
    regimen_drug: RegimenDrug, day_of_cycle: int, *, confirmed: bool
) -> list[str]:
    """[] when nothing is required before the drug that day; the premedication as confirmed
    (kept on the administration) once the nurse confirmed it; PremedicationToConfirm until then."""
    required = [
        supportive_line(sm)
        for sm in required_premedication(regimen_drug=regimen_drug, day_of_cycle=day_of_cycle)
    ]
    if required and not confirmed:
        raise PremedicationToConfirm(
            {
                "confirm_premedication": f"{regimen_drug.drug} is given only after its required "
                f"premedication: {'; '.join(required)}. Confirm that it was given before "
                f"recording {regimen_drug.drug}."
            }
        )
    return required


def _require_prescriber_for_held(cycle: ChemoCycle, by: User, act: str) -> None:
    # A hold is often for something the labs do not show (an echo, a scan, consent): a nurse
    # had given a held cycle because its bloods passed, and could lift a hold by delaying it.
    # Releasing it is prescribing the cycle: an oncologist or a non-medical prescriber.
    if cycle.status == ChemoCycle.Status.HELD and not by.may_prescribe_cycles:
        raise PermissionDenied(
            f"Cycle {cycle.number} is on hold (“{cycle.reason}”): {act} is an oncologist's "
            "or a non-medical prescriber's decision."
        )


class CycleChanged(ValidationError):
    """The cycle changed after the page that asked for this action was shown."""

    http_status = 409  # a conflict with the record as it is now, not malformed input


def _lock_cycle(cycle: ChemoCycle, seen_version: str | None = None) -> ChemoCycle:
    """Re-read the cycle under a row lock so two clinicians cannot give it twice at once.

    With `seen_version` (ChemoCycle.version as the form showed it), an action on a cycle that
    changed since is refused: a double click on Delay had delayed twice, and a second tab
    acted on a schedule that no longer existed.
    """
    locked = (
        ChemoCycle.objects.select_for_update().select_related("course", "phase").get(pk=cycle.pk)
    )
    if seen_version is not None and seen_version != locked.version:
        who = f" by {locked.status_changed_by}" if locked.status_changed_by_id else ""
        raise CycleChanged(
            {
                "cycle": f"Cycle {locked.number} changed after this page was opened: it is now "
                f"{locked.get_status_display().lower()}{who}, day 1 {day_text(locked.start)}. "
                "Nothing was done; check it and act again if still needed."
            }
        )
    return locked


def _save(
    obj: Course | ChemoCycle | CycleStatusChange | DoseModification | Administration | SideEffect,
) -> None:
    obj.full_clean()
    obj.save()


def _save_status_change(cycle: ChemoCycle, *, planned_start_before: dt.date) -> CycleStatusChange:
    """Save `cycle`, just given, delayed, held or cancelled, and keep that change in its
    history (CycleStatusChange) in the same transaction: the cycle holds only its latest
    status and reason, and a second delay must not overwrite the first in the record.
    Returns the history row, for the later cycles the change moves (_shift_later_open_cycles)."""
    _save(cycle)
    change = status_change_of(cycle, planned_start_before=planned_start_before)
    _save(change)
    return change


def status_change_of(
    cycle: ChemoCycle,
    *,
    planned_start_before: dt.date,
    moved_with: CycleStatusChange | None = None,
) -> CycleStatusChange:
    """The history row (unsaved) of the change `cycle` now shows: its status, who and when.

    For a give, the reason kept is the override reason (and what the pre-cycle check said):
    the cycle's own `reason` still holds an earlier hold's or delay's reason.

    With `moved_with` (an earlier cycle's delay or give, saved), the row of `cycle` moved by
    it: `cycle`'s own status, which that change did not touch, with its reason, who and when.
    """
    given = cycle.status == ChemoCycle.Status.GIVEN
    if moved_with is not None:
        reason, by, at = moved_with.reason, moved_with.by, moved_with.at
    else:
        reason = cycle.override_reason if given else cycle.reason
        by, at = cycle.status_changed_by, cycle.status_changed_at
    return CycleStatusChange(
        cycle=cycle,
        status=cycle.status,
        reason=reason,
        given_despite=cycle.given_despite if given else "",
        planned_start_before=planned_start_before,
        planned_start_after=cycle.planned_start,
        actual_start=cycle.actual_start if given else None,
        by=by,
        at=at,
        moved_with=moved_with,
    )


def _shift_later_open_cycles(cause: CycleStatusChange, delta: dt.timedelta) -> None:
    """Move every later not-yet-given cycle by `delta`, one save each (audited), each with a
    history row saying it moved with `cause` (the earlier cycle's delay or give, just saved):
    otherwise cycle 3's page showed a new planned start and nothing said why."""
    if not delta:
        return
    cycle = cause.cycle
    later = cycle.course.cycles.select_for_update().filter(
        number__gt=cycle.number, status__in=OPEN_CYCLE_STATUSES
    )
    for other in later.order_by("number"):
        planned_start_before = other.planned_start
        other.planned_start += delta
        _save(other)
        # One save each, as every history row: the access log records each move's creation.
        _save(status_change_of(other, planned_start_before=planned_start_before, moved_with=cause))


def _complete_course_if_done(course: Course) -> None:
    """A course completes when no cycle is left to give (each is given or cancelled)."""
    if (
        course.status in OPEN_COURSE_STATUSES
        and not course.cycles.filter(status__in=OPEN_CYCLE_STATUSES).exists()
    ):
        course.status = Course.Status.COMPLETED
        _save(course)


# --- Courses and cycles -------------------------------------------------------------------


@transaction.atomic
def course_start(
    *,
    patient: Patient,
    regimen: Regimen,
    start_date: dt.date,
    intent: str,
    created_by: User,
    confirm_past_start: bool = False,
    confirm_lifetime_limit: bool = False,
    confirm_allergy: bool = False,
    confirm_concurrent_course: bool = False,
    confirm_reason: str = "",
) -> Course:
    """Start `patient` on `regimen` (this exact version) and schedule every cycle.

    A patient with another open course raises ConcurrentCourseToConfirm until
    `confirm_concurrent_course` (a second course with the same drugs had started silently,
    doubling them). Going past an allergy or another open course also needs `confirm_reason`,
    the prescriber's own words (a desensitisation protocol, why both courses), kept with the
    warnings on the course. The lifetime check counts the doses still planned in the
    patient's other open courses.

    A plan that takes a drug above its lifetime limit (what the patient has had plus the whole
    plan at 100%: anthracycline cardiotoxicity) raises LifetimeLimitToConfirm until
    `confirm_lifetime_limit`: the preview's warning had been one click from a course past it.
    A regimen with a drug the patient has a recorded allergy to raises AllergyToConfirm until
    `confirm_allergy`.

    These warnings are all looked for before any is raised: more than one still to confirm is
    one ConfirmationsRequired listing each (its field, its words, its flag), so the prescriber
    sees them together and confirms them in one go (three round trips, each showing one
    warning, had hidden the others). A confirmation already given is not asked again. A box
    ticked without `confirm_reason` is its own error, reported with the warnings still asked.

    Cycles of all phases are numbered 1..N in phase order; cycle 1 is planned on `start_date`
    and each next one a cycle length (of the phase it follows) later. The course is active, or
    planned when `start_date` is in the future.

    Refused outright, before any warning is asked: a regimen version not approved by an
    oncologist and a pharmacist, an inactive regimen, a regimen without phases, a second open
    (planned or active) course of the same regimen name, any version, for the patient (a
    double entry would double every dose; stop or complete the first course before starting
    again), a start before the patient's birth or more than a year ahead. A start more than
    settings.COURSE_START_MAX_DAYS_AGO days ago raises PastStartToConfirm until
    `confirm_past_start` (a mistyped year would schedule every cycle in it; a course begun
    before it was entered here is the rare real case).

    The decision to treat: an oncologist's only (PermissionDenied for anyone else, non-medical
    prescribers included).
    """
    _require_decision_to_treat(created_by)
    if regimen.approved_at is None:
        raise ValidationError(
            {
                "regimen": f"{regimen} has not been approved for prescribing: an oncologist "
                "and a pharmacist approve each version first (Regimens page)."
            }
        )
    if not regimen.is_active:
        raise ValidationError({"regimen": f"{regimen} is retired; choose an active version."})
    past_start = _require_plausible_start(patient, start_date)
    phases = list(regimen.phases.order_by("order"))
    if not phases:
        raise ValidationError({"regimen": f"{regimen} has no phases to schedule."})
    other_courses = open_courses(patient=patient)
    if any(course.regimen.name == regimen.name for course in other_courses):
        raise ValidationError(
            {"regimen": f"The patient already has an open {regimen.name} course."}
        )
    plan_doses = regimen_planned_doses(regimen)
    still_planned = [dose for course in other_courses for dose in course_remaining_doses(course)]
    over = [
        p
        for p in lifetime_projection(patient=patient, planned=[*plan_doses, *still_planned])
        if p.over
    ]
    # Every warning is looked for before any is asked: all of them go back in one refusal.
    asked: list[ConfirmationRequired] = []
    past = _confirmed(
        past_start,
        confirmed=confirm_past_start,
        error=PastStartToConfirm,
        field="start_date",
        asked=asked,
    )
    overruled = _confirmed(
        _allergy_warning(patient, {rd.drug for rd, _ in plan_doses}),
        confirmed=confirm_allergy,
        error=AllergyToConfirm,
        field="regimen",
        asked=asked,
    ) + _confirmed(
        _concurrent_course_warning(patient, plan_doses, other_courses),
        confirmed=confirm_concurrent_course,
        error=ConcurrentCourseToConfirm,
        field="regimen",
        asked=asked,
    )
    lifetime = _confirmed(
        " ".join(p.message for p in over)
        + (" It counts the doses still planned in the open course." if still_planned else "")
        + " Plan fewer cycles of it, or confirm that this is the intended plan."
        if over
        else "",
        confirmed=confirm_lifetime_limit,
        error=LifetimeLimitToConfirm,
        field="regimen",
        asked=asked,
    )
    try:
        reason = _reason_for(overruled, confirm_reason)
    except ValidationError as missing:
        refuse_unconfirmed(asked, also=missing)
        raise
    refuse_unconfirmed(asked)
    confirmed = past + overruled + reason + lifetime
    course = Course(
        patient=patient,
        regimen=regimen,
        start_date=start_date,
        intent=intent,
        status=(
            Course.Status.PLANNED if start_date > timezone.localdate() else Course.Status.ACTIVE
        ),
        created_by=created_by,
        confirmed_warnings=confirmed,
    )
    _save(course)
    number, planned = 1, start_date
    for phase in phases:
        for _ in range(phase.planned_cycles):
            _save(ChemoCycle(course=course, phase=phase, number=number, planned_start=planned))
            number += 1
            planned += dt.timedelta(days=phase.cycle_length_days)
    return course


class ConcurrentCourseToConfirm(ConfirmationRequired):
    """Another open course for the patient: both plans would be given in full."""

    confirm_with = "confirm_concurrent_course"


def _concurrent_course_warning(
    patient: Patient, plan_doses: list[tuple[RegimenDrug, int]], others: list[Course]
) -> str:
    if not others:
        return ""
    drugs = {rd.drug.name for rd, _ in plan_doses}
    lines = []
    for course in others:
        shared = sorted(drugs & {rd.drug.name for rd, _ in regimen_planned_doses(course.regimen)})
        also = f", which also gives {', '.join(shared)}" if shared else ""
        lines.append(
            f"{course.regimen} ({course.get_status_display().lower()}, from "
            f"{day_text(course.start_date)}){also}"
        )
    return (
        f"{patient} already has an open course: {'; '.join(lines)}. Both plans would be given "
        "in full. Stop or complete that course first, or confirm that both are intended and "
        "say why."
    )


# At least a few words: "ok" is not a desensitisation protocol.
CONFIRM_REASON_MIN_LENGTH = 10


def _reason_for(overruled: list[str], reason: str) -> list[str]:
    """The prescriber's own reason for going past an allergy or another open course, kept on
    the record beside the warnings; refused when missing."""
    if not overruled:
        return []
    reason = reason.strip()
    if len(reason) < CONFIRM_REASON_MIN_LENGTH:
        raise ValidationError(
            {
                "confirm_reason": "Say in your own words why this plan goes ahead (for example "
                "the desensitisation protocol, or why both courses are intended)."
            }
        )
    return [f"Reason given: {reason}"]


class LifetimeLimitToConfirm(ConfirmationRequired):
    """A plan past a drug's lifetime limit: started only once the oncologist confirms it."""

    confirm_with = "confirm_lifetime_limit"


def open_courses(*, patient: Patient) -> list[Course]:
    """The patient's planned and active courses, with their regimens, earliest start first."""
    return list(
        Course.objects.filter(patient=patient, status__in=OPEN_COURSE_STATUSES)
        .select_related("regimen")
        .order_by("start_date", "pk")
    )


def regimen_planned_doses(regimen: Regimen) -> list[tuple[RegimenDrug, int]]:
    """Each drug of the regimen with how many times the whole plan gives it."""
    return [
        (rd, len(parse_days(rd.days)) * phase.planned_cycles)
        for phase in regimen.phases.all()
        for rd in phase.drugs.select_related("drug")
    ]


def course_remaining_doses(course: Course) -> list[tuple[RegimenDrug, int]]:
    """Each drug with how many times the course's cycles not yet given would give it."""
    counts: dict[int, int] = {}
    for cycle in course.cycles.filter(status__in=OPEN_CYCLE_STATUSES):
        counts[cycle.phase_id] = counts.get(cycle.phase_id, 0) + 1
    return [
        (rd, len(parse_days(rd.days)) * counts[rd.phase_id])
        for rd in RegimenDrug.objects.filter(phase_id__in=counts).select_related("drug")
    ]


class PastStartToConfirm(ConfirmationRequired):
    """A course start far in the past: most often a mistyped year. Started once confirmed."""

    confirm_with = "confirm_past_start"


def _require_plausible_start(patient: Patient, start_date: dt.date) -> str:
    """Refuse a start before the patient's birth or more than a year ahead; return the warning
    for a start more than COURSE_START_MAX_DAYS_AGO days ago (PastStartToConfirm), or ""."""
    patient.require_in_lifetime(start_date, field="start_date", what="The start date")
    today = timezone.localdate()
    if start_date > today + dt.timedelta(days=365):
        raise ValidationError({"start_date": "A course cannot start more than a year ahead."})
    days_ago = (today - start_date).days
    if days_ago <= settings.COURSE_START_MAX_DAYS_AGO:
        return ""
    return (
        f"{day_text(start_date)} is {days_ago} days ago: every cycle until today would be "
        "planned in the past. Check the year; if the course really began then, confirm the "
        "past start and start it again."
    )


@transaction.atomic
def course_stop(
    *, course: Course, reason: str, note: str = "", stopped_on: dt.date, by: User
) -> Course:
    """Stop an open course early with an mCODE termination reason (Course.StopReason).

    Every cycle not yet given is cancelled with the stop as its reason, so no stale cycle stays
    on a worklist. The decision to end treatment: an oncologist's only (PermissionDenied for
    anyone else, non-medical prescribers included).
    """
    _require_decision_to_treat(by)
    course = Course.objects.select_for_update().get(pk=course.pk)
    _require_open_course(course)
    if reason not in Course.StopReason.values:
        raise ValidationError({"reason": "Choose a stop reason from the list."})
    today = timezone.localdate()
    if course.status == Course.Status.PLANNED and course.start_date > today:
        # Not begun (planned in error, or no longer wanted): stopped as of today, before its
        # start date, so that it stops holding cycles on the worklists.
        if stopped_on != today:
            raise ValidationError(
                {
                    "stopped_on": f"The course has not begun (it starts on "
                    f"{day_text(course.start_date)}): it is stopped as of today."
                }
            )
    elif stopped_on < course.start_date:
        raise ValidationError({"stopped_on": f"The course started on {course.start_date}."})
    if stopped_on > today:
        raise ValidationError({"stopped_on": "A course cannot be stopped in the future."})
    course.status = Course.Status.STOPPED
    course.stop_reason = reason
    course.stop_note = note
    course.stopped_on = stopped_on
    course.stopped_by = by
    _save(course)
    label = Course.StopReason(reason).label
    for cycle in course.cycles.select_for_update().filter(status__in=OPEN_CYCLE_STATUSES):
        cycle.status = ChemoCycle.Status.CANCELLED
        cycle.reason = f"Course stopped: {label}"
        cycle.status_changed_by = by
        cycle.status_changed_at = timezone.now()
        _save_status_change(cycle, planned_start_before=cycle.planned_start)
    return course


def _require_previous_cycle_run(previous: ChemoCycle, number: int, actual_start: dt.date) -> None:
    # Clinical rule: the marrow and gut recover over the cycle's length; a cycle may be brought
    # forward a few days (a holiday), never given half-way through the one before.
    tolerance = settings.CYCLE_EARLY_TOLERANCE_DAYS
    earliest = previous.actual_start + dt.timedelta(
        days=previous.phase.cycle_length_days - tolerance
    )
    if actual_start < earliest:
        raise ValidationError(
            {
                "actual_start": (
                    f"Cycle {previous.number} started on {day_text(previous.actual_start)} and "
                    f"runs {previous.phase.cycle_length_days} days: cycle {number} can start "
                    f"from {day_text(earliest)} ({tolerance} days early at most)."
                )
            }
        )


@transaction.atomic
def cycle_give(
    *,
    cycle: ChemoCycle,
    actual_start: dt.date,
    given_by: User,
    override_reason: str = "",
    seen_version: str | None = None,
) -> ChemoCycle:
    """Mark `cycle` as given from `actual_start`; it ends a cycle length later, minus one day.

    When the regimen's pre-cycle check (labs.services.precycle_evaluate, with the results
    available by the end of `actual_start`) does not say treat, the cycle is given only with
    an `override_reason` (ValidationError on it otherwise), kept on the cycle with what the
    check said: a delay, hold, missing or stale result is never passed over in one click. Only
    an oncologist gives a cycle against the check; a held cycle is released (given) only by an
    oncologist or a non-medical prescriber (PermissionDenied otherwise).

    Cycles are given in order: an earlier cycle still planned, ready, delayed or held must be
    given or cancelled first, and a cycle starts at most CYCLE_EARLY_TOLERANCE_DAYS before the
    one before it has run its length. Later planned dates follow the actual start (a cycle given two
    days late moves the rest by two days), as the schedule runs from each actual day 1. The
    first given cycle makes a planned course active.
    """
    cycle = _lock_cycle(cycle, seen_version)
    course = cycle.course
    _require_open_course(course, "cycle")
    if cycle.status == ChemoCycle.Status.GIVEN:
        raise ValidationError({"cycle": f"Cycle {cycle.number} has already been given."})
    if cycle.status == ChemoCycle.Status.CANCELLED:
        raise ValidationError({"cycle": f"Cycle {cycle.number} was cancelled."})
    _require_prescriber_for_held(cycle, given_by, "releasing it")
    earlier_open = (
        course.cycles.filter(number__lt=cycle.number, status__in=OPEN_CYCLE_STATUSES)
        .order_by("number")
        .first()
    )
    if earlier_open is not None:
        raise ValidationError(
            {
                "cycle": f"Cycle {earlier_open.number} is still {earlier_open.status}; give or "
                f"cancel it before cycle {cycle.number}."
            }
        )
    if actual_start > timezone.localdate():
        raise ValidationError({"actual_start": "A cycle cannot be given in the future."})
    if actual_start < course.start_date:
        raise ValidationError({"actual_start": "A cycle cannot start before its course."})
    previous = (
        course.cycles.filter(number__lt=cycle.number, status=ChemoCycle.Status.GIVEN)
        .select_related("phase")
        .order_by("-number")
        .first()
    )
    if previous is not None and previous.actual_start:
        _require_previous_cycle_run(previous, cycle.number, actual_start)
    cycle.given_despite, cycle.override_reason = _readiness_override(
        course, actual_start, override_reason, by=given_by
    )
    delta = actual_start - cycle.planned_start
    cycle.actual_start = actual_start
    cycle.end_date = actual_start + dt.timedelta(days=cycle.phase.cycle_length_days - 1)
    cycle.status = ChemoCycle.Status.GIVEN
    cycle.status_changed_by = given_by
    cycle.status_changed_at = timezone.now()
    given = _save_status_change(cycle, planned_start_before=cycle.planned_start)
    _shift_later_open_cycles(given, delta)
    if course.status == Course.Status.PLANNED:
        course.status = Course.Status.ACTIVE
        _save(course)
    _complete_course_if_done(course)
    return cycle


def _readiness_override(course: Course, day: dt.date, reason: str, *, by: User) -> tuple[str, str]:
    """("", "") when the pre-cycle check says treat (or the regimen has no rules: a physician
    decides, as the cycle page says); else (what it said, the reason), refused without one,
    and refused to anyone but an oncologist: treating outside the protocol's criteria is a
    decision to treat (may_decide_to_treat), not a non-medical prescriber's within-protocol
    prescribing (a nurse had given a cycle against ANC 0.3 "as the patient felt well")."""
    from labs.services import precycle_evaluate

    end_of_day = timezone.make_aware(dt.datetime.combine(day, dt.time.max))
    assessment = precycle_evaluate(
        patient=course.patient, regimen=course.regimen, at=min(timezone.now(), end_of_day)
    )
    if not assessment.analytes or assessment.ok_to_treat:
        return "", ""
    if not by.may_decide_to_treat:
        raise PermissionDenied(
            f"The pre-cycle check says “{assessment.outcome_label}”: giving the cycle against "
            "it is an oncologist's decision. Delay or hold the cycle, or ask an oncologist."
        )
    if len(reason.strip()) < 10:
        raise ValidationError(
            {
                "override_reason": f"The pre-cycle check says “{assessment.outcome_label}”: "
                "write why the cycle is given anyway (at least 10 characters), or delay or "
                "hold it."
            }
        )
    return assessment.outcome, reason.strip()


def _require_open_cycle(cycle: ChemoCycle, action: str) -> None:
    _require_open_course(cycle.course, "cycle")
    if cycle.status not in OPEN_CYCLE_STATUSES:
        raise ValidationError(
            {"cycle": f"Cycle {cycle.number} is {cycle.status}; it cannot be {action}."}
        )


@transaction.atomic
def cycle_delay(
    *,
    cycle: ChemoCycle,
    reason: str,
    by: User,
    days: int | None = None,
    new_start: dt.date | None = None,
    seen_version: str | None = None,
) -> ChemoCycle:
    """Delay `cycle` by `days` (or to `new_start`), and every later cycle not yet given with it.

    Give exactly one of `days` (>= 1) or `new_start` (after the current planned start).
    A held cycle is delayed (which lifts the hold) only by an oncologist or a non-medical
    prescriber (PermissionDenied otherwise).
    """
    cycle = _lock_cycle(cycle, seen_version)
    _require_open_cycle(cycle, "delayed")
    _require_prescriber_for_held(cycle, by, "delaying it")
    reason = _require_reason(reason)
    if (days is None) == (new_start is None):
        raise ValidationError({"days": "Give either a number of days or a new start date."})
    if new_start is not None:
        if new_start <= cycle.planned_start:
            raise ValidationError(
                {"new_start": f"A delay moves the start after {cycle.planned_start}."}
            )
        delta = new_start - cycle.planned_start
    else:
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 365:
            raise ValidationError({"days": "A delay is 1 to 365 days."})
        delta = dt.timedelta(days=days)
    planned_start_before = cycle.planned_start
    cycle.planned_start += delta
    cycle.status = ChemoCycle.Status.DELAYED
    cycle.reason = reason
    cycle.status_changed_by = by
    cycle.status_changed_at = timezone.now()
    delay = _save_status_change(cycle, planned_start_before=planned_start_before)
    _shift_later_open_cycles(delay, delta)
    return cycle


@transaction.atomic
def cycle_hold(
    *, cycle: ChemoCycle, reason: str, by: User, seen_version: str | None = None
) -> ChemoCycle:
    """Put `cycle` on hold pending review; later cycles wait for it (see cycle_give)."""
    cycle = _lock_cycle(cycle, seen_version)
    _require_open_cycle(cycle, "held")
    cycle.reason = _require_reason(reason)
    cycle.status = ChemoCycle.Status.HELD
    cycle.status_changed_by = by
    cycle.status_changed_at = timezone.now()
    _save_status_change(cycle, planned_start_before=cycle.planned_start)
    return cycle


@transaction.atomic
def cycle_cancel(
    *, cycle: ChemoCycle, reason: str, by: User, seen_version: str | None = None
) -> ChemoCycle:
    """Cancel a cycle that will not be given: it omits treatment, so an oncologist or a
    non-medical prescriber decides it (PermissionDenied otherwise).

    The course's last cycle left to give is not cancelled: ending the course early is
    stopping it, with a stop reason (course_stop). Cancelling the remaining cycles one by one
    had shown a course stopped half-way as "Completed", with no reason.
    """
    _require_cycle_prescriber(by)
    cycle = _lock_cycle(cycle, seen_version)
    _require_open_cycle(cycle, "cancelled")
    if not cycle.course.cycles.filter(status__in=OPEN_CYCLE_STATUSES).exclude(pk=cycle.pk).exists():
        raise ValidationError(
            {
                "cycle": f"Cycle {cycle.number} is the last cycle left to give: to end the "
                "course here, stop the course with its reason."
            }
        )
    cycle.reason = _require_reason(reason)
    cycle.status = ChemoCycle.Status.CANCELLED
    cycle.status_changed_by = by
    cycle.status_changed_at = timezone.now()
    _save_status_change(cycle, planned_start_before=cycle.planned_start)
    return cycle


# --- Dose modifications and administrations ------------------------------------------------


@transaction.atomic
def dose_modification_record(
    *,
    course: Course,
    from_cycle_number: int,
    percent: Number,
    reason: str,
    created_by: User,
    drug: Drug | None = None,
    override_reason: str = "",
    confirm_level: bool = False,
) -> DoseModification:
    """Set the dose level of `drug` (or of every drug) from `from_cycle_number` onwards.

    It carries forward until a later modification changes it (dose_percent_for). A level above
    100% of the standard dose needs `override_reason` (DOMAIN.md section 2). DoseLevelToConfirm
    is raised until `confirm_level` for a level below LOW_DOSE_LEVEL (8 typed for 80) and for
    one that raises a drug already reduced (an "all drugs 90%" had lifted a drug at 80%).

    Prescribing: an oncologist or a non-medical prescriber (PermissionDenied otherwise). A
    pharmacist who sets a level does not verify the doses it applies to (cycle_doses_verify).
    """
    _require_cycle_prescriber(created_by)
    _require_open_course(course)
    reason = _require_reason(reason)
    total = course.cycles.count()
    if not isinstance(from_cycle_number, int) or not 1 <= from_cycle_number <= total:
        raise ValidationError({"from_cycle_number": f"Choose a cycle from 1 to {total}."})
    dosed = Administration.objects.filter(cycle__course=course).aggregate(
        last=Max("cycle__number")
    )["last"]
    if dosed is not None and from_cycle_number <= dosed:
        # A new level cannot reach back into cycles whose drugs are recorded: those doses are
        # history, given at the level in force then (the course table would contradict them).
        raise ValidationError(
            {
                "from_cycle_number": f"Cycle {dosed} already has drugs recorded; a new dose "
                f"level can start at cycle {dosed + 1} at the earliest."
            }
        )
    if (
        drug is not None
        and not RegimenDrug.objects.filter(phase__regimen=course.regimen_id, drug=drug).exists()
    ):
        raise ValidationError({"drug": f"{drug} is not part of {course.regimen}."})
    try:
        level = to_decimal(percent, "percent")
    except ValueError:
        raise ValidationError({"percent": "Enter the dose level as a percent, e.g. 80."}) from None
    modification = DoseModification(
        course=course,
        drug=drug,
        from_cycle_number=from_cycle_number,
        percent=level,
        reason=reason,
        override_reason=override_reason.strip(),
        created_by=created_by,
    )
    modification.full_clean()  # above 100% without its override reason: say that first
    if not confirm_level:
        _require_confirmed_level(course, from_cycle_number, drug, level)
    modification.save()
    return modification


LOW_DOSE_LEVEL = Decimal(50)


class DoseLevelToConfirm(ConfirmationRequired):
    """A dose level that is most often a slip: below half, or raising a reduced drug."""

    confirm_with = "confirm_level"


def _require_confirmed_level(
    course: Course, from_cycle_number: int, drug: Drug | None, level: Decimal
) -> None:
    concerns: list[str] = []
    if level < LOW_DOSE_LEVEL:
        concerns.append(
            f"{fmt_decimal(level)}% is less than half the standard dose (was {fmt_decimal(level)} "
            f"typed for {fmt_decimal(level * 10)}?)."
            if level * 10 <= 100
            else f"{fmt_decimal(level)}% is less than half the standard dose."
        )
    drugs = (
        [drug]
        if drug is not None
        else Drug.objects.filter(regimen_uses__phase__regimen=course.regimen_id)
        .distinct()
        .order_by("name")
    )
    for each in drugs:
        current, _ = dose_percent_for(course=course, cycle_number=from_cycle_number, drug=each)
        # Above 100% the written override reason speaks for a drug at its full dose; a drug
        # that had been reduced (80% for neuropathy, then "all drugs 110%") is asked about.
        if current < level and (level <= 100 or current < 100):
            concerns.append(
                f"{each} goes up from {fmt_decimal(current)}% to {fmt_decimal(level)}% "
                f"from cycle {from_cycle_number}."
            )
    if concerns:
        raise DoseLevelToConfirm(
            {"percent": " ".join(concerns) + " Check it, then confirm the level to record it."}
        )


def dose_percent_for(
    *, course: Course, cycle_number: int, drug: Drug
) -> tuple[Decimal, DoseModification | None]:
    """The dose level of `drug` in cycle `cycle_number`, and the modification that set it.

    Rule: among the course's modifications that apply to this drug (drug-specific or all-drug)
    and start at or before `cycle_number`, the one with the highest from_cycle_number wins; at
    the same cycle, the one recorded last wins. So a level carries forward until changed, and
    an all-drug change from a later cycle overrides an earlier drug-specific one. No
    modification means 100%. Reads only; the caller has authorised access to the course.
    """
    applicable = DoseModification.objects.filter(
        course=course, from_cycle_number__lte=cycle_number
    ).filter(Q(drug__isnull=True) | Q(drug=drug))
    return _dose_level(applicable, cycle_number=cycle_number, drug_id=drug.pk)


def _dose_level(
    modifications: Iterable[DoseModification], *, cycle_number: int, drug_id: int
) -> tuple[Decimal, DoseModification | None]:
    """dose_percent_for's answer from the course's `modifications` (all of them, or those that
    apply): the level in force (_level_in_force), or 100% when none is."""
    latest = _level_in_force(modifications, cycle_number=cycle_number, drug_id=drug_id)
    if latest is None:
        return Decimal(100), None
    return Decimal(latest.percent), latest


def course_dose_levels(course_ids: Iterable[int]) -> dict[int, list[DoseModification]]:
    """Every dose modification of each course in `course_ids` (with its drug), in one query:
    what cycle_dose_plans and dose_levels_set_by(course_levels=...) read the levels of many
    cycles from. Reads only; the caller has authorised access to the courses."""
    by_course: dict[int, list[DoseModification]] = {pk: [] for pk in course_ids}
    for level in DoseModification.objects.filter(course_id__in=by_course).select_related("drug"):
        by_course[level.course_id].append(level)
    return by_course


def _level_in_force(
    modifications: Iterable[DoseModification], *, cycle_number: int, drug_id: int
) -> DoseModification | None:
    """dose_percent_for's rule over modifications of one course: of those for this drug or for
    every drug from a cycle at or before `cycle_number`, the one from the latest cycle, and at
    the same cycle the one recorded last. In Python, so that dose_percent_for and a list that
    read a course's levels once for many cycles (the pharmacy worklist) share one rule."""
    applicable = [
        m
        for m in modifications
        if m.from_cycle_number <= cycle_number and m.drug_id in (None, drug_id)
    ]
    return max(applicable, key=lambda m: (m.from_cycle_number, m.created_at, m.pk), default=None)


def dose_levels_set_by(
    *,
    plan: CycleDosePlan,
    user: User,
    course_levels: Sequence[DoseModification] | None = None,
) -> list[DoseModification]:
    """The dose levels in force in `plan`'s cycle, for any of its drugs (dose_percent_for's
    rule: drug-specific or all-drug, the latest from a cycle at or before this one), that `user`
    set. Reads only; the caller has authorised access to the cycle.

    `course_levels`: every dose modification of the cycle's course, read once (with `drug`) by
    a caller that asks this of many cycles, the pharmacy worklist: then this reads nothing.

    Separation of duties: a pharmacist who prescribed a cycle's dose level as a non-medical
    prescriber does not clinically verify its doses; another pharmacist does.
    """
    cycle = plan.cycle
    in_force: dict[int, DoseModification | None] = {
        dose.regimen_drug.drug_id: dose.modification for dose in plan.doses if dose.to_give
    }
    for dose in plan.doses:
        drug_id = dose.regimen_drug.drug_id
        if drug_id in in_force:
            continue
        # Every dose of it given: the level it was given at.
        if course_levels is None:
            in_force[drug_id] = dose_percent_for(
                course=cycle.course, cycle_number=cycle.number, drug=dose.regimen_drug.drug
            )[1]
        else:
            in_force[drug_id] = _level_in_force(
                course_levels, cycle_number=cycle.number, drug_id=drug_id
            )
    mine = {m.pk: m for m in in_force.values() if m is not None and m.created_by_id == user.pk}
    return sorted(mine.values(), key=lambda m: (m.from_cycle_number, m.created_at, m.pk))


VERIFIED_BY_A_PHARMACIST = "A cycle's doses are verified by a pharmacist."


def own_dose_levels_message(cycle: ChemoCycle, levels: list[DoseModification]) -> str:
    """Why the pharmacist who set `levels` (dose_levels_set_by) does not verify `cycle`."""
    named = "; ".join(
        f"{fmt_decimal(Decimal(m.percent))}% {m.drug or 'all drugs'} from cycle "
        f"{m.from_cycle_number}, {day_text(timezone.localtime(m.created_at).date())}"
        for m in levels
    )
    return (
        f"You set the dose level in force for cycle {cycle.number} ({named}): another "
        "pharmacist verifies doses you prescribed."
    )


@transaction.atomic
def cycle_doses_verify(
    *,
    cycle: ChemoCycle,
    by: User,
    note: str = "",
    seen_doses: dict[str, str] | None = None,
    dispensed_doses: Mapping[str, Number | None] | None = None,
    confirm_allergy: bool = False,
) -> DoseVerification:
    """A pharmacist verifies the doses of every drug and day of `cycle` not yet given.

    The doses are those of cycle_dose_plan, the ones the cycle page shows and
    administration_record checks, and are kept. Refused when a dose due by today cannot be
    computed (a missing weight, creatinine...), naming the drug and day. A later day whose
    inputs are not there yet is left out (PlannedDose.awaiting_inputs), to be verified on a
    later verification.

    `seen_doses` are the doses the pharmacist was shown ({"<regimen drug id>:<day>": "mg"}):
    if they differ from the doses computed now (a weight recorded meanwhile), nothing is
    verified; a pharmacist had certified doses that were never on her screen. A drug the
    patient has a recorded allergy to raises AllergyToConfirm until `confirm_allergy`; the
    confirmation is kept on the verification.

    `dispensed_doses` are the banded doses the pharmacist chose from the pharmacy's band table,
    by the same keys (a blank one: not banded); see _dispensed_doses for what is refused. The
    verification keeps, per dose, the calculated dose (`doses`), the dose dispensed (banded,
    or the calculated one) and the calculation's inputs.

    Refused (PermissionDenied) to anyone but a pharmacist, and to the pharmacist who set a dose
    level in force for the cycle as a non-medical prescriber (dose_levels_set_by): another
    pharmacist verifies doses they prescribed.
    """
    if not by.is_pharmacist:
        raise PermissionDenied(VERIFIED_BY_A_PHARMACIST)
    cycle = _lock_cycle(cycle)
    plan = cycle_dose_plan(cycle)
    own_levels = dose_levels_set_by(plan=plan, user=by)
    if own_levels:
        raise PermissionDenied(own_dose_levels_message(cycle, own_levels))
    if cycle.status == ChemoCycle.Status.CANCELLED:
        raise ValidationError({"cycle": f"Cycle {cycle.number} was cancelled."})
    _require_allergy_status(cycle.course.patient)
    if plan.problems:
        raise ValidationError({"cycle": "Cannot verify: " + " ".join(plan.problems)})
    doses = plan.doses_to_verify
    if not doses:
        raise ValidationError({"cycle": _nothing_to_verify_message(plan)})
    if seen_doses is not None and seen_doses != doses:
        raise ValidationError({"cycle": _doses_changed_message(plan, seen_doses, doses)})
    dispensed = _dispensed_doses(plan, dispensed_doses or {})
    confirmed = _confirmed(
        _allergy_warning(cycle.course.patient, {dose.regimen_drug.drug for dose in plan.doses}),
        confirmed=confirm_allergy,
        error=AllergyToConfirm,
        field="confirm_allergy",
    )
    verification = DoseVerification(
        cycle=cycle,
        verified_by=by,
        doses=doses,
        dispensed_doses=dispensed,
        dose_inputs={
            dose.key: dose.calculation.inputs
            for dose in plan.to_give
            if dose.calculation is not None
        },
        note=note.strip(),
        confirmed_warnings=confirmed,
    )
    verification.full_clean()
    verification.save()
    return verification


DISPENSED = "dispensed_doses"
# A refused dispensed dose's error code: this prefix and the dose's key ("12:1"), so that a page
# can show it beside that dose's box (treatments.views).
DISPENSED_CODE = "dispensed:"


def _dispensed_doses(plan: CycleDosePlan, banded: Mapping[str, Number | None]) -> dict[str, str]:
    """The dose dispensed for each dose a verification of `plan` holds: the banded dose the
    pharmacist gave for its key, or the calculated dose.

    Refused (ValidationError on dispensed_doses, naming each drug and day): a key that is not
    a dose to verify now, a value that is not a positive number to 0.1 mg, a banded dose for a
    drug the formulary does not band, and one further from the calculated dose than the
    drug's tolerance (NHS England's dose-banding principle: a band within a small tolerance of
    the calculated dose, never beyond it). A value equal to the calculated dose is no banding.
    """
    to_verify = {dose.key: dose for dose in plan.to_give if dose.calculation is not None}
    dispensed = {key: str(dose.calculation_or_raise().dose_mg) for key, dose in to_verify.items()}
    errors: list[ValidationError] = []  # each coded with its dose's key, for the page's box
    for key, value in banded.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue  # left blank: dispensed at the calculated dose
        dose = to_verify.get(key)
        if dose is None:
            errors.append(
                ValidationError(
                    f"{key}: no dose of cycle {plan.cycle.number} to verify has this key.",
                    code=DISPENSED_CODE + key,
                )
            )
            continue
        try:
            dispensed[key] = str(_banded_dose(dose, value))
        except ValueError as refusal:
            errors.append(
                ValidationError(f"{dose.label} ({key}): {refusal}", code=DISPENSED_CODE + key)
            )
    if errors:
        raise ValidationError({DISPENSED: errors})
    return dispensed


def _banded_dose(dose: PlannedDose, value: Number) -> Decimal:
    """`value` as the dose dispensed for `dose`, or ValueError saying why it may not be."""
    calculated = dose.calculation_or_raise().dose_mg
    try:
        banded = Decimal(str(value).strip())
    except ArithmeticError:
        raise ValueError(f"{value!r} is not a dose in mg.") from None
    if not banded.is_finite() or banded <= 0:
        raise ValueError(f"a dispensed dose is a positive number of mg, not {value}.")
    if banded == calculated:
        return calculated
    drug = dose.regimen_drug.drug
    band = dose.band
    if band is None:
        raise ValueError(
            f"{drug} is not dose-banded in the formulary: it is dispensed at the calculated "
            f"{fmt_decimal(calculated)} mg."
        )
    low, high = band
    cap = dose.regimen_drug.max_dose_mg
    if cap is not None and banded > cap:
        raise ValueError(
            f"{fmt_decimal(banded)} mg is above the regimen's cap of {fmt_decimal(cap)} mg "
            "per administration: a banded dose is never above it."
        )
    if not low <= banded <= high:
        tolerance = fmt_decimal(drug.dose_banding_tolerance_percent)
        raise ValueError(
            f"{fmt_decimal(banded)} mg is more than {tolerance}% "
            f"from the calculated {fmt_decimal(calculated)} mg: a banded dose is "
            f"{fmt_decimal(low)}–{fmt_decimal(high)} mg."
        )
    if banded != round_mg(banded):
        raise ValueError(f"give the dispensed dose to 0.1 mg, not {value}.")
    return round_mg(banded)


def _require_allergy_status(patient: Patient) -> None:
    """A pharmacist verifies chemotherapy only against a documented allergy status (ASHP and
    ISOPP verification standards): "not recorded" is not "none"; nobody may have asked."""
    if not allergy_status_recorded(patient=patient):
        raise ValidationError(
            {
                "cycle": f"{patient}'s allergy status is not recorded. Record their allergies, "
                "or that they have no known allergies, on the chart; then verify."
            }
        )


def doses_to_verify(cycle: ChemoCycle) -> tuple[dict[str, str], list[str]]:
    """The doses a verification of `cycle` would hold now, by "<regimen drug id>:<day>", for
    the drugs not yet given; and what stops a dose due by today from being computed."""
    plan = cycle_dose_plan(cycle)
    return plan.doses_to_verify, plan.problems


def _nothing_to_verify_message(plan: CycleDosePlan) -> str:
    waiting = [dose for dose in plan.doses if dose.awaiting_inputs]
    if not waiting:
        return f"Every drug of cycle {plan.cycle.number} is recorded."
    return f"No dose of cycle {plan.cycle.number} can be verified yet: " + " ".join(
        f"{dose.label} ({day_text(dose.date)}): {dose.message}" for dose in waiting
    )


def _doses_changed_message(plan: CycleDosePlan, seen: dict[str, str], now: dict[str, str]) -> str:
    names = {dose.key: dose.label for dose in plan.doses}
    changes = [
        f"{names.get(key, key)}: {seen.get(key, 'not shown')} mg on the page, "
        f"{now.get(key, 'none')} mg now"
        for key in sorted(set(seen) | set(now))
        if seen.get(key) != now.get(key)
    ]
    return (
        "The doses changed after this page was opened (" + "; ".join(changes) + "). Nothing "
        "was verified: check the new doses and their inputs, then verify again."
    )


# --- A cycle's doses: one computation for the page, the verification, the chair, the worklist


@dataclass(frozen=True)
class PlannedDose:
    """One planned drug and day of a cycle: the administration recorded, or the dose it would
    get and what stops it, and what the cycle's latest pharmacy verification holds for it.

    Every dose is computed for its day's own date, the date it is given on: the cycle page had
    computed a later day for today (the patient's age before a birthday, a weight still in date
    today), the verification for the day itself, and the page said "changed" right after the
    pharmacist verified.
    """

    regimen_drug: RegimenDrug
    day: int
    date: dt.date
    later_day: bool  # the day is after today
    administration: Administration | None = None
    calculation: DoseCalculation | None = None
    percent: Decimal = Decimal(100)
    modification: DoseModification | None = None  # the one that set `percent`
    errors: dict[str, list[str]] = field(default_factory=dict)  # why there is no calculation
    verification: DoseVerification | None = None  # the cycle's latest
    verified_mg: Decimal | None = None  # what `verification` holds for this drug and day
    # The dose `verification` dispenses for it: banded, or verified_mg.
    dispensed_mg: Decimal | None = None
    # Another dose of the same drug falls on the same day (mFOLFOX6's 5-FU bolus and 46-hour
    # infusion): see `name`.
    alike: bool = False

    @property
    def key(self) -> str:
        """The dose's key in DoseVerification.doses and on the verify form."""
        return f"{self.regimen_drug.pk}:{self.day}"

    @property
    def name(self) -> str:
        """The dose's drug as pages and messages name it: the drug alone, or its regimen line
        (dose, route, duration) when another dose of the drug falls on the same day. Both 5-FU
        doses of mFOLFOX6 had read "fluorouracil day 1", and a pharmacist could not tell the
        bolus's banding box from the 46-hour infusion's."""
        return regimen_drug_line(self.regimen_drug) if self.alike else str(self.regimen_drug.drug)

    @property
    def label(self) -> str:
        """ "oxaliplatin day 1"; "fluorouracil 400 mg/m² IV bolus, day 1" (see `name`)."""
        return f"{self.name}, day {self.day}" if self.alike else f"{self.name} day {self.day}"

    @property
    def message(self) -> str:
        return " ".join(text for texts in self.errors.values() for text in texts)

    @property
    def to_give(self) -> bool:
        return self.administration is None

    @property
    def awaiting_inputs(self) -> bool:
        """A later day whose dose cannot be computed yet. Day 8 is dosed from the weight taken
        at day 8's visit (a weight in date today can be too old by then), so this is not a
        fault today and does not stop day 1's verification: the page says what it waits for,
        and the dose is verified once it can be computed."""
        return self.to_give and bool(self.errors) and self.later_day

    @property
    def blocked(self) -> bool:
        """A dose due by today that cannot be computed: it can be neither verified nor given."""
        return self.to_give and bool(self.errors) and not self.later_day

    @property
    def verified(self) -> bool:
        """The latest verification holds this very dose: the only dose that may be given."""
        return self.calculation is not None and self.verified_mg == self.calculation.dose_mg

    @property
    def banded(self) -> bool:
        """The verification dispenses a banded dose for it, not the calculated one."""
        return self.dispensed_mg is not None and self.dispensed_mg != self.verified_mg

    @property
    def band(self) -> tuple[Decimal, Decimal] | None:
        """The doses the pharmacist may dispense instead of the calculated one, if banded:
        never above the regimen's cap per administration (vincristine 2 mg), which protects
        against a toxicity, not a rounding."""
        if self.calculation is None:
            return None
        band = self.regimen_drug.drug.dose_band(self.calculation.dose_mg)
        cap = self.regimen_drug.max_dose_mg
        if band is None or cap is None:
            return band
        return band[0], min(band[1], Decimal(cap))

    @property
    def verification_holds(self) -> bool:
        """Whether the latest verification still stands for this drug and day: given already,
        verified at the dose computed now, or a later day it left out while it awaits its
        inputs. A dose computed at another mg, a dose due that it never covered, and a dose it
        verified that can no longer be computed all need the pharmacist again."""
        return (
            not self.to_give or self.verified or (self.awaiting_inputs and self.verified_mg is None)
        )

    @property
    def banded_before(self) -> Decimal | None:
        """The banded dose the latest verification dispensed for this very calculated dose:
        the verify form starts from it. Verifying again (a later day now computable, a note)
        had offered an empty box, and an empty box dispenses the calculated dose, so a banding
        nobody meant to undo was silently dropped. None when it was not banded, or when the
        calculated dose changed since (banding_recalculated). Only a starting value: the
        banded dose is checked again by cycle_doses_verify."""
        return self.dispensed_mg if self.verified and self.banded else None

    @property
    def banding_recalculated(self) -> bool:
        """The latest verification banded this dose (to dispensed_mg, from verified_mg
        calculated), but its calculated dose is another now: it is banded afresh, never
        carried over."""
        return self.banded and self.calculation is not None and not self.verified

    def calculation_or_raise(self) -> DoseCalculation:
        if self.calculation is None:
            raise ValidationError(self.errors)
        return self.calculation


def regimen_drug_line(regimen_drug: RegimenDrug) -> str:
    """A regimen drug as its order reads: "fluorouracil 400 mg/m² IV bolus", "fluorouracil
    2400 mg/m² IV infusion over 46 h", "carboplatin AUC 5 IV over 30 min"."""
    dose = fmt_decimal(Decimal(regimen_drug.dose))
    amount = {
        DoseBasis.MG_M2: f"{dose} mg/m²",
        DoseBasis.MG_KG: f"{dose} mg/kg",
        DoseBasis.AUC: f"AUC {dose}",
    }.get(regimen_drug.dose_basis, f"{dose} mg")
    parts = [str(regimen_drug.drug), amount, regimen_drug.route, regimen_drug.duration.strip()]
    return " ".join(part for part in parts if part)


def _alike_doses(drug_days: Iterable[tuple[RegimenDrug, int]]) -> set[tuple[int, int]]:
    """(regimen drug id, day) of each dose that shares its drug and day with another dose of
    the cycle: PlannedDose.alike."""
    drug_days = list(drug_days)
    seen: dict[tuple[int, int], int] = {}
    for regimen_drug, day in drug_days:
        seen[(regimen_drug.drug_id, day)] = seen.get((regimen_drug.drug_id, day), 0) + 1
    return {(rd.pk, day) for rd, day in drug_days if seen[(rd.drug_id, day)] > 1}


@dataclass(frozen=True)
class CycleDosePlan:
    """Every planned dose of a cycle (drug order, then day) and its latest verification."""

    cycle: ChemoCycle
    doses: list[PlannedDose]
    verification: DoseVerification | None

    @property
    def to_give(self) -> list[PlannedDose]:
        return [dose for dose in self.doses if dose.to_give]

    @property
    def doses_to_verify(self) -> dict[str, str]:
        """What a verification made now holds: each dose still to give that can be computed."""
        return {
            dose.key: str(dose.calculation.dose_mg)
            for dose in self.to_give
            if dose.calculation is not None
        }

    @property
    def problems(self) -> list[str]:
        """Why a dose due by today cannot be computed: these stop a verification."""
        return [f"{dose.label}: {dose.message}" for dose in self.doses if dose.blocked]

    @property
    def verification_stale(self) -> bool:
        """There is a verification, and it no longer holds for some dose still to give."""
        return self.verification is not None and not all(
            dose.verification_holds for dose in self.doses
        )

    @property
    def verification_state(self) -> str:
        """The pharmacy worklist's word for the cycle: "verified", "changed" (the latest
        verification no longer holds), "unverified", or "" when no dose is left that a
        pharmacist could verify now."""
        if not any(dose.to_give and not dose.awaiting_inputs for dose in self.doses):
            return ""
        if self.verification is None:
            return "unverified"
        return "changed" if self.verification_stale else "verified"


def cycle_dose_plan(cycle: ChemoCycle) -> CycleDosePlan:
    """Every planned (drug, day) of `cycle`: the administration recorded, or the dose it would
    get (for the day's own date, at the cycle's dose level, from the inputs on record), or what
    stops it from being computed; with what the latest pharmacy verification holds for it.

    The one computation behind the cycle page, cycle_doses_verify, administration_record and
    the pharmacy worklist, so that none of them can show or accept a dose another would not:
    cycle_dose_plans for this one cycle. Reads only; the caller has authorised access to the
    cycle.
    """
    return cycle_dose_plans([cycle])[cycle.pk]


def cycle_dose_plans(
    cycles: Iterable[ChemoCycle],
    *,
    course_levels: Mapping[int, Sequence[DoseModification]] | None = None,
) -> dict[int, CycleDosePlan]:
    """cycle_dose_plan of each of `cycles`, by cycle id, for a list (the pharmacy worklist).

    What the plans share is read once for all of them, not once per cycle: the latest
    verifications, the administrations, the phases' regimen drugs and the courses' dose levels
    (four queries; three when the caller passes `course_levels`, course_dose_levels of every
    cycle's course), and the height and weight each dose still to give is computed from, on or
    before the dose's own date, for every patient (one query: latest_measurements, the rule of
    latest_measurement). Each such dose is then computed by dose_compute, as for one cycle;
    only a Calvert dose reads more (the patient's creatinine). Pass cycles with
    course__patient loaded.
    """
    cycles = list(cycles)
    if not cycles:
        return {}
    by_id = {cycle.pk: cycle for cycle in cycles}
    latest: dict[int, DoseVerification] = {}
    # Meta.ordering (newest first), as _latest_verification: the first of each cycle is its own.
    for verification in DoseVerification.objects.filter(cycle_id__in=by_id).select_related(
        "verified_by"
    ):
        verification.cycle = by_id[verification.cycle_id]  # as cycle.verifications gives it
        latest.setdefault(verification.cycle_id, verification)
    recorded: dict[int, dict[tuple[int, int], Administration]] = {pk: {} for pk in by_id}
    for administration in Administration.objects.filter(cycle_id__in=by_id).select_related(
        "drug", "administered_by", "verified_by", "stopped_recorded_by"
    ):  # Meta.ordering: of two rows for one drug and day, the one given last, as before
        administration.cycle = by_id[administration.cycle_id]
        key = (administration.regimen_drug_id, administration.day_of_cycle)
        recorded[administration.cycle_id][key] = administration
    drug_days = _phase_drug_days({cycle.phase_id for cycle in cycles})
    if course_levels is None:
        course_levels = course_dose_levels({cycle.course_id for cycle in cycles})
    today = timezone.localdate()
    # The height and weight every dose still to give reads (dose_compute, on or before its own
    # day), for every cycle's patient: one query, whatever the number of cycles.
    read_measurement = remembered_measurements(
        (cycle.course.patient_id, column, _day_date(cycle, day))
        for cycle in cycles
        for regimen_drug, day in drug_days[cycle.phase_id]
        if (regimen_drug.pk, day) not in recorded[cycle.pk]
        for column in measurements_read(regimen_drug)
    )
    return {
        cycle.pk: _cycle_dose_plan(
            cycle,
            verification=latest.get(cycle.pk),
            recorded=recorded[cycle.pk],
            drug_days=drug_days[cycle.phase_id],
            course_levels=course_levels.get(cycle.course_id, ()),
            today=today,
            read_measurement=read_measurement,
        )
        for cycle in cycles
    }


def _cycle_dose_plan(
    cycle: ChemoCycle,
    *,
    verification: DoseVerification | None,
    recorded: Mapping[tuple[int, int], Administration],
    drug_days: list[tuple[RegimenDrug, int]],
    course_levels: Sequence[DoseModification],
    today: dt.date,
    read_measurement: MeasurementReader,
) -> CycleDosePlan:
    """cycle_dose_plan of `cycle` from what cycle_dose_plans read of it: `verification` its
    latest, `recorded` its administrations by (regimen drug id, day), `drug_days` its phase's
    cycle_drug_days, `course_levels` every dose modification of its course."""
    levels: dict[int, tuple[Decimal, DoseModification | None]] = {}
    doses: list[PlannedDose] = []
    alike = _alike_doses(drug_days)
    for regimen_drug, day in drug_days:
        administration = recorded.get((regimen_drug.pk, day))
        if administration is not None:
            date = _day_date(cycle, day)
            doses.append(
                PlannedDose(
                    regimen_drug=regimen_drug,
                    day=day,
                    date=date,
                    later_day=date > today,
                    administration=administration,
                    percent=administration.dose_percent,
                    alike=(regimen_drug.pk, day) in alike,
                )
            )
            continue
        if regimen_drug.drug_id not in levels:
            # dose_percent_for's rule, over the course's levels read once.
            levels[regimen_drug.drug_id] = _dose_level(
                course_levels, cycle_number=cycle.number, drug_id=regimen_drug.drug_id
            )
        doses.append(
            _dose_to_give(
                cycle,
                regimen_drug,
                day,
                level=levels[regimen_drug.drug_id],
                verification=verification,
                today=today,
                alike=(regimen_drug.pk, day) in alike,
                read_measurement=read_measurement,
            )
        )
    return CycleDosePlan(cycle=cycle, doses=doses, verification=verification)


def _latest_verification(cycle: ChemoCycle) -> DoseVerification | None:
    return cycle.verifications.select_related("verified_by").first()


def _day_date(cycle: ChemoCycle, day: int) -> dt.date:
    return cycle.start + dt.timedelta(days=day - 1)


def _dose_to_give(
    cycle: ChemoCycle,
    regimen_drug: RegimenDrug,
    day: int,
    *,
    level: tuple[Decimal, DoseModification | None],
    verification: DoseVerification | None,
    today: dt.date,
    creatinine_mg_dl: Number | None = None,
    alike: bool = False,
    read_measurement: MeasurementReader = latest_measurement,
) -> PlannedDose:
    """One dose of cycle_dose_plan, not yet given (dose_compute at the cycle's `level`)."""
    percent, modification = level
    date = _day_date(cycle, day)
    calculation: DoseCalculation | None = None
    errors: dict[str, list[str]] = {}
    try:
        calculation = dose_compute(
            regimen_drug=regimen_drug,
            patient=cycle.course.patient,
            on_date=date,
            percent=percent,
            creatinine_mg_dl=creatinine_mg_dl,
            read_measurement=read_measurement,
        )
        calculation.inputs["dose_modification_id"] = modification.pk if modification else None
    except ValidationError as error:
        errors = (
            error.message_dict
            if hasattr(error, "error_dict")
            else {NON_FIELD_ERRORS: error.messages}
        )
    return PlannedDose(
        regimen_drug=regimen_drug,
        day=day,
        date=date,
        later_day=date > today,
        calculation=calculation,
        percent=percent,
        modification=modification,
        errors=errors,
        verification=verification,
        verified_mg=verification.dose_for(regimen_drug.pk, day) if verification else None,
        dispensed_mg=verification.dispensed_for(regimen_drug.pk, day) if verification else None,
        alike=alike,
    )


def _planned_dose_to_record(
    cycle: ChemoCycle, regimen_drug: RegimenDrug, day: int, creatinine_mg_dl: Number | None
) -> PlannedDose:
    """The dose administration_record gives: the one of cycle_dose_plan, or with the
    creatinine typed at the chair."""
    return _dose_to_give(
        cycle,
        regimen_drug,
        day,
        level=dose_percent_for(
            course=cycle.course, cycle_number=cycle.number, drug=regimen_drug.drug
        ),
        verification=_latest_verification(cycle),
        today=timezone.localdate(),
        creatinine_mg_dl=creatinine_mg_dl,
        # Named as the page names it, in the refusals (the 5-FU bolus or the infusion).
        alike=(regimen_drug.pk, day) in _alike_doses(cycle_drug_days(cycle=cycle)),
    )


def _require_verified_dose(cycle: ChemoCycle, dose: PlannedDose) -> DoseVerification:
    verification = dose.verification
    if verification is None:
        raise ValidationError(
            {
                "cycle": f"Cycle {cycle.number}'s doses have not been verified by a pharmacist: "
                "ask the pharmacist to verify them before the drug is prepared."
            }
        )
    if not dose.verified:
        dose_mg = dose.calculation_or_raise().dose_mg
        verified = dose.verified_mg
        was = f"{fmt_decimal(verified)} mg" if verified is not None else "no dose"
        raise ValidationError(
            {
                "cycle": f"{dose.label}: the dose is now "
                f"{fmt_decimal(dose_mg)} mg, but {verification.verified_by} verified {was} "
                f"({timezone.localtime(verification.verified_at):%d %b %H:%M}). Ask the "
                "pharmacist to verify the cycle again."
            }
        )
    return verification


class AllergyToConfirm(ConfirmationRequired):
    """A drug the patient has a recorded allergy to: planned or given only once confirmed."""

    confirm_with = "confirm_allergy"


# Other names a substance is typed as (abbreviations and brand names), by generic name: a
# "5-FU" allergy had not warned on fluorouracil.
DRUG_OTHER_NAMES: dict[str, tuple[str, ...]] = {
    "fluorouracil": ("5-fu", "5fu", "5 fu", "5-fluorouracil", "adrucil"),
    "doxorubicin": ("adriamycin", "doxo", "caelyx", "doxil"),
    "epirubicin": ("ellence", "pharmorubicin"),
    "cyclophosphamide": ("cytoxan", "endoxan", "cpm"),
    "paclitaxel": ("taxol", "abraxane"),
    "docetaxel": ("taxotere",),
    "carboplatin": ("paraplatin", "carbo"),
    "cisplatin": ("platinol",),
    "oxaliplatin": ("eloxatin", "oxali"),
    "vincristine": ("oncovin",),
    "leucovorin": ("folinic acid", "calcium folinate", "folinate", "levoleucovorin"),
    "prednisone": ("prednisolone",),
    "irinotecan": ("camptosar",),
    "capecitabine": ("xeloda",),
    "gemcitabine": ("gemzar",),
    "etoposide": ("vp-16", "vepesid"),
}


# A class allergy as it is written down ("platinum agents", "platins"); cross-reactivity within
# a class is why it is recorded that way.
CLASS_OTHER_NAMES: dict[str, tuple[str, ...]] = {
    "platinum": ("platins", "platinum compounds", "platinum agents", "platinum salts"),
    "taxane": ("taxoids",),
}


def _names_of(drug: Drug) -> tuple[str, ...]:
    """The drug's name, its other names, and its class in the singular and plural: an
    allergy written as "Anthracyclines" or "Taxanes" had not flagged doxorubicin or paclitaxel
    (a reviewer's find)."""
    name = drug.name.casefold()
    names = [name, *DRUG_OTHER_NAMES.get(name, ())]
    drug_class = drug.drug_class.split("(")[0].strip().casefold()
    if drug_class:
        names += [drug_class, f"{drug_class}s", *CLASS_OTHER_NAMES.get(drug_class, ())]
    return tuple(names)


def _mentions(substance: str, name: str) -> bool:
    # A whole word or phrase of the substance ("Paclitaxel (Taxol)", "5-FU infusion"), not a
    # fragment of another word ("carbo" in "carbocisteine").
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", substance) is not None


def drug_allergies(*, patient: Patient, drugs: Iterable[Drug]) -> list[tuple[Drug, Allergy]]:
    """The patient's current allergies that name one of `drugs`: by the formulary link, or by
    the drug's name, abbreviation or brand name (DRUG_OTHER_NAMES) in the substance typed."""
    by_id = {drug.pk: drug for drug in drugs}
    hits = []
    for allergy in Allergy.objects.filter(patient_id=patient.pk).order_by("substance"):
        substance = allergy.substance.casefold()
        drug = by_id.get(allergy.drug_id) or next(
            (d for d in by_id.values() if any(_mentions(substance, name) for name in _names_of(d))),
            None,
        )
        if drug is not None:
            hits.append((drug, allergy))
    return hits


def _confirmed(
    warning: str,
    *,
    confirmed: bool,
    error: type[ConfirmationRequired],
    field: str,
    asked: list[ConfirmationRequired] | None = None,
) -> list[str]:
    """[] when there is nothing to confirm; the warning, to be kept on the record, once the
    user confirmed it; the error naming `field` until then. A confirmation leaves a trace:
    who went past what is part of the record (a reviewer found no trace of an ANC of 0.2).

    With `asked`, an unconfirmed warning is added to it instead of raised, so that a service
    can ask every warning it finds at once (oncoplanner.confirmation.refuse_unconfirmed)."""
    if not warning:
        return []
    if not confirmed:
        refusal = error({field: warning})
        if asked is None:
            raise refusal
        asked.append(refusal)
        return []
    return [warning]


def _allergy_warning(patient: Patient, drugs: Iterable[Drug]) -> str:
    hits = drug_allergies(patient=patient, drugs=drugs)
    if not hits:
        return ""
    found = "; ".join(_allergy_to(drug, allergy) for drug, allergy in hits)
    return (
        f"Recorded allergy: {found}. Change the plan, or confirm that it is given anyway "
        "(e.g. a desensitisation protocol)."
    )


def _allergy_to(drug: Drug, allergy: Allergy) -> str:
    """ "Paclitaxel (severe: anaphylaxis)"; the drug named too when the allergy is recorded
    under another name: "Platins (mild: rash), which covers oxaliplatin"."""
    if allergy.substance.strip().lower() == drug.name.lower():
        return allergy.summary
    return f"{allergy.summary}, which covers {drug.name}"


class NewCriticalResultToConfirm(ConfirmationRequired):
    """A critical result arrived after the cycle was given: confirm before giving more."""

    confirm_with = "confirm_new_results"


def _new_critical_results_warning(cycle: ChemoCycle, given_at: dt.datetime) -> str:
    from labs.models import CRITICAL_FLAGS, LabResult

    since = cycle.status_changed_at or timezone.make_aware(
        dt.datetime.combine(cycle.start, dt.time.min)
    )
    # Drawn after the give, or drawn before it but reported after: a count drawn at 09:05 and
    # entered at 12:04 was missed when only the collection time was compared.
    critical = list(
        LabResult.objects.filter(
            Q(collected_at__gt=since) | Q(created_at__gt=since),
            patient_id=cycle.course.patient_id,
            flag__in=sorted(CRITICAL_FLAGS),
            collected_at__lte=given_at,
        )
        .select_related("test")
        .order_by("collected_at")
    )
    if not critical:
        return ""
    found = "; ".join(
        f"{r.test.short_name} {r.value_text} ({r.get_flag_display().lower()}, "
        f"collected {timezone.localtime(r.collected_at):%d %b %H:%M}, "
        f"entered {timezone.localtime(r.created_at):%d %b %H:%M})"
        for r in critical
    )
    return (
        f"Since cycle {cycle.number} was given: {found}. Speak to the oncologist before "
        "giving; confirm to record it anyway."
    )


def _check_label_dose(
    label: Number, dispensed_mg: Decimal, dose_mg: Decimal, inputs: dict[str, object]
) -> None:
    """The label must show the dose the pharmacist verified to dispense: the banded dose when
    banded (a bag at the calculated dose is not the one the pharmacy prepared), the calculated
    dose otherwise."""
    try:
        on_label = Decimal(str(label))
    except ArithmeticError:
        on_label = Decimal("NaN")
    if on_label.is_finite() and round_mg(on_label) == dispensed_mg:
        return
    if dispensed_mg != dose_mg:
        raise ValidationError(
            {
                "label_dose_mg": (
                    f"The label says {label} mg but the pharmacy verified a banded dose of "
                    f"{fmt_decimal(dispensed_mg)} mg (calculated {fmt_decimal(dose_mg)} mg): "
                    "the bag must be the banded one. Do not give it: ask the pharmacist."
                )
            }
        )
    basis = ""
    if inputs.get("weight_kg"):
        basis = f" (from {inputs['weight_kg']} kg measured {inputs.get('weight_measured_on')})"
    raise ValidationError(
        {
            "label_dose_mg": (
                f"The label says {label} mg but the dose now is {fmt_decimal(dose_mg)} mg"
                f"{basis}. Do not give it: ask the pharmacist to check the dose against the "
                "current weight, height and dose level."
            )
        }
    )


@transaction.atomic
def administration_record(
    *,
    cycle: ChemoCycle,
    regimen_drug: RegimenDrug,
    day_of_cycle: int,
    given_at: dt.datetime,
    administered_by: User,
    verified_by: User,
    verified_at: dt.datetime | None = None,
    notes: str = "",
    creatinine_mg_dl: Number | None = None,
    label_dose_mg: Number | None = None,
    confirm_new_results: bool = False,
    confirm_allergy: bool = False,
    confirm_premedication: bool = False,
) -> Administration:
    """Record a drug given on a day of a cycle, with the computed dose and all its inputs.

    `label_dose_mg` is the dose printed on the prepared bag or syringe, typed at the bedside
    (every door asks for it). It must equal the dose the latest verification dispenses: the
    banded dose when the pharmacist banded it (kept as dispensed_dose_mg beside the calculated
    dose_mg), else the dose computed now. The calculated dose must still be the one verified:
    a weight, height or dose
    level recorded after the drug was prepared changes the dose, and the bag in hand no longer
    matches it (a reviewer's find: 5-FU recomputed from a later weight, 800 -> 772 mg, with no
    warning).

    The dose is computed here (never typed in), as cycle_dose_plan computes it for the page and
    the pharmacist: the standard dose from dose_compute for the day's date, at the level
    dose_percent_for sets for this cycle; it must be the dose the latest verification holds. `given_at` must fall on that day of the cycle
    (ASCO/ONS 2024: the check covers cycle number and day). `verified_by`, the independent
    second checker, is required and must be an active clinician other than `administered_by`
    (the doors also make them confirm with their password: oncoplanner.accounts.cosign);
    `verified_at` defaults to `given_at`.

    A critical lab result collected after the cycle was given and before `given_at` raises
    NewCriticalResultToConfirm until `confirm_new_results`: the cycle page stops judging
    readiness once a cycle is given, and a day-1 drug had gone in after an ANC of 0.3 arrived.
    A drug the patient has a recorded allergy to raises AllergyToConfirm until
    `confirm_allergy`. A drug with premedication required before it that day (the regimen's
    supportive care, e.g. paclitaxel's dexamethasone, H1 and H2 antagonists) raises
    PremedicationToConfirm until `confirm_premedication`, the nurse's confirmation that it was
    given; what was confirmed is kept on the administration (premedication_confirmed).
    """
    cycle = _lock_cycle(cycle)
    course = cycle.course
    # No open-course check: giving the last cycle completes the course, and its drugs are
    # recorded after that. The cycle's own status is the guard (stopping a course cancels
    # every cycle not yet given).
    if cycle.status not in {ChemoCycle.Status.GIVEN, ChemoCycle.Status.READY}:
        raise ValidationError(
            {"cycle": f"Cycle {cycle.number} is {cycle.status}; give it before recording drugs."}
        )
    if regimen_drug.phase_id != cycle.phase_id:
        raise ValidationError(
            {"regimen_drug": f"{regimen_drug.drug} is not part of this cycle's phase."}
        )
    days = parse_days(regimen_drug.days)
    if day_of_cycle not in days:
        raise ValidationError(
            {"day_of_cycle": f"{regimen_drug.drug} is given on day(s) {regimen_drug.days}."}
        )
    if timezone.is_naive(given_at):
        raise ValidationError({"given_at": "Give a time with its time zone."})
    if given_at > timezone.now():
        raise ValidationError({"given_at": "An administration cannot be in the future."})
    day_date = cycle.start + dt.timedelta(days=day_of_cycle - 1)
    if timezone.localdate(given_at) != day_date:
        raise ValidationError(
            {"given_at": f"Day {day_of_cycle} of cycle {cycle.number} is {day_text(day_date)}."}
        )
    if verified_by.pk == administered_by.pk:
        raise ValidationError(
            {"verified_by": "The second check must be done by someone other than the giver."}
        )
    if not verified_by.is_active or verified_by.role != User.Role.CLINICIAN:
        raise ValidationError({"verified_by": "The second checker must be an active clinician."})
    confirmed = _confirmed(
        _allergy_warning(course.patient, [regimen_drug.drug]),
        confirmed=confirm_allergy,
        error=AllergyToConfirm,
        field="confirm_allergy",
    ) + _confirmed(
        _new_critical_results_warning(cycle, given_at),
        confirmed=confirm_new_results,
        error=NewCriticalResultToConfirm,
        field="confirm_new_results",
    )
    premedication = _premedication_confirmed(
        regimen_drug, day_of_cycle, confirmed=confirm_premedication
    )
    dose = _planned_dose_to_record(cycle, regimen_drug, day_of_cycle, creatinine_mg_dl)
    calculation = dose.calculation_or_raise()
    verification = _require_verified_dose(cycle, dose)
    # Verified at this calculated dose (above), so what was dispensed for it stands.
    dispensed = dose.dispensed_mg if dose.dispensed_mg is not None else calculation.dose_mg
    if label_dose_mg is not None:
        _check_label_dose(label_dose_mg, dispensed, calculation.dose_mg, calculation.inputs)
    inputs = dict(calculation.inputs)
    inputs["cycle_number"] = cycle.number
    inputs["day_of_cycle"] = day_of_cycle
    inputs["dose_verification_id"] = verification.pk
    administration = Administration(
        cycle=cycle,
        regimen_drug=regimen_drug,
        drug=regimen_drug.drug,
        day_of_cycle=day_of_cycle,
        given_at=given_at,
        route=regimen_drug.route,
        standard_dose_mg=calculation.standard_dose_mg,
        dose_percent=calculation.percent,
        dose_mg=calculation.dose_mg,
        dispensed_dose_mg=dispensed if dispensed != calculation.dose_mg else None,
        formula=calculation.formula,
        inputs=inputs,
        notes=notes,
        administered_by=administered_by,
        verified_by=verified_by,
        verified_at=verified_at or given_at,
        confirmed_warnings=confirmed,
        premedication_confirmed=premedication,
    )
    _save(administration)
    return administration


@transaction.atomic
def administration_stop(
    *, administration: Administration, amount_given_mg: Number, reason: str, by: User
) -> Administration:
    """Record that an infusion was stopped part-way: the mg that went in, and why.

    Once per administration: a second, different amount would rewrite what was charted. The
    lifetime totals count the amount given from then on (cumulative_dose_per_drug).
    """
    administration = Administration.objects.select_for_update().get(pk=administration.pk)
    if administration.amount_given_mg is not None:
        raise ValidationError(
            {
                "amount_given_mg": (
                    f"Already recorded as stopped at {administration.amount_given_mg} mg "
                    f"({administration.stopped_reason})."
                )
            }
        )
    try:
        amount = Decimal(str(amount_given_mg))
    except ArithmeticError:
        amount = Decimal("NaN")
    prepared = administration.prepared_dose_mg  # the banded dose, when banded
    if not amount.is_finite() or not Decimal(0) <= amount < prepared:
        raise ValidationError(
            {
                "amount_given_mg": (
                    f"Give the mg that went in: from 0 to less than the dose of "
                    f"{prepared} mg (a full dose needs no entry)."
                )
            }
        )
    if not reason.strip():
        raise ValidationError({"reason": "Say why the infusion was stopped."})
    administration.amount_given_mg = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    administration.stopped_reason = reason.strip()
    administration.stopped_recorded_by = by
    _save(administration)
    return administration


# --- Side effects ---------------------------------------------------------------------------


@transaction.atomic
def side_effect_record(
    *,
    patient: Patient,
    term: CtcaeTerm,
    grade: int,
    onset: dt.date,
    recorded_by: User,
    cycle: ChemoCycle | None = None,
    description: str = "",
    source: str = SideEffect.Source.CLINICIAN,
) -> SideEffect:
    """Record a CTCAE-graded side effect; the CTCAE version is copied from the term.

    Grade >= 3 enqueues notify_care_team_of_severe_side_effect, but only once the transaction
    commits: a rolled-back write must never page anyone.
    """
    if isinstance(grade, bool) or not isinstance(grade, int) or not 1 <= grade <= 5:
        raise ValidationError({"grade": "A CTCAE grade is 1 to 5."})
    if grade > term.max_grade or (
        term.grade_descriptions and str(grade) not in term.grade_descriptions
    ):
        raise ValidationError(
            {"grade": f"{term.term} has no grade {grade} in CTCAE v{term.version}."}
        )
    patient.require_in_lifetime(onset, field="onset", what="The onset")
    if cycle is not None:
        _require_cycle_started_by(cycle, onset)
    side_effect = SideEffect(
        patient=patient,
        cycle=cycle,
        term=term,
        grade=grade,
        ctcae_version=term.version,
        onset=onset,
        description=description,
        source=source,
        reported_by=recorded_by,
    )
    _save(side_effect)
    if grade >= 3:
        transaction.on_commit(
            partial(notify_care_team_of_severe_side_effect.enqueue, side_effect_id=side_effect.pk)
        )
    return side_effect


def _require_cycle_started_by(cycle: ChemoCycle, onset: dt.date) -> None:
    """A side effect is linked to a cycle that was given, and began on or after its start."""
    cycle.refresh_from_db(fields=["status", "actual_start"])  # as stored, not as the caller saw it
    if cycle.status != ChemoCycle.Status.GIVEN or cycle.actual_start is None:
        raise ValidationError(
            {
                "cycle": f"Cycle {cycle.number} has not been given ({cycle.get_status_display()}); "
                "link the side effect to a given cycle, or to none."
            }
        )
    if onset < cycle.actual_start:
        raise ValidationError(
            {
                "onset": f"The onset is before cycle {cycle.number} started "
                f"({day_text(cycle.actual_start)}); link it to an earlier cycle."
            }
        )


# --- Cumulative dose ------------------------------------------------------------------------


@dataclass(frozen=True)
class CumulativeDose:
    drug: Drug
    total_mg: Decimal
    total_mg_m2: Decimal | None  # over administrations with a recorded BSA only
    administrations: int
    administrations_without_bsa: int
    lifetime_limit_mg_m2: Decimal | None
    fraction_used: Decimal | None  # of the lifetime limit, 2 dp
    warning: bool  # fraction_used >= drug.limit_warning_fraction


def cumulative_dose_per_drug(*, patient: Patient) -> list[CumulativeDose]:
    """Lifetime dose per drug over every administration to `patient`, across all courses.

    mg/m² sums each administration's dose over the BSA recorded with it (the BSA of that day,
    not today's). Anthracycline cardiotoxicity tracks this figure, so the drug's configured
    lifetime limit and warning fraction are applied. Reads only; sorted by drug name.
    """
    totals: dict[int, dict[str, Decimal | int]] = {}
    drugs: dict[int, Drug] = {}
    administrations = (
        Administration.objects.filter(cycle__course__patient=patient)
        .select_related("drug")
        .order_by("drug__name", "given_at", "pk")
    )
    for adm in administrations:
        drugs[adm.drug_id] = adm.drug
        row = totals.setdefault(
            adm.drug_id, {"mg": Decimal(0), "mg_m2": Decimal(0), "n": 0, "no_bsa": 0}
        )
        row["mg"] = Decimal(row["mg"]) + adm.dose_given_mg
        row["n"] = int(row["n"]) + 1
        bsa = (adm.inputs or {}).get("bsa_m2")
        if bsa:
            row["mg_m2"] = Decimal(row["mg_m2"]) + adm.dose_given_mg / Decimal(bsa)
        else:
            row["no_bsa"] = int(row["no_bsa"]) + 1
    result: list[CumulativeDose] = []
    for drug_id, row in totals.items():
        drug = drugs[drug_id]
        with_bsa = int(row["n"]) - int(row["no_bsa"])
        mg_m2 = (
            Decimal(row["mg_m2"]).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
            if with_bsa
            else None
        )
        limit = drug.lifetime_limit_mg_m2
        exact = mg_m2 / limit if limit and mg_m2 is not None else None
        result.append(
            CumulativeDose(
                drug=drug,
                total_mg=Decimal(row["mg"]).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP),
                total_mg_m2=mg_m2,
                administrations=int(row["n"]),
                administrations_without_bsa=int(row["no_bsa"]),
                lifetime_limit_mg_m2=limit,
                fraction_used=(
                    exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
                    if exact is not None
                    else None
                ),
                warning=exact is not None and exact >= drug.limit_warning_fraction,
            )
        )
    return result


def _mg(value: Decimal) -> str:
    return fmt_decimal(value.quantize(Decimal("0.1")))  # 240.0 -> "240", 237.46 -> "237.5"


@dataclass(frozen=True)
class LifetimeProjection:
    """A drug with a lifetime limit: what the patient has had, what a plan adds (mg/m²)."""

    drug: Drug
    received_mg_m2: Decimal
    planned_mg_m2: Decimal
    limit_mg_m2: Decimal

    @property
    def total_mg_m2(self) -> Decimal:
        return self.received_mg_m2 + self.planned_mg_m2

    @property
    def over(self) -> bool:
        return self.total_mg_m2 > self.limit_mg_m2

    @property
    def message(self) -> str:
        verdict = "above" if self.over else "near"
        return (
            f"{self.drug.name}: {_mg(self.received_mg_m2)} mg/m² received + "
            f"{_mg(self.planned_mg_m2)} planned = {_mg(self.total_mg_m2)} mg/m², {verdict} "
            f"the lifetime limit of {_mg(self.limit_mg_m2)} mg/m²."
        )


def lifetime_projection(
    *,
    patient: Patient,
    planned: Iterable[tuple[RegimenDrug, int]],
    received: Iterable[CumulativeDose] | None = None,
) -> list[LifetimeProjection]:
    """For each drug with a lifetime limit (anthracyclines), what the patient has received
    plus what `planned` (regimen drug, number of administrations, at 100%) would add, when the
    sum reaches the drug's warning fraction of the limit. Reads only.

    `received` is cumulative_dose_per_drug(patient=patient) when the caller has read it
    already (the cycle page shows it too): it is read here otherwise."""
    adding: dict[int, Decimal] = {}
    drugs: dict[int, Drug] = {}
    for regimen_drug, count in planned:
        drug = regimen_drug.drug
        if drug.lifetime_limit_mg_m2 and regimen_drug.dose_basis == DoseBasis.MG_M2 and count:
            drugs[drug.pk] = drug
            adding[drug.pk] = adding.get(drug.pk, Decimal(0)) + Decimal(regimen_drug.dose) * count
    if not adding:
        return []
    if received is None:
        received = cumulative_dose_per_drug(patient=patient)
    received_mg_m2 = {
        c.drug.pk: c.total_mg_m2 or Decimal(0) for c in received if c.drug.pk in adding
    }
    projections = [
        LifetimeProjection(
            drug=drugs[pk],
            received_mg_m2=received_mg_m2.get(pk, Decimal(0)),
            planned_mg_m2=planned_mg_m2,
            limit_mg_m2=Decimal(drugs[pk].lifetime_limit_mg_m2),
        )
        for pk, planned_mg_m2 in adding.items()
    ]
    return [
        p
        for p in projections
        if p.total_mg_m2 >= p.limit_mg_m2 * Decimal(p.drug.limit_warning_fraction)
    ]


@transaction.atomic
def side_effect_acknowledge(*, side_effect: SideEffect, by: User, note: str) -> SideEffect:
    """Acknowledge a grade >= 3 side effect in the care team's inbox: who, when, what was done.

    Precondition: `by` holds change permission on the patient (checked through the gate).
    """
    if side_effect.grade < 3:
        raise ValidationError(
            {"side_effect": "Only grade 3 or higher side effects are acknowledged."}
        )
    acknowledge(side_effect, by=by, note=note)
    return side_effect
