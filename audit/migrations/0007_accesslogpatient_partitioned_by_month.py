"""PostgreSQL: the list views' per-patient index (AccessLogPatient, 0006) becomes partitioned by
the same UTC months as the log (0005), on `at`, which is its log row's own time. SQLite
(development) keeps one table.

Why: archiving a month detaches the log's partition; the month's index rows must go with it,
or they are left pointing at log rows no longer there (the verifier reports them, and "who
accessed" reads past them). With the same months, archiving detaches both partitions, and the
index still matches the log that remains.

What changes in the database (Django's model does not change), as 0005 did for the log:
- partitions `audit_accesslogpatient_YYYY_MM` and `audit_accesslogpatient_default`;
- the primary key is (id, at) (PostgreSQL requires the partition key in it); id still comes
  from one sequence; the (patient, -at, -log_id) index is on the partitioned table, so every
  partition has it;
- the append-only triggers are on the parent (row triggers reach every partition) and the
  TRUNCATE trigger on every partition too (a statement trigger is not inherited);
- `audit_accesslogpatient_ensure_partitions(months_ahead)`, beside the log's, creates the
  coming months' partitions; audit.services.access_log_ensure_partitions calls both (the
  sealer, every minute).

Existing rows are copied (the old table is dropped, not truncated: the triggers stay intact
until then). Index rows of a month whose log partition was already archived land in their own
month's partition, which can now be detached too (README, "Production").
"""

from django.db import migrations

ENSURE_FUNCTION = r"""
CREATE OR REPLACE FUNCTION audit_accesslogpatient_ensure_partitions(
    months_ahead integer, months_back integer DEFAULT 0
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    month timestamp := this_month - make_interval(months => months_back);
    name text;
    created integer := 0;
BEGIN
    WHILE month <= this_month + make_interval(months => months_ahead) LOOP
        name := format('audit_accesslogpatient_%s', to_char(month, 'YYYY_MM'));
        IF to_regclass(name) IS NULL AND NOT EXISTS (
            SELECT 1 FROM audit_accesslogpatient_default
            WHERE at >= month AT TIME ZONE 'UTC' AND at < (month + interval '1 month') AT TIME ZONE 'UTC'
        ) THEN
            -- (Rows of that month already in DEFAULT would make the new partition fail: they
            -- stay where they are.) Month bounds in UTC, whatever the session's time zone.
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF audit_accesslogpatient FOR VALUES FROM (%L) TO (%L)',
                name, month AT TIME ZONE 'UTC', (month + interval '1 month') AT TIME ZONE 'UTC');
            -- Statement triggers are not inherited: a partition must refuse TRUNCATE itself.
            EXECUTE format(
                'CREATE TRIGGER audit_accesslogpatient_no_truncate BEFORE TRUNCATE ON %I '
                'FOR EACH STATEMENT EXECUTE FUNCTION audit_accesslogpatient_append_only()', name);
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
        "SELECT 12 * (extract(year FROM this) - extract(year FROM first))"
        " + extract(month FROM this) - extract(month FROM first)"
        " FROM (SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AS this,"
        " date_trunc('month', min(at) AT TIME ZONE 'UTC') AS first"
        " FROM audit_accesslogpatient_unpartitioned) AS months"
    )
    (span,) = cursor.fetchone()
    return max(int(span), 0) if span is not None else 0


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        # One copy of the whole index (0006 filled it from the whole log): longer than the
        # application's statement timeout allows a request. Lifted for this transaction only.
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = current_schema() AND tablename = 'audit_accesslogpatient'"
        )
        index_definitions = cursor.fetchall()
        cursor.execute(
            "ALTER TABLE audit_accesslogpatient RENAME TO audit_accesslogpatient_unpartitioned"
        )
        cursor.execute(
            "CREATE TABLE audit_accesslogpatient (LIKE audit_accesslogpatient_unpartitioned "
            "INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (at)"
        )
        cursor.execute(
            "CREATE TABLE audit_accesslogpatient_default PARTITION OF audit_accesslogpatient"
            " DEFAULT"
        )
        cursor.execute(ENSURE_FUNCTION)
        cursor.execute(
            "CREATE TRIGGER audit_accesslogpatient_no_truncate BEFORE TRUNCATE"
            " ON audit_accesslogpatient_default"
            " FOR EACH STATEMENT EXECUTE FUNCTION audit_accesslogpatient_append_only()"
        )
        # Months that already hold rows exist before the copy, or their rows land in DEFAULT.
        cursor.execute(
            "SELECT audit_accesslogpatient_ensure_partitions(%s, %s)",
            [MONTHS_AHEAD, _months_since_first_row(cursor)],
        )
        cursor.execute(
            "INSERT INTO audit_accesslogpatient SELECT * FROM audit_accesslogpatient_unpartitioned"
        )
        cursor.execute("SELECT coalesce(max(id), 0) FROM audit_accesslogpatient_unpartitioned")
        (last_id,) = cursor.fetchone()
        # With its identity sequence and its indexes, whose names the new table takes over.
        cursor.execute("DROP TABLE audit_accesslogpatient_unpartitioned")
        cursor.execute(
            "CREATE SEQUENCE audit_accesslogpatient_id_seq OWNED BY audit_accesslogpatient.id"
        )
        cursor.execute(
            "SELECT setval('audit_accesslogpatient_id_seq', %s, %s)",
            [max(last_id, 1), last_id > 0],
        )
        cursor.execute(
            "ALTER TABLE audit_accesslogpatient"
            " ALTER COLUMN id SET DEFAULT nextval('audit_accesslogpatient_id_seq')"
        )
        for name, definition in index_definitions:
            if name == "audit_accesslogpatient_pkey":
                cursor.execute(
                    f"ALTER TABLE audit_accesslogpatient ADD CONSTRAINT {name} PRIMARY KEY (id, at)"
                )
            else:
                # accesslogpatient_time (patient_id, at DESC, log_id DESC), ON the table's
                # name: now the partitioned table, so every partition gets it.
                cursor.execute(definition)
        cursor.execute(
            "CREATE TRIGGER audit_accesslogpatient_append_only BEFORE UPDATE OR DELETE"
            " ON audit_accesslogpatient"
            " FOR EACH ROW EXECUTE FUNCTION audit_accesslogpatient_append_only()"
        )
        cursor.execute(
            "CREATE TRIGGER audit_accesslogpatient_no_truncate BEFORE TRUNCATE"
            " ON audit_accesslogpatient"
            " FOR EACH STATEMENT EXECUTE FUNCTION audit_accesslogpatient_append_only()"
        )


class Migration(migrations.Migration):
    # One transaction: a failure leaves the unpartitioned table as it was.
    atomic = True

    dependencies = [("audit", "0006_accesslogpatient")]

    # Irreversible, like 0005: going back would mean copying the index out again (and the
    # months already detached would be missing from it); restore a backup instead.
    operations = [migrations.RunPython(partition)]
