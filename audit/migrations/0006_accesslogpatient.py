"""AccessLogPatient: one row per patient that a log row about several patients showed, so that
"who accessed this record" reads a patient's list views by an index range (see the model).

Existing rows are filled from the log's own patient-id lists. On PostgreSQL the table refuses
UPDATE, DELETE and TRUNCATE like the log (migration 0004).
"""

import django.db.models.deletion
from django.db import migrations, models

BACKFILL = {
    "postgresql": """
        INSERT INTO audit_accesslogpatient (log_id, at, patient_id)
        SELECT log.id, log.at, shown.value::bigint
        FROM audit_accesslog log, jsonb_array_elements_text(log.patient_ids) AS shown(value)
        WHERE log.patient_id IS NULL
    """,
    "sqlite": """
        INSERT INTO audit_accesslogpatient (log_id, at, patient_id)
        SELECT log.id, log.at, shown.value
        FROM audit_accesslog log, json_each(log.patient_ids) AS shown
        WHERE log.patient_id IS NULL
    """,
}

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION audit_accesslogpatient_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_accesslogpatient is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_accesslogpatient_append_only
    BEFORE UPDATE OR DELETE ON audit_accesslogpatient
    FOR EACH ROW EXECUTE FUNCTION audit_accesslogpatient_append_only();

CREATE TRIGGER audit_accesslogpatient_no_truncate
    BEFORE TRUNCATE ON audit_accesslogpatient
    FOR EACH STATEMENT EXECUTE FUNCTION audit_accesslogpatient_append_only();
"""

DROP_APPEND_ONLY = """
DROP TRIGGER IF EXISTS audit_accesslogpatient_no_truncate ON audit_accesslogpatient;
DROP TRIGGER IF EXISTS audit_accesslogpatient_append_only ON audit_accesslogpatient;
DROP FUNCTION IF EXISTS audit_accesslogpatient_append_only();
"""


def backfill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # One INSERT over the whole log: minutes on a large one, longer than the application's
        # statement timeout allows a request. Lifted for this migration's transaction only.
        schema_editor.execute("SET LOCAL statement_timeout = 0")
    schema_editor.execute(BACKFILL[schema_editor.connection.vendor])


def append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY, None)


def drop_append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_APPEND_ONLY, None)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0005_accesslog_partitioned_by_month"),
        ("patients", "0011_data_version"),
    ]

    operations = [
        migrations.CreateModel(
            name="AccessLogPatient",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("log_id", models.BigIntegerField()),
                ("at", models.DateTimeField()),
                (
                    "patient",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="patients.patient",
                    ),
                ),
            ],
            options={
                "base_manager_name": "objects",
                "indexes": [
                    models.Index(fields=["patient", "-at", "-log_id"], name="accesslogpatient_time")
                ],
            },
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.RunPython(append_only, drop_append_only),
    ]
