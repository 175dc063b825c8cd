"""Prescribing is an oncologist's act: planning a course, changing a dose level, cancelling a
cycle, giving one against the pre-cycle check, stopping a course. Nurses give and record,
pharmacists verify; on every door they get 403 and nothing is
written (a tester's nurse had set '50% from cycle 2')."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from labs.models import PreCycleRule
from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import ClinicianFactory
from patients.services import care_team_add_member
from patients.tests.dashboard_world import (
    course_with_cycles,
    lab_history,
    regimen_with_anc_rules,
)
from treatments.models import ChemoCycle, Course, DoseModification, Regimen
from treatments.services import (
    course_start,
    course_stop,
    cycle_cancel,
    cycle_delay,
    cycle_give,
    cycle_hold,
    dose_modification_record,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[User.Discipline.NURSE, User.Discipline.PHARMACIST])
def colleague(request, care_team, admin_user) -> User:
    user = ClinicianFactory.create(discipline=request.param)
    care_team_add_member(team=care_team, clinician=user, granted_by=admin_user)
    return user


@pytest.fixture
def course(patient) -> Course:
    return course_with_cycles(patient, regimen=regimen_with_anc_rules(), given=1, total=4)


def test_services_refuse_prescribing_to_a_nurse_or_pharmacist(patient, course, colleague):
    regimen = Regimen.objects.get(name="mFOLFOX6", version=1)
    with pytest.raises(PermissionDenied):
        course_start(
            patient=patient,
            regimen=regimen,
            start_date=timezone.localdate(),
            intent="curative",
            created_by=colleague,
        )
    with pytest.raises(PermissionDenied):
        dose_modification_record(
            course=course, from_cycle_number=2, percent=50, reason="Nausea", created_by=colleague
        )
    with pytest.raises(PermissionDenied):
        course_stop(course=course, reason="toxicity", stopped_on=timezone.localdate(), by=colleague)
    course.refresh_from_db()
    assert course.status != Course.Status.STOPPED
    assert Course.objects.count() == 1
    assert not DoseModification.objects.exists()


def test_the_page_is_403_for_a_nurse_and_offers_no_dose_form(client, login, course, colleague):
    login(client, colleague)
    url = reverse("treatments:dose_modification_create", args=[course.patient_id, course.pk])
    body = {"from_cycle_number": "2", "percent": "50", "reason": "Nausea"}
    assert client.post(url, body).status_code == 403
    assert not DoseModification.objects.exists()
    page = client.get(reverse("treatments:course_detail", args=[course.patient_id, course.pk]))
    html = page.content.decode()
    assert "Dose levels are set by an oncologist." in html
    assert "Record dose modification" not in html


def test_the_oncologist_still_sees_and_uses_the_dose_form(
    client, login, course, treating_clinician
):
    login(client, treating_clinician)
    page = client.get(reverse("treatments:course_detail", args=[course.patient_id, course.pk]))
    assert "Record dose modification" in page.content.decode()


def test_rest_is_403_with_the_reason(course, colleague):
    from oncoplanner.accounts.api_tokens import api_token_create

    _, raw = api_token_create(
        user=colleague,
        name="test",
        expires_at=timezone.now() + dt.timedelta(days=7),
        created_by=colleague,
    )
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    url = f"/api/v1/patients/{course.patient_id}/courses/{course.pk}/dose-modifications"
    body = {"from_cycle_number": 2, "percent": "50", "reason": "Nausea"}
    response = client.post(url, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 403
    assert "Only an oncologist prescribes" in response.json()["detail"]
    assert not DoseModification.objects.exists()


def _cycle_url(name: str, course: Course, number: int = 2) -> str:
    return reverse(f"treatments:{name}", args=[course.patient_id, course.pk, number])


def test_giving_against_the_check_is_an_oncologists_decision(client, login, course, colleague):
    # No ANC on record: the check cannot clear cycle 2. A nurse had given a cycle against a
    # hold with "patient feels well".
    reason = "Patient feels well, wants to proceed"
    with pytest.raises(PermissionDenied):
        cycle_give(
            cycle=course.cycles.get(number=2),
            actual_start=timezone.localdate(),
            given_by=colleague,
            override_reason=reason,
        )
    login(client, colleague)
    page = client.get(_cycle_url("cycle_detail", course)).content.decode()
    assert "giving the cycle against it is an oncologist's decision" in page
    assert 'name="override_reason"' not in page
    assert 'name="actual_start"' not in page  # no half a form: nothing to fill in
    body = {"actual_start": timezone.localdate().isoformat(), "override_reason": reason}
    refused = client.post(_cycle_url("cycle_give", course), body)
    assert refused.status_code == 403
    assert "an oncologist&#x27;s decision" in refused.content.decode()
    assert course.cycles.get(number=2).status == ChemoCycle.Status.PLANNED


def test_a_nurse_gives_a_cycle_the_check_clears(course, colleague):
    anc = PreCycleRule.objects.filter(regimen=course.regimen).first().test
    lab_history(course.patient, test=anc, count=1, latest_value="2.1")
    cycle = cycle_give(
        cycle=course.cycles.get(number=2), actual_start=timezone.localdate(), given_by=colleague
    )
    assert (cycle.status, cycle.given_despite) == (ChemoCycle.Status.GIVEN, "")


def test_releasing_a_held_cycle_is_an_oncologists_decision_even_when_labs_pass(
    client, login, course, colleague, treating_clinician
):
    oncologist = treating_clinician
    anc = PreCycleRule.objects.filter(regimen=course.regimen).first().test
    lab_history(course.patient, test=anc, count=1, latest_value="2.1")
    cycle_hold(cycle=course.cycles.get(number=2), reason="Await echo: LVEF", by=oncologist)
    with pytest.raises(PermissionDenied):
        cycle_give(
            cycle=course.cycles.get(number=2), actual_start=timezone.localdate(), given_by=colleague
        )
    login(client, colleague)
    page = client.get(_cycle_url("cycle_detail", course)).content.decode()
    assert "On hold: “Await echo: LVEF”" in page
    assert "Releasing a held cycle is an oncologist's decision" in page
    assert 'name="actual_start"' not in page
    body = {"actual_start": timezone.localdate().isoformat()}
    assert client.post(_cycle_url("cycle_give", course), body).status_code == 403
    assert course.cycles.get(number=2).status == ChemoCycle.Status.HELD
    # Nor can a delay lift the hold (a nurse had delayed a held cycle, which dropped the hold).
    with pytest.raises(PermissionDenied):
        cycle_delay(cycle=course.cycles.get(number=2), reason="Chair free", by=colleague, days=1)
    delay = client.post(_cycle_url("cycle_delay", course), {"days": "1", "reason": "Chair"})
    assert delay.status_code == 403
    assert course.cycles.get(number=2).status == ChemoCycle.Status.HELD
    released = cycle_give(
        cycle=course.cycles.get(number=2), actual_start=timezone.localdate(), given_by=oncologist
    )
    assert released.status == ChemoCycle.Status.GIVEN


def test_cancelling_a_cycle_is_an_oncologists_decision(client, login, course, colleague):
    with pytest.raises(PermissionDenied):
        cycle_cancel(cycle=course.cycles.get(number=2), reason="Patient moving", by=colleague)
    login(client, colleague)
    page = client.get(_cycle_url("cycle_detail", course)).content.decode()
    assert "A cycle is cancelled by an oncologist" in page
    assert client.post(_cycle_url("cycle_cancel", course), {"reason": "Moving"}).status_code == 403
    assert course.cycles.get(number=2).status == ChemoCycle.Status.PLANNED
