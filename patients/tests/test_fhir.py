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
from patients.models import BodyMeasurement
from patients.tests.dashboard_world import (
    anc_test,
    course_with_cycles,
    lab_history,
    regimen_with_anc_rules,
)
from patients.tests.factories import patient_through_service
from treatments.models import CtcaeTerm
from treatments.tests.factories import AdministrationFactory, SideEffectFactory

pytestmark = pytest.mark.django_db


def _url(patient) -> str:
    return reverse("patients:patient_fhir_export", args=[patient.pk])


def _chart(patient, *, labs: int = 3, given: int = 2):
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
    for cycle in course.cycles.filter(status="given"):
        AdministrationFactory.create(cycle=cycle)
    nausea = CtcaeTerm.objects.filter(term="Nausea").first()
    SideEffectFactory.create(patient=patient, grade=3, **({"term": nausea} if nausea else {}))
    return course


def _by_type(bundle: dict) -> dict[str, list[dict]]:
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
        "Observation": 3 + 2,  # three ANC results, height and weight
        "CarePlan": 1,
        "MedicationAdministration": 2,
        "AdverseEvent": 1,
    }
    (record,) = kinds["Patient"]
    assert record["identifier"] == [{"system": "urn:oncoplanner:mrn", "value": patient.mrn}]
    patient_url = bundle["entry"][0]["fullUrl"]
    for entry in bundle["entry"][1:]:
        assert entry["resource"]["subject"] == {"reference": patient_url}


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


def test_fhir_care_plan_administrations_and_adverse_event(
    client, login, treating_clinician, patient
):
    course = _chart(patient)
    login(client, treating_clinician)
    kinds = _by_type(json.loads(client.get(_url(patient)).content))
    (plan,) = kinds["CarePlan"]
    assert plan["title"] == f"{course.regimen} chemotherapy"
    assert [a["detail"]["status"] for a in plan["activity"]] == [
        "completed",
        "completed",
        "scheduled",
        "scheduled",
    ]
    doses = [m["dosage"]["dose"] for m in kinds["MedicationAdministration"]]
    assert (
        doses
        == [{"value": 154.7, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}] * 2
    )
    (event,) = kinds["AdverseEvent"]
    assert event["severity"]["text"] == "severe"
    assert event["extension"] == [{"url": "urn:oncoplanner:fhir:ctcae-grade", "valueInteger": 3}]


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
    assert client.get(_url(patient)).status_code == 404
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
    _chart(long, labs=40, given=3)
    login(client, treating_clinician)
    _queries(client, patient)  # warm caches
    assert _queries(client, patient) == _queries(client, long)
