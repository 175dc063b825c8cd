"""Lab trends page, result entry, release and the critical-result inbox."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AccessLog
from labs.models import LabResult, LabTest
from labs.tests.factories import LabResultFactory
from oncoplanner.accounts.tests.factories import sign_in as _login
from patients.models import SymptomReport
from patients.tests.factories import PatientFactory
from treatments.models import CtcaeTerm, SideEffect

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 4, 20, 12, 0, tzinfo=dt.UTC)
ANC, HB, CEA, CREAT, BILI = "751-8", "718-7", "2039-6", "2160-0", "1975-2"
HX = {"HX-Request": "true"}


def _result(patient, loinc=ANC, value="0.3", flag="LL", hours_ago=2, **kwargs) -> LabResult:
    test = LabTest.objects.get(loinc=loinc)
    return LabResultFactory.create(
        patient=patient,
        test=test,
        value=Decimal(value),
        flag=flag,
        collected_at=NOW - dt.timedelta(hours=hours_ago),
        critical_low=test.critical_low,
        **kwargs,
    )


def _chart_data(response) -> dict:
    match = re.search(
        rb'<script id="lab-trend-data" type="application/json">(.*?)</script>',
        response.content,
        re.S,
    )
    assert match, "chart data missing"
    return json.loads(match.group(1))


def _trends(patient, query=""):
    return reverse("labs:lab_trends", args=[patient.pk]) + query


def _new_rows():
    return AccessLog.objects.order_by("pk")


# --- Trends ----------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_lab_trends_shows_default_panel_with_chart_data_and_logs_one_read(
    client, treating_clinician, patient
):
    _result(patient, value="0.3")
    _login(client, treating_clinician)
    before = AccessLog.objects.count()

    response = client.get(_trends(patient))

    assert response.status_code == 200
    data = _chart_data(response)
    assert {a["short_name"] for a in data["analytes"]} == {"ANC", "PLT", "Hb", "WBC"}
    anc = next(a for a in data["analytes"] if a["loinc"] == ANC)
    assert anc["y"] == [0.3]
    assert anc["flag"] == ["LL"]
    assert b"vendor/plotly/plotly.min.js" in response.content
    assert b"labs/lab_chart.js" in response.content
    assert b"<table" in response.content  # the values as a table too (no-JS, screen readers)
    rows = list(_new_rows()[before:])
    assert [(r.action, r.object_type, r.surface, r.patient_id) for r in rows] == [
        ("list", "LabResult", "page", patient.pk)
    ]


def test_lab_trends_hides_patient_from_other_clinician(client, other_clinician, patient):
    _result(patient)
    _login(client, other_clinician)
    response = client.get(_trends(patient))
    assert response.status_code == 404
    assert b"0.3" not in response.content
    assert AccessLog.objects.filter(patient_id=patient.pk, outcome="denied").exists()


def test_lab_trends_missing_patient_is_the_same_404(client, treating_clinician):
    _login(client, treating_clinician)
    assert client.get(reverse("labs:lab_trends", args=[999999])).status_code == 404


@pytest.mark.parametrize(
    "query",
    ["?days=7", "?days=abc", "?analytes=99999-9", f"?analytes={ANC},1-1", "?sort=value"],
)
def test_lab_trends_bad_query_is_400(client, treating_clinician, patient, query):
    _login(client, treating_clinician)
    response = client.get(_trends(patient, query))
    assert response.status_code == 400


@time_machine.travel(NOW, tick=False)
def test_lab_trends_chosen_analytes_and_period_all(client, treating_clinician, patient):
    _result(patient, loinc=CEA, value="12", flag="H", hours_ago=24 * 400)
    _login(client, treating_clinician)

    data = _chart_data(client.get(_trends(patient, f"?analytes={CEA}&days=all")))
    assert [a["loinc"] for a in data["analytes"]] == [CEA]
    assert data["analytes"][0]["y"] == [12.0]
    # The checkboxes' form of the same choice:
    data = _chart_data(client.get(_trends(patient, f"?analytes={CEA}&analytes={HB}&days=30")))
    assert [a["loinc"] for a in data["analytes"]] == [CEA, HB]
    assert data["analytes"][0]["y"] == []


@time_machine.travel(NOW, tick=False)
def test_lab_trends_htmx_returns_the_workspace_and_logs_a_fragment_read(
    client, treating_clinician, patient
):
    _login(client, treating_clinician)
    before = AccessLog.objects.count()
    response = client.get(_trends(patient), headers=HX)
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b'id="lab-workspace"' in response.content
    assert [r.surface for r in _new_rows()[before:]] == ["fragment"]


@time_machine.travel(NOW, tick=False)
def test_lab_trends_query_count_is_flat(client, treating_clinician, patient, admin_user):
    _login(client, treating_clinician)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(_trends(patient)).status_code == 200
        return len(ctx.captured_queries)

    count()
    before = count()
    for hours in range(1, 40):
        _result(patient, value="2.5", flag="N", hours_ago=hours * 20)
        _result(patient, loinc=HB, value="11.2", flag="L", hours_ago=hours * 20)
    assert count() == before
    print(f"lab trends page: {before} queries")  # noqa: T201


# --- Entry -----------------------------------------------------------------------------------

ENTRY = {
    "test": "",
    "value": "0.42",
    "unit": "",
    "collected_on": "2026-04-20",
    "collected_time": "09:15",
}


def _entry(**changes) -> dict:
    test = LabTest.objects.get(loinc=ANC)
    return {**ENTRY, "test": str(test.pk), **changes}


def _create_url(patient):
    return reverse("labs:lab_result_create", args=[patient.pk])


@time_machine.travel(NOW, tick=False)
def test_lab_result_create_records_result_and_redirects(client, treating_clinician, patient):
    _login(client, treating_clinician)
    response = client.post(_create_url(patient), _entry())
    assert response.status_code == 302
    result = LabResult.objects.get(patient=patient)
    assert result.value == Decimal("0.42")
    assert result.unit == "10*3/uL"  # prefilled from the test
    assert result.flag == "LL"
    assert result.recorded_by == treating_clinician
    assert AccessLog.objects.filter(
        action="create", object_type="LabResult", object_id=str(result.pk)
    ).exists()


@time_machine.travel(NOW, tick=False)
def test_lab_result_create_htmx_returns_updated_chart(client, treating_clinician, patient):
    _login(client, treating_clinician)
    response = client.post(_create_url(patient) + "?days=30", _entry(value="1.9"), headers=HX)
    assert response.status_code == 200
    assert b"<html" not in response.content
    anc = next(a for a in _chart_data(response)["analytes"] if a["loinc"] == ANC)
    assert anc["y"] == [1.9]
    assert anc["unit"] == "×10³/µL"  # the axis title, as clinicians write it
    # The form comes back empty for the next result, and says what it saved.
    recorded = 'role="status" id="lab-recorded">Recorded ANC 1.90 ×10³/µL.</p>'
    assert recorded in response.content.decode()
    # The next result of the same sample keeps its collection date and time.
    assert f'value="{ENTRY["collected_on"]}"' in response.content.decode()
    assert f'value="{ENTRY["collected_time"]}' in response.content.decode()  # 09:15(:00)


def test_choosing_the_next_test_keeps_the_samples_collection_time(
    client, treating_clinician, patient
):
    # A reviewer's date and time, kept after a save, vanished when the next test was chosen.
    _login(client, treating_clinician)
    wbc = LabTest.objects.get(loinc="6690-2")
    response = client.get(
        _create_url(patient),
        {"test": wbc.pk, "collected_on": "2026-04-20", "collected_time": "07:45"},
        headers=HX,
    )
    content = response.content.decode()
    assert 'value="2026-04-20"' in content
    assert 'value="07:45' in content


@time_machine.travel(NOW, tick=False)
def test_a_critical_result_is_not_confirmed_like_a_routine_save(
    client, treating_clinician, patient
):
    # A reviewer's Hb of 6 came back as a green "Recorded Hb 6 g/dL.", like any other value.
    _login(client, treating_clinician)
    response = client.post(_create_url(patient) + "?days=30", _entry(value="0.42"), headers=HX)
    content = response.content.decode()
    assert 'role="alert" id="lab-recorded">Critical result recorded: ANC 0.42' in content
    assert "Tell the treating oncologist now" in content
    assert reverse("labs:inbox") in content
    redirected = client.post(_create_url(patient), _entry(value="0.3"), follow=True)
    assert b'class="message error">Critical result recorded: ANC 0.3' in redirected.content


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"value": "NaN"}, "value", b"Enter a number"),
        ({"value": "Infinity"}, "value", b"Enter a number"),
        ({"value": "-1"}, "value", b"greater than or equal to 0"),
        ({"value": "600"}, "value", b"is not a possible"),
        ({"unit": "g/dL"}, "unit", b"is reported in 10*3/uL"),
        ({"collected_on": "2026-02-30"}, "collected_on", b"Enter a valid date"),
        ({"collected_on": "2026-04-22"}, "collected_at", b"cannot be in the future"),
        ({"test": "999999"}, "test", b"Select a valid choice"),
    ],
)
def test_lab_result_create_bad_input_is_400_and_writes_nothing(
    client, treating_clinician, patient, changes, field, message
):
    _login(client, treating_clinician)
    response = client.post(_create_url(patient), _entry(**changes), headers=HX)
    assert response.status_code == 400
    assert message in response.content
    assert not LabResult.objects.exists()


def test_lab_result_create_hides_patient_from_other_clinician(client, other_clinician, patient):
    _login(client, other_clinician)
    response = client.post(_create_url(patient), _entry())
    assert response.status_code == 404
    assert not LabResult.objects.exists()


def test_lab_result_create_get_prefills_unit_of_chosen_test(client, treating_clinician, patient):
    _login(client, treating_clinician)
    hb = LabTest.objects.get(loinc=HB)
    response = client.get(_create_url(patient) + f"?test={hb.pk}", headers=HX)
    assert response.status_code == 200
    assert b'value="g/dL"' in response.content
    assert b"<html" not in response.content


def test_lab_result_create_opened_as_a_page_goes_to_the_lab_page_form(
    client, treating_clinician, patient
):
    _login(client, treating_clinician)
    response = client.get(_create_url(patient) + "?days=90")
    assert response.status_code == 302
    assert response["Location"] == (
        reverse("labs:lab_trends", args=[patient.pk]) + "?days=90#lab-entry"
    )


def test_lab_result_form_offers_the_tests_unit_and_its_exact_equivalents(
    client, treating_clinician, patient
):
    _login(client, treating_clinician)
    hb = LabTest.objects.get(loinc=HB)
    html = client.get(_create_url(patient) + f"?test={hb.pk}", headers=HX).content.decode()
    options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', html)
    assert ("g/dL", "g/dL") in options
    assert ("g/L", "g/L") in options
    anc = LabTest.objects.get(loinc=ANC)
    html = client.get(_create_url(patient) + f"?test={anc.pk}", headers=HX).content.decode()
    options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', html)
    assert ("10*3/uL", "×10³/µL") in options
    assert ("10*9/L", "×10⁹/L") in options


@time_machine.travel(NOW, tick=False)
def test_lab_result_in_g_per_litre_is_recorded_in_g_per_decilitre_and_shown_both_ways(
    client, treating_clinician, patient
):
    _login(client, treating_clinician)
    hb = LabTest.objects.get(loinc=HB)
    response = client.post(
        _create_url(patient) + "?days=30",
        _entry(test=str(hb.pk), value="105", unit="g/L"),
        headers=HX,
    )
    assert response.status_code == 200
    assert "Recorded Hb 10.5 g/dL (reported 105 g/L)." in response.content.decode()
    result = LabResult.objects.get(patient=patient)
    assert (result.value, result.unit, result.reported_unit) == (Decimal("10.5"), "g/dL", "g/L")
    page = client.get(reverse("labs:lab_trends", args=[patient.pk]) + "?days=30").content.decode()
    assert "(reported 105 g/L)" in page


def test_lab_result_form_offers_micromoles_per_litre_only_for_analytes_with_a_factor(
    client, treating_clinician, patient
):
    _login(client, treating_clinician)

    def options(loinc: str) -> list[tuple[str, str]]:
        test = LabTest.objects.get(loinc=loinc)
        html = client.get(_create_url(patient) + f"?test={test.pk}", headers=HX).content.decode()
        return re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', html)

    assert ("umol/L", "µmol/L") in options(CREAT)
    assert ("umol/L", "µmol/L") in options(BILI)
    assert ("umol/L", "µmol/L") not in options(HB)


@time_machine.travel(NOW, tick=False)
def test_lab_result_in_micromoles_is_recorded_in_mg_per_decilitre_shown_and_charted(
    client, treating_clinician, patient
):
    _login(client, treating_clinician)
    creat = LabTest.objects.get(loinc=CREAT)
    response = client.post(
        _create_url(patient) + "?days=30",
        _entry(test=str(creat.pk), value="88", unit="umol/L"),
        headers=HX,
    )
    assert response.status_code == 200
    # At creatinine's precision (1.00, as the 0.98s and 1.13s beside it), not "1".
    assert "Recorded Creat 1.00 mg/dL (reported 88 µmol/L)." in response.content.decode()
    result = LabResult.objects.get(patient=patient)
    assert (result.value, result.unit, result.reported_value, result.reported_unit) == (
        Decimal("1.00"),
        "mg/dL",
        Decimal("88"),
        "umol/L",
    )
    page = client.get(_trends(patient, f"?days=30&analytes={CREAT}"))
    assert "(reported 88 µmol/L)" in page.content.decode()
    (chart,) = _chart_data(page)["analytes"]
    assert (chart["unit"], chart["y"]) == ("mg/dL", [1.0])  # the converted value is plotted


@time_machine.travel(NOW, tick=False)
def test_lab_result_in_a_unit_without_a_factor_is_400_listing_the_units_accepted(
    client, treating_clinician, patient
):
    _login(client, treating_clinician)
    hb = LabTest.objects.get(loinc=HB)
    response = client.post(
        _create_url(patient), _entry(test=str(hb.pk), value="80", unit="umol/L"), headers=HX
    )
    assert response.status_code == 400
    assert "Hemoglobin is reported in g/dL (also accepted: g/L), not “umol/L”." in (
        response.content.decode()
    )
    assert not LabResult.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_lab_trends_table_writes_round_values_without_an_exponent(
    client, treating_clinician, patient
):
    _result(patient, loinc="777-3", value="150", flag="N")  # str(Decimal) of it is 1.5E+2
    _login(client, treating_clinician)
    page = client.get(reverse("labs:lab_trends", args=[patient.pk]) + "?days=30").content.decode()
    assert '<td class="num">150' in page
    assert "E+" not in page


# --- Release ---------------------------------------------------------------------------------


def test_lab_results_release_releases_selected(client, treating_clinician, patient):
    first, second = _result(patient, flag="N", value="3"), _result(patient, flag="N", value="4")
    _login(client, treating_clinician)
    url = reverse("labs:lab_results_release", args=[patient.pk])
    response = client.post(url, {"result": [first.pk]})
    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.is_released
    assert first.released_by == treating_clinician
    assert not second.is_released


def test_lab_results_release_foreign_result_is_404_and_releases_nothing(
    client, treating_clinician, patient
):
    mine = _result(patient, flag="N")
    theirs = _result(PatientFactory.create(), flag="N")
    _login(client, treating_clinician)
    url = reverse("labs:lab_results_release", args=[patient.pk])
    response = client.post(url, {"result": [mine.pk, theirs.pk]})
    assert response.status_code == 404
    assert not LabResult.objects.filter(is_released=True).exists()


def test_lab_results_release_outsider_and_bad_ids(
    client, other_clinician, treating_clinician, patient
):
    result = _result(patient, flag="N")
    url = reverse("labs:lab_results_release", args=[patient.pk])
    _login(client, other_clinician)
    assert client.post(url, {"result": [result.pk]}).status_code == 404
    _login(client, treating_clinician)
    assert client.post(url, {"result": ["x"]}).status_code == 400
    assert client.post(url, {}).status_code == 400
    assert not LabResult.objects.filter(is_released=True).exists()


# --- Inbox -----------------------------------------------------------------------------------


def _side_effect(patient, user, grade=3) -> SideEffect:
    term = CtcaeTerm.objects.filter(max_grade__gte=4).order_by("pk").first()
    return SideEffect.objects.create(
        patient=patient,
        term=term,
        grade=grade,
        ctcae_version=term.version,
        onset=dt.date(2026, 4, 19),
        reported_by=user,
    )


def _symptom(patient, user, severity=4, symptom="Diarrhoea") -> SymptomReport:
    return SymptomReport.objects.create(
        patient=patient, symptom=symptom, severity=severity, reported_by=user
    )


def test_inbox_lists_open_items_of_my_patients_only(client, treating_clinician, patient):
    critical = _result(patient, value="0.3", flag="LL")
    _result(patient, value="1.2", flag="L")  # low, not critical: not in the inbox
    se = _side_effect(patient, treating_clinician, grade=3)
    _side_effect(patient, treating_clinician, grade=2)
    report = _symptom(patient, treating_clinician, severity=4)
    routine = _symptom(patient, treating_clinician, severity=1)
    fever = _symptom(patient, treating_clinician, severity=1, symptom="Fever or chills")
    stranger = PatientFactory.create(family_name="Stranger")
    _result(stranger, value="0.1", flag="LL")
    _login(client, treating_clinician)
    before = AccessLog.objects.count()

    response = client.get(reverse("labs:inbox"))

    assert response.status_code == 200
    content = response.content.decode()
    assert f'id="inbox-lab-{critical.pk}"' in content
    assert f'id="inbox-side_effect-{se.pk}"' in content
    assert f'id="inbox-symptom-{report.pk}"' in content
    assert f'id="inbox-symptom-{fever.pk}"' in content  # a mild fever is a red flag
    # A mild report is listed too, below the urgent queue: this test used to pin the inbox to
    # urgent items only, but the portal promises the patient a review within one working day,
    # and the inbox is where a clinician reviews a report (test_inbox_routine_reports.py).
    assert content.count('class="card inbox-item') == 5
    urgent_part, routine_part = content.split('id="routine-reports"', 1)
    assert urgent_part.count('class="card inbox-item') == 4
    assert f'id="inbox-symptom-{routine.pk}"' in routine_part
    # The wait counts from when the result reached OncoPlanner, which the item says; the
    # collection time is shown beside it (a late entry makes the two differ).
    lab_item = content.split(f'id="inbox-lab-{critical.pk}"', 1)[1].split("</li>", 1)[0]
    assert "Collected 20 Apr 2026 11:00 · recorded" in re.sub(r"\s+", " ", lab_item)
    assert "since it reached OncoPlanner" in lab_item
    assert "Stranger" not in content
    assert 'hx-trigger="sse:change, every 60s"' in content  # live, with a poll as fallback
    assert 'sse-connect="/stream/changes/"' in content
    assert '"X-OncoPlanner-Background": "1"' in content
    rows = list(_new_rows()[before:])
    assert [(r.action, r.surface, r.patient_ids) for r in rows] == [("list", "page", [patient.pk])]


def test_inbox_htmx_refresh_returns_the_list_only(client, treating_clinician, patient):
    _result(patient)
    _login(client, treating_clinician)
    response = client.get(reverse("labs:inbox"), headers={**HX, "X-OncoPlanner-Background": "1"})
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b'id="inbox-list"' in response.content


def test_inbox_is_empty_for_other_clinician(client, other_clinician, patient):
    _result(patient)
    _login(client, other_clinician)
    response = client.get(reverse("labs:inbox"))
    assert response.status_code == 200
    assert b"Nothing waiting" in response.content


def test_inbox_query_count_is_flat(client, treating_clinician, patient, care_team):
    _login(client, treating_clinician)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("labs:inbox")).status_code == 200
        return len(ctx.captured_queries)

    _result(patient)
    count()
    before = count()
    for _ in range(6):
        result = _result(patient)
        _side_effect(patient, treating_clinician, grade=4)
        _symptom(patient, treating_clinician)
        result.acknowledged_by = treating_clinician
        result.acknowledged_at = dt.datetime.now(tz=dt.UTC)
        result.acknowledgement_note = "Called"
        result.save()
    assert count() == before
    print(f"inbox page: {before} queries")  # noqa: T201


def _ack_url(name, patient_id, item_id):
    return reverse(f"labs:{name}", args=[patient_id, item_id])


@time_machine.travel(NOW, tick=False)
def test_lab_result_acknowledge_swaps_item_out_and_shows_time_to_acknowledge(
    client, treating_clinician, patient
):
    result = _result(patient)
    LabResult.objects.filter(pk=result.pk).update(created_at=NOW - dt.timedelta(minutes=95))
    _login(client, treating_clinician)
    response = client.post(
        _ack_url("lab_result_acknowledge", patient.pk, result.pk),
        {"note": "Patient called, afebrile; G-CSF started."},
        headers=HX,
    )
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert f'id="inbox-lab-{result.pk}"'.encode() in response.content
    assert b"1 h 35 min" in response.content
    result.refresh_from_db()
    assert result.acknowledged_by == treating_clinician
    assert result.acknowledgement_note == "Patient called, afebrile; G-CSF started."
    assert AccessLog.objects.filter(
        action="update", object_type="LabResult", object_id=str(result.pk)
    ).exists()

    page = client.get(reverse("labs:inbox")).content.decode()
    assert "Recently acknowledged" in page
    assert "1 h 35 min" in page
    assert f'id="inbox-lab-{result.pk}"' not in page


def test_lab_result_acknowledge_without_js_redirects(client, treating_clinician, patient):
    result = _result(patient)
    _login(client, treating_clinician)
    response = client.post(
        _ack_url("lab_result_acknowledge", patient.pk, result.pk), {"note": "Called"}
    )
    assert response.status_code == 302
    assert response.url == reverse("labs:inbox")


@pytest.mark.parametrize("headers", [HX, {}])
def test_lab_result_acknowledge_empty_note_is_400_and_writes_nothing(
    client, treating_clinician, patient, headers
):
    result = _result(patient)
    _login(client, treating_clinician)
    response = client.post(
        _ack_url("lab_result_acknowledge", patient.pk, result.pk), {"note": "  "}, headers=headers
    )
    assert response.status_code == 400
    assert b"This field is required" in response.content or b"Say what was done" in response.content
    result.refresh_from_db()
    assert result.acknowledged_at is None


def test_lab_result_acknowledge_non_critical_is_400(client, treating_clinician, patient):
    result = _result(patient, value="3.0", flag="N")
    _login(client, treating_clinician)
    response = client.post(
        _ack_url("lab_result_acknowledge", patient.pk, result.pk), {"note": "ok"}, headers=HX
    )
    assert response.status_code == 400
    assert b"Only critical" in response.content


def test_lab_result_acknowledge_foreign_ids_are_404_and_write_nothing(
    client, treating_clinician, other_clinician, patient
):
    stranger = PatientFactory.create()
    theirs = _result(stranger)
    mine = _result(patient)
    _login(client, treating_clinician)
    # A result of another patient, under my patient's id and under its own.
    for patient_id, result_id in ((patient.pk, theirs.pk), (stranger.pk, theirs.pk)):
        response = client.post(
            _ack_url("lab_result_acknowledge", patient_id, result_id), {"note": "x"}, headers=HX
        )
        assert response.status_code == 404
    _login(client, other_clinician)
    response = client.post(_ack_url("lab_result_acknowledge", patient.pk, mine.pk), {"note": "x"})
    assert response.status_code == 404
    assert not LabResult.objects.filter(acknowledged_at__isnull=False).exists()


def test_side_effect_acknowledge_and_outsider(client, treating_clinician, other_clinician, patient):
    se = _side_effect(patient, treating_clinician, grade=3)
    url = _ack_url("side_effect_acknowledge", patient.pk, se.pk)
    _login(client, other_clinician)
    assert client.post(url, {"note": "Seen"}, headers=HX).status_code == 404
    se.refresh_from_db()
    assert se.acknowledged_at is None
    _login(client, treating_clinician)
    response = client.post(url, {"note": "Loperamide, review tomorrow"}, headers=HX)
    assert response.status_code == 200
    se.refresh_from_db()
    assert se.acknowledged_by == treating_clinician


def test_symptom_report_review_and_outsider(client, treating_clinician, other_clinician, patient):
    report = _symptom(patient, treating_clinician)
    url = _ack_url("symptom_report_review", patient.pk, report.pk)
    _login(client, other_clinician)
    assert client.post(url, {"note": "Seen"}, headers=HX).status_code == 404
    _login(client, treating_clinician)
    response = client.post(url, {"note": "Phoned; clinic visit today"}, headers=HX)
    assert response.status_code == 200
    report.refresh_from_db()
    assert report.reviewed_by == treating_clinician
    assert report.review_note == "Phoned; clinic visit today"


def _table_rows(page: str, dom_id: str) -> list[str]:
    """The values table of one analyte's card, one whitespace-collapsed string per row."""
    section = page.split(f'aria-labelledby="{dom_id}-title"', 1)[1].split("</section>", 1)[0]
    body = section.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr.*?</tr>", body, re.S)
    return [re.sub(r"\s+", " ", re.sub(r">\s+<", "><", row)).strip() for row in rows]


@time_machine.travel(NOW, tick=False)
def test_lab_trends_values_table_shows_each_result_newest_first(
    client, treating_clinician, patient
):
    """What a clinician reads in the table: time (clinic time), value with the unit it was
    reported in, the flag, the reference range that applied, and whether the portal has it.
    Values at the test's precision (ANC two decimals, CEA one), so a column lines up."""
    old = _result(patient, value="1.8", flag="N", hours_ago=24 * 9, is_released=True)
    low = _result(patient, value="0.3", flag="LL", hours_ago=24 * 3)
    LabResult.objects.filter(pk=low.pk).update(reported_value=Decimal("300"), reported_unit="/uL")
    new = _result(patient, value="1.2", flag="L", hours_ago=2)
    _result(patient, loinc=CEA, value="10", flag="H", hours_ago=24 * 8)
    _result(patient, loinc=CEA, value="5", flag="N", hours_ago=24 * 4)
    _result(patient, loinc=CEA, value="6", flag="H", hours_ago=24)
    _login(client, treating_clinician)
    page = client.get(_trends(patient, f"?days=30&analytes={ANC},{CEA}")).content.decode()

    def correct(result: LabResult, when: str) -> str:
        url = (
            reverse("labs:lab_result_entered_in_error", args=[patient.pk, result.pk])
            + f"?days=30&amp;analytes={ANC},{CEA}"
        )
        return (
            f'<td><a class="correct" href="{url}" hx-get="{url}" hx-target="closest tr"'
            f' hx-swap="afterend" aria-label="Mark ANC {result.value:.2f} of {when}'
            ' entered in error">entered in error…</a></td>'
        )

    assert _table_rows(page, "trend-751_8") == [
        '<tr><td>20 Apr 2026 11:00</td><td class="num">1.20</td>'
        '<td><span class="badge warn">L</span></td><td class="muted">1.80–7.80</td>'
        '<td><label class="inline"><input type="checkbox" name="result" form="release-form"'
        f' value="{new.pk}"> release</label></td>{correct(new, "20 Apr 2026 11:00")}</tr>',
        '<tr class="critical"><td>17 Apr 2026 13:00</td><td class="num">0.30 '
        '<span class="muted small">(reported 300 /µL)</span></td>'
        '<td><span class="badge bad">LL</span></td><td class="muted">1.80–7.80</td>'
        '<td><label class="inline"><input type="checkbox" name="result" form="release-form"'
        f' value="{low.pk}"> release</label></td>{correct(low, "17 Apr 2026 13:00")}</tr>',
        '<tr><td>11 Apr 2026 13:00</td><td class="num">1.80</td>'
        '<td><span class="muted">N</span></td><td class="muted">1.80–7.80</td>'
        f'<td><span class="muted">released</span></td>{correct(old, "11 Apr 2026 13:00")}</tr>',
    ]
    assert old.is_released
    cea = _table_rows(page, "trend-2039_6")
    # A tumour marker adds its change from the first value and from the lowest so far.
    assert [re.findall(r'<td class="num">([^<]*)</td>', row) for row in cea] == [
        ["6.0", "-40.0 %", "20.0 %"],
        ["5.0", "-50.0 %", "0.0 %"],
        ["10.0", "0.0 %", "0.0 %"],
    ]
