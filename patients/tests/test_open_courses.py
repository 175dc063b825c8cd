"""Two open courses at once (allowed, with a confirmed reason): the home page's "due this week",
the patient list and the dashboard show the cycle due first across every open course, and name
the other open course beside it instead of swapping it in or hiding it.

The reviewer's case: dose-dense AC-T, cycle 1 due today (ANC low: Hold), and CHOP started two
days later whose cycles 1-5 were cancelled, so its next open cycle is cycle 6, months away. The
old code took the latest-started course and showed "CHOP cycle 6/6" with March's date under
"Cycles due this week", and judged readiness for CHOP.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from patients.dashboard import _week_end, dashboard_for, patient_list_page
from patients.services import patient_create
from patients.tests.dashboard_world import (
    anc_test,
    course_with_cycles,
    lab_history,
    regimen_with_anc_rules,
)
from patients.tests.factories import PatientFactory
from treatments.models import ChemoCycle, Course, DoseBasis, Regimen
from treatments.templatetags.cycle_days import closed_day_badge
from treatments.tests.factories import ChemoCycleFactory, CourseFactory, regimen_create

pytestmark = pytest.mark.django_db

ACT = "Dose-dense AC-T (test)"
CHOP = "CHOP (test)"


def _patient(team, *, family_name, mrn):
    fields = PatientFactory.build()
    return patient_create(
        created_by=None,
        care_team=team,
        mrn=mrn,
        given_name="Sofia",
        family_name=family_name,
        date_of_birth=dt.date(1971, 3, 15),
        sex="female",
        primary_diagnosis="Invasive ductal carcinoma of breast",
        phone=fields.phone[:30],
    )


def _act_due_today(patient, *, anc=None, name=ACT):
    """AC-T started today: cycle 1 planned today (and 7 more every 14 days); ANC 0.8: Hold."""
    anc = anc or anc_test()
    regimen = regimen_with_anc_rules(anc=anc, cycles=8)
    Regimen.objects.filter(pk=regimen.pk).update(name=name)
    regimen.refresh_from_db()
    course = course_with_cycles(
        patient, regimen=regimen, given=0, total=8, start=timezone.localdate()
    )
    lab_history(patient, test=anc, count=2, latest_value="0.8")
    return course


def _chop(patient, *, first_open: int, start_in_days: int = 2, name: str = CHOP):
    """CHOP (no pre-cycle rules) planned to start in `start_in_days`, every 21 days x 6; the
    cycles before `first_open` cancelled (the reviewer cancelled 1-5)."""
    regimen = regimen_create(
        name=name, phases=((21, 6, (("Cyclophosphamide", "750", DoseBasis.MG_M2),)),)
    )
    start = timezone.localdate() + dt.timedelta(days=start_in_days)
    course = CourseFactory.create(
        patient=patient, regimen=regimen, start_date=start, status=Course.Status.PLANNED
    )
    for number in range(1, 7):
        ChemoCycleFactory.create(
            course=course,
            number=number,
            planned_start=start + dt.timedelta(days=21 * (number - 1)),
            status=ChemoCycle.Status.CANCELLED
            if number < first_open
            else ChemoCycle.Status.PLANNED,
            reason="Entered in error (duplicate course)" if number < first_open else "",
        )
    return course


@pytest.fixture
def sofia(care_team):
    return _patient(care_team, family_name="Twocourses", mrn="REVIEW-0001")


def _row(listing, patient):
    (row,) = [r for r in listing.rows if r.patient.pk == patient.pk]
    return row


def test_home_due_this_week_shows_the_course_due_first_not_the_latest_started(
    client, login, sofia, treating_clinician
):
    act = _act_due_today(sofia)
    chop = _chop(sofia, first_open=6)
    far = chop.cycles.get(number=6).planned_start
    login(client, treating_clinician)

    response = client.get(reverse("home"))

    row = _row(response.context["due"], sofia)
    assert row.course.pk == act.pk
    assert (row.course.next_number, row.course.next_start) == (1, timezone.localdate())
    assert row.badge.label == "Hold"  # AC-T's rules on ANC 0.8, not CHOP's (it has none)
    assert [c.pk for c in row.other_courses] == [chop.pk]
    html = response.content.decode()
    section = html[html.index('id="home-due"') :]
    assert f"{ACT}\n" in section
    assert "cycle 1/8" in section
    # CHOP's March cycle is named only as another open course, never as the cycle due.
    assert "cycle 6/6" not in section.replace("next cycle 6/6", "")
    assert f"Also open: {CHOP} · next cycle 6/6 {far:%a %-d %b %Y}" in section
    assert "also due this week" not in section


def test_home_never_lists_a_patient_whose_open_cycles_are_all_after_this_week(
    client, login, care_team, treating_clinician
):
    today = timezone.localdate()
    later = _patient(care_team, family_name="Laterweek", mrn="LATERWEEK-1")
    _chop(later, first_open=1, start_in_days=(_week_end(today) - today).days + 1)
    _chop(later, first_open=6, start_in_days=0, name="R-CHOP (test)")
    login(client, treating_clinician)
    response = client.get(reverse("home"))
    assert response.context["due"].rows == []
    assert "LATERWEEK-1" not in response.content.decode()


def test_patient_list_shows_the_earliest_due_cycle_and_names_the_other_open_course(
    client, login, sofia, treating_clinician
):
    act = _act_due_today(sofia)
    chop = _chop(sofia, first_open=1, start_in_days=1)
    login(client, treating_clinician)

    for filter_ in ("mine", "due", "attention"):
        row = _row(
            client.get(reverse("patients:patient_list"), {"filter": filter_}).context["listing"],
            sofia,
        )
        assert row.course.pk == act.pk, filter_
        assert row.badge.label == "Hold", filter_
        assert [c.pk for c in row.other_courses] == [chop.pk], filter_

    html = client.get(reverse("patients:patient_list")).content.decode()
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    # Tomorrow may be a weekend or a holiday: its badge then stands after the date.
    also = f"Also open: {CHOP} · next cycle 1/6 {tomorrow:%a %-d %b %Y}{closed_day_badge(tomorrow)}"
    assert also in html
    due_too = tomorrow <= _week_end(timezone.localdate())
    assert (f'{also} <span class="badge warn">also due this week</span>' in html) is due_too


def test_patient_list_keeps_the_course_order_when_the_second_course_is_due_first(
    client, login, sofia, treating_clinician
):
    # The other way round: the course started later is the one due first.
    act = _act_due_today(sofia)
    ChemoCycle.objects.filter(course=act).update(
        planned_start=timezone.localdate() + dt.timedelta(days=30)
    )
    chop = _chop(sofia, first_open=1, start_in_days=0)
    listing = patient_list_page(user=treating_clinician)
    row = _row(listing, sofia)
    assert row.course.pk == chop.pk
    assert [c.pk for c in row.other_courses] == [act.pk]


def test_dashboard_judges_readiness_for_the_next_due_cycle_across_open_courses(
    client, login, sofia, treating_clinician
):
    act = _act_due_today(sofia)
    chop = _chop(sofia, first_open=6)
    board = dashboard_for(user=treating_clinician, patient_id=sofia.pk)
    assert board.course.pk == act.pk
    assert (board.next_cycle.course_id, board.next_cycle.number) == (act.pk, 1)
    assert board.badge.label == "Hold"
    assert [c.pk for c in board.other_open_courses] == [chop.pk]
    assert [c.pk for c in board.other_courses] == [chop.pk]

    login(client, treating_clinician)
    html = client.get(reverse("patients:patient_detail", args=[sofia.pk])).content.decode()
    # The main panel is AC-T's; CHOP's readiness follows it, under its own name.
    readiness = html[html.index('id="readiness"') : html.index('id="other-course-readiness"')]
    today = timezone.localdate()
    planned = f"{today:%a %-d %b %Y}{closed_day_badge(today)}"  # a weekend's badge, if one
    assert f"Readiness for the next cycle: {ACT} v1</h2>" in readiness
    assert f"Cycle 1 planned {planned} · {ACT} v1 pre-cycle" in readiness
    assert CHOP not in readiness
    notice = html[html.index('id="open-courses"') :]
    notice = notice[: notice.index("</p>")]
    assert "2 open courses" in notice
    today = timezone.localdate()
    assert (
        f"The timeline below is for {ACT} v1, whose cycle 1 ({today:%a %-d %b %Y}) is due first;"
        " readiness is shown for every open course with a cycle to come." in notice
    )
    far = chop.cycles.get(number=6).planned_start
    assert f"{CHOP} v1</a> (planned; next cycle 6 on {far:%a %-d %b %Y})" in notice
    assert reverse("treatments:course_detail", args=[sofia.pk, chop.pk]) in notice


def test_dashboard_with_one_open_course_has_no_open_courses_notice(
    client, login, sofia, treating_clinician
):
    _act_due_today(sofia)
    login(client, treating_clinician)
    html = client.get(reverse("patients:patient_detail", args=[sofia.pk])).content.decode()
    assert 'id="open-courses"' not in html


def _count(client, url, params=None) -> int:
    caches["charts"].clear()  # the dashboard's chart rendered, not kept from the last request
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url, params or {}).status_code == 200
    return len(ctx.captured_queries)


def test_a_second_open_course_costs_no_query_on_the_dashboard_list_and_home(
    client, login, care_team, treating_clinician
):
    anc = anc_test()
    one = _patient(care_team, family_name="Onecourse", mrn="ONE-0001")
    two = _patient(care_team, family_name="Twocourse", mrn="TWO-0001")
    _act_due_today(one, anc=anc)
    _act_due_today(two, anc=anc, name="Dose-dense AC-T (second)")
    login(client, treating_clinician)
    detail = reverse("patients:patient_detail", args=[one.pk])
    _count(client, detail)  # warm caches
    pages = [
        (detail, None),
        (reverse("patients:patient_list"), {"filter": "attention"}),
        (reverse("home"), None),
    ]
    before = [_count(client, url, params) for url, params in pages]
    _chop(one, first_open=1, start_in_days=1)
    _chop(two, first_open=6, name="R-CHOP (test)")
    after = [_count(client, url, params) for url, params in pages]
    assert before == after


def test_readiness_evaluates_the_due_course_when_a_course_has_nothing_open(
    sofia, treating_clinician
):
    # An open course with every cycle given (nothing left) never outranks one with a cycle due.
    act = _act_due_today(sofia)
    # Started after AC-T (the old code's pick), all six cycles cancelled: nothing open.
    done = _chop(sofia, first_open=7, start_in_days=1)
    Course.objects.filter(pk=done.pk).update(status=Course.Status.ACTIVE)
    row = _row(patient_list_page(user=treating_clinician), sofia)
    assert row.course.pk == act.pk
    assert row.readiness is not None
