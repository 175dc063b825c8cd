"""REST routes for the lab catalogue and lab results (/api/v1/).

Results only through patients.selectors (lab_results_for, lab_result_get_for_user,
portal_lab_results_for); writes only through labs.services. The list filters and sort keys are
declared here and nowhere else: any other query key is a 400 (oncoplanner.api.StrictQuery), so
no caller can filter or sort on a relation (`?sort=patient__user__password`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db.models import F
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Router, Schema, Status
from pydantic import Field

from labs import services
from labs.models import Flag, LabResult, LabTest
from oncoplanner.api import (
    ERRORS,
    InputSchema,
    Limit,
    Offset,
    Page,
    StrictQuery,
    clinical_user,
    log_list,
    no_query,
    page_of,
    page_response,
    user_of,
)
from patients.selectors import (
    CHANGE,
    lab_result_get_for_user,
    lab_results_for,
    patient_get_for_user,
    portal_lab_results_for,
)

router = Router(tags=["labs"])


class LabTestOut(Schema):
    id: int
    loinc: str
    name: str
    short_name: str
    unit: str
    ref_low: Decimal | None
    ref_high: Decimal | None
    critical_low: Decimal | None
    critical_high: Decimal | None
    decimal_places: int
    is_tumour_marker: bool
    range_source: str


class LabResultOut(Schema):
    id: int
    patient_id: int
    test_id: int
    loinc: str
    value: Decimal = Field(description="In the test's unit (`unit`), whatever the lab sent.")
    unit: str
    reported_value: Decimal | None = Field(
        description="As the lab reported it, when that was another accepted unit "
        "(g/L for g/dL; umol/L for creatinine or bilirubin in mg/dL)."
    )
    reported_unit: str = Field(description="The unit the lab reported in; empty if `unit`.")
    collected_at: dt.datetime
    ref_low: Decimal | None
    ref_high: Decimal | None
    critical_low: Decimal | None
    critical_high: Decimal | None
    flag: str
    is_released: bool
    acknowledged_at: dt.datetime | None
    acknowledgement_note: str
    source: str
    note: str
    entered_in_error_at: dt.datetime | None = Field(
        description="Set when the result was marked entered in error: it then no longer "
        "appears in lists nor counts anywhere (only the marking's own answer shows it)."
    )
    entered_in_error_reason: str

    @staticmethod
    def resolve_loinc(obj: LabResult) -> str:
        return obj.test.loinc


class PortalLabResultOut(Schema):
    id: int
    test: str
    loinc: str
    value: Decimal
    unit: str
    collected_at: dt.datetime
    ref_low: Decimal | None
    ref_high: Decimal | None
    flag: str

    @staticmethod
    def resolve_test(obj: LabResult) -> str:
        return obj.test.name

    @staticmethod
    def resolve_loinc(obj: LabResult) -> str:
        return obj.test.loinc


class LabResultIn(InputSchema):
    """Server-owned fields (patient, flag, ranges, release, recorded_by) are not inputs: the
    patient comes from the path, the rest from the service."""

    test_id: int
    value: Decimal = Field(ge=0, max_digits=12, decimal_places=4, allow_inf_nan=False)
    unit: str = Field(
        min_length=1,
        max_length=30,
        description="UCUM: the test's unit or one converted to it: an exact equivalent "
        "(g/L for g/dL) or, for creatinine and total bilirubin, umol/L (by the analyte's "
        "molar mass, rounded to the precision reported). Any other unit is a 400 on `unit` "
        "listing the units the test accepts.",
    )
    collected_at: dt.datetime
    note: str = Field("", max_length=2000)
    confirm_change: bool = Field(
        False,
        description="Record a value far from the previous result of the test within 7 days "
        "(asked with a 400 of type confirmation_required on `value`).",
    )


class NoteIn(InputSchema):
    note: str = Field(min_length=1, max_length=2000)


class EnteredInErrorIn(InputSchema):
    reason: str = Field(
        min_length=1, max_length=2000, description="What was wrong, in a few words."
    )


# The declared filters and sort keys of the result list; nothing else is accepted.
TestFilter = StrictQuery(None, description="Lab test id.")
LoincFilter = StrictQuery(None, max_length=10, pattern=r"^\d{1,7}-\d$", description="LOINC code.")
FromFilter = StrictQuery(None, alias="from", description="Collected at or after (ISO 8601).")
ToFilter = StrictQuery(None, alias="to", description="Collected at or before (ISO 8601).")
FlagFilter = StrictQuery(None, description="FHIR interpretation flag.")
SortKey = StrictQuery("-collected_at", description="collected_at or -collected_at.")


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and timezone.is_naive(value):
        return timezone.make_aware(value)
    return value


# --- Catalogue (reference data, not PHI) -----------------------------------------------------


@router.get("/lab-tests", response={200: Page[LabTestOut], **ERRORS})
def lab_test_list(request: HttpRequest, limit: int = Limit, offset: int = Offset) -> dict[str, Any]:
    clinical_user(request)
    count, rows = page_of(LabTest.objects.order_by("name", "pk"), limit=limit, offset=offset)
    return {"count": count, "limit": limit, "offset": offset, "items": rows}


@router.get("/lab-tests/{lab_test_id}", response={200: LabTestOut, **ERRORS})
def lab_test_detail(request: HttpRequest, lab_test_id: int) -> LabTest:
    no_query(request)
    clinical_user(request)
    test = LabTest.objects.filter(pk=lab_test_id).first()
    if test is None:
        raise Http404("Not found.")
    return test


# --- Results ----------------------------------------------------------------------------------


@router.get("/patients/{patient_id}/lab-results", response={200: Page[LabResultOut], **ERRORS})
def lab_result_list(
    request: HttpRequest,
    patient_id: int,
    limit: int = Limit,
    offset: int = Offset,
    test: int | None = TestFilter,
    loinc: str | None = LoincFilter,
    collected_from: dt.datetime | None = FromFilter,
    collected_to: dt.datetime | None = ToFilter,
    flag: Flag | None = FlagFilter,
    sort: Literal["collected_at", "-collected_at"] = SortKey,
) -> HttpResponse:
    """A patient's results (released or not), newest first unless sorted otherwise."""
    results = lab_results_for(user=clinical_user(request), patient_id=patient_id)
    if test is not None:
        results = results.filter(test_id=test)
    if loinc is not None:
        results = results.filter(test__loinc=loinc)
    if collected_from is not None:
        results = results.filter(collected_at__gte=_aware(collected_from))
    if collected_to is not None:
        results = results.filter(collected_at__lte=_aware(collected_to))
    if flag is not None:
        results = results.filter(flag=flag.value)
    results = results.order_by(sort, "-pk" if sort.startswith("-") else "pk")
    return page_response(LabResultOut, results, limit=limit, offset=offset, loinc=F("test__loinc"))


@router.post("/patients/{patient_id}/lab-results", response={201: LabResultOut, **ERRORS})
def lab_result_create(
    request: HttpRequest, patient_id: int, payload: LabResultIn
) -> Status[LabResult]:
    """Record a result (lab_result_record): the flag and the ranges that applied are computed."""
    no_query(request)
    user = clinical_user(request)
    patient = patient_get_for_user(user=user, patient_id=patient_id, perm=CHANGE)
    test = LabTest.objects.filter(pk=payload.test_id).first()
    if test is None:
        raise ValidationError({"test_id": "No such lab test."})
    result = services.lab_result_record(
        patient=patient,
        test=test,
        value=payload.value,
        unit=payload.unit,
        collected_at=payload.collected_at,
        recorded_by=user,
        source=LabResult.Source.API,
        note=payload.note,
        confirm_change=payload.confirm_change,
    )
    return Status(201, result)


@router.get(
    "/patients/{patient_id}/lab-results/{lab_result_id}", response={200: LabResultOut, **ERRORS}
)
def lab_result_detail(request: HttpRequest, patient_id: int, lab_result_id: int) -> LabResult:
    no_query(request)
    return lab_result_get_for_user(
        user=clinical_user(request), patient_id=patient_id, lab_result_id=lab_result_id
    )


@router.post(
    "/patients/{patient_id}/lab-results/{lab_result_id}/acknowledge",
    response={200: LabResultOut, **ERRORS},
)
def lab_result_acknowledge(
    request: HttpRequest, patient_id: int, lab_result_id: int, payload: NoteIn
) -> LabResult:
    """Acknowledge a critical (LL/HH) result: who, when, what was done."""
    no_query(request)
    user = clinical_user(request)
    result = lab_result_get_for_user(
        user=user, patient_id=patient_id, lab_result_id=lab_result_id, perm=CHANGE
    )
    return services.lab_result_acknowledge(result=result, by=user, note=payload.note)


@router.post(
    "/patients/{patient_id}/lab-results/{lab_result_id}/entered-in-error",
    response={200: LabResultOut, **ERRORS},
)
def lab_result_entered_in_error(
    request: HttpRequest, patient_id: int, lab_result_id: int, payload: EnteredInErrorIn
) -> LabResult:
    """Mark a result entered in error, with a reason: kept on record, counted nowhere after."""
    no_query(request)
    user = clinical_user(request)
    result = lab_result_get_for_user(
        user=user, patient_id=patient_id, lab_result_id=lab_result_id, perm=CHANGE
    )
    return services.lab_result_mark_entered_in_error(result=result, by=user, reason=payload.reason)


# --- Portal -----------------------------------------------------------------------------------


@router.get("/me/lab-results", response={200: Page[PortalLabResultOut], **ERRORS}, tags=["me"])
def my_lab_results(
    request: HttpRequest, limit: int = Limit, offset: int = Offset
) -> dict[str, Any]:
    """A patient's own released results, newest first: 404 for anyone but a patient user."""
    results = (
        portal_lab_results_for(user=user_of(request))
        .select_related("patient")
        .order_by("-collected_at", "-pk")
    )
    count, rows = page_of(results, limit=limit, offset=offset)
    if rows:
        log_list(LabResult, [rows[0].patient])
    return {"count": count, "limit": limit, "offset": offset, "items": rows}
