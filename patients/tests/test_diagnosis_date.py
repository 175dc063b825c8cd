"""The date of the primary cancer diagnosis (Patient.diagnosed_on) on every door that carries the
diagnosis: the details and registration pages, the chart, the course summary, admin, REST and
GraphQL (FHIR's Condition.onsetDateTime is in test_fhir.py). The portal shows no diagnosis, so
it shows no date of it either.

Personas from conftest.py: treating_clinician (on the patient's care team "GI oncology"),
other_clinician (on no team: an outsider), admin_user (administrator).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oncoplanner.accounts.api_tokens import api_token_create
from oncoplanner.accounts.models import User
from patients.models import Patient
from patients.services import patient_update
from patients.tests.factories import admin_add_form_data, details_form_data
from treatments.tests.factories import CourseFactory

pytestmark = pytest.mark.django_db

BORN = dt.date(1960, 5, 17)  # PatientFactory's date of birth
DIAGNOSED = dt.date(2025, 3, 3)


def _edit(patient: Patient) -> str:
    return reverse("patients:patient_update", args=[patient.pk])


def _chart(patient: Patient) -> str:
    return reverse("patients:patient_detail", args=[patient.pk])


def _diagnosed(patient: Patient, on: dt.date | None = DIAGNOSED) -> Patient:
    return patient_update(patient=patient, updated_by=None, diagnosed_on=on)


# --- The details page -------------------------------------------------------------------------


def test_edit_details_records_the_date_of_diagnosis_and_the_chart_shows_it(
    client, login, patient, treating_clinician
):
    login(client, treating_clinician)
    assert 'name="diagnosed_on"' in client.get(_edit(patient)).content.decode()

    response = client.post(_edit(patient), details_form_data(patient, diagnosed_on="2025-03-03"))

    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.diagnosed_on == DIAGNOSED
    html = client.get(_chart(patient)).content.decode()
    header = html[html.index('id="patient-header"') :]
    assert 'stage IIIB · <span id="diagnosed-on">diagnosed 3 Mar 2025</span>' in header
    # The form offers the recorded date back as the date input's ISO value.
    assert 'value="2025-03-03"' in client.get(_edit(patient)).content.decode()


def test_edit_details_blank_date_of_diagnosis_is_allowed_and_clears_it(
    client, login, patient, treating_clinician
):
    _diagnosed(patient)
    login(client, treating_clinician)

    response = client.post(_edit(patient), details_form_data(patient, diagnosed_on=""))

    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.diagnosed_on is None
    assert 'id="diagnosed-on"' not in client.get(_chart(patient)).content.decode()


@pytest.mark.parametrize(
    ("diagnosed_on", "message"),
    [
        (
            lambda: timezone.localdate() + dt.timedelta(days=1),
            "Date of diagnosis cannot be in the future.",
        ),
        (
            lambda: BORN - dt.timedelta(days=1),
            "The date of diagnosis (16 May 1960) is before the patient's date of birth "
            "(17 May 1960).",
        ),
        (lambda: "2025-02-30", "Enter a valid date."),
    ],
    ids=["tomorrow", "before-birth", "not-a-date"],
)
def test_edit_details_bad_date_of_diagnosis_is_400_naming_the_field_and_writes_nothing(
    client, login, patient, treating_clinician, diagnosed_on, message
):
    _diagnosed(patient)
    before = Patient.objects.values().get(pk=patient.pk)
    login(client, treating_clinician)
    value = diagnosed_on()
    value = value if isinstance(value, str) else value.isoformat()

    response = client.post(
        _edit(patient), details_form_data(patient, diagnosed_on=value, stage="IVA")
    )

    assert response.status_code == 400
    assert response.context["form"].errors["diagnosed_on"] == [message]
    html = response.content.decode()
    field = html[html.index('id="field-diagnosed_on"') :]
    assert message.replace("'", "&#x27;") in field[: field.index("</div>\n")]
    assert Patient.objects.values().get(pk=patient.pk) == before  # the stage was not saved


def test_edit_details_today_is_a_valid_date_of_diagnosis(
    client, login, patient, treating_clinician
):
    login(client, treating_clinician)
    today = timezone.localdate()
    response = client.post(
        _edit(patient), details_form_data(patient, diagnosed_on=today.isoformat())
    )
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.diagnosed_on == today


def test_edit_details_date_of_diagnosis_is_404_outside_the_care_team(
    client, login, patient, other_clinician
):
    login(client, other_clinician)
    response = client.post(_edit(patient), details_form_data(patient, diagnosed_on="2025-03-03"))
    assert response.status_code == 404
    assert client.get(_chart(patient)).status_code == 404
    patient.refresh_from_db()
    assert patient.diagnosed_on is None


# --- Registering a patient --------------------------------------------------------------------

REGISTER = reverse("patients:patient_create")
NEW = {
    "mrn": "DX-0001",
    "given_name": "Wilhelmina",
    "family_name": "Diagnosova",
    "date_of_birth": "1961-07-02",
    "sex": "female",
    "primary_diagnosis": "Adenocarcinoma of the sigmoid colon",
    "icd10_code": "C18.7",
    "stage": "IIIB",
    "diagnosed_on": "2025-03-03",
}


def test_register_takes_the_date_of_diagnosis(client, login, care_team, treating_clinician):
    login(client, treating_clinician)
    response = client.post(REGISTER, NEW)
    assert response.status_code == 302
    assert Patient.objects.get(mrn="DX-0001").diagnosed_on == DIAGNOSED


def test_register_a_date_of_diagnosis_before_birth_is_400_with_the_other_bad_fields(
    client, login, care_team, treating_clinician
):
    login(client, treating_clinician)
    response = client.post(REGISTER, {**NEW, "diagnosed_on": "1961-07-01", "icd10_code": "nope"})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {"diagnosed_on", "icd10_code"}  # every bad field at once
    assert "before the patient's date of birth (2 Jul 1961)" in errors["diagnosed_on"][0]
    assert not Patient.objects.exists()


# --- Course summary ----------------------------------------------------------------------------


def test_course_summary_shows_the_date_of_diagnosis_beside_the_diagnosis(
    client, login, patient, treating_clinician
):
    course = CourseFactory.create(patient=patient, created_by=treating_clinician)
    url = reverse("treatments:course_summary", args=[patient.pk, course.pk])
    login(client, treating_clinician)
    assert "diagnosed" not in client.get(url).content.decode()  # none recorded: nothing said

    _diagnosed(patient)

    html = client.get(url).content.decode()
    assert "Adenocarcinoma of sigmoid colon, stage IIIB, diagnosed 3 Mar 2025</dd>" in html


# --- The portal ---------------------------------------------------------------------------------


def test_portal_shows_no_date_of_diagnosis(client, patient, portal_user):
    # The portal shows the patient no diagnosis; a date of it alone would say what it does not.
    _diagnosed(patient)
    client.force_login(portal_user)
    for name in ("portal:home", "portal:care_team", "portal:lab_results", "portal:symptoms"):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        assert "3 Mar 2025" not in response.content.decode(), name
        assert "diagnos" not in response.content.decode().lower(), name


# --- Admin -------------------------------------------------------------------------------------


def test_admin_patient_form_takes_the_date_of_diagnosis_and_refuses_a_future_one(
    client, login, admin_user, care_team
):
    login(client, admin_user)
    add = reverse("admin:patients_patient_add")
    assert 'name="diagnosed_on"' in client.get(add).content.decode()
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()

    refused = client.post(add, admin_add_form_data(care_team, diagnosed_on=tomorrow))

    assert refused.status_code == 200  # the admin's form again, with the error
    assert refused.context["adminform"].form.errors["diagnosed_on"] == [
        "Date of diagnosis cannot be in the future."
    ]
    assert not Patient.objects.exists()
    assert (
        client.post(add, admin_add_form_data(care_team, diagnosed_on="2025-03-03")).status_code
        == 302
    )
    assert Patient.objects.get(mrn="MRN-ADMIN-1").diagnosed_on == DIAGNOSED


# --- REST ----------------------------------------------------------------------------------------

API = "/api/v1/patients"


def _token_client(user: User) -> Client:
    _, raw = api_token_create(
        user=user, name="test", expires_at=timezone.now() + dt.timedelta(days=7), created_by=user
    )
    return Client(headers={"Authorization": f"Bearer {raw}"})


def _patch(client: Client, patient: Patient, body: dict[str, Any]) -> Any:
    return client.patch(
        f"{API}/{patient.pk}", data=json.dumps(body), content_type="application/json"
    )


def _fields(response: Any) -> dict[str, str]:
    return {item["loc"][-1]: item["msg"] for item in response.json()["detail"]}


def test_rest_patient_returns_the_date_of_diagnosis(patient, treating_clinician):
    client = _token_client(treating_clinician)
    assert client.get(f"{API}/{patient.pk}").json()["diagnosed_on"] is None
    _diagnosed(patient)
    assert client.get(f"{API}/{patient.pk}").json()["diagnosed_on"] == "2025-03-03"
    (row,) = client.get(API).json()["items"]
    assert row["diagnosed_on"] == "2025-03-03"


def test_rest_patch_sets_and_clears_the_date_of_diagnosis(patient, treating_clinician):
    client = _token_client(treating_clinician)

    response = _patch(client, patient, {"diagnosed_on": "2025-03-03"})

    assert response.status_code == 200, response.content
    assert response.json()["diagnosed_on"] == "2025-03-03"
    patient.refresh_from_db()
    assert patient.diagnosed_on == DIAGNOSED
    # A stage change leaves it as it is; null clears it (as ECOG: its empty value is null).
    assert _patch(client, patient, {"stage": "IVA"}).json()["diagnosed_on"] == "2025-03-03"
    assert _patch(client, patient, {"diagnosed_on": None}).json()["diagnosed_on"] is None
    patient.refresh_from_db()
    assert patient.diagnosed_on is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (lambda: (timezone.localdate() + dt.timedelta(days=1)).isoformat(), "in the future"),
        (lambda: "1960-05-16", "before the patient's date of birth"),
        (lambda: "3 March 2025", "date"),
    ],
    ids=["tomorrow", "before-birth", "not-iso"],
)
def test_rest_patch_bad_date_of_diagnosis_is_400_naming_the_field_and_writes_nothing(
    patient, treating_clinician, value, words
):
    before = Patient.objects.values().get(pk=patient.pk)
    response = _patch(
        _token_client(treating_clinician), patient, {"diagnosed_on": value(), "stage": "IVA"}
    )
    assert response.status_code == 400
    assert words in _fields(response)["diagnosed_on"]
    assert Patient.objects.values().get(pk=patient.pk) == before


def test_rest_register_takes_the_date_of_diagnosis_and_refuses_a_future_one(
    care_team, treating_clinician
):
    client = _token_client(treating_clinician)
    body = dict(NEW)
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()

    refused = client.post(
        API, data=json.dumps({**body, "diagnosed_on": tomorrow}), content_type="application/json"
    )

    assert refused.status_code == 400
    assert _fields(refused) == {"diagnosed_on": "Date of diagnosis cannot be in the future."}
    assert not Patient.objects.exists()
    created = client.post(API, data=json.dumps(body), content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["diagnosed_on"] == "2025-03-03"
    assert Patient.objects.get(mrn="DX-0001").diagnosed_on == DIAGNOSED


def test_rest_date_of_diagnosis_is_404_outside_the_care_team(patient, other_clinician):
    _diagnosed(patient)
    client = _token_client(other_clinician)
    response = client.get(f"{API}/{patient.pk}")
    assert response.status_code == 404
    assert "2025-03-03" not in response.content.decode()
    assert _patch(client, patient, {"diagnosed_on": "2024-01-01"}).status_code == 404
    patient.refresh_from_db()
    assert patient.diagnosed_on == DIAGNOSED


# --- GraphQL -------------------------------------------------------------------------------------

PATIENT_QUERY = "query($id: ID!) { patient(id: $id) { id primaryDiagnosis stage diagnosedOn } }"
REGISTER_MUTATION = """mutation($dx: Date) {
  registerPatient(mrn: "DX-0002", givenName: "Wilhelmina", familyName: "Diagnosova",
    dateOfBirth: "1961-07-02", sex: "female", primaryDiagnosis: "Adenocarcinoma of colon",
    diagnosedOn: $dx) { id diagnosedOn } }"""


def _gql(client: Client, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        "/graphql/",
        data=json.dumps({"query": query, "variables": variables}),
        content_type="application/json",
    )
    return response.json()


def test_graphql_patient_returns_the_date_of_diagnosis(client, login, patient, treating_clinician):
    login(client, treating_clinician)
    body = _gql(client, PATIENT_QUERY, {"id": patient.pk})
    assert "errors" not in body, body
    assert body["data"]["patient"]["diagnosedOn"] is None
    _diagnosed(patient)
    body = _gql(client, PATIENT_QUERY, {"id": patient.pk})
    assert body["data"]["patient"] == {
        "id": str(patient.pk),
        "primaryDiagnosis": "Adenocarcinoma of sigmoid colon",
        "stage": "IIIB",
        "diagnosedOn": "2025-03-03",
    }


def test_graphql_date_of_diagnosis_is_not_found_outside_the_care_team(
    client, login, patient, other_clinician
):
    _diagnosed(patient)
    login(client, other_clinician)
    body = _gql(client, PATIENT_QUERY, {"id": patient.pk})
    assert body["data"] == {"patient": None}
    assert [e["message"] for e in body["errors"]] == ["not found"]


def test_graphql_register_patient_takes_the_date_of_diagnosis_and_names_a_bad_one(
    client, login, care_team, treating_clinician
):
    login(client, treating_clinician)
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()

    refused = _gql(client, REGISTER_MUTATION, {"dx": tomorrow})

    (error,) = refused["errors"]
    assert error["extensions"]["fields"] == {
        "diagnosed_on": ["Date of diagnosis cannot be in the future."]
    }
    assert not Patient.objects.exists()
    body = _gql(client, REGISTER_MUTATION, {"dx": "2025-03-03"})
    assert "errors" not in body, body
    assert body["data"]["registerPatient"]["diagnosedOn"] == "2025-03-03"
    assert Patient.objects.get(mrn="DX-0002").diagnosed_on == DIAGNOSED
