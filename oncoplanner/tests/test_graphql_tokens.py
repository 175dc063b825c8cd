"""GraphQL for non-browser clients: personal API tokens, same gate, CSRF still on for cookies."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AccessLog
from oncoplanner.accounts.api_tokens import api_token_create, api_token_revoke

pytestmark = pytest.mark.django_db
QUERY = "query($id: ID!) { patient(id: $id) { mrn } }"


def _token(user):
    return api_token_create(
        user=user, name="phone", expires_at=timezone.now() + dt.timedelta(days=1), created_by=user
    )


def _post(client: Client, patient, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(
        "/graphql/",
        json.dumps({"query": QUERY, "variables": {"id": patient.pk}}),
        content_type="application/json",
        headers=headers,
    )


def test_graphql_with_a_token_reads_a_care_team_patient_and_logs_it(treating_clinician, patient):
    _, raw = _token(treating_clinician)
    response = _post(Client(enforce_csrf_checks=True), patient, raw)
    assert response.status_code == 200
    assert response.json()["data"]["patient"]["mrn"] == patient.mrn
    row = AccessLog.objects.filter(user=treating_clinician, surface="graphql").latest("pk")
    assert row.patient_ids == [patient.pk]


def test_graphql_token_of_an_outsider_sees_nothing(other_clinician, patient):
    _, raw = _token(other_clinician)
    body = _post(Client(enforce_csrf_checks=True), patient, raw).json()
    assert body["data"]["patient"] is None
    assert patient.mrn not in json.dumps(body)


@pytest.mark.parametrize("raw", ["opk_not-a-real-token", "", "Basic abc"])
def test_graphql_bad_or_revoked_token_is_401(treating_clinician, patient, raw):
    response = _post(Client(enforce_csrf_checks=True), patient, raw or "opk_x")
    assert response.status_code == 401
    token, good = _token(treating_clinician)
    api_token_revoke(token=token, by=treating_clinician)
    assert _post(Client(enforce_csrf_checks=True), patient, good).status_code == 401


def test_graphql_cookie_session_still_needs_csrf_even_with_a_token_header(
    treating_clinician, patient
):
    client = Client(enforce_csrf_checks=True)
    client.force_login(treating_clinician)
    _, raw = _token(treating_clinician)
    assert _post(client, patient, raw).status_code == 400  # both credentials: refused
    assert _post(client, patient, None).status_code == 403  # session without CSRF token
