from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import AccessLog
from audit.services import access_log_record
from audit.tests.conftest import tamper

pytestmark = pytest.mark.django_db


def _write(n: int) -> list[AccessLog]:
    return [access_log_record(action=AccessLog.Action.READ, object_id=i) for i in range(n)]


def test_seal_access_log_reports_rows_sealed():
    _write(3)
    out = StringIO()
    call_command("seal_access_log", stdout=out)
    assert out.getvalue().strip() == "sealed 3 access-log rows"


def test_verify_access_log_prints_one_line_and_exits_zero_when_intact():
    _write(5)
    out = StringIO()
    call_command("verify_access_log", stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("access log intact: 5 rows checked, head seq 5, head hash ")


def test_verify_access_log_exits_one_and_names_the_first_altered_row():
    rows = _write(5)
    call_command("seal_access_log", stdout=StringIO())
    tamper("UPDATE audit_accesslog SET action = 'list' WHERE id = %s", [rows[3].pk])
    out = StringIO()
    with pytest.raises(CommandError) as error:
        call_command("verify_access_log", stdout=out)
    assert error.value.returncode == 1
    summary = out.getvalue().strip()
    assert summary == (
        f"access log TAMPERED: 3 rows checked, first problem: seq 4 (id {rows[3].pk}) altered: "
        "its hash does not match its fields"
    )
    print(f"\nFIGURE 13 (verifier): {summary}")


def test_verify_access_log_exits_one_and_names_a_list_view_whose_index_rows_were_removed():
    _write(2)
    listing = access_log_record(action=AccessLog.Action.LIST, patient_ids=[7, 12])
    call_command("seal_access_log", stdout=StringIO())
    tamper("DELETE FROM audit_accesslogpatient WHERE log_id = %s", [listing.pk])
    out = StringIO()
    with pytest.raises(CommandError) as error:
        call_command("verify_access_log", stdout=out)
    assert error.value.returncode == 1
    assert out.getvalue().strip() == (
        f"access log TAMPERED: 3 rows checked, first problem: seq 3 (id {listing.pk}) "
        "list-view index does not match its patient list: lacks patient 7; lacks patient 12"
    )


def test_verify_access_log_says_the_list_view_index_was_checked():
    access_log_record(action=AccessLog.Action.LIST, patient_ids=[7, 12])
    out = StringIO()
    call_command("verify_access_log", stdout=out)
    assert out.getvalue().strip().endswith("; list-view index: 2 rows match the log")
