"""Allergies and intolerances: the service, the chart's banner and section (HTMX), REST,
GraphQL, FHIR and the portal. Personas from conftest.py: treating_clinician (care team),
other_clinician (outsider)."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from fhir.resources.R4B.bundle import Bundle

from audit.models import AccessLog
from oncoplanner.accounts.tests.factories import UserFactory
from patients.models import Allergy, Patient
from patients.services import (
    allergy_mark_entered_in_error,
    allergy_record,
    patient_no_known_allergies_record,
)
from patients.tests.dashboard_world import course_with_cycles, regimen_with_anc_rules
from patients.tests.factories import patient_through_service
from treatments.tests.factories import DrugFactory

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true", "HX-Target": "dashboard-live"}
PACLITAXEL = {
    "substance": "Paclitaxel",
    "category": "medication",
    "severity": "severe",
    "reaction": "anaphylaxis",
}
API = "/api/v1"


def _create_url(patient: Patient) -> str:
    return reverse("patients:allergy_create", args=[patient.pk])


def _error_url(allergy: Allergy) -> str:
    return reverse("patients:allergy_entered_in_error", args=[allergy.patient_id, allergy.pk])


def _dashboard(client, patient: Patient) -> str:
    response = client.get(reverse("patients:patient_detail", args=[patient.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _banner(html: str) -> str:
    start = html.index('id="allergy-banner"')
    return html[start : html.index("</div>", start)]


def _record(patient: Patient, by, **fields) -> Allergy:
    return allergy_record(patient=patient, recorded_by=by, **{**PACLITAXEL, **fields})


# --- Service ----------------------------------------------------------------------------------


def test_allergy_record_links_formulary_drug_and_clears_no_known_allergies(
    patient, treating_clinician
):
    drug = DrugFactory.create(name="Paclitaxel")
    patient_no_known_allergies_record(patient=patient, recorded_by=treating_clinician)
    assert Patient.objects.get(pk=patient.pk).no_known_allergies_at is not None

    allergy = _record(patient, treating_clinician, substance="paclitaxel ")

    assert (allergy.substance, allergy.drug, allergy.severity) == ("paclitaxel", drug, "severe")
    fresh = Patient.objects.get(pk=patient.pk)
    assert fresh.no_known_allergies_at is None
    assert fresh.no_known_allergies_by is None
    assert AccessLog.objects.filter(
        action="create", object_type="Allergy", object_id=str(allergy.pk)
    ).exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"substance": "  "}, "substance"),
        ({"substance": "Pacli\x00taxel"}, "substance"),
        ({"substance": "x" * 201}, "substance"),
        ({"severity": "severe", "reaction": ""}, "reaction"),
        ({"severity": "deadly"}, "severity"),
        ({"category": "astrology"}, "category"),
    ],
)
def test_allergy_record_bad_input_names_the_field_and_writes_nothing(
    patient, treating_clinician, fields, field
):
    with pytest.raises(ValidationError) as error:
        _record(patient, treating_clinician, **fields)
    assert field in error.value.message_dict
    assert not Allergy.all_objects.exists()


def test_allergy_record_refuses_a_second_entry_for_the_same_drug(patient, treating_clinician):
    drug = DrugFactory.create(name="Oxaliplatin")
    _record(patient, treating_clinician, substance="Oxaliplatin")
    with pytest.raises(ValidationError) as error:
        allergy_record(patient=patient, recorded_by=treating_clinician, substance="", drug=drug)
    assert "substance" in error.value.message_dict
    assert Allergy.objects.count() == 1


def test_no_known_allergies_refused_while_an_allergy_is_listed(patient, treating_clinician):
    _record(patient, treating_clinician)
    with pytest.raises(ValidationError) as error:
        patient_no_known_allergies_record(patient=patient, recorded_by=treating_clinician)
    assert "no_known_allergies" in error.value.message_dict
    assert Patient.objects.get(pk=patient.pk).no_known_allergies_at is None


def test_entered_in_error_needs_a_reason_and_happens_once(patient, treating_clinician):
    allergy = _record(patient, treating_clinician)
    with pytest.raises(ValidationError) as error:
        allergy_mark_entered_in_error(allergy=allergy, by=treating_clinician, reason="  ")
    assert "reason" in error.value.message_dict
    allergy.refresh_from_db()
    assert allergy.entered_in_error_at is None

    allergy_mark_entered_in_error(allergy=allergy, by=treating_clinician, reason="Wrong chart")
    with pytest.raises(ValidationError) as again:
        allergy_mark_entered_in_error(allergy=allergy, by=treating_clinician, reason="Again")
    assert "allergy" in again.value.message_dict
    assert not Allergy.objects.exists()  # the default manager: current entries only
    assert Allergy.all_objects.get().entered_in_error_reason == "Wrong chart"


# --- Pages: banner, section, HTMX form --------------------------------------------------------


def test_banner_says_not_recorded_then_no_known_allergies(
    client, login, patient, treating_clinician
):
    login(client, treating_clinician)
    assert "Allergies not recorded" in _banner(_dashboard(client, patient))

    response = client.post(reverse("patients:allergy_none_known", args=[patient.pk]), headers=HX)

    assert response.status_code == 200
    assert b"<html" not in response.content  # the dashboard's live body only
    banner = _banner(response.content.decode())
    assert "No known allergies" in banner
    assert treating_clinician.get_full_name() in banner
    assert AccessLog.objects.filter(
        action="update", object_type="Patient", object_id=str(patient.pk)
    ).exists()


def test_no_known_allergies_on_a_chart_that_has_one_is_a_400_not_a_500(
    client, login, patient, treating_clinician
):
    _record(patient, treating_clinician)  # another user's page was loaded before this
    login(client, treating_clinician)
    response = client.post(reverse("patients:allergy_none_known", args=[patient.pk]), headers=HX)
    assert response.status_code == 400
    assert Patient.objects.get(pk=patient.pk).no_known_allergies_at is None


def test_care_team_records_an_allergy_with_htmx_and_the_banner_shows_it(
    client, login, patient, treating_clinician
):
    login(client, treating_clinician)

    response = client.post(_create_url(patient), PACLITAXEL, headers=HX)

    assert response.status_code == 200
    assert b"<html" not in response.content
    assert "Allergies:" in _banner(response.content.decode())
    assert "Paclitaxel (severe: anaphylaxis)" in _banner(response.content.decode())
    allergy = Allergy.objects.get(patient=patient)
    assert allergy.recorded_by == treating_clinician
    assert AccessLog.objects.filter(
        action="create", object_type="Allergy", object_id=str(allergy.pk), surface="fragment"
    ).exists()
    # Without JavaScript: the same form redirects to the chart, which shows the banner.
    plain = client.post(_create_url(patient), {**PACLITAXEL, "substance": "Penicillin"})
    assert plain.status_code == 302
    assert "Penicillin (severe: anaphylaxis)" in _banner(_dashboard(client, patient))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**PACLITAXEL, "substance": ""}, "substance"),
        ({**PACLITAXEL, "severity": "fatal"}, "severity"),
        ({**PACLITAXEL, "reaction": ""}, "reaction"),  # severity without the reaction
    ],
)
def test_allergy_form_bad_input_is_400_naming_the_field_and_writes_nothing(
    client, login, patient, treating_clinician, data, field
):
    login(client, treating_clinician)
    response = client.post(_create_url(patient), data, headers=HX)
    assert response.status_code == 400
    assert field in response.context["allergy_form"].errors
    assert not Allergy.all_objects.exists()


def test_outsider_gets_404_on_every_allergy_page_door(client, login, patient, other_clinician):
    allergy = _record(patient, UserFactory.create())
    login(client, other_clinician)
    for headers in ({}, HX):
        assert client.post(_create_url(patient), PACLITAXEL, headers=headers).status_code == 404
        assert (
            client.post(
                reverse("patients:allergy_none_known", args=[patient.pk]), headers=headers
            ).status_code
            == 404
        )
        assert client.post(_error_url(allergy), {"reason": "x"}, headers=headers).status_code == 404
    assert Allergy.all_objects.count() == 1
    allergy.refresh_from_db()
    assert allergy.entered_in_error_at is None
    assert AccessLog.objects.filter(
        patient_id=patient.pk, outcome="denied", user_id=other_clinician.pk
    ).exists()


def test_entered_in_error_leaves_the_banner_but_stays_in_the_record(
    client, login, patient, treating_clinician
):
    allergy = _record(patient, treating_clinician)
    login(client, treating_clinician)

    response = client.post(
        _error_url(allergy), {"reason": "Recorded on the wrong chart"}, headers=HX
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "Allergies not recorded" in _banner(html)
    assert "Paclitaxel" not in _banner(html)
    assert "Entered in error (1)" in html
    assert "Recorded on the wrong chart" in html
    kept = Allergy.all_objects.get(pk=allergy.pk)
    assert kept.entered_in_error_by == treating_clinician
    assert AccessLog.objects.filter(
        action="update", object_type="Allergy", object_id=str(allergy.pk)
    ).exists()
    # The marked entry is no longer a door: marking it again is the gate's 404.
    again = client.post(_error_url(allergy), {"reason": "again"}, headers=HX)
    assert again.status_code == 404


def test_entered_in_error_without_reason_is_400(client, login, patient, treating_clinician):
    allergy = _record(patient, treating_clinician)
    login(client, treating_clinician)
    response = client.post(_error_url(allergy), {"reason": ""}, headers=HX)
    assert response.status_code == 400
    assert "reason" in response.context["allergy_error_form"].errors
    assert Allergy.objects.filter(pk=allergy.pk).exists()


def test_banner_is_on_the_cycle_page_through_the_patient_strip(
    client, login, patient, treating_clinician
):
    course = course_with_cycles(patient, regimen=regimen_with_anc_rules(cycles=2), given=0, total=2)
    _record(patient, treating_clinician)
    login(client, treating_clinician)
    for url in (
        reverse("treatments:cycle_detail", args=[patient.pk, course.pk, 1]),
        reverse("treatments:course_detail", args=[patient.pk, course.pk]),
        reverse("patients:measurement_create", args=[patient.pk]),
        reverse("labs:lab_trends", args=[patient.pk]),
        reverse("labs:lab_import", args=[patient.pk]),
        reverse("treatments:course_summary", args=[patient.pk, course.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "Paclitaxel (severe: anaphylaxis)" in _banner(response.content.decode()), url


# --- REST -------------------------------------------------------------------------------------


def _post(client, url: str, body: object):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def test_api_allergies_record_list_and_entered_in_error(client, login, patient, treating_clinician):
    login(client, treating_clinician)
    url = f"{API}/patients/{patient.pk}/allergies"
    assert client.get(url).json()["status"] == "not_recorded"

    mark = AccessLog.objects.count()
    created = _post(
        client, url, {"substance": "Carboplatin", "severity": "severe", "reaction": "Bronchospasm"}
    )
    assert created.status_code == 201, created.content
    allergy_id = created.json()["id"]
    assert ("create", "api") in [
        (r.action, r.surface) for r in AccessLog.objects.order_by("pk")[mark:]
    ]

    mark = AccessLog.objects.count()
    listing = client.get(url).json()
    assert listing["status"] == "allergies"
    assert [(a["id"], a["substance"], a["severity"]) for a in listing["items"]] == [
        (allergy_id, "Carboplatin", "severe")
    ]
    assert [
        (r.action, r.object_type, r.surface) for r in AccessLog.objects.order_by("pk")[mark:]
    ] == [("list", "Allergy", "api")]

    marked = _post(client, f"{url}/{allergy_id}/entered-in-error", {"reason": "Wrong patient"})
    assert marked.status_code == 200
    assert marked.json()["entered_in_error_at"] is not None
    assert client.get(url).json()["items"] == []
    assert Allergy.all_objects.filter(pk=allergy_id).exists()

    none_known = _post(client, f"{url}/none-known", {})
    assert none_known.status_code == 200
    assert none_known.json()["status"] == "none_known"
    assert none_known.json()["no_known_allergies_by_id"] == treating_clinician.pk


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"substance": ""}, "substance"),
        ({"substance": "Latex", "category": "astrology"}, "category"),
        ({"substance": "Latex", "severity": "mild"}, "reaction"),
        ({"substance": "Latex", "drug_id": 999999}, "drug_id"),
        ({"substance": "Latex", "owner": 1}, "owner"),  # unknown fields are refused
    ],
)
def test_api_allergy_bad_input_is_400_naming_the_field(
    client, login, patient, treating_clinician, body, field
):
    login(client, treating_clinician)
    response = _post(client, f"{API}/patients/{patient.pk}/allergies", body)
    assert response.status_code == 400, response.content
    assert field in json.dumps(response.json())
    assert not Allergy.all_objects.exists()


def test_api_allergy_routes_are_404_outside_the_care_team(client, login, patient, other_clinician):
    allergy = _record(patient, UserFactory.create())
    login(client, other_clinician)
    url = f"{API}/patients/{patient.pk}/allergies"
    assert client.get(url).status_code == 404
    assert _post(client, url, {"substance": "Latex"}).status_code == 404
    assert _post(client, f"{url}/none-known", {}).status_code == 404
    assert _post(client, f"{url}/{allergy.pk}/entered-in-error", {"reason": "x"}).status_code == 404
    assert Allergy.all_objects.count() == 1
    assert Allergy.objects.get().entered_in_error_at is None


# --- GraphQL ----------------------------------------------------------------------------------

GQL = "query($id: ID!) { patient(id: $id) { id allergies { substance severity reaction drugId } } }"


def _gql(client, query: str, variables: dict | None = None) -> dict:
    response = client.post(
        "/graphql/",
        data=json.dumps({"query": query, "variables": variables or {}}),
        content_type="application/json",
    )
    return response.json()


def test_graphql_allergies_on_the_patient_leave_entries_in_error_out(
    client, login, patient, treating_clinician
):
    kept = _record(patient, treating_clinician)
    wrong = _record(patient, treating_clinician, substance="Latex", category="environment")
    allergy_mark_entered_in_error(allergy=wrong, by=treating_clinician, reason="Wrong chart")
    login(client, treating_clinician)
    body = _gql(client, GQL, {"id": patient.pk})
    assert "errors" not in body, body
    assert body["data"]["patient"]["allergies"] == [
        {
            "substance": kept.substance,
            "severity": "severe",
            "reaction": "anaphylaxis",
            "drugId": kept.drug_id,
        }
    ]


def test_graphql_allergies_of_another_patient_are_not_found(
    client, login, patient, other_clinician
):
    _record(patient, UserFactory.create())
    login(client, other_clinician)
    body = _gql(client, GQL, {"id": patient.pk})
    assert body["data"] == {"patient": None}
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_graphql_allergies_of_a_patient_list_cost_one_query(
    client, login, care_team, patient, treating_clinician
):
    query = "{ patients { id allergies { substance } } }"
    _record(patient, treating_clinician)
    # From two patients: a list of one is logged against that patient alone, a longer one also
    # indexes each patient it showed (one insert, however many).
    _record(patient_through_service(care_team, family_name="Adams"), treating_clinician)
    login(client, treating_clinician)
    _gql(client, "{ me { id } }")
    with CaptureQueriesContext(connection) as two:
        _gql(client, query)
    for name in ("Baker", "Clark", "Dixon"):
        other = patient_through_service(care_team, family_name=name)
        _record(other, treating_clinician)
    with CaptureQueriesContext(connection) as five:
        body = _gql(client, query)
    assert len(body["data"]["patients"]) == 5
    assert all(len(p["allergies"]) == 1 for p in body["data"]["patients"])
    assert len(two.captured_queries) == len(five.captured_queries)


# --- FHIR -------------------------------------------------------------------------------------


def _bundle(client, patient: Patient) -> dict:
    response = client.get(reverse("patients:patient_fhir_export", args=[patient.pk]))
    assert response.status_code == 200
    data = json.loads(response.content)
    Bundle.model_validate(data)  # valid FHIR (R4B, which is R4 for AllergyIntolerance)
    return data


def _allergy_resources(data: dict) -> list[dict]:
    return [
        e["resource"]
        for e in data["entry"]
        if e["resource"]["resourceType"] == "AllergyIntolerance"
    ]


def test_fhir_bundle_has_allergy_intolerances_with_status_and_criticality(
    client, login, patient, treating_clinician
):
    DrugFactory.create(name="Paclitaxel")
    _record(patient, treating_clinician)
    wrong = _record(
        patient,
        treating_clinician,
        substance="Latex",
        category="environment",
        severity="",
        reaction="",
    )
    allergy_mark_entered_in_error(allergy=wrong, by=treating_clinician, reason="Wrong chart")
    login(client, treating_clinician)

    data = _bundle(client, patient)

    active, in_error = _allergy_resources(data)
    assert active["code"] == {"text": "Paclitaxel"}
    assert active["clinicalStatus"]["coding"][0]["code"] == "active"
    assert active["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert active["category"] == ["medication"]
    assert active["criticality"] == "high"
    assert active["reaction"] == [
        {
            "substance": {"text": "Paclitaxel"},
            "manifestation": [{"text": "anaphylaxis"}],
            "severity": "severe",
        }
    ]
    urls = {e["fullUrl"] for e in data["entry"]}
    assert active["recorder"]["reference"] in urls  # a Practitioner in the Bundle
    assert active["patient"]["reference"] in urls
    assert in_error["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    assert "clinicalStatus" not in in_error  # FHIR ait-2
    assert in_error["criticality"] == "unable-to-assess"
    assert "reaction" not in in_error


def test_fhir_bundle_says_no_known_allergy_when_recorded(
    client, login, patient, treating_clinician
):
    login(client, treating_clinician)
    assert _allergy_resources(_bundle(client, patient)) == []  # never asked: nothing claimed
    patient_no_known_allergies_record(patient=patient, recorded_by=treating_clinician)

    (statement,) = _allergy_resources(_bundle(client, patient))

    assert statement["code"]["coding"][0] == {
        "system": "http://snomed.info/sct",
        "code": "716186003",
        "display": "No known allergy",
    }
    assert statement["clinicalStatus"]["coding"][0]["code"] == "active"


# --- Portal -----------------------------------------------------------------------------------


def test_portal_care_page_shows_the_patients_own_current_allergies(
    client, patient, treating_clinician
):
    _record(patient, treating_clinician)
    wrong = _record(patient, treating_clinician, substance="Latex", category="environment")
    allergy_mark_entered_in_error(allergy=wrong, by=treating_clinician, reason="Wrong chart")
    user = UserFactory.create()
    Patient.objects.filter(pk=patient.pk).update(portal_user=user)
    client.force_login(user)

    html = client.get(reverse("portal:care_team")).content.decode()

    section = html[html.index('id="portal-allergies"') :]
    assert "Paclitaxel" in section
    assert "Latex" not in section
    assert "<form" not in section  # read-only
    assert AccessLog.objects.filter(
        patient_id=patient.pk, action="list", object_type="Allergy", user_id=user.pk
    ).exists()
