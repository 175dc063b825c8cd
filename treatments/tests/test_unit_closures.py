"""Days the day unit records as closed itself (a staff training day, a refurbishment week, a
local holiday), beside the national public holidays: every door marks a cycle planned on one,
the prescriber is told when a course or a delay makes one, and the patient is told the unit is
closed without the staff's reason. Administrators keep the closures in Django admin."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import UserFactory
from patients.tests.factories import BodyMeasurementFactory, patient_through_service
from treatments.models import ChemoCycle, Course, UnitClosure
from treatments.schedule import closed_day, closed_days_warning, unit_closure
from treatments.services import course_start

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_1_march_2026")]

MONDAY = dt.date(2026, 3, 2)  # an mFOLFOX6 course from here: cycle 3 on Mon 30 Mar 2026
CYCLE_3 = dt.date(2026, 3, 30)
TRAINING = "Staff training day"
TABLE = "treatments_unitclosure"


@pytest.fixture
def as_admin(client, login, admin_user):
    return login(client, admin_user)


def _closure(first: dt.date, last: dt.date | None = None, reason: str = TRAINING) -> UnitClosure:
    closure = UnitClosure(first_day=first, last_day=last or first, reason=reason)
    closure.full_clean()
    closure.save()
    return closure


def _course(patient, regimen, clinician, start: dt.date = MONDAY) -> Course:
    return course_start(
        patient=patient, regimen=regimen, start_date=start, intent="adjuvant", created_by=clinician
    )


def _course_url(course: Course) -> str:
    return reverse("treatments:course_detail", args=[course.patient_id, course.pk])


def _warnings(response) -> list[str]:
    return [m.message for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]


def _closure_queries(ctx: CaptureQueriesContext) -> int:
    return sum(TABLE in q["sql"] for q in ctx.captured_queries)


# --- The model --------------------------------------------------------------------------------


def _errors(**fields) -> dict[str, list[str]]:
    values = {"first_day": CYCLE_3, "last_day": CYCLE_3, "reason": TRAINING} | fields
    with pytest.raises(ValidationError) as caught:
        UnitClosure(**values).full_clean()
    return caught.value.message_dict


def test_a_closure_must_end_on_or_after_its_first_day_and_say_why():
    assert _errors(last_day=CYCLE_3 - dt.timedelta(days=1)) == {
        "last_day": ["The last day (29 Mar 2026) is before the first day (30 Mar 2026)."]
    }
    assert set(_errors(reason="")) == {"reason"}
    assert _errors(reason="   ") == {
        "reason": ["Say why the day unit is closed, e.g. “Staff training day”."]
    }
    # A mistyped year would mark every cycle for decades.
    (too_long,) = _errors(last_day=dt.date(2027, 3, 31))["last_day"]
    assert too_long.startswith("A closure spans at most 366 days; this one spans 367.")

    # One day, and a whole leap year, are fine.
    UnitClosure(first_day=CYCLE_3, last_day=CYCLE_3, reason=TRAINING).full_clean()
    UnitClosure(
        first_day=dt.date(2028, 1, 1), last_day=dt.date(2028, 12, 31), reason="Rebuild"
    ).full_clean()
    assert not UnitClosure.objects.exists()


# --- closed_day and the warning ---------------------------------------------------------------


def test_a_closure_names_its_days_first_to_last_before_a_holiday_or_a_weekend(settings):
    settings.CLINIC_HOLIDAYS = "GB-ENG"
    _closure(dt.date(2026, 12, 21), dt.date(2026, 12, 27), "Refurbishment")

    assert closed_day(dt.date(2026, 12, 20)) == "weekend"  # the Sunday before
    assert closed_day(dt.date(2026, 12, 21)) == "Refurbishment"  # first day, inclusive
    assert closed_day(dt.date(2026, 12, 25)) == "Refurbishment"  # over Christmas Day
    assert closed_day(dt.date(2026, 12, 26)) == "Refurbishment"  # over a Saturday
    assert closed_day(dt.date(2026, 12, 27)) == "Refurbishment"  # last day, inclusive
    assert closed_day(dt.date(2026, 12, 28)) == "Boxing Day (observed)"  # the unit reopens
    assert unit_closure(dt.date(2026, 12, 28)) == ""


def test_the_warning_names_a_closure_and_says_the_unit_is_closed(settings):
    settings.CLINIC_HOLIDAYS = "GB-ENG"
    _closure(CYCLE_3)

    assert closed_days_warning([(3, CYCLE_3), (4, dt.date(2026, 4, 13))]) == (
        "Cycle 3 (Mon 30 Mar 2026, Staff training day) falls on a unit closure day: move it "
        "(delay, or start on another day); the day unit is closed then."
    )
    # Beside a weekend and a holiday, each named kind once, as the old sentence named two.
    assert closed_days_warning(
        [(1, dt.date(2026, 3, 28)), (2, CYCLE_3), (3, dt.date(2026, 4, 3))]
    ) == (
        "Cycle 1 (Sat 28 Mar 2026), cycle 2 (Mon 30 Mar 2026, Staff training day), cycle 3 "
        "(Fri 3 Apr 2026, Good Friday) fall on a weekend, a public holiday or a unit closure "
        "day: move them (delay, or start on another day) if the day unit is closed then."
    )


def test_a_course_started_over_a_training_day_says_so_and_marks_it(
    client, login, treating_clinician, measured, mfolfox6, no_holidays
):
    _closure(CYCLE_3)
    login(client, treating_clinician)
    data = {"regimen": mfolfox6.pk, "start_date": MONDAY.isoformat(), "intent": "adjuvant"}

    response = client.post(reverse("treatments:course_create", args=[measured.pk]), data)

    assert response.status_code == 302
    (warning,) = _warnings(response)
    assert warning == (
        "Cycle 3 (Mon 30 Mar 2026, Staff training day) falls on a unit closure day: move it "
        "(delay, or start on another day); the day unit is closed then."
    )
    page = client.get(response["Location"]).content.decode()
    assert page.count('class="badge warn closed-day"') == 1
    assert (
        '<span class="badge warn closed-day" title="Planned on a unit closure day (Staff '
        'training day): move it; the day unit is closed then.">Staff training day</span>'
    ) in page
    course = Course.objects.get(patient=measured)
    cycle_3 = reverse("treatments:cycle_detail", args=[measured.pk, course.pk, 3])
    assert ">Staff training day</span>" in client.get(cycle_3).content.decode()


def test_a_delay_into_a_refurbishment_week_names_it(
    client, login, treating_clinician, measured, mfolfox6, no_holidays
):
    course = _course(measured, mfolfox6, treating_clinician)
    _closure(dt.date(2026, 3, 9), dt.date(2026, 3, 13), "Refurbishment")
    login(client, treating_clinician)

    delay = reverse("treatments:cycle_delay", args=[measured.pk, course.pk, 1])
    response = client.post(delay, {"days": "7", "reason": "ANC 1.1 on day 1"})

    assert response.status_code == 302
    assert _warnings(response) == [
        "Cycle 1 (Mon 9 Mar 2026, Refurbishment) falls on a unit closure day: move it (delay, "
        "or start on another day); the day unit is closed then."
    ]


# --- Every door -------------------------------------------------------------------------------


def test_rest_and_graphql_name_the_closure_for_the_clinician(
    client, login, treating_clinician, measured, mfolfox6, no_holidays
):
    course = _course(measured, mfolfox6, treating_clinician)
    _closure(CYCLE_3)
    login(client, treating_clinician)

    url = f"/api/v1/patients/{measured.pk}/courses/{course.pk}/cycles?limit=20"
    rest = {c["number"]: c["closed_day"] for c in client.get(url).json()["items"]}
    assert rest == {n: TRAINING if n == 3 else "" for n in range(1, 13)}

    query = "query($id: ID!) { patient(id: $id) { courses { cycles { number closedDay } } } }"
    response = client.post(
        "/graphql/",
        {"query": query, "variables": {"id": measured.pk}},
        content_type="application/json",
    )
    (graphql_course,) = response.json()["data"]["patient"]["courses"]
    assert {c["number"]: c["closedDay"] for c in graphql_course["cycles"]} == rest


def test_an_outsider_learns_nothing_of_the_course_or_its_closures(
    client, login, other_clinician, treating_clinician, measured, mfolfox6
):
    course = _course(measured, mfolfox6, treating_clinician)
    _closure(CYCLE_3)
    login(client, other_clinician)

    assert client.get(_course_url(course)).status_code == 404
    url = f"/api/v1/patients/{measured.pk}/courses/{course.pk}/cycles"
    assert client.get(url).status_code == 404


@pytest.fixture
def portal_user(measured) -> User:
    user = UserFactory.create(role=User.Role.PATIENT)
    measured.portal_user = user
    measured.save(update_fields=["portal_user"])
    return user


def test_the_patient_is_told_the_unit_is_closed_but_not_why(
    client, portal_user, treating_clinician, measured, mfolfox6, no_holidays
):
    _course(measured, mfolfox6, treating_clinician)
    _closure(MONDAY, reason="Staff member's bereavement")  # the next treatment
    _closure(CYCLE_3, reason="Staff member's bereavement")  # one in the list
    client.force_login(portal_user)

    html = client.get(reverse("portal:home")).content.decode()
    assert (
        "<strong>The day unit is closed on this day.</strong> Your care team will confirm the "
        "date with you."
    ) in html
    assert "The day unit is closed that day: your care team will confirm this date with you." in (
        html
    )
    assert html.count("The day unit is closed that day") == 2  # cycles 1 and 3 in the list
    assert "bereavement" not in html

    response = client.get("/api/v1/me/cycles?limit=20")
    assert response.status_code == 200
    rows = {row["number"]: row for row in response.json()["items"]}
    assert {n for n, row in rows.items() if row["unit_closed"]} == {1, 3}
    assert {row["public_holiday"] for row in rows.values()} == {""}
    assert "bereavement" not in response.content.decode()


def test_a_closure_on_a_public_holiday_tells_the_patient_the_unit_is_closed(
    client, portal_user, treating_clinician, measured, mfolfox6, settings
):
    settings.CLINIC_HOLIDAYS = "GB-ENG"
    _course(measured, mfolfox6, treating_clinician)  # cycle 7 on the Spring Bank Holiday
    _closure(dt.date(2026, 5, 25), reason="Closed for the bank holiday weekend")
    client.force_login(portal_user)

    html = client.get(reverse("portal:home")).content.decode()
    assert "The day unit is closed that day" in html
    assert "Spring Bank Holiday: your care team" not in html  # one note, the surer one
    (row,) = [
        r for r in client.get("/api/v1/me/cycles?limit=20").json()["items"] if r["number"] == 7
    ]
    assert (row["unit_closed"], row["public_holiday"]) == (True, "Spring Bank Holiday")


# --- Admin ------------------------------------------------------------------------------------

ADD = "admin:treatments_unitclosure_add"


def test_an_administrator_adds_a_closure_and_the_course_page_shows_it_at_once(
    as_admin, client, login, treating_clinician, measured, mfolfox6, admin_user, no_holidays
):
    course = _course(measured, mfolfox6, treating_clinician)
    clinician = type(client)()
    login(clinician, treating_clinician)
    assert "closed-day" not in clinician.get(_course_url(course)).content.decode()

    response = as_admin.post(
        reverse(ADD), {"first_day": "2026-03-30", "last_day": "2026-03-30", "reason": TRAINING}
    )

    assert response.status_code == 302
    closure = UnitClosure.objects.get()
    assert (closure.reason, closure.created_by) == (TRAINING, admin_user)
    assert LogEntry.objects.filter(
        object_id=str(closure.pk), action_flag=ADDITION, user=admin_user
    ).exists()
    # No restart, no cache to wait for: the clinician's next page marks cycle 3.
    assert ">Staff training day</span>" in clinician.get(_course_url(course)).content.decode()

    # And the changelist lists it, newest first.
    changelist = as_admin.get(reverse("admin:treatments_unitclosure_changelist"))
    assert TRAINING in changelist.content.decode()


def test_admin_refuses_a_closure_ending_before_it_begins_naming_the_field(as_admin):
    response = as_admin.post(
        reverse(ADD), {"first_day": "2026-03-30", "last_day": "2026-03-27", "reason": TRAINING}
    )

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors == {
        "last_day": ["The last day (27 Mar 2026) is before the first day (30 Mar 2026)."]
    }
    assert not UnitClosure.objects.exists()


def test_admin_history_names_a_closures_old_and_new_days(as_admin, admin_user):
    closure = _closure(CYCLE_3)
    url = reverse("admin:treatments_unitclosure_change", args=[closure.pk])

    response = as_admin.post(
        url, {"first_day": "2026-03-30", "last_day": "2026-03-31", "reason": TRAINING}
    )

    assert response.status_code == 302
    entry = LogEntry.objects.get(object_id=str(closure.pk), action_flag=CHANGE)
    assert entry.get_change_message() == "Changed Last day: 2026-03-30 -> 2026-03-31."


def test_a_clinician_cannot_record_a_closure(client, login, treating_clinician):
    login(client, treating_clinician)
    data = {"first_day": "2026-03-30", "last_day": "2026-03-30", "reason": TRAINING}

    response = client.post(reverse(ADD), data)

    assert response.status_code in {302, 403, 404}
    assert not UnitClosure.objects.exists()


def test_the_kept_dashboard_chart_shows_a_new_closure_and_forgets_a_deleted_one(
    as_admin, client, login, treating_clinician, measured, mfolfox6, no_holidays
):
    # The dashboard's chart is kept rendered (patients.chart_cache); a closure is reference
    # data, so saving or deleting one must make every worker render it again.
    _course(measured, mfolfox6, treating_clinician, start=CYCLE_3)  # next cycle: cycle 1
    clinician = type(client)()
    login(clinician, treating_clinician)
    dashboard = reverse("patients:patient_detail", args=[measured.pk])
    assert "closed-day" not in clinician.get(dashboard).content.decode()

    as_admin.post(
        reverse(ADD), {"first_day": "2026-03-30", "last_day": "2026-03-30", "reason": TRAINING}
    )
    assert ">Staff training day</span>" in clinician.get(dashboard).content.decode()

    closure = UnitClosure.objects.get()
    delete = reverse("admin:treatments_unitclosure_delete", args=[closure.pk])
    assert as_admin.post(delete, {"post": "yes"}).status_code == 302
    assert "closed-day" not in clinician.get(dashboard).content.decode()


# --- Query counts -----------------------------------------------------------------------------


def test_the_course_page_reads_the_closures_once_however_many_cycles_they_mark(
    client, login, treating_clinician, measured, mfolfox6, no_holidays
):
    course = _course(measured, mfolfox6, treating_clinician)
    login(client, treating_clinician)

    def view() -> tuple[int, int, str]:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(_course_url(course))
        assert response.status_code == 200
        html = response.content.decode()
        return len(ctx.captured_queries), _closure_queries(ctx), html

    view()  # warm per-process caches
    total, closures, html = view()
    assert closures == 1
    assert "closed-day" not in html

    for number in range(2, 13, 2):  # every other cycle of the twelve
        day = course.cycles.get(number=number).planned_start
        _closure(day, reason=f"Closed {number}")
    more_total, closures, html = view()
    assert (more_total, closures) == (total, 1)
    assert html.count('class="badge warn closed-day"') == 6


def test_the_patient_list_and_the_apis_read_the_closures_once(
    client, login, care_team, treating_clinician, measured, mfolfox6, no_holidays
):
    for _ in range(3):  # four patients, each with a course whose next cycle is closed
        other = patient_through_service(care_team)
        BodyMeasurementFactory.create(patient=other, measured_on=dt.date(2026, 2, 27))
        _course(other, mfolfox6, treating_clinician)
    course = _course(measured, mfolfox6, treating_clinician)
    _closure(MONDAY)
    login(client, treating_clinician)

    with CaptureQueriesContext(connection) as ctx:
        html = client.get(reverse("patients:patient_list")).content.decode()
    assert _closure_queries(ctx) == 1
    assert html.count(">Staff training day</span>") == 4

    url = f"/api/v1/patients/{measured.pk}/courses/{course.pk}/cycles?limit=20"
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    assert _closure_queries(ctx) == 1

    query = "{ patients { courses { cycles { number closedDay } } } }"
    with CaptureQueriesContext(connection) as ctx:
        body = client.post("/graphql/", {"query": query}, content_type="application/json").json()
    assert "errors" not in body, body
    assert _closure_queries(ctx) == 1
    closed = [c for p in body["data"]["patients"] for co in p["courses"] for c in co["cycles"]]
    assert sum(c["closedDay"] == TRAINING for c in closed) == 4


def test_outside_a_request_each_question_reads_the_closures_afresh():
    # A command or a task is no request: a closure saved meanwhile is seen at once.
    assert closed_day(CYCLE_3) == ""
    _closure(CYCLE_3)
    assert closed_day(CYCLE_3) == TRAINING
    UnitClosure.objects.all().delete()
    assert closed_day(CYCLE_3) == ""


def test_within_a_request_the_closures_are_read_once_and_again_after_a_change():
    # As the test client begins and ends a request (without closing the test's connection).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    request_started.send(sender=None, environ={})
    try:
        with CaptureQueriesContext(connection) as ctx:
            assert [closed_day(MONDAY + dt.timedelta(days=n)) for n in range(5)] == [""] * 5
        assert _closure_queries(ctx) == 1
        _closure(CYCLE_3)  # saved during the request: its later questions see it
        assert closed_day(CYCLE_3) == TRAINING
        UnitClosure.objects.get().delete()
        assert closed_day(CYCLE_3) == ""
    finally:
        request_finished.send(sender=None)
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    with CaptureQueriesContext(connection) as ctx:
        closed_day(CYCLE_3)
        closed_day(CYCLE_3)
    assert _closure_queries(ctx) == 2  # the request is over: nothing is held


def test_a_given_cycle_on_a_closure_day_is_history_not_marked(
    treating_clinician, measured, mfolfox6, no_holidays
):
    course = _course(measured, mfolfox6, treating_clinician)
    _closure(MONDAY)
    cycle = course.cycles.get(number=1)
    assert cycle.planned_on_closed_day == TRAINING
    cycle.status = ChemoCycle.Status.GIVEN
    assert cycle.planned_on_closed_day == ""
