from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessLog
from labs.models import LabResult, LabTest
from oncoplanner.accounts.tests.factories import ClinicianFactory
from patients.services import care_team_add_member, patient_create
from patients.tests.factories import BodyMeasurementFactory, PatientFactory
from treatments.models import (
    Administration,
    ChemoCycle,
    Course,
    CtcaeTerm,
    DoseModification,
    Regimen,
    RegimenDrug,
    SideEffect,
)
from treatments.services import course_start, cycle_give
from treatments.tests.factories import (
    AdministrationFactory,
    ChemoCycleFactory,
    CourseFactory,
    pharmacy_verified,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_20_march_2026")]

TODAY = dt.date(2026, 3, 20)
START = dt.date(2026, 3, 2)  # a Monday, cycle 1 of mFOLFOX6 (reference data, 12 x 14 days)
# These patients have no pre-cycle bloods: giving a cycle needs the reason (cycle_give).
REVIEWED = "Counts reviewed at the referring hospital"
HX = {"HX-Request": "true"}
PASSWORD = "correct-horse-battery-staple"  # every factory user's (UserFactory)


@pytest.fixture
def mfolfox6(db: None) -> Regimen:
    return Regimen.objects.get(name="mFOLFOX6", version=1)


@pytest.fixture
def course(measured, mfolfox6, treating_clinician) -> Course:
    return course_start(
        patient=measured,
        regimen=mfolfox6,
        start_date=START,
        intent="adjuvant",
        created_by=treating_clinician,
        confirm_past_start=True,
    )


@pytest.fixture
def as_clinician(client, login, treating_clinician):
    return login(client, treating_clinician)


@pytest.fixture
def as_outsider(client, login, other_clinician):
    return login(client, other_clinician)


def _team_patient(care_team):
    """A second patient on the same care team, created through the service (perms granted)."""
    fields = PatientFactory.build()
    return patient_create(
        created_by=None,
        care_team=care_team,
        mrn="MRN-OTHER-1",
        given_name=fields.given_name,
        family_name=fields.family_name,
        date_of_birth=fields.date_of_birth,
        sex=fields.sex,
    )


def _url(name: str, *args: object) -> str:
    return reverse(f"treatments:{name}", args=args)


def _course_url(name: str, course: Course, *extra: object) -> str:
    return _url(name, course.patient_id, course.pk, *extra)


def _log_exists(**kwargs: object) -> bool:
    return AccessLog.objects.filter(**kwargs).exists()


def _counts() -> tuple[int, ...]:
    return (
        Course.objects.count(),
        ChemoCycle.objects.exclude(status="planned").count(),
        DoseModification.objects.count(),
        Administration.objects.count(),
        SideEffect.objects.count(),
    )


# --- Start a course -----------------------------------------------------------------------


def test_course_create_page_lists_active_regimens_with_phases(as_clinician, measured):
    response = as_clinician.get(_url("course_create", measured.pk))
    assert response.status_code == 200
    assert b"mFOLFOX6 v1: mFOLFOX6 q14d x 12" in response.content
    assert _log_exists(action="read", surface="page", patient_id=measured.pk, object_type="Patient")


def _doxorubicin_240_mg_m2_given(patient) -> Regimen:
    """240 mg/m2 of doxorubicin already given; dose-dense AC-T adds 4 x 60 = 240 (limit 450)."""
    ac_t = Regimen.objects.get(name="Dose-dense AC-T", version=1)
    doxorubicin = RegimenDrug.objects.get(phase__regimen=ac_t, drug__name__iexact="doxorubicin")
    earlier = CourseFactory.create(patient=patient, regimen=ac_t, status=Course.Status.COMPLETED)
    for number in range(1, 5):
        AdministrationFactory.create(
            cycle=ChemoCycleFactory.create(
                course=earlier, number=number, status=ChemoCycle.Status.GIVEN
            ),
            drug=doxorubicin.drug,
            regimen_drug=doxorubicin,
            dose_mg=Decimal("110.4"),
            inputs={"bsa_m2": "1.84"},
        )
    return ac_t


def test_course_past_the_lifetime_limit_is_started_only_when_confirmed(as_clinician, measured):
    ac_t = _doxorubicin_240_mg_m2_given(measured)
    data = {"regimen": ac_t.pk, "start_date": "2026-03-16", "intent": "adjuvant"}
    url = _url("course_create", measured.pk)
    asked = as_clinician.post(url, data, headers=HX)
    assert asked.status_code == 400
    content = asked.content.decode()
    assert "480 mg/m², above the lifetime limit of 450 mg/m²" in content
    assert 'name="confirm_lifetime_limit"' in content
    assert 'name="confirm_past_start"' not in content
    assert not Course.objects.filter(status=Course.Status.ACTIVE).exists()
    started = as_clinician.post(url, {**data, "confirm_lifetime_limit": "on"})
    assert started.status_code == 302
    course = Course.objects.get(status=Course.Status.ACTIVE)
    (warning,) = course.confirmed_warnings
    assert "480 mg/m², above the lifetime limit of 450 mg/m²" in warning
    # The warning stays where the course is run, not only in the preview.
    page = as_clinician.get(_course_url("course_detail", course)).content.decode()
    assert "Cycles still to give: doxorubicin: 240 mg/m² received + 240 planned" in page
    assert "Started despite: doxorubicin: 240 mg/m² received" in page
    # Each cycle page says how much of the limited drug has been received so far.
    page = as_clinician.get(_course_url("cycle_detail", course, 1)).content.decode()
    assert (
        "Lifetime doxorubicin received so far: <strong>240 mg/m²</strong> of a limit of 450" in page
    )


def test_course_create_preview_warns_when_the_plan_crosses_a_lifetime_limit(as_clinician, measured):
    ac_t = _doxorubicin_240_mg_m2_given(measured)
    response = as_clinician.get(
        _url("course_create", measured.pk),
        {"regimen": ac_t.pk, "start_date": "2026-03-02", "intent": "adjuvant"},
        headers=HX,
    )
    assert (
        "240 mg/m² received + 240 planned = 480 mg/m², above the lifetime limit of 450 mg/m²."
        in response.content.decode()
    )


def test_course_create_preview_fragment_shows_doses_and_inputs(as_clinician, measured, mfolfox6):
    response = as_clinician.get(
        _url("course_create", measured.pk),
        {"regimen": mfolfox6.pk, "start_date": "2026-03-02", "intent": "adjuvant"},
        headers=HX,
    )
    assert response.status_code == 200
    assert b"<html" not in response.content
    content = response.content.decode()
    assert "Calculated, to be verified" in content
    # BSA = sqrt(170 x 72 / 3600) = 1.84 m2; oxaliplatin 85 mg/m2 -> 156.4 mg
    assert "1.84 m²" in content
    assert "156.4 mg" in content
    assert "27 Feb 2026" in content  # the dates of the height and weight used
    assert "Mon 16 Mar 2026" in content  # cycle 2 planned
    assert _log_exists(surface="fragment", patient_id=measured.pk, action="read")


def test_course_create_preview_names_missing_height_and_weight(as_clinician, patient, mfolfox6):
    response = as_clinician.get(
        _url("course_create", patient.pk),
        {"regimen": mfolfox6.pk, "start_date": "2026-03-02"},
        headers=HX,
    )
    assert response.status_code == 200
    assert b"Record height and weight for this patient" in response.content


def test_course_create_post_starts_course_through_service(as_clinician, measured, mfolfox6):
    data = {"regimen": mfolfox6.pk, "start_date": "2026-03-02", "intent": "adjuvant"}
    response = as_clinician.post(_url("course_create", measured.pk), data)
    course = Course.objects.get(patient=measured)
    assert response.status_code == 302
    assert response["Location"] == _course_url("course_detail", course)
    assert course.cycles.count() == 12
    assert _log_exists(action="create", object_type="Course", object_id=str(course.pk))


def test_course_create_years_back_asks_to_confirm_then_starts(as_clinician, measured, mfolfox6):
    data = {"regimen": mfolfox6.pk, "start_date": "2020-03-02", "intent": "adjuvant"}
    refused = as_clinician.post(_url("course_create", measured.pk), data)
    assert refused.status_code == 400
    html = refused.content.decode()
    assert "Check the year" in html
    assert 'name="confirm_past_start"' in html  # offered only now
    assert not Course.objects.exists()

    started = as_clinician.post(
        _url("course_create", measured.pk), {**data, "confirm_past_start": "on"}
    )
    assert started.status_code == 302
    assert Course.objects.get(patient=measured).start_date == dt.date(2020, 3, 2)


def test_course_create_no_js_preview_writes_nothing(as_clinician, measured, mfolfox6):
    data = {
        "regimen": mfolfox6.pk,
        "start_date": "2026-03-02",
        "intent": "adjuvant",
        "preview": "1",
    }
    response = as_clinician.post(_url("course_create", measured.pk), data)
    assert response.status_code == 200
    assert b"156.4 mg" in response.content
    assert not Course.objects.exists()


def test_course_create_bad_date_is_400_naming_field(as_clinician, measured, mfolfox6):
    data = {"regimen": mfolfox6.pk, "start_date": "2026-02-30", "intent": "adjuvant"}
    response = as_clinician.post(_url("course_create", measured.pk), data, headers=HX)
    assert response.status_code == 400
    assert b"<html" not in response.content
    assert response.context["form"].errors["start_date"]
    assert not Course.objects.exists()


def test_course_create_second_open_course_is_400(as_clinician, course, mfolfox6):
    data = {"regimen": mfolfox6.pk, "start_date": "2026-03-16", "intent": "adjuvant"}
    response = as_clinician.post(_url("course_create", course.patient_id), data)
    assert response.status_code == 400
    assert "already has an open mFOLFOX6" in str(response.context["form"].errors["regimen"])
    assert Course.objects.count() == 1


def test_course_create_outsider_gets_404_and_nothing_written(as_outsider, measured, mfolfox6):
    data = {"regimen": mfolfox6.pk, "start_date": "2026-03-02", "intent": "adjuvant"}
    assert as_outsider.get(_url("course_create", measured.pk)).status_code == 404
    assert as_outsider.post(_url("course_create", measured.pk), data).status_code == 404
    assert not Course.objects.exists()
    assert _log_exists(outcome="denied", patient_id=measured.pk)


# --- Course page ----------------------------------------------------------------------------


def test_course_detail_shows_cycles_and_logs_read(as_clinician, course):
    response = as_clinician.get(_course_url("course_detail", course))
    assert response.status_code == 200
    assert b"Cycle 12" in response.content
    assert _log_exists(
        action="read", surface="page", object_type="Course", object_id=str(course.pk)
    )


def test_course_detail_outsider_and_foreign_course_id_get_404(
    as_clinician, client, login, course, other_clinician, care_team, mfolfox6, admin_user
):
    other_patient = _team_patient(care_team)
    # My patient in the URL, another patient's course id: the same 404 as a missing course.
    assert as_clinician.get(_url("course_detail", other_patient.pk, course.pk)).status_code == 404
    assert as_clinician.get(_url("course_detail", course.patient_id, 999999)).status_code == 404
    login(client, other_clinician)
    assert client.get(_course_url("course_detail", course)).status_code == 404
    assert client.get(_course_url("course_summary", course)).status_code == 404


def test_dose_modification_create_through_service(as_clinician, course):
    data = {"from_cycle_number": 3, "percent": "80", "drug": "", "reason": "Grade 3 neutropenia"}
    response = as_clinician.post(_course_url("dose_modification_create", course), data)
    assert response.status_code == 302
    modification = DoseModification.objects.get()
    assert (modification.from_cycle_number, modification.percent) == (3, Decimal("80.0"))
    page = as_clinician.get(_course_url("course_detail", course))
    assert b"80%" in page.content


def test_dose_level_below_half_asks_for_a_tick_then_records(as_clinician, course):
    data = {"from_cycle_number": 3, "percent": "8", "drug": "", "reason": "Grade 3 neutropenia"}
    url = _course_url("dose_modification_create", course)
    asked = as_clinician.post(url, data, headers=HX)
    assert asked.status_code == 400
    content = asked.content.decode()
    assert "was 8 typed for 80?" in content
    assert 'name="confirm_level"' in content
    assert not DoseModification.objects.exists()
    page = as_clinician.get(_course_url("course_detail", course)).content.decode()
    assert 'name="confirm_level"' not in page
    assert as_clinician.post(url, {**data, "confirm_level": "on"}).status_code == 302
    assert DoseModification.objects.get().percent == Decimal("8")


def test_dose_modification_over_100_without_override_is_400(as_clinician, course):
    data = {"from_cycle_number": 2, "percent": "110", "reason": "Underdosed before"}
    response = as_clinician.post(_course_url("dose_modification_create", course), data, headers=HX)
    assert response.status_code == 400
    assert b"<html" not in response.content
    assert b"override reason" in response.content
    assert "override_reason" in response.context["dose_form"].errors
    assert not DoseModification.objects.exists()


def test_dose_modification_without_reason_is_400(as_clinician, course):
    data = {"from_cycle_number": 2, "percent": "80", "reason": ""}
    response = as_clinician.post(_course_url("dose_modification_create", course), data)
    assert response.status_code == 400
    assert "reason" in response.context["dose_form"].errors
    assert not DoseModification.objects.exists()


def test_dose_modification_outsider_gets_404(as_outsider, course):
    data = {"from_cycle_number": 2, "percent": "80", "reason": "x"}
    assert (
        as_outsider.post(_course_url("dose_modification_create", course), data).status_code == 404
    )
    assert not DoseModification.objects.exists()


def test_course_stop_cancels_open_cycles(as_clinician, course):
    data = {
        "reason": Course.StopReason.NOT_TOLERATED,
        "note": "Neuropathy",
        "stopped_on": "2026-03-18",
    }
    response = as_clinician.post(_course_url("course_stop", course), data, headers=HX)
    assert response.status_code == 204
    assert response["HX-Redirect"] == _course_url("course_detail", course)
    course.refresh_from_db()
    assert course.status == Course.Status.STOPPED
    assert course.cycles.filter(status="cancelled").count() == 12


def test_course_stop_without_reason_is_400_and_writes_nothing(as_clinician, course):
    before = _counts()
    data = {"reason": "", "stopped_on": "2026-03-18"}
    response = as_clinician.post(_course_url("course_stop", course), data, headers=HX)
    assert response.status_code == 400
    assert b"<html" not in response.content
    assert "reason" in response.context["stop_form"].errors
    assert _counts() == before


def test_course_stop_before_start_is_400_from_service(as_clinician, course):
    data = {"reason": Course.StopReason.OTHER, "stopped_on": "2026-02-01"}
    response = as_clinician.post(_course_url("course_stop", course), data)
    assert response.status_code == 400
    assert "stopped_on" in response.context["stop_form"].errors
    course.refresh_from_db()
    assert course.status == Course.Status.ACTIVE


# --- Cycle page -----------------------------------------------------------------------------


def test_cycle_detail_shows_readiness_and_computed_doses(as_clinician, course):
    response = as_clinician.get(_course_url("cycle_detail", course, 1))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Readiness for this cycle" in content
    assert "No result" in content  # no labs: a missing result is its own outcome
    assert "156.4 mg" in content
    assert "calculated, to be verified" in content
    cycle = course.cycles.get(number=1)
    assert _log_exists(action="read", object_type="ChemoCycle", object_id=str(cycle.pk))


def test_cycle_detail_names_an_old_weight_and_links_to_recording_one(as_clinician, course):
    # Cycle 3 is planned 28 days after the only weight (2026-02-27): too old to dose from.
    content = as_clinician.get(_course_url("cycle_detail", course, 3)).content.decode()
    assert "The latest weight is from 27 Feb 2026" in content
    assert "156.4 mg" not in content  # no dose is shown from the old weight
    measurement_url = reverse("patients:measurement_create", args=[course.patient_id])
    assert f'href="{measurement_url}">Record weight / height</a>' in content


@pytest.mark.parametrize(("dosed_kg", "warned"), [("80.0", True), ("73.0", False)])
def test_cycle_detail_asks_to_review_doses_after_a_ten_percent_weight_change(
    as_clinician, course, dosed_kg, warned
):
    from treatments.tests.factories import AdministrationFactory

    # An earlier dose computed from `dosed_kg`; this cycle's doses use the 72 kg on record.
    AdministrationFactory.create(
        cycle=course.cycles.get(number=1),
        inputs={"weight_kg": dosed_kg, "on_date": "2026-02-28", "bsa_m2": "1.9"},
    )
    content = as_clinician.get(_course_url("cycle_detail", course, 1)).content.decode()
    assert ('id="weight-change"' in content) is warned
    if warned:
        assert f"-10.0% against the {dosed_kg} kg the last dose was computed from" in content


def test_cycle_detail_missing_number_and_foreign_patient_get_404(as_clinician, course, care_team):
    other_patient = _team_patient(care_team)
    assert as_clinician.get(_course_url("cycle_detail", course, 13)).status_code == 404
    assert as_clinician.get(_url("cycle_detail", other_patient.pk, course.pk, 1)).status_code == 404
    assert _log_exists(outcome="denied", object_type="ChemoCycle")


def test_cycle_detail_outsider_gets_404(as_outsider, course):
    assert as_outsider.get(_course_url("cycle_detail", course, 1)).status_code == 404


def test_cycle_give_against_readiness_needs_a_reason_and_keeps_it(as_clinician, course):
    # No pre-cycle bloods: readiness is "not evaluable", which one click used to pass over.
    url = _course_url("cycle_give", course, 1)
    refused = as_clinician.post(url, {"actual_start": "2026-03-02"}, headers=HX)
    assert refused.status_code == 400
    assert "write why the cycle is given anyway" in refused.content.decode()
    assert course.cycles.get(number=1).status == ChemoCycle.Status.PLANNED

    reason = "Counts from the referring hospital reviewed by phone"
    response = as_clinician.post(
        url, {"actual_start": "2026-03-02", "override_reason": reason}, headers=HX
    )
    assert response.status_code == 204
    cycle = course.cycles.get(number=1)
    assert cycle.status == ChemoCycle.Status.GIVEN
    assert (cycle.given_despite, cycle.override_reason) == ("not_evaluable", reason)
    assert _log_exists(action="update", object_type="ChemoCycle", object_id=str(cycle.pk))
    page = as_clinician.get(_course_url("cycle_detail", course, 1)).content.decode()
    assert "given despite “Not evaluable: a result is missing or too old”" in page


def test_cycle_give_future_date_is_400_partial(as_clinician, course):
    response = as_clinician.post(
        _course_url("cycle_give", course, 1), {"actual_start": "2026-04-01"}, headers=HX
    )
    assert response.status_code == 400
    assert b"<html" not in response.content
    assert b"cannot be given in the future" in response.content
    assert course.cycles.get(number=1).status == ChemoCycle.Status.PLANNED


def test_cycle_delay_by_days_and_without_reason(as_clinician, course):
    bad = as_clinician.post(_course_url("cycle_delay", course, 1), {"days": "7", "reason": ""})
    assert bad.status_code == 400
    assert "reason" in bad.context["delay_form"].errors
    assert course.cycles.get(number=1).planned_start == START
    ok = as_clinician.post(
        _course_url("cycle_delay", course, 1), {"days": "7", "reason": "ANC 1.2"}
    )
    assert ok.status_code == 302
    assert course.cycles.get(number=1).planned_start == dt.date(2026, 3, 9)
    assert course.cycles.get(number=2).planned_start == dt.date(2026, 3, 23)


def test_a_second_delay_from_the_same_page_is_refused_not_applied_twice(as_clinician, course):
    # A double click on Delay (or a second tab) had moved the whole schedule twice.
    cycle = course.cycles.get(number=1)
    page = as_clinician.get(_course_url("cycle_detail", course, 1)).content.decode()
    assert f'name="seen_version" value="{cycle.version}"' in page
    data = {"days": "2", "reason": "ANC recovery", "seen_version": cycle.version}
    url = _course_url("cycle_delay", course, 1)
    assert as_clinician.post(url, data, headers=HX).status_code == 204
    again = as_clinician.post(url, {**data, "reason": "Double click"}, headers=HX)
    assert again.status_code == 409
    assert "changed after this page was opened: it is now delayed" in again.content.decode()
    cycle.refresh_from_db()
    assert (cycle.planned_start, cycle.reason) == (START + dt.timedelta(days=2), "ANC recovery")
    # The refusal shows the cycle as it is now: acting from it works.
    assert f'value="{cycle.version}"' in again.content.decode()
    held = as_clinician.post(
        _course_url("cycle_hold", course, 1),
        {"reason": "Await echo", "seen_version": cycle.version},
        headers=HX,
    )
    assert held.status_code == 204


def test_cycle_delay_needs_days_or_date(as_clinician, course):
    response = as_clinician.post(_course_url("cycle_delay", course, 1), {"reason": "ANC 1.2"})
    assert response.status_code == 400
    assert "days" in response.context["delay_form"].errors


def test_cycle_hold_and_cancel_need_reason(as_clinician, course):
    for action in ("cycle_hold", "cycle_cancel"):
        response = as_clinician.post(_course_url(action, course, 1), {"reason": " "})
        assert response.status_code == 400
    assert course.cycles.get(number=1).status == ChemoCycle.Status.PLANNED
    response = as_clinician.post(_course_url("cycle_hold", course, 1), {"reason": "Awaiting CT"})
    assert response.status_code == 302
    assert course.cycles.get(number=1).status == ChemoCycle.Status.HELD


def test_cycle_actions_outsider_and_missing_cycle_404_write_nothing(
    as_outsider, client, login, treating_clinician, course
):
    before = _counts()
    for action in ("cycle_give", "cycle_delay", "cycle_hold", "cycle_cancel"):
        data = {"actual_start": "2026-03-02", "days": "7", "reason": "x"}
        assert as_outsider.post(_course_url(action, course, 1), data).status_code == 404
    login(client, treating_clinician)
    assert (
        client.post(
            _course_url("cycle_give", course, 99), {"actual_start": "2026-03-02"}
        ).status_code
        == 404
    )
    assert _counts() == before


@pytest.fixture
def given_cycle(course, treating_clinician) -> ChemoCycle:
    cycle = cycle_give(
        cycle=course.cycles.get(number=1),
        actual_start=START,
        given_by=treating_clinician,
        override_reason=REVIEWED,
    )
    return pharmacy_verified(cycle)


def _oxaliplatin(course: Course) -> RegimenDrug:
    return RegimenDrug.objects.get(phase__regimen=course.regimen, drug__name__iexact="oxaliplatin")


def test_administration_create_records_verified_dose(as_clinician, course, given_cycle, colleague):
    data = {
        "regimen_drug": f"{_oxaliplatin(course).pk}:1",
        "given_at": "2026-03-02T10:30",
        "verified_by": colleague.pk,
        "checker_password": PASSWORD,
        "label_dose_mg": "156.4",
        "checklist": "on",
    }
    response = as_clinician.post(_course_url("administration_create", course, 1), data)
    assert response.status_code == 302
    administration = Administration.objects.get()
    assert administration.dose_mg == Decimal("156.4")
    assert administration.verified_by == colleague
    assert administration.inputs["bsa_m2"] == "1.84"


def test_administration_verified_by_self_is_400(
    as_clinician, treating_clinician, course, given_cycle, colleague
):
    data = {
        "regimen_drug": f"{_oxaliplatin(course).pk}:1",
        "given_at": "2026-03-02T10:30",
        "verified_by": treating_clinician.pk,
        "checker_password": PASSWORD,
        "label_dose_mg": "156.4",
        "checklist": "on",
    }
    response = as_clinician.post(_course_url("administration_create", course, 1), data, headers=HX)
    assert response.status_code == 400
    assert b"<html" not in response.content
    assert b"someone other than" in response.content
    assert not Administration.objects.exists()


def _administration_data(course: Course, checker, password: str) -> dict[str, object]:
    return {
        "regimen_drug": f"{_oxaliplatin(course).pk}:1",
        "given_at": "2026-03-02T10:30",
        "verified_by": checker.pk,
        "checker_password": password,
        "label_dose_mg": "156.4",
        "checklist": "on",
    }


@pytest.mark.parametrize("password", ["", "not-their-password"])
def test_administration_needs_the_checkers_own_password(
    as_clinician, course, given_cycle, colleague, password
):
    # Naming a colleague is not a check: they confirm with their password, or nothing is written.
    response = as_clinician.post(
        _course_url("administration_create", course, 1),
        _administration_data(course, colleague, password),
        headers=HX,
    )
    assert response.status_code == 400
    form = response.context["administration_form"]
    assert "checker_password" in form.errors
    assert not Administration.objects.exists()


def test_administration_refused_when_the_label_does_not_match_the_dose(
    as_clinician, course, given_cycle, colleague
):
    response = as_clinician.post(
        _course_url("administration_create", course, 1),
        {**_administration_data(course, colleague, PASSWORD), "label_dose_mg": "165"},
        headers=HX,
    )
    assert response.status_code == 400
    errors = response.context["administration_form"].errors["label_dose_mg"]
    assert "The label says 165 mg but the dose now is 156.4 mg (from 72.0 kg" in errors[0]
    assert not Administration.objects.exists()


def test_a_weight_recorded_after_the_pharmacy_verified_stops_recording_until_verified_again(
    as_clinician, course, given_cycle, colleague
):
    page = as_clinician.get(_course_url("cycle_detail", course, 1)).content.decode()
    assert "Pharmacy verified</span> by" in page
    BodyMeasurementFactory.create(
        patient=course.patient, measured_on=dt.date(2026, 3, 2), weight_kg=Decimal("64")
    )
    page = as_clinician.get(_course_url("cycle_detail", course, 1)).content.decode()
    assert "changed: 156.4 mg verified" in page
    response = as_clinician.post(
        _course_url("administration_create", course, 1),
        {**_administration_data(course, colleague, PASSWORD), "label_dose_mg": "147.9"},
        headers=HX,
    )
    assert response.status_code == 400
    assert "the dose is now 147.9 mg, but" in response.content.decode()
    assert not Administration.objects.exists()


def test_a_pharmacist_verifies_the_doses_on_the_cycle_page(
    client, login, course, given_cycle, care_team, admin_user
):
    from oncoplanner.accounts.models import User
    from treatments.models import DoseVerification

    pharmacist = ClinicianFactory.create(discipline=User.Discipline.PHARMACIST)
    care_team_add_member(team=care_team, clinician=pharmacist, granted_by=admin_user)
    login(client, pharmacist)
    page = client.get(_course_url("cycle_detail", course, 1)).content.decode()
    assert "Verify the doses again" in page
    seen = re.search(r'name="seen_doses" value="([^"]+)"', page).group(1)
    assert f"{_oxaliplatin(course).pk}:1=156.4" in seen
    data = {"note": "BSA checked", "seen_doses": seen}
    response = client.post(_course_url("cycle_verify", course, 1), data)
    assert response.status_code == 302
    latest = DoseVerification.objects.filter(cycle=given_cycle).first()
    assert (latest.verified_by, latest.note) == (pharmacist, "BSA checked")
    assert latest.dose_for(_oxaliplatin(course).pk, 1) == Decimal("156.4")

    # A weight recorded while the page was open: the doses on it are not what would be
    # verified, so nothing is (a pharmacist had certified doses she never saw).
    BodyMeasurementFactory.create(
        patient=course.patient, measured_on=dt.date(2026, 3, 2), weight_kg=Decimal("64")
    )
    refused = client.post(_course_url("cycle_verify", course, 1), data, headers=HX)
    assert refused.status_code == 400
    content = refused.content.decode()
    assert "The doses changed after this page was opened" in content
    assert "oxaliplatin day 1: 156.4 mg on the page, 147.9 mg now" in content
    assert "Verification no longer holds" in content
    assert DoseVerification.objects.filter(cycle=given_cycle).count() == 2


def test_verifying_a_drug_the_patient_is_allergic_to_is_asked_and_kept(
    client, login, course, given_cycle, care_team, admin_user, treating_clinician
):
    from oncoplanner.accounts.models import User
    from patients.services import allergy_record
    from treatments.models import DoseVerification

    allergy_record(
        patient=course.patient,
        substance="Platins",
        reaction="rash",
        severity="mild",
        recorded_by=treating_clinician,
    )
    pharmacist = ClinicianFactory.create(discipline=User.Discipline.PHARMACIST)
    care_team_add_member(team=care_team, clinician=pharmacist, granted_by=admin_user)
    login(client, pharmacist)
    page = client.get(_course_url("cycle_detail", course, 1)).content.decode()
    seen = re.search(r'name="seen_doses" value="([^"]+)"', page).group(1)
    url = _course_url("cycle_verify", course, 1)
    asked = client.post(url, {"seen_doses": seen}, headers=HX)
    assert asked.status_code == 400
    assert 'name="confirm_allergy"' in asked.content.decode()
    assert client.post(url, {"seen_doses": seen, "confirm_allergy": "on"}).status_code == 302
    (warning,) = DoseVerification.objects.filter(cycle=given_cycle).first().confirmed_warnings
    assert warning.startswith("Recorded allergy: Platins (mild: rash), which covers oxaliplatin.")


def test_an_oncologist_cannot_verify_the_doses(as_clinician, course, given_cycle):
    page = as_clinician.get(_course_url("cycle_detail", course, 1)).content.decode()
    assert "Verify the doses" not in page
    response = as_clinician.post(
        _course_url("cycle_verify", course, 1), {"note": "", "seen_doses": "1:1=1"}
    )
    assert response.status_code == 403
    assert "verified by a pharmacist" in response.content.decode()


def test_a_critical_result_after_the_cycle_was_given_is_asked_before_recording(
    as_clinician, course, given_cycle, colleague
):
    from labs.models import Flag

    ChemoCycle.objects.filter(pk=given_cycle.pk).update(
        status_changed_at=timezone.make_aware(dt.datetime(2026, 3, 2, 8, 0))
    )
    anc = LabTest.objects.get(loinc="751-8")
    LabResult.objects.create(
        patient=course.patient,
        test=anc,
        value=Decimal("0.3"),
        unit=anc.unit,
        flag=Flag.CRITICAL_LOW,
        collected_at=timezone.make_aware(dt.datetime(2026, 3, 2, 9, 15)),
    )
    url = _course_url("administration_create", course, 1)
    data = _administration_data(course, colleague, PASSWORD)
    asked = as_clinician.post(url, data, headers=HX)
    assert asked.status_code == 400
    content = asked.content.decode()
    assert "Since cycle 1 was given: ANC 0.3" in content
    assert "critical low, collected 02 Mar 09:15, entered 20 Mar 12:00" in content
    assert 'name="confirm_new_results"' in content
    assert not Administration.objects.exists()
    recorded = as_clinician.post(url, {**data, "confirm_new_results": "on"})
    assert recorded.status_code == 302
    # The confirmation is part of the record, shown where the administration is.
    (warning,) = Administration.objects.get().confirmed_warnings
    assert warning.startswith("Since cycle 1 was given: ANC 0.3")
    page = as_clinician.get(_course_url("cycle_detail", course, 1)).content.decode()
    assert "Given despite: Since cycle 1 was given: ANC 0.3" in page
    # The given cycle's page shows the counts as they stand now.
    assert 'id="counts-now"' in page
    assert "0.3" in page.split('id="counts-now"')[1].split("</div>")[0]


def test_a_drug_the_patient_is_allergic_to_is_flagged_and_asked_before_recording(
    as_clinician, course, given_cycle, colleague, treating_clinician
):
    from patients.services import allergy_record

    allergy_record(
        patient=course.patient,
        substance="oxaliplatin",  # typed, not linked: matched by the drug's name
        reaction="bronchospasm",
        severity="severe",
        recorded_by=treating_clinician,
    )
    page = as_clinician.get(_course_url("cycle_detail", course, 1)).content.decode()
    assert "Allergy: oxaliplatin (severe: bronchospasm)" in page
    url = _course_url("administration_create", course, 1)
    data = _administration_data(course, colleague, PASSWORD)
    asked = as_clinician.post(url, data, headers=HX)
    assert asked.status_code == 400
    assert "Recorded allergy: oxaliplatin (severe: bronchospasm)" in asked.content.decode()
    assert 'name="confirm_allergy"' in asked.content.decode()
    assert not Administration.objects.exists()
    assert as_clinician.post(url, {**data, "confirm_allergy": "on"}).status_code == 302


def test_a_regimen_with_a_drug_the_patient_is_allergic_to_is_started_only_when_confirmed(
    as_clinician, measured, mfolfox6, treating_clinician
):
    from patients.services import allergy_record

    oxaliplatin = RegimenDrug.objects.get(phase__regimen=mfolfox6, drug__name__iexact="oxaliplatin")
    allergy_record(
        patient=measured,
        substance="Eloxatin",
        drug=oxaliplatin.drug,  # linked to the formulary drug: matched whatever the name
        reaction="rash",
        severity="moderate",
        recorded_by=treating_clinician,
    )
    data = {"regimen": mfolfox6.pk, "start_date": "2026-03-16", "intent": "adjuvant"}
    url = _url("course_create", measured.pk)
    asked = as_clinician.post(url, data, headers=HX)
    assert asked.status_code == 400
    assert (
        "Recorded allergy: Eloxatin (moderate: rash), which covers oxaliplatin"
        in asked.content.decode()
    )
    assert 'name="confirm_allergy"' in asked.content.decode()
    assert 'name="confirm_reason"' in asked.content.decode()
    assert not Course.objects.exists()
    # Ticking the box is not enough: the prescriber says why, in their own words.
    unexplained = as_clinician.post(url, {**data, "confirm_allergy": "on"}, headers=HX)
    assert unexplained.status_code == 400
    assert "Say in your own words why" in unexplained.content.decode()
    assert not Course.objects.exists()
    reason = "Desensitisation protocol agreed with allergy clinic"
    started = as_clinician.post(url, {**data, "confirm_allergy": "on", "confirm_reason": reason})
    assert started.status_code == 302
    assert f"Reason given: {reason}" in Course.objects.get().confirmed_warnings
    # The preview flags the drug's row too, before anything is posted.
    preview = as_clinician.get(url, {"regimen": mfolfox6.pk, "start_date": "2026-03-16"})
    assert "Allergy: Eloxatin (moderate: rash)" in preview.content.decode()


def test_a_second_open_course_is_asked_with_a_reason_and_counts_in_the_lifetime_limit(
    as_clinician, measured, treating_clinician
):
    # A reviewer started CHOP beside an active dose-dense AC-T: doxorubicin and cyclophosphamide
    # twice over, and 240 + 300 = 540 mg/m² of doxorubicin planned against a limit of 450.
    ac_t = Regimen.objects.get(name="Dose-dense AC-T", version=1)
    chop = Regimen.objects.get(name="CHOP", version=1)
    first = course_start(
        patient=measured,
        regimen=ac_t,
        start_date=dt.date(2026, 3, 16),
        intent="adjuvant",
        created_by=treating_clinician,
    )
    data = {"regimen": chop.pk, "start_date": "2026-03-18", "intent": "curative"}
    url = _url("course_create", measured.pk)
    preview = as_clinician.get(url, {"regimen": chop.pk, "start_date": "2026-03-18"})
    assert "already has an open course" in preview.content.decode()
    # The same regimen again is refused outright: the preview does not offer to confirm it.
    same = as_clinician.get(url, {"regimen": ac_t.pk, "start_date": "2026-03-18"})
    assert "Stop or complete it before starting Dose-dense AC-T again" in same.content.decode()
    assert "confirm why both" not in same.content.decode()

    asked = as_clinician.post(url, data, headers=HX)
    assert asked.status_code == 400
    content = asked.content.decode()
    assert "already has an open course: Dose-dense AC-T v1 (active, from 16 Mar 2026)" in content
    assert "which also gives cyclophosphamide, doxorubicin" in content
    assert 'name="confirm_concurrent_course"' in content
    no_reason = as_clinician.post(url, {**data, "confirm_concurrent_course": "on"}, headers=HX)
    assert "Say in your own words why" in no_reason.content.decode()
    reason = "Lymphoma found on staging; breast course to be stopped this week"
    with_reason = {**data, "confirm_concurrent_course": "on", "confirm_reason": reason}
    over = as_clinician.post(url, with_reason, headers=HX)
    assert over.status_code == 400
    content = over.content.decode()
    assert "540 mg/m², above the lifetime limit of 450 mg/m²" in content
    assert "It counts the doses still planned in the open course" in content
    assert Course.objects.get() == first
    started = as_clinician.post(url, {**with_reason, "confirm_lifetime_limit": "on"})
    assert started.status_code == 302
    second = Course.objects.exclude(pk=first.pk).get()
    assert f"Reason given: {reason}" in second.confirmed_warnings
    page = as_clinician.get(_course_url("course_detail", second)).content.decode()
    assert f"Reason given: {reason}" in page


def test_a_planned_course_that_has_not_begun_is_stopped_today(measured, treating_clinician):
    # A reviewer could not stop a course planned in error: "The course started on 26 Nov".
    from treatments.services import course_stop

    planned = course_start(
        patient=measured,
        regimen=Regimen.objects.get(name="CHOP", version=1),
        start_date=dt.date(2026, 4, 1),
        intent="curative",
        created_by=treating_clinician,
    )
    assert planned.status == Course.Status.PLANNED
    for wrong in (dt.date(2026, 3, 19), dt.date(2026, 4, 1)):
        with pytest.raises(ValidationError) as refused:
            course_stop(course=planned, reason="other", stopped_on=wrong, by=treating_clinician)
        assert "stopped_on" in refused.value.message_dict
    stopped = course_stop(
        course=planned,
        reason="other",
        note="Planned in error",
        stopped_on=dt.date(2026, 3, 20),
        by=treating_clinician,
    )
    assert stopped.status == Course.Status.STOPPED
    assert not stopped.cycles.exclude(status=ChemoCycle.Status.CANCELLED).exists()
    assert stopped.stopped_before_it_began


def test_a_course_cancelled_before_it_began_reads_so(as_clinician, measured, treating_clinician):
    # Not "started 1 Apr, stopped 20 Mar": a reviewer found the record contradicting itself.
    from treatments.services import course_stop

    planned = course_start(
        patient=measured,
        regimen=Regimen.objects.get(name="CHOP", version=1),
        start_date=dt.date(2026, 4, 1),
        intent="curative",
        created_by=treating_clinician,
    )
    course_stop(
        course=planned, reason="other", stopped_on=dt.date(2026, 3, 20), by=treating_clinician
    )
    page = as_clinician.get(_course_url("course_detail", planned)).content.decode()
    assert "was to start Wed 1 Apr 2026" in page
    assert "cancelled before it began, 20 Mar 2026" in page
    summary = as_clinician.get(_course_url("course_summary", planned)).content.decode()
    assert "was to start 1 Apr 2026, cancelled before it began 20 Mar 2026" in summary
    # FHIR: a Period may not end before it starts; the CarePlan is revoked, with no end.
    from patients.fhir import patient_fhir_bundle

    bundle = patient_fhir_bundle(user=treating_clinician, patient_id=measured.pk)
    (plan,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "CarePlan"
    ]
    assert plan["status"] == "revoked"
    assert plan["period"] == {"start": "2026-04-01"}


def test_a_critical_result_drawn_before_the_give_but_entered_after_is_asked_too(
    as_clinician, course, given_cycle, colleague
):
    from labs.models import Flag

    # Given at 08:00 on 20 Mar (the frozen now is 12:00); platelets drawn 07:30, entered at noon.
    ChemoCycle.objects.filter(pk=given_cycle.pk).update(
        status_changed_at=timezone.make_aware(dt.datetime(2026, 3, 2, 8, 0))
    )
    plt = LabTest.objects.get(loinc="777-3")
    with time_machine.travel(dt.datetime(2026, 3, 2, 11, 0, tzinfo=dt.UTC), tick=False):
        LabResult.objects.create(
            patient=course.patient,
            test=plt,
            value=Decimal("15"),
            unit=plt.unit,
            flag=Flag.CRITICAL_LOW,
            collected_at=timezone.make_aware(dt.datetime(2026, 3, 2, 7, 30)),
        )
    asked = as_clinician.post(
        _course_url("administration_create", course, 1),
        _administration_data(course, colleague, PASSWORD),
        headers=HX,
    )
    assert asked.status_code == 400
    assert "Since cycle 1 was given: PLT 15" in asked.content.decode()
    assert not Administration.objects.exists()


def test_wrong_co_sign_passwords_pause_co_signing_but_do_not_lock_the_colleague_out(
    as_clinician, client, course, given_cycle, colleague, treating_clinician
):
    from django.test import Client

    url = _course_url("administration_create", course, 1)
    for _ in range(5):
        as_clinician.post(url, _administration_data(course, colleague, "guess"), headers=HX)
    failures = AccessLog.objects.filter(
        action=AccessLog.Action.LOGIN_FAILED, object_id=str(colleague.pk)
    )
    assert failures.count() == 5
    assert {row.username for row in failures} == {treating_clinician.username}  # who typed
    # Paused after five: the right password no longer passes either, so the form cannot be
    # used to guess a colleague's password...
    response = as_clinician.post(url, _administration_data(course, colleague, PASSWORD))
    assert response.status_code == 400
    assert "is paused for 15 minutes" in response.content.decode()
    assert not Administration.objects.exists()
    # ...but the colleague can still sign in (a few typos at the chair had locked them out).
    signed_in = Client().post(
        "/accounts/login/", {"login": colleague.username, "password": PASSWORD}
    )
    assert signed_in.status_code == 302
    assert "/accounts/2fa/authenticate/" in signed_in["Location"]


def test_an_accepted_co_sign_is_kept_while_another_refusal_is_corrected(
    as_clinician, course, given_cycle, colleague
):
    url = _course_url("administration_create", course, 1)
    data = _administration_data(course, colleague, PASSWORD)
    refused = as_clinician.post(url, {**data, "label_dose_mg": "160"}, headers=HX)
    assert refused.status_code == 400
    content = refused.content.decode()
    assert "accepted</span> for" in content
    token = re.search(r'name="cosign_token" value="([^"]+)"', content).group(1)
    # The checker has gone back to their patient: the corrected form carries the co-sign.
    again = {**data, "checker_password": "", "cosign_token": token}
    assert as_clinician.post(url, again).status_code == 302
    assert Administration.objects.get().verified_by == colleague


def test_a_co_sign_token_does_not_stand_for_another_checker(
    as_clinician, course, given_cycle, colleague, care_team, admin_user
):
    other = ClinicianFactory.create()
    care_team_add_member(team=care_team, clinician=other, granted_by=admin_user)
    url = _course_url("administration_create", course, 1)
    data = _administration_data(course, colleague, PASSWORD)
    refused = as_clinician.post(url, {**data, "label_dose_mg": "160"}, headers=HX)
    token = re.search(r'name="cosign_token" value="([^"]+)"', refused.content.decode()).group(1)
    swapped = {**data, "verified_by": other.pk, "checker_password": "", "cosign_token": token}
    response = as_clinician.post(url, swapped, headers=HX)
    assert response.status_code == 400
    assert "must confirm the check with their own password" in response.content.decode()
    assert not Administration.objects.exists()


@pytest.fixture
def oxaliplatin_given(course, given_cycle, treating_clinician, colleague) -> Administration:
    from treatments.services import administration_record

    return administration_record(
        cycle=given_cycle,
        regimen_drug=_oxaliplatin(course),
        day_of_cycle=1,
        given_at=timezone.make_aware(dt.datetime(2026, 3, 2, 10, 0)),
        administered_by=treating_clinician,
        verified_by=colleague,
    )


def _stop_url(course: Course, administration: Administration) -> str:
    return _course_url("administration_stop", course, 1, administration.pk)


def test_administration_stopped_early_shows_what_went_in(as_clinician, course, oxaliplatin_given):
    oxaliplatin_given.notes = "Flushed the line first"
    oxaliplatin_given.save(update_fields=["notes"])
    page = as_clinician.get(_course_url("cycle_detail", course, 1)).content.decode()
    assert "Stopped early?" in page
    assert "Note: Flushed the line first" in page
    response = as_clinician.post(
        _stop_url(course, oxaliplatin_given),
        {"amount_given_mg": "60", "reason": "Hypersensitivity reaction"},
    )
    assert response.status_code == 302
    page = as_clinician.get(_course_url("cycle_detail", course, 1)).content.decode()
    assert "60 mg given" in page
    assert "of 156.4 mg prepared" in page
    assert "Stopped: Hypersensitivity reaction" in page
    assert "Stopped early?" not in page  # once only
    summary = as_clinician.get(_course_url("course_summary", course)).content.decode()
    assert "60 mg given of 156.4 mg (stopped early: Hypersensitivity reaction)" in summary


def test_administration_stop_bad_amount_is_400_naming_the_field(
    as_clinician, course, oxaliplatin_given
):
    response = as_clinician.post(
        _stop_url(course, oxaliplatin_given),
        {"amount_given_mg": "500", "reason": "Reaction"},
        headers=HX,
    )
    assert response.status_code == 400
    assert b"<html" not in response.content
    assert b"less than the dose of 156.40 mg" in response.content
    assert b'<details class="stop-early" open>' in response.content
    oxaliplatin_given.refresh_from_db()
    assert oxaliplatin_given.given_in_full


def test_administration_stop_outsider_404(as_outsider, course, oxaliplatin_given):
    data = {"amount_given_mg": "60", "reason": "Reaction"}
    assert as_outsider.post(_stop_url(course, oxaliplatin_given), data).status_code == 404
    oxaliplatin_given.refresh_from_db()
    assert oxaliplatin_given.given_in_full


def test_administration_stop_through_another_cycle_404(as_clinician, course, oxaliplatin_given):
    data = {"amount_given_mg": "60", "reason": "Reaction"}
    wrong_cycle = _course_url("administration_stop", course, 2, oxaliplatin_given.pk)
    assert as_clinician.post(wrong_cycle, data).status_code == 404
    oxaliplatin_given.refresh_from_db()
    assert oxaliplatin_given.given_in_full


def test_administration_form_offers_only_other_team_clinicians(
    as_clinician, treating_clinician, course, given_cycle, colleague
):
    response = as_clinician.get(_course_url("cycle_detail", course, 1))
    choices = [c.pk for c in response.context["administration_form"].fields["verified_by"].queryset]
    assert colleague.pk in choices
    assert treating_clinician.pk not in choices
    assert b"cycle number (1) and the day of the cycle" in response.content


def test_administration_create_outsider_404(as_outsider, course, given_cycle, colleague):
    data = {
        "regimen_drug": f"{_oxaliplatin(course).pk}:1",
        "given_at": "2026-03-02T10:30",
        "verified_by": colleague.pk,
        "checker_password": PASSWORD,
        "label_dose_mg": "156.4",
        "checklist": "on",
    }
    assert (
        as_outsider.post(_course_url("administration_create", course, 1), data).status_code == 404
    )
    assert not Administration.objects.exists()


# --- Side effects ---------------------------------------------------------------------------


def _term(name: str) -> CtcaeTerm:
    return CtcaeTerm.objects.get(term=name)


def test_ctcae_term_search_fragment_lists_matches_common_first(as_clinician):
    response = as_clinician.get(_url("ctcae_term_search"), {"q": "neu", "patient": "7"}, headers=HX)
    assert response.status_code == 200
    assert b"<html" not in response.content
    content = response.content.decode()
    assert "Neutrophil count decreased" in content
    assert "Peripheral sensory neuropathy" in content
    assert content.index("Peripheral sensory neuropathy") < content.index(
        "Neutrophil count decreased"
    )
    assert "/patients/7/side-effects/new/?term=" in content
    assert not AccessLog.objects.filter(patient__isnull=False).exists()


def test_ctcae_term_search_requires_login(client):
    assert client.get(_url("ctcae_term_search")).status_code == 302


def test_side_effect_create_grades_fragment_shows_only_term_grades(as_clinician, patient):
    nausea = _term("Nausea")
    response = as_clinician.get(
        _url("side_effect_create", patient.pk), {"term": nausea.pk}, headers=HX
    )
    assert response.status_code == 200
    assert b"<html" not in response.content
    content = response.content.decode()
    assert "Loss of appetite without change in eating habits" in content
    assert 'value="3"' in content
    assert 'value="4"' not in content
    assert "CTCAE v5.0" in content


def test_side_effect_create_suggests_grade_from_latest_anc(as_clinician, patient):
    anc = LabTest.objects.get(loinc="751-8")
    LabResult.objects.create(
        patient=patient,
        test=anc,
        value=Decimal("0.8"),
        unit=anc.unit,
        ref_low=Decimal("1.8"),
        ref_high=Decimal("7.8"),
        collected_at=timezone.now() - dt.timedelta(hours=3),
    )
    term = _term("Neutrophil count decreased")
    response = as_clinician.get(
        _url("side_effect_create", patient.pk), {"term": term.pk}, headers=HX
    )
    assert b"Suggested grade 3" in response.content


def test_side_effect_create_records_through_service(
    as_clinician, course, patient, treating_clinician
):
    cycle = cycle_give(
        cycle=course.cycles.get(number=1),
        actual_start=START,
        given_by=treating_clinician,
        override_reason=REVIEWED,
    )
    data = {
        "term": _term("Nausea").pk,
        "grade": "2",
        "onset": "2026-03-05",
        "cycle": cycle.pk,
        "description": "Day 3",
    }
    response = as_clinician.post(_url("side_effect_create", patient.pk), data)
    assert response.status_code == 302
    side_effect = SideEffect.objects.get()
    assert (side_effect.grade, side_effect.ctcae_version, side_effect.cycle) == (2, "5.0", cycle)
    assert _log_exists(action="create", object_type="SideEffect", object_id=str(side_effect.pk))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"grade": "4"}, "grade"),  # Nausea has grades 1-3 only
        ({"onset": "2026-03-21"}, "onset"),  # tomorrow
        ({"onset": "2026-02-30"}, "onset"),
        ({"term": ""}, "term"),
        ({"grade": ""}, "grade"),
    ],
)
def test_side_effect_create_bad_input_is_400_naming_field(as_clinician, patient, change, field):
    data = {"term": _term("Nausea").pk, "grade": "2", "onset": "2026-03-05"} | change
    response = as_clinician.post(_url("side_effect_create", patient.pk), data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not SideEffect.objects.exists()


def test_side_effect_create_cycle_of_another_patient_is_refused(as_clinician, course, care_team):
    other = _team_patient(care_team)
    data = {
        "term": _term("Nausea").pk,
        "grade": "2",
        "onset": "2026-03-05",
        "cycle": course.cycles.get(number=1).pk,
    }
    response = as_clinician.post(_url("side_effect_create", other.pk), data)
    assert response.status_code == 400
    assert "cycle" in response.context["form"].errors
    assert not SideEffect.objects.exists()


def test_side_effect_create_outsider_404(as_outsider, patient):
    data = {"term": _term("Nausea").pk, "grade": "2", "onset": "2026-03-05"}
    assert as_outsider.get(_url("side_effect_create", patient.pk)).status_code == 404
    assert as_outsider.post(_url("side_effect_create", patient.pk), data).status_code == 404
    assert not SideEffect.objects.exists()


# --- Summary --------------------------------------------------------------------------------


def test_course_summary_says_when_a_given_cycle_has_no_administration_recorded(
    as_clinician, course, given_cycle
):
    content = as_clinician.get(_course_url("course_summary", course)).content.decode()
    assert content.count("No drug administration recorded for this given cycle") == 1


def test_course_summary_lists_administrations_mods_side_effects_and_nadirs(
    as_clinician, course, given_cycle, colleague, treating_clinician
):
    from treatments.services import (
        administration_record,
        dose_modification_record,
        side_effect_record,
    )

    administration_record(
        cycle=given_cycle,
        regimen_drug=_oxaliplatin(course),
        day_of_cycle=1,
        given_at=timezone.make_aware(dt.datetime(2026, 3, 2, 10, 0)),
        administered_by=treating_clinician,
        verified_by=colleague,
    )
    dose_modification_record(
        course=course,
        from_cycle_number=2,
        percent=80,
        reason="Grade 3 neutropenia",
        created_by=treating_clinician,
    )
    side_effect_record(
        patient=course.patient,
        term=_term("Nausea"),
        grade=2,
        onset=dt.date(2026, 3, 4),
        cycle=given_cycle,
        recorded_by=treating_clinician,
    )
    anc = LabTest.objects.get(loinc="751-8")
    for day, value in ((9, "0.9"), (12, "1.6")):
        LabResult.objects.create(
            patient=course.patient,
            test=anc,
            value=Decimal(value),
            unit=anc.unit,
            collected_at=timezone.make_aware(dt.datetime(2026, 3, day, 8, 0)),
        )
    response = as_clinician.get(_course_url("course_summary", course))
    assert response.status_code == 200
    content = response.content.decode()
    assert "mFOLFOX6 version 1" in content
    assert "156.4 mg" in content
    assert "BSA 1.84" in content
    assert "Grade 3 neutropenia" in content
    assert "Nausea" in content
    assert "0.9 ×10³/µL" in content  # the ANC nadir of cycle 1
    assert "summary_print.css" in content
    assert _log_exists(
        action="read", object_type="Course", object_id=str(course.pk), surface="page"
    )
    assert _log_exists(action="list", patient_id=course.patient_id, object_type="LabResult")


def test_side_effect_form_preselects_only_this_patients_cycle(client, treating_clinician, patient):
    from django.urls import reverse

    from treatments.tests.factories import ChemoCycleFactory

    given = ChemoCycle.Status.GIVEN
    mine = ChemoCycleFactory.create(course__patient=patient, number=1, status=given)
    planned = ChemoCycleFactory.create(course=mine.course, number=2)
    theirs = ChemoCycleFactory.create(number=1, status=given)
    client.force_login(treating_clinician)
    url = reverse("treatments:side_effect_create", args=[patient.pk])
    page = client.get(url, {"cycle": mine.pk}).content.decode()
    assert f'<option value="{mine.pk}" selected>' in page
    # A side effect belongs to a cycle that was given: a planned one is not offered.
    assert f'<option value="{planned.pk}"' not in page
    page = client.get(url, {"cycle": theirs.pk}).content.decode()
    assert f'<option value="{theirs.pk}"' not in page
    assert f'<option value="{mine.pk}" selected>' not in page


def test_the_pharmacy_worklist_puts_changed_and_unverified_cycles_first(
    client, login, course, given_cycle, treating_clinician
):
    # On cycle 1's day (2 Mar): cycle 1 verified; cycle 2 brought into the window, unverified.
    ChemoCycle.objects.filter(course=course, number=2).update(planned_start=dt.date(2026, 3, 3))
    login(client, treating_clinician)
    with time_machine.travel(dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC), tick=False):
        page = client.get(reverse("treatments:pharmacy_worklist")).content.decode()
        rows = page.split("<tbody>")[1].split("</tbody>")[0]
        assert rows.index("Not verified") < rows.index("Verified</span>")
        assert rows.index("cycle 2") < rows.index("cycle 1")
        # A weight recorded after cycle 1 was verified: it moves to the top as changed.
        BodyMeasurementFactory.create(
            patient=course.patient, measured_on=dt.date(2026, 3, 2), weight_kg=Decimal("64")
        )
        page = client.get(reverse("treatments:pharmacy_worklist")).content.decode()
    rows = page.split("<tbody>")[1]
    assert rows.index("Changed since verified") < rows.index("Not verified")
    assert AccessLog.objects.filter(action="list", object_type="ChemoCycle").exists()


def test_the_pharmacy_worklist_shows_no_one_elses_patients(
    client, login, course, given_cycle, other_clinician
):
    login(client, other_clinician)
    with time_machine.travel(dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC), tick=False):
        page = client.get(reverse("treatments:pharmacy_worklist")).content.decode()
    assert course.patient.mrn not in page
    assert "No cycle is due in this window." in page
