"""Readiness for every open course, not only the one due first: a patient on two regimens at
once (mFOLFOX6 due today, ready; CAPOX's cycle 2 also today, no platelet count) shows both on
the dashboard, each under its own name, and the REST and GraphQL doors say the same.

The world is fixed on a Friday (no weekend badge beside the planned days) at 12:00 UTC, which
is 12:00 in the clinic (London keeps GMT until the last Sunday of March).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
import time_machine
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from labs.models import PreCycleAction
from labs.services import lab_result_record
from labs.tests.factories import LabResultFactory, LabTestFactory, PreCycleRuleFactory
from oncoplanner.accounts.tests.factories import sign_in
from patients.tests.dashboard_world import anc_test, course_with_cycles, regimen_with_anc_rules
from treatments.models import ChemoCycle, Course, DoseBasis, Regimen
from treatments.tests.factories import (
    ChemoCycleFactory,
    CourseFactory,
    regimen_approved,
    regimen_create,
)

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 20, 12, 0, 10, tzinfo=dt.UTC)  # a Friday
TODAY = dt.date(2026, 3, 20)
FOLFOX = "mFOLFOX6 (test)"
CAPOX = "CAPOX (test)"
API = "/api/v1"


@pytest.fixture(autouse=True)
def frozen() -> object:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _folfox_due_today(patient) -> Course:
    """mFOLFOX6 started today, cycle 1 today; ANC 2.1 two hours ago: OK to treat."""
    anc = anc_test()
    regimen = regimen_with_anc_rules(anc=anc, cycles=6)
    Regimen.objects.filter(pk=regimen.pk).update(name=FOLFOX)
    course = course_with_cycles(patient, regimen=regimen, given=0, total=6, start=TODAY)
    LabResultFactory.create(
        patient=patient, test=anc, value=Decimal("2.1"), collected_at=NOW - dt.timedelta(hours=2)
    )
    return course


def _capox_cycle_2_today(patient):
    """CAPOX started three weeks ago (cycle 1 given), cycle 2 today; its rules read the
    platelet count (>= 100 treat, < 100 hold, from the last 3 days), and there is none."""
    plt = LabTestFactory.create(
        short_name="PLT",
        name="Platelets (test)",
        ref_low=Decimal("150"),
        ref_high=Decimal("450"),
        max_plausible=Decimal("2000"),
    )
    regimen = regimen_create(
        name=CAPOX,
        phases=((21, 8, (("Oxaliplatin", "130", DoseBasis.MG_M2),)),),
        approved=False,
    )
    for priority, (comparator, action) in enumerate(
        ((">=", PreCycleAction.TREAT), ("<", PreCycleAction.HOLD)), start=1
    ):
        PreCycleRuleFactory.create(
            regimen=regimen,
            test=plt,
            comparator=comparator,
            value=Decimal("100"),
            priority=priority,
            action=action,
            source="Test protocol",
        )
    regimen = regimen_approved(regimen)
    start = TODAY - dt.timedelta(days=21)
    course = CourseFactory.create(
        patient=patient, regimen=regimen, start_date=start, status=Course.Status.ACTIVE
    )
    for number in (1, 2, 3):
        planned = start + dt.timedelta(days=21 * (number - 1))
        given = number == 1
        ChemoCycleFactory.create(
            course=course,
            number=number,
            planned_start=planned,
            actual_start=planned if given else None,
            status=ChemoCycle.Status.GIVEN if given else ChemoCycle.Status.PLANNED,
        )
    return course, plt


@pytest.fixture
def two_courses(patient):
    """(mFOLFOX6, CAPOX, the platelet test): both next cycles today; mFOLFOX6, started later,
    leads (patients.dashboard._due_first)."""
    folfox = _folfox_due_today(patient)
    capox, plt = _capox_cycle_2_today(patient)
    return folfox, capox, plt


def _dashboard(client: Client, patient) -> str:
    response = client.get(reverse("patients:patient_detail", args=[patient.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _other_course_line(html: str, course: Course) -> str:
    line = html[html.index(f'id="readiness-course-{course.pk}"') :]
    return line[: line.index("</li>")]


# --- Dashboard ---------------------------------------------------------------------------------


def test_dashboard_shows_each_open_courses_readiness_under_its_own_name(
    client, patient, treating_clinician, two_courses
):
    folfox, capox, _ = two_courses
    sign_in(client, treating_clinician)
    html = _dashboard(client, patient)

    card = html[html.index('id="readiness"') : html.index('id="cumulative-dose"')]
    main = card[: card.index('id="other-course-readiness"')]
    # The main panel names its course, and is mFOLFOX6's: ANC 2.1, OK to treat.
    assert f"Readiness for the next cycle: {FOLFOX} v1</h2>" in main
    assert '<span class="badge ok big">Treat</span>' in main
    assert CAPOX not in main

    # CAPOX's own line: its badge, cycle and day, why not, and the way to its course page.
    line = _other_course_line(card, capox)
    assert '<span class="badge bad" title="Not evaluable:' in line
    assert ">Not evaluable</span>" in line
    course_url = reverse("treatments:course_detail", args=[patient.pk, capox.pk])
    assert f'<a href="{course_url}">{CAPOX} v1</a>: cycle 2 planned Fri 20 Mar 2026' in line
    assert "No PLT result on or before 20 Mar 2026 12:00." in line
    assert FOLFOX not in line


def test_dashboard_says_labs_due_for_another_course_whose_cycle_is_still_to_come(
    client, patient, treating_clinician
):
    _folfox_due_today(patient)
    capox, _ = _capox_cycle_2_today(patient)
    ChemoCycle.objects.filter(course=capox, number=2).update(
        planned_start=TODAY + dt.timedelta(days=3)
    )
    sign_in(client, treating_clinician)

    line = _other_course_line(_dashboard(client, patient), capox)

    # Monday's bloods are simply not drawn yet: a task, not an alarm.
    assert ">Labs due</span>" in line
    assert "cycle 2 planned Mon 23 Mar 2026" in line
    assert "No PLT result on or before 23 Mar 2026 00:00." in line


def test_dashboard_with_one_open_course_keeps_its_plain_readiness_heading(
    client, patient, treating_clinician
):
    _folfox_due_today(patient)
    sign_in(client, treating_clinician)
    html = _dashboard(client, patient)
    assert '<h2 id="readiness-h">Readiness for the next cycle</h2>' in html
    assert 'id="other-course-readiness"' not in html


def test_an_outsider_gets_404_on_every_door(client, patient, other_clinician, two_courses):
    sign_in(client, other_clinician)
    assert client.get(reverse("patients:patient_detail", args=[patient.pk])).status_code == 404
    assert client.get(f"{API}/patients/{patient.pk}/readiness").status_code == 404
    body = _graphql(client, patient)
    assert body["data"] is None
    # Both fields asked (readiness, courseReadiness), both refused alike.
    assert [e["message"] for e in body["errors"]] == ["not found", "not found"]


def test_a_new_lab_result_changes_the_other_courses_readiness_on_the_next_view(
    client, patient, treating_clinician, two_courses
):
    _, capox, plt = two_courses
    sign_in(client, treating_clinician)

    def view() -> tuple[str, int]:
        with CaptureQueriesContext(connection) as ctx:
            html = _dashboard(client, patient)
        return _other_course_line(html, capox), len(ctx.captured_queries)

    before, rendered = view()
    again, kept = view()
    assert kept < rendered  # the second view is the kept chart
    assert again == before
    assert ">Not evaluable</span>" in before

    lab_result_record(
        patient=patient,
        test=plt,
        value="182",
        unit="10*3/uL",
        collected_at=NOW - dt.timedelta(hours=1),
        recorded_by=treating_clinician,
    )

    after, queries = view()
    assert queries > kept  # rendered again, not the kept chart
    assert ">Treat</span>" in after
    assert "Not evaluable" not in after


def _dashboard_queries(client: Client, patient) -> int:
    caches["charts"].clear()  # the chart rendered, not kept from the last view
    with CaptureQueriesContext(connection) as ctx:
        _dashboard(client, patient)
    return len(ctx.captured_queries)


def test_a_second_open_course_with_its_own_lab_rules_costs_no_query(
    client, patient, treating_clinician
):
    # CAPOX reads another test (platelets) than mFOLFOX6 (ANC): still one rules query and one
    # latest-results query for both courses, on the dashboard and on the REST door.
    _folfox_due_today(patient)
    sign_in(client, treating_clinician)
    readiness_url = f"{API}/patients/{patient.pk}/readiness"

    def rest() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(readiness_url).status_code == 200
        return len(ctx.captured_queries)

    _dashboard_queries(client, patient)  # warm caches
    rest()
    one = (_dashboard_queries(client, patient), rest())
    _capox_cycle_2_today(patient)
    two = (_dashboard_queries(client, patient), rest())
    assert two == one
    assert len(client.get(readiness_url).json()["courses"]) == 2


# --- REST --------------------------------------------------------------------------------------


def test_rest_readiness_lists_every_open_course_the_one_due_first_at_the_head(
    client, patient, treating_clinician, two_courses
):
    folfox, capox, _ = two_courses
    sign_in(client, treating_clinician)

    body = client.get(f"{API}/patients/{patient.pk}/readiness").json()

    first, second = body["courses"]
    assert (first["course_id"], first["regimen"]) == (folfox.pk, f"{FOLFOX} v1")
    assert (first["cycle_number"], first["cycle_day"]) == (1, "2026-03-20")
    assert (first["outcome"], first["ok_to_treat"], first["badge"]) == ("treat", True, "Treat")
    assert first["reason"] == ""
    assert (second["course_id"], second["regimen"]) == (capox.pk, f"{CAPOX} v1")
    assert (second["cycle_number"], second["cycle_day"]) == (2, "2026-03-20")
    assert (second["outcome"], second["ok_to_treat"], second["labs_due"]) == (
        "not_evaluable",
        False,
        False,
    )
    assert second["badge"] == "Not evaluable"
    assert second["reason"] == "No PLT result on or before 20 Mar 2026 12:00."
    (platelets,) = second["analytes"]
    assert (platelets["test"], platelets["outcome"], platelets["result_id"]) == (
        "Platelets (test)",
        "missing",
        None,
    )


def test_rest_readiness_leads_with_the_course_due_first_not_the_latest_started(
    client, patient, treating_clinician, two_courses
):
    folfox, capox, _ = two_courses
    ChemoCycle.objects.filter(course=folfox).update(planned_start=TODAY + dt.timedelta(days=30))
    sign_in(client, treating_clinician)
    courses = client.get(f"{API}/patients/{patient.pk}/readiness").json()["courses"]
    assert [c["course_id"] for c in courses] == [capox.pk, folfox.pk]


# --- GraphQL -----------------------------------------------------------------------------------

COURSE_READINESS = """query($id: ID!) {
  readiness(patientId: $id) { regimenId outcome }
  courseReadiness(patientId: $id) {
    courseId regimen cycleNumber cycleDay badge reason
    readiness { outcome okToTreat analytes { testName outcome } }
  }
}"""


def _graphql(client: Client, patient) -> dict:
    response = client.post(
        "/graphql/",
        data=json.dumps({"query": COURSE_READINESS, "variables": {"id": patient.pk}}),
        content_type="application/json",
    )
    return response.json()


def test_graphql_gives_each_open_courses_readiness_as_rest_does(
    client, patient, treating_clinician, two_courses
):
    folfox, capox, _ = two_courses
    sign_in(client, treating_clinician)

    data = _graphql(client, patient)["data"]

    assert data["readiness"] == {"regimenId": str(folfox.regimen_id), "outcome": "treat"}
    first, second = data["courseReadiness"]
    assert (first["courseId"], first["badge"], first["reason"]) == (str(folfox.pk), "Treat", "")
    assert second == {
        "courseId": str(capox.pk),
        "regimen": f"{CAPOX} v1",
        "cycleNumber": 2,
        "cycleDay": "2026-03-20",
        "badge": "Not evaluable",
        "reason": "No PLT result on or before 20 Mar 2026 12:00.",
        "readiness": {
            "outcome": "not_evaluable",
            "okToTreat": False,
            "analytes": [{"testName": "Platelets (test)", "outcome": "missing"}],
        },
    }


def test_graphql_readiness_is_the_course_due_first_as_on_the_dashboard(
    client, patient, treating_clinician, two_courses
):
    # mFOLFOX6 started later, but CAPOX's cycle is due first: the old field judged the latest
    # started course, so it disagreed with the dashboard's panel.
    folfox, capox, _ = two_courses
    ChemoCycle.objects.filter(course=folfox).update(planned_start=TODAY + dt.timedelta(days=30))
    sign_in(client, treating_clinician)

    data = _graphql(client, patient)["data"]

    assert data["readiness"] == {"regimenId": str(capox.regimen_id), "outcome": "not_evaluable"}
    assert [c["courseId"] for c in data["courseReadiness"]] == [str(capox.pk), str(folfox.pk)]
