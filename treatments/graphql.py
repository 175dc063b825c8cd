"""GraphQL types for regimens (reference data) and treatment records (PHI, gated).

Reference types expose no reverse relation to PHI (no Regimen.courses, no Drug.administrations):
the only way into a chart is through a gated root field.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
import strawberry_django
from django.db.models import QuerySet
from strawberry import auto
from strawberry.types import Info

from labs.models import PreCycleRule
from oncoplanner.graphql_gate import gate_queryset
from treatments.models import (
    Administration,
    ChemoCycle,
    Course,
    CtcaeTerm,
    CycleStatusChange,
    DoseModification,
    Drug,
    Regimen,
    RegimenDrug,
    RegimenPhase,
    SideEffect,
    SupportiveMedication,
)
from treatments.schedule import PUBLIC_HOLIDAY, UNIT_CLOSURE, WEEKEND
from treatments.selectors import ctcae_term_grades

if TYPE_CHECKING:
    from labs.graphql import LabTestType
    from patients.graphql import PatientType


class Gated:
    """Mixin: the type's rows pass the access gate (lists, foreign keys and prefetches)."""

    @classmethod
    def get_queryset(cls, queryset: QuerySet[Any], info: Info, **kwargs: Any) -> Any:
        return gate_queryset(queryset, info)


@strawberry_django.type(Drug, name="Drug")
class DrugType:
    id: auto
    name: auto
    drug_class: auto
    lifetime_limit_mg_m2: Decimal | None
    dose_banding_tolerance_percent: Decimal | None = strawberry_django.field(
        description="null: never banded; else how far (percent) a dispensed standard dose "
        "may be from the calculated dose."
    )


@strawberry_django.type(RegimenDrug, name="RegimenDrug")
class RegimenDrugType:
    id: auto
    drug: DrugType
    dose: Decimal
    dose_basis: auto
    route: auto
    days: auto
    duration: auto
    max_dose_mg: Decimal | None
    order: auto


@strawberry_django.type(RegimenPhase, name="RegimenPhase")
class RegimenPhaseType:
    id: auto
    order: auto
    name: auto
    cycle_length_days: auto
    planned_cycles: auto
    drugs: list[RegimenDrugType]


@strawberry_django.type(PreCycleRule, name="PreCycleRule")
class PreCycleRuleType:
    id: auto
    test: Annotated[LabTestType, strawberry.lazy("labs.graphql")]
    comparator: auto
    value: Decimal
    unit: auto
    max_age_days: auto
    action: auto
    action_percent: auto
    action_delay_days: auto
    priority: auto
    source: auto


@strawberry_django.type(SupportiveMedication, name="SupportiveMedication")
class SupportiveMedicationType:
    id: auto
    phase: RegimenPhaseType | None
    category: auto
    medication: auto
    dose_route: auto
    timing: auto
    days: auto
    required_before: RegimenDrugType | None
    source: auto
    order: auto


@strawberry_django.type(Regimen, name="Regimen")
class RegimenType:
    id: auto
    name: auto
    version: auto
    intent: auto
    indication: auto
    description: auto
    source: auto
    is_active: auto
    approved_at: auto
    phases: list[RegimenPhaseType]
    precycle_rules: list[PreCycleRuleType]
    supportive_medications: list[SupportiveMedicationType]


@strawberry.type(name="CtcaeGrade")
class CtcaeGradeType:
    grade: int
    description: str


@strawberry_django.type(CtcaeTerm, name="CtcaeTerm")
class CtcaeTermType:
    id: auto
    term: auto
    version: auto
    category: auto
    max_grade: auto
    is_common: auto

    @strawberry_django.field(
        only=["grade_descriptions"], description="What each grade means for this term."
    )
    def grades(self, root: CtcaeTerm) -> list[CtcaeGradeType]:
        return [
            CtcaeGradeType(grade=grade, description=text)
            for grade, text in ctcae_term_grades(term=root)
        ]


@strawberry_django.type(Course, name="Course")
class CourseType(Gated):
    id: auto
    patient: Annotated[PatientType, strawberry.lazy("patients.graphql")]
    regimen: RegimenType
    start_date: dt.date
    intent: auto
    status: auto
    stop_reason: auto
    stopped_on: dt.date | None
    cycles: list[ChemoCycleType]
    dose_modifications: list[DoseModificationType]


@strawberry.enum(
    name="ClosedDayKind",
    description="What closes the day unit on a cycle's planned day 1: a closure the unit "
    "recorded, a public holiday or a weekend.",
)
class ClosedDayKind(enum.Enum):
    UNIT_CLOSURE = UNIT_CLOSURE
    PUBLIC_HOLIDAY = PUBLIC_HOLIDAY
    WEEKEND = WEEKEND


@strawberry_django.type(ChemoCycle, name="ChemoCycle")
class ChemoCycleType(Gated):
    id: auto
    course: CourseType
    phase: RegimenPhaseType
    number: auto
    planned_start: dt.date
    actual_start: dt.date | None
    end_date: dt.date | None
    status: auto
    reason: auto
    given_despite: auto
    override_reason: auto
    administrations: list[AdministrationType]
    status_history: list[CycleStatusChangeType] = strawberry_django.field(
        description="Every give, delay, hold and cancellation of the cycle, and every move "
        "with an earlier cycle's delay or give, newest first."
    )

    @strawberry_django.field(
        only=["row_version"],
        description="Changes with every change to the cycle: send it back as seenVersion.",
    )
    def version(self) -> str:
        return self.version  # type: ignore[attr-defined]

    @strawberry_django.field(
        only=["planned_start", "status"],
        description="For a cycle still to give, why the day unit may be closed on its planned "
        'day 1: the reason of a closure the unit recorded ("Staff training day"), else the '
        'public holiday\'s name ("Christmas Day"), else "weekend"; else "".',
    )
    def closed_day(self) -> str:
        return self.planned_on_closed_day  # type: ignore[attr-defined]

    @strawberry_django.field(
        only=["planned_start", "status"],
        description="What closes the day unit on the day closedDay names: UNIT_CLOSURE (a "
        "closure the unit recorded, so closedDay is its reason), PUBLIC_HOLIDAY (closedDay is "
        'the holiday\'s name) or WEEKEND; null when closedDay is "".',
    )
    def closed_day_kind(self) -> ClosedDayKind | None:
        closure = self.planned_closure  # type: ignore[attr-defined]
        return ClosedDayKind(closure.kind) if closure else None


@strawberry_django.type(CycleStatusChange, name="CycleStatusChange")
class CycleStatusChangeType(Gated):
    """One give, delay, hold or cancellation of a cycle, as it was decided, or its move with
    an earlier cycle's delay or give (append-only)."""

    id: auto
    status: auto = strawberry_django.field(
        description="given, delayed, held or cancelled; for a move (movedWithCycle set), the "
        "cycle's own status then: planned, ready, delayed or held."
    )
    reason: auto
    given_despite: auto
    planned_start_before: dt.date | None
    planned_start_after: dt.date
    actual_start: dt.date | None
    at: dt.datetime | None
    from_before_history: auto = strawberry_django.field(
        description="Recorded when the history began: earlier changes of this cycle were not "
        "kept, and who or when may be unknown."
    )

    @strawberry_django.field(
        select_related=["by"], description="Who decided it: name and discipline."
    )
    def by(self) -> str:
        return str(self.by) if self.by_id else ""  # type: ignore[attr-defined]

    @strawberry_django.field(
        select_related=["moved_with__cycle"],
        description="For a move: the number of the earlier cycle (of the same course) whose "
        "delay or give moved this one; the reason, who and when are that change's.",
    )
    def moved_with_cycle(self) -> int | None:
        return self.moved_with_cycle  # type: ignore[attr-defined]


@strawberry_django.type(Administration, name="Administration")
class AdministrationType(Gated):
    id: auto
    cycle: ChemoCycleType
    drug: DrugType
    day_of_cycle: auto
    given_at: dt.datetime
    route: auto
    standard_dose_mg: Decimal
    dose_percent: Decimal
    dose_mg: Decimal = strawberry_django.field(description="The calculated dose.")
    dispensed_dose_mg: Decimal | None = strawberry_django.field(
        description="Set when the pharmacy dispensed a banded dose: the dose on the label, "
        "given instead of doseMg."
    )
    amount_given_mg: Decimal | None = strawberry_django.field(
        description="Set when the infusion was stopped part-way: the mg that went in."
    )
    stopped_reason: auto
    formula: auto
    notes: auto
    premedication_confirmed: list[str] = strawberry_django.field(
        description="The required premedication confirmed as given before this drug."
    )


@strawberry_django.type(DoseModification, name="DoseModification")
class DoseModificationType(Gated):
    id: auto
    course: CourseType
    drug: DrugType | None
    from_cycle_number: auto
    percent: Decimal
    reason: auto


@strawberry_django.type(SideEffect, name="SideEffect")
class SideEffectType(Gated):
    id: auto
    patient: Annotated[PatientType, strawberry.lazy("patients.graphql")]
    cycle: ChemoCycleType | None
    term: CtcaeTermType
    grade: auto
    ctcae_version: auto
    onset: dt.date
    resolved_on: dt.date | None
    description: auto
    source: auto
    acknowledged_at: dt.datetime | None
    acknowledgement_note: auto
