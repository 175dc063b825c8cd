"""A patient's chart as a FHIR R4 Bundle (type "collection"), for the next provider.

Read through the access gate (``selectors.patient_export_for_user``: a missing or forbidden
patient is a 404, and the export is one access-log row with action "export"). What goes in:

- Patient: MRN identifier, name, sex, birth date;
- Observation (laboratory): every lab result, LOINC-coded, UCUM quantity, the reference range
  that applied when it was flagged, and the flag as HL7 v3 interpretation (N, L, H, LL, HH);
- Observation (vital signs): body height and weight (LOINC 8302-2, 29463-7);
- CarePlan: one per chemotherapy course (regimen, intent, status, period), with a planned
  activity per cycle (its status and dates);
- MedicationAdministration: every dose given (drug, dose in mg, route, time);
- AdverseEvent: every graded side effect, its CTCAE term (NCI Thesaurus code) and grade.

Resources reference each other by ``urn:uuid`` full URLs, stable for a given record (uuid5 of
the resource type and database id), so two exports of the same chart use the same ids.
The shape is checked against the FHIR models of fhir.resources in the tests (R4B, which for
these resources is R4's).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.utils import timezone

from labs.models import LabResult
from labs.units import unit_display
from patients import selectors
from patients.models import BodyMeasurement, Patient
from treatments.models import Administration, ChemoCycle, Course, SideEffect

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
NCIT = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
MRN_SYSTEM = "urn:oncoplanner:mrn"
CTCAE_GRADE_EXTENSION = "urn:oncoplanner:fhir:ctcae-grade"
_NAMESPACE = uuid.UUID("0c6f2f8e-2d35-4c8a-9a43-6f0a4c9d1e57")

BODY_HEIGHT = ("8302-2", "Body height", "cm")
BODY_WEIGHT = ("29463-7", "Body weight", "kg")
# CTCAE grade -> FHIR R4 AdverseEvent.severity (mild | moderate | severe).
SEVERITY = {1: "mild", 2: "moderate"}
COURSE_STATUS = {"planned": "draft", "active": "active", "completed": "completed"}
CYCLE_STATUS = {
    "planned": "scheduled",
    "ready": "scheduled",
    "delayed": "scheduled",
    "held": "on-hold",
    "given": "completed",
    "cancelled": "cancelled",
}


def _urn(kind: str, pk: int) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{kind}/{pk}')}"


def _number(value: Decimal) -> float | int:
    # JSON numbers as the lab reports them: 1.2, not "1.2000".
    normalised = value.normalize()
    return int(normalised) if normalised == normalised.to_integral() else float(normalised)


def _entry(kind: str, pk: int, resource: dict[str, Any], *, key: str = "") -> dict[str, Any]:
    """A Bundle entry; `key` names the id's source when one row yields several resources."""
    return {"fullUrl": _urn(key or kind, pk), "resource": {"resourceType": kind, **resource}}


def _patient(patient: Patient) -> dict[str, Any]:
    return _entry(
        "Patient",
        patient.pk,
        {
            "identifier": [{"system": MRN_SYSTEM, "value": patient.mrn}],
            "name": [{"family": patient.family_name, "given": [patient.given_name]}],
            "gender": patient.sex,
            "birthDate": patient.date_of_birth.isoformat(),
        },
    )


def _observation(
    *,
    category: str,
    code: dict[str, Any],
    subject: dict[str, str],
    when: str,
    value: Decimal,
    unit: str,
) -> dict[str, Any]:
    return {
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": category}]}],
        "code": code,
        "subject": subject,
        "effectiveDateTime": when,
        "valueQuantity": {"value": _number(value), **_ucum(unit)},
    }


def _ucum(unit: str) -> dict[str, str]:
    # FHIR Quantity.unit is the human-readable form; code is the UCUM code.
    return {"system": UCUM, "code": unit, "unit": unit_display(unit)}


def _lab_observation(result: LabResult, subject: dict[str, str]) -> dict[str, Any]:
    resource = _observation(
        category="laboratory",
        code={
            "coding": [{"system": LOINC, "code": result.test.loinc, "display": result.test.name}],
            "text": result.test.short_name,
        },
        subject=subject,
        when=result.collected_at.isoformat(),
        value=result.value,
        unit=result.unit,
    )
    resource["interpretation"] = [{"coding": [{"system": INTERPRETATION, "code": result.flag}]}]
    reference = {
        bound: {"value": _number(value), **_ucum(result.unit)}
        for bound, value in (("low", result.ref_low), ("high", result.ref_high))
        if value is not None
    }
    if reference:
        resource["referenceRange"] = [reference]
    if result.note:
        resource["note"] = [{"text": result.note}]
    if result.is_entered_in_error:
        # Exported, not left out: a system that imported an earlier bundle holds this id as
        # final, and only this status tells it to withdraw the value.
        resource["status"] = "entered-in-error"
    return _entry("Observation", result.pk, resource)


def _vital_signs(measurement: BodyMeasurement, subject: dict[str, str]) -> list[dict[str, Any]]:
    return [
        # Two observations from one measurement row: the LOINC keeps their ids apart.
        _entry(
            "Observation",
            measurement.pk,
            _observation(
                category="vital-signs",
                code={"coding": [{"system": LOINC, "code": loinc, "display": display}]},
                subject=subject,
                when=measurement.measured_on.isoformat(),
                value=value,
                unit=unit,
            ),
            key=f"Observation/{loinc}",
        )
        for (loinc, display, unit), value in (
            (BODY_HEIGHT, measurement.height_cm),
            (BODY_WEIGHT, measurement.weight_kg),
        )
        if value is not None
    ]


def _care_plan(course: Course, cycles: list[ChemoCycle], subject: dict[str, str]) -> dict[str, Any]:
    period = {"start": course.start_date.isoformat()}
    if course.stopped_on:
        period["end"] = course.stopped_on.isoformat()
    activities = []
    for cycle in cycles:
        start = cycle.actual_start or cycle.planned_start
        detail: dict[str, Any] = {
            "status": CYCLE_STATUS.get(cycle.status, "unknown"),
            "description": f"Cycle {cycle.number}: {cycle.get_status_display()}",
            "scheduledPeriod": {"start": start.isoformat()},
        }
        if cycle.reason:
            detail["statusReason"] = {"text": cycle.reason}
        activities.append({"detail": detail})
    resource: dict[str, Any] = {
        "status": COURSE_STATUS.get(course.status, "revoked"),  # stopped early: revoked
        "intent": "plan",
        "title": f"{course.regimen} chemotherapy",
        "description": f"Intent: {course.get_intent_display()}",
        "subject": subject,
        "period": period,
    }
    if activities:
        resource["activity"] = activities
    return _entry("CarePlan", course.pk, resource)


def _administration(adm: Administration, subject: dict[str, str]) -> dict[str, Any]:
    return _entry(
        "MedicationAdministration",
        adm.pk,
        {
            "status": "completed",
            "medicationCodeableConcept": {"text": adm.drug.name},
            "subject": subject,
            "effectiveDateTime": adm.given_at.isoformat(),
            "supportingInformation": [{"reference": _urn("CarePlan", adm.cycle.course_id)}],
            "dosage": {
                "text": f"Cycle {adm.cycle.number}, day {adm.day_of_cycle}: "
                f"{_number(adm.dose_mg)} mg ({_number(adm.dose_percent)}% of standard)",
                "route": {"text": adm.get_route_display()},
                "dose": {"value": _number(adm.dose_mg), **_ucum("mg")},
            },
        },
    )


def _adverse_event(effect: SideEffect, subject: dict[str, str]) -> dict[str, Any]:
    term = effect.term
    coding = (
        [{"system": NCIT, "code": term.ncit_code, "display": term.term}] if term.ncit_code else []
    )
    return _entry(
        "AdverseEvent",
        effect.pk,
        {
            "actuality": "actual",
            "subject": subject,
            "event": {"coding": coding, "text": f"{term.term} (CTCAE v{effect.ctcae_version})"},
            "date": effect.onset.isoformat(),
            "severity": {"text": SEVERITY.get(effect.grade, "severe")},
            "extension": [{"url": CTCAE_GRADE_EXTENSION, "valueInteger": effect.grade}],
        },
    )


def patient_fhir_bundle(*, user: Any, patient_id: Any) -> dict[str, Any]:
    """The whole chart as a FHIR R4 collection Bundle (a dict ready for JSON).

    Http404 for a patient the user may not see. One access-log row (action "export"). A fixed
    number of queries, whatever the length of the history.
    """
    patient = selectors.patient_export_for_user(user=user, patient_id=patient_id, fmt="fhir-r4")
    subject = {"reference": _urn("Patient", patient.pk)}
    entries = [_patient(patient)]
    for measurement in BodyMeasurement.objects.filter(patient=patient).order_by("measured_on"):
        entries += _vital_signs(measurement, subject)
    results = LabResult.all_objects.filter(patient=patient).select_related("test")
    entries += [_lab_observation(r, subject) for r in results.order_by("collected_at", "pk")]
    cycles_by_course: dict[int, list[ChemoCycle]] = {}
    for cycle in ChemoCycle.objects.filter(course__patient=patient).order_by("number"):
        cycles_by_course.setdefault(cycle.course_id, []).append(cycle)
    courses = Course.objects.filter(patient=patient).select_related("regimen")
    entries += [
        _care_plan(c, cycles_by_course.get(c.pk, []), subject)
        for c in courses.order_by("start_date", "pk")
    ]
    administrations = Administration.objects.filter(cycle__course__patient=patient)
    entries += [
        _administration(a, subject)
        for a in administrations.select_related("drug", "cycle").order_by("given_at", "pk")
    ]
    effects = SideEffect.objects.filter(patient=patient).select_related("term")
    entries += [_adverse_event(e, subject) for e in effects.order_by("onset", "pk")]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": timezone.now().isoformat(),
        "entry": entries,
    }
