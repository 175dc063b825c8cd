"""Entered in error: a wrong result is kept on record, marked who/when/why, and counts nowhere."""

# Fixtures are imported from graphql_support, so pytest's injection looks like redefinition.
# ruff: noqa: F811
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessLog
from labs import selectors, services
from labs.models import LabResult, LabTest, PreCycleAction
from labs.tests.factories import LabResultFactory, PreCycleRuleFactory, RegimenFactory
from oncoplanner.accounts.api_tokens import api_token_create
from oncoplanner.accounts.tests.factories import UserFactory
from oncoplanner.accounts.tests.factories import sign_in as _login
from oncoplanner.tests.graphql_support import (  # noqa: F401 - fixtures
    _access_context,
    as_user,
    gql,
    world,
)
from patients import selectors as gate
from patients.dashboard import dashboard_for, patient_list_page
from patients.fhir import patient_fhir_bundle

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 4, 20, 12, 0, tzinfo=dt.UTC)
PLT, ANC = "777-3", "751-8"
HX = {"HX-Request": "true"}
REASON = "Typo: platelets 50 entered as 5000"


def _result(patient, loinc=PLT, value="62", flag="L", hours_ago=2, **kwargs) -> LabResult:
    test = LabTest.objects.get(loinc=loinc)
    return LabResultFactory.create(
        patient=patient,
        test=test,
        value=Decimal(value),
        flag=flag,
        collected_at=NOW - dt.timedelta(hours=hours_ago),
        **kwargs,
    )


def _url(result, query=""):
    return reverse("labs:lab_result_entered_in_error", args=[result.patient_id, result.pk]) + query


# --- Service ---------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_mark_entered_in_error_keeps_the_row_with_who_when_why_and_logs_a_write(
    patient, treating_clinician
):
    result = _result(patient, value="5000", flag="HH")
    services.lab_result_mark_entered_in_error(result=result, by=treating_clinician, reason=REASON)
    stored = LabResult.all_objects.get(pk=result.pk)
    assert stored.entered_in_error_at == NOW
    assert stored.entered_in_error_by == treating_clinician
    assert stored.entered_in_error_reason == REASON
    assert stored.value == Decimal("5000")  # the record as it was entered
    assert not LabResult.objects.filter(pk=result.pk).exists()
    assert not patient.lab_results.filter(pk=result.pk).exists()  # related managers too
    assert AccessLog.objects.filter(
        action=AccessLog.Action.UPDATE, object_id=str(result.pk)
    ).exists()


@pytest.mark.parametrize("reason", ["", "   ", "typo", "wrong value", "bad\x00 nul here"])
def test_mark_entered_in_error_needs_a_reason_of_a_few_words(patient, treating_clinician, reason):
    result = _result(patient)
    with pytest.raises(ValidationError) as caught:
        services.lab_result_mark_entered_in_error(
            result=result, by=treating_clinician, reason=reason
        )
    assert "reason" in caught.value.message_dict
    assert LabResult.objects.filter(pk=result.pk).exists()


def test_mark_entered_in_error_twice_is_refused(patient, treating_clinician):
    result = _result(patient)
    services.lab_result_mark_entered_in_error(result=result, by=treating_clinician, reason=REASON)
    with pytest.raises(ValidationError) as caught:
        services.lab_result_mark_entered_in_error(
            result=result, by=treating_clinician, reason=REASON
        )
    assert "result" in caught.value.message_dict


def test_mark_entered_in_error_works_on_a_value_the_catalogue_now_refuses(
    patient, treating_clinician
):
    # The typo being corrected may be beyond today's max_plausible: it must still be markable.
    result = _result(patient, value="5000")
    LabTest.objects.filter(pk=result.test_id).update(max_plausible=Decimal("2000"))
    result.refresh_from_db()
    services.lab_result_mark_entered_in_error(result=result, by=treating_clinician, reason=REASON)
    assert LabResult.all_objects.get(pk=result.pk).entered_in_error_at is not None


# --- Every door leaves it out ------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_readiness_goes_back_to_hold_once_the_typo_is_marked(patient, treating_clinician):
    """The reported case: PLT 62 (Hold), then 5000 typed two hours later (Treat)."""
    test = LabTest.objects.get(loinc=PLT)
    regimen = RegimenFactory.create()
    PreCycleRuleFactory.create(
        regimen=regimen, test=test, comparator=">=", value=Decimal("100"), priority=1
    )
    PreCycleRuleFactory.create(
        regimen=regimen,
        test=test,
        comparator="<",
        value=Decimal("100"),
        action=PreCycleAction.HOLD,
        priority=2,
    )
    _result(patient, value="62", hours_ago=4)
    typo = _result(patient, value="5000", flag="HH", hours_ago=2)
    assert services.precycle_evaluate(patient=patient, regimen=regimen, at=NOW).outcome == "treat"
    services.lab_result_mark_entered_in_error(result=typo, by=treating_clinician, reason=REASON)
    assessment = services.precycle_evaluate(patient=patient, regimen=regimen, at=NOW)
    assert assessment.outcome == "hold"
    assert assessment.analytes[0].result.value == Decimal("62")


@time_machine.travel(NOW, tick=False)
def test_inbox_patient_list_and_dashboard_drop_a_critical_result_entered_in_error(
    patient, treating_clinician
):
    critical = _result(patient, loinc=ANC, value="0.0003", flag="LL")
    assert [i.obj.pk for i in selectors.inbox_for(user=treating_clinician).open] == [critical.pk]
    assert selectors.inbox_open_count(user=treating_clinician) == 1
    attention = patient_list_page(user=treating_clinician, filter="attention")
    assert [r.attention for r in attention.rows] == [["Critical result"]]
    assert dashboard_for(user=treating_clinician, patient_id=patient.pk).critical_results == [
        critical
    ]
    services.lab_result_mark_entered_in_error(
        result=critical, by=treating_clinician, reason="Unit: 0.3 was typed as per microlitre"
    )
    assert selectors.inbox_for(user=treating_clinician).open == []
    assert selectors.inbox_open_count(user=treating_clinician) == 0
    assert patient_list_page(user=treating_clinician, filter="attention").rows == []
    assert dashboard_for(user=treating_clinician, patient_id=patient.pk).critical_results == []


@time_machine.travel(NOW, tick=False)
def test_trends_chart_leaves_it_out_and_lists_it_struck_through(
    client, patient, treating_clinician
):
    _result(patient, value="62", hours_ago=4)
    typo = _result(patient, value="5000", hours_ago=2)
    services.lab_result_mark_entered_in_error(result=typo, by=treating_clinician, reason=REASON)
    trends = selectors.lab_trends_for(
        user=treating_clinician, patient_id=patient.pk, tests=[typo.test], period="30"
    )
    assert [p.result.value for p in trends.analytes[0].points] == [Decimal("62")]
    assert [r.pk for r in trends.analytes[0].entered_in_error] == [typo.pk]
    _login(client, treating_clinician)
    page = client.get(reverse("labs:lab_trends", args=[patient.pk]) + f"?analytes={PLT}")
    html = page.content.decode()
    assert "Entered in error (1)" in html
    assert re.search(r"<s>[^<]*5000 ×10³/µL</s>", html)
    assert REASON in html


def test_rest_list_and_detail_leave_it_out(patient, treating_clinician):
    kept, typo = _result(patient, hours_ago=4), _result(patient, value="5000")
    services.lab_result_mark_entered_in_error(result=typo, by=treating_clinician, reason=REASON)
    client = _token_client(treating_clinician)
    listed = client.get(f"/api/v1/patients/{patient.pk}/lab-results").json()
    assert [r["id"] for r in listed["items"]] == [kept.pk]
    assert listed["count"] == 1
    detail = client.get(f"/api/v1/patients/{patient.pk}/lab-results/{typo.pk}")
    assert detail.status_code == 404


def test_portal_drops_a_released_result_entered_in_error(client, patient, treating_clinician):
    user = UserFactory.create()
    patient.portal_user = user
    patient.save()
    kept = _result(patient, hours_ago=4, is_released=True)
    typo = _result(patient, value="5000", is_released=True)
    assert set(gate.portal_lab_results_for(user=user)) == {kept, typo}
    services.lab_result_mark_entered_in_error(result=typo, by=treating_clinician, reason=REASON)
    assert list(gate.portal_lab_results_for(user=user)) == [kept]
    client.force_login(user)
    page = client.get(reverse("portal:lab_results"))
    assert page.status_code == 200
    assert "5000" not in page.content.decode()
    api = client.get("/api/v1/me/lab-results").json()
    assert [r["id"] for r in api["items"]] == [kept.pk]


def test_graphql_lists_leave_it_out(world, as_user):
    services.lab_result_mark_entered_in_error(
        result=world.result_p, by=world.clinician, reason=REASON
    )
    client = as_user(world.clinician)
    _, root = gql(client, "query($p: ID!) { labResults(patientId: $p) { id } }", {"p": world.p.pk})
    assert root["data"]["labResults"] == []
    nested = "query($id: ID!) { patient(id: $id) { labResults(first: 10) { id } } }"
    _, body = gql(client, nested, {"id": world.p.pk})
    assert body["data"]["patient"]["labResults"] == []


def test_fhir_export_marks_it_entered_in_error(patient, treating_clinician):
    # Exported with FHIR's own status, not left out: export ids are stable, and a system that
    # imported an earlier bundle keeps the typo as final unless it is told (a reviewer's find).
    kept, typo = _result(patient, hours_ago=4), _result(patient, value="5000")
    services.lab_result_mark_entered_in_error(result=typo, by=treating_clinician, reason=REASON)
    bundle = patient_fhir_bundle(user=treating_clinician, patient_id=patient.pk)
    statuses = {
        Decimal(str(e["resource"]["valueQuantity"]["value"])): e["resource"]["status"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and e["resource"]["category"][0]["coding"][0]["code"] == "laboratory"
    }
    assert statuses == {kept.value: "final", Decimal("5000"): "entered-in-error"}


# --- Page ------------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_correct_form_opens_under_the_row_with_htmx_and_as_a_page_without(
    client, patient, treating_clinician
):
    typo = _result(patient, value="5000")
    _login(client, treating_clinician)
    row = client.get(_url(typo, f"?days=30&analytes={PLT}"), headers=HX)
    assert row.status_code == 200
    body = row.content.decode()
    assert body.strip().startswith(f'<tr class="correct-row" id="correct-row-{typo.pk}">')
    assert 'hx-target="#lab-workspace"' in body
    page = client.get(_url(typo))
    assert b"<html" in page.content
    assert b"Mark a result entered in error" in page.content
    assert b"hx-post" not in page.content  # the page posts a plain form


@time_machine.travel(NOW, tick=False)
def test_correct_htmx_post_returns_the_workspace_with_the_result_struck_through(
    client, patient, treating_clinician
):
    typo = _result(patient, value="5000")
    _login(client, treating_clinician)
    response = client.post(_url(typo, f"?days=30&analytes={PLT}"), {"reason": REASON}, headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert 'id="lab-workspace"' in html
    assert "entered in error; it no longer counts" in html
    assert "Entered in error (1)" in html
    assert LabResult.all_objects.get(pk=typo.pk).entered_in_error_by == treating_clinician


def test_correct_without_js_redirects_to_the_lab_page(client, patient, treating_clinician):
    typo = _result(patient, value="5000")
    _login(client, treating_clinician)
    response = client.post(_url(typo, f"?days=90&analytes={PLT}"), {"reason": REASON})
    assert response.status_code == 302
    assert response["Location"] == (
        reverse("labs:lab_trends", args=[patient.pk]) + f"?days=90&analytes={PLT}"
    )
    assert not LabResult.objects.filter(pk=typo.pk).exists()


@pytest.mark.parametrize("headers", [{}, HX])
@pytest.mark.parametrize("reason", ["", "typo"])
def test_correct_bad_reason_is_400_naming_the_field_and_writes_nothing(
    client, patient, treating_clinician, headers, reason
):
    typo = _result(patient, value="5000")
    _login(client, treating_clinician)
    before = AccessLog.objects.filter(action=AccessLog.Action.UPDATE).count()
    response = client.post(_url(typo), {"reason": reason}, headers=headers)
    assert response.status_code == 400
    html = response.content.decode()
    assert f'id="reason-{typo.pk}-error"' in html
    assert 'aria-invalid="true"' in html
    if headers:
        assert response["HX-Retarget"] == f"#correct-row-{typo.pk}"
        assert response["HX-Reswap"] == "outerHTML"
    assert LabResult.objects.filter(pk=typo.pk).exists()
    assert AccessLog.objects.filter(action=AccessLog.Action.UPDATE).count() == before


@pytest.mark.parametrize("method", ["get", "post"])
def test_correct_is_404_for_an_outsider_and_changes_nothing(
    client, patient, other_clinician, method
):
    typo = _result(patient, value="5000")
    _login(client, other_clinician)
    response = getattr(client, method)(_url(typo), {"reason": REASON})
    assert response.status_code == 404
    assert LabResult.objects.filter(pk=typo.pk).exists()


def test_correct_result_of_another_patient_under_mine_is_404(client, patient, treating_clinician):
    other = _result(LabResultFactory.create().patient, value="5000")
    _login(client, treating_clinician)
    url = reverse("labs:lab_result_entered_in_error", args=[patient.pk, other.pk])
    assert client.post(url, {"reason": REASON}).status_code == 404
    assert LabResult.objects.filter(pk=other.pk).exists()


# --- REST ------------------------------------------------------------------------------------


def _token_client(user) -> Client:
    _, raw = api_token_create(
        user=user, name="test", expires_at=timezone.now() + dt.timedelta(days=7), created_by=user
    )
    return Client(headers={"Authorization": f"Bearer {raw}"})


def _rest_url(result):
    return f"/api/v1/patients/{result.patient_id}/lab-results/{result.pk}/entered-in-error"


def test_rest_mark_entered_in_error(patient, treating_clinician):
    typo = _result(patient, value="5000")
    response = _token_client(treating_clinician).post(
        _rest_url(typo), {"reason": REASON}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["entered_in_error_reason"] == REASON
    assert response.json()["entered_in_error_at"] is not None
    assert not LabResult.objects.filter(pk=typo.pk).exists()


@pytest.mark.parametrize("reason", ["", "typo"])
def test_rest_mark_bad_reason_is_400_naming_the_field(patient, treating_clinician, reason):
    typo = _result(patient, value="5000")
    response = _token_client(treating_clinician).post(
        _rest_url(typo), {"reason": reason}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["body", "reason"]
    assert LabResult.objects.filter(pk=typo.pk).exists()


def test_rest_mark_is_404_for_an_outsider(patient, other_clinician):
    typo = _result(patient, value="5000")
    response = _token_client(other_clinician).post(
        _rest_url(typo), {"reason": REASON}, content_type="application/json"
    )
    assert response.status_code == 404
    assert LabResult.objects.filter(pk=typo.pk).exists()
