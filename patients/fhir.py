"""A patient's chart as a FHIR R4 Bundle (type "collection"), for the next provider.

Read through the access gate (``selectors.patient_export_for_user``: a missing or forbidden
patient is a 404, and the export is one access-log row with action "export"). What goes in:

- Patient: MRN identifier (typed MR), name, sex, birth date;
- Practitioner: everyone the other resources name (who prescribed, gave, checked, recorded);
- Condition: the primary cancer diagnosis, when one is recorded (its text, ICD-10 code, the
  stage as text in stage.summary, and the date of diagnosis as onsetDateTime), shaped as
  mCODE's PrimaryCancerCondition where our data reaches (clinical and verification status,
  problem-list category, subject) but not claiming the profile;
- Observation (laboratory): every lab result, LOINC-coded, UCUM quantity, the reference range
  that applied when it was flagged, and the flag as HL7 v3 interpretation (N, L, H, LL, HH);
- Observation (vital signs): body height and weight (LOINC 8302-2, 29463-7);
- CarePlan: one per chemotherapy course, an order (regimen, mCODE treatment intent, status,
  a stopped course's termination reason, period, prescriber, the Condition it treats in
  `addresses`), with an activity per cycle (its
  status, the reason for a delay, hold or cancellation, its dates, and its whole history as
  progress notes: every give, delay, hold, cancellation and move, with who and when);
- MedicationAdministration: every dose given (drug as text, dose in mg, SNOMED route, time,
  who gave it and who did the independent check);
- AllergyIntolerance: every allergy on the chart (clinical and verification status, entries
  entered in error included with verificationStatus entered-in-error, category, criticality,
  the substance as text, the reaction's manifestation and severity, recorder), or the "no
  known allergy" statement (SNOMED CT 716186003) when one is recorded;
- AdverseEvent: every graded side effect: its CTCAE term (NCI Thesaurus code where the term
  has one), the CTCAE grade (NCIt grade code) and R4 severity, outcome, who recorded it, and the
  doses of the cycle it is linked to as suspect entities.

Resources reference each other by ``urn:uuid`` full URLs, stable for a given record (uuid5 of
the resource type and database id), so two exports of the same chart use the same ids, and every
reference resolves inside the Bundle. The shape is checked against the FHIR models of
fhir.resources in the tests (R4B, which for these resources is R4's).

Not in R4, so not coded: a link from a dose or side effect to its course or cycle other than
MedicationAdministration.supportingInformation (R4's `context` takes only an Encounter or
EpisodeOfCare, `reasonReference` a Condition, Observation or DiagnosticReport), a side effect's
free-text description and resolution date (R4 AdverseEvent has no note), and an RxNorm code for
the drug (the formulary has none; a code is never invented).

Not in the chart, so not sent: when the diagnosis was recorded (Condition.recordedDate: the
patient row's own dates are when it was typed in, not when the cancer was diagnosed; the date
of diagnosis, when the chart has one, is onsetDateTime, and a date with no diagnosis to go
with it is not sent), a diagnosis per course (every course treats the primary diagnosis), a
SNOMED CT code for the diagnosis or the stage, and the staging system a stage text belongs to
(AJCC, FIGO, Binet...).
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

from django.db.models import F
from django.utils import timezone

from labs.models import LabResult
from labs.units import unit_display
from patients import selectors
from patients.models import Allergy, BodyMeasurement, Patient
from treatments.models import (
    INTENT_SNOMED,
    Administration,
    ChemoCycle,
    Course,
    CycleStatusChange,
    SideEffect,
)

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
NCIT = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
PERFORM_FUNCTION = "http://terminology.hl7.org/CodeSystem/med-admin-perform-function"
AE_SEVERITY = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
AE_OUTCOME = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"
MRN_SYSTEM = "urn:oncoplanner:mrn"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
# WHO ICD-10's shape: a category (C18) and at most one character after the dot (C18.7). The
# chart also takes ICD-10-CM codes (C50.911, C4A.9: longer, or a letter WHO never uses there);
# those are not WHO codes, and are sent under ICD-10-CM's system rather than mislabelled.
_WHO_ICD10 = re.compile(r"^[A-Z][0-9]{2}(\.[0-9])?$")
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
NO_KNOWN_ALLERGY = ("716186003", "No known allergy")
# FHIR has four categories; "other" has none, so it is left out rather than forced into one.
ALLERGY_CATEGORY = frozenset({"medication", "food", "environment"})
# HL7 Adverse Event Clinical Research R4 Backport IG (STU1): the AE grade, coded from THO's
# adverse-event-clinical-research-grades value set (NCIt codes). The draft CTCAE IG's
# http://hl7.org/fhir/us/ctcae/... extension is unpublished, so it is not used.
AE_GRADE_EXTENSION = "http://hl7.org/fhir/uv/ae-research-backport-ig/StructureDefinition/ae-grade"
# mCODE: treatment intent on a CarePlan or MedicationAdministration; the termination reason
# of a stopped course (R4 CarePlan has no statusReason, which later mCODE versions use).
MCODE_INTENT_EXTENSION = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-procedure-intent"
MCODE_TERMINATION_EXTENSION = (
    "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-treatment-termination-reason"
)
_NAMESPACE = uuid.UUID("0c6f2f8e-2d35-4c8a-9a43-6f0a4c9d1e57")

BODY_HEIGHT = ("8302-2", "Body height", "cm")
BODY_WEIGHT = ("29463-7", "Body weight", "kg")
CTCAE_GRADE_NCIT = {
    1: ("C41338", "Grade 1 Mild Adverse Event"),
    2: ("C41339", "Grade 2 Moderate Adverse Event"),
    3: ("C41340", "Grade 3 Severe Adverse Event"),
    4: ("C41337", "Grade 4 Life Threatening or Disabling Adverse Event"),
    5: ("C48275", "Grade 5 Death Related to Adverse Event"),
}
# CTCAE grade -> R4 AdverseEvent.severity (mild | moderate | severe); the exact grade is kept
# in the grade extension. Seriousness is left out: it is a regulatory judgement (death,
# hospitalisation, disability...) that a grade does not make, and grade 5 says "fatal" below.
SEVERITY = {1: "mild", 2: "moderate"}
INTENT_DISPLAY = {
    "373808002": "Curative - procedure intent",
    "363676003": "Palliative - procedure intent",
    "399707004": "Supportive - procedure intent",
}
# Every Course.StopReason whose value is a SNOMED CT code (the mCODE termination reasons).
STOP_REASON_SNOMED = frozenset({"407563006", "266721009", "105480006"})
# A planned course has been prescribed (only a prescriber starts one) and waits for its start
# date: an order in force, so "active", not "draft" (created, not yet ready). Stopped early:
# "revoked".
COURSE_STATUS = {"planned": "active", "active": "active", "completed": "completed"}
CYCLE_STATUS = {
    "planned": "scheduled",
    "ready": "scheduled",
    "delayed": "scheduled",
    "held": "on-hold",
    "given": "completed",
    "cancelled": "cancelled",
}
_IV = ("47625008", "Intravenous route")
# Bolus and infusion are methods, not routes: SNOMED's route is intravenous; the text keeps them.
ROUTE_SNOMED = {
    "IV": _IV,
    "IV bolus": _IV,
    "IV infusion": _IV,
    "PO": ("26643006", "Oral route"),
    "SC": ("34206005", "Subcutaneous route"),
    "IM": ("78421000", "Intramuscular route"),
    "IT": ("72607000", "Intrathecal route"),
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


def _coded(system: str, code: str, display: str, *, text: str = "") -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [{"system": system, "code": code, "display": display}]}
    if text:
        concept["text"] = text
    return concept


class _People:
    """The users the resources name, each once as a Practitioner; the patient's own portal
    account is the Patient. Filled while the other resources are built (their rows come with
    the users joined in), so naming someone costs no query."""

    def __init__(self, patient: Patient, subject: dict[str, str]) -> None:
        self.patient = patient
        self.subject = subject
        self.users: dict[int, Any] = {}

    def ref(self, user: Any) -> dict[str, str]:
        if user.pk == self.patient.portal_user_id:
            return self.subject
        self.users.setdefault(user.pk, user)
        return {"reference": _urn("Practitioner", user.pk)}

    def entries(self) -> list[dict[str, Any]]:
        return [_practitioner(user) for _, user in sorted(self.users.items())]


def _practitioner(user: Any) -> dict[str, Any]:
    # The name only: a login name is a credential's half, and the clinic keeps no licence
    # number; the stable fullUrl is what matches the same person across exports.
    resource: dict[str, Any] = {"active": user.is_active}
    name = {
        key: value
        for key, value in (("family", user.last_name), ("given", [user.first_name]))
        if value and value != [""]
    }
    if name:
        resource["name"] = [{**name, "text": user.get_full_name()}]
    return _entry("Practitioner", user.pk, resource)


def _patient(patient: Patient) -> dict[str, Any]:
    return _entry(
        "Patient",
        patient.pk,
        {
            "identifier": [
                {
                    # The system is local, so the type is what tells a receiver this is an MRN.
                    "type": _coded(IDENTIFIER_TYPE, "MR", "Medical record number"),
                    "system": MRN_SYSTEM,
                    "value": patient.mrn,
                }
            ],
            "active": patient.is_active,
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


def _intent_extension(intent: str) -> dict[str, Any]:
    code = INTENT_SNOMED[intent]
    return {
        "url": MCODE_INTENT_EXTENSION,
        "valueCodeableConcept": _coded(SNOMED, code, INTENT_DISPLAY[code]),
    }


def _cycle_activity(
    cycle: ChemoCycle, history: list[CycleStatusChange], people: _People
) -> dict[str, Any]:
    period = {"start": (cycle.actual_start or cycle.planned_start).isoformat()}
    if cycle.end_date:
        period["end"] = cycle.end_date.isoformat()
    detail: dict[str, Any] = {
        "status": CYCLE_STATUS.get(cycle.status, "unknown"),
        "description": f"Cycle {cycle.number}: {cycle.get_status_display()}",
        "scheduledPeriod": period,
    }
    if cycle.reason:
        # Free text: a delay or hold is decided for reasons (counts, a holiday) no code names.
        detail["statusReason"] = {"text": cycle.reason}
    activity: dict[str, Any] = {"detail": detail}
    if history:
        # The status and its reason are the latest only: a second delay had hidden the first
        # from the receiving system. R4 keeps an activity's course in `progress`, oldest first.
        activity["progress"] = [_progress_note(change, people) for change in history]
    return activity


def _progress_note(change: CycleStatusChange, people: _People) -> dict[str, Any]:
    """One give, delay, hold, cancellation or move of a cycle as an R4 Annotation: who, when,
    and what the cycle page's History says ("Delayed 7 days: 5 Dec → 12 Dec 2026: ANC 1.1")."""
    text = change.summary
    if change.given_despite:
        text += f", given despite the pre-cycle check ({change.given_despite_label})"
    if change.reason:
        text += f": {change.reason}"
    if change.from_before_history:
        text += " (recorded when the history began: earlier changes were not kept)"
    note: dict[str, Any] = {"text": text}
    if change.by is not None:
        note["authorReference"] = people.ref(change.by)
    if change.at is not None:
        note["time"] = change.at.isoformat()
    return note


def _primary_condition(patient: Patient, subject: dict[str, str]) -> dict[str, Any] | None:
    """The primary cancer diagnosis as a Condition, or None when the chart records none (a stage
    with no diagnosis is the stage of nothing a receiver could name, so it is not sent alone).

    Shaped as mCODE's PrimaryCancerCondition (the category, statuses, code and stage.summary it
    uses) without claiming it in meta.profile: its code is bound to SNOMED CT's primary cancer
    disorders (the chart has an ICD-10 code at most, sometimes only text), and its subject must
    be an mCODE CancerPatient, which this Patient does not claim either.
    """
    if not (patient.primary_diagnosis or patient.icd10_code):
        return None
    code: dict[str, Any] = {}
    if patient.icd10_code:
        system = ICD10 if _WHO_ICD10.match(patient.icd10_code) else ICD10_CM
        # No display: the clinician's wording is the text, not the code system's display name.
        code["coding"] = [{"system": system, "code": patient.icd10_code}]
    code["text"] = patient.primary_diagnosis or patient.icd10_code
    resource: dict[str, Any] = {
        # The chart records no remission or resolution: a diagnosis on it is one being treated.
        "clinicalStatus": _coded(CONDITION_CLINICAL, "active", "Active"),
        # Entered by the treating team as the diagnosis they treat (mCODE's examples: confirmed).
        "verificationStatus": _coded(CONDITION_VERIFICATION, "confirmed", "Confirmed"),
        # problem-list-item, not encounter-diagnosis: the diagnosis is a standing entry on the
        # chart that every course treats, not one made at a visit (the Bundle holds no
        # Encounter), and it is the category of mCODE's PrimaryCancerCondition examples and
        # US Core's Problems profile.
        "category": [_coded(CONDITION_CATEGORY, "problem-list-item", "Problem List Item")],
        "code": code,
        "subject": subject,
    }
    if patient.diagnosed_on:
        # A date alone is a valid FHIR dateTime; no time of day is made up.
        resource["onsetDateTime"] = patient.diagnosed_on.isoformat()
    if patient.stage:
        # Text only ("IIIB", "pT3N1M0"): the chart does not say which staging system (AJCC,
        # FIGO, Binet...) or whether clinical or pathological, so no stage code or type is
        # given; mCODE allows the stage group here beside its own staging Observation.
        resource["stage"] = [{"summary": {"text": patient.stage}}]
    # One per patient: its id comes from the patient row, in an id space of its own.
    return _entry("Condition", patient.pk, resource, key="Condition/primary-cancer")


def _care_plan(
    course: Course,
    cycles: list[ChemoCycle],
    history: dict[int, list[CycleStatusChange]],
    subject: dict[str, str],
    people: _People,
    treats: dict[str, str] | None,
) -> dict[str, Any]:
    # A cycle is an activity of its course's plan, not a CarePlan of its own: R4 gives an
    # activity its status, the reason for it and its scheduled period, and a CarePlan has no
    # status reason; nothing else in R4 can reference a cycle's plan anyway.
    period = {"start": course.start_date.isoformat()}
    if course.stopped_on and not course.stopped_before_it_began:
        # A course cancelled before it began keeps its planned start and no end: a FHIR
        # Period ends on or after its start; its status (revoked) says it was stopped.
        period["end"] = course.stopped_on.isoformat()
    resource: dict[str, Any] = {
        "extension": [_intent_extension(course.intent)],
        "status": COURSE_STATUS.get(course.status, "revoked"),
        "intent": "order",  # prescribed by an oncologist: an order, not a proposal or plan
        "title": f"{course.regimen} chemotherapy",
        "description": f"Intent: {course.get_intent_display()}",
        "subject": subject,
        "period": period,
        "created": course.created_at.isoformat(),
        "author": people.ref(course.created_by),
    }
    if treats is not None:
        # A course records no diagnosis of its own: it treats the patient's primary cancer.
        resource["addresses"] = [treats]
    if course.stop_reason:
        label = course.get_stop_reason_display()
        reason = (
            _coded(SNOMED, course.stop_reason, label, text=label)
            if course.stop_reason in STOP_REASON_SNOMED
            else {"text": label}  # progression, death, other: no mCODE code to give them
        )
        resource["extension"].append(
            {"url": MCODE_TERMINATION_EXTENSION, "valueCodeableConcept": reason}
        )
    if course.stop_note:
        resource["note"] = [{"text": course.stop_note}]
    if cycles:
        resource["activity"] = [
            _cycle_activity(cycle, history.get(cycle.pk, []), people) for cycle in cycles
        ]
    return _entry("CarePlan", course.pk, resource)


def _performer(function: str, user: Any, people: _People) -> dict[str, Any]:
    return {
        "function": _coded(PERFORM_FUNCTION, function, function.capitalize()),
        "actor": people.ref(user),
    }


def _administration(
    adm: Administration, subject: dict[str, str], people: _People
) -> dict[str, Any]:
    route: dict[str, Any] = {"text": adm.get_route_display()}
    if adm.route in ROUTE_SNOMED:
        code, display = ROUTE_SNOMED[adm.route]
        route = _coded(SNOMED, code, display, text=route["text"])
    performers = [_performer("performer", adm.administered_by, people)]
    if adm.verified_by is not None:
        # The independent second check (ASCO/ONS): a verifier, not a second performer.
        performers.append(_performer("verifier", adm.verified_by, people))
    # An infusion stopped part-way is R4's "stopped", and its dose is what went in. A banded
    # dose is the one prepared and given: the text says so, beside dose.value, which is it.
    given = f"{_number(adm.prepared_dose_mg)} mg ({_number(adm.dose_percent)}% of standard"
    given += f"; {adm.banding_note})" if adm.banding_note else ")"
    if not adm.given_in_full:
        given = f"{_number(adm.dose_given_mg)} mg given of {given}, stopped early"
    resource: dict[str, Any] = {
        "extension": [_intent_extension(adm.cycle.course.intent)],
        "status": "completed" if adm.given_in_full else "stopped",
        # Text only: the formulary holds no RxNorm (or other) code, and none is invented.
        "medicationCodeableConcept": {"text": adm.drug.name},
        "subject": subject,
        "supportingInformation": [{"reference": _urn("CarePlan", adm.cycle.course_id)}],
        "effectiveDateTime": adm.given_at.isoformat(),
        "performer": performers,
        "dosage": {
            "text": f"Cycle {adm.cycle.number}, day {adm.day_of_cycle}: {given}",
            "route": route,
            "dose": {"value": _number(adm.dose_given_mg), **_ucum("mg")},
        },
    }
    if not adm.given_in_full:
        resource["statusReason"] = [{"text": adm.stopped_reason}]
    if adm.notes:
        resource["note"] = [{"text": adm.notes}]
    return _entry("MedicationAdministration", adm.pk, resource)


def _adverse_event(
    effect: SideEffect, doses: list[Administration], subject: dict[str, str], people: _People
) -> dict[str, Any]:
    term = effect.term
    event: dict[str, Any] = {"text": f"{term.term} (CTCAE v{effect.ctcae_version})"}
    if term.ncit_code:  # the reference terms ship without codes until each is checked
        event["coding"] = [{"system": NCIT, "code": term.ncit_code, "display": term.term}]
    grade_code, grade_display = CTCAE_GRADE_NCIT[effect.grade]
    severity = SEVERITY.get(effect.grade, "severe")
    outcome = "resolved" if effect.resolved_on else "ongoing"
    if effect.grade == 5:  # death related to the adverse event
        outcome = "fatal"
    resource: dict[str, Any] = {
        "extension": [
            {
                "url": AE_GRADE_EXTENSION,
                "valueCodeableConcept": _coded(
                    NCIT,
                    grade_code,
                    grade_display,
                    text=f"CTCAE v{effect.ctcae_version} grade {effect.grade}",
                ),
            }
        ],
        "actuality": "actual",
        "event": event,
        "subject": subject,
        "date": effect.onset.isoformat(),
        "recordedDate": effect.created_at.isoformat(),
        "severity": _coded(AE_SEVERITY, severity, severity.capitalize()),
        "outcome": _coded(AE_OUTCOME, outcome, outcome.capitalize()),
        "recorder": people.ref(effect.reported_by),
    }
    if doses:
        # Linked to a cycle: that cycle's doses are what the clinician related it to.
        resource["suspectEntity"] = [
            {"instance": {"reference": _urn("MedicationAdministration", adm.pk)}} for adm in doses
        ]
    return _entry("AdverseEvent", effect.pk, resource)


def _allergy_intolerance(
    allergy: Allergy, subject: dict[str, str], people: _People
) -> dict[str, Any]:
    resource: dict[str, Any] = {"code": {"text": allergy.substance}, "patient": subject}
    if allergy.is_entered_in_error:
        # Exported, not left out (as a lab result): a system that imported an earlier bundle
        # holds this id as an allergy, and only this status tells it to withdraw it. FHIR's
        # ait-2: no clinicalStatus on an entry in error.
        resource["verificationStatus"] = _coded(
            ALLERGY_VERIFICATION, "entered-in-error", "Entered in Error"
        )
    else:
        resource["clinicalStatus"] = _coded(ALLERGY_CLINICAL, "active", "Active")
        # Recorded by a clinician on the chart; a receiver must not downgrade an anaphylaxis
        # on record to "unconfirmed". Nothing else is claimed (no testing, no rechallenge).
        resource["verificationStatus"] = _coded(ALLERGY_VERIFICATION, "confirmed", "Confirmed")
    if allergy.category in ALLERGY_CATEGORY:
        resource["category"] = [allergy.category]
    # Criticality is the risk of a future reaction: "high" for a severe reaction on record;
    # for a milder or unknown one nobody has assessed it, and it is not guessed.
    resource["criticality"] = (
        "high" if allergy.severity == Allergy.Severity.SEVERE else "unable-to-assess"
    )
    resource["recordedDate"] = allergy.recorded_at.isoformat()
    resource["recorder"] = people.ref(allergy.recorded_by)
    if allergy.reaction:
        reaction: dict[str, Any] = {
            "substance": {"text": allergy.substance},
            "manifestation": [{"text": allergy.reaction}],
        }
        if allergy.severity:
            reaction["severity"] = allergy.severity
        resource["reaction"] = [reaction]
    if allergy.is_entered_in_error and allergy.entered_in_error_reason:
        resource["note"] = [{"text": f"Entered in error: {allergy.entered_in_error_reason}"}]
    return _entry("AllergyIntolerance", allergy.pk, resource)


def _no_known_allergy(patient: Patient, subject: dict[str, str], people: _People) -> dict[str, Any]:
    code, display = NO_KNOWN_ALLERGY
    resource = {
        "clinicalStatus": _coded(ALLERGY_CLINICAL, "active", "Active"),
        "verificationStatus": _coded(ALLERGY_VERIFICATION, "confirmed", "Confirmed"),
        "code": _coded(SNOMED, code, display, text="No known allergies"),
        "patient": subject,
        "recordedDate": patient.no_known_allergies_at.isoformat(),  # type: ignore[union-attr]
        "recorder": people.ref(patient.no_known_allergies_by),
    }
    # Its own id space: the statement is a property of the patient row, not an Allergy row.
    return _entry("AllergyIntolerance", patient.pk, resource, key="AllergyIntolerance/none-known")


def patient_fhir_bundle(*, user: Any, patient_id: Any) -> dict[str, Any]:
    """The whole chart as a FHIR R4 collection Bundle (a dict ready for JSON).

    Http404 for a patient the user may not see. One access-log row (action "export"). A fixed
    number of queries, whatever the length of the history.
    """
    patient = selectors.patient_export_for_user(user=user, patient_id=patient_id, fmt="fhir-r4")
    subject = {"reference": _urn("Patient", patient.pk)}
    people = _People(patient, subject)
    entries = []
    condition = _primary_condition(patient, subject)
    treats = None
    if condition is not None:
        entries.append(condition)
        treats = {"reference": condition["fullUrl"]}
    for measurement in BodyMeasurement.objects.filter(patient=patient).order_by("measured_on"):
        entries += _vital_signs(measurement, subject)
    results = LabResult.all_objects.filter(patient=patient).select_related("test")
    entries += [_lab_observation(r, subject) for r in results.order_by("collected_at", "pk")]
    cycles_by_course: dict[int, list[ChemoCycle]] = {}
    for cycle in ChemoCycle.objects.filter(course__patient=patient).order_by("number"):
        cycles_by_course.setdefault(cycle.course_id, []).append(cycle)
    history: dict[int, list[CycleStatusChange]] = {}
    changes = CycleStatusChange.objects.filter(cycle__course__patient=patient).for_display()
    for change in changes.order_by(F("at").asc(nulls_first=True), "pk"):
        history.setdefault(change.cycle_id, []).append(change)
    courses = Course.objects.filter(patient=patient).select_related("regimen", "created_by")
    entries += [
        _care_plan(c, cycles_by_course.get(c.pk, []), history, subject, people, treats)
        for c in courses.order_by("start_date", "pk")
    ]
    administrations = list(
        Administration.objects.filter(cycle__course__patient=patient)
        .select_related("drug", "cycle__course", "administered_by", "verified_by")
        .order_by("given_at", "pk")
    )
    doses_by_cycle: dict[int, list[Administration]] = {}
    for adm in administrations:
        doses_by_cycle.setdefault(adm.cycle_id, []).append(adm)
        entries.append(_administration(adm, subject, people))
    allergies = Allergy.all_objects.filter(patient=patient).select_related("recorded_by")
    entries += [
        _allergy_intolerance(a, subject, people) for a in allergies.order_by("recorded_at", "pk")
    ]
    if patient.no_known_allergies_at is not None:
        entries.append(_no_known_allergy(patient, subject, people))
    effects = SideEffect.objects.filter(patient=patient).select_related("term", "reported_by")
    entries += [
        _adverse_event(e, doses_by_cycle.get(e.cycle_id or 0, []), subject, people)
        for e in effects.order_by("onset", "pk")
    ]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": timezone.now().isoformat(),
        "entry": [_patient(patient), *people.entries(), *entries],
    }
