"""REST routes for patients, the current user and readiness for the next cycle (/api/v1/).

Patient data only through patients.selectors; writes only through patients.services.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Router, Schema, Status
from pydantic import Field

from oncoplanner.api import (
    ERRORS,
    InputSchema,
    Limit,
    Offset,
    Page,
    PatchSchema,
    clinical_user,
    log_list,
    no_query,
    page_of,
    patch_field,
    user_of,
)
from patients.dashboard import open_course_readiness
from patients.fhir import patient_fhir_bundle
from patients.models import Allergy, BodyMeasurement, Patient
from patients.selectors import (
    CHANGE,
    allergy_banner_for,
    allergy_get_for_user,
    children_for,
    patient_get_for_user,
    patient_list_visible_to,
    portal_patient_for,
)
from patients.services import (
    allergy_mark_entered_in_error,
    allergy_record,
    measurement_record,
    patient_no_known_allergies_record,
    patient_register_on_team_id,
    patient_update,
)

router = Router(tags=["patients"])


class MeasurementOut(Schema):
    id: int
    patient_id: int
    measured_on: dt.date
    height_cm: Decimal | None
    weight_kg: Decimal | None
    recorded_by_id: int | None


class MeasurementIn(InputSchema):
    """A weight, a height or both (doses are computed from the latest of each)."""

    measured_on: dt.date
    height_cm: Decimal | None = Field(
        None, ge=30, le=260, max_digits=5, decimal_places=1, allow_inf_nan=False
    )
    weight_kg: Decimal | None = Field(
        None, ge=1, le=400, max_digits=5, decimal_places=1, allow_inf_nan=False
    )
    confirm_change: bool = Field(
        False,
        description="A value far from the last one on record is refused (400 naming it) "
        "until it is sent again with confirm_change true: most such changes are typos.",
    )


class AllergyOut(Schema):
    id: int
    patient_id: int
    substance: str
    drug_id: int | None = Field(description="The formulary drug, when the substance is one.")
    category: str
    reaction: str
    severity: str = Field(description='mild, moderate, severe, or "" when not known.')
    recorded_by_id: int
    recorded_at: dt.datetime
    entered_in_error_at: dt.datetime | None = Field(
        description="Set once marked entered in error: the entry is then kept on record but "
        "no longer listed (only the marking's own answer shows it)."
    )
    entered_in_error_reason: str


class AllergyListOut(Schema):
    patient_id: int
    status: str = Field(
        description='"allergies" (items listed), "none_known" (a clinician recorded no known '
        'allergies: who and when below) or "not_recorded" (nobody has recorded either).'
    )
    no_known_allergies_at: dt.datetime | None
    no_known_allergies_by_id: int | None
    items: list[AllergyOut]


class AllergyIn(InputSchema):
    """An allergy or intolerance. The substance is required unless drug_id names a formulary
    drug; a medication named like a formulary drug is linked to it."""

    substance: str = Field("", max_length=200)
    drug_id: int | None = Field(None, ge=1, le=2**31 - 1)
    category: Allergy.Category = Allergy.Category.MEDICATION
    reaction: str = Field("", max_length=300)
    severity: Allergy.Severity | None = Field(
        None, description="Of the reaction; leave out when not known (needs a reaction)."
    )


class AllergyEnteredInErrorIn(InputSchema):
    reason: str = Field(min_length=1, max_length=500)


class MeOut(Schema):
    id: int
    username: str
    first_name: str
    last_name: str
    role: str
    discipline: str
    patient_id: int | None = None


class PatientOut(Schema):
    id: int
    mrn: str
    given_name: str
    family_name: str
    date_of_birth: dt.date
    sex: str
    phone: str
    email: str
    address: str
    medical_history: str
    primary_diagnosis: str
    icd10_code: str
    stage: str
    diagnosed_on: dt.date | None
    ecog: int | None
    care_team_id: int | None
    updated_at: dt.datetime


class PatientIn(InputSchema):
    """A new patient, on one of the caller's own care teams: the rules of the registration
    page (/patients/new/), through the same service. Text is stored without surrounding
    spaces, the MRN and ICD-10 code in capitals."""

    mrn: str = Field(
        min_length=1,
        max_length=20,
        description="Medical record number, unique in this clinic: 4-20 letters, digits or "
        "dashes. An MRN already registered is a 400 naming mrn.",
    )
    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    date_of_birth: dt.date
    sex: Patient.Sex
    phone: str = Field("", max_length=30)
    email: str = Field("", max_length=254)
    address: str = Field("", max_length=2000)
    medical_history: str = Field("", max_length=20000)
    primary_diagnosis: str = Field("", max_length=200)
    icd10_code: str = Field("", max_length=10)
    stage: str = Field("", max_length=40)
    diagnosed_on: dt.date | None = Field(
        None,
        description="When the primary cancer was diagnosed (null or left out: not recorded). "
        "A date in the future or before date_of_birth is a 400 naming diagnosed_on.",
    )
    ecog: int | None = Field(None, ge=0, le=4, description="null or left out: not assessed.")
    care_team_id: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="One of your own care teams (its members will see the chart). May be left "
        "out when you are on exactly one. Any other id is a 400 naming care_team_id.",
    )


class PatientUpdateIn(PatchSchema):
    """Fields a clinician may change; identity (MRN), care team and portal link are not here.

    A field left out is kept. null is refused (400 naming the field): text that may be
    empty is cleared with "", names, date of birth and sex cannot be cleared. ECOG and the date
    of diagnosis, whose empty value is null, are the fields cleared with null."""

    given_name: str = patch_field(min_length=1, max_length=100)
    family_name: str = patch_field(min_length=1, max_length=100)
    date_of_birth: dt.date = patch_field()
    sex: Patient.Sex = patch_field()
    phone: str = patch_field(max_length=30)
    email: str = patch_field(max_length=254)
    address: str = patch_field(max_length=2000)
    medical_history: str = patch_field(max_length=20000)
    primary_diagnosis: str = patch_field(max_length=200)
    icd10_code: str = patch_field(max_length=10)
    stage: str = patch_field(max_length=40)
    diagnosed_on: dt.date | None = Field(
        None,
        description="When the primary cancer was diagnosed. Leave out to keep it; null clears "
        "it (not recorded). A date in the future or before date_of_birth is a 400 naming "
        "diagnosed_on, nothing written.",
    )
    ecog: int | None = Field(
        None, ge=0, le=4, description="Leave out to keep it; null clears it (not assessed)."
    )
    confirm_dose_input_change: bool = Field(
        False,
        description="A new date_of_birth or sex changes carboplatin doses and the reference "
        "ranges results are flagged against: without this true it is a 400 of type "
        "confirmation_required naming the field, nothing written.",
    )


class AnalyteOut(Schema):
    test_id: int
    test: str
    loinc: str
    outcome: str
    outcome_label: str
    result_id: int | None
    explanation: str
    in_hand: str | None = Field(
        None,
        description="For a result recent enough today but too old by the cycle day: what "
        "its rules say of it now (e.g. delay). Not null only then.",
    )


class ReadinessOut(Schema):
    course_id: int
    regimen: str
    cycle_day: dt.date | None  # the next cycle's planned day: results are judged for it
    judged_at: dt.datetime
    outcome: str
    outcome_label: str
    ok_to_treat: bool
    labs_due: bool  # a cycle still to come whose pre-cycle labs are not drawn yet
    dose_percent: int | None
    delay_days: int | None
    analytes: list[AnalyteOut]
    cycle_number: int | None = Field(
        None,
        description="The number of the course's next cycle still to give (the one judged); "
        "null when none is left (the course is then judged now).",
    )
    badge: str = Field(
        "",
        description='The outcome as the dashboard\'s badge says it: "Treat", "Treat 80%", '
        '"Labs due", "Not evaluable", "Hold", …',
    )
    reason: str = Field(
        "",
        description="The first reason the cycle cannot go ahead as planned (the explanation "
        'of the analyte behind the outcome); "" when it is OK to treat.',
    )


class PatientReadinessOut(Schema):
    patient_id: int
    at: dt.datetime
    courses: list[ReadinessOut] = Field(
        description="Every open course, the one whose next cycle is due first at the head "
        "(the one the dashboard shows in full), then the others by their next cycle's day; "
        "an open course with no cycle left to give comes last."
    )


@router.get("/me", response={200: MeOut, **ERRORS}, tags=["me"])
def me(request: HttpRequest) -> MeOut:
    """The signed-in user (and, for a patient, the id of their own record)."""
    no_query(request)
    user = user_of(request)
    patient_id = portal_patient_for(user=user).pk if user.is_patient_user else None
    return MeOut(
        id=user.pk,
        username=user.username,
        first_name=user.first_name,
        last_name=user.last_name,
        role=user.role,
        discipline=user.discipline,
        patient_id=patient_id,
    )


@router.get("/patients", response={200: Page[PatientOut], **ERRORS})
def patient_list(
    request: HttpRequest,
    limit: int = Limit,
    offset: int = Offset,
) -> dict[str, object]:
    """Patients of the caller's care teams (and open break-glass grants), by family name.

    Clinicians only, like the patient list page: an administrator's list would be empty, and a
    404 says plainly that this is not their door."""
    user = clinical_user(request)
    if not user.is_clinician:
        raise Http404("Not found.")
    queryset = patient_list_visible_to(user=user).order_by("family_name", "given_name", "pk")
    count, rows = page_of(queryset, limit=limit, offset=offset)
    log_list(Patient, rows)
    return {"count": count, "limit": limit, "offset": offset, "items": rows}


def _care_team_named_as_sent(error: DjangoValidationError) -> DjangoValidationError:
    """The service names the team "care_team"; this door's field is care_team_id."""
    if not hasattr(error, "error_dict"):
        return error
    return DjangoValidationError(
        {
            ("care_team_id" if name == "care_team" else name): messages
            for name, messages in error.error_dict.items()
        }
    )


@router.post("/patients", response={201: PatientOut, **ERRORS})
def patient_create(request: HttpRequest, payload: PatientIn) -> Status[Patient]:
    """Register a patient on one of your own care teams, as the registration page does
    (patients.services.patient_register). Clinicians only (404 for anyone else); 400 naming
    the field for a care team that is not yours (or none chosen while you are on several),
    an MRN already registered, a date of birth in the future or more than 120 years ago;
    nothing is written then. The new chart is the caller's team's at once; the create is in
    the access log."""
    no_query(request)
    user = clinical_user(request)
    try:
        patient = patient_register_on_team_id(registered_by=user, **payload.model_dump())
    except DjangoValidationError as error:
        raise _care_team_named_as_sent(error) from None
    return Status(201, patient)


@router.get("/patients/{patient_id}", response={200: PatientOut, **ERRORS})
def patient_detail(request: HttpRequest, patient_id: int) -> Patient:
    no_query(request)
    return patient_get_for_user(user=clinical_user(request), patient_id=patient_id)


@router.patch("/patients/{patient_id}", response={200: PatientOut, **ERRORS})
def patient_patch(request: HttpRequest, patient_id: int, payload: PatientUpdateIn) -> Patient:
    """Change demographic and clinical fields: only those sent. null is refused for every
    field but ecog and diagnosed_on (400 naming it, nothing written); send "" to clear a text
    field."""
    no_query(request)
    user = clinical_user(request)
    patient = patient_get_for_user(user=user, patient_id=patient_id, perm=CHANGE)
    fields = payload.model_dump(exclude_unset=True)
    confirmed = fields.pop("confirm_dose_input_change", False)
    return patient_update(
        patient=patient, updated_by=user, confirm_dose_input_change=confirmed, **fields
    )


@router.get(
    "/patients/{patient_id}/fhir",
    response={200: dict[str, Any], **ERRORS},
    summary="The chart as a FHIR R4 Bundle",
)
def patient_fhir_export(request: HttpRequest, patient_id: int) -> HttpResponse:
    """Patient, lab and vital-sign Observations, a CarePlan per course with its cycles,
    MedicationAdministrations and AdverseEvents (CTCAE), as one FHIR R4 collection Bundle
    (application/fhir+json). Logged as one export."""
    no_query(request)
    bundle = patient_fhir_bundle(user=clinical_user(request), patient_id=patient_id)
    return HttpResponse(json.dumps(bundle), content_type="application/fhir+json")


@router.get("/patients/{patient_id}/measurements", response={200: Page[MeasurementOut], **ERRORS})
def measurement_list(
    request: HttpRequest, patient_id: int, limit: int = Limit, offset: int = Offset
) -> dict[str, Any]:
    """Weights and heights, newest first."""
    _, rows = children_for(BodyMeasurement, user=clinical_user(request), patient_id=patient_id)
    count, items = page_of(rows.order_by("-measured_on", "-pk"), limit=limit, offset=offset)
    return {"count": count, "limit": limit, "offset": offset, "items": items}


@router.post("/patients/{patient_id}/measurements", response={201: MeasurementOut, **ERRORS})
def measurement_create(
    request: HttpRequest, patient_id: int, payload: MeasurementIn
) -> Status[BodyMeasurement]:
    """Record a weight and/or a height. A weight-based dose needs a weight from the last
    DOSING_WEIGHT_MAX_AGE_DAYS days (400 naming weight_kg otherwise)."""
    no_query(request)
    user = clinical_user(request)
    patient = patient_get_for_user(user=user, patient_id=patient_id, perm=CHANGE)
    measurement = measurement_record(
        patient=patient,
        measured_on=payload.measured_on,
        height_cm=payload.height_cm,
        weight_kg=payload.weight_kg,
        recorded_by=user,
        confirm_change=payload.confirm_change,
    )
    return Status(201, measurement)


@router.get("/patients/{patient_id}/readiness", response={200: PatientReadinessOut, **ERRORS})
def patient_readiness(request: HttpRequest, patient_id: int) -> dict[str, object]:
    """Is the patient ready for the next cycle? For each open course, the pre-cycle rules of
    its regimen against the latest results (labs.services.precycle_evaluate), judged for its
    next cycle's planned day: a result must still be fresh on the day of the cycle. The
    course due first leads, as on the dashboard (patients.dashboard.open_course_readiness)."""
    no_query(request)
    from treatments.models import Course

    user = clinical_user(request)
    patient, _ = children_for(Course, user=user, patient_id=patient_id)
    now = timezone.now()
    out = []
    for row in open_course_readiness(patient=patient, at=now):
        assessment = row.assessment
        out.append(
            {
                "course_id": row.course.pk,
                "regimen": str(row.course.regimen),
                "cycle_day": row.cycle_day,
                "cycle_number": row.cycle_number,
                "judged_at": assessment.at,
                "outcome": assessment.outcome,
                "outcome_label": assessment.outcome_label,
                "ok_to_treat": assessment.ok_to_treat,
                "labs_due": assessment.labs_due,
                "dose_percent": assessment.dose_percent,
                "delay_days": assessment.delay_days,
                "badge": row.badge.label,
                "reason": row.reason,
                "analytes": [
                    {
                        "test_id": a.test.pk,
                        "test": a.test.name,
                        "loinc": a.test.loinc,
                        "outcome": a.outcome,
                        "outcome_label": a.outcome_label,
                        "result_id": a.result.pk if a.result else None,
                        "explanation": a.explanation,
                        "in_hand": a.in_hand,
                    }
                    for a in assessment.analytes
                ],
            }
        )
    return {"patient_id": patient.pk, "at": now, "courses": out}


def _allergy_list(patient: Patient) -> dict[str, Any]:
    banner = allergy_banner_for(patient=patient)
    return {
        "patient_id": patient.pk,
        "status": banner.state,
        "no_known_allergies_at": banner.no_known_at,
        "no_known_allergies_by_id": patient.no_known_allergies_by_id
        if banner.no_known_at
        else None,
        "items": banner.allergies,
    }


@router.get("/patients/{patient_id}/allergies", response={200: AllergyListOut, **ERRORS})
def allergy_list(request: HttpRequest, patient_id: int) -> dict[str, Any]:
    """Current allergies (severe first), or whether "no known allergies" was recorded (and by
    whom), or that nobody has recorded either. Entries entered in error are left out."""
    no_query(request)
    patient, _ = children_for(Allergy, user=clinical_user(request), patient_id=patient_id)
    return _allergy_list(patient)


@router.post("/patients/{patient_id}/allergies", response={201: AllergyOut, **ERRORS})
def allergy_create(request: HttpRequest, patient_id: int, payload: AllergyIn) -> Status[Allergy]:
    """Record an allergy (clears a "no known allergies" statement). 400 naming the field:
    no substance, the same substance already listed, a severity without a reaction."""
    no_query(request)
    user = clinical_user(request)
    patient = patient_get_for_user(user=user, patient_id=patient_id, perm=CHANGE)
    drug = None
    if payload.drug_id is not None:
        from treatments.models import Drug  # reference data, not PHI

        drug = Drug.objects.filter(pk=payload.drug_id).first()
        if drug is None:
            raise DjangoValidationError({"drug_id": "No drug in the formulary has this id."})
    allergy = allergy_record(
        patient=patient,
        substance=payload.substance,
        drug=drug,
        category=payload.category,
        reaction=payload.reaction,
        severity=payload.severity or "",
        recorded_by=user,
    )
    return Status(201, allergy)


@router.post(
    "/patients/{patient_id}/allergies/none-known", response={200: AllergyListOut, **ERRORS}
)
def allergy_none_known(request: HttpRequest, patient_id: int) -> dict[str, Any]:
    """Record that the patient has no known allergies (asked, none): who and when. 400 naming
    no_known_allergies while an allergy is listed."""
    no_query(request)
    user = clinical_user(request)
    patient = patient_get_for_user(user=user, patient_id=patient_id, perm=CHANGE)
    patient = patient_no_known_allergies_record(patient=patient, recorded_by=user)
    return _allergy_list(patient)


@router.post(
    "/patients/{patient_id}/allergies/{allergy_id}/entered-in-error",
    response={200: AllergyOut, **ERRORS},
)
def allergy_entered_in_error(
    request: HttpRequest, patient_id: int, allergy_id: int, payload: AllergyEnteredInErrorIn
) -> Allergy:
    """Mark an allergy entered in error, with a reason: kept on record, listed nowhere after."""
    no_query(request)
    user = clinical_user(request)
    allergy = allergy_get_for_user(
        user=user, patient_id=patient_id, allergy_id=allergy_id, perm=CHANGE
    )
    return allergy_mark_entered_in_error(allergy=allergy, by=user, reason=payload.reason)
