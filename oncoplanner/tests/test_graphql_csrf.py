"""CSRF for cookie sessions: the GraphQL view is not csrf_exempt, so Django's middleware refuses
a POST without the token (a hostile page cannot drive a signed-in clinician's browser)."""

# Fixtures are imported from graphql_support (no conftest of our own in this shared
# directory), so pytest's argument injection looks like redefinition to ruff.
# ruff: noqa: F811
from __future__ import annotations

import json

import pytest
from django.test import Client

from oncoplanner.tests.graphql_support import (  # noqa: F401 - fixtures
    TODAY,
    URL,
    _access_context,
    login,
    world,
)
from treatments.models import ChemoCycle

pytestmark = pytest.mark.django_db

HOLD = """mutation($p: ID!, $c: ID!, $v: String!) {
  holdCycle(patientId: $p, cycleId: $c, reason: "Awaiting echo", seenVersion: $v) { status } }"""


def _post(client: Client, world, **headers: str):
    body = {
        "query": HOLD,
        "variables": {"p": world.p.pk, "c": world.cycle_p.pk, "v": world.cycle_p.version},
    }
    return client.post(URL, data=json.dumps(body), content_type="application/json", **headers)


def test_graphql_csrf_mutation_without_token_is_403(world):
    client = login(Client(enforce_csrf_checks=True), world.clinician)
    response = _post(client, world)
    assert response.status_code == 403
    world.cycle_p.refresh_from_db()
    assert world.cycle_p.status == ChemoCycle.Status.PLANNED


def test_graphql_csrf_query_without_token_is_403(world):
    client = login(Client(enforce_csrf_checks=True), world.clinician)
    response = client.post(
        URL, data=json.dumps({"query": "{ patients { id } }"}), content_type="application/json"
    )
    assert response.status_code == 403


def test_graphql_csrf_mutation_with_token_is_answered(world):
    client = login(Client(enforce_csrf_checks=True), world.clinician)
    client.get("/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = _post(client, world, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    assert response.json() == {"data": {"holdCycle": {"status": "held"}}}


def test_graphql_csrf_view_is_not_exempt():
    from oncoplanner.graphql_schema import graphql_view

    assert not getattr(graphql_view, "csrf_exempt", False)
    assert TODAY  # the world's date is shared with the other GraphQL tests
