"""AccessLogPatient: the list views that showed a patient, found by an index range for "who
accessed this record" (audit/models.py says why)."""

from __future__ import annotations

import importlib

import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import AccessLog, AccessLogPatient
from audit.selectors import access_log_for_patient
from audit.services import access_log_record
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db
Action = AccessLog.Action

backfill_migration = importlib.import_module("audit.migrations.0006_accesslogpatient")


class _Editor:
    """What the migration's function uses of a schema editor (SQLite's cannot be opened inside
    the test's transaction)."""

    connection = connection

    def execute(self, sql: str, params: object = None) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def _shown(row: AccessLog) -> list[int]:
    return sorted(
        AccessLogPatient.objects.filter(log_id=row.pk).values_list("patient_id", flat=True)
    )


def test_a_list_view_indexes_each_patient_it_showed_and_a_single_read_indexes_none(patient):
    others = PatientFactory.create_batch(2)
    listing = access_log_record(
        action=Action.LIST, patient_ids=[patient.pk, *(p.pk for p in others)]
    )
    read = access_log_record(action=Action.READ, patient_ids=[patient.pk])
    assert _shown(listing) == sorted([patient.pk, *(p.pk for p in others)])
    assert {r.at for r in AccessLogPatient.objects.filter(log_id=listing.pk)} == {listing.at}
    assert _shown(read) == []  # found by the log row's own patient_id


def test_who_accessed_finds_a_list_view_through_the_index_only(patient):
    other = PatientFactory.create()
    indexed = access_log_record(action=Action.LIST, patient_ids=[patient.pk, other.pk])
    # A row written past the service has no index rows: the chart's history reads the index,
    # not the JSON list, so it is not found (the migration filled the index for old rows).
    unindexed = AccessLog(action=Action.LIST, surface="page", patient_ids=[patient.pk, other.pk])
    unindexed.save(force_insert=True)
    shown = access_log_for_patient(patient=patient, limit=10)
    assert indexed in shown
    assert unindexed not in shown


def test_the_migration_indexes_the_list_views_already_in_the_log(patient):
    other = PatientFactory.create()
    old_list = AccessLog(action=Action.LIST, surface="page", patient_ids=[patient.pk, other.pk])
    old_list.save(force_insert=True)
    old_read = AccessLog(
        action=Action.READ, surface="page", patient_id=patient.pk, patient_ids=[patient.pk]
    )
    old_read.save(force_insert=True)
    assert _shown(old_list) == []  # written past the service, as before the migration
    backfill_migration.backfill(None, _Editor())
    assert _shown(old_list) == sorted([patient.pk, other.pk])
    assert _shown(old_read) == []
    assert old_list in access_log_for_patient(patient=patient, limit=10)


def test_the_index_is_append_only_like_the_log(patient):
    other = PatientFactory.create()
    access_log_record(action=Action.LIST, patient_ids=[patient.pk, other.pk])
    row = AccessLogPatient.objects.first()
    with pytest.raises(PermissionError):
        AccessLogPatient.objects.filter(pk=row.pk).update(patient_id=other.pk)
    with pytest.raises(PermissionError):
        AccessLogPatient.objects.filter(pk=row.pk).delete()
    with pytest.raises(PermissionError):
        row.save()
    with pytest.raises(PermissionError):
        row.delete()


@pytest.mark.postgres_only
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_accesslogpatient SET patient_id = 0",
        "DELETE FROM audit_accesslogpatient",
        "TRUNCATE audit_accesslogpatient",
    ],
)
def test_postgres_refuses_changing_the_index(patient, sql):
    other = PatientFactory.create()
    access_log_record(action=Action.LIST, patient_ids=[patient.pk, other.pk])
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert AccessLogPatient.objects.filter(patient_id=patient.pk).count() == 1
