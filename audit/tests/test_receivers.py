from __future__ import annotations

import datetime as dt
from decimal import Decimal
from unittest import mock

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.signals import authenticator_added, authenticator_removed, authenticator_reset
from django.contrib.auth.signals import user_login_failed
from django.test import RequestFactory

from audit import receivers, services
from audit.models import AccessLog
from labs.tests.factories import LabResultFactory
from oncoplanner import access_context
from oncoplanner.accounts.tests.factories import ClinicianFactory
from oncoplanner.signals import record_read
from patients.models import BodyMeasurement
from patients.services import care_team_add_member, measurement_record, patient_update
from patients.tests.factories import PatientFactory
from treatments.tests.factories import (
    AdministrationFactory,
    ChemoCycleFactory,
    CourseFactory,
    DoseModificationFactory,
    SideEffectFactory,
)

pytestmark = pytest.mark.django_db
Action = AccessLog.Action


def _rows(**filters):
    return AccessLog.objects.filter(**filters)


def _record_weight(patient, user, weight="71.5"):
    return measurement_record(
        patient=patient,
        measured_on=dt.date(2026, 3, 2),
        height_cm=Decimal("168.0"),
        weight_kg=Decimal(weight),
        recorded_by=user,
    )


def test_phi_saved_writes_one_create_row_with_context(patient, treating_clinician):
    with access_context.acting_as(treating_clinician, surface="api", source_address="10.0.0.7"):
        measurement = _record_weight(patient, treating_clinician)
    row = _rows(object_type="BodyMeasurement", object_id=str(measurement.pk)).get()
    assert row.action == Action.CREATE
    assert row.patient_id == patient.pk
    assert row.patient_ids == [patient.pk]
    assert row.user_id == treating_clinician.pk
    assert row.username == treating_clinician.username
    assert row.user_role == "clinician"
    assert row.surface == "api"
    assert row.source_address == "10.0.0.7"
    assert row.request_id
    assert row.outcome == AccessLog.Outcome.SUCCESS
    assert row.break_glass is False


def test_phi_saved_update_records_field_names_not_values(patient, treating_clinician):
    patient_update(patient=patient, updated_by=treating_clinician, stage="IVA")
    patient.save(update_fields=["stage"])
    rows = _rows(object_type="Patient", object_id=str(patient.pk), action=Action.UPDATE)
    assert rows.count() == 2  # one row per save: the service's save and the explicit one
    assert rows.order_by("pk").last().detail == {"fields": ["stage"]}
    assert "IVA" not in str(list(rows.values()))


def test_phi_deleted_writes_delete_row(patient, treating_clinician):
    measurement = _record_weight(patient, treating_clinician)
    measurement_id = measurement.pk
    measurement.delete()
    row = _rows(object_type="BodyMeasurement", action=Action.DELETE).get()
    assert row.object_id == str(measurement_id)
    assert row.patient_id == patient.pk


@pytest.mark.parametrize(
    ("factory", "patient_of"),
    [
        (CourseFactory, lambda o: o.patient_id),
        (ChemoCycleFactory, lambda o: o.course.patient_id),
        (DoseModificationFactory, lambda o: o.course.patient_id),
        (AdministrationFactory, lambda o: o.cycle.course.patient_id),
        (SideEffectFactory, lambda o: o.patient_id),
        (LabResultFactory, lambda o: o.patient_id),
    ],
)
def test_phi_saved_logs_every_registered_model(factory, patient_of):
    obj = factory.create()
    row = _rows(object_type=type(obj).__name__, object_id=str(obj.pk)).get()
    assert row.action == Action.CREATE
    assert row.patient_id == patient_of(obj)


def test_break_glass_context_flags_the_row(patient, other_clinician):
    with access_context.acting_as(other_clinician, surface="page"):
        access_context.update(break_glass=True)
        record_read.send(sender=type(patient), patients=[patient], target=patient)
    assert _rows(action=Action.READ).get().break_glass is True


def test_record_read_single_patient_writes_read_row(patient, treating_clinician):
    with access_context.acting_as(treating_clinician, surface="fragment"):
        record_read.send(sender=type(patient), patients=[patient], target=patient)
    row = _rows(action=Action.READ).get()
    assert (row.patient_id, row.patient_ids) == (patient.pk, [patient.pk])
    assert (row.object_type, row.object_id, row.surface) == ("Patient", str(patient.pk), "fragment")


def test_record_read_list_records_every_patient(patient, treating_clinician):
    others = [PatientFactory.create(), PatientFactory.create()]
    with access_context.acting_as(treating_clinician, surface="page"):
        record_read.send(
            sender=type(patient),
            patients=[others[1], patient, others[0]],
            target=None,
            action="list",
        )
    row = _rows(action=Action.LIST).get()
    assert row.patient_id is None
    assert row.patient_ids == sorted([patient.pk, others[0].pk, others[1].pk])
    assert row.object_type == "Patient"


def test_record_read_denied_outcome(patient, other_clinician):
    with access_context.acting_as(other_clinician, surface="api"):
        record_read.send(
            sender=type(patient), patients=[], target=None, outcome="denied", detail={"id": 9}
        )
    row = _rows(action=Action.READ).get()
    assert row.outcome == AccessLog.Outcome.DENIED
    assert row.detail == {"id": 9}


def test_record_read_rejects_unknown_action(patient):
    with pytest.raises(ValueError, match="record_read action"):
        record_read.send(sender=type(patient), patients=[patient], target=patient, action="update")


def test_access_changed_writes_access_change_row(care_team, admin_user):
    clinician = ClinicianFactory.create()
    care_team_add_member(team=care_team, clinician=clinician, granted_by=admin_user)
    row = _rows(action=Action.ACCESS_CHANGE).get()
    assert row.user_id == admin_user.pk
    assert row.user_role == "administrator"
    assert row.object_type == "CareTeam"
    assert row.object_id == str(care_team.pk)
    assert row.detail == {
        "granted": True,
        "care_team_id": care_team.pk,
        "clinician_id": clinician.pk,
    }


def test_login_and_logout_write_rows(client, treating_clinician):
    client.force_login(treating_clinician)
    client.logout()
    login = _rows(action=Action.LOGIN).get()
    logout = _rows(action=Action.LOGOUT).get()
    assert login.user_id == logout.user_id == treating_clinician.pk
    assert login.username == treating_clinician.username


def test_login_outside_a_request_does_not_leak_into_the_context(client, treating_clinician):
    client.force_login(treating_clinician)
    assert access_context.current().user is None


def test_failed_login_through_the_login_page_logs_username_never_password(client, db):
    ClinicianFactory.create(username="dr.who")
    client.post("/accounts/login/", {"login": "dr.who", "password": "Wrong-Secret-123"})
    row = _rows(action=Action.LOGIN_FAILED).get()
    assert row.username == "dr.who"
    assert row.user_id is None
    assert row.outcome == AccessLog.Outcome.DENIED
    assert row.surface == "page"
    assert row.source_address == "127.0.0.1"
    assert "Wrong-Secret" not in str(list(_rows().values()))


def test_locked_attempt_is_one_lockout_row():
    request = RequestFactory().post("/accounts/login/")
    request.axes_locked_out = True
    request.axes_ip_address = "10.1.1.1"
    # As Django sends it when the axes backend refused a locked account: axes' receiver turns
    # it into user_locked_out; ours must not add a LOGIN_FAILED row for the same attempt.
    user_login_failed.send(
        sender=None, credentials={"username": "dr.who", "password": "********"}, request=request
    )
    assert list(_rows().values_list("action", "username", "outcome")) == [
        (Action.LOCKOUT, "dr.who", AccessLog.Outcome.DENIED)
    ]


def test_repeated_failures_lock_and_each_attempt_is_logged_once(client, db):
    ClinicianFactory.create(username="dr.who")
    for _ in range(7):
        client.post("/accounts/login/", {"login": "dr.who", "password": "Wrong-Secret-123"})
    actions = list(_rows().order_by("pk").values_list("action", flat=True))
    # Five failures: four LOGIN_FAILED, the fifth locks; locked attempts are LOCKOUT rows.
    assert actions == [Action.LOGIN_FAILED] * 4 + [Action.LOCKOUT] * 3


def test_mfa_signals_write_mfa_change_rows(treating_clinician):
    authenticator, _ = Authenticator.objects.get_or_create(
        user=treating_clinician, type=Authenticator.Type.TOTP, defaults={"data": {"secret": "x"}}
    )
    for signal in (authenticator_added, authenticator_reset, authenticator_removed):
        signal.send(
            sender=Authenticator, request=None, user=treating_clinician, authenticator=authenticator
        )
    rows = _rows(action=Action.MFA_CHANGE).order_by("pk")
    assert [r.detail["change"] for r in rows] == ["added", "reset", "removed"]
    assert {(r.user_id, r.object_id) for r in rows} == {
        (treating_clinician.pk, str(authenticator.pk))
    }
    assert "secret" not in str(list(rows.values("detail")))


def test_connect_twice_still_writes_one_row_per_save(patient, treating_clinician):
    receivers.connect()
    measurement = _record_weight(patient, treating_clinician)
    assert _rows(object_type="BodyMeasurement", object_id=str(measurement.pk)).count() == 1


def test_failed_log_write_rolls_back_the_domain_write(patient, treating_clinician):
    with (
        mock.patch.object(services, "_insert", side_effect=RuntimeError("log unavailable")),
        pytest.raises(RuntimeError, match="log unavailable"),
    ):
        _record_weight(patient, treating_clinician, weight="80.0")
    assert not BodyMeasurement.objects.exists()


def test_failed_log_write_fails_the_read(patient, treating_clinician):
    with (
        mock.patch.object(services, "_insert", side_effect=RuntimeError("log unavailable")),
        pytest.raises(RuntimeError),
    ):
        record_read.send(sender=type(patient), patients=[patient], target=patient)


def test_every_access_kind_writes_exactly_one_row(client, patient, treating_clinician, admin_user):
    """SECURITY.md figure 12: one access of each kind, one row each, none missing or doubled."""
    request = RequestFactory().post("/accounts/login/")
    authenticator, _ = Authenticator.objects.get_or_create(
        user=treating_clinician, type=Authenticator.Type.TOTP, defaults={"data": {}}
    )
    before = AccessLog.objects.count()
    with access_context.acting_as(treating_clinician, surface="page"):
        measurement = _record_weight(patient, treating_clinician)  # create
        measurement.save()  # update
        record_read.send(sender=type(patient), patients=[patient], target=patient)  # read
        record_read.send(sender=type(patient), patients=[patient], target=None, action="list")
        measurement.delete()  # delete
        care_team_add_member(
            team=patient.care_team,
            clinician=ClinicianFactory.create(totp=False),
            granted_by=admin_user,
        )  # access change (the new clinician's own user row is not PHI: no log row)
        user_login_failed.send(sender=None, credentials={"username": "x"}, request=request)
        authenticator_added.send(
            sender=Authenticator, request=None, user=treating_clinician, authenticator=authenticator
        )
    client.force_login(treating_clinician)  # login
    client.logout()  # logout
    expected = ["create", "update", "read", "list", "delete", "access_change", "login_failed",
                "mfa_change", "login", "logout"]  # fmt: skip
    actions = list(AccessLog.objects.order_by("pk").values_list("action", flat=True)[before:])
    missing = [a for a in expected if a not in actions]
    duplicated = len(actions) - len(set(actions))
    print(
        f"\nFIGURE 12 (completeness): {len(expected)} access kinds, {len(missing)} missing, {duplicated} duplicate rows"
    )
    assert actions == expected
