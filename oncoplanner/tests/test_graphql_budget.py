"""Query budget: the dashboard query (patient, courses, cycles, administrations, lab results)
runs a fixed number of SQL queries whatever the page size and the number of records."""

# Fixtures are imported from graphql_support (no conftest of our own in this shared
# directory), so pytest's argument injection looks like redefinition to ruff.
# ruff: noqa: F811
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from oncoplanner.tests.graphql_support import (  # noqa: F401 - fixtures
    _access_context,
    add_results,
    as_user,
    gql,
    world,
)

pytestmark = pytest.mark.django_db

DASHBOARD = """query($id: ID!, $first: Int!) {
  patient(id: $id) {
    id familyName
    courses { id status regimen { name }
      cycles { id number status plannedStart administrations { id doseMg drug { name } } }
      doseModifications { id percent } }
    sideEffects { id grade term { term } }
    labResults(first: $first) { id value flag collectedAt test { loinc shortName } }
  }
}"""
# Session and user (2); the gate for the root field (the patient, the log row, the
# break-glass check: 3), whose row the field returns without reading it again; one query per
# nested list (courses with regimen, cycles, administrations with drug, dose modifications,
# side effects with term, lab results with test: 6), each with the gate as a subquery. The
# permission is a subquery of the gate query, and a second click within 30 s does not
# rewrite the session.
DASHBOARD_QUERIES = 11


def _count(client, world, first: int) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as ctx:
        _, body = gql(client, DASHBOARD, {"id": world.p.pk, "first": first})
    assert "errors" not in body, body
    return len(ctx.captured_queries), body


def test_graphql_budget_dashboard_is_fixed_whatever_the_page_size(world, as_user):
    add_results(world.p, 60)
    client = as_user(world.clinician)
    gql(client, "{ me { id } }")  # warm the session, as a second request would be
    small, small_body = _count(client, world, 5)
    large, large_body = _count(client, world, 50)
    assert len(small_body["data"]["patient"]["labResults"]) == 5
    assert len(large_body["data"]["patient"]["labResults"]) == 50
    assert small == large == DASHBOARD_QUERIES


def test_graphql_budget_patient_list_is_fixed_whatever_the_number_of_patients(world, as_user):
    from oncoplanner.tests.graphql_support import _patient

    client = as_user(world.clinician)
    query = "{ patients { id courses { id cycles { id } } sideEffects { id } } }"
    gql(client, "{ me { id } }")
    team = world.p.care_team
    # From two patients: a list of one is logged against that patient alone, a longer one
    # also indexes each patient it showed (one insert, however many).
    _patient(team, family_name="Adams")
    with CaptureQueriesContext(connection) as two:
        gql(client, query)
    for name in ("Baker", "Clark", "Dixon"):
        _patient(team, family_name=name)
    with CaptureQueriesContext(connection) as five:
        _, body = gql(client, query)
    assert len(body["data"]["patients"]) == 5
    assert len(two.captured_queries) == len(five.captured_queries)


def test_graphql_budget_lab_results_of_a_patient_list_cost_one_query(world, as_user):
    """Each patient's own latest page, in one query for the whole list (not one per patient)."""
    from oncoplanner.tests.graphql_support import _patient

    client = as_user(world.clinician)
    query = "query($n: Int!) { patients { id labResults(first: $n) { id value } } }"
    gql(client, "{ me { id } }")
    add_results(world.p, 5)
    expected = {}
    first = _patient(world.p.care_team, family_name="Adams")  # a list of two (see above)
    expected[str(first.pk)] = [str(r.pk) for r in reversed(add_results(first, 4))]
    with CaptureQueriesContext(connection) as two:
        gql(client, query, {"n": 2})
    for name in ("Baker", "Clark", "Dixon"):
        other = _patient(world.p.care_team, family_name=name)
        expected[str(other.pk)] = [str(r.pk) for r in reversed(add_results(other, 4))]
    with CaptureQueriesContext(connection) as five:
        _, body = gql(client, query, {"n": 2})
    assert "errors" not in body, body
    assert len(two.captured_queries) == len(five.captured_queries)
    rows = {row["id"]: row for row in body["data"]["patients"]}
    assert len(rows) == 5
    for patient_id, newest_first in expected.items():
        assert [r["id"] for r in rows[patient_id]["labResults"]] == newest_first[:2]


def test_graphql_lab_results_aliases_with_different_pages_each_get_theirs(world, as_user):
    from oncoplanner.tests.graphql_support import _patient

    other = _patient(world.p.care_team, family_name="Adams")
    newest_first = [str(r.pk) for r in reversed(add_results(other, 4))]
    query = (
        "{ patients { id latest: labResults(first: 2) { id } "
        "older: labResults(first: 1, offset: 2) { id } } }"
    )
    _, body = gql(as_user(world.clinician), query)
    row = next(r for r in body["data"]["patients"] if r["id"] == str(other.pk))
    assert [r["id"] for r in row["latest"]] == newest_first[:2]
    assert [r["id"] for r in row["older"]] == newest_first[2:3]


# Session and user (2); the visible patients' ids (1), the list's log row and its index of
# the patients shown (2), the break-glass check (1); the patients (1); one prefetch per
# labResults alias (2).
ALIASED_LIST_QUERIES = 9


def test_graphql_budget_lab_results_aliases_cost_one_query_each_for_a_list(world, as_user):
    """Two aliases with different pages on a list of four patients: one query per alias for
    the whole list (the optimizer drops such aliases; they used to cost one query per
    patient per alias), and each patient still gets their own pages."""
    from oncoplanner.tests.graphql_support import _patient

    newest_first = {str(world.p.pk): [str(r.pk) for r in reversed(add_results(world.p, 3))]}
    for name in ("Adams", "Baker", "Clark"):
        other = _patient(world.p.care_team, family_name=name)
        newest_first[str(other.pk)] = [str(r.pk) for r in reversed(add_results(other, 4))]
    query = """query($a: Int!) { patients { id
      latest: labResults(first: $a) { id }
      ...Older } }
    fragment Older on Patient { older: labResults(first: 2, offset: 1) { id test { loinc } } }"""
    client = as_user(world.clinician)
    gql(client, "{ me { id } }")  # warm the session, as a second request would be
    with CaptureQueriesContext(connection) as ctx:
        _, body = gql(client, query, {"a": 1})
    assert "errors" not in body, body
    rows = {row["id"]: row for row in body["data"]["patients"]}
    assert set(rows) == set(newest_first)
    for patient_id, ids in newest_first.items():
        assert [r["id"] for r in rows[patient_id]["latest"]] == ids[:1]
        assert [r["id"] for r in rows[patient_id]["older"]] == ids[1:3]
    assert len(ctx.captured_queries) == ALIASED_LIST_QUERIES, [
        q["sql"][:60] + " ... " + q["sql"][-40:] for q in ctx.captured_queries
    ]


def test_graphql_lab_results_aliases_of_a_nested_patient_each_get_theirs(world, as_user):
    newest_first = [str(r.pk) for r in reversed(add_results(world.p, 3))]
    query = """query($id: ID!) { patient(id: $id) { courses { patient {
      latest: labResults(first: 1) { id } older: labResults(first: 1, offset: 1) { id } } } } }"""
    _, body = gql(as_user(world.clinician), query, {"id": world.p.pk})
    assert "errors" not in body, body
    nested = body["data"]["patient"]["courses"][0]["patient"]
    assert [r["id"] for r in nested["latest"]] == newest_first[:1]
    assert [r["id"] for r in nested["older"]] == newest_first[1:2]


def test_graphql_budget_ctcae_terms_with_grades_cost_one_query(world, as_user):
    client = as_user(world.clinician)
    query = "query($first: Int!) { ctcaeTerms(first: $first) { id term grades { grade } } }"
    gql(client, "{ me { id } }")  # warm the session, as a second request would be
    counts = []
    for first in (2, 20):
        with CaptureQueriesContext(connection) as ctx:
            _, body = gql(client, query, {"first": first})
        assert len(body["data"]["ctcaeTerms"]) == first, body
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
