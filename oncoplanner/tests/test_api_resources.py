"""REST API (/api/v1/): resources, outsiders, patient scope, bad input, CSRF, access log, query
budget. Personas from conftest.py: treating_clinician (on the patient's care team),
other_clinician (outsider)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AccessLog
from labs.models import LabResult, LabTest
from labs.services import lab_result_record, lab_results_release
from oncoplanner.accounts.api_tokens import api_token_create
from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import ClinicianFactory, UserFactory
from patients.models import Patient
from patients.services import care_team_add_member
from patients.tests.factories import BodyMeasurementFactory, patient_through_service
from treatments.dosing import dose_compute
from treatments.models import Administration, ChemoCycle, Course, CtcaeTerm, Regimen, SideEffect
from treatments.services import course_start, cycle_give
from treatments.tests.factories import AdministrationFactory, ChemoCycleFactory, CourseFactory

pytestmark = pytest.mark.django_db

API = "/api/v1"


def token_client(user: User) -> Client:
    _, raw = api_token_create(
        user=user, name="test", expires_at=timezone.now() + dt.timedelta(days=7), created_by=user
    )
    return Client(headers={"Authorization": f"Bearer {raw}"})


def post(client: Client, url: str, body: Any, **kwargs: Any) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json", **kwargs)


def anc() -> LabTest:
    return LabTest.objects.get(loinc="751-8")


def result(patient: Patient, by: User, value: str, *, days_ago: int = 1) -> LabResult:
    return lab_result_record(
        patient=patient,
        test=anc(),
        value=Decimal(value),
        unit=anc().unit,
        collected_at=timezone.now() - dt.timedelta(days=days_ago),
        recorded_by=by,
    )


@pytest.fixture
def clinician(treating_clinician: User) -> Client:
    return token_client(treating_clinician)


@pytest.fixture
def outsider(other_clinician: User) -> Client:
    return token_client(other_clinician)


@pytest.fixture
def other_patient(care_team: Any) -> Patient:
    return patient_through_service(None)


@pytest.fixture
def portal_user(patient: Patient) -> User:
    user = UserFactory.create(role=User.Role.PATIENT)
    patient.portal_user = user
    patient.save(update_fields=["portal_user"])
    return user


@pytest.fixture
def course(patient: Patient, treating_clinician: User) -> Course:
    regimen = Regimen.objects.filter(is_active=True, phases__isnull=False).first()
    return course_start(
        patient=patient,
        regimen=regimen,
        start_date=timezone.localdate() - dt.timedelta(days=2),
        intent=regimen.intent,
        created_by=treating_clinician,
    )


# --- Patients, me, readiness ------------------------------------------------------------------


def test_me_clinician_and_unauthenticated(clinician: Client, treating_clinician: User) -> None:
    response = clinician.get(f"{API}/me")
    assert response.status_code == 200
    assert response.json()["role"] == "clinician"
    assert response.json()["patient_id"] is None
    assert Client().get(f"{API}/me").status_code == 401


def test_patient_list_and_detail_scope(
    clinician: Client, outsider: Client, patient: Patient
) -> None:
    listed = clinician.get(f"{API}/patients").json()
    assert [row["id"] for row in listed["items"]] == [patient.pk]
    assert outsider.get(f"{API}/patients").json()["items"] == []
    assert clinician.get(f"{API}/patients/{patient.pk}").json()["mrn"] == patient.mrn
    missing = outsider.get(f"{API}/patients/{patient.pk}")
    assert missing.status_code == 404
    assert missing.json() == clinician.get(f"{API}/patients/999999").json()


def test_patient_patch_changes_allowed_fields_only(clinician: Client, patient: Patient) -> None:
    url = f"{API}/patients/{patient.pk}"
    ok = clinician.patch(url, data=json.dumps({"ecog": 2}), content_type="application/json")
    assert ok.status_code == 200
    patient.refresh_from_db()
    assert patient.ecog == 2
    forged = clinician.patch(
        url,
        data=json.dumps({"mrn": "HACK-1", "care_team_id": 99, "portal_user_id": 1}),
        content_type="application/json",
    )
    assert forged.status_code == 400
    fields = {tuple(item["loc"]) for item in forged.json()["detail"]}
    assert ("body", "mrn") in fields
    assert ("body", "care_team_id") in fields
    patient.refresh_from_db()
    assert patient.mrn != "HACK-1"


def test_patient_patch_service_error_names_field(clinician: Client, patient: Patient) -> None:
    future = (timezone.localdate() + dt.timedelta(days=10)).isoformat()
    response = clinician.patch(
        f"{API}/patients/{patient.pk}",
        data=json.dumps({"date_of_birth": future}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["body", "date_of_birth"]


def test_measurement_create_and_list(clinician: Client, patient: Patient) -> None:
    today = timezone.localdate().isoformat()
    url = f"{API}/patients/{patient.pk}/measurements"
    created = post(clinician, url, {"measured_on": today, "weight_kg": "64.5"})
    assert created.status_code == 201
    body = created.json()
    assert (body["weight_kg"], body["height_cm"], body["measured_on"]) == ("64.5", None, today)
    listed = clinician.get(url).json()
    assert listed["count"] == 1
    assert listed["items"][0] == body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "weight_kg"),  # neither value: the service names the weight
        ({"weight_kg": "0.5"}, "weight_kg"),
        ({"weight_kg": "64.55"}, "weight_kg"),  # 0.1 kg is the scale's precision
        ({"height_cm": "300"}, "height_cm"),
        ({"weight_kg": "60", "measured_on": "2999-01-01"}, "measured_on"),
        ({"weight_kg": "60", "bmi": "22"}, "bmi"),
    ],
)
def test_measurement_create_bad_input_is_400_naming_the_field(
    clinician: Client, patient: Patient, body: dict[str, str], field: str
) -> None:
    payload = {"measured_on": timezone.localdate().isoformat(), **body}
    response = post(clinician, f"{API}/patients/{patient.pk}/measurements", payload)
    assert response.status_code == 400
    assert field in [loc for error in response.json()["detail"] for loc in error["loc"]]
    assert not patient.measurements.exists()


def test_measurement_far_from_the_last_needs_confirm_change(
    clinician: Client, patient: Patient
) -> None:
    today = timezone.localdate().isoformat()
    url = f"{API}/patients/{patient.pk}/measurements"
    assert post(clinician, url, {"measured_on": today, "weight_kg": "55"}).status_code == 201

    typo = post(clinician, url, {"measured_on": today, "weight_kg": "5.5"})

    assert typo.status_code == 400
    (error,) = typo.json()["detail"]
    assert "weight_kg" in error["loc"]
    assert "90% less than the last one on record" in error["msg"]
    # A client can tell this refusal from a plain error and knows which flag overrules it.
    assert (error["type"], error["confirm_with"]) == ("confirmation_required", "confirm_change")
    assert patient.measurements.count() == 1
    confirmed = post(
        clinician, url, {"measured_on": today, "weight_kg": "5.5", "confirm_change": True}
    )
    assert confirmed.status_code == 201


def test_measurement_routes_are_404_outside_the_care_team(
    outsider: Client, patient: Patient
) -> None:
    url = f"{API}/patients/{patient.pk}/measurements"
    assert outsider.get(url).status_code == 404
    today = timezone.localdate().isoformat()
    assert post(outsider, url, {"measured_on": today, "weight_kg": "60"}).status_code == 404
    assert not patient.measurements.exists()


PATIENT_TEXT_FIELDS = (
    "phone",
    "email",
    "address",
    "medical_history",
    "primary_diagnosis",
    "icd10_code",
    "stage",
)


def patch(client: Client, url: str, body: Any) -> Any:
    return client.patch(url, data=json.dumps(body), content_type="application/json")


def _filled(patient: Patient) -> Patient:
    patient.phone, patient.email = "+44 20 7946 0000", "pat@example.org"
    patient.address, patient.medical_history = "1 High Street", "Type 2 diabetes since 2015"
    patient.primary_diagnosis, patient.icd10_code = "Adenocarcinoma of colon", "C18.7"
    patient.stage, patient.ecog = "IIIB", 1
    patient.save()
    return patient


@pytest.mark.parametrize("field", ["given_name", "family_name", "date_of_birth", "sex"])
def test_patient_patch_null_for_a_required_field_is_refused(
    clinician: Client, patient: Patient, field: str
) -> None:
    before = Patient.objects.values().get(pk=patient.pk)
    response = patch(clinician, f"{API}/patients/{patient.pk}", {field: None, "ecog": 3})
    assert response.status_code == 400
    (error,) = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", field], "null_not_allowed")
    assert "cannot be cleared" in error["msg"]
    assert Patient.objects.values().get(pk=patient.pk) == before  # ecog not written either


@pytest.mark.parametrize("field", PATIENT_TEXT_FIELDS)
def test_patient_patch_null_for_a_text_field_is_refused_and_says_how_to_clear(
    clinician: Client, patient: Patient, field: str
) -> None:
    """A mobile encoder's null for a field the app did not set must not erase it."""
    before = Patient.objects.values().get(pk=_filled(patient).pk)
    response = patch(clinician, f"{API}/patients/{patient.pk}", {field: None, "ecog": 3})
    assert response.status_code == 400
    (error,) = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", field], "null_not_allowed")
    assert field in error["msg"]
    assert 'send "" to clear it' in error["msg"]
    assert Patient.objects.values().get(pk=patient.pk) == before  # nothing written


def test_patient_patch_empty_string_clears_text_fields(clinician: Client, patient: Patient) -> None:
    _filled(patient)
    response = patch(
        clinician, f"{API}/patients/{patient.pk}", dict.fromkeys(PATIENT_TEXT_FIELDS, "")
    )
    assert response.status_code == 200, response.content
    patient.refresh_from_db()
    assert [getattr(patient, name) for name in PATIENT_TEXT_FIELDS] == [""] * 7
    assert patient.ecog == 1  # left out: kept


@pytest.mark.parametrize("field", ["given_name", "family_name"])
def test_patient_patch_empty_name_is_refused(
    clinician: Client, patient: Patient, field: str
) -> None:
    before = getattr(patient, field)
    response = patch(clinician, f"{API}/patients/{patient.pk}", {field: ""})
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["body", field]
    patient.refresh_from_db()
    assert getattr(patient, field) == before


def test_patient_patch_leaves_omitted_fields_untouched(clinician: Client, patient: Patient) -> None:
    before = Patient.objects.values().get(pk=_filled(patient).pk)
    response = patch(clinician, f"{API}/patients/{patient.pk}", {"stage": "IVA"})
    assert response.status_code == 200
    after = Patient.objects.values().get(pk=patient.pk)
    changed = {name for name, value in after.items() if before[name] != value}
    assert changed == {"stage", "updated_at"}
    assert after["stage"] == "IVA"


def test_patient_patch_null_clears_ecog(clinician: Client, patient: Patient) -> None:
    """ECOG's empty value is null (not assessed): the one field that takes null."""
    _filled(patient)
    response = patch(clinician, f"{API}/patients/{patient.pk}", {"ecog": None})
    assert response.status_code == 200
    patient.refresh_from_db()
    assert (patient.ecog, patient.phone) == (None, "+44 20 7946 0000")


def test_patient_patch_schema_advertises_null_for_ecog_and_diagnosed_on_only(
    clinician: Client,
) -> None:
    # Their empty value is null (not assessed, not recorded): no other field takes it.
    schema = clinician.get(f"{API}/openapi.json").json()
    properties = schema["components"]["schemas"]["PatientUpdateIn"]["properties"]
    nullable = {
        name
        for name, prop in properties.items()
        if "null" in json.dumps(prop.get("anyOf", [])) or prop.get("type") == "null"
    }
    assert nullable == {"ecog", "diagnosed_on"}
    # confirm_dose_input_change is a flag sent with a change, not a field of the chart.
    defaults = {name for name, prop in properties.items() if "default" in prop}
    assert defaults <= {"ecog", "diagnosed_on", "confirm_dose_input_change"}
    assert 'Send "" to clear it.' in properties["phone"]["description"]
    assert "Cannot be cleared." in properties["given_name"]["description"]


def test_readiness_outsider_404(
    clinician: Client, outsider: Client, patient: Patient, course: Course
) -> None:
    response = clinician.get(f"{API}/patients/{patient.pk}/readiness")
    assert response.status_code == 200
    assert response.json()["courses"][0]["course_id"] == course.pk
    assert outsider.get(f"{API}/patients/{patient.pk}/readiness").status_code == 404


def test_readiness_is_judged_for_the_next_cycle_day(
    clinician: Client, patient: Patient, treating_clinician: User
) -> None:
    regimen = Regimen.objects.filter(is_active=True, phases__isnull=False).first()
    start = timezone.localdate() + dt.timedelta(days=5)
    course_start(
        patient=patient,
        regimen=regimen,
        start_date=start,
        intent=regimen.intent,
        created_by=treating_clinician,
    )
    (course,) = clinician.get(f"{API}/patients/{patient.pk}/readiness").json()["courses"]
    assert course["cycle_day"] == start.isoformat()
    assert course["judged_at"].startswith(start.isoformat())
    assert (course["outcome"], course["labs_due"]) == ("not_evaluable", True)


# --- Courses, cycles, actions -----------------------------------------------------------------


def test_course_create_and_cycle_give(
    clinician: Client, outsider: Client, patient: Patient
) -> None:
    regimen = Regimen.objects.filter(is_active=True, phases__isnull=False).first()
    start = (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    body = {"regimen_id": regimen.pk, "start_date": start, "intent": regimen.intent}
    assert post(outsider, f"{API}/patients/{patient.pk}/courses", body).status_code == 404
    created = post(clinician, f"{API}/patients/{patient.pk}/courses", body)
    assert created.status_code == 201
    course_id = created.json()["id"]
    cycles = clinician.get(f"{API}/patients/{patient.pk}/courses/{course_id}/cycles").json()
    first = cycles["items"][0]
    give_url = f"{API}/patients/{patient.pk}/cycles/{first['id']}/give"
    version = first["version"]
    unreviewed = post(clinician, give_url, {"actual_start": start, "seen_version": version})
    assert unreviewed.status_code == 400  # no pre-cycle bloods: the check says not evaluable
    assert unreviewed.json()["detail"][0]["loc"] == ["body", "override_reason"]
    reason = "Bloods drawn at the referring hospital, reviewed by phone"
    given = post(
        clinician,
        give_url,
        {"actual_start": start, "override_reason": reason, "seen_version": version},
    )
    assert given.status_code == 200
    assert given.json()["status"] == "given"
    assert (given.json()["given_despite"], given.json()["override_reason"]) == (
        "not_evaluable",
        reason,
    )
    again = post(
        clinician,
        give_url,
        {
            "actual_start": start,
            "override_reason": reason,
            "seen_version": given.json()["version"],
        },
    )
    assert again.status_code == 400
    assert again.json()["detail"][0]["loc"] == ["body", "cycle"]


def _administration_body(cycle: ChemoCycle, checker: User, password: str) -> dict[str, Any]:
    regimen_drug = cycle.phase.drugs.order_by("order", "pk").first()
    given_at = timezone.make_aware(dt.datetime.combine(cycle.start, dt.time(10, 30)))
    return {
        "regimen_drug_id": regimen_drug.pk,
        "day_of_cycle": 1,
        "given_at": given_at.isoformat(),
        "verified_by_id": checker.pk,
        "verifier_password": password,
        "label_dose_mg": str(
            dose_compute(
                regimen_drug=regimen_drug,
                patient=cycle.course.patient,
                on_date=cycle.start,
                percent=Decimal(100),
            ).dose_mg
        ),
    }


def test_administration_needs_the_second_checkers_own_password(
    clinician: Client,
    patient: Patient,
    course: Course,
    care_team: Any,
    admin_user: User,
    treating_clinician: User,
) -> None:
    checker = ClinicianFactory.create()
    care_team_add_member(team=care_team, clinician=checker, granted_by=admin_user)
    BodyMeasurementFactory.create(
        patient=patient,
        measured_on=course.start_date,
        height_cm=Decimal("170"),
        weight_kg=Decimal("72"),
    )
    cycle = cycle_give(
        cycle=course.cycles.get(number=1),
        actual_start=course.cycles.get(number=1).planned_start,
        given_by=treating_clinician,
        override_reason="Counts reviewed at the referring hospital",
    )
    pharmacist = ClinicianFactory.create(discipline=User.Discipline.PHARMACIST)
    care_team_add_member(team=care_team, clinician=pharmacist, granted_by=admin_user)
    verify_url = f"{API}/patients/{patient.pk}/cycles/{cycle.pk}/verify"
    assert post(clinician, verify_url, {}).status_code == 403  # an oncologist does not verify
    unasked = post(token_client(pharmacist), verify_url, {"note": "Checked"})
    assert unasked.status_code == 400  # nobody has recorded the patient's allergy status
    assert "allergy status is not recorded" in unasked.text
    none_known = f"{API}/patients/{patient.pk}/allergies/none-known"
    assert post(token_client(pharmacist), none_known, {}).status_code in (200, 201)
    verified = post(token_client(pharmacist), verify_url, {"note": "Checked"})
    assert verified.status_code == 201
    assert verified.json()["verified_by_id"] == pharmacist.pk
    url = f"{API}/patients/{patient.pk}/cycles/{cycle.pk}/administrations"
    body = _administration_body(cycle, checker, "correct-horse-battery-staple")
    for missing in ("verified_by_id", "verifier_password"):
        refused = post(clinician, url, {k: v for k, v in body.items() if k != missing})
        assert refused.status_code == 400
        assert ["body", missing] in [item["loc"] for item in refused.json()["detail"]]
    wrong = post(clinician, url, {**body, "verifier_password": "not-theirs"})
    assert wrong.status_code == 400
    assert wrong.json()["detail"][0]["loc"] == ["body", "verifier_password"]
    mismatch = post(clinician, url, {**body, "label_dose_mg": "1"})
    assert mismatch.status_code == 400
    assert mismatch.json()["detail"][0]["loc"] == ["body", "label_dose_mg"]
    assert "Do not give it" in mismatch.json()["detail"][0]["msg"]
    myself = post(clinician, url, {**body, "verified_by_id": treating_clinician.pk})
    assert myself.status_code == 400
    assert not Administration.objects.exists()
    recorded = post(clinician, url, body)
    assert recorded.status_code == 201, recorded.json()
    assert recorded.json()["verified_by_id"] == checker.pk
    assert "verifier_password" not in recorded.json()
    assert Administration.objects.get().verified_by == checker


def test_administration_stopped_early_through_the_api(
    clinician: Client,
    outsider: Client,
    patient: Patient,
    course: Course,
    treating_clinician: User,
    other_clinician: User,
) -> None:
    cycle = course.cycles.get(number=1)
    cycle.status = ChemoCycle.Status.GIVEN
    cycle.save(update_fields=["status"])
    administration = AdministrationFactory.create(cycle=cycle, administered_by=treating_clinician)
    url = f"{API}/patients/{patient.pk}/cycles/{cycle.pk}/administrations/{administration.pk}/stop"
    body = {"amount_given_mg": "50.25", "reason": "Extravasation at the cannula site"}
    assert post(outsider, url, body).status_code == 404
    for bad, field in (({"amount_given_mg": "-1"}, "amount_given_mg"), ({"reason": ""}, "reason")):
        refused = post(clinician, url, {**body, **bad})
        assert refused.status_code == 400
        assert refused.json()["detail"][0]["loc"] == ["body", field]
    too_much = post(clinician, url, {**body, "amount_given_mg": "154.7"})
    assert too_much.status_code == 400
    assert too_much.json()["detail"][0]["loc"] == ["body", "amount_given_mg"]
    stopped = post(clinician, url, body)
    assert stopped.status_code == 200
    assert (stopped.json()["amount_given_mg"], stopped.json()["dose_mg"]) == ("50.25", "154.70")
    listed = clinician.get(f"{API}/patients/{patient.pk}/cycles/{cycle.pk}/administrations")
    assert listed.json()["items"][0]["stopped_reason"] == body["reason"]
    assert post(clinician, url, body).status_code == 400  # once only


def test_dose_level_below_half_needs_confirm_level(clinician: Client, course: Course) -> None:
    url = f"{API}/patients/{course.patient_id}/courses/{course.pk}/dose-modifications"
    body = {"from_cycle_number": 2, "percent": "8", "reason": "Grade 3 neutropenia"}
    refused = post(clinician, url, body)
    assert refused.status_code == 400
    (error,) = refused.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", "percent"], "confirmation_required")
    assert error["confirm_with"] == "confirm_level"
    assert post(clinician, url, {**body, "confirm_level": True}).status_code == 201


def test_course_past_a_lifetime_limit_needs_confirm_lifetime_limit(
    clinician: Client, patient: Patient, treating_clinician: User
) -> None:
    ac_t = Regimen.objects.get(name="Dose-dense AC-T", version=1)
    doxorubicin = ac_t.phases.get(order=1).drugs.get(drug__name__iexact="doxorubicin")
    earlier = CourseFactory.create(patient=patient, regimen=ac_t, status=Course.Status.COMPLETED)
    AdministrationFactory.create(  # 400 mg/m2 already: the plan's 240 would make 640
        cycle=ChemoCycleFactory.create(course=earlier, status=ChemoCycle.Status.GIVEN),
        regimen_drug=doxorubicin,
        drug=doxorubicin.drug,
        dose_mg=Decimal("736"),
        inputs={"bsa_m2": "1.84"},
    )
    start = (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    body = {"regimen_id": ac_t.pk, "start_date": start, "intent": "adjuvant"}
    url = f"{API}/patients/{patient.pk}/courses"
    refused = post(clinician, url, body)
    assert refused.status_code == 400
    (error,) = refused.json()["detail"]
    assert error["type"] == "confirmation_required"
    assert error["confirm_with"] == "confirm_lifetime_limit"
    assert "above the lifetime limit of 450 mg/m²" in error["msg"]
    assert not Course.objects.filter(status=Course.Status.ACTIVE).exists()
    assert post(clinician, url, {**body, "confirm_lifetime_limit": True}).status_code == 201


def test_course_start_long_ago_needs_confirm_past_start(
    clinician: Client, patient: Patient
) -> None:
    regimen = Regimen.objects.filter(is_active=True, phases__isnull=False).first()
    start = (timezone.localdate() - dt.timedelta(days=400)).isoformat()
    body = {"regimen_id": regimen.pk, "start_date": start, "intent": regimen.intent}
    url = f"{API}/patients/{patient.pk}/courses"
    refused = post(clinician, url, body)
    assert refused.status_code == 400
    (error,) = refused.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", "start_date"], "confirmation_required")
    assert error["confirm_with"] == "confirm_past_start"
    assert not Course.objects.exists()
    assert post(clinician, url, {**body, "confirm_past_start": True}).status_code == 201


def test_course_create_bad_input_writes_nothing(clinician: Client, patient: Patient) -> None:
    body = {"regimen_id": 999999, "start_date": "2026-02-30", "intent": "curative", "patient": 1}
    response = post(clinician, f"{API}/patients/{patient.pk}/courses", body)
    assert response.status_code == 400
    locs = {tuple(item["loc"]) for item in response.json()["detail"]}
    assert ("body", "start_date") in locs
    assert ("body", "patient") in locs
    assert Course.objects.count() == 0


def test_cycle_of_other_patient_is_404(
    clinician: Client, patient: Patient, other_patient: Patient, course: Course
) -> None:
    cycle = course.cycles.first()
    assert clinician.get(f"{API}/patients/{patient.pk}/cycles/{cycle.pk}").status_code == 200
    # Parent theirs, child mine: the same 404.
    assert clinician.get(f"{API}/patients/{other_patient.pk}/cycles/{cycle.pk}").status_code == 404
    hold = post(
        clinician,
        f"{API}/patients/{other_patient.pk}/cycles/{cycle.pk}/hold",
        {"reason": "x", "seen_version": cycle.version},
    )
    assert hold.status_code == 404
    cycle.refresh_from_db()
    assert cycle.status == ChemoCycle.Status.PLANNED


def test_a_retried_cycle_action_with_its_seen_version_is_409_not_applied_twice(
    clinician: Client, patient: Patient, course: Course
) -> None:
    cycle_url = f"{API}/patients/{patient.pk}/cycles/{course.cycles.get(number=1).pk}"
    read = clinician.get(cycle_url).json()
    body = {"days": 7, "reason": "ANC 0.9", "seen_version": read["version"]}
    delayed = post(clinician, f"{cycle_url}/delay", body)
    assert delayed.status_code == 200
    assert delayed.json()["version"] != read["version"]
    retried = post(clinician, f"{cycle_url}/delay", body)
    assert retried.status_code == 409
    assert retried.json()["detail"][0]["loc"] == ["body", "cycle"]
    planned = dt.date.fromisoformat(read["planned_start"]) + dt.timedelta(days=7)
    assert clinician.get(cycle_url).json()["planned_start"] == planned.isoformat()


def test_cycle_delay_hold_cancel(clinician: Client, patient: Patient, course: Course) -> None:
    cycles = list(course.cycles.order_by("number"))
    base = f"{API}/patients/{patient.pk}/cycles"

    def version(cycle: ChemoCycle) -> str:
        return clinician.get(f"{base}/{cycle.pk}").json()["version"]

    missing = post(clinician, f"{base}/{cycles[0].pk}/delay", {"days": 7})
    assert missing.status_code == 400
    assert {tuple(e["loc"]) for e in missing.json()["detail"]} == {
        ("body", "reason"),
        ("body", "seen_version"),  # required: a retried request must not apply twice
    }
    delay = {"days": 7, "reason": "ANC 0.9", "seen_version": version(cycles[0])}
    assert post(clinician, f"{base}/{cycles[0].pk}/delay", delay).json()["status"] == "delayed"
    # The delay moved the later cycles: their versions are read now.
    hold = {"reason": "Neuropathy grade 3", "seen_version": version(cycles[1])}
    assert post(clinician, f"{base}/{cycles[1].pk}/hold", hold).json()["status"] == "held"
    cancel = {"reason": "Patient choice", "seen_version": version(cycles[2])}
    cancelled = post(clinician, f"{base}/{cycles[2].pk}/cancel", cancel)
    assert cancelled.json()["status"] == "cancelled"


def test_side_effect_create_with_other_patients_cycle_is_400(
    clinician: Client, patient: Patient, other_patient: Patient, treating_clinician: User
) -> None:
    regimen = Regimen.objects.filter(is_active=True, phases__isnull=False).first()
    theirs = course_start(
        patient=other_patient,
        regimen=regimen,
        start_date=timezone.localdate(),
        intent=regimen.intent,
        created_by=treating_clinician,
    )
    term = CtcaeTerm.objects.filter(max_grade__gte=2).first()
    body = {
        "term_id": term.pk,
        "grade": 2,
        "onset": timezone.localdate().isoformat(),
        "cycle_id": theirs.cycles.first().pk,
    }
    response = post(clinician, f"{API}/patients/{patient.pk}/side-effects", body)
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["body", "cycle_id"]
    assert SideEffect.objects.count() == 0
    del body["cycle_id"]
    created = post(clinician, f"{API}/patients/{patient.pk}/side-effects", body)
    assert created.status_code == 201
    listed = clinician.get(f"{API}/patients/{patient.pk}/side-effects").json()
    assert listed["count"] == 1


def test_regimens_and_lab_tests_catalogue(clinician: Client) -> None:
    regimens = clinician.get(f"{API}/regimens").json()
    assert regimens["count"] >= 1
    detail = clinician.get(f"{API}/regimens/{regimens['items'][0]['id']}").json()
    assert detail["phases"][0]["drugs"]
    tests = clinician.get(f"{API}/lab-tests").json()
    assert any(row["loinc"] == "751-8" for row in tests["items"])
    assert clinician.get(f"{API}/lab-tests/{anc().pk}").json()["short_name"] == anc().short_name


def test_ctcae_terms_common_first_with_grades_and_paged(clinician: Client) -> None:
    everything = clinician.get(f"{API}/ctcae-terms", {"limit": 200}).json()
    assert everything["count"] == CtcaeTerm.objects.count() > 2
    rows = everything["items"]
    common = [row["is_common"] for row in rows]
    assert common == sorted(common, reverse=True)  # every common term before the others
    nausea = CtcaeTerm.objects.get(term="Nausea", version="5.0")
    (row,) = [row for row in rows if row["id"] == nausea.pk]
    assert {k: row[k] for k in ("term", "version", "category", "max_grade")} == {
        "term": "Nausea",
        "version": "5.0",
        "category": nausea.category,
        "max_grade": nausea.max_grade,
    }
    assert [g["grade"] for g in row["grades"]] == sorted(int(k) for k in nausea.grade_descriptions)
    assert row["grades"][0]["description"] == nausea.grade_descriptions["1"]
    # Pages neither skip nor repeat a term.
    first = clinician.get(f"{API}/ctcae-terms", {"limit": 2}).json()["items"]
    second = clinician.get(f"{API}/ctcae-terms", {"limit": 2, "offset": 2}).json()["items"]
    assert [r["id"] for r in first + second] == [r["id"] for r in rows[:4]]


def test_ctcae_terms_search(clinician: Client) -> None:
    found = clinician.get(f"{API}/ctcae-terms", {"q": "nause"}).json()
    assert "Nausea" in [row["term"] for row in found["items"]]
    assert all("nause" in (row["term"] + row["category"]).lower() for row in found["items"]), found
    assert clinician.get(f"{API}/ctcae-terms", {"q": "zzzz-no-such"}).json()["count"] == 0
    for bad in ({"q": "x" * 101}, {"term": "Nausea"}, {"limit": "0"}):
        response = clinician.get(f"{API}/ctcae-terms", bad)
        assert response.status_code == 400, bad
        assert response.json()["detail"][0]["loc"] == ["query", next(iter(bad))]


def test_side_effect_recorded_with_a_listed_term(clinician: Client, patient: Patient) -> None:
    """What a mobile app does: look the term up, then record with its id."""
    (term,) = clinician.get(f"{API}/ctcae-terms", {"q": "Nausea", "limit": 1}).json()["items"]
    body = {"term_id": term["id"], "grade": 2, "onset": timezone.localdate().isoformat()}
    created = post(clinician, f"{API}/patients/{patient.pk}/side-effects", body)
    assert created.status_code == 201
    assert (created.json()["term_id"], created.json()["term"]) == (term["id"], term["term"])


def test_side_effect_with_unknown_term_is_400_on_term_id(
    clinician: Client, outsider: Client, patient: Patient
) -> None:
    body = {"term_id": 999999, "grade": 2, "onset": timezone.localdate().isoformat()}
    url = f"{API}/patients/{patient.pk}/side-effects"
    response = post(clinician, url, body)
    assert response.status_code == 400
    assert response.json()["detail"] == [
        {"loc": ["body", "term_id"], "msg": "Unknown CTCAE term.", "type": "value_error"}
    ]
    assert post(outsider, url, body).status_code == 404  # the gate answers first
    assert not SideEffect.objects.exists()


# --- Lab results ------------------------------------------------------------------------------


def test_lab_result_create_patient_from_path(
    clinician: Client, patient: Patient, other_patient: Patient
) -> None:
    body = {
        "test_id": anc().pk,
        "value": "0.4",
        "unit": anc().unit,
        "collected_at": (timezone.now() - dt.timedelta(hours=2)).isoformat(),
    }
    created = post(clinician, f"{API}/patients/{patient.pk}/lab-results", body)
    assert created.status_code == 201
    assert created.json()["patient_id"] == patient.pk
    assert created.json()["flag"] == "LL"  # ANC < 0.5 is critical, computed by the service
    forged = post(
        clinician,
        f"{API}/patients/{patient.pk}/lab-results",
        {**body, "patient_id": other_patient.pk, "flag": "N", "is_released": True},
    )
    assert forged.status_code == 400
    assert {tuple(i["loc"]) for i in forged.json()["detail"]} == {
        ("body", "patient_id"),
        ("body", "flag"),
        ("body", "is_released"),
    }
    assert (
        post(clinician, f"{API}/patients/{other_patient.pk}/lab-results", body).status_code == 404
    )
    assert LabResult.objects.filter(patient=other_patient).count() == 0
    assert LabResult.objects.count() == 1


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('"value": NaN', "value"),
        ('"value": Infinity', "value"),
        ('"value": "-1"', "value"),
        ('"value": "1", "note": "a\\u0000b"', "note"),
        ('"value": "1", "collected_at": "2026-13-40T00:00:00Z"', "collected_at"),
        ('"value": "1", "unit": "mg"', "unit"),
        ('"value": "1", "ref_low": 0', "ref_low"),
    ],
)
def test_lab_result_bad_input_400_names_field(
    clinician: Client, patient: Patient, raw: str, field: str
) -> None:
    collected = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    base = f'"test_id": {anc().pk}, "unit": "{anc().unit}", "collected_at": "{collected}"'
    body = "{" + base + ", " + raw + "}"
    # A later duplicate key wins in JSON: the bad field overrides the good base one.
    response = clinician.post(
        f"{API}/patients/{patient.pk}/lab-results", data=body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert ["body", field] in [item["loc"] for item in response.json()["detail"]]
    assert LabResult.objects.count() == 0


def test_lab_result_wrong_content_type_and_huge_body(clinician: Client, patient: Patient) -> None:
    url = f"{API}/patients/{patient.pk}/lab-results"
    assert clinician.post(url, data="value=1", content_type="text/plain").status_code == 415
    huge = json.dumps({"note": "x" * (1024 * 1024 + 10)})
    assert clinician.post(url, data=huge, content_type="application/json").status_code == 413
    assert clinician.post(url, data="{not json", content_type="application/json").status_code == 400


def test_lab_result_list_filters_sort_and_undeclared_keys(
    clinician: Client, patient: Patient, treating_clinician: User
) -> None:
    result(patient, treating_clinician, "0.4", days_ago=3)
    result(patient, treating_clinician, "3.1", days_ago=1)
    url = f"{API}/patients/{patient.pk}/lab-results"
    newest_first = clinician.get(url).json()["items"]
    assert [row["value"] for row in newest_first] == ["3.1000", "0.4000"]
    oldest_first = clinician.get(url, {"sort": "collected_at"}).json()["items"]
    assert [row["value"] for row in oldest_first] == ["0.4000", "3.1000"]
    assert clinician.get(url, {"flag": "LL"}).json()["count"] == 1
    assert clinician.get(url, {"loinc": "751-8"}).json()["count"] == 2
    since = (timezone.now() - dt.timedelta(days=2)).isoformat()
    assert clinician.get(url, {"from": since}).json()["count"] == 1
    for bad in (
        {"sort": "patient__user__password"},
        {"patient__user__password__startswith": "a"},
        {"ordering": "value"},
        {"from": "yesterday"},
        {"limit": "201"},
        {"test": "1 OR 1=1"},
    ):
        response = clinician.get(url, bad)
        assert response.status_code == 400, bad
        assert response.json()["detail"][0]["loc"] == ["query", next(iter(bad))]


def test_lab_result_list_rows_are_the_detail_bodies(
    clinician: Client, patient: Patient, treating_clinician: User
) -> None:
    """The list is serialised on its own fast path: every row must read exactly as the
    result's detail route writes it (decimals, milliseconds, Z for UTC, nulls, the LOINC)."""
    acknowledged = result(patient, treating_clinician, "0.3", days_ago=2)
    url = f"{API}/patients/{patient.pk}/lab-results"
    post(clinician, f"{url}/{acknowledged.pk}/acknowledge", {"note": "Cycle delayed"})
    # 2.5 after 0.3: within the delta check's tenfold for counts (3.1 would ask to confirm).
    result(patient, treating_clinician, "2.5", days_ago=1)
    rows = clinician.get(url).json()["items"]
    assert len(rows) == 2
    for row in rows:
        assert row == clinician.get(f"{url}/{row['id']}").json()
    assert rows[1]["acknowledged_at"].endswith("Z")
    assert rows[1]["loinc"] == "751-8"


def test_lab_result_acknowledge(
    clinician: Client, patient: Patient, treating_clinician: User
) -> None:
    critical = result(patient, treating_clinician, "0.3")
    url = f"{API}/patients/{patient.pk}/lab-results/{critical.pk}/acknowledge"
    assert post(clinician, url, {"note": ""}).status_code == 400
    done = post(clinician, url, {"note": "Patient called, cycle delayed"})
    assert done.status_code == 200
    assert done.json()["acknowledged_at"] is not None


def test_lab_results_page_query_count_is_fixed(
    clinician: Client, patient: Patient, treating_clinician: User
) -> None:
    for day in range(60):
        result(patient, treating_clinician, "2.5", days_ago=day + 1)
    url = f"{API}/patients/{patient.pk}/lab-results"
    clinician.get(url, {"limit": 1})  # warm up (token last-used stamp, content types)
    with CaptureQueriesContext(connection) as five:
        assert len(clinician.get(url, {"limit": 5}).json()["items"]) == 5
    with CaptureQueriesContext(connection) as fifty:
        assert len(clinician.get(url, {"limit": 50}).json()["items"]) == 50
    assert len(fifty) == len(five)


# --- Patient users ----------------------------------------------------------------------------


def test_patient_user_sees_only_own_released_data(
    portal_user: User, patient: Patient, treating_clinician: User, course: Course
) -> None:
    released = result(patient, treating_clinician, "2.0", days_ago=2)
    result(patient, treating_clinician, "2.2", days_ago=1)  # not released
    lab_results_release(results=[released], by=treating_clinician)
    client = token_client(portal_user)
    assert client.get(f"{API}/me").json()["patient_id"] == patient.pk
    mine = client.get(f"{API}/me/lab-results").json()
    assert [row["id"] for row in mine["items"]] == [released.pk]
    assert client.get(f"{API}/me/cycles").json()["count"] == course.cycles.count()
    for url in (
        f"/patients/{patient.pk}",
        f"/patients/{patient.pk}/lab-results",
        f"/patients/{patient.pk}/lab-results/{released.pk}",
        f"/patients/{patient.pk}/courses",
        "/patients",
        "/regimens",
        "/lab-tests",
        "/ctcae-terms",
    ):
        assert client.get(f"{API}{url}").status_code == 404, url


def test_patient_user_is_told_which_cycle_falls_on_a_public_holiday(
    portal_user: User, course: Course, settings
) -> None:
    settings.CLINIC_HOLIDAYS = "GB-ENG"
    today = timezone.localdate()
    christmas = dt.date(today.year + 1, 12, 25)  # a year ahead: never today, never a given day
    cycle = course.cycles.order_by("-number").first()
    cycle.planned_start = christmas
    cycle.save()
    items = token_client(portal_user).get(f"{API}/me/cycles?limit=50").json()["items"]
    named = {row["number"]: row["public_holiday"] for row in items}
    assert named[cycle.number] == "Christmas Day"
    assert "weekend" not in named.values()  # a weekend is no holiday to explain


def test_clinician_gets_404_on_portal_routes(clinician: Client) -> None:
    assert clinician.get(f"{API}/me/lab-results").status_code == 404
    assert clinician.get(f"{API}/me/cycles").status_code == 404


# --- Sessions and CSRF ------------------------------------------------------------------------


def _session(user: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    session = client.session
    session["_op_mfa_enrolled"] = True
    session.save()
    return client


def test_session_get_works_and_post_without_csrf_is_403(
    treating_clinician: User, patient: Patient
) -> None:
    client = _session(treating_clinician)
    assert client.get(f"{API}/patients/{patient.pk}").status_code == 200
    body = {"ecog": 3}
    url = f"{API}/patients/{patient.pk}"
    refused = client.patch(url, data=json.dumps(body), content_type="application/json")
    assert refused.status_code == 403
    patient.refresh_from_db()
    assert patient.ecog != 3
    client.get("/accounts/api-tokens/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    accepted = client.patch(
        url, data=json.dumps(body), content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert accepted.status_code == 200


# --- Access log -------------------------------------------------------------------------------


def test_api_reads_and_writes_are_logged_with_surface_api(
    clinician: Client, outsider: Client, treating_clinician: User, patient: Patient
) -> None:
    mark = AccessLog.objects.count()
    clinician.get(f"{API}/patients/{patient.pk}")
    rows = list(AccessLog.objects.order_by("pk")[mark:])
    assert [(r.action, r.surface, r.patient_id, r.user_id) for r in rows] == [
        ("read", "api", patient.pk, treating_clinician.pk)
    ]
    mark = AccessLog.objects.count()
    clinician.get(f"{API}/patients/{patient.pk}/lab-results")
    rows = list(AccessLog.objects.order_by("pk")[mark:])
    assert [(r.action, r.surface, r.patient_id) for r in rows] == [("list", "api", patient.pk)]
    mark = AccessLog.objects.count()
    post(
        clinician,
        f"{API}/patients/{patient.pk}/lab-results",
        {
            "test_id": anc().pk,
            "value": "2.5",
            "unit": anc().unit,
            "collected_at": (timezone.now() - dt.timedelta(hours=1)).isoformat(),
        },
    )
    actions = [(r.action, r.surface) for r in AccessLog.objects.order_by("pk")[mark:]]
    assert ("create", "api") in actions
    mark = AccessLog.objects.count()
    outsider.get(f"{API}/patients/{patient.pk}")
    denied = list(AccessLog.objects.order_by("pk")[mark:])
    assert [(r.outcome, r.surface) for r in denied] == [("denied", "api")]
