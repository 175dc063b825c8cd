from __future__ import annotations

import pytest

from audit.models import AccessLog
from audit.services import access_log_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def row() -> AccessLog:
    return access_log_record(action=AccessLog.Action.READ, object_type="Patient", object_id=1)


def test_accesslog_queryset_update_is_refused(row):
    with pytest.raises(PermissionError, match="append-only"):
        AccessLog.objects.filter(pk=row.pk).update(username="someone-else")


def test_accesslog_queryset_delete_is_refused(row):
    with pytest.raises(PermissionError, match="append-only"):
        AccessLog.objects.all().delete()


def test_accesslog_instance_save_and_delete_are_refused(row):
    row.username = "someone-else"
    with pytest.raises(PermissionError):
        row.save()
    with pytest.raises(PermissionError):
        row.delete()
    assert AccessLog.objects.get(pk=row.pk).username == ""


def test_accesslog_base_manager_is_append_only_too(row):
    with pytest.raises(PermissionError):
        AccessLog._base_manager.filter(pk=row.pk).update(action="delete")


def test_seal_row_fills_only_unsealed_rows(row):
    assert AccessLog.objects.seal_row(row.pk, seq=1, prev_hash="0" * 64, row_hash="a" * 64) == 1
    # A sealed row cannot be re-sealed over (e.g. after someone edited it).
    assert AccessLog.objects.seal_row(row.pk, seq=9, prev_hash="0" * 64, row_hash="b" * 64) == 0
    row.refresh_from_db()
    assert (row.seq, row.row_hash) == (1, "a" * 64)
