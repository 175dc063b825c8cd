"""REST /api/v1 lab results in a molar unit: converted as on the page and in the import."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.test import Client

from labs.models import LabResult, LabTest
from oncoplanner.accounts.tests.factories import sign_in as _login

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 4, 20, 12, 0, tzinfo=dt.UTC)
CREAT, BILI, ALT = "2160-0", "1975-2", "1742-6"


def _post(client: Client, patient, loinc: str, value: str, unit: str):
    body = {
        "test_id": LabTest.objects.get(loinc=loinc).pk,
        "value": value,
        "unit": unit,
        "collected_at": "2026-04-20T08:00:00Z",
    }
    url = f"/api/v1/patients/{patient.pk}/lab-results"
    return client.post(url, body, content_type="application/json")


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    ("loinc", "reported", "stored", "flag"),
    [(CREAT, "88.4", "1", "N"), (BILI, "34.2", "2", "H")],
)
def test_rest_records_a_molar_result_in_the_tests_unit_and_keeps_the_reported_one(
    client, treating_clinician, patient, loinc, reported, stored, flag
):
    _login(client, treating_clinician)
    created = _post(client, patient, loinc, reported, "umol/L")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (Decimal(body["value"]), body["unit"], body["flag"]) == (
        Decimal(stored),
        "mg/dL",
        flag,
    )
    assert (Decimal(body["reported_value"]), body["reported_unit"]) == (
        Decimal(reported),
        "umol/L",
    )
    # Read back as every export reads it: the stored value in the test's unit.
    detail = client.get(f"/api/v1/patients/{patient.pk}/lab-results/{body['id']}").json()
    assert (Decimal(detail["value"]), detail["unit"]) == (Decimal(stored), "mg/dL")


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    ("loinc", "unit", "message"),
    [
        (
            ALT,
            "umol/L",
            "Alanine aminotransferase (ALT) is reported in U/L (also accepted: mU/mL), "
            "not “umol/L”.",
        ),
        (
            CREAT,
            "mmol/L",
            "Creatinine is reported in mg/dL (also accepted: mg/L, umol/L), not “mmol/L”.",
        ),
    ],
)
def test_rest_refuses_a_unit_it_cannot_convert_with_a_400_on_unit(
    client, treating_clinician, patient, loinc, unit, message
):
    _login(client, treating_clinician)
    refused = _post(client, patient, loinc, "80", unit)
    assert refused.status_code == 400
    assert [(e["loc"], e["msg"]) for e in refused.json()["detail"]] == [(["body", "unit"], message)]
    assert not LabResult.objects.exists()
