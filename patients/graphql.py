"""GraphQL types for patients: the chart header and the signed-in user.

Each PHI type filters its rows through the access gate in ``get_queryset`` (lists and foreign
keys alike, the optimizer turns them into gated prefetches).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
import strawberry_django
from django.db.models import QuerySet, Subquery
from strawberry import auto
from strawberry.types import Info

from oncoplanner.accounts.models import User
from oncoplanner.graphql_gate import gate_queryset
from patients.models import Patient

if TYPE_CHECKING:
    from labs.graphql import LabResultType
    from treatments.graphql import CourseType, SideEffectType

MAX_PAGE = 200


def page_bounds(first: int, offset: int) -> tuple[int, int]:
    """A page window clamped to [0, MAX_PAGE] rows: a client cannot ask for the whole table."""
    first = max(0, min(first, MAX_PAGE))
    offset = max(0, offset)
    return offset, offset + first


@strawberry_django.type(User, name="User")
class UserType:
    id: auto
    username: auto
    first_name: auto
    last_name: auto
    role: auto
    discipline: auto


@strawberry_django.type(Patient, name="Patient")
class PatientType:
    id: auto
    mrn: auto
    given_name: auto
    family_name: auto
    date_of_birth: dt.date
    sex: auto
    primary_diagnosis: auto
    stage: auto
    ecog: auto
    courses: list[Annotated[CourseType, strawberry.lazy("treatments.graphql")]] = (
        strawberry_django.field()
    )
    side_effects: list[Annotated[SideEffectType, strawberry.lazy("treatments.graphql")]] = (
        strawberry_django.field()
    )

    @classmethod
    def get_queryset(cls, queryset: QuerySet[Patient], info: Info, **kwargs: Any) -> Any:
        return gate_queryset(queryset, info)

    @strawberry_django.field(description="Latest results first; at most 200 per page.")
    def lab_results(
        self, info: Info, first: int = 50, offset: int = 0
    ) -> list[Annotated[LabResultType, strawberry.lazy("labs.graphql")]]:
        from labs.models import LabResult

        start, stop = page_bounds(first, offset)
        window = (
            LabResult.objects.filter(patient_id=self.pk)  # type: ignore[attr-defined]
            .order_by("-collected_at", "-pk")
            .values("pk")[start:stop]
        )
        # One query for the page whatever its size: the window is a subquery, the type's
        # get_queryset (the gate) and the optimizer's select_related apply to the outer query.
        return LabResult.objects.filter(pk__in=Subquery(window)).order_by(  # type: ignore[return-value]
            "-collected_at", "-pk"
        )
