"""PostgreSQL: the access log becomes a table partitioned by month on `at` (DESIGN.md: the
fastest-growing table is partitioned by month). SQLite (development) keeps one table.

Why: every read of patient data writes a row, so the log outgrows every other table; monthly
partitions keep each index small, let a time-window report read only its months, and let an
archive move a whole month at once.

What changes in the database (Django's model does not change):
- the primary key is (id, at) and the seal order's uniqueness is (seq, at): PostgreSQL requires
  the partition key in every unique constraint. id still comes from one sequence, and seq
  from the sealer alone, under its lock; the verifier checks the chain's continuity anyway;
- the append-only triggers are on the parent (row triggers reach every partition) and the
  TRUNCATE trigger on every partition too (a statement trigger is not inherited);
- `audit_accesslog_ensure_partitions(months_ahead)` creates the coming months' partitions;
  the sealer calls it on every run (every minute), and a DEFAULT partition catches anything
  outside them, so a write never fails for want of a partition.

Existing rows are copied (the old table is dropped, not truncated: the triggers stay intact
until then).
"""

from django.db import migrations

ENSURE_FUNCTION = r"""
CREATE OR REPLACE FUNCTION audit_accesslog_ensure_partitions(
    months_ahead integer, months_back integer DEFAULT 0
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    month timestamp := this_month - make_interval(months => months_back);
    name text;
    created integer := 0;
BEGIN
    WHILE month <= this_month + make_interval(months => months_ahead) LOOP
        name := format('audit_accesslog_%s', to_char(month, 'YYYY_MM'));
        IF to_regclass(name) IS NULL AND NOT EXISTS (
            SELECT 1 FROM audit_accesslog_default
            WHERE at >= month AT TIME ZONE 'UTC' AND at < (month + interval '1 month') AT TIME ZONE 'UTC'
        ) THEN
            -- (Rows of that month already in DEFAULT would make the new partition fail: they
            -- stay where they are.) Month bounds in UTC, whatever the session's time zone.
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF audit_accesslog FOR VALUES FROM (%L) TO (%L)',
                name, month AT TIME ZONE 'UTC', (month + interval '1 month') AT TIME ZONE 'UTC');
            -- Statement triggers are not inherited: a partition must refuse TRUNCATE itself.
            EXECUTE format(
                'CREATE TRIGGER audit_accesslog_no_truncate BEFORE TRUNCATE ON %I '
                'FOR EACH STATEMENT EXECUTE FUNCTION audit_accesslog_append_only()', name);
            created := created + 1;
        END IF;
        month := month + interval '1 month';
    END LOOP;
    RETURN created;
END;
$$;
"""
MONTHS_AHEAD = 3


def _months_since_first_row(cursor) -> int:
    cursor.execute(
        "SELECT age(date_trunc('month', now() AT TIME ZONE 'UTC'),"
        " date_trunc('month', min(at) AT TIME ZONE 'UTC')) FROM audit_accesslog_unpartitioned"
    )
    (span,) = cursor.fetchone()
    if span is None:
        return 0
    return int(span.days // 28) + 1  # generous: an extra empty month costs nothing


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = current_schema() AND tablename = 'audit_accesslog'"
        )
        index_definitions = cursor.fetchall()
        cursor.execute("ALTER TABLE audit_accesslog RENAME TO audit_accesslog_unpartitioned")
        cursor.execute(
            "CREATE TABLE audit_accesslog (LIKE audit_accesslog_unpartitioned "
            "INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (at)"
        )
        cursor.execute("CREATE TABLE audit_accesslog_default PARTITION OF audit_accesslog DEFAULT")
        cursor.execute(ENSURE_FUNCTION)
        cursor.execute(
            "CREATE TRIGGER audit_accesslog_no_truncate BEFORE TRUNCATE ON audit_accesslog_default"
            " FOR EACH STATEMENT EXECUTE FUNCTION audit_accesslog_append_only()"
        )
        # Months that already hold rows exist before the copy, or their rows land in DEFAULT.
        cursor.execute(
            "SELECT audit_accesslog_ensure_partitions(%s, %s)",
            [MONTHS_AHEAD, _months_since_first_row(cursor)],
        )
        cursor.execute("INSERT INTO audit_accesslog SELECT * FROM audit_accesslog_unpartitioned")
        cursor.execute("SELECT coalesce(max(id), 0) FROM audit_accesslog_unpartitioned")
        (last_id,) = cursor.fetchone()
        cursor.execute("DROP TABLE audit_accesslog_unpartitioned")  # with its identity sequence
        cursor.execute("CREATE SEQUENCE audit_accesslog_id_seq OWNED BY audit_accesslog.id")
        cursor.execute(
            "SELECT setval('audit_accesslog_id_seq', %s, %s)", [max(last_id, 1), last_id > 0]
        )
        cursor.execute(
            "ALTER TABLE audit_accesslog"
            " ALTER COLUMN id SET DEFAULT nextval('audit_accesslog_id_seq')"
        )
        for name, definition in index_definitions:
            if name == "audit_accesslog_pkey":
                cursor.execute(
                    f"ALTER TABLE audit_accesslog ADD CONSTRAINT {name} PRIMARY KEY (id, at)"
                )
            elif definition.startswith("CREATE UNIQUE INDEX"):
                # Django's unique seq: the partition key has to be part of it.
                cursor.execute(
                    f"ALTER TABLE audit_accesslog ADD CONSTRAINT {name} UNIQUE (seq, at)"
                )
            else:
                cursor.execute(definition)  # ON audit_accesslog: now the partitioned table
        cursor.execute(
            "CREATE TRIGGER audit_accesslog_append_only BEFORE UPDATE OR DELETE"
            " ON audit_accesslog FOR EACH ROW EXECUTE FUNCTION audit_accesslog_append_only()"
        )
        cursor.execute(
            "CREATE TRIGGER audit_accesslog_no_truncate BEFORE TRUNCATE ON audit_accesslog"
            " FOR EACH STATEMENT EXECUTE FUNCTION audit_accesslog_append_only()"
        )


class Migration(migrations.Migration):
    # One transaction: a failure leaves the unpartitioned table as it was.
    atomic = True

    dependencies = [("audit", "0004_seal_head_and_append_only_trigger")]

    # Irreversible: going back would mean copying the log out again; restore a backup instead.
    operations = [migrations.RunPython(partition)]
