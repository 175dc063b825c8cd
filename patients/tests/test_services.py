from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from audit.models import AccessLog
from oncoplanner import access_context
from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import UserFactory
from oncoplanner.signals import access_changed
from patients import services
from patients.models import BodyMeasurement, EmergencyAccess, Patient, PatientInvitation
from patients.selectors import (
    care_team_may_manage,
    patient_chart_for_user,
    patient_get_for_user,
    patient_list_visible_to,
)
from patients.services import (
    care_team_add_member,
    care_team_lead_set,
    care_team_remove_member,
    emergency_access_open,
    invitation_accept,
    invitation_create,
    measurement_record,
    patient_create,
    patient_register,
    patient_update,
)
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def test_care_team_member_gets_view_and_change_on_team_patients(
    patient, treating_clinician, other_clinician
):
    assert treating_clinician.has_perm("patients.view_patient", patient)
    assert treating_clinician.has_perm("patients.change_patient", patient)
    assert not other_clinician.has_perm("patients.view_patient", patient)


def test_measurement_record_rejects_future_date_and_writes_nothing(patient):
    with pytest.raises(ValidationError) as error:
        measurement_record(
            patient=patient,
            measured_on=dt.date(2999, 1, 1),
            height_cm=Decimal("170"),
            weight_kg=Decimal("70"),
            recorded_by=None,
        )
    assert "measured_on" in error.value.message_dict
    assert not BodyMeasurement.objects.exists()


def test_measurement_record_needs_height_or_weight(patient):
    with pytest.raises(ValidationError):
        measurement_record(
            patient=patient,
            measured_on=dt.date(2026, 1, 1),
            height_cm=None,
            weight_kg=None,
            recorded_by=None,
        )
    assert not BodyMeasurement.objects.exists()


def test_patient_update_rejects_bad_icd10_and_keeps_old_value(patient):
    with pytest.raises(ValidationError) as error:
        patient_update(patient=patient, updated_by=None, icd10_code="not-a-code")
    assert "icd10_code" in error.value.message_dict
    patient.refresh_from_db()
    assert patient.icd10_code == "C18.7"


# --- break-glass -----------------------------------------------------------------------------

REASON = "Patient admitted to ED with febrile neutropenia, team unreachable"


def test_emergency_access_open_grants_sixty_minutes_and_flags_context(patient, other_clinician):
    with time_machine.travel(dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC), tick=False):
        with access_context.acting_as(other_clinician, surface="page"):  # as in a request
            grant = emergency_access_open(
                user=other_clinician, patient_id=patient.pk, reason=REASON
            )
            assert access_context.current().break_glass
        assert grant.expires_at - grant.granted_at == dt.timedelta(minutes=60)
        assert patient_get_for_user(user=other_clinician, patient_id=patient.pk) == patient


def test_emergency_access_open_sends_access_changed(patient, other_clinician):
    seen: list[dict] = []

    def receiver(sender, **kwargs):
        seen.append(kwargs)

    access_changed.connect(receiver, weak=False)
    try:
        emergency_access_open(user=other_clinician, patient_id=patient.pk, reason=REASON)
    finally:
        access_changed.disconnect(receiver)
    assert seen[-1]["detail"]["kind"] == "break_glass"
    assert seen[-1]["patient"] == patient
    assert seen[-1]["detail"]["reason"] == REASON


def test_emergency_access_open_requires_reason_and_writes_nothing(patient, other_clinician):
    for reason in ("", "   ", "because"):
        with pytest.raises(ValidationError) as error:
            emergency_access_open(user=other_clinician, patient_id=patient.pk, reason=reason)
        assert "reason" in error.value.message_dict
    assert not EmergencyAccess.objects.exists()


def test_emergency_access_expires_after_sixty_minutes(patient, other_clinician):
    start = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        emergency_access_open(user=other_clinician, patient_id=patient.pk, reason=REASON)
    with time_machine.travel(start + dt.timedelta(minutes=59), tick=False):
        assert patient_get_for_user(user=other_clinician, patient_id=patient.pk) == patient
    with time_machine.travel(start + dt.timedelta(minutes=60), tick=False):
        with pytest.raises(Http404):
            patient_get_for_user(user=other_clinician, patient_id=patient.pk)
        assert not patient_list_visible_to(user=other_clinician).exists()


def test_emergency_access_open_is_for_clinicians_only(patient, admin_user):
    with pytest.raises(PermissionDenied):
        emergency_access_open(user=admin_user, patient_id=patient.pk, reason=REASON)
    with pytest.raises(PermissionDenied):
        emergency_access_open(user=UserFactory.create(), patient_id=patient.pk, reason=REASON)
    assert not EmergencyAccess.objects.exists()


def test_emergency_access_open_missing_patient_is_404(other_clinician):
    with pytest.raises(Http404):
        emergency_access_open(user=other_clinician, patient_id=999999, reason=REASON)


def test_emergency_access_only_opens_that_patient(patient, other_clinician):
    neighbour = PatientFactory.create()
    emergency_access_open(user=other_clinician, patient_id=patient.pk, reason=REASON)
    assert list(patient_list_visible_to(user=other_clinician)) == [patient]
    with pytest.raises(Http404):
        patient_get_for_user(user=other_clinician, patient_id=neighbour.pk)


def test_care_team_member_gate_is_not_flagged_as_break_glass(patient, treating_clinician):
    patient_get_for_user(user=treating_clinician, patient_id=patient.pk)
    assert not access_context.current().break_glass


def test_emergency_accesses_of_a_chart_visible_to_care_team_only(
    patient, treating_clinician, other_clinician
):
    with pytest.raises(Http404):  # no care team, no break-glass: no chart at all
        patient_chart_for_user(user=other_clinician, patient_id=patient.pk)
    grant = emergency_access_open(user=other_clinician, patient_id=patient.pk, reason=REASON)
    _, on_team, accesses = patient_chart_for_user(user=treating_clinician, patient_id=patient.pk)
    assert on_team
    assert list(accesses) == [grant]
    # The break-glass user opens the chart but does not get the oversight list.
    _, on_team, accesses = patient_chart_for_user(user=other_clinician, patient_id=patient.pk)
    assert not on_team
    assert list(accesses) == []


# --- invitations -----------------------------------------------------------------------------

PASSWORD = "plum-orchard-lantern-42"


def test_invitation_create_stores_only_token_hash_and_emails_link(
    patient, treating_clinician, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invitation, token = invitation_create(
            patient=patient, email="pat@example.org", created_by=treating_clinician
        )
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(PatientInvitation.objects.values().get())
    assert invitation.expires_at - invitation.created_at == dt.timedelta(hours=72)
    assert len(mailoutbox) == 1
    assert f"/portal/invite/{token}/" in mailoutbox[0].body
    assert mailoutbox[0].to == ["pat@example.org"]


def test_invitation_create_refused_for_outsider_and_break_glass(patient, other_clinician):
    with pytest.raises(PermissionDenied):
        invitation_create(patient=patient, email="pat@example.org", created_by=other_clinician)
    emergency_access_open(user=other_clinician, patient_id=patient.pk, reason=REASON)
    with pytest.raises(PermissionDenied):
        invitation_create(patient=patient, email="pat@example.org", created_by=other_clinician)
    assert not PatientInvitation.objects.exists()


def test_invitation_create_allowed_for_administrator(patient, admin_user):
    invitation, _ = invitation_create(
        patient=patient, email="pat@example.org", created_by=admin_user
    )
    assert invitation.created_by == admin_user


def test_invitation_accept_creates_patient_user_linked_to_record(patient, admin_user):
    _, token = invitation_create(patient=patient, email="pat@example.org", created_by=admin_user)
    user = invitation_accept(token=token, username="pat.jones", password=PASSWORD)
    patient.refresh_from_db()
    assert patient.portal_user == user
    assert user.role == User.Role.PATIENT
    assert user.check_password(PASSWORD)
    assert not user.is_staff


def test_invitation_accept_is_one_time(patient, admin_user):
    _, token = invitation_create(patient=patient, email="pat@example.org", created_by=admin_user)
    invitation_accept(token=token, username="pat.jones", password=PASSWORD)
    with pytest.raises(Http404):
        invitation_accept(token=token, username="someone.else", password=PASSWORD)
    assert not User.objects.filter(username="someone.else").exists()


def test_invitation_accept_expired_is_404(patient, admin_user):
    start = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        _, token = invitation_create(
            patient=patient, email="pat@example.org", created_by=admin_user
        )
    with (
        time_machine.travel(start + dt.timedelta(hours=72, seconds=1), tick=False),
        pytest.raises(Http404),
    ):
        invitation_accept(token=token, username="pat.jones", password=PASSWORD)
    patient.refresh_from_db()
    assert patient.portal_user is None


def test_invitation_accept_weak_password_names_field_and_writes_nothing(patient, admin_user):
    _, token = invitation_create(patient=patient, email="pat@example.org", created_by=admin_user)
    with pytest.raises(ValidationError) as error:
        invitation_accept(token=token, username="pat.jones", password="12345678")
    assert "password" in error.value.message_dict
    assert not User.objects.filter(username="pat.jones").exists()
    assert PatientInvitation.objects.get().accepted_at is None


# --- care teams ------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["patient user", "administrator"])
def test_care_team_add_member_refuses_anyone_but_a_clinician(care_team, admin_user, who):
    # An administrator on a team could open any chart by adding herself (separation of duties).
    user = UserFactory.create() if who == "patient user" else admin_user
    with pytest.raises(ValidationError, match="only clinicians join a care team"):
        care_team_add_member(team=care_team, clinician=user, granted_by=admin_user)
    assert not user.groups.filter(pk=care_team.group_id).exists()


def test_care_team_lead_set_grants_manage_and_removal_revokes_it(
    care_team, treating_clinician, admin_user
):
    care_team_lead_set(
        team=care_team, clinician=treating_clinician, lead=True, granted_by=admin_user
    )
    assert care_team_may_manage(user=treating_clinician, team=care_team)
    care_team_remove_member(team=care_team, clinician=treating_clinician, revoked_by=admin_user)
    fresh = User.objects.get(pk=treating_clinician.pk)
    assert not care_team_may_manage(user=fresh, team=care_team)


def test_care_team_lead_set_only_by_administrators(care_team, treating_clinician):
    with pytest.raises(PermissionDenied):
        care_team_lead_set(
            team=care_team, clinician=treating_clinician, lead=True, granted_by=treating_clinician
        )


def test_a_deactivated_clinician_leaves_their_care_teams_for_good(
    care_team, treating_clinician, patient
):
    from patients.selectors import patient_list_visible_to

    assert patient_list_visible_to(user=treating_clinician).exists()
    treating_clinician.is_active = False
    treating_clinician.save()
    assert not treating_clinician.groups.filter(pk=care_team.group_id).exists()
    assert AccessLog.objects.filter(
        action=AccessLog.Action.ACCESS_CHANGE, detail__clinician_id=treating_clinician.pk
    ).exists()
    # Re-activating the account (a returning locum) reopens no chart until a team adds them.
    treating_clinician.is_active = True
    treating_clinician.save()
    assert not patient_list_visible_to(user=treating_clinician).exists()


# --- registering a patient and the date of birth -----------------------------------------------

_NEW = {
    "mrn": "SVC-0001",
    "given_name": "Perpetua",
    "family_name": "Servicewright",
    "date_of_birth": dt.date(1960, 5, 1),
    "sex": "female",
}


def test_patient_register_puts_the_patient_on_a_team_of_the_clinician(
    care_team, treating_clinician
):
    patient = patient_register(registered_by=treating_clinician, care_team=care_team, **_NEW)
    assert patient.care_team == care_team
    assert patient_get_for_user(user=treating_clinician, patient_id=patient.pk) == patient


def test_patient_register_refuses_a_team_the_clinician_is_not_on(care_team, other_clinician):
    with pytest.raises(ValidationError) as error:
        patient_register(registered_by=other_clinician, care_team=care_team, **_NEW)
    assert list(error.value.message_dict) == ["care_team"]
    assert not Patient.objects.filter(mrn="SVC-0001").exists()


def test_patient_register_is_for_clinicians_only(care_team, admin_user):
    with pytest.raises(PermissionDenied):
        patient_register(registered_by=admin_user, care_team=care_team, **_NEW)
    assert not Patient.objects.filter(mrn="SVC-0001").exists()


def test_patient_create_names_a_duplicate_mrn_even_when_two_registrations_race(
    care_team, monkeypatch
):
    patient_create(created_by=None, care_team=care_team, **_NEW)
    # The second registration passed the check before the first committed: the unique index
    # decides, and the refusal still names the field (never a 500).
    monkeypatch.setattr(services, "_validate_patient", lambda patient, **kwargs: None)
    with pytest.raises(ValidationError) as error:
        patient_create(created_by=None, care_team=care_team, **_NEW)
    assert "already registered" in error.value.message_dict["mrn"][0]
    assert Patient.objects.filter(mrn="SVC-0001").count() == 1


@time_machine.travel(dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC), tick=False)
@pytest.mark.parametrize(
    ("date_of_birth", "refused"),
    [
        (dt.date(1906, 3, 10), False),  # 120 today
        (dt.date(1906, 3, 9), True),  # 120 years and a day
        (dt.date(2026, 3, 10), False),  # born today
        (dt.date(2026, 3, 11), True),  # tomorrow
    ],
)
def test_patient_date_of_birth_must_be_plausible_on_create_and_update(
    care_team, patient, date_of_birth, refused
):
    def create() -> object:
        return patient_create(
            created_by=None, care_team=care_team, **(_NEW | {"date_of_birth": date_of_birth})
        )

    def update() -> object:
        return patient_update(
            patient=patient,
            updated_by=None,
            date_of_birth=date_of_birth,
            confirm_dose_input_change=True,
        )

    old = patient.date_of_birth
    for write in (create, update):
        if refused:
            with pytest.raises(ValidationError) as error:
                write()
            assert list(error.value.message_dict) == ["date_of_birth"]
        else:
            write()
    patient.refresh_from_db()
    assert patient.date_of_birth == (old if refused else date_of_birth)


def test_patient_update_does_not_question_a_date_of_birth_it_does_not_change(patient):
    Patient.objects.filter(pk=patient.pk).update(date_of_birth=dt.date(1901, 1, 1))
    patient.refresh_from_db()
    patient_update(patient=patient, updated_by=None, date_of_birth=dt.date(1901, 1, 1), stage="IVA")
    patient.refresh_from_db()
    assert patient.stage == "IVA"


def test_a_new_date_of_birth_or_sex_is_saved_only_once_confirmed(patient):
    # The web page asked before changing a dose input; REST had changed it silently.
    from patients.services import DoseInputChangeToConfirm

    for field, value in (("date_of_birth", dt.date(1950, 2, 3)), ("sex", Patient.Sex.MALE)):
        before = Patient.objects.values(field).get(pk=patient.pk)
        with pytest.raises(DoseInputChangeToConfirm) as asked:
            patient_update(patient=patient, updated_by=None, **{field: value})
        assert list(asked.value.message_dict) == [field]
        patient.refresh_from_db()
        assert Patient.objects.values(field).get(pk=patient.pk) == before
        patient_update(
            patient=patient, updated_by=None, confirm_dose_input_change=True, **{field: value}
        )
        patient.refresh_from_db()
        assert getattr(patient, field) == value
