"""Service writes run in their own transaction, as in production (ATOMIC_REQUESTS is off).

A test already runs inside a transaction, which hides a service that is not atomic: on
PostgreSQL its row lock (select_for_update) fails outside any transaction (a tester's "Give
cycle" answered 500), and on any database a failure half-way leaves half the write. So these
tests look for the service's *own* atomic block, one level inside the test's.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from patients.tests.dashboard_world import (
    anc_test,
    course_with_cycles,
    lab_history,
    regimen_with_anc_rules,
)
from treatments import services
from treatments.models import ChemoCycle

pytestmark = pytest.mark.django_db


@pytest.fixture
def due_cycle(patient):
    """Cycle 2 of 4, due today, with an ANC that clears it."""
    anc = anc_test()
    course = course_with_cycles(patient, regimen=regimen_with_anc_rules(anc=anc), given=1, total=4)
    lab_history(patient, test=anc, count=1, latest_value="2.1")
    return course.cycles.get(number=2)


ACTIONS = {
    "give": lambda cycle, by: services.cycle_give(
        cycle=cycle, actual_start=timezone.localdate(), given_by=by
    ),
    "delay": lambda cycle, by: services.cycle_delay(
        cycle=cycle, days=7, reason="ANC recovering", by=by
    ),
    "hold": lambda cycle, by: services.cycle_hold(cycle=cycle, reason="Awaiting review", by=by),
    "cancel": lambda cycle, by: services.cycle_cancel(cycle=cycle, reason="Dose omitted", by=by),
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_a_cycle_action_locks_the_cycle_inside_its_own_transaction(
    due_cycle, treating_clinician, action, monkeypatch
):
    test_depth = len(connection.atomic_blocks)
    depths = []
    lock = services._lock_cycle

    def recording_lock(cycle, seen_version=None):
        depths.append(len(connection.atomic_blocks))
        return lock(cycle, seen_version)

    monkeypatch.setattr(services, "_lock_cycle", recording_lock)
    ACTIONS[action](due_cycle, treating_clinician)
    assert depths, "the cycle was never locked"
    assert all(depth > test_depth for depth in depths)


def test_a_give_that_fails_half_way_writes_nothing(due_cycle, treating_clinician, monkeypatch):
    later = list(due_cycle.course.cycles.filter(number__gt=2).values_list("pk", "planned_start"))

    def fail(*args, **kwargs):
        raise RuntimeError("the database went away")

    # The cycle is saved as given before later cycles are moved: that save must not survive.
    monkeypatch.setattr(services, "_shift_later_open_cycles", fail)
    with pytest.raises(RuntimeError):
        ACTIONS["give"](due_cycle, treating_clinician)
    assert ChemoCycle.objects.get(pk=due_cycle.pk).status == ChemoCycle.Status.PLANNED
    moved = due_cycle.course.cycles.filter(number__gt=2).values_list("pk", "planned_start")
    assert list(moved) == later
