"""Read models for the lab pages: trends per analyte and the critical-result inbox.

Every function here reaches patient data only through patients.selectors (the access gate), so
outsiders get a 404 and each read sends exactly one record_read (one AccessLog row).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import Q
from django.utils import timezone
from django.utils.text import Truncator

from labs.models import CRITICAL_FLAGS, LabResult, LabTest
from labs.units import unit_display
from oncoplanner.signals import record_read
from patients.models import Patient, SymptomReport, tel_uri
from patients.selectors import CHANGE, _deny, children_for, scoped
from treatments.models import ChemoCycle, SideEffect

if TYPE_CHECKING:
    from oncoplanner.accounts.models import User

# The periods a clinician can pick on the trends page (days; None = all results).
PERIODS: dict[str, int | None] = {"30": 30, "90": 90, "180": 180, "365": 365, "all": None}
DEFAULT_PERIOD = "90"
# How far back the inbox's "recently acknowledged" section looks, and how many it lists.
RECENT_DAYS = 7
RECENT_LIMIT = 20
# How much of a patient's own words an inbox item shows; the chart shows all of it.
INBOX_DETAIL_CHARS = 280
# Triage order of the urgent inbox (see inbox_for): acuity first, then the longest wait. One
# scale for the three kinds of item, CTCAE's grades (DOMAIN.md 5); see inbox_acuity.
ACUITY_LABELS = {4: "life-threatening", 3: "severe", 2: "moderate", 1: "mild"}
# Routine (not urgent) patient reports: the portal tells the patient "Your care team will look at
# it within one working day" (templates/portal/symptoms.html), so the inbox lists them in a
# section of their own, oldest first, and marks those past that promise. How many it lists:
ROUTINE_LIMIT = 100


def _num(value: Decimal | None) -> float | None:
    # Plotly needs JSON numbers; DjangoJSONEncoder would turn Decimals into strings.
    return float(value) if value is not None else None


def _pct(value: Decimal, base: Decimal) -> float | None:
    if base == 0:
        return None  # a change from zero has no meaningful percent
    return round(float((value - base) / base * 100), 1)


@dataclass
class CycleMarker:
    number: int
    start: dt.date
    actual: bool  # True: the cycle was given that day; False: still the planned date

    def as_json(self) -> dict[str, Any]:
        return {"number": self.number, "date": self.start.isoformat(), "actual": self.actual}


@dataclass
class TrendPoint:
    result: LabResult
    pct_from_baseline: float | None = None
    pct_from_nadir: float | None = None
    is_nadir: bool = False


@dataclass
class AnalyteTrend:
    test: LabTest
    points: list[TrendPoint] = field(default_factory=list)  # oldest first, the test's own unit
    other_unit: list[LabResult] = field(default_factory=list)  # listed, never plotted
    # Marked entered in error: shown apart, struck through, so the correction is visible;
    # never plotted nor counted. Newest first.
    entered_in_error: list[LabResult] = field(default_factory=list)

    @property
    def baseline(self) -> TrendPoint | None:
        return self.points[0] if self.points else None

    @property
    def latest(self) -> TrendPoint | None:
        return self.points[-1] if self.points else None

    @property
    def lowest(self) -> TrendPoint | None:
        return min(self.points, key=lambda p: p.result.value) if self.points else None

    @property
    def acuity_label(self) -> str:
        if self.kind == "symptom" and self.acuity and self.obj.is_red_flag:
            return "red flag: assess now"  # not "life-threatening": the patient said "mild"
        return ACUITY_LABELS.get(self.acuity, "")

    @property
    def dom_id(self) -> str:
        return "trend-" + self.test.loinc.replace("-", "_")

    def as_json(self) -> dict[str, Any]:
        rows = [p.result for p in self.points]
        return {
            "id": self.dom_id,
            "loinc": self.test.loinc,
            "name": self.test.name,
            "short_name": self.test.short_name,
            "unit": unit_display(self.test.unit),  # the chart's axis title and hover text
            "decimals": self.test.decimal_places,
            "tumour_marker": self.test.is_tumour_marker,
            # Clinic time: Plotly plots a date string's wall clock and ignores its offset.
            "x": [timezone.localtime(r.collected_at).isoformat() for r in rows],
            "y": [_num(r.value) for r in rows],
            "flag": [r.flag for r in rows],
            # The band and limits as stored on each result: the range that applied then.
            "ref_low": [_num(r.ref_low) for r in rows],
            "ref_high": [_num(r.ref_high) for r in rows],
            "critical_low": [_num(r.critical_low) for r in rows],
            "critical_high": [_num(r.critical_high) for r in rows],
            "nadir": [p.is_nadir for p in self.points],
            "pct_from_baseline": [p.pct_from_baseline for p in self.points],
        }


@dataclass
class LabTrends:
    patient: Patient
    period: str
    since: dt.datetime | None
    analytes: list[AnalyteTrend]
    cycles: list[CycleMarker]

    def as_json(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "cycles": [c.as_json() for c in self.cycles],
            "analytes": [a.as_json() for a in self.analytes],
        }


def lab_tests_for_trends(*, loincs: list[str] | None) -> list[LabTest] | None:
    """The tests to chart: the panel defaults, or exactly `loincs` (None if any is unknown).

    The catalogue is reference data, not PHI.
    """
    if not loincs:
        return list(LabTest.objects.filter(is_panel_default=True).order_by("pk"))
    tests = {t.loinc: t for t in LabTest.objects.filter(loinc__in=loincs)}
    if any(loinc not in tests for loinc in loincs):
        return None
    return [tests[loinc] for loinc in dict.fromkeys(loincs)]


def _cycle_markers(patient: Patient) -> list[CycleMarker]:
    # The patient was authorised by the gate in the same call; cycles are read under it.
    cycles = (
        ChemoCycle.objects.filter(course__patient=patient)
        .exclude(status=ChemoCycle.Status.CANCELLED)
        .order_by("planned_start", "number")
        .values_list("number", "planned_start", "actual_start")
    )
    return [
        CycleMarker(number=number, start=actual or planned, actual=actual is not None)
        for number, planned, actual in cycles
    ]


# Nadir is a blood-count idea: chemotherapy suppresses the marrow and counts bottom out mid
# cycle (WBC, ANC, platelets, haemoglobin). For creatinine or a liver enzyme the lowest value
# means nothing clinically, so no point of theirs is called a nadir.
NADIR_LOINCS = frozenset({"6690-2", "751-8", "777-3", "718-7"})


def _mark_nadirs(trend: AnalyteTrend, cycles: list[CycleMarker]) -> None:
    """The lowest count in each cycle window (after one cycle's day 1, to the next day 1) is
    that cycle's nadir; a window still open with a single value has no nadir yet. Bloods drawn
    on a cycle's day 1 are taken before its drugs: they close the previous window (cycle 1's
    are the baseline), so a low pre-treatment count is not called a nadir."""
    if not trend.points or trend.test.loinc not in NADIR_LOINCS:
        return
    starts = sorted({c.start for c in cycles})
    windows: dict[int, list[TrendPoint]] = {}
    for point in trend.points:
        day = timezone.localdate(point.result.collected_at)
        index = sum(1 for start in starts if start < day)  # 0: up to the first day 1
        windows.setdefault(index, []).append(point)
    last = len(starts)
    for index, points in windows.items():
        if index == 0:
            continue  # values before treatment are a baseline, not a nadir
        if index == last and len(points) < 2:
            continue  # the current cycle's only value so far: not its lowest yet
        min(points, key=lambda p: (p.result.value, p.result.collected_at)).is_nadir = True


def _tumour_marker_changes(trend: AnalyteTrend) -> None:
    """Percent change from the baseline (first value in the period) and from the nadir so far."""
    if not trend.points:
        return
    base = trend.points[0].result.value
    lowest = base
    for point in trend.points:
        value = point.result.value
        lowest = min(lowest, value)
        point.pct_from_baseline = _pct(value, base)
        point.pct_from_nadir = _pct(value, lowest)


def lab_trends_for(
    *, user: User, patient_id: Any, tests: list[LabTest], period: str = DEFAULT_PERIOD
) -> LabTrends:
    """The patient's results of `tests` over `period`, shaped for charts and tables.

    Gate: view permission on the patient (Http404 otherwise). Sends one record_read (list of
    lab results). Five queries after the gate whatever the number of results or cycles.
    Results entered in error are not points: they come apart in `entered_in_error`.
    """
    patient, results = children_for(LabResult, user=user, patient_id=patient_id)
    days = PERIODS[period]
    since = timezone.now() - dt.timedelta(days=days) if days is not None else None
    results = results.filter(test__in=tests).order_by("collected_at", "pk")
    if since is not None:
        results = results.filter(collected_at__gte=since)
    by_test: dict[int, AnalyteTrend] = {t.pk: AnalyteTrend(test=t) for t in tests}
    for result in results:
        trend = by_test[result.test_id]
        result.test = trend.test  # no extra query for the test per row
        if result.unit == trend.test.unit:
            trend.points.append(TrendPoint(result=result))
        else:
            trend.other_unit.append(result)
    # The patient was authorised by the gate above; its corrected results are read under it
    # (LabResult.objects, which the gate uses, leaves them out).
    corrected = LabResult.all_objects.filter(
        patient=patient, test__in=tests, entered_in_error_at__isnull=False
    ).select_related("entered_in_error_by")
    if since is not None:
        corrected = corrected.filter(collected_at__gte=since)
    for result in corrected.order_by("-collected_at", "-pk"):
        trend = by_test[result.test_id]
        result.test = trend.test
        trend.entered_in_error.append(result)
    cycles = _cycle_markers(patient)
    for trend in by_test.values():
        _mark_nadirs(trend, cycles)
        if trend.test.is_tumour_marker:
            _tumour_marker_changes(trend)
    return LabTrends(
        patient=patient,
        period=period,
        since=since,
        analytes=[by_test[t.pk] for t in tests],
        cycles=cycles,
    )


def lab_results_for_change(*, user: User, patient_id: Any, result_ids: list[int]) -> list[Any]:
    """Results of one patient the user may change (release), all or Http404.

    Gate: change permission on the patient; an id that is not this patient's result is the
    same 404 as a missing one, and nothing is returned. Sends one record_read (list).
    """
    patient, results = children_for(LabResult, user=user, patient_id=patient_id, perm=CHANGE)
    found = list(results.filter(pk__in=result_ids))
    if len(found) != len(set(result_ids)):
        _deny(LabResult, requested=",".join(map(str, result_ids)), patient_id=patient.pk)
    return found


# --- Critical-result inbox -------------------------------------------------------------------


@dataclass
class InboxItem:
    kind: str  # "lab", "side_effect" or "symptom"
    obj: Any
    patient: Patient
    what: str
    when: dt.datetime
    since: dt.datetime  # waiting since (when it reached the system)
    done_at: dt.datetime | None = None
    done_by: Any = None
    done_note: str = ""
    acuity: int = 0  # inbox_acuity: 4 life-threatening .. 1 mild (0: not triaged, routine)
    detail: str = ""  # the patient's own words (symptom reports)
    reasons: list[str] = field(default_factory=list)  # why it is urgent
    # Routine patient reports only: when the promised review (one working day) falls due.
    due: dt.datetime | None = None

    @property
    def routine(self) -> bool:
        return self.due is not None

    @property
    def overdue(self) -> bool:
        """A routine report still waiting past the one working day the patient was promised."""
        return self.due is not None and self.done_at is None and timezone.now() > self.due

    @property
    def age_text(self) -> str:
        """How long ago the patient reported it, in hours while that can be set against a
        working day at a glance ("26 h"), then in days ("3 d 4 h")."""
        delta = self.waiting
        if dt.timedelta(hours=1) <= delta < dt.timedelta(hours=72):
            return f"{int(delta.total_seconds() // 3600)} h"
        return duration_text(delta)

    @property
    def acuity_label(self) -> str:
        if self.kind == "symptom" and self.acuity and self.obj.is_red_flag:
            return "red flag: assess now"  # not "life-threatening": the patient said "mild"
        return ACUITY_LABELS.get(self.acuity, "")

    @property
    def dom_id(self) -> str:
        return f"inbox-{self.kind}-{self.obj.pk}"

    @property
    def detail_short(self) -> str:
        """The patient's words on one line, cut at a word near INBOX_DETAIL_CHARS (escaped
        by the template like any text)."""
        return Truncator(" ".join(self.detail.split())).chars(INBOX_DETAIL_CHARS)

    @property
    def detail_is_cut(self) -> bool:
        return len(" ".join(self.detail.split())) > INBOX_DETAIL_CHARS

    @property
    def phone(self) -> str:
        return self.patient.phone

    @property
    def phone_uri(self) -> str:
        return tel_uri(self.patient.phone)

    @property
    def waiting(self) -> dt.timedelta:
        return timezone.now() - self.since

    @property
    def time_to_acknowledge(self) -> dt.timedelta | None:
        return self.done_at - self.since if self.done_at else None

    @property
    def waiting_text(self) -> str:
        return duration_text(self.waiting)

    @property
    def time_to_acknowledge_text(self) -> str:
        delta = self.time_to_acknowledge
        return duration_text(delta) if delta is not None else ""


def duration_text(delta: dt.timedelta) -> str:
    """A compact duration for busy screens: "45 min", "3 h 10 min", "2 d 4 h"."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def one_working_day_after(moment: dt.datetime) -> dt.datetime:
    """When one working day (Monday to Friday) after `moment` ends, in local time.

    A Tuesday 10:00 report is due on Wednesday at 10:00 and a Friday 15:00 one on Monday at
    15:00; one sent at the weekend starts the clock on Monday morning, so it is due by the end
    of Monday. Public holidays (settings.CLINIC_HOLIDAYS) are not skipped on purpose: across
    one, a report is flagged a day early, the safe side.
    """
    local = timezone.localtime(moment)
    if local.weekday() >= 5:  # Saturday or Sunday
        monday = local.date() + dt.timedelta(days=7 - local.weekday())
        local = dt.datetime.combine(monday, dt.time(), tzinfo=local.tzinfo)
    due = local + dt.timedelta(days=1)
    while due.weekday() >= 5:
        due += dt.timedelta(days=1)
    return due


def inbox_acuity(obj: LabResult | SideEffect | SymptomReport) -> int:
    """How acute an urgent inbox item is, 4 (life-threatening) to 1 (mild): the one definition
    the urgent queue is ordered by, read from what the item itself records.

    UKONS acute-oncology triage works items by acuity first, then by how long they have
    waited; a "very severe" chest pain must not wait below an older mild fever. On CTCAE's
    scale of grades (4 life-threatening, 3 severe, 2 moderate, 1 mild):
    - a critical (LL/HH) lab result: 4. Critical limits are the values the laboratory must
      phone through because they may be life-threatening (ANC < 0.5 is grade 4 itself);
    - a side effect: its CTCAE grade; grade 5 (death) counts as 4, nothing is more acute;
    - a patient's symptom report: the severity the patient gave it on the 5-point scale
      (mild 1, moderate 2, severe 3, very severe 4); a red flag (a fever, breathlessness,
      bleeding, dehydration) is 4 whatever the patient called it: UKONS triages a red flag
      "red", assess now. A "mild" fever days after chemotherapy may be neutropenic sepsis,
      whose antibiotics are due within the hour (NICE NG151), and no clinician has seen the
      patient yet; a grade 3 toxicity in the queue was recorded by one. Within an acuity,
      inbox_for ranks the patient's own severity next (inbox_severity), so a severe chest pain
      still comes before an older mild fever.
    """
    if isinstance(obj, LabResult):
        return 4 if obj.flag in CRITICAL_FLAGS else 0
    if isinstance(obj, SideEffect):
        return min(max(obj.grade, 0), 4)
    severity = inbox_severity(obj)
    return 4 if obj.is_red_flag else severity


def inbox_severity(obj: LabResult | SideEffect | SymptomReport) -> int:
    """The second key of the urgent queue: a patient's report at the severity they gave it;
    any other item at its acuity."""
    if isinstance(obj, SymptomReport):
        return min(max(int(obj.severity), 0), 4)
    return inbox_acuity(obj)


def _lab_item(r: LabResult) -> InboxItem:
    return InboxItem(
        kind="lab",
        obj=r,
        patient=r.patient,
        what=f"{r.test.short_name} {r.value_text} ({r.get_flag_display()})",
        when=r.collected_at,
        since=r.created_at,
        done_at=r.acknowledged_at,
        done_by=r.acknowledged_by,
        done_note=r.acknowledgement_note,
        acuity=inbox_acuity(r),
    )


def _side_effect_item(s: SideEffect) -> InboxItem:
    return InboxItem(
        kind="side_effect",
        obj=s,
        patient=s.patient,
        what=f"{s.term.term}, CTCAE grade {s.grade}",
        when=dt.datetime.combine(s.onset, dt.time(), tzinfo=timezone.get_current_timezone()),
        since=s.created_at,
        done_at=s.acknowledged_at,
        done_by=s.acknowledged_by,
        done_note=s.acknowledgement_note,
        acuity=inbox_acuity(s),
    )


def _symptom_item(s: SymptomReport) -> InboxItem:
    return InboxItem(
        kind="symptom",
        obj=s,
        patient=s.patient,
        what=f"Patient report: {s.symptom} ({s.get_severity_display()})",
        when=s.reported_at,
        since=s.reported_at,
        done_at=s.reviewed_at,
        done_by=s.reviewed_by,
        done_note=s.review_note,
        detail=s.description,
        # The same rule that set `urgent` when the report was made (SymptomReport).
        reasons=s.urgent_reasons,
        due=None if s.urgent else one_working_day_after(s.reported_at),
        acuity=inbox_acuity(s) if s.urgent else 0,
    )


@dataclass
class Inbox:
    open: list[InboxItem]
    recent: list[InboxItem]
    # Routine patient reports waiting for review, oldest first (at most ROUTINE_LIMIT), and
    # whether more are waiting than are listed.
    routine: list[InboxItem] = field(default_factory=list)
    routine_more: bool = False

    @property
    def routine_overdue(self) -> int:
        return sum(1 for item in self.routine if item.overdue)


def inbox_item_for(kind: str, obj: Any) -> InboxItem:
    return {"lab": _lab_item, "side_effect": _side_effect_item, "symptom": _symptom_item}[kind](obj)


def inbox_for(*, user: User) -> Inbox:
    """What needs a clinician's eyes across the user's patients, in triage order.

    Unacknowledged critical (LL/HH) results, unacknowledged grade >= 3 side effects and
    unreviewed urgent symptom reports (severe, or a red flag such as a fever); plus what was
    acknowledged in the last RECENT_DAYS. Below them, in a section of their own, the routine
    (not urgent) symptom reports still waiting for review, oldest first: the portal promised
    the patient a look within one working day.
    Gate: `scoped` (view permission through a care team or break-glass). A fixed number of
    queries whatever the number of items; one record_read (list) for the patients shown.
    """
    recent_since = timezone.now() - dt.timedelta(days=RECENT_DAYS)
    labs = scoped(LabResult, user=user).select_related("patient", "test", "acknowledged_by")
    side_effects = scoped(SideEffect, user=user).select_related(
        "patient", "term", "acknowledged_by"
    )
    symptoms = scoped(SymptomReport, user=user).select_related("patient", "reviewed_by")
    critical = Q(flag__in=list(CRITICAL_FLAGS))
    severe_se = Q(grade__gte=3)
    severe_sr = Q(urgent=True)

    open_items = (
        [_lab_item(r) for r in labs.filter(critical, acknowledged_at__isnull=True)]
        + [
            _side_effect_item(s)
            for s in side_effects.filter(severe_se, acknowledged_at__isnull=True)
        ]
        + [_symptom_item(s) for s in symptoms.filter(severe_sr, reviewed_at__isnull=True)]
    )
    recent = (
        [
            _lab_item(r)
            for r in labs.filter(critical, acknowledged_at__gte=recent_since).order_by(
                "-acknowledged_at"
            )[:RECENT_LIMIT]
        ]
        + [
            _side_effect_item(s)
            for s in side_effects.filter(severe_se, acknowledged_at__gte=recent_since).order_by(
                "-acknowledged_at"
            )[:RECENT_LIMIT]
        ]
        + [
            _symptom_item(s)
            for s in symptoms.filter(severe_sr, reviewed_at__gte=recent_since).order_by(
                "-reviewed_at"
            )[:RECENT_LIMIT]
        ]
    )
    # Triage order for the nurse working the queue (UKONS): the most acute first
    # (inbox_acuity, then the patient's own severity), then the oldest first: the longest wait is the one
    # closest to breaching its response time, and a stream of new items cannot bury it.
    open_items.sort(key=lambda i: (-i.acuity, -inbox_severity(i.obj), i.since, i.kind, i.obj.pk))
    recent.sort(key=lambda i: i.done_at, reverse=True)
    recent = recent[:RECENT_LIMIT]
    # One query, oldest first: the report closest to breaking the promise is on top.
    routine = [
        _symptom_item(s)
        for s in symptoms.filter(urgent=False, reviewed_at__isnull=True).order_by(
            "reported_at", "pk"
        )[: ROUTINE_LIMIT + 1]
    ]
    routine_more = len(routine) > ROUTINE_LIMIT
    routine = routine[:ROUTINE_LIMIT]
    shown = open_items + routine + recent
    patients = list({i.patient.pk: i.patient for i in shown}.values())
    if patients:
        record_read.send(sender=LabResult, patients=patients, target=None, action="list")
    return Inbox(open=open_items, recent=recent, routine=routine, routine_more=routine_more)


def inbox_open_count(*, user: User) -> int:
    """How many urgent items wait in the user's inbox (the home page, which names the three
    kinds); routine patient reports are not counted. Not logged: no PHI shown."""
    return (
        scoped(LabResult, user=user)
        .filter(flag__in=list(CRITICAL_FLAGS), acknowledged_at__isnull=True)
        .count()
        + scoped(SideEffect, user=user).filter(grade__gte=3, acknowledged_at__isnull=True).count()
        + scoped(SymptomReport, user=user).filter(urgent=True, reviewed_at__isnull=True).count()
    )


__all__ = [
    "DEFAULT_PERIOD",
    "PERIODS",
    "AnalyteTrend",
    "Inbox",
    "InboxItem",
    "LabTrends",
    "duration_text",
    "inbox_acuity",
    "inbox_for",
    "inbox_item_for",
    "inbox_open_count",
    "one_working_day_after",
    "lab_results_for_change",
    "lab_tests_for_trends",
    "lab_trends_for",
]
