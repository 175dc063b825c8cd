"""The GraphQL door at /graphql/: root schema, protections and the view.

Every root field reads through the access gate (patients.selectors) and sends one record_read
for the patients it returns; every PHI type filters nested rows through the gate in its
``get_queryset`` (oncoplanner.graphql_gate). Mutations call the same services as the pages.

Protections (SECURITY.md: an API is a door like any page): depth limit 8, alias limit 20, no
batching (strawberry refuses a JSON array with 400 unless batching is configured, and it is
not), queries over POST only, introspection and "did you mean" suggestions off unless DEBUG,
unexpected errors masked, CSRF enforced by Django's middleware for cookie sessions (the view
is deliberately not csrf_exempt). All limits are validation rules: a refused document never
reaches a resolver.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Annotated, Any

import strawberry
import strawberry_django
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.django.views import GraphQLView
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.types import Info
from strawberry.utils.str_converters import to_camel_case
from strawberry_django.optimizer import DjangoOptimizerExtension

from labs import services as lab_services
from labs.graphql import CourseReadinessType, LabResultType, LabTestType, ReadinessType
from labs.models import LabResult, LabTest
from oncoplanner.confirmation import ConfirmationRequired
from oncoplanner.graphql_gate import (
    ForbiddenError,
    InputError,
    NotFoundError,
    is_portal_user,
    user_of,
    visible_patients,
)
from oncoplanner.signals import record_read
from patients import selectors
from patients import services as patient_services
from patients.dashboard import CourseReadiness, open_course_readiness
from patients.graphql import BodyMeasurementType, PatientType, UserType, page_bounds
from patients.models import Patient
from treatments import services as treatment_services
from treatments.graphql import ChemoCycleType, CtcaeTermType, RegimenType, SideEffectType
from treatments.models import CtcaeTerm, Regimen
from treatments.selectors import ctcae_terms_matching

MAX_DEPTH = 8
MAX_ALIASES = 20
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def _log_list(patient_ids: list[int], sender: type[Any]) -> None:
    if patient_ids:
        record_read.send(
            sender=sender,
            patients=[Patient(pk=pk) for pk in patient_ids],
            target=None,
            action="list",
        )


def _own_patient_id(user: Any) -> int | None:
    return (
        Patient.objects.filter(portal_user=user, is_active=True)
        .values_list("pk", flat=True)
        .first()
    )


def _same_id(a: Any, b: Any) -> bool:
    return a is not None and str(a) == str(b)


class _Services:
    """Run a service: Http404 from the gate -> "not found"; ValidationError -> field errors."""

    @staticmethod
    def call[T](fn: Callable[[], T]) -> T:
        try:
            return fn()
        except Http404:
            raise NotFoundError() from None
        except PermissionDenied as error:
            raise ForbiddenError(str(error)) from None
        except ConfirmationRequired as error:
            # The arguments as GraphQL clients write them (confirm_change -> confirmChange),
            # every one a refusal asks for (course_start asks several at once).
            confirmations = [
                replace(c, confirm_with=to_camel_case(c.confirm_with)) for c in error.confirmations
            ]
            raise InputError(
                error.message_dict,
                confirm_with=to_camel_case(error.confirm_with),
                confirmations=confirmations,
            ) from None
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                raise InputError(error.message_dict) from None
            raise InputError({"__all__": error.messages}) from None


# --- Queries ------------------------------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in user.")
    def me(self, info: Info) -> UserType | None:
        user = user_of(info)
        return user if user.is_authenticated else None  # type: ignore[return-value]

    @strawberry_django.field(description="A portal user's own record (null for staff).")
    def my_record(self, info: Info) -> PatientType | None:
        user = user_of(info)
        if not is_portal_user(user):
            return None
        try:
            patient = selectors.portal_patient_for(user=user)  # logs the read
        except Http404:
            raise NotFoundError() from None
        return patient  # type: ignore[return-value]  # read through the gate: see `patient`

    @strawberry_django.field(description="Patients visible to you, by family name.")
    def patients(
        self, info: Info, search: str | None = None, first: int = 50, offset: int = 0
    ) -> list[PatientType]:
        queryset = visible_patients(info)  # none for portal users
        if search:
            term = search.strip()[:100]
            queryset = queryset.filter(
                Q(family_name__icontains=term) | Q(given_name__icontains=term) | Q(mrn=term)
            )
        start, stop = page_bounds(first, offset)
        order = ("family_name", "given_name", "pk")
        ids = list(queryset.order_by(*order).values_list("pk", flat=True)[start:stop])
        _log_list(ids, Patient)
        return Patient.objects.filter(pk__in=ids).order_by(*order)  # type: ignore[return-value]

    @strawberry_django.field(description="One patient; null with 'not found' if not yours.")
    def patient(self, info: Info, id: strawberry.ID) -> PatientType | None:
        user = user_of(info)
        if is_portal_user(user):
            if not _same_id(_own_patient_id(user), id):
                raise NotFoundError()
            patient = _Services.call(lambda: selectors.portal_patient_for(user=user))
        else:
            patient = _Services.call(
                lambda: selectors.patient_get_for_user(user=user, patient_id=id)
            )
        # The selector has just read this row through the gate: fetching it again through the
        # type's get_queryset would re-run the gate's permission subquery for nothing. Its
        # nested lists still pass the gate, each in its own get_queryset.
        return patient  # type: ignore[return-value]

    @strawberry_django.field(description="A patient's lab results, latest first.")
    def lab_results(
        self,
        info: Info,
        patient_id: strawberry.ID,
        loinc: str | None = None,
        from_: Annotated[dt.datetime | None, strawberry.argument(name="from")] = None,
        to: dt.datetime | None = None,
        first: int = 50,
        offset: int = 0,
    ) -> list[LabResultType]:
        user = user_of(info)
        if is_portal_user(user):
            if not _same_id(_own_patient_id(user), patient_id):
                raise NotFoundError()
            results = _Services.call(lambda: selectors.portal_lab_results_for(user=user))
        else:
            results = _Services.call(
                lambda: selectors.lab_results_for(user=user, patient_id=patient_id)
            )
        if loinc:
            results = results.filter(test__loinc=loinc)
        if from_ is not None:
            results = results.filter(collected_at__gte=from_)
        if to is not None:
            results = results.filter(collected_at__lte=to)
        start, stop = page_bounds(first, offset)
        order = ("-collected_at", "-pk")
        window = results.order_by(*order).values("pk")[start:stop]
        return LabResult.objects.filter(pk__in=Subquery(window)).order_by(*order)  # type: ignore[return-value]

    @strawberry_django.field(description="Active regimens (reference data; staff only).")
    def regimens(self, info: Info) -> list[RegimenType]:
        user = user_of(info)
        if is_portal_user(user):
            return Regimen.objects.none()  # type: ignore[return-value]
        return Regimen.objects.filter(is_active=True).order_by("name", "version")  # type: ignore[return-value]

    @strawberry_django.field(description="Lab tests (reference data; staff only).")
    def lab_tests(self, info: Info) -> list[LabTestType]:
        user = user_of(info)
        if is_portal_user(user):
            return LabTest.objects.none()  # type: ignore[return-value]
        return LabTest.objects.order_by("name")  # type: ignore[return-value]

    @strawberry_django.field(
        description="CTCAE terms, common ones first; search: part of a term or category "
        "(reference data; staff only). A side effect is recorded with a term's id."
    )
    def ctcae_terms(
        self, info: Info, search: str | None = None, first: int = 50, offset: int = 0
    ) -> list[CtcaeTermType]:
        user = user_of(info)
        if is_portal_user(user):
            return CtcaeTerm.objects.none()  # type: ignore[return-value]
        start, stop = page_bounds(first, offset)
        terms = ctcae_terms_matching(q=search)
        window = terms.values("pk")[start:stop]
        order = terms.query.order_by
        return CtcaeTerm.objects.filter(pk__in=Subquery(window)).order_by(*order)  # type: ignore[return-value]

    @strawberry.field(
        description="Pre-cycle readiness for the patient's open course whose next cycle is due "
        "first (the one the dashboard shows in full); every open course: courseReadiness."
    )
    def readiness(self, info: Info, patient_id: strawberry.ID) -> ReadinessType | None:
        rows = _open_course_readiness(info, patient_id)
        return ReadinessType.from_assessment(rows[0].assessment) if rows else None

    @strawberry.field(
        description="Pre-cycle readiness for the next cycle of every open course, the course "
        "due first at the head (as on the dashboard); an open course with no cycle left to "
        "give is judged now, last."
    )
    def course_readiness(self, info: Info, patient_id: strawberry.ID) -> list[CourseReadinessType]:
        return [
            CourseReadinessType.from_row(row) for row in _open_course_readiness(info, patient_id)
        ]


def _open_course_readiness(info: Info, patient_id: Any) -> list[CourseReadiness]:
    """Through the gate (not found for a patient the user may not see, and for portal users):
    one record_read, then each open course's readiness (patients.dashboard)."""
    user = user_of(info)
    if is_portal_user(user):
        raise NotFoundError()
    patient = _Services.call(
        lambda: selectors.patient_get_for_user(user=user, patient_id=patient_id)
    )
    return open_course_readiness(patient=patient, at=timezone.now())


# --- Mutations ----------------------------------------------------------------------------


def _patient_to_change(info: Info, patient_id: Any) -> Patient:
    """The patient a mutation writes to, through the gate with change permission."""
    return _Services.call(
        lambda: selectors.patient_get_for_user(
            user=user_of(info), patient_id=patient_id, perm=selectors.CHANGE
        )
    )


def _cycle(info: Info, patient_id: Any, cycle_id: Any) -> Any:
    return _Services.call(
        lambda: selectors.cycle_get_for_user(
            user=user_of(info), patient_id=patient_id, cycle_id=cycle_id, perm=selectors.CHANGE
        )
    )


@strawberry.type
class Mutation:
    @strawberry.mutation
    def give_cycle(
        self,
        info: Info,
        patient_id: strawberry.ID,
        cycle_id: strawberry.ID,
        actual_start: dt.date,
        seen_version: str,
        override_reason: str = "",
    ) -> ChemoCycleType:
        """Give a cycle; overrideReason is required when the pre-cycle check says otherwise.
        seenVersion is the cycle's version as last read: a changed cycle is refused. A held
        cycle is released only by an oncologist or a non-medical prescriber, a cycle against
        the check given only by an oncologist (FORBIDDEN otherwise)."""
        cycle = _cycle(info, patient_id, cycle_id)
        return _Services.call(
            lambda: treatment_services.cycle_give(
                cycle=cycle,
                actual_start=actual_start,
                given_by=user_of(info),
                override_reason=override_reason,
                seen_version=seen_version,
            )
        )  # type: ignore[return-value]

    @strawberry.mutation
    def delay_cycle(
        self,
        info: Info,
        patient_id: strawberry.ID,
        cycle_id: strawberry.ID,
        reason: str,
        seen_version: str,
        days: int | None = None,
        new_start: dt.date | None = None,
    ) -> ChemoCycleType:
        """Delay a cycle (days or newStart) and the later ones with it. A held cycle is delayed
        only by an oncologist or a non-medical prescriber (FORBIDDEN otherwise)."""
        cycle = _cycle(info, patient_id, cycle_id)
        return _Services.call(
            lambda: treatment_services.cycle_delay(
                cycle=cycle,
                reason=reason,
                by=user_of(info),
                days=days,
                new_start=new_start,
                seen_version=seen_version,
            )
        )  # type: ignore[return-value]

    @strawberry.mutation
    def hold_cycle(
        self,
        info: Info,
        patient_id: strawberry.ID,
        cycle_id: strawberry.ID,
        reason: str,
        seen_version: str,
    ) -> ChemoCycleType:
        cycle = _cycle(info, patient_id, cycle_id)
        return _Services.call(
            lambda: treatment_services.cycle_hold(
                cycle=cycle, reason=reason, by=user_of(info), seen_version=seen_version
            )
        )  # type: ignore[return-value]

    @strawberry.mutation
    def record_side_effect(
        self,
        info: Info,
        patient_id: strawberry.ID,
        term_id: strawberry.ID,
        grade: int,
        onset: dt.date,
        cycle_id: strawberry.ID | None = None,
        description: str = "",
    ) -> SideEffectType:
        user = user_of(info)
        patient = _patient_to_change(info, patient_id)
        # A cycle of another patient is the gate's "not found", never a cross-patient link.
        cycle = _cycle(info, patient.pk, cycle_id) if cycle_id is not None else None
        term = CtcaeTerm.objects.filter(pk=int(term_id) if str(term_id).isdigit() else 0).first()
        if term is None:
            raise InputError({"term": ["Unknown CTCAE term: look it up with ctcaeTerms."]})
        return _Services.call(
            lambda: treatment_services.side_effect_record(
                patient=patient,
                term=term,
                grade=grade,
                onset=onset,
                recorded_by=user,
                cycle=cycle,
                description=description,
            )
        )  # type: ignore[return-value]

    @strawberry.mutation
    def register_patient(
        self,
        info: Info,
        mrn: str,
        given_name: str,
        family_name: str,
        date_of_birth: dt.date,
        sex: str,
        care_team_id: strawberry.ID | None = None,
        phone: str = "",
        email: str = "",
        address: str = "",
        medical_history: str = "",
        primary_diagnosis: str = "",
        icd10_code: str = "",
        stage: str = "",
        diagnosed_on: dt.date | None = None,
        ecog: int | None = None,
    ) -> PatientType:
        """Register a patient on one of your own care teams: the service and rules of the
        registration page and POST /api/v1/patients. Clinicians only ("not found" for anyone
        else); careTeamId may be left out by a clinician on exactly one team; a team that is
        not yours, an MRN already registered or a bad field is an error naming the field."""
        user = user_of(info)
        return _Services.call(
            lambda: patient_services.patient_register_on_team_id(
                registered_by=user,
                care_team_id=care_team_id,
                mrn=mrn,
                given_name=given_name,
                family_name=family_name,
                date_of_birth=date_of_birth,
                sex=sex,
                phone=phone,
                email=email,
                address=address,
                medical_history=medical_history,
                primary_diagnosis=primary_diagnosis,
                icd10_code=icd10_code,
                stage=stage,
                diagnosed_on=diagnosed_on,
                ecog=ecog,
            )
        )  # type: ignore[return-value]

    @strawberry.mutation
    def record_measurement(
        self,
        info: Info,
        patient_id: strawberry.ID,
        measured_on: dt.date,
        weight_kg: Decimal | None = None,
        height_cm: Decimal | None = None,
        confirm_change: bool = False,
    ) -> BodyMeasurementType:
        """A weight (and a height when measured): the same service and rules as the chart,
        including the confirmation of a value far from the last one (confirmChange)."""
        user = user_of(info)
        patient = _patient_to_change(info, patient_id)
        return _Services.call(
            lambda: patient_services.measurement_record(
                patient=patient,
                measured_on=measured_on,
                height_cm=height_cm,
                weight_kg=weight_kg,
                recorded_by=user,
                confirm_change=confirm_change,
            )
        )  # type: ignore[return-value]

    @strawberry.mutation
    def record_lab_result(
        self,
        info: Info,
        patient_id: strawberry.ID,
        loinc: str,
        value: str,
        unit: str,
        collected_at: dt.datetime,
        note: str = "",
        confirm_change: bool = False,
    ) -> LabResultType:
        """Record a result; a value far from the previous one (the delta check) is recorded
        only with confirmChange."""
        user = user_of(info)
        patient = _patient_to_change(info, patient_id)
        test = LabTest.objects.filter(loinc=loinc).first()
        if test is None:
            raise InputError({"test": ["Unknown LOINC code."]})
        return _Services.call(
            lambda: lab_services.lab_result_record(
                patient=patient,
                test=test,
                value=value,
                unit=unit,
                collected_at=collected_at,
                recorded_by=user,
                note=note,
                confirm_change=confirm_change,
            )
        )  # type: ignore[return-value]

    @strawberry.mutation
    def acknowledge_lab_result(
        self, info: Info, patient_id: strawberry.ID, lab_result_id: strawberry.ID, note: str
    ) -> LabResultType:
        user = user_of(info)
        result = _Services.call(
            lambda: selectors.lab_result_get_for_user(
                user=user, patient_id=patient_id, lab_result_id=lab_result_id, perm=selectors.CHANGE
            )
        )
        return _Services.call(
            lambda: lab_services.lab_result_acknowledge(result=result, by=user, note=note)
        )  # type: ignore[return-value]

    @strawberry.mutation
    def acknowledge_side_effect(
        self, info: Info, patient_id: strawberry.ID, side_effect_id: strawberry.ID, note: str
    ) -> SideEffectType:
        user = user_of(info)
        side_effect = _Services.call(
            lambda: selectors.side_effect_get_for_user(
                user=user,
                patient_id=patient_id,
                side_effect_id=side_effect_id,
                perm=selectors.CHANGE,
            )
        )
        return _Services.call(
            lambda: treatment_services.side_effect_acknowledge(
                side_effect=side_effect, by=user, note=note
            )
        )  # type: ignore[return-value]


# --- Protections --------------------------------------------------------------------------


class ProductionGuards(SchemaExtension):
    """Outside DEBUG: no introspection, and no "Did you mean ...?" hints in error messages
    (both map the schema for a prober). Decided per operation, so tests can flip DEBUG."""

    def on_operation(self) -> Iterator[None]:
        production = not settings.DEBUG
        if production:
            self.execution_context.validation_rules = (
                *self.execution_context.validation_rules,
                NoSchemaIntrospectionCustomRule,
            )
        yield
        result = self.execution_context.result
        if production and result is not None and getattr(result, "errors", None):
            for error in result.errors:
                error.message = _SUGGESTION.sub("", error.message)


def _should_mask(error: GraphQLError) -> bool:
    # Errors we raise on purpose (not found, field errors) and validation errors (no original
    # error) are shown; anything else is an unexpected failure and is masked.
    original = error.original_error
    return original is not None and not isinstance(
        original, (NotFoundError, InputError, ForbiddenError)
    )


# The limiters' rule classes are built once: each limiter instance makes new classes, and the
# validation cache is keyed by the rules, so per-request classes would never hit it.
_LIMIT_RULES = [
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
]

schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    extensions=[
        lambda: AddValidationRules(_LIMIT_RULES),
        ProductionGuards,
        # Clients send the same few documents again and again, and parsing and validating one
        # took several ms of each request. Both caches are bounded LRUs (128 documents), keyed
        # by the text, resp. the document and the rules in force (DEBUG's rules differ).
        ParserCache,
        ValidationCache,
        lambda: MaskErrors(should_mask_error=_should_mask),
        DjangoOptimizerExtension,
    ],
)


class OncoGraphQLView(GraphQLView):
    def render_graphql_ide(self, request: HttpRequest) -> HttpResponse:
        # The playground is a development tool: in production /graphql/ GET is a 404.
        if not settings.DEBUG:
            raise Http404("No GraphQL playground.")
        return render(request, "graphql/graphiql.html")


graphql_view = login_required(
    OncoGraphQLView.as_view(
        schema=schema,
        # Queries over POST only: a GET with a query would bypass CSRF and put the query (and
        # the ids in it) in server and proxy logs. GET serves the playground in development.
        allow_queries_via_get=False,
        graphql_ide="graphiql",
    )
)
