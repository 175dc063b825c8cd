"""Pure clinical rules for labs: interpretation flags, CTCAE grading, pre-cycle rule matching.

No database access here: `labs.services` fetches the rows and calls these functions, so each
rule can be tested on plain values and read in one place. Every clinical threshold comes in as
data (DOMAIN.md: configurable, with provenance), never as a constant in this module. The one
constant, COUNT_PER_UL_FLOOR, is not a clinical threshold but a fact of notation: how a count
written per µL looks (see there).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Protocol

from labs.models import Comparator, CtcaeGradeCriterion, Flag, LabTest, PreCycleAction
from labs.units import unit_display

# --- Values -----------------------------------------------------------------------------------


def to_decimal(value: object) -> Decimal | None:
    """A finite Decimal for `value` (Decimal, int, float or numeric text), else None.

    NaN and Infinity are refused here because Decimal and float both accept them silently and
    they compare in surprising ways (NaN is neither above nor below a critical limit).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        # repr() gives the shortest text that round-trips: 0.1 -> "0.1", not 0.1000000000000000055…
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            return None
        return parsed if parsed.is_finite() else None
    return None


def fmt_decimal(value: Decimal, min_places: int = 0) -> str:
    """1.0000 -> "1", 168.0000 -> "168", 0.4900 -> "0.49" (no exponent).

    With `min_places` (a lab test's precision), at least that many decimals: creatinine reads
    1.00 in a column of 0.98s and 1.13s, not 1 (a reviewer took the shorter figure for another
    lab's). A value recorded with more decimals keeps them: nothing recorded is rounded away.
    """
    exponent = value.normalize().as_tuple().exponent
    recorded = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return f"{value:.{max(min_places, recorded)}f}"


def value_text(
    value: Decimal,
    unit: str,
    *,
    reported_value: Decimal | None = None,
    reported_unit: str = "",
    decimals: int = 0,
) -> str:
    """ "10.5 g/dL", and how the lab wrote it when that differs: "(reported 105 g/L)".
    `decimals`: the test's precision (fmt_decimal's min_places) for the value in its unit."""
    text = f"{fmt_decimal(value, decimals)} {unit_display(unit)}"
    if reported_unit and reported_value is not None:
        text += f" (reported {fmt_decimal(reported_value)} {unit_display(reported_unit)})"
    return text


def fold_change(value: Decimal, previous: Decimal) -> Decimal | None:
    """How many times `previous` `value` is, as a factor >= 1 either way (62 -> 5000: 80.6;
    2.1 -> 0.4: 5.25), or None when there is no ratio (a previous 0).  A new 0 after a
    positive value is an infinite change: returned as Decimal("Infinity")."""
    if previous <= 0:
        return None
    if value <= 0:
        return Decimal("Infinity")
    return max(value / previous, previous / value)


# --- Plausibility: values no patient can have are entry errors ----------------------------------

# A count written per µL (or per mm³, the same volume) is a number of cells: labs that report
# in these units write WBC 4200, ANC 300, platelets 95000. A figure under 50 in them is almost
# always a x10³/µL figure (WBC 4.2, ANC 0.3) typed with the per-µL unit, which the 1000-fold
# conversion would store as 0.0042 x10³/µL and flag merely "Low". Refused, with both readings,
# so the clinician picks the unit the lab meant; a true count that small (ANC 20 /µL in
# profound neutropenia) is entered in x10³/µL (0.02). 0 (none seen) is always accepted.
COUNT_PER_UL_UNITS = frozenset({"/uL", "/mm3"})
COUNT_PER_UL_FLOOR = Decimal(50)


def implausible_value_message(
    test: LabTest,
    value: Decimal,
    *,
    reported_value: Decimal | None = None,
    reported_unit: str = "",
) -> str | None:
    """Why `value` (in `test`'s unit; as the lab reported it, `reported_value` in
    `reported_unit`, when that was another unit) cannot be a result of `test`, or None.

    Refused: a non-zero count under COUNT_PER_UL_FLOOR in a per-µL unit (a unit slip), a
    non-zero value under the test's `min_plausible` and a value over its `max_plausible`
    (entry errors; both data on the test, with their source). 0 is never refused here: it is
    how a lab writes "none detected" (ANC 0.00 in profound neutropenia).
    Messages read units as clinicians write them (x10³/µL, not the UCUM code 10*3/uL) and,
    for a converted value, show both readings so that the clinician can pick the right unit.
    """
    converted = bool(reported_unit) and reported_unit != test.unit and reported_value is not None
    stored = f"{fmt_decimal(value)} {unit_display(test.unit)}"
    if converted and reported_value is not None:
        entered = f"{fmt_decimal(reported_value)} {unit_display(reported_unit)}"
        as_test_unit = f"{fmt_decimal(reported_value)} {unit_display(test.unit)}"
        other_unit_plausible = not (
            test.is_below_plausible(reported_value) or test.is_above_plausible(reported_value)
        )
        choose = f"if the lab reported {as_test_unit}, choose that unit"
        if reported_unit in COUNT_PER_UL_UNITS and 0 < reported_value < COUNT_PER_UL_FLOOR:
            message = (
                f"{entered} would be {stored}; {choose}. A count under "
                f"{fmt_decimal(COUNT_PER_UL_FLOOR)} {unit_display(reported_unit)} is almost "
                f"always a {unit_display(test.unit)} figure entered with the wrong unit."
            )
            if not test.is_below_plausible(value):
                message += f" If the lab really reported {entered}, enter {stored}."
            return message
        if test.is_below_plausible(value):
            lowest = _limit_text(test.min_plausible, test.unit)
            advice = choose if other_unit_plausible else "check the value and its unit"
            return (
                f"{entered} would be {stored}, below the lowest possible {test.name} value "
                f"({lowest}); {advice}."
            )
        if test.is_above_plausible(value):
            highest = _limit_text(test.max_plausible, test.unit)
            return (
                f"{entered} would be {stored}: that is not a possible {test.name} value "
                f"(at most {highest}); check the value and its unit."
            )
        return None
    if test.is_below_plausible(value):
        lowest = _limit_text(test.min_plausible, test.unit)
        zero = " (none detected is entered as 0)" if test.zero_is_possible else ""
        return (
            f"{stored} is below the lowest possible {test.name} value ({lowest}); check the "
            f"value and its unit{zero}."
        )
    if test.is_above_plausible(value):
        highest = _limit_text(test.max_plausible, test.unit)
        return (
            f"{stored} is not a possible {test.name} value (at most {highest}); check the "
            "value and its unit."
        )
    return None


def _limit_text(limit: Decimal | None, unit: str) -> str:
    return f"{fmt_decimal(limit)} {unit_display(unit)}" if limit is not None else ""


# --- Interpretation flag (FHIR v3 ObservationInterpretation) ---------------------------------


@dataclass(frozen=True)
class AppliedRange:
    """The limits that applied to one result; stored on the result as they were."""

    ref_low: Decimal | None
    ref_high: Decimal | None
    critical_low: Decimal | None
    critical_high: Decimal | None
    critical_low_inclusive: bool = True
    critical_high_inclusive: bool = True


def interpretation_flag(value: Decimal, limits: AppliedRange) -> Flag:
    """LL/HH beyond a critical limit, else L/H outside the reference range, else N.

    The reference range is inclusive at both ends (a value exactly at ref_low is normal, as in
    FHIR's referenceRange). Critical limits follow the test's `*_inclusive` setting because
    institutions phrase them both ways: "hemoglobin <= 7" but "ANC < 0.5".
    """
    low, high = limits.critical_low, limits.critical_high
    if low is not None and (value <= low if limits.critical_low_inclusive else value < low):
        return Flag.CRITICAL_LOW
    if high is not None and (value >= high if limits.critical_high_inclusive else value > high):
        return Flag.CRITICAL_HIGH
    if limits.ref_low is not None and value < limits.ref_low:
        return Flag.LOW
    if limits.ref_high is not None and value > limits.ref_high:
        return Flag.HIGH
    return Flag.NORMAL


# --- CTCAE grading from a lab value ----------------------------------------------------------


@dataclass(frozen=True)
class GradeSuggestion:
    """A suggested CTCAE grade: a clinician confirms it (labs do not grade on their own)."""

    grade: int
    criterion: CtcaeGradeCriterion
    explanation: str
    result: object | None = None  # the LabResult graded, when the service knows it


def criterion_threshold(
    criterion: CtcaeGradeCriterion, *, lln: Decimal | None, uln: Decimal | None
) -> Decimal | None:
    """The cut-off in the test's unit, or None when the needed LLN/ULN is unknown."""
    basis = criterion.basis
    if basis == CtcaeGradeCriterion.Basis.ABSOLUTE:
        return criterion.threshold
    if basis == CtcaeGradeCriterion.Basis.LLN:
        return lln
    if basis == CtcaeGradeCriterion.Basis.ULN:
        return uln
    if basis == CtcaeGradeCriterion.Basis.X_ULN:
        if uln is None or criterion.threshold is None:
            return None
        return criterion.threshold * uln
    return None


def ctcae_grade(
    *,
    value: Decimal,
    criteria: Iterable[CtcaeGradeCriterion],
    lln: Decimal | None,
    uln: Decimal | None,
    unit: str = "",
) -> GradeSuggestion | None:
    """The highest grade whose cut-off `value` is strictly beyond, or None (not graded).

    CTCAE ranges read "< 1.5-1.0" for grade 2: grade 2 starts just below 1.5, so a value
    exactly at a cut-off stays in the lower grade (ANC 1.5 is grade 1, 1.49 grade 2).
    """
    best: tuple[CtcaeGradeCriterion, Decimal] | None = None
    for criterion in criteria:
        threshold = criterion_threshold(criterion, lln=lln, uln=uln)
        if threshold is None:
            continue
        if criterion.direction == CtcaeGradeCriterion.Direction.BELOW:
            matches = value < threshold
        else:
            matches = value > threshold
        if matches and (best is None or criterion.grade > best[0].grade):
            best = (criterion, threshold)
    if best is None:
        return None
    criterion, threshold = best
    sign = "<" if criterion.direction == CtcaeGradeCriterion.Direction.BELOW else ">"
    if criterion.basis == CtcaeGradeCriterion.Basis.X_ULN:
        basis = f" ({fmt_decimal(criterion.threshold)} x ULN {fmt_decimal(uln)})"
    else:
        basis = {
            CtcaeGradeCriterion.Basis.LLN: " (LLN)",
            CtcaeGradeCriterion.Basis.ULN: " (ULN)",
        }.get(criterion.basis, "")
    unit_text = f" {unit_display(unit)}" if unit else ""
    return GradeSuggestion(
        grade=criterion.grade,
        criterion=criterion,
        explanation=(
            f"{fmt_decimal(value)}{unit_text} {sign} {fmt_decimal(threshold)}{unit_text}{basis}: "
            f"CTCAE grade {criterion.grade}."
        ),
    )


# --- Pre-cycle rules ---------------------------------------------------------------------------


class PreCycleOutcome:
    """Outcome codes: the five rule actions, plus the two ways an analyte cannot be judged.

    MISSING/STALE are per analyte; overall they make the assessment NOT_EVALUABLE, which
    blocks the cycle like a hold but says why (never a silent pass).
    """

    TREAT = PreCycleAction.TREAT.value
    TREAT_REDUCED = PreCycleAction.TREAT_REDUCED.value
    DELAY = PreCycleAction.DELAY.value
    CONTACT = PreCycleAction.CONTACT.value
    HOLD = PreCycleAction.HOLD.value
    MISSING = "missing"
    STALE = "stale"
    NOT_EVALUABLE = "not_evaluable"

    LABELS = {
        TREAT: "OK to treat",
        TREAT_REDUCED: "Treat at reduced dose",
        DELAY: "Delay",
        CONTACT: "Contact physician",
        HOLD: "Hold",
        MISSING: "No result",
        STALE: "Result too old",
        NOT_EVALUABLE: "Not evaluable: a result is missing or too old",
    }

    BLOCKING = frozenset({DELAY, CONTACT, HOLD, MISSING, STALE, NOT_EVALUABLE})
    NOT_READY = frozenset({DELAY, CONTACT, HOLD})  # a result in hand says: not as planned
    NOT_JUDGED = frozenset({MISSING, STALE})  # no result recent enough to judge


# Least to most restrictive: the overall outcome is the maximum over analytes.
ACTION_SEVERITY: dict[str, int] = {
    PreCycleAction.TREAT: 0,
    PreCycleAction.TREAT_REDUCED: 1,
    PreCycleAction.DELAY: 2,
    PreCycleAction.CONTACT: 3,
    PreCycleAction.HOLD: 4,
}


class RuleLike(Protocol):
    comparator: str
    value: Decimal
    unit: str


def rule_matches(rule: RuleLike, *, value: Decimal, unit: str) -> bool:
    """Whether `value unit` satisfies `rule`; a unit mismatch never matches (no silent
    comparison of 1.5 x10*3/uL against a rule written in another unit)."""
    if unit != rule.unit:
        return False
    threshold = rule.value
    if rule.comparator == Comparator.GE:
        return value >= threshold
    if rule.comparator == Comparator.GT:
        return value > threshold
    if rule.comparator == Comparator.LE:
        return value <= threshold
    if rule.comparator == Comparator.LT:
        return value < threshold
    return False


def most_restrictive(outcomes: Sequence[str]) -> str:
    """The overall outcome: NOT_EVALUABLE if any analyte is missing/stale, else the most
    restrictive action. No analytes at all means nobody wrote criteria: contact physician."""
    if any(o in PreCycleOutcome.NOT_JUDGED for o in outcomes):
        return PreCycleOutcome.NOT_EVALUABLE
    if not outcomes:
        return PreCycleOutcome.CONTACT
    return max(outcomes, key=lambda o: ACTION_SEVERITY[o])
