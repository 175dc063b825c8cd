"""Delta check: a result far from the patient's previous one within a week waits for a confirm."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from labs import csv_import, services
from labs.models import LabResult, LabTest
from labs.services import LabValueChangeToConfirm, lab_result_record
from labs.tests.factories import LabResultFactory
from oncoplanner.accounts.api_tokens import api_token_create
from oncoplanner.accounts.tests.factories import sign_in as _login

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 4, 20, 12, 0, tzinfo=dt.UTC)
PLT, ANC, HB, CREA = "777-3", "751-8", "718-7", "2160-0"
HX = {"HX-Request": "true"}


def _test(loinc: str) -> LabTest:
    return LabTest.objects.get(loinc=loinc)


def _previous(patient, loinc, value, hours_ago=4) -> LabResult:
    return LabResultFactory.create(
        patient=patient,
        test=_test(loinc),
        value=Decimal(value),
        collected_at=NOW - dt.timedelta(hours=hours_ago),
    )


def _record(patient, loinc, value, unit=None, hours_ago=2, **kwargs) -> LabResult:
    return lab_result_record(
        patient=patient,
        test=_test(loinc),
        value=Decimal(value),
        unit=unit or _test(loinc).unit,
        collected_at=NOW - dt.timedelta(hours=hours_ago),
        recorded_by=None,
        **kwargs,
    )


# --- The rule --------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_platelets_62_then_5000_waits_for_a_confirm(patient):
    """The reported case: the typo would have flipped readiness from Hold to Treat."""
    _previous(patient, PLT, "62")
    with pytest.raises(LabValueChangeToConfirm) as caught:
        _record(patient, PLT, "5000")
    message = caught.value.message_dict["value"][0]
    assert message.startswith("PLT 5000 ×10³/µL is 81 times the previous PLT (62 ×10³/µL")
    assert caught.value.confirm_with == "confirm_change"
    assert LabResult.objects.count() == 1
    recorded = _record(patient, PLT, "5000", confirm_change=True)
    assert recorded.value == Decimal("5000")


@time_machine.travel(NOW, tick=False)
def test_anc_typed_per_microlitre_waits_for_a_confirm_and_says_how_it_was_entered(patient):
    # 60 /uL is a possible count, so the delta check asks (a figure under 50 /uL is refused
    # outright as a unit slip: labs/tests/test_plausibility.py).
    _previous(patient, ANC, "1.5")
    with pytest.raises(LabValueChangeToConfirm) as caught:
        _record(patient, ANC, "60", unit="/uL")
    message = caught.value.message_dict["value"][0]
    assert message.startswith("ANC 0.06 ×10³/µL (reported 60 /µL) is 1/25 of the previous")
    assert LabResult.objects.count() == 1


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    ("loinc", "before", "after"),
    [
        (ANC, "2.1", "0.4"),  # a nadir drop (5.25x): counts use N = 10
        (ANC, "0.4", "3.8"),  # recovery on G-CSF (9.5x)
        (PLT, "150", "20"),  # 7.5x
        (HB, "10.0", "7.2"),
        (CREA, "0.9", "4.4"),  # 4.9x: just under N = 5
    ],
)
def test_day_to_day_changes_are_recorded_without_a_question(patient, loinc, before, after):
    _previous(patient, loinc, before)
    assert _record(patient, loinc, after).value == Decimal(after)


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    ("loinc", "before", "after"),
    [
        (PLT, "62", "620"),  # a slipped decimal point: exactly tenfold still asks
        (ANC, "2.1", "0.21"),
        (ANC, "1.5", "0"),  # zero after a count has no ratio: asks
        (HB, "10.4", "2.0"),  # 5.2x: everything but the counts uses N = 5
        (CREA, "0.9", "9.0"),
    ],
)
def test_changes_of_n_fold_or_more_ask(patient, loinc, before, after):
    _previous(patient, loinc, before)
    with pytest.raises(LabValueChangeToConfirm):
        _record(patient, loinc, after)


@time_machine.travel(NOW, tick=False)
def test_only_the_previous_week_and_current_results_count(patient, treating_clinician):
    _previous(patient, PLT, "62", hours_ago=24 * 7 + 3)  # older than the week before
    assert _record(patient, PLT, "800", hours_ago=2).value == Decimal("800")
    services.lab_result_mark_entered_in_error(
        result=LabResult.objects.get(value=Decimal("800")),
        by=treating_clinician,
        reason="Typo: 80 entered as 800",
    )
    _previous(patient, PLT, "0", hours_ago=30)  # a previous 0 gives no ratio
    assert _record(patient, PLT, "80", hours_ago=1).value == Decimal("80")


@time_machine.travel(NOW, tick=False)
def test_the_previous_is_the_latest_before_the_new_collection_time(patient):
    _previous(patient, PLT, "60", hours_ago=10)
    _previous(patient, PLT, "600", hours_ago=1)  # after the back-dated result below
    with pytest.raises(LabValueChangeToConfirm):
        _record(patient, PLT, "600", hours_ago=5)


# --- Page ------------------------------------------------------------------------------------


def _form(value, **extra):
    return {
        "test": _test(PLT).pk,
        "value": value,
        "unit": "10*3/uL",
        "collected_on": "2026-04-20",
        "collected_time": "12:30",  # clinic time (BST): 11:30 UTC
        **extra,
    }


@time_machine.travel(NOW, tick=False)
def test_page_asks_with_a_checkbox_only_after_the_service_asked(
    client, patient, treating_clinician
):
    _previous(patient, PLT, "62")
    _login(client, treating_clinician)
    url = reverse("labs:lab_result_create", args=[patient.pk]) + f"?analytes={PLT}"
    page = client.get(reverse("labs:lab_trends", args=[patient.pk]))
    assert b'name="confirm_change"' not in page.content
    asked = client.post(url, _form("5000"), headers=HX)
    assert asked.status_code == 400
    assert b'name="confirm_change"' in asked.content
    assert "is 81 times the previous PLT" in asked.content.decode()
    assert LabResult.objects.count() == 1
    done = client.post(url, _form("5000", confirm_change="on"), headers=HX)
    assert done.status_code == 200
    assert b"Recorded PLT 5000" in done.content
    assert LabResult.objects.count() == 2


# --- REST ------------------------------------------------------------------------------------


def _token_client(user) -> Client:
    _, raw = api_token_create(
        user=user, name="test", expires_at=timezone.now() + dt.timedelta(days=7), created_by=user
    )
    return Client(headers={"Authorization": f"Bearer {raw}"})


@time_machine.travel(NOW, tick=False)
def test_rest_answers_confirmation_required_then_records_with_the_flag(patient, treating_clinician):
    _previous(patient, PLT, "62")
    client = _token_client(treating_clinician)
    url = f"/api/v1/patients/{patient.pk}/lab-results"
    body = {
        "test_id": _test(PLT).pk,
        "value": "5000",
        "unit": "10*3/uL",
        "collected_at": "2026-04-20T11:00:00Z",
    }
    asked = client.post(url, body, content_type="application/json")
    assert asked.status_code == 400
    error = asked.json()["detail"][0]
    assert error["loc"] == ["body", "value"]
    assert (error["type"], error["confirm_with"]) == ("confirmation_required", "confirm_change")
    done = client.post(url, {**body, "confirm_change": True}, content_type="application/json")
    assert done.status_code == 201, done.content


# --- CSV import ------------------------------------------------------------------------------

HEADER = "loinc,value,unit,collected_at\n"


@time_machine.travel(NOW, tick=False)
def test_csv_preview_flags_a_far_value_against_the_record_and_earlier_rows(patient):
    _previous(patient, PLT, "62", hours_ago=30)
    data = (
        HEADER
        + "777-3,5000,10*3/uL,2026-04-19T08:00+00:00\n"  # 80x the 62 on record
        + "751-8,2.0,10*3/uL,2026-04-19T08:00+00:00\n"
        + "751-8,20,10*3/uL,2026-04-20T08:00+00:00\n"  # 10x the file's own row above
    ).encode()
    preview = csv_import.parse(data=data, patient=patient)
    assert preview.ok
    assert preview.confirm_count == 2
    assert [bool(r.confirm) for r in preview.rows] == [True, False, True]
    assert preview.rows[0].confirm.startswith("PLT 5000 ×10³/µL is 81 times the previous PLT")


def _import(client, patient, data: str):
    url = reverse("labs:lab_import", args=[patient.pk])
    upload = SimpleUploadedFile("labs.csv", data.encode(), "text/csv")
    preview = client.post(url, {"file": upload})
    return url, preview


@time_machine.travel(NOW, tick=False)
def test_csv_import_records_flagged_rows_only_when_confirmed_all_or_none(
    client, patient, treating_clinician
):
    _previous(patient, PLT, "62", hours_ago=30)
    data = (
        HEADER
        + "751-8,2.0,10*3/uL,2026-04-19T08:00+00:00\n777-3,5000,10*3/uL,2026-04-19T08:00+00:00\n"
    )
    _login(client, treating_clinician)
    url, preview = _import(client, patient, data)
    assert preview.status_code == 200
    html = preview.content.decode()
    assert 'name="confirm_change" required' in html
    assert "1 to check" in html
    refused = client.post(url, {"confirm": preview.context["token"]})
    assert refused.status_code == 400
    assert "Line 3: value: PLT 5000" in refused.content.decode()
    assert LabResult.objects.count() == 1  # all rows or none
    url, preview = _import(client, patient, data)
    done = client.post(url, {"confirm": preview.context["token"], "confirm_change": "on"})
    assert done.status_code == 302
    assert LabResult.objects.count() == 3
