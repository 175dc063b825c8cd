"""Migration audit/0007 on PostgreSQL: the list-view index, filled before it, is converted to
monthly partitions with every row kept, and the verifier still finds it matching the log.

Works on a database of its own (migrated to 0006, filled, then migrated on), not inside a test
transaction, as oncoplanner/tests/test_backup_restore.py does.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from oncoplanner.tests.scratch_databases import manage, scratch_databases

# List views (several patients) and a single read, in a month two years back (older than any
# of the log's partitions: its rows are in the log's DEFAULT), last month and this month.
FILL_SQL = """
INSERT INTO audit_accesslog (at, username, user_role, patient_ids, action, object_type,
    object_id, surface, outcome, request_id, break_glass, detail, patient_id)
SELECT now() - shown.ago, 'nurse', 'nurse', shown.ids, shown.action, 'Patient', '', 'page',
       'success', '', false, '{}', shown.single
FROM (VALUES
    (interval '2 years', '[7, 12, 30]'::jsonb, 'list', NULL::bigint),
    (interval '1 month', '[7, 12]'::jsonb, 'list', NULL),
    (interval '1 month', '[12]'::jsonb, 'read', 12),
    (interval '0', '[12, 30]'::jsonb, 'list', NULL)
) AS shown(ago, ids, action, single)
ORDER BY shown.ago DESC;
INSERT INTO audit_accesslogpatient (log_id, at, patient_id)
SELECT log.id, log.at, shown.value::bigint
FROM audit_accesslog log, jsonb_array_elements_text(log.patient_ids) AS shown(value)
WHERE log.patient_id IS NULL;
"""
ROWS_SQL = "SELECT id, log_id, at, patient_id FROM audit_accesslogpatient ORDER BY id"


@pytest.fixture
def database() -> Iterator[str]:
    with scratch_databases("partition") as (url,):
        yield url


@pytest.mark.postgres_only
def test_0007_partitions_the_filled_index_keeping_every_row(database: str) -> None:
    migrated = manage(database, "migrate", "audit", "0006_accesslogpatient", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(FILL_SQL)
        before = conn.execute(ROWS_SQL).fetchall()
    assert len(before) == 3 + 2 + 2

    migrated = manage(database, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr

    with psycopg.connect(database, autocommit=True) as conn:
        assert conn.execute(ROWS_SQL).fetchall() == before
        # Each row in its own month's partition (the two-year-old month's too), none in DEFAULT.
        misplaced = conn.execute(
            "SELECT id, tableoid::regclass::text FROM audit_accesslogpatient"
            " WHERE tableoid::regclass::text"
            " <> 'audit_accesslogpatient_' || to_char(at AT TIME ZONE 'UTC', 'YYYY_MM')"
        ).fetchall()
        assert misplaced == []
        # Every partition refuses TRUNCATE on its own, and the parent refuses UPDATE/DELETE.
        without_guard = conn.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits"
            " WHERE inhparent = 'audit_accesslogpatient'::regclass AND NOT EXISTS ("
            "  SELECT 1 FROM pg_trigger WHERE tgrelid = inhrelid"
            "  AND tgname = 'audit_accesslogpatient_no_truncate')"
        ).fetchall()
        assert without_guard == []
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("DELETE FROM audit_accesslogpatient WHERE id = %s", [before[0][0]])

    verified = manage(database, "verify_access_log")  # seals the filled rows first
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "list-view index: 7 rows match the log" in verified.stdout

    # The id sequence goes on after the copied rows: a new list view's index rows fit in.
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO audit_accesslogpatient (log_id, at, patient_id) VALUES (1, now(), 7)"
        )
        (new_id,) = conn.execute("SELECT max(id) FROM audit_accesslogpatient").fetchone()  # type: ignore[misc]
    assert new_id == before[-1][0] + 1
