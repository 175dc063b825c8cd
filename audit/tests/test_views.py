from __future__ import annotations

import csv
import datetime as dt
import io
import time

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AccessLog
from audit.services import access_log_record
from oncoplanner import access_context
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db
Action = AccessLog.Action
REPORT = reverse("audit:report")
EXPORT = reverse("audit:export")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def _log(user, *, action=Action.READ, surface="page", patients=(), outcome="success", **extra):
    with access_context.acting_as(user, surface=surface):
        return access_log_record(
            action=action, patient_ids=[p.pk for p in patients], outcome=outcome, **extra
        )


def _listed(response) -> list[AccessLog]:
    return list(response.context["page"].object_list)


def _report_rows():
    return AccessLog.objects.filter(object_type="AccessLog")


def test_report_is_404_for_clinicians_and_patients(client, treating_clinician, patient):
    client.force_login(treating_clinician)
    assert client.get(REPORT).status_code == 404
    assert client.get(EXPORT).status_code == 404
    assert not _report_rows().exists()


def test_report_sends_anonymous_users_to_login(client, db):
    response = client.get(REPORT)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_report_lists_rows_newest_first_and_logs_its_own_view(
    admin_client, admin_user, patient, treating_clinician
):
    first = _log(treating_clinician, patients=[patient])
    second = _log(treating_clinician, action=Action.UPDATE, patients=[patient])
    response = admin_client.get(REPORT, {"action": "read"})
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    assert _listed(response) == [first]
    admin_client.get(REPORT)
    listed = _listed(admin_client.get(REPORT))
    assert listed[0].object_type == "AccessLog"  # the previous view of the report itself
    assert second in listed
    view = _report_rows().order_by("pk").first()
    assert (view.action, view.user_id, view.detail) == (
        Action.LIST,
        admin_user.pk,
        {"filters": {"action": "read"}, "page": 1},
    )


def test_report_filters_by_user_patient_surface_and_outcome(
    admin_client, patient, treating_clinician, other_clinician
):
    other_patient = PatientFactory.create()
    mine = _log(treating_clinician, patients=[patient], surface="api")
    listing = _log(treating_clinician, action=Action.LIST, patients=[other_patient, patient])
    _log(treating_clinician, patients=[other_patient])
    denied = _log(other_clinician, patients=[], outcome="denied", surface="graphql")

    def rows(**params):
        return _listed(admin_client.get(REPORT, params))

    reads = {r for r in rows(patient=patient.pk) if r.action in {Action.READ, Action.LIST}}
    assert reads == {mine, listing}  # list views that showed the patient count too
    # A complaint names the MRN, not our id: the MRN finds the same rows, in any case.
    by_mrn = {
        r for r in rows(patient=patient.mrn.lower()) if r.action in {Action.READ, Action.LIST}
    }
    assert by_mrn == reads
    assert rows(surface="api") == [mine]
    assert rows(outcome="denied") == [denied]
    assert rows(user=other_clinician.username, action="read") == [denied]


def test_report_filters_by_date_range_inclusive(admin_client, treating_clinician):
    rows = {}
    for day in (1, 2, 3):
        with time_machine.travel(dt.datetime(2026, 3, day, 12, 0, tzinfo=dt.UTC), tick=False):
            rows[day] = _log(treating_clinician)
    response = admin_client.get(
        REPORT, {"date_from": "2026-03-02", "date_to": "2026-03-03", "action": "read"}
    )
    assert _listed(response) == [rows[3], rows[2]]


def test_report_sorts_by_declared_keys(
    admin_client, treating_clinician, other_clinician, admin_user
):
    a = _log(treating_clinician, action=Action.CREATE)
    b = _log(other_clinician, action=Action.CREATE)
    expected = sorted([a, b], key=lambda r: r.username)
    assert _listed(admin_client.get(REPORT, {"action": "create", "sort": "user"})) == expected
    assert (
        _listed(admin_client.get(REPORT, {"action": "create", "sort": "-user"})) == expected[::-1]
    )
    assert _listed(admin_client.get(REPORT, {"action": "create", "sort": "at"})) == [a, b]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"patient__user__password__startswith": "a"},
            "Unknown filter: 'patient__user__password__startswith'",
        ),
        ({"colour": "red"}, "Unknown filter: 'colour'"),
        ({"sort": "detail"}, "Unknown sort key: 'detail'"),
        ({"sort": "user__password"}, "Unknown sort key: 'user__password'"),
        ({"action": "truncate"}, "Invalid filter: action:"),
        ({"patient": "1 OR 1=1"}, "Invalid filter: patient: No patient has the MRN"),
        ({"patient": "0"}, "Invalid filter: patient:"),
        ({"date_from": "2026-03-05", "date_to": "2026-03-01"}, "Invalid filter: date_to:"),
    ],
)
def test_report_answers_400_naming_the_bad_key(admin_client, params, message):
    for url in (REPORT, EXPORT):
        response = admin_client.get(url, params)
        assert response.status_code == 400
        assert response["Content-Type"].startswith("text/plain")
        assert response.content.decode().startswith(message)
    assert not _report_rows().exists()


def test_report_paginates_by_50(admin_client, treating_clinician):
    AccessLog.objects.bulk_create(
        AccessLog(action=Action.READ, surface="page", username=treating_clinician.username)
        for _ in range(120)
    )
    response = admin_client.get(REPORT, {"page": 3, "action": "read"})
    page = response.context["page"]
    assert (page.number, page.paginator.num_pages, len(page.object_list)) == (3, 3, 20)


def test_export_csv_neutralises_formulas_and_logs_the_export(admin_client, admin_user):
    for name in ('=HYPERLINK("http://evil")', "+1+1", "-2", "@SUM(A1)", "\tx", "\rx", "plain"):
        _log(None, action=Action.LOGIN_FAILED, outcome="denied", username=name)
    response = admin_client.get(EXPORT, {"action": "login_failed", "sort": "at"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="access-log-')
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][:4] == ["time", "username", "role", "action"]
    assert [r[1] for r in rows[1:]] == [
        "'=HYPERLINK(\"http://evil\")", "'+1+1", "'-2", "'@SUM(A1)", "'\tx", "'\rx", "plain"
    ]  # fmt: skip
    export = AccessLog.objects.get(action=Action.EXPORT)
    assert (export.user_id, export.surface, export.object_type) == (
        admin_user.pk,
        "export",
        "AccessLog",
    )
    assert export.detail["filters"] == {"action": "login_failed", "sort": "at"}


def test_report_query_count_is_flat_over_a_10k_row_window(
    admin_client, treating_clinician, patient
):
    def render(params) -> tuple[int, float]:
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = admin_client.get(REPORT, params)
            elapsed = time.perf_counter() - started
        assert response.status_code == 200
        return len(ctx.captured_queries), elapsed

    params = {"action": "read", "date_from": "2020-01-01", "sort": "-at"}
    _log(treating_clinician, patients=[patient])
    render(params)  # warm caches (content types, session)
    few, _ = render(params)
    AccessLog.objects.bulk_create(
        AccessLog(
            action=Action.READ,
            surface="page",
            username=treating_clinician.username,
            user_role="clinician",
            patient_ids=[patient.pk],
            patient_id=patient.pk,
            object_type="Patient",
            object_id=str(patient.pk),
        )
        for _ in range(10_000)
    )
    many, elapsed = render(params)
    patient_many, patient_elapsed = render({**params, "patient": patient.pk})
    assert many == few == patient_many
    print(
        f"\nFIGURE 14 (report): 10,001-row window, {many} queries per page, "
        f"{elapsed:.3f} s (patient filter {patient_elapsed:.3f} s) on {connection.vendor}"
    )


def test_report_form_lists_newest_first_first_so_an_unchanged_filter_keeps_the_order():
    from audit.forms import AccessLogFilterForm
    from audit.selectors import SORTS

    choices = AccessLogFilterForm().fields["sort"].choices
    assert choices[0] == ("-at", "Newest first")
    assert ("at", "Oldest first") in choices
    assert {key for key, _ in choices} == set(SORTS)
