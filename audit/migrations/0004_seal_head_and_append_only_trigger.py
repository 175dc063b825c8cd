"""The seal head row, and on PostgreSQL the database's own refusal to change the log.

The trigger refuses DELETE, TRUNCATE and every UPDATE except the sealer's: filling seq,
prev_hash and row_hash of a row that has none yet, with every other column unchanged. It binds
the table owner and superusers too; only someone who can ALTER TABLE ... DISABLE TRIGGER can
get past it, and then the hash chain shows what they did (manage.py verify_access_log).

A later migration that must rewrite log rows (e.g. AlterField with a default on existing rows)
cannot: the log is append-only by design; add new columns as nullable instead.
"""

from django.db import migrations

TRIGGER_SQL = r"""
CREATE OR REPLACE FUNCTION audit_accesslog_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.row_hash IS NULL AND OLD.seq IS NULL AND OLD.prev_hash IS NULL
       AND NEW.row_hash IS NOT NULL AND NEW.seq IS NOT NULL AND NEW.prev_hash IS NOT NULL
       AND (to_jsonb(NEW) - 'seq' - 'prev_hash' - 'row_hash')
           = (to_jsonb(OLD) - 'seq' - 'prev_hash' - 'row_hash')
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_accesslog is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_accesslog_append_only
    BEFORE UPDATE OR DELETE ON audit_accesslog
    FOR EACH ROW EXECUTE FUNCTION audit_accesslog_append_only();

CREATE TRIGGER audit_accesslog_no_truncate
    BEFORE TRUNCATE ON audit_accesslog
    FOR EACH STATEMENT EXECUTE FUNCTION audit_accesslog_append_only();

-- The seal head only moves forward and is never removed.
CREATE OR REPLACE FUNCTION audit_accesslogseal_forward_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.last_seq >= OLD.last_seq THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_accesslogseal only moves forward: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_accesslogseal_forward_only
    BEFORE UPDATE OR DELETE ON audit_accesslogseal
    FOR EACH ROW EXECUTE FUNCTION audit_accesslogseal_forward_only();

CREATE TRIGGER audit_accesslogseal_no_truncate
    BEFORE TRUNCATE ON audit_accesslogseal
    FOR EACH STATEMENT EXECUTE FUNCTION audit_accesslogseal_forward_only();

-- "Who accessed this record" looks a patient up in patient_ids (list views touch many).
CREATE INDEX accesslog_patient_ids_gin ON audit_accesslog USING gin (patient_ids jsonb_path_ops);
"""

REVERSE_SQL = r"""
DROP INDEX IF EXISTS accesslog_patient_ids_gin;
DROP TRIGGER IF EXISTS audit_accesslogseal_no_truncate ON audit_accesslogseal;
DROP TRIGGER IF EXISTS audit_accesslogseal_forward_only ON audit_accesslogseal;
DROP FUNCTION IF EXISTS audit_accesslogseal_forward_only();
DROP TRIGGER IF EXISTS audit_accesslog_no_truncate ON audit_accesslog;
DROP TRIGGER IF EXISTS audit_accesslog_append_only ON audit_accesslog;
DROP FUNCTION IF EXISTS audit_accesslog_append_only();
"""


def create_seal_head(apps, schema_editor):
    AccessLogSeal = apps.get_model("audit", "AccessLogSeal")
    AccessLogSeal.objects.get_or_create(pk=1)


def remove_seal_head(apps, schema_editor):
    pass  # the head is removed with its table when 0003 is reversed


def add_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(TRIGGER_SQL, None)  # None: the SQL holds % signs, not parameters


def remove_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(REVERSE_SQL, None)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_hash_chain_and_report_indexes"),
    ]

    operations = [
        migrations.RunPython(create_seal_head, remove_seal_head),
        migrations.RunPython(add_trigger, remove_trigger),
    ]
