"""GraphQL and the access gate: every type, root fields and nested paths (issue 5 item 3)."""

# Fixtures are imported from graphql_support (no conftest of our own in this shared
# directory), so pytest's argument injection looks like redefinition to ruff.
# ruff: noqa: F811
from __future__ import annotations

import pytest

from audit.models import AccessLog
from oncoplanner.tests.graphql_support import (  # noqa: F401 - fixtures
    _access_context,
    add_results,
    as_user,
    gql,
    world,
)
from patients import selectors
from patients.models import Patient
from treatments.models import CtcaeTerm, SideEffect

pytestmark = pytest.mark.django_db

CHART = """
query($id: ID!) {
  patient(id: $id) {
    id familyName
    courses { id status regimen { name phases { name drugs { drug { name } } } }
      cycles { id number status administrations { id } } doseModifications { id } }
    sideEffects { id grade term { term } }
    labResults(first: 10) { id value flag test { loinc } }
  }
}
"""


def test_graphql_gate_my_patient_with_nested_courses_and_results(world, as_user):
    status, body = gql(as_user(world.clinician), CHART, {"id": world.p.pk})
    assert status == 200, body
    assert "errors" not in body
    chart = body["data"]["patient"]
    assert chart["familyName"] == "Pearson"
    assert [c["id"] for c in chart["courses"]] == [str(world.course_p.pk)]
    assert len(chart["courses"][0]["cycles"]) == 3
    assert [r["id"] for r in chart["labResults"]] == [str(world.result_p.pk)]


def _errors(body):
    return [e["message"] for e in body.get("errors", [])]


def test_graphql_gate_other_patient_is_null_with_not_found(world, as_user):
    status, body = gql(as_user(world.clinician), CHART, {"id": world.q.pk})
    assert body["data"] == {"patient": None}
    assert _errors(body) == ["not found"]
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_graphql_gate_missing_and_forbidden_ids_read_the_same(world, as_user):
    client = as_user(world.clinician)
    _, forbidden = gql(client, CHART, {"id": world.q.pk})
    _, missing = gql(client, CHART, {"id": 999999})
    _, garbage = gql(client, CHART, {"id": "abc"})
    for body in (forbidden, missing, garbage):
        assert body["data"] == {"patient": None}
        assert _errors(body) == ["not found"]


def test_graphql_gate_denied_read_is_logged_with_surface_graphql(world, as_user):
    gql(as_user(world.clinician), CHART, {"id": world.q.pk})
    row = AccessLog.objects.get(outcome="denied")
    assert row.surface == "graphql"
    assert row.patient_id == world.q.pk


def test_graphql_gate_patients_lists_only_care_team_patients(world, as_user):
    _, body = gql(as_user(world.clinician), "{ patients { id familyName } }")
    assert body["data"]["patients"] == [{"id": str(world.p.pk), "familyName": "Pearson"}]


def test_graphql_gate_outsider_sees_no_patients(world, as_user):
    _, body = gql(as_user(world.outsider), "{ patients { id } }")
    assert body["data"]["patients"] == []
    assert not AccessLog.objects.filter(action="list").exists()


def test_graphql_gate_patients_search_and_page(world, as_user):
    client = as_user(world.clinician)
    _, found = gql(client, '{ patients(search: "pear") { id } }')
    _, none = gql(client, '{ patients(search: "quinn") { id } }')
    _, paged = gql(client, "{ patients(first: 1, offset: 1) { id } }")
    assert found["data"]["patients"] == [{"id": str(world.p.pk)}]
    assert none["data"]["patients"] == []
    assert paged["data"]["patients"] == []


def test_graphql_gate_lab_results_of_another_patient_are_not_found(world, as_user):
    query = "query($p: ID!) { labResults(patientId: $p) { id } }"
    _, body = gql(as_user(world.clinician), query, {"p": world.q.pk})
    assert body["data"] is None
    assert _errors(body) == ["not found"]


def test_graphql_gate_lab_results_filters(world, as_user):
    query = """query($p: ID!, $loinc: String, $from: DateTime, $to: DateTime) {
      labResults(patientId: $p, loinc: $loinc, from: $from, to: $to) { id } }"""
    client = as_user(world.clinician)
    p = world.p.pk
    _, all_ = gql(client, query, {"p": p})
    _, other_test = gql(client, query, {"p": p, "loinc": "2160-0"})
    _, after = gql(client, query, {"p": p, "from": "2026-02-01T00:00:00+00:00"})
    _, before = gql(client, query, {"p": p, "to": "2026-02-01T00:00:00+00:00"})
    assert all_["data"]["labResults"] == [{"id": str(world.result_p.pk)}]
    assert other_test["data"]["labResults"] == []
    assert after["data"]["labResults"] == []
    assert before["data"]["labResults"] == [{"id": str(world.result_p.pk)}]


def test_graphql_gate_nested_foreign_key_to_another_patient_is_null(world, as_user):
    # A (corrupt) link from my patient's side effect to another patient's cycle: the nested
    # path from an allowed record to a forbidden one yields nothing.
    SideEffect.objects.create(
        patient=world.p,
        cycle=world.cycle_q,
        term=world.term,
        grade=1,
        ctcae_version="5.0",
        onset=world.cycle_q.planned_start,
        reported_by=world.clinician,
    )
    query = "query($id: ID!) { patient(id: $id) { sideEffects { grade cycle { id } } } }"
    _, body = gql(as_user(world.clinician), query, {"id": world.p.pk})
    assert body["data"]["patient"]["sideEffects"] == [{"grade": 1, "cycle": None}]


def test_graphql_gate_nested_lists_hold_only_the_patients_rows(world, as_user):
    query = """query($id: ID!) { patient(id: $id) {
      courses { id patient { id } cycles { id course { id } } } sideEffects { id } } }"""
    _, body = gql(as_user(world.clinician), query, {"id": world.p.pk})
    courses = body["data"]["patient"]["courses"]
    assert [c["id"] for c in courses] == [str(world.course_p.pk)]
    assert courses[0]["patient"] == {"id": str(world.p.pk)}
    assert {c["course"]["id"] for c in courses[0]["cycles"]} == {str(world.course_p.pk)}
    assert body["data"]["patient"]["sideEffects"] == []  # Q's grade 3 is not here


@pytest.mark.parametrize(
    "type_name",
    ["Course", "ChemoCycle", "Administration", "DoseModification", "SideEffect", "LabResult"],
)
def test_graphql_gate_every_phi_type_filters_through_the_gate(world, type_name, rf):
    from labs.graphql import LabResultType
    from patients.graphql import PatientType
    from treatments import graphql as t

    types = {
        "Patient": PatientType,
        "Course": t.CourseType,
        "ChemoCycle": t.ChemoCycleType,
        "Administration": t.AdministrationType,
        "DoseModification": t.DoseModificationType,
        "SideEffect": t.SideEffectType,
        "LabResult": LabResultType,
    }
    gql_type = types[type_name]
    model = gql_type.__strawberry_django_definition__.model

    class _Info:
        def __init__(self, user):
            request = rf.get("/graphql/")
            request.user = user
            self.context = type("Ctx", (), {"request": request})()

    path = selectors.patient_path(model)
    field = f"{path}__pk" if path else "pk"
    for user, expected_patient in ((world.clinician, world.p), (world.q_clinician, world.q)):
        rows = gql_type.get_queryset(model.objects.all(), _Info(user))
        assert set(rows.values_list(field, flat=True)) <= {expected_patient.pk}
    assert not gql_type.get_queryset(model.objects.all(), _Info(world.outsider)).exists()


def test_graphql_gate_patient_type_filters_through_the_gate(world, rf):
    from patients.graphql import PatientType

    request = rf.get("/graphql/")
    request.user = world.clinician
    context = type("Ctx", (), {"request": request})()
    info = type("Info", (), {"context": context, "selected_fields": []})()
    rows = PatientType.get_queryset(Patient.objects.all(), info)
    assert list(rows) == [world.p]


def test_graphql_gate_list_read_is_logged_once_with_surface_graphql(world, as_user):
    gql(as_user(world.clinician), "{ patients { id courses { id } labResults { id } } }")
    rows = AccessLog.objects.filter(surface="graphql")
    assert [(r.action, r.patient_id, r.outcome) for r in rows] == [("list", world.p.pk, "success")]


def test_graphql_gate_patient_read_is_logged_with_surface_graphql(world, as_user):
    gql(as_user(world.clinician), CHART, {"id": world.p.pk})
    row = AccessLog.objects.get(surface="graphql")
    assert (row.action, row.patient_id, row.object_type) == ("read", world.p.pk, "Patient")


def test_graphql_gate_lab_results_read_is_logged(world, as_user):
    query = "query($p: ID!) { labResults(patientId: $p) { id } }"
    gql(as_user(world.clinician), query, {"p": world.p.pk})
    row = AccessLog.objects.get(surface="graphql")
    assert (row.action, row.patient_id) == ("list", world.p.pk)


# --- portal users -----------------------------------------------------------------------------


def test_graphql_gate_portal_user_sees_me_and_own_record(world, as_user):
    world.result_p.is_released = False
    world.result_p.save(update_fields=["is_released"])
    released = add_results(world.p, 1, released=True)[0]
    query = """{ me { username role } myRecord { id familyName courses { id } sideEffects { id }
                 labResults { id } } }"""
    _, body = gql(as_user(world.portal_p), query)
    assert body["data"]["me"] == {"username": "portal_p", "role": "patient"}
    record = body["data"]["myRecord"]
    assert record["id"] == str(world.p.pk)
    assert record["courses"] == []  # treatment records are not the portal's
    assert record["labResults"] == [{"id": str(released.pk)}]  # released results only


def test_graphql_gate_portal_user_lab_results_released_only(world, as_user):
    world.result_p.is_released = False
    world.result_p.save(update_fields=["is_released"])
    query = "query($p: ID!) { labResults(patientId: $p) { id } }"
    _, own = gql(as_user(world.portal_p), query, {"p": world.p.pk})
    _, other = gql(as_user(world.portal_p), query, {"p": world.q.pk})
    assert own["data"]["labResults"] == []
    assert _errors(other) == ["not found"]


@pytest.mark.parametrize(
    "query",
    [
        "{ patients { id } }",
        "{ regimens { id } }",
        "{ labTests { id } }",
        "{ ctcaeTerms { id } }",
    ],
)
def test_graphql_gate_portal_user_gets_empty_lists(world, as_user, query):
    _, body = gql(as_user(world.portal_p), query)
    assert list(body["data"].values()) == [[]]


def test_graphql_gate_portal_user_other_patient_and_readiness_not_found(world, as_user):
    client = as_user(world.portal_p)
    _, other = gql(client, "query($id: ID!) { patient(id: $id) { id } }", {"id": world.q.pk})
    _, readiness = gql(
        client, "query($id: ID!) { readiness(patientId: $id) { outcome } }", {"id": world.p.pk}
    )
    assert _errors(other) == ["not found"]
    assert _errors(readiness) == ["not found"]


def test_graphql_gate_clinician_has_no_my_record(world, as_user):
    _, body = gql(as_user(world.clinician), "{ me { username } myRecord { id } }")
    assert body["data"] == {"me": {"username": "dr_p"}, "myRecord": None}


def test_graphql_gate_reference_data_for_staff(world, as_user):
    query = "{ regimens { name phases { drugs { drug { name } } } precycleRules { id } } }"
    _, body = gql(as_user(world.clinician), query)
    names = {r["name"] for r in body["data"]["regimens"]}
    assert world.course_p.regimen.name in names


def test_graphql_gate_ctcae_terms_for_staff_common_first_searched_and_paged(world, as_user):
    query = """query($search: String, $first: Int!, $offset: Int!) {
      ctcaeTerms(search: $search, first: $first, offset: $offset) {
        id term version category maxGrade isCommon grades { grade description }
      }
    }"""
    client = as_user(world.clinician)
    _, body = gql(client, query, {"first": 200, "offset": 0})
    assert "errors" not in body, body
    terms = body["data"]["ctcaeTerms"]
    assert len(terms) == CtcaeTerm.objects.count()
    common = [t["isCommon"] for t in terms]
    assert common == sorted(common, reverse=True)
    nausea = CtcaeTerm.objects.get(term="Nausea", version="5.0")
    (row,) = [t for t in terms if t["id"] == str(nausea.pk)]
    assert row["grades"][0] == {"grade": 1, "description": nausea.grade_descriptions["1"]}
    _, page = gql(client, query, {"first": 2, "offset": 2})
    assert [t["id"] for t in page["data"]["ctcaeTerms"]] == [t["id"] for t in terms[2:4]]
    _, found = gql(client, query, {"search": "nause", "first": 50, "offset": 0})
    assert "Nausea" in [t["term"] for t in found["data"]["ctcaeTerms"]]
    assert not AccessLog.objects.filter(surface="graphql").exists()  # reference data


def test_graphql_gate_readiness_for_my_patient(world, as_user):
    query = "query($id: ID!) { readiness(patientId: $id) { outcome okToTreat analytes { loinc } } }"
    _, mine = gql(as_user(world.clinician), query, {"id": world.p.pk})
    _, theirs = gql(as_user(world.clinician), query, {"id": world.q.pk})
    assert "errors" not in mine, mine
    assert mine["data"]["readiness"]["outcome"]
    assert _errors(theirs) == ["not found"]
