"""Lab writes and lab-derived decisions: record a result, suggest a CTCAE grade, pre-cycle check.

Permission precondition for every function here: the caller has already authorised the acting
user on `patient` through the access gate (patients.selectors, perm=change for writes,
perm=view for the read-only evaluations). These functions do not check permissions again.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from labs.models import (
    LabResult,
    LabTest,
    PreCycleAction,
    PreCycleRule,
    ReferenceRange,
)
from labs.rules import (
    ACTION_SEVERITY,
    AppliedRange,
    GradeSuggestion,
    PreCycleOutcome,
    ctcae_grade,
    fmt_decimal,
    fold_change,
    implausible_value_message,
    interpretation_flag,
    most_restrictive,
    rule_matches,
    to_decimal,
)
from labs.tasks import notify_care_team_of_critical_result, notify_if_next_cycle_not_ready
from labs.units import (
    MAX_STORED_DECIMALS,
    decimal_places,
    in_test_unit,
    refused_unit_message,
    unit_display,
)
from oncoplanner.accounts.models import User
from oncoplanner.acknowledgement import acknowledge
from oncoplanner.confirmation import ConfirmationRequired
from oncoplanner.dates import moment_text
from patients.models import Patient
from treatments.models import CtcaeTerm, Regimen

__all__ = [
    "ACTION_SEVERITY",
    "AnalyteEvidence",
    "GradeSuggestion",
    "PreCycleAssessment",
    "PreCycleOutcome",
    "PreCycleQuestion",
    "applied_range_for",
    "ctcae_grade_suggest",
    "ctcae_grade_suggest_for_patient",
    "LabValueChangeToConfirm",
    "lab_result_mark_entered_in_error",
    "lab_result_record",
    "precycle_evaluate",
    "precycle_evaluate_keyed",
    "precycle_evaluate_many",
]


# --- Recording a result --------------------------------------------------------------------


def _range_matches(rng: ReferenceRange, *, sex: str, age: int) -> bool:
    if rng.sex and rng.sex != sex:
        return False
    if rng.age_min is not None and age < rng.age_min:
        return False
    return not (rng.age_max is not None and age > rng.age_max)


def applied_range_for(*, test: LabTest, patient: Patient, collected_at: datetime) -> AppliedRange:
    """The limits that applied to `patient` at `collected_at`.

    A ReferenceRange matching the patient's sex and age (in whole years, on the local date of
    collection; age_min and age_max both inclusive) beats the test's default range; among
    matches, a sex-specific range beats a sex-neutral one, then the one with an age band.
    Critical limits are the test's (institution-wide, DOMAIN.md 4).
    """
    age = patient.age_on(timezone.localdate(collected_at))
    matches = [rng for rng in test.ranges.all() if _range_matches(rng, sex=patient.sex, age=age)]
    ref_low, ref_high = test.ref_low, test.ref_high
    if matches:
        best = max(
            matches,
            key=lambda r: (bool(r.sex), r.age_min is not None or r.age_max is not None, -r.pk),
        )
        ref_low, ref_high = best.low, best.high
    return AppliedRange(
        ref_low=ref_low,
        ref_high=ref_high,
        critical_low=test.critical_low,
        critical_high=test.critical_high,
        critical_low_inclusive=test.critical_low_inclusive,
        critical_high_inclusive=test.critical_high_inclusive,
    )


def _check_text(value: str, *, field_name: str) -> None:
    # NUL bytes and lone surrogates become database errors (500s) unless refused here.
    if "\x00" in value:
        raise ValidationError({field_name: "Text cannot contain NUL characters."})
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError({field_name: "Text contains invalid characters."}) from None


# --- Delta check: a value far from the previous one is most often a typo ---------------------
#
# Clinical rule (README, "Clinical rules"): a new result at least N times, or at most 1/N of,
# the patient's previous result of the same test collected in the 7 days before it is refused
# until the clinician confirms it. The typos that flip a decision are a slipped decimal point
# (x10), g/L typed as g/dL (x10) and /uL typed for x10^3/uL (x1000): all at least tenfold.
# N = 10 for the counts that chemotherapy, G-CSF and transfusions move fastest within a week
# (WBC, ANC, platelets: a nadir drop such as ANC 2.1 -> 0.4 is 5x, a recovery on G-CSF can be
# more), so that their day-to-day course is not questioned while every pure slip still is
# (PLT 62 -> 5000 is 80x). N = 5 for everything else (haemoglobin, chemistry, tumour markers),
# which does not move fivefold in a week outside acute events worth a second look anyway; the
# lower factor also catches a slip that comes with a real change in the other direction.
# A previous value of 0 gives no ratio and no check. Confirming is one checkbox (one flag on
# the API): the value may be right.
DELTA_CHECK_WINDOW = timedelta(days=7)
DELTA_CHECK_FOLD = Decimal(5)
DELTA_CHECK_FOLD_BY_LOINC: dict[str, Decimal] = {
    "6690-2": Decimal(10),  # WBC
    "751-8": Decimal(10),  # ANC
    "777-3": Decimal(10),  # platelets
}


class LabValueChangeToConfirm(ConfirmationRequired):
    """A result far from the patient's previous one of the same test within a week: most often
    a typo or a wrong unit, and readiness would follow it. Recorded only once confirmed."""

    confirm_with = "confirm_change"


def delta_check_fold_for(test: LabTest) -> Decimal:
    return DELTA_CHECK_FOLD_BY_LOINC.get(test.loinc, DELTA_CHECK_FOLD)


def _factor_text(factor: Decimal) -> str:
    return f"{factor:.0f}" if factor >= 10 else f"{factor:.1f}"


def delta_check_message(
    *,
    test: LabTest,
    value: Decimal,
    shown: str,
    previous_value: Decimal,
    previous_at: datetime,
) -> str | None:
    """The confirmation question for `value` (in the test's unit) after `previous_value`, or
    None when the change is within the test's factor. `shown` is the value as entered (with
    its unit, and the conversion when there was one). Pure: no queries."""
    factor = fold_change(value, previous_value)
    fold = delta_check_fold_for(test)
    if factor is None or factor < fold:
        return None
    if value > previous_value:
        how = f"{_factor_text(factor)} times"
    elif value > 0:
        how = f"1/{_factor_text(factor)} of"
    else:
        how = "0, against"
    previous = f"{fmt_decimal(previous_value)} {unit_display(test.unit)}"
    when = timezone.localtime(previous_at)
    return (
        f"{test.short_name} {shown} is {how} the previous {test.short_name} ({previous}, "
        f"collected {when:%-d %b %Y %H:%M}). Check the value and its unit; if it is right, "
        "confirm it."
    )


def _previous_for_delta(
    *, patient: Patient, test: LabTest, collected_at: datetime
) -> LabResult | None:
    """The patient's latest current result of `test` collected in DELTA_CHECK_WINDOW up to
    `collected_at` (one index probe on labresult_patient_test_time)."""
    return (
        LabResult.objects.filter(
            patient=patient,
            test=test,
            collected_at__lte=collected_at,
            collected_at__gte=collected_at - DELTA_CHECK_WINDOW,
        )
        .order_by("-collected_at", "-pk")
        .only("value", "collected_at")
        .first()
    )


@transaction.atomic
def lab_result_record(
    *,
    patient: Patient,
    test: LabTest,
    value: Decimal | float | int | str,
    unit: str,
    collected_at: datetime,
    recorded_by: User | None,
    source: str = LabResult.Source.MANUAL,
    note: str = "",
    confirm_change: bool = False,
) -> LabResult:
    """Record one lab result with the range that applied to it and its FHIR flag.

    A value in another accepted unit (labs.units: g/L for a g/dL test, umol/L for creatinine
    or bilirubin) is stored converted to the test's unit, with the value as reported beside
    it; the flag and the critical check read the converted value.
    Refuses (ValidationError naming the field, nothing written): NaN, Infinity, negative or
    non-numeric values, more than 4 decimal places as reported, values outside the test's
    plausible range (a non-zero value under `min_plausible`, one over `max_plausible`) and a
    non-zero count under 50 reported per µL or mm³, a unit slip (labs.rules.
    implausible_value_message: "value", showing both readings); a unit that is not the
    test's UCUM unit or one that labs.units converts for it ("unit"); a collection time in
    the future beyond 5 minutes of clock skew ("collected_at").
    LabValueChangeToConfirm (a ValidationError on "value") when the value is at least N-fold
    away from the previous result of the test within DELTA_CHECK_WINDOW (the delta check
    above) and `confirm_change` is false.
    Side effects: post_save (audit logs the write in this transaction); a critical result
    (LL/HH) enqueues `notify_care_team_of_critical_result` once the transaction commits.
    """
    number = to_decimal(value)
    if number is None:
        raise ValidationError({"value": "Enter a finite number (not NaN or Infinity)."})
    if number < 0:
        raise ValidationError({"value": "A lab value cannot be negative."})
    if decimal_places(number) > MAX_STORED_DECIMALS:
        # Said here, on "value": a rounded (molar) conversion would pass the stored value and
        # leave the error to reported_value, a field no door has.
        raise ValidationError({"value": f"At most {MAX_STORED_DECIMALS} decimal places."})
    if timezone.is_naive(collected_at):
        raise ValidationError({"collected_at": "Give the collection time with a time zone."})
    patient.require_in_lifetime(
        timezone.localdate(collected_at), field="collected_at", what="The collection date"
    )
    _check_text(note, field_name="note")
    _check_text(unit, field_name="unit")
    converted = in_test_unit(number, unit, test.unit, loinc=test.loinc)
    if converted is None:
        raise ValidationError(
            {"unit": refused_unit_message(test.name, test.unit, unit, loinc=test.loinc)}
        )
    reported = unit != test.unit
    implausible = implausible_value_message(
        test, converted, reported_value=number if reported else None, reported_unit=unit
    )
    if implausible:
        # Before full_clean: a slip such as 0.05 /uL would otherwise also meet the stored
        # value's decimal places, a second message about a figure nobody typed.
        raise ValidationError({"value": implausible})

    limits = applied_range_for(test=test, patient=patient, collected_at=collected_at)
    result = LabResult(
        patient=patient,
        test=test,
        value=converted,
        unit=test.unit,
        reported_value=number if reported else None,
        reported_unit=unit if reported else "",
        collected_at=collected_at,
        ref_low=limits.ref_low,
        ref_high=limits.ref_high,
        critical_low=limits.critical_low,
        critical_high=limits.critical_high,
        critical_low_inclusive=limits.critical_low_inclusive,
        critical_high_inclusive=limits.critical_high_inclusive,
        flag=interpretation_flag(converted, limits),
        source=source,
        note=note,
        recorded_by=recorded_by,
    )
    result.full_clean()
    if not confirm_change:
        previous = _previous_for_delta(patient=patient, test=test, collected_at=collected_at)
        if previous is not None:
            message = delta_check_message(
                test=test,
                value=converted,
                shown=result.value_text,
                previous_value=previous.value,
                previous_at=previous.collected_at,
            )
            if message:
                raise LabValueChangeToConfirm({"value": message})
    result.save()
    if result.is_critical:
        # A rolled-back write must never page anyone: enqueue only after commit.
        transaction.on_commit(
            partial(notify_care_team_of_critical_result.enqueue, lab_result_id=result.pk)
        )
    _recheck_readiness_after_commit(patient_id=patient.pk, test_id=test.pk)
    return result


def _recheck_readiness_after_commit(*, patient_id: int, test_id: int) -> None:
    """A result of a test that pre-cycle rules read has come or gone: re-check the patient's
    next cycle once the transaction commits (a rolled-back write must page nobody)."""
    if PreCycleRule.objects.filter(test_id=test_id).exists():
        transaction.on_commit(
            partial(notify_if_next_cycle_not_ready.enqueue, patient_id=patient_id)
        )


# --- Entered in error ------------------------------------------------------------------------

# A reason that says something: "typo", "wrong" alone do not tell the next reader what happened.
ENTERED_IN_ERROR_MIN_WORDS = 3
ENTERED_IN_ERROR_REASON_MAX = 2000


@transaction.atomic
def lab_result_mark_entered_in_error(*, result: LabResult, by: User, reason: str) -> LabResult:
    """Mark `result` entered in error (wrong patient, typo, wrong unit): who, when, why.

    Precondition: `by` holds change permission on the result's patient (the caller fetched
    `result` through the access gate with perm=change). The row is kept as a record, never
    deleted; from now on it counts nowhere a current result counts (LabResult.objects leaves
    it out: readiness, trends, inbox, patient list, portal, REST, GraphQL); the FHIR export
    sends it with status entered-in-error, so a system that imported it withdraws it.
    ValidationError naming the field, nothing written: a reason of fewer than
    ENTERED_IN_ERROR_MIN_WORDS words, too long or with NUL/invalid characters ("reason"); a
    result already marked ("result").
    Side effects: post_save (audit logs the write in this transaction); when the test has
    pre-cycle rules, the readiness re-check is enqueued after commit, as for a new result.
    """
    reason = (reason or "").strip()
    _check_text(reason, field_name="reason")
    if result.entered_in_error_at is not None:
        raise ValidationError({"result": "This result is already marked entered in error."})
    if len(reason.split()) < ENTERED_IN_ERROR_MIN_WORDS:
        raise ValidationError(
            {
                "reason": "Say in a few words what was wrong "
                "(e.g. “typo: platelets 50 entered as 5000”)."
            }
        )
    if len(reason) > ENTERED_IN_ERROR_REASON_MAX:
        raise ValidationError(
            {"reason": f"At most {ENTERED_IN_ERROR_REASON_MAX} characters, please."}
        )
    result.entered_in_error_at = timezone.now()
    result.entered_in_error_by = by
    result.entered_in_error_reason = reason
    # Only the new fields are validated: the result's own checks (its unit, max_plausible)
    # judged it when it was recorded, and a result that would fail them today (a catalogue
    # change, the very typo being corrected) must still be correctable.
    fields = ["entered_in_error_at", "entered_in_error_by", "entered_in_error_reason"]
    others = [f.name for f in result._meta.fields if f.name not in fields]
    result.clean_fields(exclude=others)
    result.save(update_fields=fields)
    _recheck_readiness_after_commit(patient_id=result.patient_id, test_id=result.test_id)
    return result


# --- CTCAE grade suggestion ----------------------------------------------------------------


def ctcae_grade_suggest(*, term: CtcaeTerm, result: LabResult) -> GradeSuggestion | None:
    """Suggest a CTCAE grade for `term` from one result, or None when no grade applies.

    LLN/ULN are the limits stored on the result (the range that applied to this patient).
    Only criteria of the result's test count; a clinician confirms the grade (side effects
    are recorded through treatments.services). No writes.
    """
    criteria = [c for c in term.lab_criteria.all() if c.test_id == result.test_id]
    value = to_decimal(result.value)
    if not criteria or value is None:
        return None
    suggestion = ctcae_grade(
        value=value, criteria=criteria, lln=result.ref_low, uln=result.ref_high, unit=result.unit
    )
    if suggestion is None:
        return None
    return GradeSuggestion(
        grade=suggestion.grade,
        criterion=suggestion.criterion,
        explanation=suggestion.explanation,
        result=result,
    )


def ctcae_grade_suggest_for_patient(*, patient: Patient, term: CtcaeTerm) -> GradeSuggestion | None:
    """Suggest a grade for `term` from `patient`'s latest result of the term's test."""
    criterion = term.lab_criteria.select_related("test").first()
    if criterion is None:
        return None
    latest = (
        LabResult.objects.filter(patient=patient, test_id=criterion.test_id)
        .select_related("test")
        .order_by("-collected_at", "-pk")
        .first()
    )
    if latest is None:
        return None
    return ctcae_grade_suggest(term=term, result=latest)


# --- Pre-cycle evaluation --------------------------------------------------------------------


@dataclass(frozen=True)
class AnalyteEvidence:
    """What one analyte contributed to the decision: its result, the rule and its age."""

    test: LabTest
    outcome: str
    result: LabResult | None
    rule: PreCycleRule | None
    age: timedelta | None
    max_age_days: int
    explanation: str
    # For a result recent enough today but too old by a cycle day still to come: what its
    # rules say of it now. A low count mid-cycle is expected (the nadir) and the cycle is
    # judged on fresh bloods; a critical one is not hidden behind "labs due".
    in_hand: str | None = None
    in_hand_rule: PreCycleRule | None = None

    @property
    def outcome_label(self) -> str:
        return PreCycleOutcome.LABELS[self.outcome]

    @property
    def in_hand_label(self) -> str:
        return PreCycleOutcome.LABELS[self.in_hand] if self.in_hand else ""

    @property
    def critical_in_hand(self) -> bool:
        """A critical result, recent enough today, that its rules say not to treat on."""
        return (
            self.in_hand in PreCycleOutcome.NOT_READY
            and self.result is not None
            and self.result.is_critical
        )


@dataclass(frozen=True)
class PreCycleAssessment:
    """The overall "OK to treat?" outcome for one patient, with the evidence per analyte."""

    patient_id: int
    regimen: Regimen
    at: datetime
    outcome: str
    analytes: list[AnalyteEvidence] = field(default_factory=list)
    dose_percent: int | None = None  # the lowest percent when the outcome is treat_reduced
    delay_days: int | None = None  # the longest delay when the outcome is delay
    ahead: bool = False  # judged for a cycle day still to come (`at` is that day)

    @property
    def outcome_label(self) -> str:
        return PreCycleOutcome.LABELS[self.outcome]

    @property
    def ok_to_treat(self) -> bool:
        return self.outcome in {PreCycleOutcome.TREAT, PreCycleOutcome.TREAT_REDUCED}

    @property
    def labs_due(self) -> bool:
        """A cycle still to come whose results are missing or will be too old on its day: the
        pre-cycle bloods are simply not drawn yet, which is not a reason to look at the chart.
        Not when a result in hand already says delay, contact or hold, nor when a critical
        result drawn in the last days says so (too old by the cycle day or not): those need
        eyes now, whatever else is still to be drawn."""
        return (
            self.ahead
            and self.outcome == PreCycleOutcome.NOT_EVALUABLE
            and not any(
                a.outcome in PreCycleOutcome.NOT_READY or a.critical_in_hand for a in self.analytes
            )
        )

    @property
    def needs_attention(self) -> bool:
        return not self.ok_to_treat and not self.labs_due

    @property
    def first_reason(self) -> str:
        """Why the cycle cannot go ahead as planned, in one sentence ("" when it is OK to
        treat): the explanation of the first analyte, in evidence order, behind the overall
        outcome, the one its badge names (a missing or too old result for "Not evaluable" and
        "Labs due", else the analyte whose rule decided it)."""
        if self.ok_to_treat:
            return ""
        deciding = (
            PreCycleOutcome.NOT_JUDGED
            if self.outcome == PreCycleOutcome.NOT_EVALUABLE
            else {self.outcome}
        )
        for analyte in self.analytes:
            if analyte.outcome in deciding:
                return analyte.explanation
        # No analyte: nobody wrote pre-cycle criteria for the regimen (labs.rules.most_restrictive).
        return f"{self.regimen} has no pre-cycle rules: a physician decides."


def readiness_moment(cycle_day: date | None, *, now: datetime) -> datetime:
    """When a cycle's readiness is judged: at the start of its planned day, so a result must
    still be fresh on the day the drugs are given (DOMAIN.md 4: "before a cycle is given");
    now for a cycle due today or overdue, or when there is no cycle day."""
    if cycle_day is None:
        return now
    day_start = timezone.make_aware(datetime.combine(cycle_day, time.min))
    return max(now, day_start)


def _latest_results(
    *, patient_ids: Sequence[int], test_ids: Iterable[int], at: datetime
) -> dict[tuple[int, int], LabResult]:
    """Latest result per (patient, test) collected at or before `at`, in one query.

    One index probe (labresult_patient_test_time) per pair: a correlated "latest" subquery
    for each (patient, test) of the cross product of the two id lists. Ranking every result
    of the patients in a window instead read ~10,000 rows for a 25-patient page with two
    years of labs (16 ms). The SQL is written out, not built by the ORM: the ORM cannot
    cross two unrelated tables, and its UNION of one subquery per test cost ~0.4 ms of
    Python per part (5 ms of a 25-row patient list, most of the page's growth with rows).
    Plain SQL that PostgreSQL and SQLite both run; the rows themselves are read by the ORM.
    """
    test_ids = sorted(set(test_ids))
    patient_ids = sorted(set(patient_ids))
    if not patient_ids or not test_ids:
        return {}
    quote = connection.ops.quote_name
    results, patients, tests = (
        quote(model._meta.db_table) for model in (LabResult, Patient, LabTest)
    )
    # Table names from _meta, every value bound: nothing in the text comes from a request.
    sql = (
        f"SELECT (SELECT r.id FROM {results} r"  # noqa: S608 - fixed identifiers
        " WHERE r.patient_id = p.id AND r.test_id = t.id AND r.collected_at <= %s"
        " AND r.entered_in_error_at IS NULL"  # as LabResult.objects: a typo is no result
        " ORDER BY r.collected_at DESC, r.id DESC LIMIT 1)"
        f" FROM {patients} p CROSS JOIN {tests} t"
        f" WHERE p.id IN ({_placeholders(patient_ids)}) AND t.id IN ({_placeholders(test_ids)})"
    )
    params = (connection.ops.adapt_datetimefield_value(at), *patient_ids, *test_ids)
    latest_ids = RawSQL(sql, params)  # noqa: S611
    rows = LabResult.objects.filter(pk__in=latest_ids).order_by()  # a dict: no order to sort
    return {(r.patient_id, r.test_id): r for r in rows}


def _placeholders(values: Sequence[object]) -> str:
    return ", ".join(["%s"] * len(values))


def days_old(collected_at: datetime, at: datetime) -> int:
    """A result's age in calendar days of clinic time: drawn on Monday, it is 1 day old all
    Tuesday. Measured in hours, the answer changed with the clock on the cycle day itself
    (bloods that passed at 08:00 were "too old" at 11:00), a pharmacist's find; a rule's
    "from the last 3 days" is read as the 3 calendar days before the day it is judged on."""
    return (timezone.localdate(at) - timezone.localdate(collected_at)).days


def _evaluate_analyte(
    *,
    test: LabTest,
    rules: list[PreCycleRule],
    result: LabResult | None,
    at: datetime,
    ahead: bool = False,
    now: datetime | None = None,
) -> AnalyteEvidence:
    # The strictest freshness requirement among the analyte's rules applies to the analyte.
    max_age_days = min(r.max_age_days for r in rules)
    if result is None:
        return AnalyteEvidence(
            test=test,
            outcome=PreCycleOutcome.MISSING,
            result=None,
            rule=None,
            age=None,
            max_age_days=max_age_days,
            explanation=f"No {test.short_name} result on or before {moment_text(at)}.",
        )
    age = at - result.collected_at
    # Read once: a patient list judges a hundred analytes, and each local-date conversion
    # reads the active time zone.
    old_on_day = days_old(result.collected_at, at)
    if old_on_day > max_age_days:
        explanation = (
            f"Latest {test.short_name} {'will be' if ahead else 'is'} "
            f"{old_on_day} days old{' on the cycle day' if ahead else ''}; "
            f"the rules need one from the last {max_age_days} days."
        )
        in_hand, in_hand_rule = None, None
        if ahead and now is not None and days_old(result.collected_at, now) <= max_age_days:
            in_hand, in_hand_rule, said = _rule_outcome(test, rules, result)
            explanation += f" As it stands: {said}"
        return AnalyteEvidence(
            test=test,
            outcome=PreCycleOutcome.STALE,
            result=result,
            rule=None,
            age=age,
            max_age_days=max_age_days,
            explanation=explanation,
            in_hand=in_hand,
            in_hand_rule=in_hand_rule,
        )
    outcome, rule, explanation = _rule_outcome(test, rules, result)
    return AnalyteEvidence(
        test=test,
        outcome=outcome,
        result=result,
        rule=rule,
        age=age,
        max_age_days=max_age_days,
        explanation=explanation,
    )


def _rule_outcome(
    test: LabTest, rules: list[PreCycleRule], result: LabResult
) -> tuple[str, PreCycleRule | None, str]:
    """The first rule in priority order that `result` matches: (action, rule, explanation)."""
    value = to_decimal(result.value)
    shown = f"{test.short_name} {fmt_decimal(result.value)} {unit_display(result.unit)}"
    for rule in rules:
        if value is not None and rule_matches(rule, value=value, unit=result.unit):
            said = f"{shown} {rule.get_comparator_display()} {fmt_decimal(rule.value)}: {rule.get_action_display()}."
            return rule.action, rule, said
    # A gap in the rules must never pass silently: a physician decides.
    return PreCycleOutcome.CONTACT, None, f"{shown} matches no rule: contact physician."


def _assess(
    *,
    patient_id: int,
    regimen: Regimen,
    at: datetime,
    ahead: bool,
    now: datetime,
    rules_by_test: dict[int, list[PreCycleRule]],
    latest: dict[tuple[int, int], LabResult],
) -> PreCycleAssessment:
    analytes = [
        _evaluate_analyte(
            test=rules[0].test,
            rules=rules,
            result=latest.get((patient_id, test_id)),
            at=at,
            ahead=ahead,
            now=now,
        )
        for test_id, rules in rules_by_test.items()
    ]
    outcome = most_restrictive([a.outcome for a in analytes])
    percents = [
        a.rule.action_percent
        for a in analytes
        if a.rule and a.outcome == PreCycleAction.TREAT_REDUCED and a.rule.action_percent
    ]
    delays = [
        a.rule.action_delay_days
        for a in analytes
        if a.rule and a.outcome == PreCycleAction.DELAY and a.rule.action_delay_days
    ]
    return PreCycleAssessment(
        patient_id=patient_id,
        regimen=regimen,
        at=at,
        outcome=outcome,
        analytes=analytes,
        dose_percent=min(percents) if outcome == PreCycleOutcome.TREAT_REDUCED else None,
        delay_days=max(delays) if outcome == PreCycleOutcome.DELAY else None,
        ahead=ahead,
    )


def precycle_evaluate(
    *, patient: Patient, regimen: Regimen, at: datetime, cycle_day: date | None = None
) -> PreCycleAssessment:
    """Evaluate `regimen`'s pre-cycle rules against `patient`'s latest results up to `at`.

    Per analyte: no result -> missing; older than the strictest max_age_days of its rules ->
    stale (exactly max_age_days old still counts); else the first rule in priority order that
    matches decides; none matching -> contact physician. Overall: not evaluable if any analyte
    is missing or stale, else the most restrictive action (treat < treat at N% < delay <
    contact < hold). Two queries whatever the number of analytes or results. No writes.

    With `cycle_day`, the ages are taken on that day (readiness_moment): the assessment is
    `ahead` when the day is still to come.
    """
    return precycle_evaluate_pairs(
        pairs=[(patient.pk, regimen)], at=at, cycle_days={patient.pk: cycle_day}
    )[patient.pk]


def precycle_evaluate_many(
    *, patients: Sequence[Patient], regimen: Regimen, at: datetime
) -> dict[int, PreCycleAssessment]:
    """`precycle_evaluate` for a patient list (a clinic day), still two queries in total.

    Returns {patient.pk: assessment}. The caller passes only patients it may view.
    """
    return precycle_evaluate_pairs(pairs=[(p.pk, regimen) for p in patients], at=at)


def precycle_evaluate_pairs(
    *,
    pairs: Sequence[tuple[int, Regimen]],
    at: datetime,
    cycle_days: Mapping[int, date | None] | None = None,
) -> dict[int, PreCycleAssessment]:
    """`precycle_evaluate` for (patient id, regimen) pairs, regimens mixed: two queries in
    total (every rule of every regimen, then every latest result), whatever the page holds.

    `cycle_days` gives each patient's next cycle day (readiness_moment); `at` is now.
    Returns {patient id: assessment}, one per patient (a patient named twice: the last pair).
    The caller passes only patients it may view. Several questions about one patient (two
    open courses): precycle_evaluate_keyed.
    """
    days = cycle_days or {}
    return precycle_evaluate_keyed(
        questions={pid: PreCycleQuestion(pid, regimen, days.get(pid)) for pid, regimen in pairs},
        at=at,
    )


class PreCycleQuestion(NamedTuple):
    """Is `patient_id` ready for a cycle of `regimen` on `cycle_day` (None: now)?"""

    patient_id: int
    regimen: Regimen
    cycle_day: date | None = None


def precycle_evaluate_keyed[K: Hashable](
    *, questions: Mapping[K, PreCycleQuestion], at: datetime
) -> dict[K, PreCycleAssessment]:
    """`precycle_evaluate` for any number of (patient, regimen, cycle day) questions, keyed
    by the caller (a course id, say), so that one patient's two open courses are judged each
    on its own regimen and day: two queries in total, whatever the number of questions.

    `at` is now; each question is judged at readiness_moment(cycle_day). Returns {key:
    assessment}. The caller passes only patients it may view. No writes.
    """
    if not questions:
        return {}
    regimen_ids = {q.regimen.pk for q in questions.values()}
    rules = PreCycleRule.objects.filter(regimen_id__in=regimen_ids).select_related("test")
    rules_by_regimen: dict[int, dict[int, list[PreCycleRule]]] = {rid: {} for rid in regimen_ids}
    test_ids: set[int] = set()
    for rule in rules.order_by("test__name", "priority", "pk"):
        rules_by_regimen[rule.regimen_id].setdefault(rule.test_id, []).append(rule)
        test_ids.add(rule.test_id)
    moments = {key: readiness_moment(q.cycle_day, now=at) for key, q in questions.items()}
    patient_ids = list(dict.fromkeys(q.patient_id for q in questions.values()))
    latest = _latest_results(patient_ids=patient_ids, test_ids=test_ids, at=max(moments.values()))
    return {
        key: _assess(
            patient_id=q.patient_id,
            regimen=q.regimen,
            at=moments[key],
            ahead=moments[key] > at,
            now=at,
            rules_by_test=rules_by_regimen[q.regimen.pk],
            latest=latest,
        )
        for key, q in questions.items()
    }


# --- Acknowledgement and release ---------------------------------------------------------------


@transaction.atomic
def lab_result_acknowledge(*, result: LabResult, by: User, note: str) -> LabResult:
    """Acknowledge a critical (LL/HH) result: who, when, what was done.

    Precondition: `by` holds change permission on the patient (checked by the caller through
    the access gate). Only critical results need (and take) an acknowledgement.
    """
    if not result.is_critical:
        raise ValidationError({"result": "Only critical (LL/HH) results are acknowledged."})
    acknowledge(result, by=by, note=note)
    return result


@transaction.atomic
def lab_results_release(*, results: Sequence[LabResult], by: User) -> int:
    """Release results to the patient's portal (one audited save per result).

    Precondition: `by` holds change permission on every result's patient. Already released
    results are left as they are. Returns how many were newly released.
    """
    released = 0
    now = timezone.now()
    for result in results:
        if result.is_released:
            continue
        result.is_released = True
        result.released_by = by
        result.released_at = now
        result.save(update_fields=["is_released", "released_by", "released_at"])
        released += 1
    return released


# --- Readiness as pages show it: the badge and the evidence ------------------------------------


@dataclass(frozen=True)
class ReadinessBadge:
    label: str
    css: str  # ok / warn / bad / info
    words: str  # the outcome in a sentence
    # "Labs due" for a cycle to come, but a result in hand says otherwise today (a nadir
    # count): shown beside the badge so a list scan does not read "Labs due" as "all well".
    now: str = ""


def readiness_badge(assessment: PreCycleAssessment | None) -> ReadinessBadge | None:
    """The short badge for a pre-cycle assessment; missing or stale labs are 'Not evaluable',
    never a silent 'Treat'."""
    if assessment is None:
        return None
    if assessment.labs_due:
        missing = ", ".join(
            a.test.short_name
            for a in assessment.analytes
            if a.outcome in PreCycleOutcome.NOT_JUDGED
        )
        now = "; ".join(
            f"{a.test.short_name}: {a.in_hand_label}"
            for a in assessment.analytes
            if a.in_hand in PreCycleOutcome.NOT_READY
        )
        return ReadinessBadge(
            "Labs due",
            "info",
            f"Draw pre-cycle labs before the cycle day ({assessment.at:%a %-d %b}): "
            f"{missing} will be missing or too old by then."
            + (f" As the results stand today: {now}." if now else ""),
            now=f"now {now}" if now else "",
        )
    outcome = assessment.outcome
    if outcome == PreCycleOutcome.TREAT:
        return ReadinessBadge("Treat", "ok", "OK to treat at the planned dose.")
    if outcome == PreCycleOutcome.TREAT_REDUCED:
        percent = assessment.dose_percent
        return ReadinessBadge(
            f"Treat {percent}%", "ok", f"OK to treat at a reduced dose ({percent}% of standard)."
        )
    if outcome == PreCycleOutcome.DELAY:
        days = assessment.delay_days
        return ReadinessBadge(
            f"Delay {days} days", "warn", f"Delay the cycle by {days} days and repeat the labs."
        )
    if outcome == PreCycleOutcome.HOLD:
        return ReadinessBadge("Hold", "bad", "Hold the cycle.")
    if outcome == PreCycleOutcome.CONTACT:
        return ReadinessBadge(
            "Contact physician", "warn", "Contact the treating physician before treating."
        )
    return ReadinessBadge(
        "Not evaluable",
        "bad",
        "Not evaluable: a required result is missing or too old. Do not treat without a current one.",
    )


@dataclass(frozen=True)
class EvidenceLine:
    """One analyte's evidence, with its numbers written as the lab reports them (1.2, not 1.2000)."""

    item: AnalyteEvidence
    value_text: str
    rule_text: str
    ahead: bool = False  # judged for a cycle day still to come

    @property
    def css(self) -> str:
        outcome = self.item.outcome
        if outcome in {PreCycleOutcome.TREAT, PreCycleOutcome.TREAT_REDUCED}:
            return "ok"
        if outcome in {PreCycleOutcome.DELAY, PreCycleOutcome.CONTACT}:
            return "warn"
        if self.ahead and outcome in PreCycleOutcome.NOT_JUDGED:
            if self.item.critical_in_hand:
                return "bad"  # a critical value in hand: eyes now, not "labs due"
            return "info"  # not drawn yet for a cycle to come: to do, not a danger
        return "bad"

    @property
    def outcome_text(self) -> str:
        if self.ahead and self.item.outcome == PreCycleOutcome.STALE:
            if self.item.in_hand in PreCycleOutcome.NOT_READY:
                return f"Too old by the cycle day (now: {self.item.in_hand_label})"
            return "Too old by the cycle day"
        return self.item.outcome_label


def evidence_lines(assessment: PreCycleAssessment | None) -> list[EvidenceLine]:
    if assessment is None:
        return []
    lines = []
    for item in assessment.analytes:
        value = (
            f"{fmt_decimal(item.result.value)} {unit_display(item.result.unit)}"
            if item.result
            else ""
        )
        shown_rule = item.rule or item.in_hand_rule
        rule = (
            f"{item.test.short_name} {shown_rule.get_comparator_display()} "
            f"{fmt_decimal(shown_rule.value)} {unit_display(shown_rule.unit)}"
            if shown_rule
            else ""
        )
        lines.append(
            EvidenceLine(item=item, value_text=value, rule_text=rule, ahead=assessment.ahead)
        )
    return lines
