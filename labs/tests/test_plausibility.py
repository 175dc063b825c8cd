"""Plausibility of a lab value: a unit slip or a value no patient can have is refused, with
both readings, at every door (service, page, CSV import, REST, GraphQL); a real 0 is kept.

A reviewer's find: WBC 4.2 entered with /mm3 was stored as 0.0042 x10³/µL and flagged only
Low; the demo held "ANC 0.0003 x10³/µL (reported 0.3 /µL)".
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse

from labs import csv_import
from labs.models import LabResult, LabTest
from labs.rules import implausible_value_message
from labs.services import (
    lab_result_acknowledge,
    lab_result_mark_entered_in_error,
    lab_result_record,
)
from labs.tests.factories import LabTestFactory
from oncoplanner.accounts.tests.factories import sign_in as _login
from oncoplanner.tests.graphql_support import gql
from patients.models import Patient

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 4, 20, 12, 0, tzinfo=dt.UTC)
COLLECTED = dt.datetime(2026, 4, 20, 8, 0, tzinfo=dt.UTC)
WBC, ANC, HB, PLT, CREAT, BILI = "6690-2", "751-8", "718-7", "777-3", "2160-0", "1975-2"
WBC_SLIP = (
    "4.2 /mm³ would be 0.0042 ×10³/µL; if the lab reported 4.2 ×10³/µL, choose that unit. "
    "A count under 50 /mm³ is almost always a ×10³/µL figure entered with the wrong unit."
)


def _test(loinc: str) -> LabTest:
    return LabTest.objects.get(loinc=loinc)


def _record(patient: Patient, loinc: str, value: str, unit: str | None = None) -> LabResult:
    test = _test(loinc)
    return lab_result_record(
        patient=patient,
        test=test,
        value=value,
        unit=unit or test.unit,
        collected_at=COLLECTED,
        recorded_by=None,
    )


def _refusal(patient: Patient, loinc: str, value: str, unit: str | None = None) -> list[str]:
    with pytest.raises(ValidationError) as refused:
        _record(patient, loinc, value, unit)
    assert not LabResult.all_objects.exists()
    return refused.value.message_dict["value"]


# --- The rule, on plain values ----------------------------------------------------------------


def test_a_count_under_50_per_ul_shows_both_readings():
    wbc = LabTest(name="White blood cells", unit="10*3/uL", min_plausible=Decimal("0.01"))
    message = implausible_value_message(
        wbc, Decimal("0.0042"), reported_value=Decimal("4.2"), reported_unit="/mm3"
    )
    assert message == WBC_SLIP


def test_a_true_count_under_50_per_ul_is_told_how_to_enter_it():
    # ANC 20 /uL does happen (profound neutropenia): 0.02 x10³/uL is above ANC's floor.
    anc = LabTest(name="Neutrophils", unit="10*3/uL", min_plausible=Decimal("0.01"))
    message = implausible_value_message(
        anc, Decimal("0.02"), reported_value=Decimal("20"), reported_unit="/uL"
    )
    assert message is not None
    assert message.endswith("If the lab really reported 20 /µL, enter 0.02 ×10³/µL.")


@pytest.mark.parametrize(
    ("value", "reported_value", "reported_unit"),
    [
        (Decimal("0"), None, ""),  # none detected
        (Decimal("0"), Decimal("0"), "/uL"),
        (Decimal("0.05"), Decimal("50"), "/uL"),  # the floor itself is a count
        (Decimal("0.3"), Decimal("300"), "/mm3"),
        (Decimal("0.01"), None, ""),  # at min_plausible
        (Decimal("500"), None, ""),  # at max_plausible
    ],
)
def test_plausible_values_pass(value, reported_value, reported_unit):
    anc = LabTest(
        name="Neutrophils",
        unit="10*3/uL",
        min_plausible=Decimal("0.01"),
        max_plausible=Decimal("500"),
    )
    assert (
        implausible_value_message(
            anc, value, reported_value=reported_value, reported_unit=reported_unit
        )
        is None
    )


def test_the_per_ul_guard_holds_for_a_test_without_a_minimum():
    test = LabTest(name="Eosinophils", unit="10*3/uL", min_plausible=None)
    message = implausible_value_message(
        test, Decimal("0.0003"), reported_value=Decimal("0.3"), reported_unit="/uL"
    )
    assert message is not None
    assert message.startswith("0.3 /µL would be 0.0003 ×10³/µL; if the lab reported 0.3 ×10³/µL")


# --- The service (every door goes through it) ------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_lab_result_record_refuses_wbc_4_2_per_mm3_with_both_readings(patient):
    assert _refusal(patient, WBC, "4.2", "/mm3") == [WBC_SLIP]


@time_machine.travel(NOW, tick=False)
def test_lab_result_record_refuses_anc_0_3_per_ul(patient):
    (message,) = _refusal(patient, ANC, "0.3", "/uL")
    assert message.startswith(
        "0.3 /µL would be 0.0003 ×10³/µL; if the lab reported 0.3 ×10³/µL, choose that unit."
    )


@time_machine.travel(NOW, tick=False)
def test_confirming_a_change_does_not_let_a_unit_slip_through(patient):
    # The delta check's "the value is right" is for a real change; a count of 0.3 /uL is not.
    test = _test(ANC)
    with pytest.raises(ValidationError) as refused:
        lab_result_record(
            patient=patient,
            test=test,
            value="0.3",
            unit="/uL",
            collected_at=COLLECTED,
            recorded_by=None,
            confirm_change=True,
        )
    assert refused.value.message_dict["value"][0].startswith("0.3 /µL would be 0.0003 ×10³/µL")
    assert not LabResult.all_objects.exists()


@time_machine.travel(NOW, tick=False)
def test_lab_result_record_refuses_a_slip_finer_than_the_stored_decimals_with_one_message(
    patient,
):
    # 0.05 /uL is 0.00005 x10³/uL: one message, about the slip, not about decimal places.
    (message,) = _refusal(patient, ANC, "0.05", "/uL")
    assert message.startswith("0.05 /µL would be 0.00005 ×10³/µL")


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    ("loinc", "value", "unit", "stored"),
    [
        (ANC, "0", "10*3/uL", Decimal("0")),  # profound neutropenia: none seen
        (ANC, "0.00", "10*3/uL", Decimal("0")),
        (ANC, "0", "/uL", Decimal("0")),
        (ANC, "0.02", "10*3/uL", Decimal("0.02")),  # 20 cells/uL, entered as the lab wrote it
        (ANC, "300", "/uL", Decimal("0.3")),
        (WBC, "4200", "/mm3", Decimal("4.2")),
        (PLT, "0", "10*3/uL", Decimal("0")),
    ],
)
def test_lab_result_record_keeps_a_real_zero_and_real_low_counts(
    patient, loinc, value, unit, stored
):
    assert _record(patient, loinc, value, unit).value == stored


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    ("loinc", "value", "unit", "start"),
    [
        # A g/dL figure typed as g/L, a mg/dL figure as umol/L: below the lowest possible.
        (HB, "9.5", "g/L", "9.5 g/L would be 0.95 g/dL, below the lowest possible Hemoglobin"),
        (CREAT, "0.9", "umol/L", "0.9 µmol/L would be 0.01 mg/dL, below the lowest possible"),
        (BILI, "0.8", "umol/L", "0.8 µmol/L would be 0.047 mg/dL, below the lowest possible"),
        (PLT, "200", "/uL", "200 /µL would be 0.2 ×10³/µL, below the lowest possible Platelets"),
        (WBC, "0.004", "10*3/uL", "0.004 ×10³/µL is below the lowest possible White blood"),
    ],
)
def test_lab_result_record_refuses_values_under_the_tests_plausible_minimum(
    patient, loinc, value, unit, start
):
    (message,) = _refusal(patient, loinc, value, unit)
    assert message.startswith(start)


@time_machine.travel(NOW, tick=False)
def test_lab_result_record_names_the_unit_as_clinicians_write_it_above_the_maximum(patient):
    (message,) = _refusal(patient, WBC, "4500")
    assert message == (
        "4500 ×10³/µL is not a possible White blood cells value (at most 1000 ×10³/µL); "
        "check the value and its unit."
    )
    assert "10*3/uL" not in message


def test_lab_result_clean_refuses_the_slip_too(patient):
    # The model's own check, for any code that builds a result without the service.
    wbc = _test(WBC)
    result = LabResult(
        patient=patient,
        test=wbc,
        value=Decimal("0.0042"),
        unit=wbc.unit,
        reported_value=Decimal("4.2"),
        reported_unit="/mm3",
        collected_at=COLLECTED,
    )
    with pytest.raises(ValidationError) as refused:
        result.full_clean()
    assert refused.value.message_dict["value"] == [WBC_SLIP]


def test_a_test_outside_the_catalogue_without_a_minimum_keeps_small_values(patient):
    test = LabTestFactory.create(ref_low=None, ref_high=None)
    assert test.min_plausible is None
    result = lab_result_record(
        patient=patient,
        test=test,
        value="0.001",
        unit=test.unit,
        collected_at=COLLECTED,
        recorded_by=None,
    )
    assert result.value == Decimal("0.001")


# --- Every door -------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_lab_page_refuses_the_slip_with_a_400_on_value(client, treating_clinician, patient):
    _login(client, treating_clinician)
    entry = {
        "test": str(_test(WBC).pk),
        "value": "4.2",
        "unit": "/mm3",
        "collected_on": "2026-04-20",
        "collected_time": "09:15",
    }
    url = reverse("labs:lab_result_create", args=[patient.pk])
    response = client.post(url, entry, headers={"HX-Request": "true"})
    assert response.status_code == 400
    errors = response.context["entry_form"].errors
    assert errors["value"] == [WBC_SLIP]
    assert not LabResult.all_objects.exists()


@time_machine.travel(NOW, tick=False)
def test_rest_refuses_the_slip_with_a_400_on_value(client, treating_clinician, patient):
    _login(client, treating_clinician)
    body = {
        "test_id": _test(WBC).pk,
        "value": "4.2",
        "unit": "/mm3",
        "collected_at": "2026-04-20T08:00:00Z",
    }
    response = client.post(
        f"/api/v1/patients/{patient.pk}/lab-results", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert [(e["loc"], e["msg"]) for e in response.json()["detail"]] == [
        (["body", "value"], WBC_SLIP)
    ]
    assert not LabResult.all_objects.exists()


@time_machine.travel(NOW, tick=False)
def test_graphql_refuses_the_slip_on_value(client, treating_clinician, patient):
    _login(client, treating_clinician)
    mutation = """mutation($p: ID!, $value: String!, $unit: String!) {
      recordLabResult(patientId: $p, loinc: "6690-2", value: $value, unit: $unit,
        collectedAt: "2026-04-20T08:00:00+00:00") { id } }"""
    _, body = gql(client, mutation, {"p": patient.pk, "value": "4.2", "unit": "/mm3"})
    (error,) = body["errors"]
    assert error["extensions"]["fields"] == {"value": [WBC_SLIP]}
    assert not LabResult.all_objects.exists()


@time_machine.travel(NOW, tick=False)
def test_csv_preview_refuses_the_slip_on_the_row(patient):
    data = (
        "loinc,value,unit,collected_at\n"
        "6690-2,4.2,/mm3,2026-04-14T08:30+00:00\n"
        "751-8,0,10*3/uL,2026-04-14T08:30+00:00\n"
    )
    preview = csv_import.parse(data=data.encode(), patient=patient)
    assert preview.rows[0].errors == {"value": WBC_SLIP}
    assert preview.rows[1].ok  # a real 0
    assert not LabResult.all_objects.exists()


@time_machine.travel(NOW, tick=False)
def test_csv_preview_names_the_maximum_in_the_readable_unit(patient):
    data = "loinc,value,unit,collected_at\n751-8,900,10*9/L,2026-04-14T08:30+00:00\n"
    preview = csv_import.parse(data=data.encode(), patient=patient)
    assert preview.rows[0].errors == {
        "value": "900 ×10⁹/L would be 900 ×10³/µL: that is not a possible Neutrophils "
        "(absolute count) value (at most 500 ×10³/µL); check the value and its unit."
    }


@time_machine.travel(NOW, tick=False)
def test_csv_commit_refuses_the_slip_and_writes_nothing(patient, treating_clinician):
    # A row that reaches the commit without the preview's check (the catalogue changed in
    # between): lab_result_record refuses it there too.
    row = {
        "patient_id": str(patient.pk),
        "loinc": WBC,
        "value": "4.2",
        "unit": "/mm3",
        "collected_at": "2026-04-14T08:30:00+00:00",
        "line": "2",
        "confirm": "",
    }
    with pytest.raises(ValidationError) as refused:
        csv_import.commit(rows=[row], patients={patient.pk: patient}, by=treating_clinician)
    assert refused.value.message_dict["row"] == [f"Line 2: value: {WBC_SLIP}"]
    assert not LabResult.all_objects.exists()


# --- Results stored before the guard ----------------------------------------------------------


def _stored_slip(patient: Patient) -> LabResult:
    """As the demo holds it: ANC 0.0003 x10³/µL (reported 0.3 /µL), critical, not acknowledged."""
    anc = _test(ANC)
    return LabResult.objects.create(
        patient=patient,
        test=anc,
        value=Decimal("0.0003"),
        unit=anc.unit,
        reported_value=Decimal("0.3"),
        reported_unit="/uL",
        collected_at=COLLECTED,
        critical_low=anc.critical_low,
        critical_low_inclusive=anc.critical_low_inclusive,
        flag="LL",
    )


def test_a_stored_slip_can_still_be_acknowledged(patient, treating_clinician):
    result = _stored_slip(patient)
    lab_result_acknowledge(result=result, by=treating_clinician, note="Lab called: was 0.3")
    result.refresh_from_db()
    assert result.acknowledged_by == treating_clinician


def test_a_stored_slip_can_still_be_marked_entered_in_error(patient, treating_clinician):
    result = _stored_slip(patient)
    lab_result_mark_entered_in_error(
        result=result, by=treating_clinician, reason="typed 0.3 with the /uL unit"
    )
    result.refresh_from_db()
    assert result.entered_in_error_at is not None


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(("loinc", "unit"), [(HB, "g/dL"), (CREAT, "mg/dL")])
def test_zero_is_refused_for_a_test_no_living_patient_reads_zero_on(patient, loinc, unit):
    # A reviewer's Hb 0 g/dL was accepted, flagged LL and sent to the inbox as critical.
    (message,) = _refusal(patient, loinc, "0", unit)
    assert "below the lowest possible" in message
    assert "none detected" not in message
