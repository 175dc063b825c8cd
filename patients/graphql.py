"""GraphQL types for patients: the chart header and the signed-in user.

Each PHI type filters its rows through the access gate in ``get_queryset`` (lists and foreign
keys alike, the optimizer turns them into gated prefetches).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
import strawberry_django
from django.db.models import Prefetch, QuerySet, Subquery
from strawberry import auto
from strawberry.types import Info
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from oncoplanner.accounts.models import User
from oncoplanner.graphql_gate import gate_queryset
from patients.models import Allergy, BodyMeasurement, Patient

if TYPE_CHECKING:
    from labs.graphql import LabResultType
    from treatments.graphql import CourseType, SideEffectType

MAX_PAGE = 200


def page_bounds(first: int, offset: int) -> tuple[int, int]:
    """A page window clamped to [0, MAX_PAGE] rows: a client cannot ask for the whole table."""
    first = max(0, min(first, MAX_PAGE))
    offset = max(0, offset)
    return offset, offset + first


def _lab_page_attr(response_key: str) -> str:
    return f"_lab_results_{response_key}"


def _included(selection: SelectedField | FragmentSpread | InlineFragment) -> bool:
    directives = selection.directives
    if "skip" in directives and directives["skip"].get("if"):
        return False
    return not ("include" in directives and not directives["include"].get("if"))


def _lab_selections(info: Info) -> dict[str, SelectedField]:
    """The labResults selections under the Patient field being resolved, by response key.

    Walks fragments too; a key asked twice is one field (GraphQL merges it, and validation
    makes sure both ask for the same arguments).
    """
    found: dict[str, SelectedField] = {}

    def walk(selections: list[Selection]) -> None:
        for selection in selections:
            if not _included(selection):
                continue
            if isinstance(selection, SelectedField):
                if selection.name == "labResults":
                    found.setdefault(selection.alias or selection.name, selection)
            else:
                walk(selection.selections)

    for field in info.selected_fields:
        walk(field.selections)
    return found


def with_lab_pages[Q: QuerySet[Patient]](queryset: Q, info: Info) -> Q:
    """`queryset` with the requested page(s) of lab results of all its patients prefetched.

    One query per labResults selection, whatever the number of patients: Django slices a
    prefetch per patient (a window over each patient's results), so each patient still gets
    their own latest page, kept under the selection's response key. Done here rather than as
    an optimizer hint on the field: the optimizer drops aliases of one field that differ in
    their arguments (``a: labResults(first: 5) b: labResults(first: 10)``), which left each
    alias to its resolver's own query per patient.
    """
    from labs.models import LabResult

    lookups = []
    for key, selection in _lab_selections(info).items():
        arguments = selection.arguments
        start, stop = page_bounds(int(arguments.get("first", 50)), int(arguments.get("offset", 0)))
        # Through the gate like every list of the type (portal users: released results only).
        gated = gate_queryset(LabResult.objects.select_related("test"), info)
        page = gated.order_by("-collected_at", "-pk")[start:stop]
        lookups.append(Prefetch("lab_results", queryset=page, to_attr=_lab_page_attr(key)))
    return queryset.prefetch_related(*lookups) if lookups else queryset


@strawberry_django.type(User, name="User")
class UserType:
    id: auto
    username: auto
    first_name: auto
    last_name: auto
    role: auto
    discipline: auto


@strawberry_django.type(BodyMeasurement, name="BodyMeasurement")
class BodyMeasurementType:
    """A weight and/or height taken on a day (weight-based doses are computed from them)."""

    id: auto
    measured_on: auto
    weight_kg: auto
    height_cm: auto


@strawberry_django.type(Allergy, name="Allergy")
class AllergyType:
    """An allergy or intolerance on the chart. Entries entered in error are left out."""

    id: auto
    substance: auto
    category: auto
    reaction: auto
    severity: auto
    recorded_at: dt.datetime
    drug_id: int | None = strawberry_django.field(description="The formulary drug, if one.")

    @classmethod
    def get_queryset(cls, queryset: QuerySet[Allergy], info: Info, **kwargs: Any) -> Any:
        return gate_queryset(queryset, info)


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
    diagnosed_on: dt.date | None = strawberry_django.field(
        description="When the primary cancer was diagnosed (null: not recorded)."
    )
    ecog: auto
    courses: list[Annotated[CourseType, strawberry.lazy("treatments.graphql")]] = (
        strawberry_django.field()
    )
    side_effects: list[Annotated[SideEffectType, strawberry.lazy("treatments.graphql")]] = (
        strawberry_django.field()
    )
    allergies: list[AllergyType] = strawberry_django.field(
        description="Current allergies and intolerances (not those entered in error)."
    )
    no_known_allergies_at: dt.datetime | None = strawberry_django.field(
        description='When a clinician recorded "no known allergies" (null: not recorded, or '
        "allergies are listed)."
    )

    @classmethod
    def get_queryset(cls, queryset: QuerySet[Patient], info: Info, **kwargs: Any) -> Any:
        # Every Patient queryset (root lists, nested prefetches) is built here, with the info
        # of the field that returns it: the place to see all of its labResults aliases.
        return with_lab_pages(gate_queryset(queryset, info), info)

    @strawberry_django.field(
        description="Latest results first; at most 200 per page.",
        # with_lab_pages prefetches the pages; left to the optimizer, the reverse relation
        # would be prefetched whole (every result of every patient).
        disable_optimization=True,
    )
    def lab_results(
        self, info: Info, first: int = 50, offset: int = 0
    ) -> list[Annotated[LabResultType, strawberry.lazy("labs.graphql")]]:
        from labs.models import LabResult

        start, stop = page_bounds(first, offset)
        prefetched = getattr(self, _lab_page_attr(str(info.path.key)), None)
        if prefetched is not None:
            return prefetched  # type: ignore[no-any-return]
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
