"""A cycle's history (CycleStatusChange): every give, delay, hold and cancellation is kept, as
it was decided, on every door (page, REST, GraphQL) and behind the same gate."""

# Fixtures are imported from graphql_support, so pytest's argument injection looks like
# redefinition to ruff.
# ruff: noqa: F811
from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Iterator

import pytest
import time_machine
from django.apps import apps
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessLog
from oncoplanner.accounts.api_tokens import api_token_create
from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import ClinicianFactory
from oncoplanner.demo.builder import bulk_status_history
from oncoplanner.tests.graphql_support import (  # noqa: F401 - fixtures
    _access_context,
    as_user,
    gql,
    world,
)
from patients.models import Patient
from patients.services import care_team_add_member
from treatments.models import AppendOnlyError, ChemoCycle, Course, CycleStatusChange, Regimen
from treatments.services import (
    CycleChanged,
    course_start,
    course_stop,
    cycle_cancel,
    cycle_delay,
    cycle_give,
    cycle_hold,
)
from treatments.tests.factories import ChemoCycleFactory, CourseFactory, regimen_create

pytestmark = pytest.mark.django_db

START = dt.date(2026, 2, 2)  # a Monday; cycle 2 is planned on 16 Feb
NOW = dt.datetime(2026, 3, 20, 12, 0, tzinfo=dt.UTC)
ANC = "ANC 0.9 x10^9/L on the pre-cycle count"
PLATELETS = "Platelets 80 x10^9/L on the repeat count"


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def nurse(care_team, admin_user) -> User:
    nurse = ClinicianFactory.create(
        first_name="Maja", last_name="Lindqvist", discipline=User.Discipline.NURSE
    )
    care_team_add_member(team=care_team, clinician=nurse, granted_by=admin_user)
    return nurse


@pytest.fixture
def regimen(db: None) -> Regimen:
    # No pre-cycle rules: a cycle is given without an override (a physician decides).
    return regimen_create(name="q14d (history test)", phases=[(14, 4, [("Drug A", "50", "mg/m2")])])


def _started(patient: Patient, regimen: Regimen, by: User) -> Course:
    return course_start(
        patient=patient,
        regimen=regimen,
        start_date=START,
        intent="curative",
        created_by=by,
        confirm_past_start=True,
    )


@pytest.fixture
def course(patient: Patient, regimen: Regimen, treating_clinician: User) -> Course:
    return _started(patient, regimen, treating_clinician)


def _cycle(course: Course, number: int) -> ChemoCycle:
    return course.cycles.get(number=number)


def _history(cycle: ChemoCycle) -> list[CycleStatusChange]:
    return list(CycleStatusChange.objects.filter(cycle=cycle).select_related("by"))


def _delayed_twice_then_given(course, nurse, oncologist, clock) -> ChemoCycle:
    cycle_give(cycle=_cycle(course, 1), actual_start=START, given_by=nurse)
    clock.shift(dt.timedelta(hours=1))
    cycle_delay(cycle=_cycle(course, 2), days=7, reason=ANC, by=nurse)
    clock.shift(dt.timedelta(hours=1))
    cycle_delay(
        cycle=_cycle(course, 2), new_start=dt.date(2026, 3, 2), reason=PLATELETS, by=oncologist
    )
    clock.shift(dt.timedelta(hours=1))
    return cycle_give(cycle=_cycle(course, 2), actual_start=dt.date(2026, 3, 2), given_by=nurse)


# --- The write path -------------------------------------------------------------------------


def test_cycle_delayed_twice_then_given_keeps_both_delays_who_and_dates(
    course, nurse, treating_clinician, clock
):
    given = _delayed_twice_then_given(course, nurse, treating_clinician, clock)
    assert given.reason == PLATELETS  # the cycle itself keeps only its latest reason...
    newest, second_delay, first_delay = _history(given)  # ...its history keeps all three
    assert (newest.status, newest.actual_start, newest.by, newest.reason) == (
        "given",
        dt.date(2026, 3, 2),
        nurse,
        "",
    )
    assert (second_delay.status, second_delay.reason, second_delay.by) == (
        "delayed",
        PLATELETS,
        treating_clinician,
    )
    assert (second_delay.planned_start_before, second_delay.planned_start_after) == (
        dt.date(2026, 2, 23),
        dt.date(2026, 3, 2),
    )
    assert (first_delay.status, first_delay.reason, first_delay.by) == ("delayed", ANC, nurse)
    assert (first_delay.planned_start_before, first_delay.planned_start_after) == (
        dt.date(2026, 2, 16),
        dt.date(2026, 2, 23),
    )
    assert [c.at for c in (first_delay, second_delay, newest)] == [
        NOW + dt.timedelta(hours=1),
        NOW + dt.timedelta(hours=2),
        NOW + dt.timedelta(hours=3),
    ]
    assert [c.summary for c in (first_delay, second_delay, newest)] == [
        "Delayed 7 days: 16 Feb → 23 Feb 2026",
        "Delayed 7 days: 23 Feb → 2 Mar 2026",
        "Given on 2 Mar 2026",
    ]
    assert not any(c.from_before_history for c in (first_delay, second_delay, newest))
    # A later cycle moved by the delays records each move, and no decision of its own.
    assert [(c.status, c.moved_with) for c in _history(_cycle(course, 3))] == [
        ("planned", second_delay),
        ("planned", first_delay),
    ]


def test_cycle_history_rows_are_logged_as_created(course, nurse):
    cycle_delay(cycle=_cycle(course, 1), days=2, reason=ANC, by=nurse)
    (change,) = _history(_cycle(course, 1))
    log = AccessLog.objects.get(
        action="create", object_type="CycleStatusChange", object_id=str(change.pk)
    )
    assert log.patient_id == course.patient_id


def test_cycle_held_then_given_keeps_the_hold_and_not_its_reason_on_the_give(
    course, treating_clinician
):
    cycle = cycle_hold(
        cycle=_cycle(course, 1), reason="Awaiting echocardiogram", by=treating_clinician
    )
    given = cycle_give(cycle=cycle, actual_start=START, given_by=treating_clinician)
    assert given.reason == "Awaiting echocardiogram"
    newest, hold = _history(given)
    assert (hold.status, hold.reason, hold.summary) == ("held", "Awaiting echocardiogram", "Held")
    assert (newest.status, newest.reason, newest.given_despite) == ("given", "", "")


def test_cycle_cancel_is_kept_with_its_reason(course, treating_clinician):
    cycle_cancel(cycle=_cycle(course, 2), reason="Grade 3 neuropathy", by=treating_clinician)
    (change,) = _history(_cycle(course, 2))
    assert (change.status, change.reason, change.by, change.summary) == (
        "cancelled",
        "Grade 3 neuropathy",
        treating_clinician,
        "Cancelled",
    )
    assert change.planned_start_before == change.planned_start_after == dt.date(2026, 2, 16)


def test_course_stop_keeps_a_cancellation_for_every_cycle_it_cancels(course, treating_clinician):
    cycle_give(cycle=_cycle(course, 1), actual_start=START, given_by=treating_clinician)
    course_stop(
        course=course,
        reason=Course.StopReason.NOT_TOLERATED,
        stopped_on=dt.date(2026, 2, 10),
        by=treating_clinician,
    )
    rows = CycleStatusChange.objects.filter(cycle__course=course, status="cancelled")
    assert sorted(rows.values_list("cycle__number", flat=True)) == [2, 3, 4]
    assert {r.reason for r in rows} == {"Course stopped: Treatment not tolerated"}
    assert {r.by_id for r in rows} == {treating_clinician.pk}


def test_a_refused_action_writes_no_history(course, nurse, treating_clinician):
    cycle = _cycle(course, 1)
    with pytest.raises(ValidationError):
        cycle_delay(cycle=cycle, days=7, reason="  ", by=treating_clinician)
    seen = cycle.version
    cycle_delay(cycle=cycle, days=7, reason=ANC, by=treating_clinician, seen_version=seen)
    with pytest.raises(CycleChanged):  # a double click on Delay
        cycle_delay(cycle=cycle, days=7, reason=ANC, by=treating_clinician, seen_version=seen)
    with pytest.raises(PermissionDenied):  # cancelling is a prescriber's decision
        cycle_cancel(cycle=cycle, reason="Patient declined", by=nurse)
    (only,) = _history(_cycle(course, 1))
    assert (only.status, only.planned_start_before) == ("delayed", START)


def test_cycle_history_is_append_only(course, treating_clinician):
    cycle_hold(cycle=_cycle(course, 1), reason="Awaiting CT", by=treating_clinician)
    change = CycleStatusChange.objects.get()
    change.reason = "Something else"
    with pytest.raises(AppendOnlyError):
        change.save()
    with pytest.raises(AppendOnlyError):
        change.delete()
    with pytest.raises(AppendOnlyError):
        CycleStatusChange.objects.update(reason="Something else")
    with pytest.raises(AppendOnlyError):
        _cycle(course, 1).status_history.all().delete()
    assert CycleStatusChange.objects.get().reason == "Awaiting CT"


# --- The cycle and course pages --------------------------------------------------------------


def _page_url(cycle: ChemoCycle) -> str:
    return reverse(
        "treatments:cycle_detail", args=[cycle.course.patient_id, cycle.course_id, cycle.number]
    )


def _page_queries(client, cycle: ChemoCycle) -> int:
    """Queries of a view of `cycle`'s page, after one view that warms the caches (content
    types, session)."""
    for _ in range(2):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(_page_url(cycle)).status_code == 200
    return len(ctx.captured_queries)


def _course_page_rows(client, course: Course, *numbers: int) -> list[str]:
    """The course page's table rows of these cycles, as HTML."""
    html = client.get(
        reverse("treatments:course_detail", args=[course.patient_id, course.pk])
    ).content.decode()
    rows = html.split('<table class="cycles">')[1].split("</table>")[0].split("<tr")
    return [next(r for r in rows if f">Cycle {n}<" in r) for n in numbers]


def _history_section(html: str) -> str:
    return html.split('id="status-history"')[1].split("</section>")[0]


def test_cycle_page_shows_the_history_newest_first(
    client, login, course, nurse, treating_clinician, clock
):
    cycle = _delayed_twice_then_given(course, nurse, treating_clinician, clock)
    login(client, treating_clinician)
    section = _history_section(client.get(_page_url(cycle)).content.decode())
    given = section.index("Given on 2 Mar 2026")
    second = section.index("Delayed 7 days: 23 Feb → 2 Mar 2026")
    first = section.index("Delayed 7 days: 16 Feb → 23 Feb 2026")
    assert given < second < first
    assert PLATELETS in section
    assert ANC in section
    assert 'Maja Lindqvist <span class="muted small">(Oncology nurse)</span>' in section
    assert "(Oncologist)" in section
    assert "20 Mar 2026 15:00" in section  # when it was given (frozen clock + 3 h, UTC)


def test_cycle_page_shows_a_give_against_the_check_as_such(
    client, login, patient, treating_clinician
):
    # The reference mFOLFOX6 has pre-cycle rules; with no bloods the check is not evaluable.
    course = course_start(
        patient=patient,
        regimen=Regimen.objects.get(name="mFOLFOX6", version=1),
        start_date=dt.date(2026, 3, 2),
        intent="adjuvant",
        created_by=treating_clinician,
        confirm_past_start=True,
    )
    cycle = cycle_give(
        cycle=_cycle(course, 1),
        actual_start=dt.date(2026, 3, 2),
        given_by=treating_clinician,
        override_reason="Counts reviewed at the referring hospital",
    )
    (change,) = _history(cycle)
    assert change.given_despite == cycle.given_despite != ""
    login(client, treating_clinician)
    section = _history_section(client.get(_page_url(cycle)).content.decode())
    assert f"given despite “{change.given_despite_label}”" in section
    assert "Counts reviewed at the referring hospital" in section


def test_cycle_page_without_history_says_so(client, login, course, treating_clinician):
    login(client, treating_clinician)
    section = _history_section(client.get(_page_url(_cycle(course, 1))).content.decode())
    assert "Not given, delayed, held or cancelled yet." in section


def test_cycle_page_of_another_care_teams_patient_is_404(
    client, login, course, treating_clinician, other_clinician
):
    cycle_hold(cycle=_cycle(course, 1), reason="Awaiting CT", by=treating_clinician)
    login(client, other_clinician)
    assert client.get(_page_url(_cycle(course, 1))).status_code == 404


def test_cycle_page_history_costs_one_query_however_many_rows(
    client, login, course, nurse, treating_clinician
):
    login(client, treating_clinician)
    cycle_delay(cycle=_cycle(course, 1), days=1, reason=ANC, by=nurse)
    one_row = _page_queries(client, _cycle(course, 1))
    cycle_delay(cycle=_cycle(course, 1), days=1, reason=PLATELETS, by=treating_clinician)
    cycle_delay(
        cycle=_cycle(course, 1), days=1, reason="Still recovering", by=ClinicianFactory.create()
    )
    assert _page_queries(client, _cycle(course, 1)) == one_row


def test_course_page_says_a_cycle_was_delayed_twice(
    client, login, course, nurse, treating_clinician, clock
):
    _delayed_twice_then_given(course, nurse, treating_clinician, clock)
    cycle_delay(cycle=_cycle(course, 3), days=7, reason=ANC, by=nurse)
    login(client, treating_clinician)
    cycle_2, cycle_3 = _course_page_rows(client, course, 2, 3)
    assert "delayed twice" in cycle_2
    assert "delay-count" not in cycle_3  # delayed once, and its status says so


# --- REST and GraphQL -----------------------------------------------------------------------


def _token_client(user: User) -> Client:
    _, raw = api_token_create(
        user=user, name="test", expires_at=timezone.now() + dt.timedelta(days=7), created_by=user
    )
    return Client(headers={"Authorization": f"Bearer {raw}"})


def test_rest_cycle_detail_has_the_status_history_newest_first(
    course, nurse, treating_clinician, clock
):
    cycle = _delayed_twice_then_given(course, nurse, treating_clinician, clock)
    url = f"/api/v1/patients/{course.patient_id}/cycles/{cycle.pk}"
    body = _token_client(treating_clinician).get(url).json()
    history = body["status_history"]
    assert [h["status"] for h in history] == ["given", "delayed", "delayed"]
    assert [h["delay_days"] for h in history] == [None, 7, 7]
    assert history[1] | {"id": None, "at": None} == {
        "id": None,
        "status": "delayed",
        "reason": PLATELETS,
        "given_despite": "",
        "planned_start_before": "2026-02-23",
        "planned_start_after": "2026-03-02",
        "delay_days": 7,
        "actual_start": None,
        "by_id": treating_clinician.pk,
        "by": str(treating_clinician),
        "at": None,
        "from_before_history": False,
        "moved_with_cycle": None,
        "summary": "Delayed 7 days: 23 Feb → 2 Mar 2026",
    }
    assert history[2]["by"] == "Maja Lindqvist (Oncology nurse)"


def test_rest_cycle_detail_of_another_care_teams_patient_is_404(
    course, treating_clinician, other_clinician
):
    cycle = cycle_hold(cycle=_cycle(course, 1), reason="Awaiting CT", by=treating_clinician)
    url = f"/api/v1/patients/{course.patient_id}/cycles/{cycle.pk}"
    response = _token_client(other_clinician).get(url)
    assert response.status_code == 404
    assert b"Awaiting CT" not in response.content


def test_graphql_cycle_has_the_status_history_behind_the_gate(world, as_user):
    cycle_delay(cycle=world.cycle_p, days=7, reason=ANC, by=world.clinician)
    cycle_delay(cycle=world.cycle_q, days=7, reason=PLATELETS, by=world.q_clinician)
    query = """query($id: ID!) { patient(id: $id) { courses { cycles { number
      statusHistory { status reason plannedStartBefore plannedStartAfter by fromBeforeHistory } } } } }"""
    _, body = gql(as_user(world.clinician), query, {"id": world.p.pk})
    cycles = body["data"]["patient"]["courses"][0]["cycles"]
    first = next(c for c in cycles if c["number"] == 1)
    assert first["statusHistory"] == [
        {
            "status": "delayed",
            "reason": ANC,
            "plannedStartBefore": "2026-03-02",
            "plannedStartAfter": "2026-03-09",
            "by": str(world.clinician),
            "fromBeforeHistory": False,
        }
    ]
    _, other = gql(as_user(world.clinician), query, {"id": world.q.pk})
    assert other["data"] == {"patient": None}


def test_graphql_status_history_type_filters_through_the_gate(world, rf):
    from treatments.graphql import CycleStatusChangeType

    cycle_delay(cycle=world.cycle_p, days=7, reason=ANC, by=world.clinician)
    cycle_delay(cycle=world.cycle_q, days=7, reason=PLATELETS, by=world.q_clinician)

    class _Info:
        def __init__(self, user):
            request = rf.get("/graphql/")
            request.user = user
            self.context = type("Ctx", (), {"request": request})()

    def reasons(user) -> set[str]:
        rows = CycleStatusChangeType.get_queryset(CycleStatusChange.objects.all(), _Info(user))
        return set(rows.values_list("reason", flat=True))

    assert reasons(world.clinician) == {ANC}
    assert reasons(world.q_clinician) == {PLATELETS}
    assert reasons(world.outsider) == set()


# --- Admin, backfill, demo ------------------------------------------------------------------


def test_admin_shows_the_history_read_only_under_the_gated_cycle():
    inline = next(
        i for i in admin.site._registry[ChemoCycle].inlines if i.model is CycleStatusChange
    )
    assert CycleStatusChange not in admin.site._registry  # no page of its own, outside the gate
    instance = inline(ChemoCycle, admin.site)
    assert not instance.has_add_permission(None)
    assert not instance.has_change_permission(None)
    assert not instance.has_delete_permission(None)


def test_admin_cycle_page_lists_its_history(client, login, course, care_team, admin_user):
    # A clinician with admin access on the care team: the only admin user the gate lets in.
    staff = ClinicianFactory.create(is_staff=True, is_superuser=True)
    care_team_add_member(team=care_team, clinician=staff, granted_by=admin_user)
    cycle = cycle_hold(cycle=_cycle(course, 1), reason="Awaiting echocardiogram", by=staff)
    login(client, staff)
    response = client.get(reverse("admin:treatments_chemocycle_change", args=[cycle.pk]))
    assert response.status_code == 200
    inline = response.content.decode().split("Cycle status changes")[1]
    assert "Awaiting echocardiogram" in inline
    login(client, admin_user)  # on no care team: the cycle, history and all, is a 404
    assert (
        client.get(reverse("admin:treatments_chemocycle_change", args=[cycle.pk])).status_code
        == 404
    )


def test_backfill_gives_each_decided_cycle_its_latest_change_marked_as_such(treating_clinician):
    backfill = importlib.import_module(
        "treatments.migrations.0017_backfill_cycle_status_history"
    ).backfill
    course = CourseFactory.create()
    delayed = ChemoCycleFactory.create(
        course=course,
        number=1,
        status="delayed",
        reason=ANC,
        status_changed_by=treating_clinician,
        status_changed_at=NOW,
    )
    given = ChemoCycleFactory.create(
        course=course,
        number=2,
        status="given",
        actual_start=dt.date(2026, 1, 19),
        given_despite="delay",
        override_reason="Counts reviewed: proceed",
    )
    ChemoCycleFactory.create(course=course, number=3)  # planned: nothing decided
    backfill(apps, None)
    backfill(apps, None)  # safe to run again
    (delay_row,) = _history(delayed)
    assert delay_row.from_before_history
    assert (delay_row.reason, delay_row.by, delay_row.at) == (ANC, treating_clinician, NOW)
    assert delay_row.planned_start_before is None
    assert delay_row.summary == "Delayed to 5 Jan 2026"
    (give_row,) = _history(given)
    assert (give_row.reason, give_row.given_despite, give_row.by, give_row.at) == (
        "Counts reviewed: proceed",
        "delay",
        None,
        None,
    )
    assert CycleStatusChange.objects.count() == 2


def test_demo_bulk_cycles_get_their_history_rows(treating_clinician):
    course = CourseFactory.create()
    cycles = [
        ChemoCycleFactory.create(
            course=course,
            number=1,
            status="given",
            actual_start=START,
            status_changed_by=treating_clinician,
            status_changed_at=NOW,
        ),
        ChemoCycleFactory.create(course=course, number=2),
    ]
    CycleStatusChange.objects.bulk_create(bulk_status_history(cycles))
    (row,) = CycleStatusChange.objects.all()
    assert (row.cycle, row.status, row.actual_start, row.by) == (
        cycles[0],
        "given",
        START,
        treating_clinician,
    )


# --- Moves: a later cycle moved with an earlier cycle's delay or give ---------------------------


@pytest.fixture
def six_cycles(patient: Patient, treating_clinician: User) -> Course:
    """q14d x 6 from Mon 2 Feb 2026: 2 Feb, 16 Feb, 2 Mar, 16 Mar, 30 Mar, 13 Apr."""
    regimen = regimen_create(name="q14d x6 (moves)", phases=[(14, 6, [("Drug A", "50", "mg/m2")])])
    return _started(patient, regimen, treating_clinician)


def _moves(cycle: ChemoCycle) -> list[CycleStatusChange]:
    return [c for c in _history(cycle) if c.moved_with_id is not None]


def test_delay_writes_a_move_row_on_each_later_open_cycle_only(
    six_cycles, nurse, treating_clinician, clock
):
    course = six_cycles
    cycle_give(cycle=_cycle(course, 1), actual_start=START, given_by=nurse)
    cycle_hold(cycle=_cycle(course, 4), reason="Awaiting echocardiogram", by=treating_clinician)
    cycle_cancel(cycle=_cycle(course, 5), reason="Grade 3 neuropathy", by=treating_clinician)
    clock.shift(dt.timedelta(hours=1))
    cycle_delay(cycle=_cycle(course, 2), days=7, reason=ANC, by=nurse)

    (delay,) = _history(_cycle(course, 2))
    assert (delay.status, delay.moved_with, delay.delay_days) == ("delayed", None, 7)
    moved = {n: _moves(_cycle(course, n)) for n in range(1, 7)}
    assert [n for n, rows in moved.items() if rows] == [3, 4, 6]  # not given 1 nor cancelled 5
    assert [(r.status, r.planned_start_before, r.planned_start_after) for r in moved[3]] == [
        ("planned", dt.date(2026, 3, 2), dt.date(2026, 3, 9))
    ]
    (held,) = moved[4]  # still held: the move keeps its own status, and the delay's reason
    assert (held.status, held.reason) == ("held", ANC)
    assert (held.planned_start_before, held.planned_start_after) == (
        dt.date(2026, 3, 16),
        dt.date(2026, 3, 23),
    )
    for (row,) in (moved[3], moved[4], moved[6]):
        assert (row.moved_with, row.reason, row.by, row.at) == (
            delay,
            ANC,
            nurse,
            NOW + dt.timedelta(hours=1),
        )
        assert row.delay_days is None  # not a delay of its own
        assert row.moved_with_cycle == 2
    assert moved[3][0].summary == "Moved 7 days with cycle 2's delay: 2 Mar → 9 Mar 2026"
    assert moved[6][0].summary == "Moved 7 days with cycle 2's delay: 13 Apr → 20 Apr 2026"
    assert [c.status for c in _history(_cycle(course, 5))] == ["cancelled"]
    assert list(delay.moved_cycles.order_by("cycle__number")) == [*moved[3], *moved[4], *moved[6]]
    logged = AccessLog.objects.filter(action="create", object_type="CycleStatusChange")
    assert {str(r.pk) for r in (*moved[3], *moved[4], *moved[6])} <= set(
        logged.values_list("object_id", flat=True)
    )


def test_delay_counts_only_the_cycles_own_delays(
    client, login, six_cycles, nurse, treating_clinician, clock
):
    course = six_cycles
    cycle_delay(cycle=_cycle(course, 3), days=7, reason=PLATELETS, by=nurse)
    clock.shift(dt.timedelta(hours=1))
    cycle_delay(cycle=_cycle(course, 2), days=7, reason=ANC, by=nurse)
    # Cycle 3, delayed once on its own, moved again with cycle 2: its move row says "delayed"
    # (its own status then), but it was not delayed twice.
    move, own = _history(_cycle(course, 3))
    assert (move.status, move.moved_with_cycle, own.moved_with) == ("delayed", 2, None)
    assert (move.planned_start_before, move.planned_start_after) == (
        dt.date(2026, 3, 9),
        dt.date(2026, 3, 16),
    )
    counts = CycleStatusChange.objects.delay_counts(course=course)
    assert counts == {_cycle(course, 2).pk: 1, _cycle(course, 3).pk: 1}
    login(client, treating_clinician)
    (cycle_3,) = _course_page_rows(client, course, 3)
    assert "delayed twice" not in cycle_3


def test_a_late_or_early_give_moves_later_cycles_with_a_row_saying_so(
    six_cycles, nurse, settings, clock
):
    settings.CYCLE_EARLY_TOLERANCE_DAYS = 2
    course = six_cycles
    cycle_delay(cycle=_cycle(course, 3), days=7, reason=PLATELETS, by=nurse)  # 2 → 9 Mar
    clock.shift(dt.timedelta(hours=1))
    give_1 = cycle_give(cycle=_cycle(course, 1), actual_start=dt.date(2026, 2, 4), given_by=nurse)
    (late,) = _moves(_cycle(course, 2))
    assert (late.moved_with, late.reason, late.by) == (_history(give_1)[0], "", nurse)
    assert late.summary == "Moved 2 days with cycle 1, given on 4 Feb: 16 Feb → 18 Feb 2026"
    clock.shift(dt.timedelta(hours=1))
    # Cycle 2 brought forward 2 days: cycle 3, delayed before, moves earlier with it.
    cycle_give(cycle=_cycle(course, 2), actual_start=dt.date(2026, 2, 16), given_by=nurse)
    early, _, own = _history(_cycle(course, 3))
    assert (own.status, own.moved_with) == ("delayed", None)
    assert (early.status, early.planned_start_before, early.planned_start_after) == (
        "delayed",
        dt.date(2026, 3, 11),
        dt.date(2026, 3, 9),
    )
    assert (
        early.summary == "Moved 2 days earlier with cycle 2, given on 16 Feb: 11 Mar → 9 Mar 2026"
    )
    assert CycleStatusChange.objects.delay_counts(course=course) == {_cycle(course, 3).pk: 1}


def test_an_on_time_give_moves_nothing_and_writes_no_move(six_cycles, nurse):
    cycle_give(cycle=_cycle(six_cycles, 1), actual_start=START, given_by=nurse)
    assert not CycleStatusChange.objects.filter(moved_with__isnull=False).exists()


def test_a_refused_delay_moves_nothing_and_writes_no_move(six_cycles, nurse, treating_clinician):
    course = six_cycles
    before = list(course.cycles.order_by("number").values_list("planned_start", flat=True))
    for days in (0, 400, True):
        with pytest.raises(ValidationError):
            cycle_delay(cycle=_cycle(course, 2), days=days, reason=ANC, by=nurse)
    with pytest.raises(ValidationError):
        cycle_delay(cycle=_cycle(course, 2), new_start=dt.date(2026, 2, 10), reason=ANC, by=nurse)
    stale = _cycle(course, 2).version
    cycle_hold(cycle=_cycle(course, 2), reason="Awaiting CT", by=treating_clinician)
    with pytest.raises(CycleChanged):
        cycle_delay(cycle=_cycle(course, 2), days=7, reason=ANC, by=nurse, seen_version=stale)
    assert list(course.cycles.order_by("number").values_list("planned_start", flat=True)) == before
    assert not CycleStatusChange.objects.filter(moved_with__isnull=False).exists()


def test_move_rows_are_append_only_and_keep_their_cause(six_cycles, nurse):
    course = six_cycles
    delay = cycle_delay(cycle=_cycle(course, 2), days=7, reason=ANC, by=nurse)
    (move,) = _moves(_cycle(course, 3))[:1]
    move.reason = "Something else"
    with pytest.raises(AppendOnlyError):
        move.save()
    with pytest.raises(AppendOnlyError):
        move.delete()
    with pytest.raises(AppendOnlyError):
        _history(delay)[0].moved_cycles.all().delete()
    with pytest.raises(AppendOnlyError):
        CycleStatusChange.objects.filter(moved_with__isnull=False).update(reason="x")
    assert {r.reason for r in CycleStatusChange.objects.all()} == {ANC}


def test_a_move_row_must_move_with_an_earlier_cycle_of_its_course(six_cycles, nurse):
    course = six_cycles
    given = cycle_give(cycle=_cycle(course, 1), actual_start=START, given_by=nurse)
    cycle_delay(cycle=_cycle(course, 3), days=7, reason=ANC, by=nurse)
    (give,) = _history(given)
    (delay,) = _history(_cycle(course, 3))

    def move(cycle, cause, *, after: dt.date, status: str = "") -> CycleStatusChange:
        return CycleStatusChange(
            cycle=cycle,
            status=status or cycle.status,
            reason=cause.reason,
            planned_start_before=cycle.planned_start,
            planned_start_after=after,
            by=nurse,
            at=NOW,
            moved_with=cause,
        )

    earlier, later = _cycle(course, 2), _cycle(course, 4)  # 16 Feb; 23 Mar
    with pytest.raises(ValidationError, match="earlier cycle of its own course"):
        move(earlier, delay, after=dt.date(2026, 2, 23)).full_clean()
    with pytest.raises(ValidationError, match="moves the planned start later"):
        move(later, delay, after=dt.date(2026, 3, 20)).full_clean()
    with pytest.raises(ValidationError, match="changes the planned start"):
        move(later, give, after=later.planned_start).full_clean()
    with pytest.raises(ValidationError, match="cycle_change_status"):  # a move is no give
        move(later, give, after=dt.date(2026, 3, 25), status="given").full_clean()
    move(later, give, after=dt.date(2026, 3, 20)).full_clean()  # a give may bring it forward


def test_cycle_page_shows_the_move_with_its_reason_and_who(
    client, login, six_cycles, nurse, treating_clinician
):
    course = six_cycles
    cycle_delay(cycle=_cycle(course, 2), days=7, reason=ANC, by=nurse)
    login(client, treating_clinician)
    section = _history_section(client.get(_page_url(_cycle(course, 3))).content.decode())
    assert "Moved 7 days with cycle 2&#x27;s delay: 2 Mar → 9 Mar 2026" in section
    assert ANC in section
    assert 'Maja Lindqvist <span class="muted small">(Oncology nurse)</span>' in section
    assert f'href="{_page_url(_cycle(course, 2))}"' in section
    assert 'class="status-moved"' in section  # not styled as a decision about cycle 3
    assert "status-planned" not in section


def test_cycle_page_history_with_moves_costs_one_query_however_many_rows(
    client, login, six_cycles, nurse, treating_clinician
):
    course = six_cycles
    login(client, treating_clinician)
    cycle_delay(cycle=_cycle(course, 2), days=1, reason=ANC, by=nurse)
    one_move = _page_queries(client, _cycle(course, 4))
    cycle_delay(cycle=_cycle(course, 3), days=1, reason=PLATELETS, by=treating_clinician)
    cycle_delay(cycle=_cycle(course, 2), days=1, reason="Still recovering", by=nurse)
    assert len(_moves(_cycle(course, 4))) == 3
    assert _page_queries(client, _cycle(course, 4)) == one_move


def test_rest_status_history_says_which_cycle_it_moved_with(six_cycles, nurse, treating_clinician):
    course = six_cycles
    cycle_delay(cycle=_cycle(course, 2), days=7, reason=ANC, by=nurse)
    cycle = _cycle(course, 3)
    url = f"/api/v1/patients/{course.patient_id}/cycles/{cycle.pk}"
    (move,) = _token_client(treating_clinician).get(url).json()["status_history"]
    assert move | {"id": None, "at": None} == {
        "id": None,
        "status": "planned",
        "reason": ANC,
        "given_despite": "",
        "planned_start_before": "2026-03-02",
        "planned_start_after": "2026-03-09",
        "delay_days": None,
        "actual_start": None,
        "by_id": nurse.pk,
        "by": "Maja Lindqvist (Oncology nurse)",
        "at": None,
        "from_before_history": False,
        "moved_with_cycle": 2,
        "summary": "Moved 7 days with cycle 2's delay: 2 Mar → 9 Mar 2026",
    }


def test_graphql_status_history_says_which_cycle_it_moved_with(world, as_user):
    cycle_delay(cycle=world.cycle_p, days=7, reason=ANC, by=world.clinician)
    query = """query($id: ID!) { patient(id: $id) { courses { cycles { number
      statusHistory { status reason by plannedStartBefore plannedStartAfter movedWithCycle } } } } }"""
    _, body = gql(as_user(world.clinician), query, {"id": world.p.pk})
    cycles = {c["number"]: c for c in body["data"]["patient"]["courses"][0]["cycles"]}
    assert cycles[1]["statusHistory"][0]["movedWithCycle"] is None
    assert cycles[2]["statusHistory"] == [
        {
            "status": "planned",
            "reason": ANC,
            "by": str(world.clinician),
            "plannedStartBefore": "2026-03-16",
            "plannedStartAfter": "2026-03-23",
            "movedWithCycle": 1,
        }
    ]
