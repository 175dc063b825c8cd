from __future__ import annotations

import pytest

from audit.models import AccessLog, AccessLogSeal
from audit.services import (
    GENESIS_HASH,
    access_log_record,
    access_log_row_hash,
    access_log_seal,
    access_log_verify,
)
from audit.tests.conftest import tamper
from oncoplanner import access_context

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
