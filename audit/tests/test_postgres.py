"""The database's own guard (migration 0004): only on PostgreSQL, where production runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.db import DatabaseError, connection, transaction

from audit.models import AccessLog, AccessLogPatient, AccessLogSeal
from audit.services import (
    _index_problem,
    access_log_ensure_partitions,
    access_log_record,
    access_log_seal,
    access_log_verify,
)
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


# --- The list-view index's monthly partitions (migration 0007) --------------------------------


def _partition_of(table: str, log_id: int) -> set[str]:
    """Where the log row `log_id` (table audit_accesslog) or its index rows are stored."""
    column = "id" if table == "audit_accesslog" else "log_id"
    sql = f"SELECT DISTINCT tableoid::regclass::text FROM {table} WHERE {column} = %s"  # noqa: S608 - our names
    with connection.cursor() as cursor:
        cursor.execute(sql, [log_id])
        return {name for (name,) in cursor.fetchall()}


def _this_month_and_the_next(count: int) -> list[str]:
    # The database's clock, as the ensure function reads it.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC')"
            " + make_interval(months => m), 'YYYY_MM') FROM generate_series(0, %s) AS m ORDER BY m",
            [count - 1],
        )
        return [month for (month,) in cursor.fetchall()]


def test_index_is_partitioned_by_month_and_keeps_its_patient_time_index():
    assert (
        _scalar(
            "SELECT partstrat::text || ':' || a.attname FROM pg_partitioned_table p"
            " JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]"
            " WHERE partrelid = 'audit_accesslogpatient'::regclass"
        )
        == "r:at"
    )
    # "Who accessed" reads the (patient, at) range on every partition: the index is the parent's.
    definition = _scalar(
        "SELECT indexdef FROM pg_indexes"
        " WHERE tablename = 'audit_accesslogpatient' AND indexname = 'accesslogpatient_time'"
    )
    assert definition.endswith("USING btree (patient_id, at DESC, log_id DESC)")


def test_index_partitions_for_this_month_and_the_next_three_are_made_by_the_sealers_ensure():
    months = _this_month_and_the_next(4)
    last = f"audit_accesslogpatient_{months[-1]}"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {last}")  # empty, and DROP is not refused
    assert access_log_ensure_partitions() == 1  # the log's were all there
    partitions = {
        name
        for (name,) in _rows(
            "SELECT inhrelid::regclass::text FROM pg_inherits"
            " WHERE inhparent = 'audit_accesslogpatient'::regclass"
        )
    }
    assert {f"audit_accesslogpatient_{month}" for month in months} <= partitions
    assert "audit_accesslogpatient_default" in partitions
    _refused(f"TRUNCATE {last}")  # the re-made partition refuses it on its own
    assert access_log_ensure_partitions() == 0


def test_index_rows_land_in_their_log_rows_month_partition():
    this_month, next_month = _this_month_and_the_next(2)
    now = access_log_record(action=AccessLog.Action.LIST, patient_ids=[7, 12])
    start = datetime.strptime(f"{next_month}_01 12:00", "%Y_%m_%d %H:%M").replace(tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        later = access_log_record(action=AccessLog.Action.LIST, patient_ids=[7, 30])
    assert _partition_of("audit_accesslogpatient", now.pk) == {
        f"audit_accesslogpatient_{this_month}"
    }
    assert _partition_of("audit_accesslogpatient", later.pk) == {
        f"audit_accesslogpatient_{next_month}"
    }
    assert _partition_of("audit_accesslog", later.pk) == {f"audit_accesslog_{next_month}"}


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE {partition} SET patient_id = 0",
        "DELETE FROM {partition}",
        "TRUNCATE {partition}",
        "TRUNCATE audit_accesslogpatient_default",
    ],
)
def test_an_index_partition_refuses_update_delete_and_truncate_on_its_own(sql):
    listing = access_log_record(action=AccessLog.Action.LIST, patient_ids=[7, 12])
    (partition,) = _partition_of("audit_accesslogpatient", listing.pk)
    _refused(sql.format(partition=partition))
    assert sorted(
        AccessLogPatient.objects.filter(log_id=listing.pk).values_list("patient_id", flat=True)
    ) == [7, 12]


def test_archiving_a_month_detaches_log_and_index_and_the_index_still_matches_the_log():
    this_month, next_month = _this_month_and_the_next(2)
    access_log_record(action=AccessLog.Action.LIST, patient_ids=[7, 12])
    access_log_record(action=AccessLog.Action.READ, patient_ids=[7])
    start = datetime.strptime(f"{next_month}_01 12:00", "%Y_%m_%d %H:%M").replace(tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        later = access_log_record(action=AccessLog.Action.LIST, patient_ids=[7, 30])
    access_log_seal()
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE audit_accesslog DETACH PARTITION audit_accesslog_{this_month}")
    # The log's month alone: its list's index rows would point at a row no longer there.
    assert "which is not in the log" in _index_problem()[1]
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE audit_accesslogpatient"
            f" DETACH PARTITION audit_accesslogpatient_{this_month}"
        )
    result = access_log_verify()
    # The chain reports the archived month (and stops at its first problem, as it always
    # has); the index holds exactly the remaining list's rows, so nothing else is wrong.
    assert result.problem == f"row(s) missing: seq 1-2 (next row is seq 3, id {later.pk})"
    assert _index_problem() == (2, "")


def _rows(sql: str) -> list[tuple[object, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()
