"""The database's own guard (migration 0004): only on PostgreSQL, where production runs."""

from __future__ import annotations

from datetime import UTC

import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import AccessLog, AccessLogSeal
from audit.services import access_log_record, access_log_seal, access_log_verify
from audit.tests.conftest import tamper

pytestmark = [pytest.mark.django_db, pytest.mark.postgres_only]


def _write(n: int) -> list[AccessLog]:
    return [access_log_record(action=AccessLog.Action.READ, object_id=i) for i in range(n)]


def _refused(sql: str, params: list[object] | None = None) -> None:
    # A savepoint, so the refused statement does not abort the test's transaction.
    with (
        pytest.raises(DatabaseError, match="append-only|only moves forward"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params or [])


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_accesslog SET username = 'nobody' WHERE id = %s",
        "DELETE FROM audit_accesslog WHERE id = %s",
    ],
)
@pytest.mark.parametrize("sealed", [False, True])
def test_trigger_refuses_update_and_delete(sql, sealed):
    (row,) = _write(1)
    if sealed:
        access_log_seal()
    _refused(sql, [row.pk])
    assert AccessLog.objects.filter(pk=row.pk, username="").exists()


def test_trigger_refuses_truncate():
    _write(2)
    _refused("TRUNCATE audit_accesslog")
    assert AccessLog.objects.count() == 2


def test_trigger_refuses_resealing_or_sealing_with_other_changes():
    rows = _write(2)
    access_log_seal()
    _refused("UPDATE audit_accesslog SET row_hash = %s WHERE id = %s", ["f" * 64, rows[0].pk])
    (fresh,) = _write(1)
    _refused(
        "UPDATE audit_accesslog SET seq = 99, prev_hash = %s, row_hash = %s, username = 'x' "
        "WHERE id = %s",
        ["0" * 64, "f" * 64, fresh.pk],
    )


def test_trigger_lets_the_sealer_through():
    _write(3)
    assert access_log_seal() == 3
    assert access_log_verify().ok


def test_seal_head_cannot_move_back_or_be_removed():
    _write(2)
    access_log_seal()
    _refused("UPDATE audit_accesslogseal SET last_seq = 1")
    _refused("DELETE FROM audit_accesslogseal")
    assert AccessLogSeal.objects.get().last_seq == 2


def test_verifier_detects_edit_by_table_owner_with_trigger_disabled():
    rows = _write(4)
    access_log_seal()
    tamper("UPDATE audit_accesslog SET username = 'nobody' WHERE id = %s", [rows[1].pk])
    result = access_log_verify()
    assert result.problem == f"seq 2 (id {rows[1].pk}) altered: its hash does not match its fields"
    print(f"\nFIGURE 13 (edit as owner): {result.summary()}")


def test_verifier_detects_delete_by_table_owner_with_trigger_disabled():
    rows = _write(4)
    access_log_seal()
    tamper("DELETE FROM audit_accesslog WHERE id = %s", [rows[2].pk])
    result = access_log_verify()
    assert result.problem.startswith("row(s) missing: seq 3 ")
    print(f"\nFIGURE 13 (delete as owner): {result.summary()}")


def test_verifier_detects_truncate_by_table_owner_with_trigger_disabled():
    _write(4)
    access_log_seal()
    tamper("TRUNCATE audit_accesslog")
    result = access_log_verify()
    assert result.problem.startswith("row(s) missing at the end: seq 1-4")
    print(f"\nFIGURE 13 (truncate as owner): {result.summary()}")


def test_verifier_detects_index_rows_deleted_by_table_owner_with_trigger_disabled():
    # The list-view index is outside the chain: deleting a patient's rows hides the list views
    # from their "who accessed", and only the comparison with the log's patient lists shows it.
    listing = access_log_record(action=AccessLog.Action.LIST, patient_ids=[7, 12, 30])
    access_log_seal()
    tamper("DELETE FROM audit_accesslogpatient WHERE log_id = %s AND patient_id = 12", [listing.pk])
    result = access_log_verify()
    assert result.problem == (
        f"seq 1 (id {listing.pk}) list-view index does not match its patient list: lacks patient 12"
    )
    print(f"\nFIGURE 13 (index row deleted as owner): {result.summary()}")


def test_verifier_lifts_the_statement_timeout_for_the_index_check_only():
    access_log_record(action=AccessLog.Action.LIST, patient_ids=[7, 12])
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = '12345ms'")
    assert access_log_verify().ok
    assert _scalar("SHOW statement_timeout") == "12345ms"


# --- Monthly partitions (migration 0005) -------------------------------------------------------


def _scalar(sql: str, params: list[object] | None = None) -> object:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()[0]


def test_log_is_partitioned_by_month_and_rows_land_in_their_month():
    assert (
        _scalar(
            "SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'audit_accesslog'::regclass"
        )
        == "r"
    )
    (row,) = _write(1)
    month = row.at.astimezone(UTC).strftime("%Y_%m")
    where = _scalar("SELECT tableoid::regclass::text FROM audit_accesslog WHERE id = %s", [row.pk])
    assert where == f"audit_accesslog_{month}"


def test_partitions_for_the_coming_months_exist_and_creating_them_again_is_a_no_op():
    from audit.services import access_log_ensure_partitions

    assert access_log_ensure_partitions() == 0  # the migration made this month and three more
    months = _scalar(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_accesslog'::regclass"
        " AND inhrelid::regclass::text ~ '^audit_accesslog_[0-9]{4}_[0-9]{2}$'"
    )
    assert months >= 4


def test_a_partition_refuses_truncate_delete_and_update_on_its_own():
    (row,) = _write(1)
    partition = _scalar(
        "SELECT tableoid::regclass::text FROM audit_accesslog WHERE id = %s", [row.pk]
    )
    _refused(f"TRUNCATE {partition}")
    _refused(f"DELETE FROM {partition} WHERE id = %s", [row.pk])  # noqa: S608 - our table name
    _refused(f"UPDATE {partition} SET username = 'nobody' WHERE id = %s", [row.pk])  # noqa: S608
    _refused("TRUNCATE audit_accesslog_default")
    assert AccessLog.objects.filter(pk=row.pk, username="").exists()
