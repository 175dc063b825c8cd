"""CSV import: preview with row-level errors, then an all-or-nothing commit."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AccessLog
from labs import csv_import
from labs.models import LabResult, LabTest
from labs.tests.factories import LabResultFactory
from oncoplanner.accounts.tests.factories import sign_in as _login
from patients.services import care_team_create, care_team_remove_member, emergency_access_open
from patients.tests.factories import patient_through_service

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 4, 20, 12, 0, tzinfo=dt.UTC)
HEADER = "loinc,value,unit,collected_at\n"
GOOD = (
    HEADER
    + "751-8,1.20,10*3/uL,2026-04-14T08:30+00:00\n"
    + "718-7,10.4,g/dL,2026-04-14T08:30+00:00\n"
    + "777-3,95,10*3/uL,2026-04-14 08:30\n"  # no offset: clinic time
)


def _url(patient):
    return reverse("labs:lab_import", args=[patient.pk])


def _upload(client, patient, text: str | bytes, name="labs.csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post(_url(patient), {"file": SimpleUploadedFile(name, data, "text/csv")})


def _token(response) -> str:
    return response.context["token"]


# --- parse (no writes) -----------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_parse_accepts_valid_rows_in_clinic_time(patient):
    preview = csv_import.parse(data=GOOD.encode(), patient=patient)
    assert preview.ok
    assert [r.test.short_name for r in preview.rows] == ["ANC", "Hb", "PLT"]
    # Europe/London is on BST (UTC+1) in April: 08:30 local is 07:30 UTC.
    assert preview.rows[2].collected_at == dt.datetime(2026, 4, 14, 7, 30, tzinfo=dt.UTC)
    assert not LabResult.objects.exists()


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ("9999-9,1.2,10*3/uL,2026-04-14T08:30+00:00", "loinc", "Unknown LOINC"),
        ("751-8,1.2,g/dL,2026-04-14T08:30+00:00", "unit", "is reported in 10*3/uL (also"),
        ("718-7,80,umol/L,2026-04-14T08:30+00:00", "unit", "is reported in g/dL (also"),
        (
            "2160-0,80,mmol/L,2026-04-14T08:30+00:00",
            "unit",
            "Creatinine is reported in mg/dL (also accepted: mg/L, umol/L), not “mmol/L”.",
        ),
        ("2160-0,88.12345,umol/L,2026-04-14T08:30+00:00", "value", "At most 4 decimal places"),
        (
            "751-8,900,10*9/L,2026-04-14T08:30+00:00",
            "value",
            "900 ×10⁹/L would be 900 ×10³/µL: that is not a possible",
        ),
        ("751-8,1.2,10*3/uL,2026-02-30T08:30+00:00", "collected_at", "not a valid date"),
        ("751-8,1.2,10*3/uL,yesterday", "collected_at", "not a valid date"),
        ("751-8,1.2,10*3/uL,2026-05-01T08:30+00:00", "collected_at", "in the future"),
        ("751-8,1.2,10*3/uL,1900-01-01T08:30+00:00", "collected_at", "before the patient's"),
        ("751-8,NaN,10*3/uL,2026-04-14T08:30+00:00", "value", "not a finite number"),
        ("751-8,Infinity,10*3/uL,2026-04-14T08:30+00:00", "value", "not a finite number"),
        ("751-8,-0.5,10*3/uL,2026-04-14T08:30+00:00", "value", "cannot be negative"),
        ("751-8,abc,10*3/uL,2026-04-14T08:30+00:00", "value", "not a finite number"),
        ("751-8,9000,10*3/uL,2026-04-14T08:30+00:00", "value", "not a possible"),
        ("751-8,1.123456,10*3/uL,2026-04-14T08:30+00:00", "value", "decimal places"),
        ("751-8,1.2,10*3/uL", "row", "Expected 4 columns"),
        ("751-8,1.2,10*3/uL,2026-04-14T08:30+00:00,extra", "row", "Expected 4 columns"),
    ],
)
def test_parse_reports_row_errors(patient, line, field, message):
    preview = csv_import.parse(
        data=(HEADER + "718-7,10.4,g/dL,2026-04-14T08:30+00:00\n" + line + "\n").encode(),
        patient=patient,
    )
    assert not preview.ok
    assert preview.rows[0].ok
    assert message in preview.rows[1].errors[field]


@time_machine.travel(NOW, tick=False)
def test_parse_flags_duplicates_in_file_and_already_recorded(patient):
    anc = LabTest.objects.get(loinc="751-8")
    LabResultFactory.create(
        patient=patient, test=anc, collected_at=dt.datetime(2026, 4, 10, 8, 0, tzinfo=dt.UTC)
    )
    text = (
        HEADER
        + "751-8,1.2,10*3/uL,2026-04-14T08:30+00:00\n"
        + "751-8,1.3,10*3/uL,2026-04-14T09:30+01:00\n"  # the same instant as line 2
        + "751-8,1.4,10*3/uL,2026-04-10T08:00Z\n"
    )
    preview = csv_import.parse(data=text.encode(), patient=patient)
    assert preview.rows[0].ok
    assert preview.rows[1].errors["row"] == "Duplicate of line 2."
    assert "already recorded" in preview.rows[2].errors["row"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("é".encode("latin-1") + b"\n", "not UTF-8"),
        (b"test,value,unit,collected_at\n751-8,1,10*3/uL,2026-04-14\n", "Expected the columns"),
        (b"", "Expected the columns"),
        (HEADER.encode(), "no rows"),
        (HEADER.encode() + b"751-8,1\x00,10*3/uL,2026-04-14\n", "NUL"),
    ],
)
def test_parse_rejects_unreadable_files(patient, data, message):
    with pytest.raises(csv_import.CsvFileError, match=message):
        csv_import.parse(data=data, patient=patient)


# --- the page --------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_lab_import_preview_then_confirm_records_every_row(client, treating_clinician, patient):
    _login(client, treating_clinician)
    preview = _upload(client, patient, GOOD)
    assert preview.status_code == 200
    assert b"Import 3 results" in preview.content
    assert not LabResult.objects.exists()  # the preview writes nothing

    response = client.post(_url(patient), {"confirm": _token(preview)})

    assert response.status_code == 302
    results = LabResult.objects.filter(patient=patient).order_by("test__short_name")
    assert [(r.test.short_name, r.value, r.source) for r in results] == [
        ("ANC", Decimal("1.2000"), "import"),
        ("Hb", Decimal("10.4000"), "import"),
        ("PLT", Decimal("95.0000"), "import"),
    ]
    assert {r.flag for r in results} == {"L"}
    # The token is single use.
    again = client.post(_url(patient), {"confirm": _token(preview)})
    assert again.status_code == 400
    assert LabResult.objects.count() == 3


@time_machine.travel(NOW, tick=False)
def test_lab_import_converts_a_european_lab_file_and_shows_the_conversion_first(
    client, treating_clinician, patient
):
    text = (
        HEADER
        + "718-7,105,g/L,2026-04-14T08:30+00:00\n"
        + "777-3,95,10*9/L,2026-04-14T08:30+00:00\n"
    )
    _login(client, treating_clinician)
    preview = _upload(client, patient, text)
    assert preview.status_code == 200
    html = preview.content.decode()
    assert "recorded as 10.5" in html  # the clinician sees the conversion before confirming
    assert "g/L" in html
    assert "×10⁹/L" in html

    client.post(_url(patient), {"confirm": _token(preview)})

    results = LabResult.objects.filter(patient=patient).order_by("test__short_name")
    assert [
        (r.test.short_name, r.value, r.unit, r.reported_value, r.reported_unit) for r in results
    ] == [
        ("Hb", Decimal("10.5"), "g/dL", Decimal("105"), "g/L"),
        ("PLT", Decimal("95"), "10*3/uL", Decimal("95"), "10*9/L"),
    ]


@time_machine.travel(NOW, tick=False)
def test_lab_import_converts_molar_creatinine_and_bilirubin_by_analyte(
    client, treating_clinician, patient
):
    text = (
        HEADER
        + "2160-0,88.4,umol/L,2026-04-14T08:30+00:00\n"
        + "1975-2,34.2,umol/L,2026-04-14T08:30+00:00\n"
    )
    _login(client, treating_clinician)
    preview = _upload(client, patient, text)
    assert preview.status_code == 200
    html = preview.content.decode()
    assert "recorded as 1<" in html  # 1.000 mg/dL, written as the lab page writes it
    assert "recorded as 2<" in html
    assert "µmol/L" in html

    client.post(_url(patient), {"confirm": _token(preview)})

    results = LabResult.objects.filter(patient=patient).order_by("test__short_name")
    assert [
        (r.test.short_name, r.value, r.unit, r.flag, r.reported_value, r.reported_unit)
        for r in results
    ] == [
        ("Bili", Decimal("2.00"), "mg/dL", "H", Decimal("34.2"), "umol/L"),
        ("Creat", Decimal("1.00"), "mg/dL", "N", Decimal("88.4"), "umol/L"),
    ]


@time_machine.travel(NOW, tick=False)
def test_lab_import_preview_with_row_errors_is_400_without_confirm(
    client, treating_clinician, patient
):
    _login(client, treating_clinician)
    text = GOOD + "9999-9,1.2,10*3/uL,2026-04-14T08:30+00:00\n751-8,1,10*3/uL,2026-02-30\n"
    response = _upload(client, patient, text)
    assert response.status_code == 400
    content = response.content.decode()
    assert "2 with errors" in content
    assert "Unknown LOINC" in content
    assert "not a valid date" in content
    assert 'name="confirm"' not in content
    assert not LabResult.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_lab_import_commit_is_all_or_nothing(client, treating_clinician, patient):
    _login(client, treating_clinician)
    preview = _upload(client, patient, GOOD)
    # Between preview and confirm the catalogue changes: the last row (PLT 95) fails at commit.
    LabTest.objects.filter(loinc="777-3").update(max_plausible=Decimal("50"))

    response = client.post(_url(patient), {"confirm": _token(preview)})

    assert response.status_code == 400
    assert b"Line 4" in response.content
    assert b"Nothing was imported" in response.content
    assert not LabResult.objects.exists()


def test_lab_import_file_too_big_is_400(client, treating_clinician, patient):
    _login(client, treating_clinician)
    big = GOOD + ("751-8,1.2,10*3/uL,2026-04-14T08:30+00:00\n" * 30000)
    response = _upload(client, patient, big)
    assert response.status_code == 400
    assert b"larger than 1 MB" in response.content
    assert not LabResult.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [("é".encode("latin-1"), b"not UTF-8"), (b"a,b\n1,2\n", b"Expected the columns")],
)
def test_lab_import_unreadable_file_is_400(client, treating_clinician, patient, data, message):
    _login(client, treating_clinician)
    response = _upload(client, patient, data)
    assert response.status_code == 400
    assert message in response.content


def test_lab_import_hides_patient_from_other_clinician(client, other_clinician, patient):
    _login(client, other_clinician)
    assert client.get(_url(patient)).status_code == 404
    assert _upload(client, patient, GOOD).status_code == 404
    assert not LabResult.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_lab_import_token_is_bound_to_the_patient(client, treating_clinician, patient, care_team):
    from patients.services import patient_create
    from patients.tests.factories import PatientFactory

    fields = PatientFactory.build()
    other = patient_create(
        created_by=None,
        care_team=care_team,
        mrn="MRN-OTHER-1",
        given_name=fields.given_name,
        family_name=fields.family_name,
        date_of_birth=fields.date_of_birth,
        sex=fields.sex,
    )
    _login(client, treating_clinician)
    preview = _upload(client, patient, GOOD)
    response = client.post(_url(other), {"confirm": _token(preview)})
    assert response.status_code == 400
    assert not LabResult.objects.exists()


def test_lab_import_get_shows_the_form(client, treating_clinician, patient):
    _login(client, treating_clinician)
    response = client.get(_url(patient))
    assert response.status_code == 200
    assert b'enctype="multipart/form-data"' in response.content


# --- Clinic file: many patients, matched by MRN through the gate -----------------------------

CLINIC_HEADER = "mrn,loinc,value,unit,collected_at\n"


def _clinic_url():
    return reverse("labs:clinic_lab_import")


def _clinic_upload(client, text: str):
    data = SimpleUploadedFile("lab-feed.csv", text.encode(), "text/csv")
    return client.post(_clinic_url(), {"file": data})


@pytest.fixture
def second_patient(care_team):
    return patient_through_service(care_team)


@pytest.fixture
def outside_patient(db):
    # A name no Faker patient has: a random one matched the team's patient's now and then
    # (both Allen), and the page rightly showed that patient's name.
    return patient_through_service(care_team_create(name="Breast"), family_name="Outsideworth")


@time_machine.travel(NOW, tick=False)
def test_clinic_import_records_each_row_on_its_patient_after_a_named_preview(
    client, treating_clinician, patient, second_patient
):
    text = (
        CLINIC_HEADER
        + f"{patient.mrn},751-8,1.20,10*3/uL,2026-04-14T08:30+00:00\n"
        + f"{second_patient.mrn},751-8,0.40,10*3/uL,2026-04-14T08:30+00:00\n"
        + f"{second_patient.mrn},718-7,98,g/L,2026-04-14T08:30+00:00\n"
    )
    _login(client, treating_clinician)
    preview = _clinic_upload(client, text)
    assert preview.status_code == 200
    html = preview.content.decode()
    # The clinician checks each row's patient by name before confirming.
    assert patient.family_name.upper() in html
    assert second_patient.family_name.upper() in html
    assert not LabResult.objects.exists()
    previewed = AccessLog.objects.filter(action="list", user=treating_clinician)
    assert {p for entry in previewed for p in entry.patient_ids} >= {patient.pk, second_patient.pk}

    response = client.post(_clinic_url(), {"confirm": _token(preview)})

    assert response.status_code == 302
    by_patient = {
        (r.patient_id, r.test.short_name, r.value) for r in LabResult.objects.select_related("test")
    }
    assert by_patient == {
        (patient.pk, "ANC", Decimal("1.2")),
        (second_patient.pk, "ANC", Decimal("0.4")),
        (second_patient.pk, "Hb", Decimal("9.8")),
    }
    assert AccessLog.objects.filter(action="create", object_type="LabResult").count() == 3
    followed = client.get(response["Location"]).content.decode()
    assert "Imported 3 lab result(s) for 2 patients." in followed


@time_machine.travel(NOW, tick=False)
def test_clinic_import_says_the_same_of_an_outside_and_a_missing_mrn_and_writes_nothing(
    client, treating_clinician, patient, outside_patient
):
    text = (
        CLINIC_HEADER
        + f"{patient.mrn},751-8,1.20,10*3/uL,2026-04-14T08:30+00:00\n"
        + f"{outside_patient.mrn},751-8,1.20,10*3/uL,2026-04-14T08:30+00:00\n"
        + "NO-SUCH-MRN,751-8,1.20,10*3/uL,2026-04-14T08:30+00:00\n"
    )
    _login(client, treating_clinician)
    response = _clinic_upload(client, text)

    assert response.status_code == 400
    rows = response.context["preview"].rows
    assert rows[0].ok
    outside, missing = rows[1].errors["mrn"], rows[2].errors["mrn"]
    assert outside.replace(outside_patient.mrn, "X") == missing.replace("NO-SUCH-MRN", "X")
    assert outside_patient.family_name.upper() not in response.content.decode()
    assert not LabResult.objects.exists()
    logged = {p for entry in AccessLog.objects.filter(action="list") for p in entry.patient_ids}
    assert outside_patient.pk not in logged  # nothing of it was read


@time_machine.travel(NOW, tick=False)
def test_clinic_import_leaves_break_glass_charts_to_their_own_lab_page(
    client, other_clinician, patient
):
    emergency_access_open(
        user=other_clinician,
        patient_id=patient.pk,
        reason="Seen in A&E overnight with febrile neutropenia",
    )
    _login(client, other_clinician)
    text = CLINIC_HEADER + f"{patient.mrn},751-8,1.20,10*3/uL,2026-04-14T08:30+00:00\n"
    response = _clinic_upload(client, text)
    assert response.status_code == 400
    assert "on your care teams" in response.context["preview"].rows[0].errors["mrn"]


@time_machine.travel(NOW, tick=False)
def test_clinic_import_confirm_after_leaving_the_team_writes_nothing(
    client, treating_clinician, patient, care_team, admin_user
):
    text = CLINIC_HEADER + f"{patient.mrn},751-8,1.20,10*3/uL,2026-04-14T08:30+00:00\n"
    _login(client, treating_clinician)
    preview = _clinic_upload(client, text)
    assert preview.status_code == 200
    care_team_remove_member(team=care_team, clinician=treating_clinician, revoked_by=admin_user)

    response = client.post(_clinic_url(), {"confirm": _token(preview)})

    assert response.status_code == 400
    assert "no longer on your care teams" in response.content.decode()
    assert not LabResult.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_clinic_import_duplicates_are_per_patient(
    client, treating_clinician, patient, second_patient
):
    same_time = "751-8,1.20,10*3/uL,2026-04-14T08:30+00:00\n"
    text = (
        CLINIC_HEADER
        + f"{patient.mrn},{same_time}"
        + f"{second_patient.mrn},{same_time}"  # another patient at the same time: fine
        + f"{patient.mrn},{same_time}"
    )
    _login(client, treating_clinician)
    rows = _clinic_upload(client, text).context["preview"].rows
    assert rows[0].ok
    assert rows[1].ok
    assert rows[2].errors["row"] == "Duplicate of line 2."


def test_clinic_import_token_is_not_a_single_patient_token(client, treating_clinician, patient):
    # A per-patient preview cannot be confirmed on the clinic door, nor the other way round.
    _login(client, treating_clinician)
    with time_machine.travel(NOW, tick=False):
        preview = _upload(client, patient, GOOD)
        response = client.post(_clinic_url(), {"confirm": _token(preview)})
    assert response.status_code == 400
    assert not LabResult.objects.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEADER + "751-8,1.2,10*3/uL,2026-04-14T08:30+00:00\n", "Expected the columns mrn,loinc"),
        (CLINIC_HEADER + "DEMO-1,751-8,1.2\n", "Expected 5 columns"),
    ],
)
def test_clinic_import_bad_file_is_400_naming_the_problem(
    client, treating_clinician, patient, text, message
):
    _login(client, treating_clinician)
    response = _clinic_upload(client, text)
    assert response.status_code == 400
    assert message in response.content.decode()
