"""Registering a patient through REST (POST /api/v1/patients) and GraphQL (registerPatient):
the rules of the registration page (/patients/new/), through patients.services.patient_register.

Personas from conftest.py: treating_clinician (on care_team "GI oncology" only),
other_clinician (on no team), admin_user (administrator).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AccessLog
from oncoplanner.accounts.api_tokens import api_token_create
from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import ClinicianFactory, UserFactory
from patients.models import CareTeam, Patient
from patients.services import care_team_add_member, care_team_create, patient_create

pytestmark = pytest.mark.django_db

URL = "/api/v1/patients"
NEW: dict[str, Any] = {
    "mrn": " reg-7731 ",  # stored without spaces, in capitals, as the page stores it
    "given_name": "Wilhelmina",
    "family_name": "Registerova",
    "date_of_birth": "1961-07-02",
    "sex": "female",
    "phone": "+44 20 7946 0000",
    "email": "w.registerova@example.org",
    "primary_diagnosis": "Adenocarcinoma of the sigmoid colon",
    "icd10_code": "c18.7",
    "stage": "IIIB",
    "ecog": 1,
}
MRN = "REG-7731"


def _client(user: User) -> Client:
    _, raw = api_token_create(
        user=user, name="test", expires_at=timezone.now() + dt.timedelta(days=7), created_by=user
    )
    return Client(headers={"Authorization": f"Bearer {raw}"})


def _post(client: Client, body: dict[str, Any]) -> Any:
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def _fields(response: Any) -> dict[str, str]:
    """{field: message} of a 400 in the API's error shape (loc ["body", field])."""
    return {item["loc"][-1]: item["msg"] for item in response.json()["detail"]}


@pytest.fixture
def foreign_team(db: None) -> CareTeam:
    return care_team_create(name="Neuro-oncology (foreign)")


# --- REST ------------------------------------------------------------------------------------


def test_rest_register_creates_the_patient_on_my_team_and_audits_it(treating_clinician, care_team):
    client = _client(treating_clinician)

    response = _post(client, {**NEW, "care_team_id": care_team.pk})

    assert response.status_code == 201, response.content
    body = response.json()
    patient = Patient.objects.get(mrn=MRN)
    assert body["id"] == patient.pk
    assert (body["mrn"], body["icd10_code"], body["care_team_id"]) == (MRN, "C18.7", care_team.pk)
    assert (patient.date_of_birth, patient.sex, patient.ecog) == (dt.date(1961, 7, 2), "female", 1)
    log = AccessLog.objects.get(
        action=AccessLog.Action.CREATE, object_type="Patient", object_id=str(patient.pk)
    )
    assert log.surface == "api"
    # The team's access came with it: the new chart opens on the next request.
    assert client.get(f"{URL}/{patient.pk}").status_code == 200


def test_rest_register_with_one_team_takes_it_when_care_team_id_is_left_out(
    treating_clinician, care_team
):
    response = _post(_client(treating_clinician), NEW)
    assert response.status_code == 201, response.content
    assert Patient.objects.get(mrn=MRN).care_team == care_team


def test_rest_register_with_two_teams_needs_one_named(treating_clinician, care_team, admin_user):
    second = care_team_create(name="Lymphoma")
    care_team_add_member(team=second, clinician=treating_clinician, granted_by=admin_user)
    client = _client(treating_clinician)

    response = _post(client, NEW)

    assert response.status_code == 400
    assert _fields(response) == {"care_team_id": "Choose one of your own care teams."}
    assert not Patient.objects.exists()
    assert _post(client, {**NEW, "care_team_id": second.pk}).status_code == 201
    assert Patient.objects.get(mrn=MRN).care_team == second


def test_rest_register_on_a_team_not_mine_is_400_like_a_missing_team(
    treating_clinician, care_team, foreign_team
):
    client = _client(treating_clinician)
    missing = CareTeam.objects.order_by("-pk").first().pk + 100

    foreign = _post(client, {**NEW, "care_team_id": foreign_team.pk})
    absent = _post(client, {**NEW, "care_team_id": missing})

    assert foreign.status_code == absent.status_code == 400
    assert foreign.content == absent.content  # nothing tells a real team from a missing one
    assert _fields(foreign) == {"care_team_id": "Choose one of your own care teams."}
    assert not Patient.objects.exists()
    assert not AccessLog.objects.filter(action=AccessLog.Action.CREATE).exists()


def test_rest_register_by_a_clinician_on_no_team_creates_nothing(other_clinician, care_team):
    response = _post(_client(other_clinician), {**NEW, "care_team_id": care_team.pk})
    assert response.status_code == 400
    assert "care_team_id" in _fields(response)
    assert not Patient.objects.exists()


def test_rest_register_is_not_for_administrators_or_patients(admin_user, care_team):
    portal_user = UserFactory.create(role=User.Role.PATIENT)
    for user in (admin_user, portal_user):
        response = _post(_client(user), {**NEW, "care_team_id": care_team.pk})
        assert response.status_code == 404, user
        assert response.json() == {"detail": "Not found."}
    assert Client().post(URL, json.dumps(NEW), content_type="application/json").status_code == 401
    assert not Patient.objects.exists()


def test_rest_register_a_duplicate_mrn_is_refused_like_the_page(treating_clinician, care_team):
    patient_create(
        created_by=None,
        care_team=care_team_create(name="Breast oncology"),
        mrn=MRN,
        given_name="Zebedee",
        family_name="Quarringtonova",
        date_of_birth=dt.date(1950, 1, 1),
        sex="male",
    )

    response = _post(_client(treating_clinician), NEW)  # " reg-7731 " is the same MRN

    assert response.status_code == 400
    assert _fields(response) == {
        "mrn": "MRN REG-7731 is already registered in this clinic. Find the patient in the "
        "list (or ask their care team): one person must not have two charts."
    }
    assert "Quarringtonova" not in response.content.decode()
    assert Patient.objects.filter(mrn=MRN).count() == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"date_of_birth": "1890-01-01"}, "date_of_birth"),
        ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
        ({"icd10_code": "not-a-code"}, "icd10_code"),
        ({"mrn": "R1"}, "mrn"),
        ({"email": "not an email"}, "email"),
        ({"sex": "x"}, "sex"),
        ({"ecog": 5}, "ecog"),
        ({"given_name": ""}, "given_name"),
        ({"given_name": None}, "given_name"),
        ({"care_team_id": 0}, "care_team_id"),
        ({"is_active": False}, "is_active"),  # no mass assignment
        ({"portal_user_id": 1}, "portal_user_id"),
    ],
)
def test_rest_register_bad_input_is_400_naming_the_field_and_writes_nothing(
    treating_clinician, care_team, change, field
):
    response = _post(_client(treating_clinician), {**NEW, **change})
    assert response.status_code == 400, response.content
    assert field in _fields(response)
    assert not Patient.objects.exists()


def test_rest_register_names_every_bad_field_the_service_finds(treating_clinician, care_team):
    response = _post(
        _client(treating_clinician),
        {**NEW, "icd10_code": "not-a-code", "date_of_birth": "1890-01-01"},
    )
    assert response.status_code == 400
    assert set(_fields(response)) == {"icd10_code", "date_of_birth"}


def test_rest_register_is_in_the_openapi_schema(treating_clinician):
    schema = _client(treating_clinician).get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/patients"]["post"]
    assert operation["operationId"] == "patients_api_patient_create"
    assert set(operation["responses"]) >= {"201", "400", "401", "404"}
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/PatientIn")
    properties = schema["components"]["schemas"]["PatientIn"]
    assert set(properties["required"]) == {
        "mrn",
        "given_name",
        "family_name",
        "date_of_birth",
        "sex",
    }
    assert "care_team_id" in properties["properties"]


# --- GraphQL ---------------------------------------------------------------------------------

REGISTER = """mutation($mrn: String!, $dob: Date!, $team: ID, $icd: String! = "") {
  registerPatient(mrn: $mrn, givenName: "Wilhelmina", familyName: "Registerova",
    dateOfBirth: $dob, sex: "female", careTeamId: $team, icd10Code: $icd) {
    id mrn familyName } }"""


def _gql(client: Client, variables: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        "/graphql/",
        data=json.dumps({"query": REGISTER, "variables": variables}),
        content_type="application/json",
    )
    return response.json()


@pytest.fixture
def signed_in(client, login):
    def _sign_in(user: User) -> Client:
        return login(client, user)

    return _sign_in


def test_graphql_register_patient_through_the_service(signed_in, treating_clinician, care_team):
    body = _gql(signed_in(treating_clinician), {"mrn": "reg-7731", "dob": "1961-07-02"})

    assert "errors" not in body, body
    patient = Patient.objects.get(mrn=MRN)
    assert body["data"]["registerPatient"] == {
        "id": str(patient.pk),
        "mrn": MRN,
        "familyName": "Registerova",
    }
    assert patient.care_team == care_team  # the clinician's one team
    log = AccessLog.objects.get(action=AccessLog.Action.CREATE, object_type="Patient")
    assert log.surface == "graphql"


def test_graphql_register_patient_on_a_team_not_mine_names_the_field(
    signed_in, treating_clinician, care_team, foreign_team
):
    client = signed_in(treating_clinician)
    answers = [
        _gql(client, {"mrn": MRN, "dob": "1961-07-02", "team": str(team)})
        for team in (foreign_team.pk, foreign_team.pk + 100, "abc")
    ]
    (error,) = answers[0]["errors"]
    assert error["extensions"]["fields"] == {"care_team": ["Choose one of your own care teams."]}
    assert answers[0] == answers[1] == answers[2]
    assert not Patient.objects.exists()


def test_graphql_register_patient_bad_fields_and_duplicates_name_the_field(
    signed_in, treating_clinician, care_team
):
    client = signed_in(treating_clinician)
    body = _gql(client, {"mrn": MRN, "dob": "1890-01-01", "icd": "nope"})
    (error,) = body["errors"]
    assert set(error["extensions"]["fields"]) == {"date_of_birth", "icd10_code"}
    assert not Patient.objects.exists()

    assert "errors" not in _gql(client, {"mrn": MRN, "dob": "1961-07-02"})
    (error,) = _gql(client, {"mrn": MRN.lower(), "dob": "1961-07-02"})["errors"]
    assert list(error["extensions"]["fields"]) == ["mrn"]
    assert Patient.objects.count() == 1


def test_graphql_register_patient_is_not_for_administrators_or_patients(
    signed_in, admin_user, care_team
):
    portal_user = UserFactory.create(role=User.Role.PATIENT)
    for user in (admin_user, portal_user):
        body = _gql(signed_in(user), {"mrn": MRN, "dob": "1961-07-02", "team": care_team.pk})
        (error,) = body["errors"]
        assert error["message"] == "not found", user
    assert not Patient.objects.exists()


def test_graphql_register_patient_by_an_outside_clinician_creates_nothing(signed_in, care_team):
    outsider = ClinicianFactory.create(username="dr_register_outsider")
    body = _gql(signed_in(outsider), {"mrn": MRN, "dob": "1961-07-02", "team": care_team.pk})
    (error,) = body["errors"]
    assert "care_team" in error["extensions"]["fields"]
    assert not Patient.objects.exists()
