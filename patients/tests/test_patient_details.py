"""Registering a patient (clinicians, on their own care team) and correcting a chart's details
(the care team, change permission): pages over patients.services, behind the access gate."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessLog
from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import UserFactory
from oncoplanner.dates import day_text
from patients.models import Patient
from patients.services import (
    care_team_add_member,
    care_team_create,
    emergency_access_open,
    patient_create,
)
from patients.tests.factories import details_form_data
from treatments.models import Course, DoseBasis
from treatments.tests.factories import CourseFactory, regimen_create

pytestmark = pytest.mark.django_db

REGISTER = reverse("patients:patient_create")
NEW = {
    "mrn": "reg-0042",  # stored upper-case
    "given_name": "Wilhelmina",
    "family_name": "Registerova",
    "date_of_birth": "1961-07-02",
    "sex": "female",
    "phone": "+44 20 7946 0000",
    "email": "w.registerova@example.org",
    "address": "1 Chart Lane",
    "primary_diagnosis": "Adenocarcinoma of the sigmoid colon",
    "icd10_code": "c18.7",
    "stage": "IIIB",
    "ecog": "1",
}


def _years_ago(years: int, days: int = 0) -> dt.date:
    today = timezone.localdate()
    return today.replace(year=today.year - years) - dt.timedelta(days=days)


# --- Register a patient ----------------------------------------------------------------------


def test_register_creates_the_patient_on_my_team_and_opens_the_chart(
    client, login, care_team, treating_clinician
):
    login(client, treating_clinician)
    page = client.get(REGISTER)
    assert page.status_code == 200
    # One team: it is chosen (the only option, selected).
    options = page.context["form"].fields["care_team"].choices
    assert [label for _, label in options] == [care_team.name]

    response = client.post(REGISTER, NEW)

    patient = Patient.objects.get(mrn="REG-0042")
    assert response.status_code == 302
    assert response["Location"] == reverse("patients:patient_detail", args=[patient.pk])
    assert (patient.care_team, patient.date_of_birth, patient.sex, patient.icd10_code) == (
        care_team,
        dt.date(1961, 7, 2),
        "female",
        "C18.7",
    )
    assert patient.ecog == 1
    assert AccessLog.objects.filter(
        action=AccessLog.Action.CREATE, object_type="Patient", object_id=str(patient.pk)
    ).exists()
    chart = client.get(response["Location"])
    assert chart.status_code == 200  # the team's access came with the registration
    assert "Registered REGISTEROVA, Wilhelmina (REG-0042)." in chart.content.decode()


def test_register_with_one_team_takes_it_when_the_field_is_left_out(
    client, login, care_team, treating_clinician
):
    login(client, treating_clinician)
    data = {k: v for k, v in NEW.items() if k != "care_team"}
    assert client.post(REGISTER, data).status_code == 302
    assert Patient.objects.get(mrn="REG-0042").care_team == care_team


def test_register_offers_only_my_teams_and_refuses_another(
    client, login, care_team, treating_clinician, admin_user
):
    second = care_team_create(name="Lymphoma")
    foreign = care_team_create(name="Neuro-oncology")
    care_team_add_member(team=second, clinician=treating_clinician, granted_by=admin_user)
    login(client, treating_clinician)
    options = client.get(REGISTER).context["form"].fields["care_team"].choices
    assert [label for value, label in options if value] == ["GI oncology", "Lymphoma"]

    response = client.post(REGISTER, {**NEW, "care_team": foreign.pk})

    assert response.status_code == 400
    assert response.context["form"].errors["care_team"] == ["Choose one of your own care teams."]
    assert not Patient.objects.filter(mrn="REG-0042").exists()
    # With two teams nothing is chosen for the clinician: leaving it out is an error.
    data = {k: v for k, v in NEW.items() if k != "care_team"}
    assert client.post(REGISTER, data).status_code == 400
    assert client.post(REGISTER, {**NEW, "care_team": second.pk}).status_code == 302
    assert Patient.objects.get(mrn="REG-0042").care_team == second


def test_register_a_duplicate_mrn_is_400_naming_the_field_without_the_other_chart(
    client, login, care_team, treating_clinician
):
    other_team = care_team_create(name="Breast oncology")
    patient_create(
        created_by=None,
        care_team=other_team,
        mrn="REG-0042",
        given_name="Zebedee",
        family_name="Quarringtonova",
        date_of_birth=dt.date(1950, 1, 1),
        sex="male",
    )
    login(client, treating_clinician)

    response = client.post(REGISTER, NEW)

    assert response.status_code == 400
    errors = response.context["form"].errors["mrn"]
    assert errors == [
        "MRN REG-0042 is already registered in this clinic. Find the patient in the list (or "
        "ask their care team): one person must not have two charts."
    ]
    html = response.content.decode()
    assert "Quarringtonova" not in html
    assert "Zebedee" not in html
    assert Patient.objects.filter(mrn="REG-0042").count() == 1


@pytest.mark.parametrize(
    ("date_of_birth", "message"),
    [
        (lambda: timezone.localdate() + dt.timedelta(days=1), "cannot be in the future"),
        (lambda: _years_ago(120, days=1), "more than 120 years ago: check the year"),
    ],
    ids=["future", "over-120-years"],
)
def test_register_an_implausible_date_of_birth_is_400(
    client, login, care_team, treating_clinician, date_of_birth, message
):
    login(client, treating_clinician)
    response = client.post(REGISTER, {**NEW, "date_of_birth": date_of_birth().isoformat()})
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors["date_of_birth"])
    assert not Patient.objects.filter(mrn="REG-0042").exists()


def test_register_reports_every_bad_field_at_once(client, login, care_team, treating_clinician):
    login(client, treating_clinician)
    response = client.post(
        REGISTER, {**NEW, "icd10_code": "not-a-code", "date_of_birth": "1890-01-01"}
    )
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"icd10_code", "date_of_birth"}
    assert not Patient.objects.exists()


def test_register_is_not_for_administrators_or_patients(client, login, admin_user, care_team):
    portal_user = UserFactory.create(role=User.Role.PATIENT)
    for user in (admin_user, portal_user):
        client.force_login(user)
        assert client.get(REGISTER).status_code == 404
        assert client.post(REGISTER, {**NEW, "care_team": care_team.pk}).status_code == 404
    assert not Patient.objects.exists()


def test_register_by_a_clinician_on_no_team_says_why_and_creates_nothing(
    client, login, care_team, other_clinician
):
    login(client, other_clinician)
    page = client.get(REGISTER)
    assert page.status_code == 200
    assert 'id="no-care-team"' in page.content.decode()
    response = client.post(REGISTER, {**NEW, "care_team": care_team.pk})
    assert response.status_code == 400
    assert not Patient.objects.exists()


def test_patient_list_links_to_registering_a_patient(client, login, treating_clinician):
    login(client, treating_clinician)
    html = client.get(reverse("patients:patient_list")).content.decode()
    assert f'href="{REGISTER}" id="register-patient"' in html


# --- Edit details ------------------------------------------------------------------------------


@pytest.fixture
def chart(care_team) -> Patient:
    """A patient with a known date of birth and sex: the doses' inputs the tests change."""
    return patient_create(
        created_by=None,
        care_team=care_team,
        mrn="EDIT-0001",
        given_name="Olwen",
        family_name="Detailsworth",
        date_of_birth=_years_ago(67),
        sex="female",
        primary_diagnosis="Adenocarcinoma of the sigmoid colon",
        icd10_code="C18.7",
        stage="IIIB",
        ecog=1,
        medical_history="Hypertension",
    )


def _edit(patient) -> str:
    return reverse("patients:patient_update", args=[patient.pk])


def test_chart_header_links_the_care_team_to_editdetails_form_data(
    client, login, chart, treating_clinician
):
    login(client, treating_clinician)
    html = client.get(reverse("patients:patient_detail", args=[chart.pk])).content.decode()
    assert f'href="{_edit(chart)}" id="edit-details"' in html


def test_edit_details_saves_through_the_service_and_logs_the_write(
    client, login, chart, treating_clinician
):
    login(client, treating_clinician)
    page = client.get(_edit(chart))
    assert page.status_code == 200
    assert page.context["form"].initial["stage"] == "IIIB"
    before = AccessLog.objects.filter(action=AccessLog.Action.UPDATE).count()

    response = client.post(
        _edit(chart), details_form_data(chart, stage="IVA", phone="+44 20 7946 0001", ecog="")
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("patients:patient_detail", args=[chart.pk])
    chart.refresh_from_db()
    assert (chart.stage, chart.phone, chart.ecog) == ("IVA", "+44 20 7946 0001", None)
    updates = AccessLog.objects.filter(
        action=AccessLog.Action.UPDATE, object_type="Patient", object_id=str(chart.pk)
    )
    assert updates.count() == before + 1
    assert updates.get().user == treating_clinician


def test_edit_details_never_changes_the_mrn_or_the_care_team(
    client, login, chart, care_team, treating_clinician
):
    elsewhere = care_team_create(name="Elsewhere")
    login(client, treating_clinician)
    data = details_form_data(chart, mrn="HIJACK-1", care_team=str(elsewhere.pk), portal_user="1")
    assert client.post(_edit(chart), data).status_code == 302
    chart.refresh_from_db()
    assert (chart.mrn, chart.care_team, chart.portal_user) == ("EDIT-0001", care_team, None)


def test_a_new_date_of_birth_asks_to_confirm_and_says_what_it_changes(
    client, login, chart, treating_clinician
):
    regimen = regimen_create(
        name="Carboplatin-paclitaxel (test)",
        phases=((21, 6, (("Carboplatin", "5", DoseBasis.AUC),)),),
    )
    CourseFactory.create(patient=chart, regimen=regimen, status=Course.Status.ACTIVE)
    old = chart.date_of_birth
    new = _years_ago(57)
    login(client, treating_clinician)

    response = client.post(_edit(chart), details_form_data(chart, date_of_birth=new.isoformat()))

    assert response.status_code == 400
    chart.refresh_from_db()
    assert chart.date_of_birth == old  # nothing written until confirmed
    html = response.content.decode()
    warning = html[html.index('id="dose-input-changes"') :]
    assert f"Date of birth {day_text(old)} → {day_text(new)}: age 67 → 57." in warning
    # (140 - 57) / (140 - 67) = 83 / 73: 14% more clearance for the same weight and creatinine.
    assert "Cockcroft-Gault creatinine clearance (140 − age) becomes 14% higher" in warning
    assert "open treatment includes Carboplatin dosed by AUC: its next dose changes" in warning
    assert 'name="confirm_clinical_change"' in warning
    assert "Check this change, then confirm it below." in html
    # The header still shows what is on record, not the refused value.
    assert "(67 y)" in html

    confirmed = client.post(
        _edit(chart),
        details_form_data(chart, date_of_birth=new.isoformat(), confirm_clinical_change="on"),
    )

    assert confirmed.status_code == 302
    chart.refresh_from_db()
    assert chart.date_of_birth == new
    warnings = [str(m) for m in get_messages(confirmed.wsgi_request) if m.level_tag == "warning"]
    assert len(warnings) == 1
    assert "age 67 → 57" in warnings[0]
    assert "review the next dose of each open course" in warnings[0]


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("female", "male", "Cockcroft-Gault clearance becomes 18% higher"),
        ("male", "female", "Cockcroft-Gault clearance becomes 15% lower"),
        ("female", "unknown", "carboplatin (AUC) doses can no longer be computed"),
    ],
)
def test_a_new_sex_asks_to_confirm_and_says_what_it_changes(
    client, login, chart, treating_clinician, old, new, words
):
    Patient.objects.filter(pk=chart.pk).update(sex=old)
    chart.refresh_from_db()
    login(client, treating_clinician)
    response = client.post(_edit(chart), details_form_data(chart, sex=new))
    assert response.status_code == 400
    html = response.content.decode()
    assert words in html
    assert "Sex-specific lab reference ranges (e.g. haemoglobin) follow it." in html
    chart.refresh_from_db()
    assert chart.sex == old
    response = client.post(
        _edit(chart), details_form_data(chart, sex=new, confirm_clinical_change="on")
    )
    assert response.status_code == 302
    chart.refresh_from_db()
    assert chart.sex == new


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"icd10_code": "not-a-code"}, "icd10_code"),  # refused by the model, via the service
        ({"given_name": ""}, "given_name"),
        ({"sex": "robot"}, "sex"),
        ({"ecog": "7"}, "ecog"),
        ({"email": "not-an-email"}, "email"),
        ({"date_of_birth": "2026-02-30"}, "date_of_birth"),
        (
            {"date_of_birth": _years_ago(121).isoformat(), "confirm_clinical_change": "on"},
            "date_of_birth",
        ),
        ({"family_name": "Nul\x00byte"}, "family_name"),
    ],
)
def test_edit_details_bad_input_is_400_naming_the_field_and_writes_nothing(
    client, login, chart, treating_clinician, changes, field
):
    login(client, treating_clinician)
    before = Patient.objects.filter(pk=chart.pk).values().get()
    response = client.post(_edit(chart), details_form_data(chart, stage="IVA", **changes))
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert Patient.objects.filter(pk=chart.pk).values().get() == before
    assert "Detailsworth".upper() in response.content.decode()  # the record, not the input


def test_edit_details_is_a_404_for_everyone_outside_the_care_team(
    client, login, chart, other_clinician, admin_user
):
    portal_user = UserFactory.create(role=User.Role.PATIENT)
    Patient.objects.filter(pk=chart.pk).update(portal_user=portal_user)
    before = Patient.objects.filter(pk=chart.pk).values().get()
    for user in (other_clinician, admin_user, portal_user):
        client.force_login(user)
        assert client.get(_edit(chart)).status_code == 404
        assert client.post(_edit(chart), details_form_data(chart, stage="IVA")).status_code == 404
    client.force_login(other_clinician)
    assert client.get(reverse("patients:patient_update", args=[999999])).status_code == 404
    assert Patient.objects.filter(pk=chart.pk).values().get() == before


def test_edit_details_under_break_glass_is_flagged_in_the_log(
    client, login, chart, other_clinician
):
    # As the REST PATCH: break-glass holds change permission (documenting emergency care).
    emergency_access_open(
        user=other_clinician, patient_id=chart.pk, reason="Seen in the emergency department"
    )
    login(client, other_clinician)
    assert client.post(_edit(chart), details_form_data(chart, stage="IVA")).status_code == 302
    row = AccessLog.objects.get(
        action=AccessLog.Action.UPDATE, object_type="Patient", object_id=str(chart.pk)
    )
    assert row.break_glass


def test_rest_patch_refuses_a_date_of_birth_over_120_years_ago_as_the_page_does(
    client, login, chart, treating_clinician
):
    # The same service under both doors: the rule is in patient_update, not in the page's form.
    login(client, treating_clinician)
    response = client.patch(
        f"/api/v1/patients/{chart.pk}",
        data=json.dumps({"date_of_birth": _years_ago(121).isoformat()}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["body", "date_of_birth"]
    chart.refresh_from_db()
    assert chart.date_of_birth == _years_ago(67)


def test_rest_patch_asks_before_a_new_date_of_birth_as_the_page_does(
    client, login, chart, treating_clinician
):
    login(client, treating_clinician)
    url = f"/api/v1/patients/{chart.pk}"
    new = _years_ago(60).isoformat()
    asked = client.patch(
        url, data=json.dumps({"date_of_birth": new}), content_type="application/json"
    )
    assert asked.status_code == 400
    (error,) = asked.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", "date_of_birth"], "confirmation_required")
    chart.refresh_from_db()
    assert chart.date_of_birth == _years_ago(67)
    done = client.patch(
        url,
        data=json.dumps({"date_of_birth": new, "confirm_dose_input_change": True}),
        content_type="application/json",
    )
    assert done.status_code == 200
    chart.refresh_from_db()
    assert chart.date_of_birth.isoformat() == new
