"""REST routes for regimens, courses, cycles (and their actions), administrations, dose
modifications and side effects (/api/v1/).

Patient data only through patients.selectors (404 for what the caller may not see, the read
logged); writes only through treatments.services. Foreign keys in a body (a cycle, a drug, a
verifier) are looked up under the patient in the path, so another patient's record cannot be
linked: it is a 400 naming the field, exactly like a missing one.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field, SecretStr

from labs.models import PreCycleRule
from oncoplanner.accounts.cosign import colleague_cosign
from oncoplanner.accounts.models import User
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
    user_of,
)
from patients.selectors import (
    CHANGE,
    children_for,
    course_get_for_user,
    cycle_get_for_user,
    patient_on_care_team_of,
    portal_patient_for,
    side_effect_get_for_user,
)
from treatments import services
from treatments.models import (
    Administration,
    ChemoCycle,
    Course,
    CtcaeTerm,
    DoseModification,
    DoseVerification,
    Drug,
    Intent,
    Regimen,
    RegimenDrug,
    SideEffect,
)
from treatments.schedule import UNIT_CLOSURE, public_holiday
from treatments.selectors import ctcae_term_grades, ctcae_terms_matching

router = Router(tags=["treatments"])

Text = Field(min_length=1, max_length=2000)
TermSearch = StrictQuery(
    "", max_length=100, description="Part of a term or category (case-insensitive)."
)


# --- Schemas ----------------------------------------------------------------------------------


class RegimenDrugOut(Schema):
    id: int
    drug_id: int
    drug: str

    @staticmethod
    def resolve_drug(obj: RegimenDrug) -> str:
        return obj.drug.name

    dose: Decimal
    dose_basis: str
    route: str
    days: str
    duration: str
    max_dose_mg: Decimal | None


class SupportiveMedicationOut(Schema):
    id: int
    phase_id: int | None = Field(description="null: every phase of the version.")
    category: str
    medication: str
    dose_route: str = Field(description='As written, e.g. "20 mg PO"; empty: set locally.')
    timing: str
    days: str
    required_before_id: int | None = Field(
        description="The regimen drug it must be given before: recording that drug needs "
        "confirm_premedication."
    )
    source: str
    order: int


class PhaseOut(Schema):
    id: int
    order: int
    name: str
    cycle_length_days: int
    planned_cycles: int
    drugs: list[RegimenDrugOut]


class RuleOut(Schema):
    id: int
    test_id: int
    comparator: str
    value: Decimal
    unit: str
    max_age_days: int
    action: str
    action_percent: int | None
    action_delay_days: int | None
    priority: int
    source: str


class RegimenOut(Schema):
    id: int
    name: str
    version: int
    intent: str
    indication: str
    is_active: bool
    approved_at: dt.datetime | None = Field(
        description="When an oncologist and a pharmacist had both approved this version; null "
        "while it awaits approval. A course starts only on an approved, active version."
    )


class RegimenDetailOut(RegimenOut):
    description: str
    source: str
    phases: list[PhaseOut]
    rules: list[RuleOut]
    supportive_medications: list[SupportiveMedicationOut]


class CourseOut(Schema):
    id: int
    patient_id: int
    regimen_id: int
    start_date: dt.date
    intent: str
    status: str
    stop_reason: str
    stopped_on: dt.date | None
    created_at: dt.datetime
    confirmed_warnings: list[str] = Field(
        description="Warnings the prescriber confirmed to start it (a lifetime limit, an "
        "allergy), word for word."
    )


class CourseIn(InputSchema):
    regimen_id: int
    start_date: dt.date
    intent: Intent
    confirm_past_start: bool = Field(
        False,
        description="A start more than COURSE_START_MAX_DAYS_AGO days ago is refused (400 "
        "naming start_date) until sent again with this true: most are mistyped years.",
    )
    confirm_lifetime_limit: bool = Field(
        False,
        description="Start a plan that takes a drug past its lifetime limit; without it such a "
        "plan is a 400 of type confirmation_required naming regimen_id.",
    )
    confirm_allergy: bool = Field(
        False,
        description="Start a regimen with a drug the patient has a recorded allergy to; "
        "without it that is a 400 of type confirmation_required.",
    )
    confirm_concurrent_course: bool = Field(
        False,
        description="Start a course while the patient has another open course (both plans are "
        "given in full); without it that is a 400 of type confirmation_required.",
    )
    confirm_reason: str = Field(
        "",
        max_length=1000,
        description="With confirm_allergy or confirm_concurrent_course: why, in the "
        "prescriber's words (at least 10 characters); kept on the course.",
    )


# What closes the day unit on a cycle's planned day 1 (treatments.schedule's kinds, by name): a
# client styles a unit's own closure apart from a public holiday or a weekend.
ClosedDayKind = Literal["unit_closure", "public_holiday", "weekend"]


class CycleOut(Schema):
    id: int
    course_id: int
    phase_id: int
    number: int
    planned_start: dt.date
    actual_start: dt.date | None
    end_date: dt.date | None
    status: str
    reason: str
    status_changed_at: dt.datetime | None
    given_despite: str = Field(description="What the pre-cycle check said when given anyway.")
    override_reason: str
    version: str = Field(
        description="Changes with every change to the cycle: send it back as seen_version."
    )
    closed_day: str = Field(
        description="For a cycle still to give, why the day unit may be closed on its planned "
        'day 1: the reason of a closure the unit recorded ("Staff training day"), else the '
        'public holiday\'s name ("Christmas Day"), else "weekend"; else "".'
    )
    closed_day_kind: ClosedDayKind | None = Field(
        description="What closes the day unit on the day closed_day names: unit_closure (a "
        "closure the unit recorded, so closed_day is its reason), public_holiday (closed_day "
        'is the holiday\'s name) or weekend; null when closed_day is "".'
    )

    @staticmethod
    def resolve_closed_day(obj: ChemoCycle) -> str:
        return obj.planned_on_closed_day

    @staticmethod
    def resolve_closed_day_kind(obj: ChemoCycle) -> str | None:
        return obj.planned_closure.kind or None


class CycleStatusChangeOut(Schema):
    id: int
    status: str = Field(
        description="given, delayed, held or cancelled; for a move (moved_with_cycle set), "
        "the cycle's own status then: planned, ready, delayed or held."
    )
    reason: str = Field(
        description="Why it was delayed, held or cancelled; for a give against the pre-cycle "
        "check, why it was given anyway."
    )
    given_despite: str = Field(description="What the pre-cycle check said, for such a give.")
    planned_start_before: dt.date | None = Field(
        description="The planned day 1 before this change (null on a row from before the "
        "history was kept)."
    )
    planned_start_after: dt.date = Field(description="The planned day 1 after it.")
    delay_days: int | None = Field(
        description="For the cycle's own delay: by how many days day 1 moved (null for a move)."
    )
    moved_with_cycle: int | None = Field(
        description="For a move: the number of the earlier cycle whose delay or give moved "
        "this one (the reason, who and when are that change's)."
    )
    actual_start: dt.date | None = Field(description="For a give: the day the cycle started.")
    by_id: int | None
    by: str = Field(description="Who decided it: name and discipline.")
    at: dt.datetime | None
    from_before_history: bool = Field(
        description="Recorded from the cycle's own fields when the history began: earlier "
        "changes of this cycle were not kept, and who or when may be unknown."
    )
    summary: str = Field(
        description='As the cycle page says it: "Delayed 7 days: …", '
        '"Moved 7 days with cycle 2\'s delay: …".'
    )

    @staticmethod
    def resolve_by(obj: Any) -> str:
        return str(obj.by) if obj.by_id else ""


class CycleDetailOut(CycleOut):
    status_history: list[CycleStatusChangeOut] = Field(
        description="Every give, delay, hold and cancellation of the cycle, and every move "
        "with an earlier cycle's delay or give, newest first."
    )

    @staticmethod
    def resolve_status_history(obj: ChemoCycle) -> list[Any]:
        # The cycle was read through the gate (cycle_get_for_user): its history is its own.
        return list(obj.status_history.for_display())


class CycleActionIn(InputSchema):
    # Required: a mobile app's automatic retry of a delay had moved the whole schedule twice.
    seen_version: str = Field(
        min_length=1,
        max_length=40,
        description="The cycle's version (CycleOut.version) as the client last read it: if the "
        "cycle changed since (another user, a retried request), the action is refused with 409 "
        "and nothing is written.",
    )


class GiveIn(CycleActionIn):
    actual_start: dt.date
    override_reason: str = Field(
        "",
        max_length=2000,
        description="Required (at least 10 characters) when the pre-cycle check does not say "
        "treat: why the cycle is given anyway. Kept on the cycle.",
    )


class DelayIn(CycleActionIn):
    reason: str = Text
    days: int | None = Field(None, ge=1, le=365)
    new_start: dt.date | None = None


class ReasonIn(CycleActionIn):
    reason: str = Text


class AdministrationOut(Schema):
    id: int
    cycle_id: int
    regimen_drug_id: int
    drug_id: int
    day_of_cycle: int
    given_at: dt.datetime
    route: str
    standard_dose_mg: Decimal
    dose_percent: Decimal
    dose_mg: Decimal = Field(description="The calculated dose.")
    dispensed_dose_mg: Decimal | None = Field(
        description="Set when the pharmacy dispensed a banded dose: the dose on the label, "
        "given instead of dose_mg (null: dose_mg was given)."
    )
    formula: str
    notes: str
    administered_by_id: int
    verified_by_id: int | None
    amount_given_mg: Decimal | None = Field(
        description="Set when an infusion was stopped part-way: the mg that went in "
        "(null: the whole dose, dispensed_dose_mg or dose_mg, was given)."
    )
    stopped_reason: str
    confirmed_warnings: list[str] = Field(
        description="Warnings the recorder confirmed to go ahead (an allergy, a critical "
        "result), word for word."
    )
    premedication_confirmed: list[str] = Field(
        description="The required premedication the recorder confirmed as given before this "
        "drug, as it was asked."
    )


class AdministrationIn(InputSchema):
    regimen_drug_id: int
    day_of_cycle: int = Field(ge=1, le=365)
    given_at: dt.datetime
    verified_by_id: int = Field(
        description="The second checker of the independent double check: a clinician on the "
        "patient's care team, not the person recording."
    )
    verifier_password: SecretStr = Field(
        min_length=1,
        max_length=4096,
        description="The second checker's own password, typed by them: it confirms the check "
        "was done. A wrong one counts as a failed login of their account.",
    )
    label_dose_mg: Decimal = Field(
        gt=0,
        max_digits=10,
        decimal_places=2,
        allow_inf_nan=False,
        description="The dose printed on the prepared bag or syringe. It must equal the dose "
        "the latest pharmacy verification dispenses (the banded dose when banded), and the "
        "dose computed now must be the one verified (400 naming this field otherwise: do not "
        "give).",
    )
    notes: str = Field("", max_length=2000)
    creatinine_mg_dl: Decimal | None = Field(None, ge=0, le=50, allow_inf_nan=False)
    confirm_new_results: bool = Field(
        False,
        description="Record it although a critical result arrived after the cycle was given; "
        "without it that is a 400 of type confirmation_required.",
    )
    confirm_allergy: bool = Field(
        False,
        description="Record a drug the patient has a recorded allergy to; without it that is "
        "a 400 of type confirmation_required.",
    )
    confirm_premedication: bool = Field(
        False,
        description="The required premedication of this drug (the regimen's supportive care, "
        "e.g. paclitaxel's) was given; without it recording such a drug is a 400 of type "
        "confirmation_required naming confirm_premedication.",
    )


class DoseVerificationOut(Schema):
    id: int
    cycle_id: int
    verified_by_id: int
    verified_at: dt.datetime
    doses: dict[str, str] = Field(
        description="The calculated dose verified for each drug and day: "
        '{"<regimen_drug_id>:<day>": "mg"}.'
    )
    dispensed_doses: dict[str, str] = Field(
        description="The dose dispensed for each, by the same keys: the banded dose the "
        "pharmacist chose, or the calculated dose. The label must show it."
    )
    dose_inputs: dict[str, dict[str, Any]] = Field(
        description="The calculation inputs verified for each dose, by the same keys (height, "
        "weight and their dates, BSA, creatinine and GFR, level); empty on verifications made "
        "before they were kept."
    )
    note: str
    confirmed_warnings: list[str]

    @staticmethod
    def resolve_dispensed_doses(obj: DoseVerification) -> dict[str, str]:
        return obj.dispensed


class DoseVerifyIn(InputSchema):
    note: str = Field("", max_length=2000)
    seen_doses: dict[str, str] | None = Field(
        None,
        description='The doses the pharmacist was shown, {"<regimen_drug_id>:<day>": "mg"}: if '
        "they differ from the doses computed now, nothing is verified (400 naming cycle).",
    )
    dispensed_doses: dict[str, Decimal] | None = Field(
        None,
        description='Banded doses, {"<regimen_drug_id>:<day>": mg}: the standard dose from the '
        "pharmacy's band table to dispense instead of the calculated one. Only for a drug with "
        "a dose-banding tolerance, and within it of the calculated dose (400 naming "
        "dispensed_doses otherwise). A dose left out is dispensed as calculated.",
    )
    confirm_allergy: bool = Field(
        False,
        description="Verify although a drug matches a recorded allergy; without it that is a "
        "400 of type confirmation_required.",
    )


class AdministrationStopIn(InputSchema):
    amount_given_mg: Decimal = Field(ge=0, max_digits=10, decimal_places=2, allow_inf_nan=False)
    reason: str = Field(min_length=1, max_length=2000)


class DoseModificationOut(Schema):
    id: int
    course_id: int
    drug_id: int | None
    from_cycle_number: int
    percent: Decimal
    reason: str
    override_reason: str
    created_at: dt.datetime


class DoseModificationIn(InputSchema):
    from_cycle_number: int = Field(ge=1, le=1000)
    percent: Decimal = Field(gt=0, le=150, max_digits=5, decimal_places=1, allow_inf_nan=False)
    reason: str = Text
    drug_id: int | None = None
    override_reason: str = Field("", max_length=2000)
    confirm_level: bool = Field(
        False,
        description="Record a level below 50% or one that raises a reduced drug; without it "
        "such a level is a 400 of type confirmation_required naming percent.",
    )


class CtcaeGradeOut(Schema):
    grade: int
    description: str


class CtcaeTermOut(Schema):
    id: int
    term: str
    version: str
    category: str = Field(description="System organ class.")
    max_grade: int
    is_common: bool = Field(description="Offered first (the list's order).")
    grades: list[CtcaeGradeOut] = Field(
        description="What each grade means, by grade. When listed, only these grades can be "
        "recorded for the term (another is a 400 naming grade); never above max_grade."
    )

    @staticmethod
    def resolve_grades(obj: CtcaeTerm) -> list[dict[str, Any]]:
        return [
            {"grade": grade, "description": text} for grade, text in ctcae_term_grades(term=obj)
        ]


class SideEffectOut(Schema):
    id: int
    patient_id: int
    cycle_id: int | None
    term_id: int
    term: str
    grade: int
    ctcae_version: str
    onset: dt.date
    resolved_on: dt.date | None
    description: str
    source: str
    acknowledged_at: dt.datetime | None
    acknowledgement_note: str

    @staticmethod
    def resolve_term(obj: SideEffect) -> str:
        return obj.term.term


class SideEffectIn(InputSchema):
    term_id: int
    grade: int = Field(ge=1, le=5)
    onset: dt.date
    cycle_id: int | None = None
    description: str = Field("", max_length=5000)


class NoteIn(InputSchema):
    note: str = Text


class PortalCycleOut(Schema):
    number: int
    regimen: str
    planned_start: dt.date
    actual_start: dt.date | None
    end_date: dt.date | None
    status: str
    public_holiday: str = Field(
        description="For a cycle still to give planned on a public holiday, its name "
        '("Christmas Day"): the care team confirms such a date with the patient. Else "".'
    )
    unit_closed: bool = Field(
        description="For a cycle still to give, whether the day unit has said it is closed on "
        "its planned day (a training day, building work): the care team will move it and "
        "confirm the new date with the patient. The unit's reason is not given."
    )

    @staticmethod
    def resolve_regimen(obj: ChemoCycle) -> str:
        return obj.course.regimen.name

    @staticmethod
    def resolve_public_holiday(obj: ChemoCycle) -> str:
        # Never the planned closure's `why`: a unit closure's reason is for the staff only.
        return public_holiday(obj.planned_start) if obj.planned_closure else ""

    @staticmethod
    def resolve_unit_closed(obj: ChemoCycle) -> bool:
        return obj.planned_closure.kind == UNIT_CLOSURE


# --- Helpers ----------------------------------------------------------------------------------


def _page(queryset: Any, limit: int, offset: int) -> dict[str, Any]:
    count, rows = page_of(queryset, limit=limit, offset=offset)
    return {"count": count, "limit": limit, "offset": offset, "items": rows}


def _cycle(request: HttpRequest, patient_id: int, cycle_id: int) -> ChemoCycle:
    return cycle_get_for_user(
        user=clinical_user(request), patient_id=patient_id, cycle_id=cycle_id, perm=CHANGE
    )


def _field_lookup(field: str, fetch: Any) -> Any:
    """A foreign key from a body: another patient's record or a missing one is the same 400."""
    try:
        obj = fetch()
    except Http404:
        obj = None
    if obj is None:
        raise ValidationError({field: "No such record for this patient."})
    return obj


# --- Regimens (reference data, not PHI) -------------------------------------------------------


@router.get("/regimens", response={200: Page[RegimenOut], **ERRORS}, tags=["regimens"])
def regimen_list(request: HttpRequest, limit: int = Limit, offset: int = Offset) -> dict[str, Any]:
    clinical_user(request)
    return _page(Regimen.objects.order_by("name", "-version", "pk"), limit, offset)


@router.get("/regimens/{regimen_id}", response={200: RegimenDetailOut, **ERRORS}, tags=["regimens"])
def regimen_detail(request: HttpRequest, regimen_id: int) -> dict[str, Any]:
    no_query(request)
    clinical_user(request)
    regimen = Regimen.objects.filter(pk=regimen_id).first()
    if regimen is None:
        raise Http404("Not found.")
    phases = list(regimen.phases.order_by("order").prefetch_related("drugs__drug"))
    rules = list(PreCycleRule.objects.filter(regimen=regimen).order_by("test_id", "priority", "pk"))
    return {
        **RegimenOut.from_orm(regimen).model_dump(),
        "description": regimen.description,
        "source": regimen.source,
        "phases": phases,
        "rules": rules,
        "supportive_medications": list(
            regimen.supportive_medications.order_by("phase__order", "order", "pk")
        ),
    }


# --- CTCAE terms (reference data, not PHI) ---------------------------------------------------


@router.get("/ctcae-terms", response={200: Page[CtcaeTermOut], **ERRORS}, tags=["ctcae-terms"])
def ctcae_term_list(
    request: HttpRequest,
    q: str = TermSearch,
    limit: int = Limit,
    offset: int = Offset,
) -> dict[str, Any]:
    """The CTCAE terms a side effect is recorded with (term_id), common terms first, as the
    side-effect form's picker offers them; `q` keeps the terms whose term or category
    contains it. Staff only, like the regimen and lab-test catalogues."""
    clinical_user(request)
    return _page(ctcae_terms_matching(q=q), limit, offset)


# --- Courses ----------------------------------------------------------------------------------


@router.get("/patients/{patient_id}/courses", response={200: Page[CourseOut], **ERRORS})
def course_list(
    request: HttpRequest, patient_id: int, limit: int = Limit, offset: int = Offset
) -> dict[str, Any]:
    _, courses = children_for(Course, user=clinical_user(request), patient_id=patient_id)
    return _page(courses.order_by("-start_date", "-pk"), limit, offset)


@router.post("/patients/{patient_id}/courses", response={201: CourseOut, **ERRORS})
def course_create(request: HttpRequest, patient_id: int, payload: CourseIn) -> Status[Course]:
    """Start a course (course_start): every cycle is scheduled from start_date. The decision
    to treat: an oncologist's only (403 for anyone else, non-medical prescribers included)."""
    no_query(request)
    from patients.selectors import patient_get_for_user

    user = clinical_user(request)
    patient = patient_get_for_user(user=user, patient_id=patient_id, perm=CHANGE)
    regimen = Regimen.objects.filter(pk=payload.regimen_id).first()
    if regimen is None:
        raise ValidationError({"regimen_id": "No such regimen."})
    course = services.course_start(
        patient=patient,
        regimen=regimen,
        start_date=payload.start_date,
        intent=payload.intent.value,
        created_by=user,
        confirm_past_start=payload.confirm_past_start,
        confirm_lifetime_limit=payload.confirm_lifetime_limit,
        confirm_allergy=payload.confirm_allergy,
        confirm_concurrent_course=payload.confirm_concurrent_course,
        confirm_reason=payload.confirm_reason,
    )
    return Status(201, course)


@router.get("/patients/{patient_id}/courses/{course_id}", response={200: CourseOut, **ERRORS})
def course_detail(request: HttpRequest, patient_id: int, course_id: int) -> Course:
    no_query(request)
    return course_get_for_user(
        user=clinical_user(request), patient_id=patient_id, course_id=course_id
    )


@router.get(
    "/patients/{patient_id}/courses/{course_id}/cycles", response={200: Page[CycleOut], **ERRORS}
)
def cycle_list(
    request: HttpRequest, patient_id: int, course_id: int, limit: int = Limit, offset: int = Offset
) -> dict[str, Any]:
    course = course_get_for_user(
        user=clinical_user(request), patient_id=patient_id, course_id=course_id
    )
    page = _page(course.cycles.order_by("number"), limit, offset)
    log_list(ChemoCycle, [course.patient] if page["items"] else [])
    return page


# --- Cycles and their actions -----------------------------------------------------------------


@router.get("/patients/{patient_id}/cycles/{cycle_id}", response={200: CycleDetailOut, **ERRORS})
def cycle_detail(request: HttpRequest, patient_id: int, cycle_id: int) -> ChemoCycle:
    no_query(request)
    return cycle_get_for_user(user=clinical_user(request), patient_id=patient_id, cycle_id=cycle_id)


@router.post("/patients/{patient_id}/cycles/{cycle_id}/give", response={200: CycleOut, **ERRORS})
def cycle_give(request: HttpRequest, patient_id: int, cycle_id: int, payload: GiveIn) -> ChemoCycle:
    """Give a cycle. A held cycle is released only by an oncologist or a non-medical
    prescriber, and a cycle the pre-cycle check does not clear is given only by an oncologist
    (403 otherwise)."""
    no_query(request)
    cycle = _cycle(request, patient_id, cycle_id)
    return services.cycle_give(
        cycle=cycle,
        actual_start=payload.actual_start,
        given_by=user_of(request),
        override_reason=payload.override_reason,
        seen_version=payload.seen_version,
    )


@router.post("/patients/{patient_id}/cycles/{cycle_id}/delay", response={200: CycleOut, **ERRORS})
def cycle_delay(
    request: HttpRequest, patient_id: int, cycle_id: int, payload: DelayIn
) -> ChemoCycle:
    """Delay a cycle and the later ones with it. A held cycle is delayed only by an oncologist
    or a non-medical prescriber (403 otherwise)."""
    no_query(request)
    cycle = _cycle(request, patient_id, cycle_id)
    return services.cycle_delay(
        cycle=cycle,
        reason=payload.reason,
        by=user_of(request),
        days=payload.days,
        new_start=payload.new_start,
        seen_version=payload.seen_version,
    )


@router.post("/patients/{patient_id}/cycles/{cycle_id}/hold", response={200: CycleOut, **ERRORS})
def cycle_hold(
    request: HttpRequest, patient_id: int, cycle_id: int, payload: ReasonIn
) -> ChemoCycle:
    no_query(request)
    cycle = _cycle(request, patient_id, cycle_id)
    return services.cycle_hold(
        cycle=cycle, reason=payload.reason, by=user_of(request), seen_version=payload.seen_version
    )


@router.post("/patients/{patient_id}/cycles/{cycle_id}/cancel", response={200: CycleOut, **ERRORS})
def cycle_cancel(
    request: HttpRequest, patient_id: int, cycle_id: int, payload: ReasonIn
) -> ChemoCycle:
    """Cancel a cycle: by an oncologist or a non-medical prescriber (403 otherwise)."""
    no_query(request)
    cycle = _cycle(request, patient_id, cycle_id)
    return services.cycle_cancel(
        cycle=cycle, reason=payload.reason, by=user_of(request), seen_version=payload.seen_version
    )


# --- Administrations --------------------------------------------------------------------------


@router.get(
    "/patients/{patient_id}/cycles/{cycle_id}/administrations",
    response={200: Page[AdministrationOut], **ERRORS},
)
def administration_list(
    request: HttpRequest, patient_id: int, cycle_id: int, limit: int = Limit, offset: int = Offset
) -> dict[str, Any]:
    cycle = cycle_get_for_user(
        user=clinical_user(request), patient_id=patient_id, cycle_id=cycle_id
    )
    page = _page(cycle.administrations.order_by("given_at", "pk"), limit, offset)
    log_list(Administration, [cycle.course.patient] if page["items"] else [])
    return page


@router.post(
    "/patients/{patient_id}/cycles/{cycle_id}/administrations",
    response={201: AdministrationOut, **ERRORS},
)
def administration_create(
    request: HttpRequest, patient_id: int, cycle_id: int, payload: AdministrationIn
) -> Status[Administration]:
    """Record a drug given (administration_record): the dose is computed, never typed in."""
    no_query(request)
    cycle = _cycle(request, patient_id, cycle_id)
    regimen_drug = _field_lookup(
        "regimen_drug_id",
        lambda: (
            RegimenDrug.objects.select_related("drug", "phase")
            .filter(pk=payload.regimen_drug_id, phase_id=cycle.phase_id)
            .first()
        ),
    )
    # The second checker must be an active clinician who can see this chart.
    verified_by = _field_lookup(
        "verified_by_id",
        lambda: next(
            (
                u
                for u in User.objects.filter(
                    pk=payload.verified_by_id, is_active=True, role=User.Role.CLINICIAN
                )
                if patient_on_care_team_of(user=u, patient_id=patient_id)
            ),
            None,
        ),
    )
    colleague_cosign(
        checker=verified_by,
        password=payload.verifier_password.get_secret_value(),
        field="verifier_password",
    )
    administration = services.administration_record(
        cycle=cycle,
        regimen_drug=regimen_drug,
        day_of_cycle=payload.day_of_cycle,
        given_at=payload.given_at,
        administered_by=user_of(request),
        verified_by=verified_by,
        notes=payload.notes,
        creatinine_mg_dl=payload.creatinine_mg_dl,
        label_dose_mg=payload.label_dose_mg,
        confirm_new_results=payload.confirm_new_results,
        confirm_allergy=payload.confirm_allergy,
        confirm_premedication=payload.confirm_premedication,
    )
    return Status(201, administration)


@router.post(
    "/patients/{patient_id}/cycles/{cycle_id}/administrations/{administration_id}/stop",
    response={200: AdministrationOut, **ERRORS},
)
def administration_stop(
    request: HttpRequest,
    patient_id: int,
    cycle_id: int,
    administration_id: int,
    payload: AdministrationStopIn,
) -> Administration:
    """Record that an infusion was stopped part-way: the mg given and why (once)."""
    no_query(request)
    cycle = _cycle(request, patient_id, cycle_id)
    administration = cycle.administrations.filter(pk=administration_id).first()
    if administration is None:
        raise Http404
    return services.administration_stop(
        administration=administration,
        amount_given_mg=payload.amount_given_mg,
        reason=payload.reason,
        by=user_of(request),
    )


@router.get(
    "/patients/{patient_id}/cycles/{cycle_id}/verifications",
    response={200: Page[DoseVerificationOut], **ERRORS},
)
def dose_verification_list(
    request: HttpRequest, patient_id: int, cycle_id: int, limit: int = Limit, offset: int = Offset
) -> dict[str, Any]:
    """A cycle's pharmacy verifications, the latest (the one in force) first."""
    cycle = cycle_get_for_user(
        user=clinical_user(request), patient_id=patient_id, cycle_id=cycle_id
    )
    page = _page(cycle.verifications.order_by("-verified_at", "-pk"), limit, offset)
    log_list(DoseVerification, [cycle.course.patient] if page["items"] else [])
    return page


@router.post(
    "/patients/{patient_id}/cycles/{cycle_id}/verify",
    response={201: DoseVerificationOut, **ERRORS},
)
def cycle_verify(
    request: HttpRequest, patient_id: int, cycle_id: int, payload: DoseVerifyIn
) -> Status[DoseVerification]:
    """A pharmacist verifies the doses of the cycle's drugs not yet given (403 for others, and
    for the pharmacist who set a dose level in force for the cycle: another one verifies)."""
    no_query(request)
    cycle = _cycle(request, patient_id, cycle_id)
    verification = services.cycle_doses_verify(
        cycle=cycle,
        by=user_of(request),
        note=payload.note,
        seen_doses=payload.seen_doses,
        dispensed_doses=payload.dispensed_doses,
        confirm_allergy=payload.confirm_allergy,
    )
    return Status(201, verification)


# --- Dose modifications -----------------------------------------------------------------------


@router.get(
    "/patients/{patient_id}/courses/{course_id}/dose-modifications",
    response={200: Page[DoseModificationOut], **ERRORS},
)
def dose_modification_list(
    request: HttpRequest, patient_id: int, course_id: int, limit: int = Limit, offset: int = Offset
) -> dict[str, Any]:
    course = course_get_for_user(
        user=clinical_user(request), patient_id=patient_id, course_id=course_id
    )
    page = _page(
        course.dose_modifications.order_by("from_cycle_number", "created_at", "pk"), limit, offset
    )
    log_list(DoseModification, [course.patient] if page["items"] else [])
    return page


@router.post(
    "/patients/{patient_id}/courses/{course_id}/dose-modifications",
    response={201: DoseModificationOut, **ERRORS},
)
def dose_modification_create(
    request: HttpRequest, patient_id: int, course_id: int, payload: DoseModificationIn
) -> Status[DoseModification]:
    """Set a dose level from a cycle on: by an oncologist or a non-medical prescriber (403
    otherwise)."""
    no_query(request)
    user = clinical_user(request)
    course = course_get_for_user(user=user, patient_id=patient_id, course_id=course_id, perm=CHANGE)
    drug = None
    if payload.drug_id is not None:
        drug = _field_lookup("drug_id", lambda: Drug.objects.filter(pk=payload.drug_id).first())
    modification = services.dose_modification_record(
        course=course,
        from_cycle_number=payload.from_cycle_number,
        percent=payload.percent,
        reason=payload.reason,
        created_by=user,
        drug=drug,
        override_reason=payload.override_reason,
        confirm_level=payload.confirm_level,
    )
    return Status(201, modification)


# --- Side effects -----------------------------------------------------------------------------


@router.get("/patients/{patient_id}/side-effects", response={200: Page[SideEffectOut], **ERRORS})
def side_effect_list(
    request: HttpRequest, patient_id: int, limit: int = Limit, offset: int = Offset
) -> dict[str, Any]:
    _, side_effects = children_for(SideEffect, user=clinical_user(request), patient_id=patient_id)
    return _page(side_effects.select_related("term").order_by("-onset", "-pk"), limit, offset)


@router.post("/patients/{patient_id}/side-effects", response={201: SideEffectOut, **ERRORS})
def side_effect_create(
    request: HttpRequest, patient_id: int, payload: SideEffectIn
) -> Status[SideEffect]:
    no_query(request)
    from patients.selectors import patient_get_for_user

    user = clinical_user(request)
    patient = patient_get_for_user(user=user, patient_id=patient_id, perm=CHANGE)
    term = CtcaeTerm.objects.filter(pk=payload.term_id).first()
    if term is None:  # reference data: unknown everywhere, not "not this patient's"
        raise ValidationError({"term_id": "Unknown CTCAE term."})
    cycle = None
    if payload.cycle_id is not None:
        cycle = _field_lookup(
            "cycle_id",
            lambda: cycle_get_for_user(
                user=user, patient_id=patient.pk, cycle_id=payload.cycle_id, perm=CHANGE
            ),
        )
    side_effect = services.side_effect_record(
        patient=patient,
        term=term,
        grade=payload.grade,
        onset=payload.onset,
        recorded_by=user,
        cycle=cycle,
        description=payload.description,
    )
    return Status(201, side_effect)


@router.get(
    "/patients/{patient_id}/side-effects/{side_effect_id}", response={200: SideEffectOut, **ERRORS}
)
def side_effect_detail(request: HttpRequest, patient_id: int, side_effect_id: int) -> SideEffect:
    no_query(request)
    return side_effect_get_for_user(
        user=clinical_user(request), patient_id=patient_id, side_effect_id=side_effect_id
    )


@router.post(
    "/patients/{patient_id}/side-effects/{side_effect_id}/acknowledge",
    response={200: SideEffectOut, **ERRORS},
)
def side_effect_acknowledge(
    request: HttpRequest, patient_id: int, side_effect_id: int, payload: NoteIn
) -> SideEffect:
    no_query(request)
    user = clinical_user(request)
    side_effect = side_effect_get_for_user(
        user=user, patient_id=patient_id, side_effect_id=side_effect_id, perm=CHANGE
    )
    return services.side_effect_acknowledge(side_effect=side_effect, by=user, note=payload.note)


# --- Portal -----------------------------------------------------------------------------------


@router.get("/me/cycles", response={200: Page[PortalCycleOut], **ERRORS}, tags=["me"])
def my_cycles(request: HttpRequest, limit: int = Limit, offset: int = Offset) -> dict[str, Any]:
    """A patient's own cycles (dates and status): 404 for anyone but a patient user."""
    patient = portal_patient_for(user=user_of(request))
    cycles = (
        ChemoCycle.objects.filter(course__patient=patient)
        .select_related("course__regimen")
        .order_by("planned_start", "number", "pk")
    )
    page = _page(cycles, limit, offset)
    log_list(ChemoCycle, [patient] if page["items"] else [])
    return page
