from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AccessLog, AccessLogPatient, AccessLogSeal
from audit.selectors import access_log_for_patient
from audit.services import (
    GENESIS_HASH,
    access_log_record,
    access_log_row_hash,
    access_log_seal,
    access_log_verify,
)
from audit.tests.conftest import tamper
from oncoplanner import access_context
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def _write(n: int) -> list[AccessLog]:
    return [
        access_log_record(action=AccessLog.Action.READ, object_type="Patient", object_id=i)
        for i in range(n)
    ]


def test_access_log_record_takes_the_context(admin_user):
    with access_context.acting_as(admin_user, surface="command", source_address="::1"):
        row = access_log_record(action=AccessLog.Action.EXPORT, object_type="AccessLog")
    assert (row.user_id, row.username, row.user_role) == (admin_user.pk, "admin", "administrator")
    assert (row.surface, row.source_address) == ("command", "::1")
    assert row.seq is None  # unsealed until the sealer runs
    assert row.row_hash is None


def test_access_log_seal_chains_rows_in_order():
    rows = _write(3)
    assert access_log_seal() == 3
    sealed = list(AccessLog.objects.order_by("seq"))
    assert [r.pk for r in sealed] == [r.pk for r in rows]
    assert [r.seq for r in sealed] == [1, 2, 3]
    assert sealed[0].prev_hash == GENESIS_HASH
    assert sealed[1].prev_hash == sealed[0].row_hash
    assert sealed[2].prev_hash == sealed[1].row_hash
    head = AccessLogSeal.objects.get()
    assert (head.last_seq, head.last_hash) == (3, sealed[2].row_hash)


def test_access_log_seal_is_incremental_and_batched():
    _write(5)
    assert access_log_seal(batch_size=2) == 5
    _write(2)
    assert access_log_seal() == 2
    assert access_log_seal() == 0
    assert list(AccessLog.objects.order_by("seq").values_list("seq", flat=True)) == list(
        range(1, 8)
    )


def test_access_log_row_hash_covers_every_field():
    row = {
        "id": 1, "seq": 1, "at": None, "user_id": 2, "username": "a", "user_role": "clinician",
        "patient_id": 3, "patient_ids": [3], "action": "read", "object_type": "Patient",
        "object_id": "3", "surface": "page", "outcome": "success", "source_address": None,
        "request_id": "r", "break_glass": False, "detail": {},
    }  # fmt: skip
    base = access_log_row_hash(row, GENESIS_HASH)
    for name, value in [("patient_ids", [4]), ("break_glass", True), ("outcome", "denied")]:
        assert access_log_row_hash({**row, name: value}, GENESIS_HASH) != base
    assert access_log_row_hash(row, "f" * 64) != base


def test_access_log_verify_passes_an_intact_chain():
    _write(4)
    result = access_log_verify()
    assert result.ok
    assert result.rows_checked == 4
    assert result.summary().startswith("access log intact: 4 rows checked")


def test_access_log_verify_detects_an_edited_row():
    rows = _write(4)
    access_log_seal()
    tamper("UPDATE audit_accesslog SET username = %s WHERE id = %s", ["nobody", rows[2].pk])
    result = access_log_verify()
    assert not result.ok
    assert result.problem == f"seq 3 (id {rows[2].pk}) altered: its hash does not match its fields"
    assert result.rows_checked == 2


def test_access_log_verify_detects_a_deleted_row():
    rows = _write(4)
    access_log_seal()
    tamper("DELETE FROM audit_accesslog WHERE id = %s", [rows[1].pk])
    result = access_log_verify()
    assert result.problem.startswith("row(s) missing: seq 2 (next row is seq 3")


def test_access_log_verify_detects_rows_cut_off_the_end():
    rows = _write(4)
    access_log_seal()
    tamper("DELETE FROM audit_accesslog WHERE id >= %s", [rows[2].pk])
    assert access_log_verify().problem.startswith("row(s) missing at the end: seq 3-4")


def test_access_log_verify_detects_a_row_unsealed_to_hide_an_edit():
    # Clearing a row's seal so that the next seal run re-chains the edited row at the end
    # leaves a hole where it was.
    rows = _write(3)
    access_log_seal()
    tamper(
        "UPDATE audit_accesslog SET username = 'x', seq = NULL, prev_hash = NULL, row_hash = NULL "
        "WHERE id = %s",
        [rows[0].pk],
    )
    assert access_log_verify().problem.startswith("row(s) missing: seq 1 ")


def test_access_log_verify_detects_a_forged_rechain():
    # Someone who edits a row and recomputes its hash still breaks the link to the next row.
    rows = _write(3)
    access_log_seal()
    row = AccessLog.objects.filter(pk=rows[1].pk).values().get()
    row["username"] = "forged"
    forged = access_log_row_hash(row, row["prev_hash"])
    tamper(
        "UPDATE audit_accesslog SET username = 'forged', row_hash = %s WHERE id = %s",
        [forged, rows[1].pk],
    )
    assert access_log_verify().problem == f"seq 3 (id {rows[2].pk}) does not chain onto seq 2"


# --- the list-view index (AccessLogPatient), outside the chain --------------------------------


def _list(*patient_ids: int) -> AccessLog:
    return access_log_record(action=AccessLog.Action.LIST, patient_ids=patient_ids)


def _index_row(log: AccessLog, patient_id: int) -> int:
    return AccessLogPatient.objects.get(log_id=log.pk, patient_id=patient_id).pk


def test_access_log_verify_passes_list_views_and_their_index_sealed_or_not():
    access_log_record(action=AccessLog.Action.READ, patient_ids=[5])  # one patient: no index
    _list(5, 7, 12)
    access_log_record(action=AccessLog.Action.LOGIN)  # no patient at all
    access_log_seal()
    _list(7, 12)  # written after the seal: compared too
    result = access_log_verify(seal=False)
    assert result.ok, result.problem
    assert (result.rows_checked, result.index_rows_checked) == (3, 5)
    assert result.summary().endswith("; list-view index: 5 rows match the log")


def test_access_log_verify_reports_a_deleted_index_row_that_hid_a_list_view():
    patient, other = PatientFactory.create_batch(2)
    listing = _list(patient.pk, other.pk)
    access_log_seal()
    seq = AccessLog.objects.get(pk=listing.pk).seq
    tamper("DELETE FROM audit_accesslogpatient WHERE id = %s", [_index_row(listing, patient.pk)])
    # The list view is gone from the patient's "who accessed"; the verifier says where.
    assert listing not in access_log_for_patient(patient=patient, limit=10)
    result = access_log_verify()
    assert result.problem == (
        f"seq {seq} (id {listing.pk}) list-view index does not match its patient list: "
        f"lacks patient {patient.pk}"
    )
    assert result.rows_checked == AccessLog.objects.count()  # the chain itself holds


def test_access_log_verify_reports_an_index_row_moved_to_another_patient():
    listing = _list(7, 12)
    access_log_seal()
    tamper(
        "UPDATE audit_accesslogpatient SET patient_id = 40 WHERE id = %s", [_index_row(listing, 7)]
    )
    assert access_log_verify().problem == (
        f"seq 1 (id {listing.pk}) list-view index does not match its patient list: "
        "lacks patient 7; has patient 40, not in the list"
    )


def test_access_log_verify_reports_a_stray_index_row_for_no_log_row():
    listing = _list(7, 12)
    access_log_seal()
    tamper(
        "INSERT INTO audit_accesslogpatient (log_id, at, patient_id) VALUES (%s, %s, 9)",
        [listing.pk + 1000, listing.at],
    )
    assert access_log_verify().problem == (
        f"list-view index rows for id {listing.pk + 1000}, which is not in the log (patient 9)"
    )


@pytest.mark.parametrize(
    ("patient_id", "problem"),
    [
        (9, "has patient 9, not in the list"),  # a forged extra patient on a list view
        (12, "has patient 12 2 times"),  # a duplicate
    ],
)
def test_access_log_verify_reports_a_stray_index_row_on_a_list_view(patient_id, problem):
    listing = _list(7, 12)
    access_log_seal()
    tamper(
        "INSERT INTO audit_accesslogpatient (log_id, at, patient_id) VALUES (%s, %s, %s)",
        [listing.pk, listing.at, patient_id],
    )
    assert access_log_verify().problem == (
        f"seq 1 (id {listing.pk}) list-view index does not match its patient list: {problem}"
    )


def test_access_log_verify_reports_an_index_row_on_a_single_patient_row():
    read = access_log_record(action=AccessLog.Action.READ, patient_ids=[7])
    access_log_seal()
    tamper(
        "INSERT INTO audit_accesslogpatient (log_id, at, patient_id) VALUES (%s, %s, 7)",
        [read.pk, read.at],
    )
    assert access_log_verify().problem == (
        f"seq 1 (id {read.pk}) list-view index does not match its patient list: "
        "has patient 7, but a row about one patient has no index rows"
    )


def test_access_log_verify_reports_an_index_row_moved_in_time():
    # "Who accessed" is in time order: a row moved back hides the list view among old ones.
    listing = _list(7, 12)
    access_log_seal()
    tamper(
        "UPDATE audit_accesslogpatient SET at = %s WHERE id = %s",
        [listing.at - timedelta(days=400), _index_row(listing, 12)],
    )
    problem = access_log_verify().problem
    assert problem.startswith(
        f"seq 1 (id {listing.pk}) list-view index does not match its patient list: "
        "has patient 12 at "
    )
    assert ", not at the row's " in problem


def test_access_log_verify_checks_unsealed_rows_and_counts_every_log_row_that_differs():
    first = _list(7, 12)
    second = _list(7, 13)
    tamper("DELETE FROM audit_accesslogpatient WHERE log_id IN (%s, %s)", [first.pk, second.pk])
    assert access_log_verify(seal=False).problem == (
        f"unsealed id {first.pk} list-view index does not match its patient list: "
        "lacks patient 7; lacks patient 12 (and 1 more log ids whose index rows differ)"
    )


def test_access_log_verify_reports_the_chain_before_the_index():
    rows = [_list(7, 12), _list(7, 13)]
    access_log_seal()
    tamper("DELETE FROM audit_accesslog WHERE id = %s", [rows[0].pk])  # its index rows stay
    assert access_log_verify().problem.startswith("row(s) missing: seq 1 (next row is seq 2")


def test_access_log_verify_passes_list_views_indexed_by_the_migration():
    backfill = importlib.import_module("audit.migrations.0006_accesslogpatient")
    old = AccessLog(action=AccessLog.Action.LIST, surface="page", patient_ids=[7, 12])
    old.save(force_insert=True)  # written before the index existed
    assert not access_log_verify().ok

    class Editor:  # what the migration uses of a schema editor
        connection = connection

        def execute(self, sql, params=None):
            with connection.cursor() as cursor:
                cursor.execute(sql, params)

    backfill.backfill(None, Editor())
    assert access_log_verify().ok


def test_access_log_verify_query_count_is_flat_however_many_list_views():
    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert access_log_verify(seal=False).ok
        return len(ctx.captured_queries)

    _list(7, 12)
    before = count()
    for n in range(30):
        _list(7, 12, 100 + n)
    access_log_seal()
    assert count() == before
