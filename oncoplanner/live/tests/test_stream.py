from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.sessions.models import Session
from django.db import transaction
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessLog
from labs.models import LabTest
from labs.services import lab_result_record
from oncoplanner.live.models import ChangeEvent
from patients.services import care_team_remove_member
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db
FAST = override_settings(LIVE_STREAM_MAX_SECONDS=1, LIVE_STREAM_WAIT_SECONDS=1)


def _critical_anc(patient):
    test = LabTest.objects.get(loinc="751-8")
    return lab_result_record(
        patient=patient,
        test=test,
        value=Decimal("0.3"),
        unit=test.unit,
        collected_at=timezone.now() - dt.timedelta(hours=1),
        recorded_by=None,
    )


def _read_stream(client, **headers) -> str:
    response = client.get(reverse("live:changes"), headers=headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    return b"".join(response.streaming_content).decode()


def test_change_event_is_written_with_the_change(patient):
    result = _critical_anc(patient)
    event = ChangeEvent.objects.get(kind="lab_result", object_id=result.pk)
    assert event.patient_id == patient.pk
    assert event.attention is True
    assert "0.3" not in str(event.as_data())  # ids and kinds only, never values


def test_rolled_back_change_announces_nothing(patient):
    def failing_caller() -> None:
        with transaction.atomic():
            _critical_anc(patient)
            raise RuntimeError("the caller failed after the write")

    with pytest.raises(RuntimeError):
        failing_caller()
    assert not ChangeEvent.objects.exists()


@FAST
def test_stream_delivers_care_team_changes_and_logs_the_read(client, treating_clinician, patient):
    result = _critical_anc(patient)
    event = ChangeEvent.objects.get(kind="lab_result", object_id=result.pk)
    client.force_login(treating_clinician)
    body = _read_stream(client, **{"Last-Event-ID": str(event.pk - 1)})
    assert f"id: {event.pk}\nevent: change\n" in body
    assert f'"patient": {patient.pk}' in body
    row = AccessLog.objects.filter(surface="stream", user=treating_clinician).get()
    assert row.patient_ids == [patient.pk]


@FAST
def test_stream_tells_an_outsider_nothing(client, other_clinician, patient):
    _critical_anc(patient)
    client.force_login(other_clinician)
    body = _read_stream(client, **{"Last-Event-ID": "0"})
    assert "event: change" not in body
    assert not AccessLog.objects.filter(surface="stream").exists()


@FAST
def test_stream_falls_silent_once_membership_is_revoked(
    client, treating_clinician, patient, care_team, admin_user
):
    _critical_anc(patient)
    care_team_remove_member(team=care_team, clinician=treating_clinician, revoked_by=admin_user)
    client.force_login(treating_clinician)
    assert "event: change" not in _read_stream(client, **{"Last-Event-ID": "0"})


@FAST
def test_stream_resumes_after_last_event_id_without_gaps(client, treating_clinician, patient):
    first = _critical_anc(patient)
    second = _critical_anc(patient)
    first_event = ChangeEvent.objects.get(kind="lab_result", object_id=first.pk)
    second_event = ChangeEvent.objects.get(kind="lab_result", object_id=second.pk)
    client.force_login(treating_clinician)
    body = _read_stream(client, **{"Last-Event-ID": str(first_event.pk)})
    assert f"id: {first_event.pk}\n" not in body
    assert f"id: {second_event.pk}\n" in body


@FAST
def test_stream_for_a_patient_outside_the_team_is_404(client, treating_clinician):
    stranger = PatientFactory.create()
    client.force_login(treating_clinician)
    response = client.get(reverse("live:changes"), {"patient": stranger.pk})
    assert response.status_code == 404


def test_stream_without_a_session_is_401(client):
    assert client.get(reverse("live:changes")).status_code == 401


@FAST
def test_stream_ends_when_the_session_is_logged_out_elsewhere(client, treating_clinician, patient):
    client.force_login(treating_clinician)
    response = client.get(reverse("live:changes"))
    Session.objects.all().delete()  # logged out in another tab: the session row is gone
    body = b"".join(response.streaming_content).decode()
    assert "event: signed-out" in body


@FAST
def test_open_stream_does_not_extend_the_idle_session(client, treating_clinician):
    client.force_login(treating_clinician)
    session = client.session
    before = session["_op_last_activity"]
    b"".join(client.get(reverse("live:changes")).streaming_content)
    assert client.session["_op_last_activity"] == before


def _token_for(user):
    from oncoplanner.accounts.api_tokens import api_token_create

    token, raw = api_token_create(
        user=user, name="phone", expires_at=timezone.now() + dt.timedelta(days=7), created_by=user
    )
    return token, {"Authorization": f"Bearer {raw}"}


@FAST
def test_a_mobile_app_streams_with_its_api_token(client, treating_clinician, patient):
    # A reviewer's mobile client got "Sign in first." and had to poll.
    _, bearer = _token_for(treating_clinician)
    result = _critical_anc(patient)
    event = ChangeEvent.objects.get(kind="lab_result", object_id=result.pk)
    body = _read_stream(client, **bearer, **{"Last-Event-ID": str(event.pk - 1)})
    assert f"id: {event.pk}\nevent: change\n" in body
    row = AccessLog.objects.filter(surface="stream", user=treating_clinician).get()
    assert row.patient_ids == [patient.pk]


def test_a_token_stream_passes_the_same_gate(client, treating_clinician):
    _, bearer = _token_for(treating_clinician)
    stranger = PatientFactory.create()
    outside = client.get(reverse("live:changes"), {"patient": stranger.pk}, headers=bearer)
    assert outside.status_code == 404
    wrong = client.get(reverse("live:changes"), headers={"Authorization": "Bearer op_nonsense"})
    assert wrong.status_code == 401


@FAST
def test_a_token_stream_ends_when_the_token_is_revoked(client, treating_clinician, patient):
    from oncoplanner.accounts.api_tokens import api_token_revoke

    token, bearer = _token_for(treating_clinician)
    response = client.get(reverse("live:changes"), headers=bearer)
    api_token_revoke(token=token, by=treating_clinician)
    body = b"".join(response.streaming_content).decode()
    assert "event: signed-out" in body


def test_a_stream_with_both_a_session_and_a_token_is_refused(client, treating_clinician):
    _, bearer = _token_for(treating_clinician)
    client.force_login(treating_clinician)
    assert client.get(reverse("live:changes"), headers=bearer).status_code == 400
