"""GraphQL mutations: the same services as the pages, the gate with change permission, field
errors in extensions, nothing written on a refusal, and the access log (surface graphql)."""

# Fixtures are imported from graphql_support (no conftest of our own in this shared
# directory), so pytest's argument injection looks like redefinition to ruff.
# ruff: noqa: F811
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from audit.models import AccessLog
from labs.models import LabResult
from oncoplanner.tests.graphql_support import (  # noqa: F401 - fixtures
    ANC_LOINC,
    TODAY,
    _access_context,
    anc_test,
    as_user,
    gql,
    world,
)
from treatments.models import ChemoCycle, SideEffect

pytestmark = pytest.mark.django_db

GIVE = """mutation($p: ID!, $c: ID!, $d: Date!, $v: String!) {
  giveCycle(patientId: $p, cycleId: $c, actualStart: $d, seenVersion: $v) {
    id status actualStart version } }"""
DELAY = """mutation($p: ID!, $c: ID!, $reason: String!, $days: Int, $v: String!) {
  delayCycle(patientId: $p, cycleId: $c, reason: $reason, days: $days, seenVersion: $v) {
    id status plannedStart } }"""
HOLD = """mutation($p: ID!, $c: ID!, $reason: String!, $v: String!) {
  holdCycle(patientId: $p, cycleId: $c, reason: $reason, seenVersion: $v) { id status reason } }"""
RECORD_LAB = """mutation($p: ID!, $loinc: String!, $value: String!, $unit: String!, $at: DateTime!,
    $confirm: Boolean! = false) {
  recordLabResult(patientId: $p, loinc: $loinc, value: $value, unit: $unit, collectedAt: $at,
    confirmChange: $confirm) {
    id value flag } }"""
ACK_LAB = """mutation($p: ID!, $r: ID!, $note: String!) {
  acknowledgeLabResult(patientId: $p, labResultId: $r, note: $note) { id acknowledgedAt } }"""
SIDE_EFFECT = """mutation($p: ID!, $t: ID!, $g: Int!, $onset: Date!, $c: ID) {
  recordSideEffect(patientId: $p, termId: $t, grade: $g, onset: $onset, cycleId: $c) {
    id grade cycle { id } } }"""
MEASURE = """mutation($p: ID!, $on: Date!, $w: Decimal, $h: Decimal) {
  recordMeasurement(patientId: $p, measuredOn: $on, weightKg: $w, heightCm: $h) {
    id measuredOn weightKg heightCm } }"""
ACK_SIDE_EFFECT = """mutation($p: ID!, $s: ID!, $note: String!) {
  acknowledgeSideEffect(patientId: $p, sideEffectId: $s, note: $note) { id acknowledgedAt } }"""


def _error(body):
    (error,) = body["errors"]
    return error


def _writes():
    return AccessLog.objects.filter(action__in=["create", "update", "delete"]).count()


def test_graphql_mutations_give_cycle_through_the_service(world, as_user):
    vars_ = {
        "p": world.p.pk,
        "c": world.cycle_p.pk,
        "v": world.cycle_p.version,
        "d": TODAY.isoformat(),
    }
    _, body = gql(as_user(world.clinician), GIVE, vars_)
    assert "errors" not in body, body
    assert body["data"]["giveCycle"]["status"] == "given"
    world.cycle_p.refresh_from_db()
    assert world.cycle_p.status == ChemoCycle.Status.GIVEN
    assert world.cycle_p.status_changed_by == world.clinician
    write = AccessLog.objects.filter(action="update", object_type="ChemoCycle").first()
    assert write is not None
    assert write.surface == "graphql"


def test_graphql_mutations_give_cycle_of_another_patient_is_not_found(world, as_user):
    before = _writes()
    # Parent mine, child theirs: Q's cycle under P's id.
    vars_ = {
        "p": world.p.pk,
        "c": world.cycle_q.pk,
        "v": world.cycle_q.version,
        "d": TODAY.isoformat(),
    }
    _, body = gql(as_user(world.clinician), GIVE, vars_)
    assert body["data"] is None
    assert _error(body)["message"] == "not found"
    world.cycle_q.refresh_from_db()
    assert world.cycle_q.status == ChemoCycle.Status.PLANNED
    assert _writes() == before


def test_graphql_mutations_give_cycle_twice_names_the_field(world, as_user):
    client = as_user(world.clinician)
    vars_ = {
        "p": world.p.pk,
        "c": world.cycle_p.pk,
        "v": world.cycle_p.version,
        "d": TODAY.isoformat(),
    }
    _, first = gql(client, GIVE, vars_)
    before = _writes()
    # A retry with the version read before: refused as changed since, nothing written.
    _, body = gql(client, GIVE, vars_)
    error = _error(body)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "changed after this page was opened" in error["extensions"]["fields"]["cycle"][0]
    # With the version as it is now: the cycle has already been given.
    _, body = gql(client, GIVE, {**vars_, "v": first["data"]["giveCycle"]["version"]})
    assert "already been given" in _error(body)["extensions"]["fields"]["cycle"][0]
    assert _writes() == before


def test_graphql_mutations_delay_without_reason_writes_nothing(world, as_user):
    before = _writes()
    vars_ = {
        "p": world.p.pk,
        "c": world.cycle_p.pk,
        "v": world.cycle_p.version,
        "reason": "",
        "days": 7,
    }
    _, body = gql(as_user(world.clinician), DELAY, vars_)
    assert "reason" in _error(body)["extensions"]["fields"]
    world.cycle_p.refresh_from_db()
    assert (world.cycle_p.status, world.cycle_p.planned_start) == ("planned", TODAY)
    assert _writes() == before


def test_graphql_mutations_delay_cycle_by_seven_days(world, as_user):
    vars_ = {
        "p": world.p.pk,
        "c": world.cycle_p.pk,
        "v": world.cycle_p.version,
        "reason": "ANC 0.9 on day 1",
        "days": 7,
    }
    _, body = gql(as_user(world.clinician), DELAY, vars_)
    assert body["data"]["delayCycle"]["plannedStart"] == (TODAY + dt.timedelta(days=7)).isoformat()


def test_graphql_mutations_hold_cycle(world, as_user):
    vars_ = {
        "p": world.p.pk,
        "c": world.cycle_p.pk,
        "v": world.cycle_p.version,
        "reason": "Awaiting echo",
    }
    _, body = gql(as_user(world.clinician), HOLD, vars_)
    assert body["data"]["holdCycle"] == {
        "id": str(world.cycle_p.pk),
        "status": "held",
        "reason": "Awaiting echo",
    }


def test_graphql_mutations_hold_by_outsider_is_not_found(world, as_user):
    vars_ = {
        "p": world.p.pk,
        "c": world.cycle_p.pk,
        "v": world.cycle_p.version,
        "reason": "Awaiting echo",
    }
    _, body = gql(as_user(world.outsider), HOLD, vars_)
    assert _error(body)["message"] == "not found"
    world.cycle_p.refresh_from_db()
    assert world.cycle_p.status == "planned"


def test_graphql_mutations_portal_user_cannot_mutate(world, as_user):
    vars_ = {
        "p": world.p.pk,
        "c": world.cycle_p.pk,
        "v": world.cycle_p.version,
        "reason": "Feeling unwell",
    }
    _, body = gql(as_user(world.portal_p), HOLD, vars_)
    assert _error(body)["message"] == "not found"


def _lab_vars(world, value: str, unit: str = "10*3/uL") -> dict[str, object]:
    anc_test()
    return {
        "p": world.p.pk,
        "loinc": ANC_LOINC,
        "value": value,
        "unit": unit,
        "at": "2026-03-01T08:00:00+00:00",
    }


def test_graphql_mutations_record_lab_result(world, as_user):
    _, body = gql(as_user(world.clinician), RECORD_LAB, _lab_vars(world, "1.4"))
    assert "errors" not in body, body
    created = LabResult.objects.get(pk=body["data"]["recordLabResult"]["id"])
    assert (created.patient, created.value, created.recorded_by) == (
        world.p,
        created.value,
        world.clinician,
    )
    assert str(created.value).startswith("1.4")


def test_graphql_mutations_a_lab_value_far_from_the_last_needs_confirm_change(world, as_user):
    client = as_user(world.clinician)
    gql(client, RECORD_LAB, _lab_vars(world, "1.4"))
    later = {**_lab_vars(world, "140"), "at": "2026-03-02T08:00:00+00:00"}  # 100x: a slip
    _, body = gql(client, RECORD_LAB, later)
    extensions = _error(body)["extensions"]
    assert (extensions["code"], extensions["confirmWith"]) == (
        "CONFIRMATION_REQUIRED",
        "confirmChange",
    )
    assert extensions["confirmWithAll"] == ["confirmChange"]  # one warning: the list of one
    assert LabResult.objects.filter(patient=world.p, value=140).count() == 0
    _, body = gql(client, RECORD_LAB, {**later, "confirm": True})
    assert "errors" not in body, body


@pytest.mark.parametrize(
    ("value", "unit", "field"),
    [("NaN", "10*3/uL", "value"), ("Infinity", "10*3/uL", "value"), ("1.4", "g/L", "unit")],
)
def test_graphql_mutations_record_lab_result_bad_input_writes_nothing(
    world, as_user, value, unit, field
):
    count = LabResult.objects.count()
    _, body = gql(as_user(world.clinician), RECORD_LAB, _lab_vars(world, value, unit))
    assert field in _error(body)["extensions"]["fields"]
    assert LabResult.objects.count() == count


def test_graphql_mutations_record_lab_result_unknown_loinc(world, as_user):
    vars_ = _lab_vars(world, "1.4") | {"loinc": "0000-0"}
    _, body = gql(as_user(world.clinician), RECORD_LAB, vars_)
    assert "test" in _error(body)["extensions"]["fields"]


def test_graphql_mutations_acknowledge_normal_result_names_the_field(world, as_user):
    vars_ = {"p": world.p.pk, "r": world.result_p.pk, "note": "Seen"}
    _, body = gql(as_user(world.clinician), ACK_LAB, vars_)
    assert "result" in _error(body)["extensions"]["fields"]
    world.result_p.refresh_from_db()
    assert world.result_p.acknowledged_at is None


def test_graphql_mutations_acknowledge_critical_result(world, as_user):
    world.result_p.flag = "LL"
    world.result_p.save(update_fields=["flag"])
    vars_ = {"p": world.p.pk, "r": world.result_p.pk, "note": "Patient called, G-CSF started"}
    _, body = gql(as_user(world.clinician), ACK_LAB, vars_)
    assert body["data"]["acknowledgeLabResult"]["acknowledgedAt"]


def test_graphql_mutations_acknowledge_other_patients_result_is_not_found(world, as_user):
    vars_ = {"p": world.p.pk, "r": world.result_q.pk, "note": "Seen"}
    _, body = gql(as_user(world.clinician), ACK_LAB, vars_)
    assert _error(body)["message"] == "not found"


def test_graphql_mutations_record_side_effect(world, as_user):
    vars_ = {"p": world.p.pk, "t": world.term.pk, "g": 2, "onset": TODAY.isoformat()}
    _, body = gql(as_user(world.clinician), SIDE_EFFECT, vars_)
    assert "errors" not in body, body
    assert SideEffect.objects.filter(patient=world.p, grade=2).count() == 1


def test_graphql_mutations_side_effect_on_other_patients_cycle_is_not_found(world, as_user):
    vars_ = {
        "p": world.p.pk,
        "t": world.term.pk,
        "g": 2,
        "onset": TODAY.isoformat(),
        "c": world.cycle_q.pk,
    }
    _, body = gql(as_user(world.clinician), SIDE_EFFECT, vars_)
    assert _error(body)["message"] == "not found"
    assert not SideEffect.objects.filter(patient=world.p).exists()


def test_graphql_mutations_side_effect_with_an_unknown_term_names_it(world, as_user):
    vars_ = {"p": world.p.pk, "t": "999999", "g": 1, "onset": TODAY.isoformat()}
    _, body = gql(as_user(world.clinician), SIDE_EFFECT, vars_)
    assert _error(body)["extensions"]["fields"]["term"][0].startswith("Unknown CTCAE term")
    assert not SideEffect.objects.filter(patient=world.p).exists()


def test_graphql_mutations_side_effect_grade_above_term_maximum(world, as_user):
    vars_ = {"p": world.p.pk, "t": world.term.pk, "g": 5, "onset": TODAY.isoformat()}
    _, body = gql(as_user(world.clinician), SIDE_EFFECT, vars_)
    assert "grade" in _error(body)["extensions"]["fields"]
    assert not SideEffect.objects.filter(patient=world.p).exists()


def test_graphql_mutations_acknowledge_side_effect(world, as_user):
    vars_ = {"p": world.q.pk, "s": world.side_effect_q.pk, "note": "Antiemetics changed"}
    _, body = gql(as_user(world.q_clinician), ACK_SIDE_EFFECT, vars_)
    assert body["data"]["acknowledgeSideEffect"]["acknowledgedAt"]


def test_graphql_mutations_acknowledge_side_effect_of_other_team(world, as_user):
    vars_ = {"p": world.q.pk, "s": world.side_effect_q.pk, "note": "Antiemetics changed"}
    _, body = gql(as_user(world.clinician), ACK_SIDE_EFFECT, vars_)
    assert _error(body)["message"] == "not found"
    world.side_effect_q.refresh_from_db()
    assert world.side_effect_q.acknowledged_at is None


def test_graphql_mutations_record_measurement(world, as_user):
    vars_ = {"p": world.p.pk, "on": TODAY.isoformat(), "w": "64.5"}
    _, body = gql(as_user(world.clinician), MEASURE, vars_)
    assert "errors" not in body, body
    assert body["data"]["recordMeasurement"]["weightKg"] == "64.5"
    assert world.p.measurements.get().weight_kg == Decimal("64.5")
    assert AccessLog.objects.filter(
        action="create", object_type="BodyMeasurement", surface="graphql"
    ).exists()


def test_graphql_mutations_a_weight_far_from_the_last_asks_for_confirm_change(world, as_user):
    client = as_user(world.clinician)
    gql(client, MEASURE, {"p": world.p.pk, "on": TODAY.isoformat(), "w": "64.5"})
    _, body = gql(client, MEASURE, {"p": world.p.pk, "on": TODAY.isoformat(), "w": "6.45"})
    extensions = _error(body)["extensions"]
    # A client can tell it from a plain error, and knows which argument accepts the value.
    assert (extensions["code"], extensions["confirmWith"]) == (
        "CONFIRMATION_REQUIRED",
        "confirmChange",
    )
    assert "weight_kg" in extensions["fields"]
    assert world.p.measurements.count() == 1


@pytest.mark.parametrize(
    ("extra", "field"),
    [({}, "weight_kg"), ({"w": "0.4"}, "weight_kg"), ({"h": "900"}, "height_cm")],
)
def test_graphql_mutations_record_measurement_bad_input_names_the_field(
    world, as_user, extra, field
):
    vars_ = {"p": world.p.pk, "on": TODAY.isoformat(), **extra}
    _, body = gql(as_user(world.clinician), MEASURE, vars_)
    assert field in _error(body)["extensions"]["fields"]
    assert not world.p.measurements.exists()


def test_graphql_mutations_record_measurement_for_another_team_is_not_found(world, as_user):
    vars_ = {"p": world.q.pk, "on": TODAY.isoformat(), "w": "60"}
    _, body = gql(as_user(world.clinician), MEASURE, vars_)
    assert _error(body)["message"] == "not found"
    assert not world.q.measurements.exists()
