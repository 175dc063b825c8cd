"""Routine patient reports in the inbox: the portal's "within one working day" kept.

A reviewer found that a routine (not urgent) symptom report was promised a look "within one
working day" (templates/portal/symptoms.html) but reached only the chart: not the clinicians'
inbox, and nowhere could a clinician mark it reviewed. The inbox now lists them in a section of
their own below the urgent queue, oldest first, with their age, the patient's words and the
existing review action (labs:symptom_report_review).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessLog
from labs import selectors
from labs.selectors import one_working_day_after
from oncoplanner.accounts.tests.factories import sign_in as _login
from patients.models import SymptomReport
from patients.tests.factories import patient_through_service

pytestmark = pytest.mark.django_db

LONDON = zoneinfo.ZoneInfo("Europe/London")  # settings.TIME_ZONE
# Wednesday 22 April 2026, 14:00 in the clinic.
WEDNESDAY = dt.datetime(2026, 4, 22, 14, 0, tzinfo=LONDON)
HX = {"HX-Request": "true"}


@pytest.fixture
def reporter(care_team):
    """A patient of the team, with a name no Faker patient has."""
    return patient_through_service(care_team, family_name="Routinewell", phone="07700 900456")


def _report(patient, user, *, at: dt.datetime, **fields) -> SymptomReport:
    fields = {"symptom": "Feeling sick (nausea)", "severity": 1, "description": "", **fields}
    report = SymptomReport.objects.create(patient=patient, reported_by=user, **fields)
    SymptomReport.objects.filter(pk=report.pk).update(reported_at=at)
    report.refresh_from_db()
    return report


def _routine_section(content: str) -> str:
    return content.split('id="routine-reports"', 1)[1].split("</section>", 1)[0]


def _item(content: str, report: SymptomReport) -> str:
    return content.split(f'id="inbox-symptom-{report.pk}"', 1)[1].split("</li>", 1)[0]


def _flat(html: str) -> str:
    return " ".join(html.split())


# --- One working day --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reported", "due"),
    [
        # A weekday report: the same time on the next day.
        (dt.datetime(2026, 4, 21, 10, 0), dt.datetime(2026, 4, 22, 10, 0)),
        # Friday afternoon: Monday afternoon, not Saturday.
        (dt.datetime(2026, 4, 24, 15, 0), dt.datetime(2026, 4, 27, 15, 0)),
        # At the weekend: the clock starts on Monday morning, due by the end of Monday.
        (dt.datetime(2026, 4, 25, 9, 30), dt.datetime(2026, 4, 28, 0, 0)),
        (dt.datetime(2026, 4, 26, 23, 0), dt.datetime(2026, 4, 28, 0, 0)),
    ],
)
def test_one_working_day_skips_the_weekend(reported, due):
    result = one_working_day_after(reported.replace(tzinfo=LONDON))
    assert timezone.localtime(result).replace(tzinfo=None) == due


# --- The inbox section ------------------------------------------------------------------------


@time_machine.travel(WEDNESDAY, tick=False)
def test_routine_reports_listed_below_the_urgent_queue_oldest_first_with_words_and_age(
    client, treating_clinician, reporter
):
    newer = _report(
        reporter,
        treating_clinician,
        at=WEDNESDAY - dt.timedelta(hours=5),
        symptom="Tiredness",
        description="Tired in the afternoons since cycle 2 <b>",
    )
    older = _report(
        reporter,
        treating_clinician,
        at=WEDNESDAY - dt.timedelta(hours=26),
        symptom="Feeling sick (nausea)",
        description="Queasy after breakfast, eating less",
    )
    urgent = _report(reporter, treating_clinician, at=WEDNESDAY - dt.timedelta(hours=1), severity=4)
    _login(client, treating_clinician)

    content = client.get(reverse("labs:inbox")).content.decode()

    assert "Patient reports, routine: review within one working day" in content
    routine = _routine_section(content)
    # The urgent report stays in the urgent queue above, not here.
    assert f'id="inbox-symptom-{urgent.pk}"' not in routine
    assert content.index(f'id="inbox-symptom-{urgent.pk}"') < content.index('id="routine-reports"')
    # Oldest first: the one closest to breaking the promise on top.
    assert routine.index(f'id="inbox-symptom-{older.pk}"') < routine.index(
        f'id="inbox-symptom-{newer.pk}"'
    )
    old_item = _flat(_item(content, older))
    assert "reported 26 h ago" in old_item
    assert "Queasy after breakfast, eating less" in old_item  # the patient's words
    assert "Routine report" in old_item
    assert "Why urgent" not in old_item
    assert 'href="tel:07700900456"' in old_item  # the number to call back
    new_item = _flat(_item(content, newer))
    assert "reported 5 h ago" in new_item
    assert "&lt;b&gt;" in new_item  # escaped like every text
    # The existing review flow, for each of them.
    for report in (older, newer):
        url = reverse("labs:symptom_report_review", args=[reporter.pk, report.pk])
        assert f'action="{url}"' in _item(content, report)
    assert "Mark reviewed" in new_item


@time_machine.travel(WEDNESDAY, tick=False)
def test_routine_report_past_one_working_day_is_highlighted(client, treating_clinician, reporter):
    late = _report(reporter, treating_clinician, at=WEDNESDAY - dt.timedelta(hours=26))
    on_time = _report(reporter, treating_clinician, at=WEDNESDAY - dt.timedelta(hours=5))
    _login(client, treating_clinician)

    content = client.get(reverse("labs:inbox")).content.decode()

    late_item = _flat(_item(content, late))
    assert '<strong class="waiting">reported 26 h ago</strong>' in late_item
    assert '<span class="badge bad">past one working day</span>' in late_item
    assert "(due Wed 22 Apr 12:00)" in late_item
    on_time_item = _flat(_item(content, on_time))
    assert "past one working day" not in on_time_item
    assert 'class="waiting"' not in on_time_item
    assert "review by Thu 23 Apr 09:00" in on_time_item
    heading = _routine_section(content).split("</h2>", 1)[0]
    assert "1 past one working day" in heading


@time_machine.travel(dt.datetime(2026, 4, 27, 9, 0, tzinfo=LONDON), tick=False)
def test_friday_afternoon_report_is_not_late_on_monday_morning(
    client, treating_clinician, reporter
):
    friday = _report(
        reporter, treating_clinician, at=dt.datetime(2026, 4, 24, 15, 0, tzinfo=LONDON)
    )
    _login(client, treating_clinician)
    item = _flat(_item(client.get(reverse("labs:inbox")).content.decode(), friday))
    assert "reported 66 h ago" in item
    assert "past one working day" not in item
    assert "review by Mon 27 Apr 15:00" in item


def test_reviewing_a_routine_report_from_the_inbox_takes_it_off_the_list(
    client, treating_clinician, reporter
):
    report = _report(reporter, treating_clinician, at=timezone.now() - dt.timedelta(hours=3))
    _login(client, treating_clinician)
    url = reverse("labs:symptom_report_review", args=[reporter.pk, report.pk])

    response = client.post(url, {"note": "Called: antiemetic advice given"}, headers=HX)

    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b"Reviewed" in response.content
    report.refresh_from_db()
    assert report.reviewed_by == treating_clinician
    assert report.review_note == "Called: antiemetic advice given"
    assert AccessLog.objects.filter(
        action="update", object_type="SymptomReport", object_id=str(report.pk)
    ).exists()
    content = client.get(reverse("labs:inbox")).content.decode()
    assert f'id="inbox-symptom-{report.pk}"' not in content
    assert "No routine reports waiting." in content


def test_routine_report_review_needs_a_note_and_shows_the_error_on_the_item(
    client, treating_clinician, reporter
):
    report = _report(reporter, treating_clinician, at=timezone.now() - dt.timedelta(hours=3))
    _login(client, treating_clinician)
    url = reverse("labs:symptom_report_review", args=[reporter.pk, report.pk])

    response = client.post(url, {"note": " "})  # without JavaScript: the whole inbox again

    assert response.status_code == 400
    item = _item(response.content.decode(), report)
    assert 'aria-invalid="true"' in item
    report.refresh_from_db()
    assert report.reviewed_at is None


def test_routine_reports_of_other_patients_stay_hidden(
    client, treating_clinician, other_clinician, reporter, admin_user
):
    _report(
        reporter,
        admin_user,
        at=timezone.now() - dt.timedelta(hours=30),
        description="MARKER-ROUTINE-QWERTY",
    )
    _login(client, other_clinician)
    content = client.get(reverse("labs:inbox")).content.decode()
    assert "MARKER-ROUTINE-QWERTY" not in content
    assert "Routinewell" not in content
    assert "No routine reports waiting." in content
    # And the review action answers 404 to an outsider, writing nothing.
    report = SymptomReport.objects.get(description="MARKER-ROUTINE-QWERTY")
    url = reverse("labs:symptom_report_review", args=[reporter.pk, report.pk])
    assert client.post(url, {"note": "x"}).status_code == 404
    report.refresh_from_db()
    assert report.reviewed_at is None


def test_routine_reports_are_logged_as_read_and_reviewed_ones_leave(
    client, treating_clinician, reporter
):
    waiting = _report(reporter, treating_clinician, at=timezone.now() - dt.timedelta(hours=2))
    done = _report(reporter, treating_clinician, at=timezone.now() - dt.timedelta(hours=4))
    SymptomReport.objects.filter(pk=done.pk).update(
        reviewed_at=timezone.now(), reviewed_by=treating_clinician, review_note="ok"
    )
    _login(client, treating_clinician)
    before = AccessLog.objects.count()

    content = client.get(reverse("labs:inbox")).content.decode()

    assert f'id="inbox-symptom-{waiting.pk}"' in content
    assert f'id="inbox-symptom-{done.pk}"' not in content
    rows = list(AccessLog.objects.order_by("pk")[before:])
    assert [(r.action, r.patient_ids) for r in rows] == [("list", [reporter.pk])]


def test_routine_section_lists_at_most_the_limit_and_says_more_wait(
    client, treating_clinician, reporter, monkeypatch
):
    monkeypatch.setattr(selectors, "ROUTINE_LIMIT", 2)
    now = timezone.now()
    reports = [
        _report(reporter, treating_clinician, at=now - dt.timedelta(hours=h)) for h in (9, 8, 7)
    ]
    _login(client, treating_clinician)
    routine = _routine_section(client.get(reverse("labs:inbox")).content.decode())
    assert f'id="inbox-symptom-{reports[0].pk}"' in routine
    assert f'id="inbox-symptom-{reports[1].pk}"' in routine
    assert f'id="inbox-symptom-{reports[2].pk}"' not in routine
    assert "more are waiting" in routine


def test_inbox_query_count_stays_flat_with_routine_reports(client, treating_clinician, care_team):
    _login(client, treating_clinician)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("labs:inbox")).status_code == 200
        return len(ctx.captured_queries)

    # From two patients: an inbox of one is logged against that patient alone, a longer one
    # also indexes each patient it showed (one insert, however many).
    for phone in ("07700 900100", "07700 900101"):
        first = patient_through_service(care_team, phone=phone)
        _report(first, treating_clinician, at=timezone.now() - dt.timedelta(hours=30))
    count()
    before = count()
    for n in range(5):
        other = patient_through_service(care_team, phone=f"07700 90020{n}")
        _report(other, treating_clinician, at=timezone.now() - dt.timedelta(hours=n + 1))
        _report(other, treating_clinician, at=timezone.now() - dt.timedelta(hours=40))
    assert count() == before
