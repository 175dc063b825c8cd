"""Read models for the clinician's patient list and the patient dashboard.

Both go through the access gate (patients.selectors) first: the list starts from
``patient_list_visible_to`` and the dashboard from ``patient_get_for_user``; child rows are read
only for patients the gate has already returned. Each page sends exactly one ``record_read``
(the list logs the patients shown, the dashboard logs the chart read), so a dashboard view is
one access-log row, not one per section.

Query counts are fixed: every section is one query (or two) over the whole history, never one
per cycle, result or row, so a patient with 500 results costs what a patient with 5 does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from audit.selectors import access_visits_for_patient
from labs.models import CRITICAL_FLAGS, LabResult
from labs.services import (
    EvidenceLine,
    PreCycleAssessment,
    PreCycleQuestion,
    ReadinessBadge,
    evidence_lines,
    precycle_evaluate_keyed,
    readiness_badge,
)
from oncoplanner.signals import record_read
from patients import chart_cache, selectors
from patients.models import BodyMeasurement, Patient, SymptomReport
from treatments.dosing import bsa_mosteller, weight_too_old
from treatments.models import (
    ChemoCycle,
    Course,
    DoseBasis,
    DoseModification,
    RegimenDrug,
    SideEffect,
)
from treatments.services import (
    OPEN_COURSE_STATUSES,
    OPEN_CYCLE_STATUSES,
    CumulativeDose,
    cumulative_dose_per_drug,
)

if TYPE_CHECKING:
    from oncoplanner.accounts.models import User

PAGE_SIZE = 25
# The chart lists the patient's symptom reports of this many days, and every unreviewed one.
SYMPTOM_REPORT_DAYS = 30
FILTERS = {
    "mine": "My patients",
    "due": "Due this week",
    "attention": "Needs attention",
}
DEFAULT_FILTER = "mine"
SEVERE_SIDE_EFFECT_GRADE = 3  # CTCAE grade >= 3 needs an acknowledgement (DOMAIN.md 5)


class UnknownFilter(ValueError):
    """A filter value the list does not offer (the view answers 400)."""


# --- Patient list ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OtherCourseLine:
    """Another open course of a list row, with the readiness of its own next cycle (judged on
    its own regimen for its own day, as on the dashboard); None when it has nothing left to
    give."""

    course: Course  # with next_number, next_start and total_cycles
    readiness: PreCycleAssessment | None
    badge: ReadinessBadge | None


@dataclass
class PatientRow:
    """One row per patient: `course` is the open course whose next cycle is due first (its
    readiness is `readiness`); `others` are the patient's other open courses, each with its own
    next cycle and readiness, shown under it (a second open course is allowed, with a reason)."""

    patient: Patient
    course: Course | None
    readiness: PreCycleAssessment | None
    badge: ReadinessBadge | None
    attention: list[str] = field(default_factory=list)
    others: list[OtherCourseLine] = field(default_factory=list)

    @property
    def other_courses(self) -> list[Course]:
        return [line.course for line in self.others]


@dataclass
class PatientListPage:
    page: Page[Any]
    rows: list[PatientRow]
    filter: str
    q: str
    total: int
    week_end: dt.date  # the Sunday that ends "this week"

    @property
    def filter_label(self) -> str:
        return FILTERS[self.filter]


def _week_end(today: dt.date) -> dt.date:
    return today + dt.timedelta(days=6 - today.weekday())  # Sunday of this week


# "The next cycle" of a course, everywhere on these pages: its open cycle planned first (the
# cycle number breaks a tie). The list's date column, the "due this week" filter, the row's
# regimen and cycle, its readiness and the dashboard's readiness panel all use this one order,
# so a row can never show one course's date beside another course's cycle.
NEXT_CYCLE_ORDER = ("planned_start", "number")


def _open_cycles() -> QuerySet[ChemoCycle]:
    """The patient's open cycles over every open course, the next due first."""
    return ChemoCycle.objects.filter(
        course__patient=OuterRef("pk"),
        course__status__in=OPEN_COURSE_STATUSES,
        status__in=OPEN_CYCLE_STATUSES,
    ).order_by(*NEXT_CYCLE_ORDER)


def _next_cycle_of_course() -> QuerySet[ChemoCycle]:
    return ChemoCycle.objects.filter(
        course=OuterRef("pk"), status__in=OPEN_CYCLE_STATUSES
    ).order_by(*NEXT_CYCLE_ORDER)


def _with_next_cycle(courses: QuerySet[Course]) -> QuerySet[Course]:
    """Each course with its next open cycle's number and planned day (None: nothing open)."""
    return courses.annotate(
        next_number=Subquery(_next_cycle_of_course().values("number")[:1]),
        next_start=Subquery(_next_cycle_of_course().values("planned_start")[:1]),
    )


def _due_first(courses: Iterable[Course]) -> list[Course]:
    """Open courses, the one whose next cycle is due first at the head (the course a nurse
    acts on next: its readiness is the one shown); courses with nothing left to give last,
    the latest started first. A stable order, so the list and the dashboard agree."""
    far = dt.date.max

    def key(course: Course) -> tuple[bool, dt.date, int, int]:
        start = course.next_start  # type: ignore[attr-defined]
        return (start is None, start or far, -course.start_date.toordinal(), -course.pk)

    return sorted(courses, key=key)


def _annotated(queryset: QuerySet[Patient]) -> QuerySet[Patient]:
    """Attention flags and the next cycle date, as subqueries of the one list query."""
    return queryset.annotate(
        critical_open=Exists(
            LabResult.objects.filter(
                patient=OuterRef("pk"), flag__in=CRITICAL_FLAGS, acknowledged_at__isnull=True
            )
        ),
        severe_side_effect_open=Exists(
            SideEffect.objects.filter(
                patient=OuterRef("pk"),
                grade__gte=SEVERE_SIDE_EFFECT_GRADE,
                acknowledged_at__isnull=True,
            )
        ),
        severe_symptom_open=Exists(
            SymptomReport.objects.filter(
                patient=OuterRef("pk"),
                urgent=True,
                reviewed_at__isnull=True,
            )
        ),
        next_cycle_start=Subquery(_open_cycles().values("planned_start")[:1]),
    )


def _search(queryset: QuerySet[Patient], q: str) -> QuerySet[Patient]:
    # Every word must match a name or the MRN: "smith jo" finds Jo Smith, "MRN0001" one chart.
    for word in q.replace(",", " ").split():
        queryset = queryset.filter(
            Q(family_name__icontains=word) | Q(given_name__icontains=word) | Q(mrn__icontains=word)
        )
    return queryset


def _open_courses(patient_ids: Iterable[int] | QuerySet[Any]) -> dict[int, list[Course]]:
    """Every open course per patient (one query), with cycle totals and the next cycle, the
    course due first at the head (see _due_first)."""
    courses = _with_next_cycle(
        Course.objects.filter(
            patient_id__in=patient_ids if isinstance(patient_ids, QuerySet) else list(patient_ids),
            status__in=OPEN_COURSE_STATUSES,
        )
        .select_related("regimen")
        .annotate(total_cycles=Count("cycles"))
    )
    by_patient: dict[int, list[Course]] = {}
    for course in courses:
        by_patient.setdefault(course.patient_id, []).append(course)
    return {pid: _due_first(rows) for pid, rows in by_patient.items()}


def _readiness_by_course(
    open_courses: dict[int, list[Course]], at: dt.datetime
) -> dict[int, PreCycleAssessment]:
    """Readiness for the next cycle of every open course of every patient given (as read by
    _open_courses), keyed by course id: each judged on its own regimen for its own cycle day,
    in one evaluation (two queries, none when no course has a cycle to come). A course with
    nothing left to give has nothing to judge and is left out."""
    return _judge_courses(
        (
            (pid, course)
            for pid, courses in open_courses.items()
            for course in courses
            if course.next_number is not None  # type: ignore[attr-defined]
        ),
        at,
    )


def _judge_courses(
    courses: Iterable[tuple[int, Course]], at: dt.datetime
) -> dict[int, PreCycleAssessment]:
    """Readiness of each (patient id, course read with _with_next_cycle), keyed by course id:
    each on its own regimen for its own next cycle's day (now when it has none), in one
    evaluation (labs.services.precycle_evaluate_keyed: two queries, none without a course)."""
    return precycle_evaluate_keyed(
        questions={
            course.pk: PreCycleQuestion(pid, course.regimen, course.next_start)  # type: ignore[attr-defined]
            for pid, course in courses
        },
        at=at,
    )


def _not_ready_ids(queryset: QuerySet[Patient], at: dt.datetime) -> set[int]:
    """Patients with an open course whose next cycle is not ready: any open course, not only
    the one due first. Each is judged for its own cycle day, as the row's badges are, so a
    cycle still to come whose bloods are simply not drawn yet ("Labs due") does not count,
    while a result in hand that already says delay, hold or contact does, for either course."""
    open_courses = _open_courses(queryset.values("pk"))  # a subquery: no extra round trip
    assessments = _readiness_by_course(open_courses, at)
    return {
        pid
        for pid, courses in open_courses.items()
        if any(c.pk in assessments and assessments[c.pk].needs_attention for c in courses)
    }


def patient_list_page(
    *, user: User, q: str = "", filter: str = DEFAULT_FILTER, page: Any = 1
) -> PatientListPage:
    """One page of the clinician's patient list, searched and filtered.

    Starts from the access gate (care team and break-glass patients only); "mine" narrows to
    the care team. Sends record_read (list) for the patients shown. Raises UnknownFilter.
    """
    if filter not in FILTERS:
        raise UnknownFilter(filter)
    now = timezone.now()
    week_end = _week_end(timezone.localdate())
    # "Mine" is the care team's patients, a subset of what the gate shows (no break-glass
    # charts): start from it rather than filtering the visible set by it a second time.
    if filter == "mine":
        queryset = selectors.patient_list_on_care_teams_of(user=user)
    else:
        queryset = selectors.patient_list_visible_to(user=user)
    queryset = _annotated(_search(queryset, q.strip()))
    if filter == "due":
        queryset = queryset.filter(next_cycle_start__lte=week_end)
    elif filter == "attention":
        not_ready = _not_ready_ids(queryset, now)
        queryset = queryset.filter(
            Q(critical_open=True)
            | Q(severe_side_effect_open=True)
            | Q(severe_symptom_open=True)
            | Q(pk__in=not_ready)
        )
    # "Due this week" is a worklist: the soonest (and any overdue) cycle first.
    order = ("next_cycle_start",) if filter == "due" else ()
    queryset = queryset.select_related("care_team").order_by(
        *order, "family_name", "given_name", "pk"
    )
    paginator = Paginator(queryset, PAGE_SIZE)
    page_obj = paginator.get_page(page)
    patients: list[Patient] = list(page_obj.object_list)
    # One row per patient, not one per course: the list is of patients (search, pages, counts
    # and the access log's list read are per patient), and a day unit books the patient, not a
    # course: one chair, one set of pre-cycle bloods. The row leads with the course whose cycle
    # is due first, the cycle the nurse acts on next, and its readiness; every other open course
    # is listed under it with its own next cycle and readiness, labelled as another course,
    # never hidden (a row in "Needs attention" for its second course shows why).
    open_courses = _open_courses(p.pk for p in patients)
    # Every open course of every row, in the one evaluation (keyed by course id).
    assessments = _readiness_by_course(open_courses, now)
    rows = []
    for patient in patients:
        patient_courses = open_courses.get(patient.pk, [])
        course = patient_courses[0] if patient_courses else None
        assessment = assessments.get(course.pk) if course is not None else None
        attention = []
        if patient.critical_open:  # type: ignore[attr-defined]
            attention.append("Critical result")
        if patient.severe_side_effect_open:  # type: ignore[attr-defined]
            attention.append("Grade ≥3 side effect")
        if patient.severe_symptom_open:  # type: ignore[attr-defined]
            attention.append("Urgent symptom report")
        rows.append(
            PatientRow(
                patient=patient,
                course=course,
                readiness=assessment,
                badge=readiness_badge(assessment),
                attention=attention,
                others=[
                    OtherCourseLine(
                        course=other,
                        readiness=assessments.get(other.pk),
                        badge=readiness_badge(assessments.get(other.pk)),
                    )
                    for other in patient_courses[1:]
                ],
            )
        )
    if patients:
        record_read.send(sender=Patient, patients=patients, target=None, action="list")
    return PatientListPage(
        page=page_obj,
        rows=rows,
        filter=filter,
        q=q,
        total=paginator.count,
        week_end=week_end,
    )


# --- Dashboard ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    value: Decimal
    measured_on: dt.date


@dataclass(frozen=True)
class CycleLine:
    cycle: ChemoCycle
    dose_levels: list[tuple[str, Decimal]]  # (drug name, percent) where not 100 %
    is_next: bool

    @property
    def delay_days(self) -> int | None:
        if self.cycle.actual_start and self.cycle.actual_start > self.cycle.planned_start:
            return (self.cycle.actual_start - self.cycle.planned_start).days
        return None


@dataclass(frozen=True)
class CourseReadiness:
    """Readiness for the next cycle of one open course: which course, which cycle, the outcome
    and its badge. With two open courses each is judged on its own regimen's rules for its own
    cycle day, so a clinician sees for every open course whether its next cycle can go ahead."""

    course: Course
    cycle_number: int | None  # None: nothing left to give (judged now, for the API's list)
    cycle_day: dt.date | None
    assessment: PreCycleAssessment
    badge: ReadinessBadge

    @property
    def reason(self) -> str:
        """The first reason the cycle cannot go ahead as planned ("" when it can)."""
        return self.assessment.first_reason


def _course_readiness(
    *, patient_id: int, courses: Sequence[Course], at: dt.datetime
) -> list[CourseReadiness]:
    """Readiness of each of `courses` (the patient's, read with _with_next_cycle), in the order
    given: two queries for them all (labs.services.precycle_evaluate_keyed), none without one."""
    assessments = _judge_courses(((patient_id, course) for course in courses), at)
    rows = []
    for course in courses:
        assessment = assessments[course.pk]
        rows.append(
            CourseReadiness(
                course=course,
                cycle_number=course.next_number,  # type: ignore[attr-defined]
                cycle_day=course.next_start,  # type: ignore[attr-defined]
                assessment=assessment,
                # None only for no assessment, and every course here has one.
                badge=cast("ReadinessBadge", readiness_badge(assessment)),
            )
        )
    return rows


def open_course_readiness(*, patient: Patient, at: dt.datetime) -> list[CourseReadiness]:
    """Readiness for the next cycle of every open course of `patient`, the course due first at
    the head (the dashboard's order and its "next cycle": NEXT_CYCLE_ORDER); an open course
    with nothing left to give is judged now, last. At most three queries, however many courses.

    Precondition: `patient` came through the access gate (patients.selectors), which sent the
    read's record_read; this sends none of its own. No writes.
    """
    courses = _due_first(
        _with_next_cycle(
            Course.objects.filter(patient=patient, status__in=OPEN_COURSE_STATUSES)
        ).select_related("regimen")
    )
    return _course_readiness(patient_id=patient.pk, courses=courses, at=at)


@dataclass
class Dashboard:
    patient: Patient
    care_team_name: str
    height: Measurement | None
    weight: Measurement | None
    bsa_m2: Decimal | None
    course: Course | None  # the open course due first (else the latest): timeline, readiness
    other_courses: list[Course]  # every other course, open or closed
    # The other open courses (each with next_number and next_start): still being given, so
    # the chart names them and their next cycle beside the one it shows in full.
    other_open_courses: list[Course]
    cycles: list[CycleLine]
    total_cycles: int
    next_cycle: ChemoCycle | None
    readiness: PreCycleAssessment | None
    badge: ReadinessBadge | None
    evidence: list[EvidenceLine]
    # The other open courses with a next cycle, each with its own readiness (same order as
    # other_open_courses): the readiness card shows them under the course due first.
    other_readiness: list[CourseReadiness]
    side_effects: list[SideEffect]
    cumulative: list[CumulativeDose]
    critical_results: list[LabResult]
    severe_side_effects: list[SideEffect]
    severe_symptoms: list[SymptomReport]
    symptom_reports: list[SymptomReport]  # unreviewed, and the last SYMPTOM_REPORT_DAYS days
    on_care_team: bool
    dosing_weight_max_age_days: int
    next_dose_needs_weight: bool  # an open cycle in a regimen with a weight-based drug
    allergy_banner: selectors.AllergyBanner
    allergies_in_error: list[Any]

    @property
    def symptom_report_days(self) -> int:
        return SYMPTOM_REPORT_DAYS

    @property
    def weight_too_old_to_dose(self) -> bool:
        """The next cycle has a weight-based dose and no weight is recent enough for it."""
        if not self.next_dose_needs_weight:
            return False
        if self.weight is None:
            return True
        return weight_too_old(measured_on=self.weight.measured_on, on_date=timezone.localdate())


def dose_levels_by_cycle(
    *,
    modifications: Sequence[DoseModification],
    drugs: Sequence[Any],
    cycle_numbers: Iterable[int],
) -> dict[int, list[tuple[str, Decimal]]]:
    """Dose level per drug per cycle from modifications loaded once.

    The same rule as treatments.services.dose_percent_for (tested against it): among the
    modifications for this drug or for all drugs starting at or before the cycle, the highest
    from_cycle_number wins, then the one recorded last. Returns only levels other than 100 %.
    """
    ordered = sorted(
        modifications, key=lambda m: (m.from_cycle_number, m.created_at, m.pk), reverse=True
    )
    levels: dict[int, list[tuple[str, Decimal]]] = {}
    for number in cycle_numbers:
        row: list[tuple[str, Decimal]] = []
        for drug in drugs:
            latest = next(
                (
                    m
                    for m in ordered
                    if m.from_cycle_number <= number and m.drug_id in (None, drug.pk)
                ),
                None,
            )
            percent = Decimal(latest.percent) if latest else Decimal(100)
            if percent != 100:
                row.append((drug.name, percent))
        levels[number] = row
    return levels


def _one_dp(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.1"))


def _header(patient: Patient) -> tuple[Measurement | None, Measurement | None, str]:
    """Latest height and latest weight (each from its own most recent measurement) and the care
    team's name: one query, made only when the chart is rendered (a kept chart has them)."""

    def latest(column: str, value: str) -> Subquery:
        return Subquery(
            BodyMeasurement.objects.filter(patient=OuterRef("pk"), **{f"{column}__isnull": False})
            .order_by("-measured_on", "-pk")
            .values(value)[:1]
        )

    row = (
        Patient.objects.filter(pk=patient.pk)
        .values(
            h=latest("height_cm", "height_cm"),
            h_on=latest("height_cm", "measured_on"),
            w=latest("weight_kg", "weight_kg"),
            w_on=latest("weight_kg", "measured_on"),
            care_team_name=F("care_team__name"),
        )
        .get()
    )
    # Annotated decimals lose the field's scale on some backends: put it back (0.1 cm / kg).
    height = Measurement(_one_dp(row["h"]), row["h_on"]) if row["h"] is not None else None
    weight = Measurement(_one_dp(row["w"]), row["w_on"]) if row["w"] is not None else None
    return height, weight, row["care_team_name"] or ""


RECENT_SIDE_EFFECTS = 10


def _recent_and_severe_side_effects(patient: Patient) -> tuple[list[SideEffect], list[SideEffect]]:
    """The latest side effects, and every unacknowledged grade >= 3 one however old: one query
    (the severe ones need a clinician's eyes even when ten newer ones push them off the list)."""
    ordered = SideEffect.objects.filter(patient=patient).order_by("-onset", "-pk")
    severe_open = Q(grade__gte=SEVERE_SIDE_EFFECT_GRADE, acknowledged_at__isnull=True)
    recent_ids = ordered.values("pk")[:RECENT_SIDE_EFFECTS]
    rows = list(ordered.filter(Q(pk__in=recent_ids) | severe_open).select_related("term", "cycle"))
    # A severe one outside the latest ten ranks below all ten: the first ten rows are the ten.
    severe = [r for r in rows if r.grade >= SEVERE_SIDE_EFFECT_GRADE and r.acknowledged_at is None]
    return rows[:RECENT_SIDE_EFFECTS], severe


@dataclass
class ChartDoor:
    """What every view of a chart reads afresh, whether its chart was kept or not
    (patients.chart_cache): the gate, its access-log row, and the lists that change with every
    read or name colleagues."""

    patient: Patient  # with the chart cache's tokens annotated
    on_care_team: bool
    emergency_accesses: list[Any]  # the care team only: the list names colleagues
    access_log: list[Any]  # the care team only; every read adds to it, so never kept


def chart_door(*, user: User, patient_id: Any) -> ChartDoor:
    """The chart's patient through the access gate (Http404 for one the user may not see; one
    record_read, the chart read), with the chart's tokens in the same query."""
    patient, on_team, emergency_accesses = selectors.patient_chart_for_user(
        user=user,
        patient_id=patient_id,
        annotations=chart_cache.token_annotations(),
    )
    return ChartDoor(
        patient=patient,
        on_care_team=on_team,
        emergency_accesses=list(emergency_accesses),
        access_log=access_visits_for_patient(patient=patient, limit=20) if on_team else [],
    )


def dashboard_for(*, user: User, patient_id: Any) -> Dashboard:
    """Everything the patient dashboard shows, read through the access gate."""
    return dashboard_data(chart_door(user=user, patient_id=patient_id))


def dashboard_data(door: ChartDoor) -> Dashboard:
    """The dashboard's chart of the patient `door` opened: only this patient's rows, a fixed
    number of queries."""
    patient, on_team = door.patient, door.on_care_team
    now = timezone.now()

    height, weight, care_team_name = _header(patient)
    bsa = bsa_mosteller(height.value, weight.value) if height and weight else None

    courses = list(
        _with_next_cycle(Course.objects.filter(patient=patient))
        .select_related("regimen")
        .order_by("-start_date", "-pk")
    )
    # The course shown (timeline, readiness) is the open course whose next cycle is due first,
    # as on the patient list; not the latest started, whose first cycle may be weeks after
    # another open course's. Without an open course: the latest one.
    open_courses = _due_first(c for c in courses if c.status in OPEN_COURSE_STATUSES)
    course = open_courses[0] if open_courses else (courses[0] if courses else None)
    other_courses = [c for c in courses if c is not course]

    cycles: list[CycleLine] = []
    weight_based = False
    next_cycle = None
    readiness = None
    if course is not None:
        cycle_rows = list(
            ChemoCycle.objects.filter(course=course)
            .select_related("phase", "status_changed_by")
            .order_by("number")
        )
        modifications = list(DoseModification.objects.filter(course=course))
        regimen_drugs = list(
            RegimenDrug.objects.filter(phase__regimen_id=course.regimen_id)
            .select_related("drug")
            .order_by("phase__order", "order", "pk")
        )
        drugs_by_pk = {rd.drug.pk: rd.drug for rd in regimen_drugs}
        weight_based = any(rd.dose_basis != DoseBasis.FLAT for rd in regimen_drugs)
        levels = dose_levels_by_cycle(
            modifications=modifications,
            drugs=list(drugs_by_pk.values()),
            cycle_numbers=[c.number for c in cycle_rows],
        )
        if course.status in OPEN_COURSE_STATUSES:
            next_cycle = min(
                (c for c in cycle_rows if c.status in OPEN_CYCLE_STATUSES),
                key=lambda c: (c.planned_start, c.number),  # NEXT_CYCLE_ORDER
                default=None,
            )
        cycles = [
            CycleLine(cycle=c, dose_levels=levels[c.number], is_next=c is next_cycle)
            for c in cycle_rows
        ]
    # Every open course with a cycle to come is judged, each on its regimen and its own next
    # cycle's day, in one evaluation: the same two queries for one open course as for three.
    # (The course shown has a next cycle whenever any other open course has: _due_first.)
    judged = [c for c in open_courses if c.next_number is not None]  # type: ignore[attr-defined]
    by_course = {
        r.course.pk: r for r in _course_readiness(patient_id=patient.pk, courses=judged, at=now)
    }
    if course is not None and next_cycle is not None and course.pk in by_course:
        readiness = by_course[course.pk].assessment
    other_readiness = [by_course[c.pk] for c in open_courses[1:] if c.pk in by_course]

    side_effects, severe_side_effects = _recent_and_severe_side_effects(patient)
    allergy_banner, allergies_in_error = selectors.allergy_chart_for(patient=patient)
    critical = list(
        LabResult.objects.filter(
            patient=patient, flag__in=CRITICAL_FLAGS, acknowledged_at__isnull=True
        )
        .select_related("test")
        .order_by("-collected_at")
    )
    # One query for both: every report still waiting for review (urgent or routine: the portal
    # promised a look within one working day) and the recent ones, in the patient's own words.
    symptom_reports = list(
        SymptomReport.objects.filter(
            Q(reviewed_at__isnull=True)
            | Q(reported_at__gte=now - dt.timedelta(days=SYMPTOM_REPORT_DAYS)),
            patient=patient,
        )
        .select_related("reviewed_by")
        .order_by("-reported_at", "-pk")
    )
    severe_symptoms = [r for r in symptom_reports if r.urgent and r.reviewed_at is None]
    return Dashboard(
        patient=patient,
        care_team_name=care_team_name,
        height=height,
        weight=weight,
        bsa_m2=bsa,
        course=course,
        other_courses=other_courses,
        other_open_courses=open_courses[1:],
        cycles=cycles,
        total_cycles=len(cycles),
        next_cycle=next_cycle,
        readiness=readiness,
        badge=readiness_badge(readiness),
        evidence=evidence_lines(readiness),
        other_readiness=other_readiness,
        side_effects=side_effects,
        cumulative=cumulative_dose_per_drug(patient=patient),
        critical_results=critical,
        severe_side_effects=severe_side_effects,
        severe_symptoms=severe_symptoms,
        symptom_reports=symptom_reports,
        on_care_team=on_team,
        dosing_weight_max_age_days=settings.DOSING_WEIGHT_MAX_AGE_DAYS,
        next_dose_needs_weight=next_cycle is not None and weight_based,
        allergy_banner=allergy_banner,
        allergies_in_error=allergies_in_error,
    )
