"""The chart as a FHIR R4 Bundle: valid FHIR, the right codes, behind the gate, logged once."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle

from audit.models import AccessLog
from labs.models import LabTest
from labs.services import lab_result_record
from oncoplanner.accounts.tests.factories import ClinicianFactory, UserFactory
from patients.models import BodyMeasurement
from patients.tests.dashboard_world import (
    anc_test,
    course_with_cycles,
    lab_history,
    regimen_with_anc_rules,
)
from patients.tests.factories import patient_through_service
from treatments import services as treatment_services
from treatments.models import Course, CtcaeTerm, Route
from treatments.tests.factories import (
    AdministrationFactory,
    CourseFactory,
    CtcaeTermFactory,
    SideEffectFactory,
)

pytestmark = pytest.mark.django_db


def _url(patient) -> str:
    return reverse("patients:patient_fhir_export", args=[patient.pk])


def _chart(patient, *, labs: int = 3, given: int = 2, effects: int = 1):
    """A course of 4 cycles (`given` of them given, a dose each, the first also checked by a
    pharmacist), ANC results, a height and weight, and `effects` grade 3 nausea on cycle 1."""
    anc = anc_test()
    course = course_with_cycles(
        patient, regimen=regimen_with_anc_rules(anc=anc, cycles=4), given=given, total=4
    )
    lab_history(patient, test=anc, count=labs, latest_value="0.4")  # 0.4 < 0.5: critical low
    BodyMeasurement.objects.create(
        patient=patient,
        measured_on=dt.date(2026, 1, 5),
        height_cm=Decimal("165.0"),
        weight_kg=Decimal("60.5"),
    )
    given_cycles = list(course.cycles.filter(status="given").order_by("number"))
    for cycle in given_cycles:
        AdministrationFactory.create(
            cycle=cycle,
            verified_by=ClinicianFactory.create(discipline="pharmacist")
            if cycle.number == 1
            else None,
        )
    nausea = CtcaeTerm.objects.filter(term="Nausea").first()
    for _ in range(effects):
        SideEffectFactory.create(
            patient=patient,
            grade=3,
            cycle=given_cycles[0] if given_cycles else None,
            **({"term": nausea} if nausea else {}),
        )
    return course


def _references(node) -> list[str]:
    """Every Reference.reference anywhere in `node`."""
    if isinstance(node, list):
        return [ref for item in node for ref in _references(item)]
    if not isinstance(node, dict):
        return []
    found = [node["reference"]] if isinstance(node.get("reference"), str) else []
    return found + [ref for value in node.values() for ref in _references(value)]


def _resolve(bundle: dict, reference: dict) -> dict:
    (resource,) = [e["resource"] for e in bundle["entry"] if e["fullUrl"] == reference["reference"]]
    return resource


def _by_type(bundle: dict) -> dict[str, list[dict]]:
    Bundle.model_validate(bundle)  # every bundle a test reads is valid FHIR first
    out: dict[str, list[dict]] = {}
    for entry in bundle["entry"]:
        out.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    return out


def test_fhir_export_is_a_valid_r4_bundle_of_the_whole_chart(
    client, login, treating_clinician, patient
):
    _chart(patient)
    login(client, treating_clinician)
    response = client.get(_url(patient))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/fhir+json")
    assert "attachment" in response["Content-Disposition"]
    bundle = json.loads(response.content)
    Bundle.model_validate(bundle)  # raises on anything that is not FHIR
    kinds = _by_type(bundle)
    assert {k: len(v) for k, v in kinds.items()} == {
        "Patient": 1,
        # the prescriber, the two clinicians who gave a dose, the pharmacist who checked one and
        # the clinician who recorded the side effect
        "Practitioner": 5,
        "Condition": 1,  # the primary cancer diagnosis
        "Observation": 3 + 2,  # three ANC results, height and weight
        "CarePlan": 1,
        "MedicationAdministration": 2,
        "AdverseEvent": 1,
    }
    (record,) = kinds["Patient"]
    assert record["identifier"] == [
        {
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                        "code": "MR",
                        "display": "Medical record number",
                    }
                ]
            },
            "system": "urn:oncoplanner:mrn",
            "value": patient.mrn,
        }
    ]
    patient_url = bundle["entry"][0]["fullUrl"]
    for entry in bundle["entry"][1:]:
        if entry["resource"]["resourceType"] != "Practitioner":
            assert entry["resource"]["subject"] == {"reference": patient_url}
    full_urls = [entry["fullUrl"] for entry in bundle["entry"]]
    assert len(set(full_urls)) == len(full_urls)
    assert set(_references(bundle)) <= set(full_urls)  # every reference resolves in the Bundle
    (condition,) = kinds["Condition"]
    (plan,) = kinds["CarePlan"]
    assert _resolve(bundle, plan["addresses"][0]) is condition  # the plan names what it treats


def test_fhir_condition_carries_the_diagnosis_its_icd10_code_and_stage(
    client, login, treating_clinician, patient
):
    assert (patient.primary_diagnosis, patient.icd10_code, patient.stage) == (
        "Adenocarcinoma of sigmoid colon",
        "C18.7",
        "IIIB",
    )
    login(client, treating_clinician)
    bundle = json.loads(client.get(_url(patient)).content)
    (condition,) = _by_type(bundle)["Condition"]
    assert condition["code"] == {
        "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "C18.7"}],
        "text": "Adenocarcinoma of sigmoid colon",
    }
    assert condition["stage"] == [{"summary": {"text": "IIIB"}}]
    assert condition["clinicalStatus"]["coding"] == [
        {
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": "active",
            "display": "Active",
        }
    ]
    assert condition["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert condition["category"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
        "code": "problem-list-item",
        "display": "Problem List Item",
    }
    assert condition["subject"] == {"reference": bundle["entry"][0]["fullUrl"]}
    assert "meta" not in condition  # mCODE's shape, but its profile is not claimed
    # No date of diagnosis recorded: none is made up from when the row was typed in.
    assert patient.diagnosed_on is None
    assert not {"onsetDateTime", "recordedDate"} & condition.keys()


def test_fhir_condition_onset_is_the_recorded_date_of_diagnosis(
    client, login, treating_clinician, care_team
):
    patient = patient_through_service(care_team, diagnosed_on=dt.date(2025, 3, 3))
    login(client, treating_clinician)
    bundle = json.loads(client.get(_url(patient)).content)
    (condition,) = _by_type(bundle)["Condition"]  # valid R4: a date alone is a dateTime
    assert condition["onsetDateTime"] == "2025-03-03"
    assert "recordedDate" not in condition  # when it was typed in is still not sent


def test_fhir_a_date_of_diagnosis_without_a_diagnosis_makes_no_condition(
    client, login, treating_clinician, care_team
):
    patient = patient_through_service(
        care_team, primary_diagnosis="", icd10_code="", diagnosed_on=dt.date(2025, 3, 3)
    )
    login(client, treating_clinician)
    bundle = json.loads(client.get(_url(patient)).content)
    assert "Condition" not in _by_type(bundle)
    assert "2025-03-03" not in json.dumps(bundle)


def test_fhir_condition_sends_an_icd10_cm_code_under_its_own_system(
    client, login, treating_clinician, care_team
):
    # C50.911 is ICD-10-CM's (right female breast); WHO's ICD-10 stops at C50.9.
    patient = patient_through_service(
        care_team, primary_diagnosis="Invasive ductal carcinoma", icd10_code="C50.911", stage=""
    )
    login(client, treating_clinician)
    (condition,) = _by_type(json.loads(client.get(_url(patient)).content))["Condition"]
    assert condition["code"]["coding"] == [
        {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C50.911"}
    ]
    assert "stage" not in condition  # no stage recorded: none sent


def test_fhir_condition_from_text_alone_has_no_coding(client, login, treating_clinician, care_team):
    patient = patient_through_service(
        care_team, primary_diagnosis="Carcinoma of unknown primary", icd10_code="", stage=""
    )
    login(client, treating_clinician)
    (condition,) = _by_type(json.loads(client.get(_url(patient)).content))["Condition"]
    assert condition["code"] == {"text": "Carcinoma of unknown primary"}


def test_fhir_no_condition_and_no_addresses_without_a_recorded_diagnosis(
    client, login, treating_clinician, care_team
):
    # A stage with no diagnosis is the stage of nothing: no Condition is made up around it.
    patient = patient_through_service(care_team, primary_diagnosis="", icd10_code="", stage="II")
    _chart(patient)
    login(client, treating_clinician)
    bundle = json.loads(client.get(_url(patient)).content)
    kinds = _by_type(bundle)
    assert "Condition" not in kinds
    (plan,) = kinds["CarePlan"]
    assert "addresses" not in plan


def test_fhir_every_care_plan_addresses_the_primary_cancer_condition(
    client, login, treating_clinician, patient
):
    _chart(patient)
    CourseFactory.create(  # a second course, later: it treats the same cancer
        patient=patient,
        status=Course.Status.PLANNED,
        start_date=timezone.localdate() + dt.timedelta(days=30),
        created_by=treating_clinician,
    )
    login(client, treating_clinician)
    bundle = json.loads(client.get(_url(patient)).content)
    kinds = _by_type(bundle)
    assert len(kinds["CarePlan"]) == 2
    for plan in kinds["CarePlan"]:
        (treats,) = plan["addresses"]
        target = _resolve(bundle, treats)
        assert target["resourceType"] == "Condition"
        assert target["code"]["text"] == patient.primary_diagnosis
    # The same id in every export of the chart, so a receiver updates rather than duplicates.
    again = json.loads(client.get(_url(patient)).content)
    assert [
        e["fullUrl"] for e in again["entry"] if e["resource"]["resourceType"] == "Condition"
    ] == [treats["reference"]]


def test_fhir_lab_observation_carries_loinc_ucum_range_and_flag(
    client, login, treating_clinician, patient
):
    _chart(patient, labs=0)
    anc = LabTest.objects.get(loinc="751-8")  # the reference ANC, with its critical limits
    latest = lab_result_record(  # the service flags it: 0.4 is under the critical 0.5
        patient=patient,
        test=anc,
        value="0.4",
        unit=anc.unit,
        collected_at=timezone.now() - dt.timedelta(hours=1),
        recorded_by=treating_clinician,
        note="Haemolysed? repeat",
    )
    login(client, treating_clinician)
    observations = _by_type(json.loads(client.get(_url(patient)).content))["Observation"]
    (lab,) = [o for o in observations if o["category"][0]["coding"][0]["code"] == "laboratory"]
    assert lab["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "751-8",
        "display": latest.test.name,
    }
    assert lab["valueQuantity"] == {
        "value": 0.4,
        "system": "http://unitsofmeasure.org",
        "code": "10*3/uL",
        "unit": "×10³/µL",  # Quantity.unit is for people; the code is UCUM
    }
    assert lab["interpretation"][0]["coding"][0]["code"] == "LL"
    assert lab["note"] == [{"text": "Haemolysed? repeat"}]
    assert lab["referenceRange"][0]["low"]["value"] == float(latest.ref_low.normalize())
    vitals = {
        o["code"]["coding"][0]["code"]: o["valueQuantity"]["value"]
        for o in observations
        if o["category"][0]["coding"][0]["code"] == "vital-signs"
    }
    assert vitals == {"8302-2": 165, "29463-7": 60.5}


def test_fhir_care_plan_is_an_order_with_coded_intent_and_a_cycle_per_activity(
    client, login, treating_clinician, patient
):
    course = _chart(patient)
    cycle_2 = course.cycles.get(number=2)
    cycle_2.end_date = cycle_2.actual_start + dt.timedelta(days=13)
    cycle_2.save()
    later = CourseFactory.create(  # prescribed, starting next month
        patient=patient,
        status=Course.Status.PLANNED,
        start_date=timezone.localdate() + dt.timedelta(days=30),
        created_by=treating_clinician,
    )
    login(client, treating_clinician)
    bundle = json.loads(client.get(_url(patient)).content)
    plan, planned = _by_type(bundle)["CarePlan"]
    assert plan["title"] == f"{course.regimen} chemotherapy"
    assert (plan["intent"], plan["status"]) == ("order", "active")
    assert plan["extension"] == [
        {
            "url": "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-procedure-intent",
            "valueCodeableConcept": {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "373808002",
                        "display": "Curative - procedure intent",
                    }
                ]
            },
        }
    ]
    assert _resolve(bundle, plan["author"])["name"][0]["family"] == course.created_by.last_name
    assert [a["detail"]["status"] for a in plan["activity"]] == [
        "completed",
        "completed",
        "scheduled",
        "scheduled",
    ]
    assert plan["activity"][1]["detail"]["scheduledPeriod"] == {
        "start": cycle_2.actual_start.isoformat(),
        "end": cycle_2.end_date.isoformat(),
    }
    # A planned course is an order in force that starts later: active, not a draft.
    assert (planned["intent"], planned["status"]) == ("order", "active")
    assert planned["period"] == {"start": later.start_date.isoformat()}
    assert _resolve(bundle, planned["author"])["name"][0]["family"] == treating_clinician.last_name


def test_fhir_cycle_activity_carries_its_whole_history_oldest_first(
    client, login, treating_clinician, patient
):
    course = _chart(patient)  # cycles 1 and 2 given, 3 and 4 planned
    cycle_4_first_day = course.cycles.get(number=4).planned_start
    for reason in ("ANC 1.1 on the pre-cycle check", "Still recovering: ANC 1.3"):
        treatment_services.cycle_delay(
            cycle=course.cycles.get(number=3), days=7, reason=reason, by=treating_clinician
        )
    login(client, treating_clinician)
    bundle = json.loads(client.get(_url(patient)).content)
    (plan,) = _by_type(bundle)["CarePlan"]
    cycle_3, cycle_4 = plan["activity"][2], plan["activity"][3]

    # The status reason is the latest delay's; the progress notes keep both, oldest first.
    assert cycle_3["detail"]["statusReason"] == {"text": "Still recovering: ANC 1.3"}
    first, second = cycle_3["progress"]
    assert first["text"].startswith("Delayed 7 days: ")
    assert first["text"].endswith(": ANC 1.1 on the pre-cycle check")
    assert second["text"].endswith(": Still recovering: ANC 1.3")
    assert first["time"] <= second["time"]
    assert _resolve(bundle, first["authorReference"])["name"][0]["family"] == (
        treating_clinician.last_name
    )
    # The later cycle says why its day moved, twice.
    moves = [note["text"] for note in cycle_4["progress"]]
    assert [text.split(":")[0] for text in moves] == ["Moved 7 days with cycle 3's delay"] * 2
    assert moves[0].startswith(f"Moved 7 days with cycle 3's delay: {cycle_4_first_day:%-d %b} → ")
    # Cycles without a recorded change (made here without the services) carry no notes.
    assert "progress" not in plan["activity"][0]


def test_fhir_stopped_course_is_revoked_with_its_mcode_termination_reason(
    client, login, treating_clinician, patient
):
    course = _chart(patient)
    treatment_services.course_stop(
        course=course,
        reason=Course.StopReason.NOT_TOLERATED,
        note="Grade 3 neuropathy after cycle 2.",
        stopped_on=timezone.localdate(),
        by=treating_clinician,
    )
    login(client, treating_clinician)
    (plan,) = _by_type(json.loads(client.get(_url(patient)).content))["CarePlan"]
    assert plan["status"] == "revoked"
    assert plan["period"]["end"] == timezone.localdate().isoformat()
    assert plan["extension"][1] == {
        "url": "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-treatment-termination-reason",
        "valueCodeableConcept": {
            "coding": [
                {
                    "system": "http://snomed.info/sct",
                    "code": "407563006",
                    "display": "Treatment not tolerated",
                }
            ],
            "text": "Treatment not tolerated",
        },
    }
    assert plan["note"] == [{"text": "Grade 3 neuropathy after cycle 2."}]
    cancelled = plan["activity"][2]["detail"]
    assert cancelled["status"] == "cancelled"
    assert cancelled["statusReason"] == {"text": "Course stopped: Treatment not tolerated"}


def test_fhir_stop_reason_without_a_snomed_code_is_sent_as_text(
    client, login, treating_clinician, patient
):
    course = _chart(patient)
    treatment_services.course_stop(
        course=course,
        reason=Course.StopReason.PROGRESSION,
        stopped_on=timezone.localdate(),
        by=treating_clinician,
    )
    login(client, treating_clinician)
    (plan,) = _by_type(json.loads(client.get(_url(patient)).content))["CarePlan"]
    assert plan["extension"][1]["valueCodeableConcept"] == {"text": "Disease progression"}
    assert "note" not in plan


def test_fhir_administration_names_drug_route_performer_and_verifier(
    client, login, treating_clinician, patient
):
    course = _chart(patient, given=1)
    (adm,) = course.cycles.get(number=1).administrations.select_related(
        "drug", "administered_by", "verified_by"
    )
    adm.notes = "Slowed the infusion for arm pain."
    adm.save()
    login(client, treating_clinician)
    bundle = json.loads(client.get(_url(patient)).content)
    (given,) = _by_type(bundle)["MedicationAdministration"]
    assert given["status"] == "completed"
    assert given["medicationCodeableConcept"] == {"text": adm.drug.name}  # no code invented
    assert given["effectiveDateTime"] == adm.given_at.isoformat()
    assert given["dosage"]["dose"] == {
        "value": 154.7,
        "unit": "mg",
        "system": "http://unitsofmeasure.org",
        "code": "mg",
    }
    assert given["dosage"]["route"] == {
        "coding": [
            {"system": "http://snomed.info/sct", "code": "47625008", "display": "Intravenous route"}
        ],
        "text": "Intravenous",
    }
    functions = {
        p["function"]["coding"][0]["code"]: _resolve(bundle, p["actor"])["name"][0]["family"]
        for p in given["performer"]
    }
    assert functions == {
        "performer": adm.administered_by.last_name,
        "verifier": adm.verified_by.last_name,
    }
    assert {p["function"]["coding"][0]["system"] for p in given["performer"]} == {
        "http://terminology.hl7.org/CodeSystem/med-admin-perform-function"
    }
    assert _resolve(bundle, given["supportingInformation"][0])["title"].endswith("chemotherapy")
    assert given["note"] == [{"text": "Slowed the infusion for arm pain."}]


def test_fhir_administration_stopped_early_sends_the_amount_given(
    client, login, treating_clinician, patient
):
    course = _chart(patient, given=1)
    (adm,) = course.cycles.get(number=1).administrations.all()
    treatment_services.administration_stop(
        administration=adm,
        amount_given_mg="40",
        reason="Infusion reaction at 20 minutes",
        by=treating_clinician,
    )
    login(client, treating_clinician)
    (given,) = _by_type(json.loads(client.get(_url(patient)).content))["MedicationAdministration"]
    assert given["status"] == "stopped"
    assert given["statusReason"] == [{"text": "Infusion reaction at 20 minutes"}]
    assert given["dosage"]["dose"]["value"] == 40  # what went in, not the 154.7 mg prepared
    assert "40 mg given of 154.7 mg" in given["dosage"]["text"]


def test_fhir_administration_of_a_banded_dose_sends_the_banded_dose_and_says_so(
    client, login, treating_clinician, patient
):
    # The next provider reads the dose that went in (the pharmacy's banded bag), and the text
    # says it was banded from the calculated dose, never the calculated figure alone.
    course = _chart(patient, given=1)
    (adm,) = course.cycles.get(number=1).administrations.all()
    adm.dispensed_dose_mg = Decimal("150")  # as administration_record keeps a banded bag
    adm.save()
    login(client, treating_clinician)
    (given,) = _by_type(json.loads(client.get(_url(patient)).content))["MedicationAdministration"]
    assert given["dosage"]["dose"]["value"] == 150
    assert (
        "150 mg (100% of standard; banded from 154.7 mg calculated, -3.0%)"
        in given["dosage"]["text"]
    )


@pytest.mark.parametrize(
    ("route", "code"),
    [(Route.PO, "26643006"), (Route.SC, "34206005"), (Route.IV_INFUSION, "47625008")],
)
def test_fhir_administration_route_is_snomed_coded(
    client, login, treating_clinician, patient, route, code
):
    course = _chart(patient, given=1)
    course.cycles.get(number=1).administrations.update(route=route)
    login(client, treating_clinician)
    (given,) = _by_type(json.loads(client.get(_url(patient)).content))["MedicationAdministration"]
    assert given["dosage"]["route"]["coding"][0]["code"] == code
    assert given["dosage"]["route"]["text"] == Route(route).label


def test_fhir_adverse_event_codes_term_grade_severity_and_suspect_doses(
    client, login, treating_clinician, patient
):
    course = _chart(patient, effects=0)
    cycle_1 = course.cycles.get(number=1)
    term = CtcaeTermFactory.create(term="Test neuropathy", ncit_code="C99999")  # test data
    effect = SideEffectFactory.create(patient=patient, term=term, grade=3, cycle=cycle_1)
    login(client, treating_clinician)
    bundle = json.loads(client.get(_url(patient)).content)
    (event,) = _by_type(bundle)["AdverseEvent"]
    assert event["event"] == {
        "coding": [
            {
                "system": "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl",
                "code": "C99999",
                "display": "Test neuropathy",
            }
        ],
        "text": "Test neuropathy (CTCAE v5.0)",
    }
    assert event["extension"] == [
        {
            "url": "http://hl7.org/fhir/uv/ae-research-backport-ig/StructureDefinition/ae-grade",
            "valueCodeableConcept": {
                "coding": [
                    {
                        "system": "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl",
                        "code": "C41340",
                        "display": "Grade 3 Severe Adverse Event",
                    }
                ],
                "text": "CTCAE v5.0 grade 3",
            },
        }
    ]
    assert event["severity"] == {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/adverse-event-severity",
                "code": "severe",
                "display": "Severe",
            }
        ]
    }
    assert event["outcome"]["coding"][0]["code"] == "ongoing"
    assert "seriousness" not in event  # a grade is not a regulatory seriousness judgement
    assert event["date"] == effect.onset.isoformat()
    assert _resolve(bundle, event["recorder"])["name"][0]["family"] == effect.reported_by.last_name
    suspects = [_resolve(bundle, s["instance"]) for s in event["suspectEntity"]]
    assert [s["effectiveDateTime"] for s in suspects] == [
        a.given_at.isoformat() for a in cycle_1.administrations.all()
    ]


@pytest.mark.parametrize(
    ("grade", "resolved", "severity", "grade_code", "outcome"),
    [
        (1, True, "mild", "C41338", "resolved"),
        (2, False, "moderate", "C41339", "ongoing"),
        (4, False, "severe", "C41337", "ongoing"),
        (5, False, "severe", "C48275", "fatal"),
    ],
)
def test_fhir_adverse_event_grade_maps_to_severity_and_outcome(
    client, login, treating_clinician, patient, grade, resolved, severity, grade_code, outcome
):
    _chart(patient, effects=0)
    onset = dt.date(2026, 1, 12)
    SideEffectFactory.create(
        patient=patient,
        grade=grade,
        onset=onset,
        resolved_on=onset + dt.timedelta(days=5) if resolved else None,
    )
    login(client, treating_clinician)
    (event,) = _by_type(json.loads(client.get(_url(patient)).content))["AdverseEvent"]
    assert event["severity"]["coding"][0]["code"] == severity
    assert event["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == grade_code
    assert event["outcome"]["coding"][0]["code"] == outcome
    assert "coding" not in event["event"]  # an uncoded term is text, not an empty coding
    assert "suspectEntity" not in event  # not linked to a cycle


def test_fhir_side_effect_recorded_by_the_patient_names_the_patient(
    client, login, treating_clinician, patient
):
    _chart(patient, effects=0)
    # A name no factory clinician can have: a random one had collided with a practitioner's.
    patient.portal_user = UserFactory.create(last_name="Portal-Recorder")
    patient.save()
    SideEffectFactory.create(patient=patient, reported_by=patient.portal_user)
    login(client, treating_clinician)
    bundle = json.loads(client.get(_url(patient)).content)
    (event,) = _by_type(bundle)["AdverseEvent"]
    assert event["recorder"] == {"reference": bundle["entry"][0]["fullUrl"]}
    assert patient.portal_user.last_name not in [
        p.get("name", [{}])[0].get("family") for p in _by_type(bundle)["Practitioner"]
    ]


def test_fhir_export_is_one_export_row_in_the_access_log(
    client, login, treating_clinician, patient
):
    _chart(patient)
    login(client, treating_clinician)
    before = AccessLog.objects.count()
    client.get(_url(patient))
    (row,) = AccessLog.objects.order_by("-pk")[: AccessLog.objects.count() - before]
    assert (row.action, row.surface, row.patient_id) == ("export", "export", patient.pk)
    assert row.detail == {"format": "fhir-r4"}


def test_fhir_export_is_404_for_outsiders_and_patients_and_logs_the_denial(
    client, login, other_clinician, patient
):
    _chart(patient)
    login(client, other_clinician)
    response = client.get(_url(patient))
    assert response.status_code == 404
    assert patient.primary_diagnosis.encode() not in response.content  # the diagnosis stays in
    assert client.get(reverse("patients:patient_fhir_export", args=[999999])).status_code == 404
    denied = AccessLog.objects.filter(outcome="denied", patient_id=patient.pk)
    assert denied.count() == 1


def test_fhir_rest_route_returns_the_same_bundle(client, login, treating_clinician, patient):
    _chart(patient)
    login(client, treating_clinician)
    page = json.loads(client.get(_url(patient)).content)
    api = client.get(f"/api/v1/patients/{patient.pk}/fhir")
    assert api.status_code == 200
    assert api["Content-Type"] == "application/fhir+json"
    body = api.json()
    assert [e["fullUrl"] for e in body["entry"]] == [e["fullUrl"] for e in page["entry"]]


def _queries(client, patient) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(_url(patient)).status_code == 200
    return len(ctx.captured_queries)


def test_fhir_export_query_count_does_not_grow_with_history(
    client, login, treating_clinician, patient, care_team
):
    long = patient_through_service(care_team)
    _chart(patient, labs=2, given=1)
    _chart(long, labs=40, given=3, effects=6)  # more doses, checks and side effects, by more people
    undiagnosed = patient_through_service(care_team, primary_diagnosis="", icd10_code="")
    _chart(undiagnosed, labs=2, given=1)
    login(client, treating_clinician)
    _queries(client, patient)  # warm caches
    # The Condition comes from the patient row: it costs no query, with or without a diagnosis.
    assert _queries(client, patient) == _queries(client, long) == _queries(client, undiagnosed)
