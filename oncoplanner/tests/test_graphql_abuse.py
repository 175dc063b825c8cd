"""GraphQL abuse: introspection, depth, aliases, batching, suggestions, GET queries, GraphiQL.

Every refusal happens in parsing or validation, before any resolver runs: the tests assert
that no resolver was called and that the access log has no row.
"""

# Fixtures are imported from graphql_support (no conftest of our own in this shared
# directory), so pytest's argument injection looks like redefinition to ruff.
# ruff: noqa: F811
from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import override_settings

from audit.models import AccessLog
from oncoplanner.tests.graphql_support import (  # noqa: F401 - fixtures
    URL,
    _access_context,
    as_user,
    gql,
    world,
)
from patients import selectors

pytestmark = pytest.mark.django_db


@pytest.fixture
def resolver_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every call into the gate from a root resolver (patient, patients, labResults)."""
    calls: list[str] = []
    for name in ("patient_get_for_user", "patient_list_visible_to", "lab_results_for"):
        original = getattr(selectors, name)

        def spy(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(selectors, name, spy)
    return calls


def _nested(depth: int, patient_id: int) -> str:
    """A query `depth` levels deep: patient > courses > cycles > course > cycles > ..."""
    levels = ["courses", "cycles", "course", "cycles", "course", "cycles", "course", "cycles"]
    inner = "id"
    for name in reversed(levels[: depth - 1]):
        inner = f"{name} {{ id {inner} }}"
    return f"{{ patient(id: {patient_id}) {{ {inner} }} }}"


def _refused_before_resolvers(body: dict[str, Any], calls: list[str]) -> None:
    assert body.get("data") is None
    assert body["errors"]
    assert calls == []
    assert not AccessLog.objects.filter(surface="graphql").exists()


def test_graphql_abuse_depth_8_is_answered(world, as_user, resolver_calls):
    status, body = gql(as_user(world.clinician), _nested(8, world.p.pk))
    assert status == 200
    assert "errors" not in body, body
    assert resolver_calls[0] == "patient_get_for_user"


def test_graphql_abuse_depth_9_is_refused_before_any_resolver(world, as_user, resolver_calls):
    status, body = gql(as_user(world.clinician), _nested(9, world.p.pk))
    assert "exceeds maximum operation depth of 8" in body["errors"][0]["message"]
    _refused_before_resolvers(body, resolver_calls)


def _aliases(count: int) -> str:
    return "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(count)) + " }"


def test_graphql_abuse_20_aliases_are_answered(world, as_user):
    status, body = gql(as_user(world.clinician), _aliases(20))
    assert status == 200
    assert "errors" not in body
    assert len(body["data"]) == 20


def test_graphql_abuse_21_aliases_are_refused_before_any_resolver(world, as_user, resolver_calls):
    query = "{ " + " ".join(f"p{i}: patients {{ id }}" for i in range(21)) + " }"
    status, body = gql(as_user(world.clinician), query)
    assert "aliases found" in body["errors"][0]["message"]
    _refused_before_resolvers(body, resolver_calls)


def test_graphql_abuse_batch_is_refused_with_400(world, as_user, resolver_calls):
    client = as_user(world.clinician)
    batch = [{"query": "{ patients { id } }"}, {"query": "{ me { id } }"}]
    response = client.post(URL, data=json.dumps(batch), content_type="application/json")
    assert response.status_code == 400
    assert resolver_calls == []
    assert not AccessLog.objects.filter(surface="graphql").exists()


def test_graphql_abuse_introspection_is_off_in_production(world, as_user, resolver_calls):
    status, body = gql(as_user(world.clinician), "{ __schema { types { name } } }")
    assert "introspection" in body["errors"][0]["message"].lower()
    _refused_before_resolvers(body, resolver_calls)


def test_graphql_abuse_type_introspection_is_off_in_production(world, as_user):
    status, body = gql(as_user(world.clinician), '{ __type(name: "Patient") { name } }')
    assert body.get("data") is None
    assert "introspection" in body["errors"][0]["message"].lower()


@override_settings(DEBUG=True)
def test_graphql_abuse_introspection_works_in_development(world, as_user):
    status, body = gql(as_user(world.clinician), '{ __type(name: "Patient") { name } }')
    assert body == {"data": {"__type": {"name": "Patient"}}}


def test_graphql_abuse_no_field_suggestions_in_production(world, as_user):
    status, body = gql(as_user(world.clinician), "{ patiens { id } }")
    message = body["errors"][0]["message"]
    assert "Cannot query field 'patiens'" in message
    assert "Did you mean" not in message
    assert "patients" not in message


def test_graphql_abuse_no_argument_suggestions_in_production(world, as_user):
    status, body = gql(as_user(world.clinician), '{ patients(serch: "a") { id } }')
    assert body["errors"]
    assert all("Did you mean" not in e["message"] for e in body["errors"])


@override_settings(DEBUG=True)
def test_graphql_abuse_field_suggestions_in_development(world, as_user):
    status, body = gql(as_user(world.clinician), "{ patiens { id } }")
    message = body["errors"][0]["message"]
    assert "Did you mean" in message
    assert "'patients'" in message


def test_graphql_abuse_query_over_get_is_refused(world, as_user, resolver_calls):
    client = as_user(world.clinician)
    response = client.get(URL, {"query": "{ patients { id } }"}, HTTP_ACCEPT="application/json")
    assert response.status_code in {400, 405}
    assert resolver_calls == []


def test_graphql_abuse_anonymous_is_sent_to_login(client, world, resolver_calls):
    status, body = gql(client, "{ patients { id } }")
    assert status == 302
    assert resolver_calls == []


def test_graphql_abuse_unexpected_errors_are_masked(world, as_user, monkeypatch):
    def boom(**kwargs: Any) -> Any:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(selectors, "patient_get_for_user", boom)
    status, body = gql(as_user(world.clinician), f"{{ patient(id: {world.p.pk}) {{ id }} }}")
    assert body["errors"][0]["message"] == "Unexpected error."
    assert "hunter2" not in json.dumps(body)


def test_graphql_abuse_graphiql_is_404_in_production(world, as_user):
    response = as_user(world.clinician).get(URL, HTTP_ACCEPT="text/html")
    assert response.status_code == 404


@override_settings(DEBUG=True)
def test_graphql_abuse_graphiql_needs_login_in_development(client, world):
    response = client.get(URL, HTTP_ACCEPT="text/html")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


@override_settings(DEBUG=True)
def test_graphql_abuse_graphiql_assets_are_local_in_development(world, as_user):
    response = as_user(world.clinician).get(URL, HTTP_ACCEPT="text/html")
    html = response.content.decode()
    assert response.status_code == 200
    assert "vendor/graphiql/graphiql.min.js" in html
    assert "vendor/graphiql/react.production.min.js" in html
    assert "https://" not in html  # no CDN
    assert "<script>" not in html  # CSP: no inline script, every script carries the nonce
