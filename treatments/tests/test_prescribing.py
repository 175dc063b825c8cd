"""Who prescribes. The decision to treat and to end treatment (starting and stopping a course,
giving a cycle against the pre-cycle check) is an oncologist's. Prescribing the cycles after it
(changing a dose level, cancelling a cycle, releasing a held one) is an oncologist's or a
non-medical prescriber's: a nurse or pharmacist the trust authorised (User.sact_prescriber;
BOPA/UKONS guidance on non-medical prescribing of SACT). Other nurses give and record, other
pharmacists verify; on every door they get 403 and nothing is written (a tester's nurse had set
'50% from cycle 2'). A pharmacist does not verify doses at a level they set themselves."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from labs.models import PreCycleRule
from oncoplanner.accounts.api_tokens import api_token_create
from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import ClinicianFactory
from patients.services import care_team_add_member
from patients.tests.dashboard_world import (
    course_with_cycles,
    lab_history,
    regimen_with_anc_rules,
)
from patients.tests.factories import BodyMeasurementFactory
from treatments.models import ChemoCycle, Course, DoseModification, DoseVerification, Regimen
from treatments.services import (
    course_start,
    course_stop,
    cycle_cancel,
    cycle_delay,
    cycle_doses_verify,
    cycle_give,
    cycle_hold,
    dose_modification_record,
)
from treatments.tests.factories import allergy_status_taken

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
    assert "Dose levels are set by an oncologist or a non-medical prescriber." in html
    assert "Record dose modification" not in html


def test_the_oncologist_still_sees_and_uses_the_dose_form(
    client, login, course, treating_clinician
):
    login(client, treating_clinician)
    page = client.get(reverse("treatments:course_detail", args=[course.patient_id, course.pk]))
    assert "Record dose modification" in page.content.decode()


def _rest(user: User) -> Client:
    _, raw = api_token_create(
        user=user, name="test", expires_at=timezone.now() + dt.timedelta(days=7), created_by=user
    )
    return Client(headers={"Authorization": f"Bearer {raw}"})


def test_rest_is_403_with_the_reason(course, colleague):
    client = _rest(colleague)
    url = f"/api/v1/patients/{course.patient_id}/courses/{course.pk}/dose-modifications"
    body = {"from_cycle_number": 2, "percent": "50", "reason": "Nausea"}
    response = client.post(url, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 403
    assert "Only an oncologist or a non-medical prescriber" in response.json()["detail"]
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
    assert (
        "Releasing a held cycle is an oncologist's or a non-medical prescriber's decision" in page
    )
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


# --- Non-medical prescribers ------------------------------------------------------------------


def _on_team(care_team, admin_user, discipline: str, *, sact_prescriber: bool, **names) -> User:
    user = ClinicianFactory.create(discipline=discipline, sact_prescriber=sact_prescriber, **names)
    care_team_add_member(team=care_team, clinician=user, granted_by=admin_user)
    return user


@pytest.fixture(params=[User.Discipline.NURSE, User.Discipline.PHARMACIST])
def nmp(request, care_team, admin_user) -> User:
    """A nurse or a pharmacist independent prescriber on the patient's care team."""
    return _on_team(care_team, admin_user, request.param, sact_prescriber=True)


@pytest.fixture
def nmp_nurse(care_team, admin_user) -> User:
    return _on_team(care_team, admin_user, User.Discipline.NURSE, sact_prescriber=True)


def _anc_passes(course: Course) -> None:
    anc = PreCycleRule.objects.filter(regimen=course.regimen).first().test
    lab_history(course.patient, test=anc, count=1, latest_value="2.1")


def test_a_non_medical_prescriber_prescribes_the_cycles(course, nmp, treating_clinician):
    level = dose_modification_record(
        course=course, from_cycle_number=2, percent=80, reason="Grade 2 neuropathy", created_by=nmp
    )
    assert (level.created_by, level.percent) == (nmp, 80)
    # Giving against the pre-cycle check (no ANC on record) stays the oncologist's decision.
    with pytest.raises(PermissionDenied, match="an oncologist's decision"):
        cycle_give(
            cycle=course.cycles.get(number=2),
            actual_start=timezone.localdate(),
            given_by=nmp,
            override_reason="Patient feels well, wants to proceed",
        )
    _anc_passes(course)
    cycle_hold(cycle=course.cycles.get(number=2), reason="Await echo: LVEF", by=treating_clinician)
    delayed = cycle_delay(cycle=course.cycles.get(number=2), reason="Echo Friday", by=nmp, days=2)
    assert (delayed.status, delayed.status_changed_by) == (ChemoCycle.Status.DELAYED, nmp)
    cycle_hold(cycle=course.cycles.get(number=2), reason="Echo report awaited", by=nmp)
    released = cycle_give(
        cycle=course.cycles.get(number=2), actual_start=timezone.localdate(), given_by=nmp
    )
    assert (released.status, released.status_changed_by) == (ChemoCycle.Status.GIVEN, nmp)
    cancelled = cycle_cancel(cycle=course.cycles.get(number=3), reason="Patient away", by=nmp)
    assert (cancelled.status, cancelled.status_changed_by) == (ChemoCycle.Status.CANCELLED, nmp)


def test_a_non_medical_prescriber_nurse_prescribes_on_the_pages(
    client, login, course, nmp_nurse, treating_clinician
):
    _anc_passes(course)
    login(client, nmp_nurse)
    course_url = reverse("treatments:course_detail", args=[course.patient_id, course.pk])
    html = client.get(course_url).content.decode()
    assert "Record dose modification" in html
    assert "Dose levels are set by" not in html
    url = reverse("treatments:dose_modification_create", args=[course.patient_id, course.pk])
    body = {"from_cycle_number": "2", "percent": "80", "reason": "Grade 2 neuropathy"}
    assert client.post(url, body).status_code == 302
    assert DoseModification.objects.get().created_by == nmp_nurse

    cycle_hold(cycle=course.cycles.get(number=2), reason="Await echo: LVEF", by=treating_clinician)
    page = client.get(_cycle_url("cycle_detail", course)).content.decode()
    assert "On hold: “Await echo: LVEF”" in page
    assert "Releasing a held cycle is" not in page
    assert 'name="actual_start"' in page
    body = {"actual_start": timezone.localdate().isoformat()}
    assert client.post(_cycle_url("cycle_give", course), body).status_code == 302
    assert course.cycles.get(number=2).status == ChemoCycle.Status.GIVEN

    cycle_hold(cycle=course.cycles.get(number=3), reason="Scan review", by=treating_clinician)
    delay = client.post(_cycle_url("cycle_delay", course, 3), {"days": "7", "reason": "Scan"})
    assert delay.status_code == 302
    assert course.cycles.get(number=3).status == ChemoCycle.Status.DELAYED
    page = client.get(_cycle_url("cycle_detail", course, 3)).content.decode()
    assert 'class="danger">Cancel cycle</button>' in page
    cancel = client.post(_cycle_url("cycle_cancel", course, 3), {"reason": "Patient moving"})
    assert cancel.status_code == 302
    assert course.cycles.get(number=3).status == ChemoCycle.Status.CANCELLED


def test_a_non_medical_prescriber_cancels_a_cycle_through_rest(course, nmp_nurse):
    cycle = course.cycles.get(number=3)
    response = _rest(nmp_nurse).post(
        f"/api/v1/patients/{course.patient_id}/cycles/{cycle.pk}/cancel",
        data=json.dumps({"reason": "Patient moving abroad", "seen_version": cycle.version}),
        content_type="application/json",
    )
    assert response.status_code == 200
    cycle.refresh_from_db()
    assert (cycle.status, cycle.status_changed_by) == (ChemoCycle.Status.CANCELLED, nmp_nurse)


def test_a_non_medical_prescriber_neither_starts_nor_stops_a_course(
    client, login, patient, course, nmp
):
    regimen = Regimen.objects.get(name="mFOLFOX6", version=1)
    today = timezone.localdate()
    with pytest.raises(PermissionDenied, match="Only an oncologist decides to treat"):
        course_start(
            patient=patient, regimen=regimen, start_date=today, intent="curative", created_by=nmp
        )
    with pytest.raises(PermissionDenied, match="Only an oncologist decides to treat"):
        course_stop(course=course, reason="toxicity", stopped_on=today, by=nmp)

    login(client, nmp)
    create_url = reverse("treatments:course_create", args=[patient.pk])
    assert (
        "Previewing only: a course is started by an oncologist"
        in client.get(create_url).content.decode()
    )
    start = {"regimen": regimen.pk, "start_date": today.isoformat(), "intent": "curative"}
    assert client.post(create_url, start).status_code == 403
    course_page = client.get(
        reverse("treatments:course_detail", args=[patient.pk, course.pk])
    ).content.decode()
    assert "A course is stopped by an oncologist" in course_page
    assert "Stop course" not in course_page
    stop_url = reverse("treatments:course_stop", args=[patient.pk, course.pk])
    stop = {"reason": Course.StopReason.NOT_TOLERATED, "stopped_on": today.isoformat()}
    assert client.post(stop_url, stop).status_code == 403

    response = _rest(nmp).post(
        f"/api/v1/patients/{patient.pk}/courses",
        data=json.dumps({"regimen_id": regimen.pk, "start_date": str(today), "intent": "curative"}),
        content_type="application/json",
    )
    assert response.status_code == 403
    assert "Only an oncologist decides to treat" in response.json()["detail"]
    assert Course.objects.count() == 1
    course.refresh_from_db()
    assert course.status != Course.Status.STOPPED
    assert not course.cycles.filter(status=ChemoCycle.Status.CANCELLED).exists()


# --- Separation of duties: a pharmacist does not verify the doses they prescribed -------------


@pytest.fixture
def dosable(patient) -> None:
    """A weight and height today and an allergy status: cycle 2's doses can be verified."""
    BodyMeasurementFactory.create(
        patient=patient,
        measured_on=timezone.localdate(),
        height_cm=Decimal("170"),
        weight_kg=Decimal("72"),
    )
    allergy_status_taken(patient)


def test_the_pharmacist_who_set_the_dose_level_does_not_verify_the_cycle(
    client, login, course, dosable, care_team, admin_user
):
    prescriber = _on_team(care_team, admin_user, User.Discipline.PHARMACIST, sact_prescriber=True)
    dose_modification_record(
        course=course,
        from_cycle_number=2,
        percent=80,
        reason="Grade 2 neuropathy",
        created_by=prescriber,
    )
    cycle = course.cycles.get(number=2)
    refusal = "another pharmacist verifies doses you prescribed"
    with pytest.raises(PermissionDenied, match=refusal):
        cycle_doses_verify(cycle=cycle, by=prescriber)

    login(client, prescriber)
    page = client.get(_cycle_url("cycle_detail", course)).content.decode()
    assert refusal in page
    assert "80% all drugs from cycle 2" in page
    assert "Verify the doses" not in page
    refused = client.post(_cycle_url("cycle_verify", course), {"seen_doses": "1:1=1"})
    assert refused.status_code == 403
    assert refusal in refused.content.decode()
    response = _rest(prescriber).post(
        f"/api/v1/patients/{course.patient_id}/cycles/{cycle.pk}/verify",
        data=json.dumps({}),
        content_type="application/json",
    )
    assert response.status_code == 403
    assert refusal in response.json()["detail"]
    assert not DoseVerification.objects.exists()

    second = _on_team(care_team, admin_user, User.Discipline.PHARMACIST, sact_prescriber=False)
    assert cycle_doses_verify(cycle=cycle, by=second).verified_by == second


def test_only_a_level_in_force_for_the_cycle_stops_its_setter_verifying(
    course, dosable, care_team, admin_user, treating_clinician
):
    prescriber = _on_team(care_team, admin_user, User.Discipline.PHARMACIST, sact_prescriber=True)
    cycle = course.cycles.get(number=2)
    # From cycle 3 on: cycle 2's doses are not at a level this pharmacist set.
    dose_modification_record(
        course=course, from_cycle_number=3, percent=80, reason="Neuropathy", created_by=prescriber
    )
    assert cycle_doses_verify(cycle=cycle, by=prescriber).verified_by == prescriber
    dose_modification_record(
        course=course, from_cycle_number=2, percent=80, reason="Neuropathy", created_by=prescriber
    )
    with pytest.raises(PermissionDenied):
        cycle_doses_verify(cycle=cycle, by=prescriber)
    # The oncologist's later level replaces it for cycle 2: it is no longer the pharmacist's.
    dose_modification_record(
        course=course,
        from_cycle_number=2,
        percent=90,
        reason="Neuropathy better",
        created_by=treating_clinician,
        confirm_level=True,
    )
    assert cycle_doses_verify(cycle=cycle, by=prescriber).verified_by == prescriber
