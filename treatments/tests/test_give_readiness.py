"""Giving a cycle against the pre-cycle check: a reason, kept with the cycle; none needed when
the check says treat."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from patients.tests.dashboard_world import (
    anc_test,
    course_with_cycles,
    lab_history,
    regimen_with_anc_rules,
)
from treatments.models import ChemoCycle
from treatments.services import cycle_give

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _at_noon() -> Iterator[None]:
    """Today at noon: "today's" result is stamped two hours ago (lab_history), which between
    midnight and 2 am fell on yesterday and made the after-the-fact test fail at night."""
    noon = dt.datetime.combine(timezone.localdate(), dt.time(12), tzinfo=dt.UTC)
    with time_machine.travel(noon, tick=False):
        yield


@pytest.fixture
def next_cycle(patient):
    anc = anc_test()
    # Cycle 2 due today: cycle 1 given 14 days ago.
    course = course_with_cycles(patient, regimen=regimen_with_anc_rules(anc=anc), given=1, total=4)
    return course.cycles.get(number=2), anc


def test_a_cycle_the_check_clears_is_given_without_a_reason(
    patient, next_cycle, treating_clinician
):
    cycle, anc = next_cycle
    lab_history(patient, test=anc, count=1, latest_value="2.1")  # >= 1.5: treat
    given = cycle_give(cycle=cycle, actual_start=timezone.localdate(), given_by=treating_clinician)
    assert (given.status, given.given_despite, given.override_reason) == ("given", "", "")


def test_a_cycle_the_check_delays_needs_a_reason(patient, next_cycle, treating_clinician):
    cycle, anc = next_cycle
    lab_history(patient, test=anc, count=1, latest_value="1.2")  # >= 1.0: delay 7 days
    with pytest.raises(ValidationError) as excinfo:
        cycle_give(cycle=cycle, actual_start=timezone.localdate(), given_by=treating_clinician)
    assert "The pre-cycle check says “Delay”" in excinfo.value.message_dict["override_reason"][0]
    assert ChemoCycle.objects.get(pk=cycle.pk).status == ChemoCycle.Status.PLANNED

    given = cycle_give(
        cycle=cycle,
        actual_start=timezone.localdate(),
        given_by=treating_clinician,
        override_reason="G-CSF started; oncologist accepts ANC 1.2 for this cycle",
    )
    assert given.given_despite == "delay"


def test_a_reason_of_a_few_letters_is_not_a_reason(patient, next_cycle, treating_clinician):
    cycle, _ = next_cycle  # no bloods at all: not evaluable
    with pytest.raises(ValidationError) as excinfo:
        cycle_give(
            cycle=cycle,
            actual_start=timezone.localdate(),
            given_by=treating_clinician,
            override_reason="ok",
        )
    assert "at least 10 characters" in excinfo.value.message_dict["override_reason"][0]


def test_a_cycle_recorded_after_the_fact_is_judged_on_the_results_of_its_day(
    patient, next_cycle, treating_clinician
):
    # Given yesterday on yesterday's normal count; today's low count is after the fact.
    cycle, anc = next_cycle
    lab_history(patient, test=anc, count=2, latest_value="0.9")  # today 0.9, yesterday 3.0
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    given = cycle_give(cycle=cycle, actual_start=yesterday, given_by=treating_clinician)
    assert given.given_despite == ""
