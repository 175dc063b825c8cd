from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from oncoplanner.accounts.tests.factories import ClinicianFactory
from oncoplanner.signals import access_changed, record_read
from patients.models import CareTeam, Patient
from patients.services import care_team_add_member, emergency_access_open
from patients.tests.factories import admin_add_form_data

pytestmark = pytest.mark.django_db

# Models deliberately without an admin page, each with its reason.
NOT_IN_ADMIN = {
    "patients.PatientUserObjectPermission": "grants are made only by the care-team services",
    "patients.PatientGroupObjectPermission": "grants are made only by the care-team services",
    "patients.CareTeamUserObjectPermission": "leads are set on the CareTeam admin page",
    "patients.CareTeamGroupObjectPermission": "not used: leads are per user",
    # Owned by the audit app; its seals are checked by manage.py verify_access_log, not edited.
    "audit.AccessLogSeal": "internal hash-chain seals of the access log (audit app)",
    "audit.AccessLogPatient": "an index of the access log's list views, derived from its rows",
    # Given by an oncologist and a pharmacist with their password on the clinic's Regimens
    # page; shown read-only inline on the regimen's admin page.
    "treatments.RegimenApproval": "approvals are given on the Regimens page, shown inline",
    "patients.DataVersion": "cache tokens, changed by every write (patients.chart_cache)",
    "treatments.SupportiveMedication": "part of a regimen version: edited inline on the regimen's page",
    # Written only by the cycle services, append-only; shown read-only under the gated cycle.
    "treatments.CycleStatusChange": "a cycle's history: shown inline on the cycle's page",
}
ADMIN_APPS = ("accounts", "patients", "treatments", "labs", "audit")


@pytest.fixture
def reads():
    captured: list[dict] = []

    def receiver(sender, **kwargs):
        captured.append({"sender": sender, **kwargs})

    record_read.connect(receiver, weak=False)
    yield captured
    record_read.disconnect(receiver)


@pytest.fixture
def staff_clinician(care_team, admin_user):
    """A clinician with admin access (a superuser here, for the model permissions): the only
    admin user the access gate lets see patient rows, and only their team's. Administrators
    never do, not even on a team (they cannot join one)."""
    user = ClinicianFactory.create(is_staff=True, is_superuser=True)
    care_team_add_member(team=care_team, clinician=user, granted_by=admin_user)
    return user


def _changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def _change(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def test_admin_registers_every_model_or_says_why():
    missing = [
        model._meta.label
        for label in ADMIN_APPS
        for model in apps.get_app_config(label).get_models()
        if not admin.site.is_registered(model) and model._meta.label not in NOT_IN_ADMIN
    ]
    assert missing == []


def test_admin_changelists_render_for_every_registered_model(client, login, admin_user, patient):
    login(client, admin_user)
    for label in ADMIN_APPS:
        for model in apps.get_app_config(label).get_models():
            if admin.site.is_registered(model):
                response = client.get(_changelist(model))
                assert response.status_code == 200, model._meta.label


def test_admin_patient_changelist_superuser_without_team_shows_no_rows(
    client, login, admin_user, patient
):
    response = login(client, admin_user).get(_changelist(Patient))
    assert response.status_code == 200
    assert response.context["cl"].result_count == 0
    assert patient.mrn.encode() not in response.content
    # The empty list says why, so it does not read as "the clinic has no patients".
    assert b"administrators see no patient data" in response.content


def test_admin_patient_changelist_with_team_shows_rows_and_logs_read(
    client, login, staff_clinician, patient, reads
):
    response = login(client, staff_clinician).get(_changelist(Patient))
    assert response.context["cl"].result_count == 1
    assert patient.mrn.encode() in response.content
    assert any(r["action"] == "list" and r["patients"] == [patient] for r in reads)


def test_admin_patient_change_view_foreign_patient_is_404(client, login, admin_user, patient):
    login(client, admin_user)
    assert client.get(_change(patient)).status_code == 404
    missing = reverse("admin:patients_patient_change", args=[patient.pk + 1000])
    assert client.get(missing).status_code == 404


def test_admin_patient_change_view_logs_read(client, login, staff_clinician, patient, reads):
    response = login(client, staff_clinician).get(_change(patient))
    assert response.status_code == 200
    assert any(r["target"] == patient for r in reads)


def test_admin_course_is_scoped_and_read_only(
    client, login, admin_user, staff_clinician, patient, make_course
):
    from treatments.models import Course

    course = make_course(patient)
    login(client, admin_user)
    assert client.get(_change(course)).status_code == 404
    login(client, staff_clinician)
    response = client.get(_change(course))
    assert response.status_code == 200
    assert not response.context["has_change_permission"]
    add = reverse("admin:treatments_course_add")
    assert client.get(add).status_code == 403
    assert Course.objects.count() == 1


def test_admin_lab_result_changelist_scoped(client, login, admin_user, patient, make_lab_result):
    from labs.models import LabResult

    make_lab_result(patient)
    response = login(client, admin_user).get(_changelist(LabResult))
    assert response.context["cl"].result_count == 0


def test_admin_care_team_membership_goes_through_services(client, login, admin_user):
    clinician = ClinicianFactory.create()
    changes: list[dict] = []

    def receiver(sender, **kwargs):
        changes.append(kwargs)

    access_changed.connect(receiver, weak=False)
    try:
        response = login(client, admin_user).post(
            reverse("admin:patients_careteam_add"),
            {
                "name": "Breast oncology",
                "description": "",
                "members": [clinician.pk],
                "leads": [clinician.pk],
            },
        )
    finally:
        access_changed.disconnect(receiver)
    assert response.status_code == 302, response.content
    team = CareTeam.objects.get(name="Breast oncology")
    assert clinician.groups.filter(pk=team.group_id).exists()
    assert clinician.has_perm("patients.manage_careteam", team)
    assert [c["granted"] for c in changes] == [True, True]  # membership, then lead


def test_admin_care_team_removing_member_revokes_access(
    client, login, admin_user, care_team, patient, treating_clinician
):
    response = login(client, admin_user).post(
        _change(care_team), {"name": care_team.name, "description": "", "members": [], "leads": []}
    )
    assert response.status_code == 302
    fresh = type(treating_clinician).objects.get(pk=treating_clinician.pk)
    assert not fresh.has_perm("patients.view_patient", patient)


def test_admin_emergency_access_is_read_only_for_administrators(
    client, login, admin_user, patient, other_clinician
):
    # A name that cannot be a user's or a word of the page, so its absence proves something.
    patient.family_name = "Qzxwvb"
    patient.save(update_fields=["family_name"])
    grant = emergency_access_open(
        user=other_clinician,
        patient_id=patient.pk,
        reason="Patient admitted to ED with febrile neutropenia, team unreachable",
    )
    login(client, admin_user)
    response = client.get(_changelist(type(grant)))
    assert response.context["cl"].result_count == 1
    assert patient.family_name.encode() not in response.content  # MRN only, no chart data
    assert client.get(reverse("admin:patients_emergencyaccess_add")).status_code == 403


def test_admin_patient_add_goes_through_service_and_grants_team(
    client, login, admin_user, care_team, treating_clinician
):
    response = login(client, admin_user).post(
        reverse("admin:patients_patient_add"), admin_add_form_data(care_team)
    )
    assert response.status_code == 302, response.content
    created = Patient.objects.get(mrn="MRN-ADMIN-1")
    assert treating_clinician.has_perm("patients.view_patient", created)
    assert client.get(_change(created)).status_code == 404  # the administrator is not on the team
