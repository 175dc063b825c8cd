"""GraphQL types for lab tests (reference data), lab results (PHI, gated) and readiness."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
import strawberry_django
from django.db.models import QuerySet
from strawberry import auto
from strawberry.types import Info

from labs.models import LabResult, LabTest
from labs.services import AnalyteEvidence, PreCycleAssessment
from oncoplanner.graphql_gate import gate_queryset

if TYPE_CHECKING:
    from patients.dashboard import CourseReadiness
    from patients.graphql import PatientType


@strawberry_django.type(LabTest, name="LabTest")
class LabTestType:
    id: auto
    loinc: auto
    name: auto
    short_name: auto
    unit: auto
    ref_low: Decimal | None
    ref_high: Decimal | None
    critical_low: Decimal | None
    critical_high: Decimal | None
    decimal_places: auto
    is_tumour_marker: auto


@strawberry_django.type(LabResult, name="LabResult")
class LabResultType:
    id: auto
    patient: Annotated[PatientType, strawberry.lazy("patients.graphql")]
    test: LabTestType
    value: Decimal
    unit: auto
    reported_value: Decimal | None
    reported_unit: auto
    collected_at: dt.datetime
    ref_low: Decimal | None
    ref_high: Decimal | None
    critical_low: Decimal | None
    critical_high: Decimal | None
    flag: auto
    is_released: auto
    acknowledged_at: dt.datetime | None
    acknowledgement_note: auto
    note: auto

    @classmethod
    def get_queryset(cls, queryset: QuerySet[LabResult], info: Info, **kwargs: Any) -> Any:
        return gate_queryset(queryset, info)

    @strawberry.field
    def is_critical(self) -> bool:
        return bool(self.is_critical)  # type: ignore[attr-defined]


@strawberry.type(name="AnalyteEvidence")
class AnalyteEvidenceType:
    loinc: str
    test_name: str
    outcome: str
    outcome_label: str
    result_value: Decimal | None
    result_collected_at: dt.datetime | None
    max_age_days: int
    explanation: str
    in_hand: str | None  # too old by the cycle day, but what its rules say of it now

    @classmethod
    def from_evidence(cls, evidence: AnalyteEvidence) -> AnalyteEvidenceType:
        return cls(
            loinc=evidence.test.loinc,
            test_name=evidence.test.name,
            outcome=evidence.outcome,
            outcome_label=evidence.outcome_label,
            result_value=evidence.result.value if evidence.result else None,
            result_collected_at=evidence.result.collected_at if evidence.result else None,
            max_age_days=evidence.max_age_days,
            explanation=evidence.explanation,
            in_hand=evidence.in_hand,
        )


@strawberry.type(name="Readiness", description="Is the patient ready for the next cycle?")
class ReadinessType:
    patient_id: strawberry.ID
    regimen_id: strawberry.ID
    at: dt.datetime
    outcome: str
    outcome_label: str
    ok_to_treat: bool
    labs_due: bool  # a cycle still to come whose pre-cycle labs are not drawn yet
    dose_percent: int | None
    delay_days: int | None
    analytes: list[AnalyteEvidenceType]

    @classmethod
    def from_assessment(cls, assessment: PreCycleAssessment) -> ReadinessType:
        return cls(
            patient_id=strawberry.ID(str(assessment.patient_id)),
            regimen_id=strawberry.ID(str(assessment.regimen.pk)),
            at=assessment.at,
            outcome=assessment.outcome,
            outcome_label=assessment.outcome_label,
            ok_to_treat=assessment.ok_to_treat,
            labs_due=assessment.labs_due,
            dose_percent=assessment.dose_percent,
            delay_days=assessment.delay_days,
            analytes=[AnalyteEvidenceType.from_evidence(a) for a in assessment.analytes],
        )


@strawberry.type(
    name="CourseReadiness",
    description="Readiness for the next cycle of one open course, judged on its own regimen's "
    "rules for its own next cycle's day (a patient may have two open courses).",
)
class CourseReadinessType:
    course_id: strawberry.ID
    regimen: str
    cycle_number: int | None  # the next cycle still to give; null when none is left
    cycle_day: dt.date | None  # its planned day: results are judged for it
    badge: str  # the outcome as the dashboard's badge says it ("Labs due", "Hold", …)
    reason: str  # the first reason the cycle cannot go ahead as planned; "" when it can
    readiness: ReadinessType

    @classmethod
    def from_row(cls, row: CourseReadiness) -> CourseReadinessType:
        return cls(
            course_id=strawberry.ID(str(row.course.pk)),
            regimen=str(row.course.regimen),
            cycle_number=row.cycle_number,
            cycle_day=row.cycle_day,
            badge=row.badge.label,
            reason=row.reason,
            readiness=ReadinessType.from_assessment(row.assessment),
        )
