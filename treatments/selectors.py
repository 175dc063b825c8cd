"""Reads for the course, cycle, side-effect and summary pages, on top of the access gate.

Every function first passes patients.selectors (which answers 404 for a missing and a forbidden
record alike, and sends record_read so audit logs the read). What is read afterwards belongs to
the record the gate has just authorised, so it is never a second door.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from labs.rules import fmt_decimal
from oncoplanner.signals import record_read
from patients import selectors as gate
from treatments import services
from treatments.models import (
    Administration,
    ChemoCycle,
    Course,
    CtcaeTerm,
    DoseModification,
    RegimenDrug,
    RegimenPhase,
    SideEffect,
)
from treatments.services import OPEN_CYCLE_STATUSES

if TYPE_CHECKING:
    from oncoplanner.accounts.models import User
    from patients.models import Patient

# Key lab values on the treatment summary: ANC, platelets, hemoglobin (LOINC).
NADIR_LOINCS = {"751-8": "ANC", "777-3": "Platelets", "718-7": "Hemoglobin"}


def course_get(*, user: User, patient_id: Any, course_id: Any, perm: str = gate.VIEW) -> Course:
    """The course under its patient (404 otherwise), with regimen and patient loaded."""
    course: Course = gate.course_get_for_user(
        user=user, patient_id=patient_id, course_id=course_id, perm=perm
    )
    return (
        Course.objects.select_related("regimen", "patient", "patient__care_team")
        .prefetch_related(
            Prefetch("regimen__phases", queryset=RegimenPhase.objects.order_by("order")),
            Prefetch(
                "regimen__phases__drugs",
                queryset=RegimenDrug.objects.select_related("drug").order_by("order", "pk"),
            ),
        )
        .get(pk=course.pk)
    )


def cycle_get(
    *, user: User, patient_id: Any, course_id: Any, number: Any, perm: str = gate.VIEW
) -> ChemoCycle:
    """Cycle `number` of a course, under its patient; 404 for a missing number, a course of
    another patient, or a patient the user may not see (all logged as one denied read)."""
    # The id found here is only handed to the gate, which authorises and logs; a number that
    # does not exist goes to the gate as an impossible id and gets the same 404.
    cycle_id = (
        ChemoCycle.objects.filter(course_id=course_id, number=number)
        .values_list("pk", flat=True)
        .first()
        if str(number).isdigit() and str(course_id).isdigit()
        else None
    )
    cycle: ChemoCycle = gate.cycle_get_for_user(
        user=user,
        patient_id=patient_id,
        cycle_id=cycle_id if cycle_id is not None else f"number:{number}",
        course_id=course_id,
        perm=perm,
    )
    return ChemoCycle.objects.select_related(
        "phase", "course", "course__regimen", "course__patient", "course__patient__care_team"
    ).get(pk=cycle.pk)


def course_cycles(*, course: Course) -> QuerySet[ChemoCycle]:
    """Cycles of an authorised course, with the phase and who changed the status."""
    return course.cycles.select_related("phase", "status_changed_by").order_by("number")


def next_cycle_day(*, course: Course) -> dt.date | None:
    """The planned day of the course's next cycle still to give (readiness is judged for it)."""
    return (
        course.cycles.filter(status__in=OPEN_CYCLE_STATUSES)
        .order_by("number")
        .values_list("planned_start", flat=True)
        .first()
    )


def course_dose_modifications(*, course: Course) -> QuerySet[DoseModification]:
    return course.dose_modifications.select_related("drug", "created_by").order_by(
        "from_cycle_number", "created_at", "pk"
    )


def course_administrations(*, course: Course) -> QuerySet[Administration]:
    return Administration.objects.filter(cycle__course=course).select_related(
        "cycle", "drug", "administered_by", "verified_by"
    )


@dataclass(frozen=True)
class PreviousCycleDoses:
    number: int
    given: dict[tuple[int, int], Administration]  # by (regimen drug id, day of cycle)


def previous_cycle_doses(*, cycle: ChemoCycle) -> PreviousCycleDoses | None:
    """What was given in the course's latest earlier cycle with drugs recorded (cycle N-1, or
    the one before when N-1 has none): a pharmacist verifying cycle N compares each dose with
    the one given then, its level and whether it was stopped early. Two queries, however
    many drugs. `cycle` is one the caller read through the gate (cycle_get)."""
    previous = (
        Administration.objects.filter(
            cycle__course_id=cycle.course_id, cycle__number__lt=cycle.number
        )
        .order_by("-cycle__number")
        .values_list("cycle_id", "cycle__number")
        .first()
    )
    if previous is None:
        return None
    cycle_id, number = previous
    given = Administration.objects.filter(cycle_id=cycle_id).order_by("given_at", "pk")
    return PreviousCycleDoses(
        number=number, given={(a.regimen_drug_id, a.day_of_cycle): a for a in given}
    )


def course_side_effects(*, course: Course) -> QuerySet[SideEffect]:
    """Side effects linked to a cycle of the course, or with onset while it ran."""
    end = course.stopped_on or dt.date.max
    return (
        SideEffect.objects.filter(patient=course.patient)
        .filter(
            Q(cycle__course=course)
            | Q(cycle__isnull=True, onset__gte=course.start_date, onset__lte=end)
        )
        .select_related("term", "cycle", "reported_by")
        .order_by("onset", "pk")
    )


def patient_cycles(*, patient: Patient) -> QuerySet[ChemoCycle]:
    """Given cycles of an authorised patient, for the side effect's related-cycle select: a
    side effect is linked only to a cycle that was given (treatments.services)."""
    return (
        ChemoCycle.objects.filter(course__patient=patient, status=ChemoCycle.Status.GIVEN)
        .select_related("course__regimen")
        .order_by("-course__start_date", "-number")
    )


def care_team_checkers(*, patient: Patient, exclude: User) -> QuerySet[Any]:
    """Active clinicians on the patient's care team other than `exclude`: who may do the
    independent second check of an administration (ASCO/ONS 2024)."""
    if patient.care_team is None:
        return get_user_model().objects.none()
    members = gate.care_team_members(team=patient.care_team)
    return members.filter(is_active=True, role="clinician").exclude(pk=exclude.pk)


def ctcae_terms_search(*, q: str, limit: int = 30) -> QuerySet[CtcaeTerm]:
    """CTCAE terms matching `q` (reference data, not PHI): common terms first."""
    return ctcae_terms_matching(q=q)[:limit]


def ctcae_terms_matching(*, q: str | None) -> QuerySet[CtcaeTerm]:
    """Every CTCAE term whose term or category contains `q` (all of them without one), common
    terms first, in a total order (term, version, pk) so that pages neither skip nor repeat.
    Reference data, not PHI: no gate, no read logged."""
    terms = CtcaeTerm.objects.all()
    q = (q or "").strip()[:100]
    if q:
        terms = terms.filter(Q(term__icontains=q) | Q(category__icontains=q))
    return terms.order_by("-is_common", "term", "version", "pk")


def ctcae_term_grades(*, term: CtcaeTerm) -> list[tuple[int, str]]:
    """(grade, meaning) of `term`, by grade (the model keeps them as {"1": ...})."""
    rows = [
        (int(grade), str(text))
        for grade, text in (term.grade_descriptions or {}).items()
        if str(grade).isdigit()
    ]
    return sorted(rows)


@dataclass(frozen=True)
class CycleNadir:
    cycle: ChemoCycle
    values: dict[str, tuple[str, str, dt.datetime] | None]  # name -> (min as text, unit, at)


def course_nadirs(*, user: User, course: Course, cycles: list[ChemoCycle]) -> list[CycleNadir]:
    """Lowest ANC, platelets and hemoglobin inside each given cycle (actual start to end).

    Results are read through the gate (lab_results_for, which logs a list read) in one query.
    """
    given = [c for c in cycles if c.actual_start]
    if not given:
        return []
    results = list(
        gate.lab_results_for(user=user, patient_id=course.patient_id)
        .filter(
            test__loinc__in=list(NADIR_LOINCS),
            collected_at__date__gte=min(c.actual_start for c in given),  # type: ignore[type-var]
        )
        .order_by("collected_at")
    )
    rows: list[CycleNadir] = []
    for cycle in given:
        end = cycle.end_date or cycle.actual_start
        values: dict[str, tuple[Decimal, str, dt.datetime] | None] = dict.fromkeys(
            NADIR_LOINCS.values()
        )
        for result in results:
            day = timezone.localdate(result.collected_at)  # the clinic's day, not UTC's
            if not (cycle.actual_start <= day <= end):  # type: ignore[operator]
                continue
            name = NADIR_LOINCS[result.test.loinc]
            current = values[name]
            if current is None or result.value < current[0]:
                values[name] = (result.value, result.unit, result.collected_at)
        shown = {name: (fmt_decimal(v[0]), v[1], v[2]) if v else None for name, v in values.items()}
        rows.append(CycleNadir(cycle=cycle, values=shown))
    return rows


def height_recorded(*, patient: Patient, on_date: dt.date) -> bool:
    """Whether an authorised patient has a height on or before `on_date` (BSA needs one)."""
    return patient.measurements.filter(measured_on__lte=on_date, height_cm__isnull=False).exists()


# The pharmacy's window: cycles whose day 1 is from yesterday to this many days ahead.
WORKLIST_DAYS_AHEAD = 2


@dataclass(frozen=True)
class WorklistRow:
    cycle: ChemoCycle
    state: str  # CycleDosePlan.verification_state
    # Why the signed-in user may not verify the cycle's doses, in the words cycle_doses_verify
    # refuses with (the cycle page shows them too); "" when they may.
    verify_refused: str
    # The refusal is separation of duties: this pharmacist set a dose level in force for the
    # cycle as a non-medical prescriber (services.dose_levels_set_by); another verifies.
    set_dose_level: bool

    @property
    def may_verify(self) -> bool:
        return not self.verify_refused


def pharmacy_worklist(*, user: User) -> list[WorklistRow]:
    """Cycles due soon on the user's patients whose doses a pharmacist must verify, or verify
    again, first; then those verified. Nurses had learnt of an unverified cycle only at the
    chair, when recording was refused (a reviewer's find). One record_read (list) for the
    patients shown. Computes each cycle's doses (services.cycle_dose_plans): what they share
    (verifications, administrations, regimen drugs, dose levels) is read once for every row.

    Each row says whether `user` may verify it: a pharmacist does not verify a cycle whose dose
    level in force they set (cycle_doses_verify refuses it), and learns so here rather than on
    opening the cycle. Within the same state, those rows come after the ones they may verify.
    The dose levels of every course shown are read in one query, not one per row, and so are
    every row's patient's height and weight (services.cycle_dose_plans): the list costs the
    same queries however many rows it has (a Calvert dose still reads its creatinine)."""
    today = timezone.localdate()
    window = (today - dt.timedelta(days=1), today + dt.timedelta(days=WORKLIST_DAYS_AHEAD))
    cycles = (
        gate.scoped(ChemoCycle, user=user)
        .filter(course__status__in=["planned", "active", "completed"])
        .filter(
            Q(actual_start__range=window)
            | Q(actual_start__isnull=True, planned_start__range=window)
        )
        .exclude(status__in=[ChemoCycle.Status.CANCELLED, ChemoCycle.Status.HELD])
        .select_related("course__patient", "course__regimen", "phase")
        .order_by("planned_start", "pk")
    )
    in_window = list(cycles)
    # Every dose level of the courses in the window: one query, however many rows; the plans'
    # doses and the pharmacist's marker both read them from here.
    levels_by_course = services.course_dose_levels({cycle.course_id for cycle in in_window})
    plans = [
        plan
        for plan in services.cycle_dose_plans(in_window, course_levels=levels_by_course).values()
        if plan.verification_state
    ]
    rows = []
    for plan in plans:
        cycle = plan.cycle
        if user.is_pharmacist:
            own = services.dose_levels_set_by(
                plan=plan, user=user, course_levels=levels_by_course.get(cycle.course_id, [])
            )
            refused = services.own_dose_levels_message(cycle, own) if own else ""
        else:
            own, refused = [], services.VERIFIED_BY_A_PHARMACIST
        rows.append(
            WorklistRow(
                cycle=cycle,
                state=plan.verification_state,
                verify_refused=refused,
                set_dose_level=bool(own),
            )
        )
    order = {"changed": 0, "unverified": 1, "verified": 2}
    # Those this pharmacist may not verify after those they may, within the same state: the
    # ones to act on stay at the top, and the others are still there, marked, for a colleague.
    rows.sort(key=lambda row: (order[row.state], row.set_dose_level, row.cycle.start))
    patients = list(
        {row.cycle.course.patient.pk: row.cycle.course.patient for row in rows}.values()
    )
    if patients:
        record_read.send(sender=ChemoCycle, patients=patients, target=None, action="list")
    return rows
