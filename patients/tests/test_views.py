from __future__ import annotations

import pytest
from django.urls import reverse

from oncoplanner import access_context
from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import ClinicianFactory
from oncoplanner.signals import record_read
from patients.models import EmergencyAccess, PatientInvitation
from patients.services import care_team_lead_set, invitation_create

pytestmark = pytest.mark.django_db

REASON = "Patient admitted to ED with febrile neutropenia, team unreachable"
PASSWORD = "plum-orchard-lantern-42"


def _detail(patient_id: int) -> str:
    return reverse("patients:patient_detail", args=[patient_id])


def test_patient_detail_shows_header_to_care_team(client, login, patient, treating_clinician):
    response = login(client, treating_clinician).get(_detail(patient.pk))
    assert response.status_code == 200
    assert patient.mrn.encode() in response.content


def test_patient_detail_missing_and_forbidden_are_indistinguishable(
    client, login, patient, other_clinician
):
    # A name that cannot be the signed-in user's (shown on every page), so its absence proves
    # something.
    patient.family_name = "Qzxwvb"
    patient.save(update_fields=["family_name"])
    login(client, other_clinician)
    forbidden = client.get(_detail(patient.pk))
    missing = client.get(_detail(patient.pk + 1000))
    assert forbidden.status_code == missing.status_code == 404
    assert forbidden.content == missing.content
    assert patient.family_name.encode() not in forbidden.content


def test_patient_detail_requires_login(client, patient):
    response = client.get(_detail(patient.pk))
    assert response.status_code == 302


def test_patient_detail_revoked_member_gets_404_on_next_request(
    client, login, patient, care_team, treating_clinician, admin_user
):
    login(client, treating_clinician)
    assert client.get(_detail(patient.pk)).status_code == 200
    login(client, admin_user)
    client.post(
        reverse("patients:care_team_manage", args=[care_team.pk]),
        {"action": "remove", "user_id": treating_clinician.pk},
    )
    login(client, treating_clinician)
    assert client.get(_detail(patient.pk)).status_code == 404


def test_emergency_access_create_opens_chart_and_flags_every_read(
    client, login, patient, other_clinician
):
    flags: list[bool] = []

    def receiver(sender, **kwargs):
        flags.append(access_context.current().break_glass)

    login(client, other_clinician)
    response = client.post(
        reverse("patients:emergency_access_create"), {"mrn": patient.mrn, "reason": REASON}
    )
    assert response.status_code == 302
    assert response["Location"] == _detail(patient.pk)
    record_read.connect(receiver, weak=False)
    try:
        page = client.get(_detail(patient.pk))
    finally:
        record_read.disconnect(receiver)
    assert page.status_code == 200
    assert b"Emergency access" in page.content
    assert flags
    assert all(flags)
    assert EmergencyAccess.objects.get().user == other_clinician


def test_emergency_access_create_without_reason_grants_nothing(
    client, login, patient, other_clinician
):
    login(client, other_clinician)
    response = client.post(
        reverse("patients:emergency_access_create"), {"mrn": patient.mrn, "reason": "urgent"}
    )
    assert response.status_code == 200
    assert b"reason" in response.content
    assert not EmergencyAccess.objects.exists()
    assert client.get(_detail(patient.pk)).status_code == 404


def test_emergency_access_create_unknown_mrn_is_404(client, login, other_clinician):
    login(client, other_clinician)
    response = client.post(
        reverse("patients:emergency_access_create"), {"mrn": "NOPE-0000", "reason": REASON}
    )
    assert response.status_code == 404


def test_emergency_access_create_is_404_for_administrators(client, login, admin_user):
    assert (
        login(client, admin_user).get(reverse("patients:emergency_access_create")).status_code
        == 404
    )


def test_patient_detail_lists_emergency_accesses_to_care_team(
    client, login, patient, treating_clinician, other_clinician
):
    login(client, other_clinician).post(
        reverse("patients:emergency_access_create"), {"mrn": patient.mrn, "reason": REASON}
    )
    response = login(client, treating_clinician).get(_detail(patient.pk))
    assert REASON.encode() in response.content


def test_care_team_manage_lead_adds_member(
    client, login, care_team, treating_clinician, admin_user
):
    care_team_lead_set(
        team=care_team, clinician=treating_clinician, lead=True, granted_by=admin_user
    )
    newcomer = ClinicianFactory.create()
    login(client, treating_clinician)
    url = reverse("patients:care_team_manage", args=[care_team.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"action": "add", "user": newcomer.pk})
    assert response.status_code == 302
    assert newcomer.groups.filter(pk=care_team.group_id).exists()


def test_care_team_manage_is_404_for_plain_member_and_outsider(
    client, login, care_team, treating_clinician, other_clinician
):
    url = reverse("patients:care_team_manage", args=[care_team.pk])
    assert login(client, treating_clinician).get(url).status_code == 404
    assert (
        login(client, other_clinician)
        .post(url, {"action": "add", "user": other_clinician.pk})
        .status_code
        == 404
    )
    assert not other_clinician.groups.exists()


def test_invitation_accept_view_creates_account_once(client, patient, admin_user):
    _, token = invitation_create(patient=patient, email="pat@example.org", created_by=admin_user)
    url = reverse("patients:invitation_accept", args=[token])
    assert client.get(url).status_code == 200
    data = {"username": "pat.jones", "password1": PASSWORD, "password2": PASSWORD}
    response = client.post(url, data)
    assert response.status_code == 302
    user = User.objects.get(username="pat.jones")
    assert user.role == User.Role.PATIENT
    assert client.get(url).status_code == 404  # second use
    assert client.post(url, {**data, "username": "again"}).status_code == 404


def test_invitation_accept_view_wrong_token_is_404(client, patient, admin_user):
    invitation_create(patient=patient, email="pat@example.org", created_by=admin_user)
    assert (
        client.get(reverse("patients:invitation_accept", args=["not-the-token"])).status_code == 404
    )


def test_invitation_accept_view_mismatched_passwords_rerender(client, patient, admin_user):
    _, token = invitation_create(patient=patient, email="pat@example.org", created_by=admin_user)
    url = reverse("patients:invitation_accept", args=[token])
    response = client.post(url, {"username": "pat.jones", "password1": PASSWORD, "password2": "x"})
    assert response.status_code == 200
    assert not User.objects.filter(username="pat.jones").exists()


def test_invitation_create_view_by_care_team_member(
    client, login, patient, treating_clinician, mailoutbox, django_capture_on_commit_callbacks
):
    login(client, treating_clinician)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("patients:invitation_create", args=[patient.pk]), {"email": "pat@example.org"}
        )
    assert response.status_code == 302
    assert PatientInvitation.objects.get().patient == patient
    assert len(mailoutbox) == 1


def test_invitation_create_view_outsider_is_404(client, login, patient, other_clinician):
    login(client, other_clinician)
    response = client.post(
        reverse("patients:invitation_create", args=[patient.pk]), {"email": "x@example.org"}
    )
    assert response.status_code == 404
    assert not PatientInvitation.objects.exists()


def test_invitation_create_from_the_chart_sends_and_returns_to_it(
    client, login, patient, treating_clinician
):
    login(client, treating_clinician)
    url = reverse("patients:invitation_create", args=[patient.pk])
    response = client.post(url, {"email": "ana@example.org"})
    assert response.status_code == 302
    assert PatientInvitation.objects.filter(patient=patient, email="ana@example.org").exists()


def test_invitation_create_bad_email_is_400_naming_the_field_and_sends_nothing(
    client, login, patient, treating_clinician
):
    login(client, treating_clinician)
    url = reverse("patients:invitation_create", args=[patient.pk])
    response = client.post(url, {"email": "not-an-address"})
    assert response.status_code == 400
    assert "email" in response.context["invitation_form"].errors
    assert 'id="portal-invitation"' in response.content.decode()  # the chart, form and error
    assert not PatientInvitation.objects.filter(patient=patient).exists()
