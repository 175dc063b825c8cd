"""Cycle days on which the day unit may be closed: a course started on a Saturday puts every
14-day cycle on a Saturday, a delay by days can land on a Sunday, and a fortnightly course can
put a day 1 on Christmas Day. Nothing is refused (some day units open then); the prescriber is
told, and the pages mark those days."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.urls import reverse

from treatments.models import Course
from treatments.schedule import closed_day, closed_days_warning
from treatments.services import course_start, cycle_give

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_1_march_2026")]

MONDAY = dt.date(2026, 3, 2)
SATURDAY = dt.date(2026, 3, 7)


def _start(client, patient, regimen, day: dt.date):
    data = {"regimen": regimen.pk, "start_date": day.isoformat(), "intent": "adjuvant"}
    response = client.post(reverse("treatments:course_create", args=[patient.pk]), data)
    assert response.status_code == 302
    return response, Course.objects.get(patient=patient)


def _warnings(response) -> list[str]:
    return [m.message for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]


@pytest.mark.usefixtures("no_holidays")
def test_the_warning_names_the_weekend_cycles_and_counts_the_rest():
    cycles = [(n, SATURDAY + dt.timedelta(days=14 * (n - 1))) for n in range(1, 6)]
    assert closed_days_warning(cycles) == (
        "Cycle 1 (Sat 7 Mar 2026), cycle 2 (Sat 21 Mar 2026), cycle 3 (Sat 4 Apr 2026) and 2 "
        "more fall on a weekend: move them (delay, or start on another day) if the day unit is "
        "closed then."
    )
    assert closed_days_warning([(1, MONDAY), (2, MONDAY + dt.timedelta(days=14))]) == ""
    assert closed_days_warning([(3, dt.date(2026, 3, 8))]).startswith(
        "Cycle 3 (Sun 8 Mar 2026) falls on a weekend: move it"
    )


@pytest.mark.usefixtures("no_holidays")
def test_a_course_started_on_a_saturday_says_so_and_marks_its_days(
    client, login, treating_clinician, measured, mfolfox6
):
    login(client, treating_clinician)
    response, course = _start(client, measured, mfolfox6, SATURDAY)

    (warning,) = _warnings(response)
    assert warning.startswith("Cycle 1 (Sat 7 Mar 2026), cycle 2 (Sat 21 Mar 2026)")
    assert "and 9 more fall on a weekend" in warning
    page = client.get(response["Location"]).content.decode()
    assert page.count(">weekend</span>") == 12 + 1  # every cycle, and the "Next" button


@pytest.mark.usefixtures("no_holidays")
def test_a_weekday_course_has_no_warning_and_no_mark(
    client, login, treating_clinician, measured, mfolfox6
):
    login(client, treating_clinician)
    response, _ = _start(client, measured, mfolfox6, MONDAY)

    assert _warnings(response) == []
    assert ">weekend</span>" not in client.get(response["Location"]).content.decode()


@pytest.fixture
def weekday_course(client, login, treating_clinician, measured, mfolfox6) -> Course:
    """A course started on a Monday, its oncologist signed in."""
    login(client, treating_clinician)
    return course_start(
        patient=measured,
        regimen=mfolfox6,
        start_date=MONDAY,
        intent="adjuvant",
        created_by=treating_clinician,
    )


def _delay_first_cycle(client, course: Course, days: int):
    delay = reverse("treatments:cycle_delay", args=[course.patient_id, course.pk, 1])
    return client.post(delay, {"days": str(days), "reason": "ANC 1.1 on day 1"})


@pytest.mark.usefixtures("no_holidays")
def test_a_delay_onto_a_sunday_says_so_and_a_given_cycle_is_not_marked(
    client, treating_clinician, weekday_course
):
    course = weekday_course

    response = _delay_first_cycle(client, course, 6)

    assert response.status_code == 302
    (warning,) = _warnings(response)
    assert warning.startswith("Cycle 1 (Sun 8 Mar 2026), cycle 2 (Sun 22 Mar 2026)")
    cycle_page = client.get(response["Location"]).content.decode()
    assert ">weekend</span>" in cycle_page

    # Given on the Monday after: history, not a plan to move.
    with time_machine.travel(dt.datetime(2026, 3, 9, 12, 0, tzinfo=dt.UTC), tick=False):
        cycle_give(
            cycle=course.cycles.get(number=1),
            actual_start=dt.date(2026, 3, 9),
            given_by=treating_clinician,
            override_reason="Counts reviewed at the referring hospital",
        )
        course_page = client.get(
            reverse("treatments:course_detail", args=[course.patient_id, course.pk])
        )
    assert course_page.content.decode().count(">weekend</span>") == 0  # all on Mondays again


@pytest.mark.usefixtures("no_holidays")
def test_a_delay_to_a_weekday_says_nothing_more(client, weekday_course):
    response = _delay_first_cycle(client, weekday_course, 7)

    assert response.status_code == 302
    assert _warnings(response) == []


# --- public holidays (settings.CLINIC_HOLIDAYS, GB-ENG by default) ---------------------------

OCTOBER_FRIDAY = dt.date(2026, 10, 2)  # fortnightly from here, cycle 7 is on 25 Dec 2026


def test_a_public_holiday_is_named_and_a_weekend_still_marked(settings):
    settings.CLINIC_HOLIDAYS = "GB-ENG"
    assert closed_day(dt.date(2026, 12, 25)) == "Christmas Day"
    assert closed_day(dt.date(2026, 12, 28)) == "Boxing Day (observed)"  # a Monday
    assert closed_day(dt.date(2026, 5, 25)) == "Spring Bank Holiday"
    assert closed_day(SATURDAY) == "weekend"
    assert closed_day(MONDAY) == ""
    assert closed_day(dt.date(2026, 1, 2)) == ""  # a Scottish holiday, not an English one

    settings.CLINIC_HOLIDAYS = "GB-SCT"
    assert closed_day(dt.date(2026, 1, 2)) == "New Year Holiday"

    settings.CLINIC_HOLIDAYS = ""
    assert closed_day(dt.date(2026, 12, 25)) == ""  # a Friday: no holidays, no mark
    assert closed_day(dt.date(2026, 12, 26)) == "weekend"


def test_the_warning_names_the_holiday_beside_the_weekends(settings):
    settings.CLINIC_HOLIDAYS = "GB-ENG"
    assert closed_days_warning([(7, dt.date(2026, 5, 25)), (8, dt.date(2026, 6, 8))]) == (
        "Cycle 7 (Mon 25 May 2026, Spring Bank Holiday) falls on a public holiday: move it "
        "(delay, or start on another day) if the day unit is closed then."
    )
    assert closed_days_warning([(1, SATURDAY), (2, dt.date(2026, 4, 3))]) == (
        "Cycle 1 (Sat 7 Mar 2026), cycle 2 (Fri 3 Apr 2026, Good Friday) fall on a weekend or "
        "a public holiday: move them (delay, or start on another day) if the day unit is "
        "closed then."
    )


def test_a_course_into_christmas_says_so_and_marks_the_day(
    client, login, treating_clinician, measured, mfolfox6, settings
):
    settings.CLINIC_HOLIDAYS = "GB-ENG"
    login(client, treating_clinician)
    response, course = _start(client, measured, mfolfox6, OCTOBER_FRIDAY)

    (warning,) = _warnings(response)
    assert warning.startswith(
        "Cycle 7 (Fri 25 Dec 2026, Christmas Day) falls on a public holiday: move it"
    )
    page = client.get(response["Location"]).content.decode()
    assert page.count('class="badge warn closed-day"') == 1
    assert (
        '<span class="badge warn closed-day" title="Planned on Christmas Day, a public holiday: '
        'move it if the day unit is closed then.">Christmas Day</span>'
    ) in page
    cycle_7 = reverse("treatments:cycle_detail", args=[measured.pk, course.pk, 7])
    assert ">Christmas Day</span>" in client.get(cycle_7).content.decode()


def test_rest_and_graphql_say_which_cycle_days_fall_on_a_closed_day(
    client, login, treating_clinician, measured, mfolfox6, settings
):
    settings.CLINIC_HOLIDAYS = "GB-ENG"
    course = course_start(
        patient=measured,
        regimen=mfolfox6,
        start_date=OCTOBER_FRIDAY,
        intent="adjuvant",
        created_by=treating_clinician,
    )
    login(client, treating_clinician)
    url = f"/api/v1/patients/{measured.pk}/courses/{course.pk}/cycles?limit=20"
    rest = {c["number"]: c["closed_day"] for c in client.get(url).json()["items"]}
    assert rest == {n: "Christmas Day" if n == 7 else "" for n in range(1, 13)}

    query = "query($id: ID!) { patient(id: $id) { courses { cycles { number closedDay } } } }"
    response = client.post(
        "/graphql/",
        {"query": query, "variables": {"id": measured.pk}},
        content_type="application/json",
    )
    (graphql_course,) = response.json()["data"]["patient"]["courses"]
    assert {c["number"]: c["closedDay"] for c in graphql_course["cycles"]} == rest
