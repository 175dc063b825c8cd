from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.tasks import task_backends
from django.utils import timezone

from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import ClinicianFactory
from oncoplanner.dates import day_text
from patients.models import Patient
from patients.tests.factories import BodyMeasurementFactory, PatientFactory
from treatments.models import (
    Administration,
    ChemoCycle,
    Course,
    DoseBasis,
    DoseModification,
    DoseVerification,
    Regimen,
    RegimenDrug,
    SideEffect,
)
from treatments.services import (
    DoseLevelToConfirm,
    PastStartToConfirm,
    administration_record,
    administration_stop,
    course_start,
    course_stop,
    cumulative_dose_per_drug,
    cycle_cancel,
    cycle_delay,
    cycle_doses_verify,
    cycle_give,
    cycle_hold,
    dose_modification_record,
    dose_percent_for,
    lifetime_projection,
    side_effect_record,
)
from treatments.tasks import notify_care_team_of_severe_side_effect
from treatments.tests.factories import (
    AdministrationFactory,
    ChemoCycleFactory,
    CourseFactory,
    CtcaeTermFactory,
    DrugFactory,
    allergy_status_taken,
    pharmacy_verified,
    regimen_create,
)

pytestmark = pytest.mark.django_db

D = Decimal
TODAY = dt.date(2026, 6, 15)
START = dt.date(2026, 1, 5)  # a Monday
MG_M2 = DoseBasis.MG_M2


@pytest.fixture(autouse=True)
def _frozen_today() -> Iterator[None]:
    """Dates in these tests are explicit; 'today' is fixed so that future/past stay so."""
    with time_machine.travel(dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC), tick=False):
        yield


@pytest.fixture
def clinician(db: None) -> User:
    return ClinicianFactory.create()


@pytest.fixture
def nurse(db: None) -> User:
    return ClinicianFactory.create(discipline=User.Discipline.NURSE)


@pytest.fixture
def mfolfox6(db: None) -> Regimen:
    return regimen_create(
        name="mFOLFOX6 (test)",
        phases=[
            (
                14,
                12,
                [
                    ("Oxaliplatin", "85", MG_M2),
                    ("Leucovorin", "400", MG_M2),
                    ("Fluorouracil", "400", MG_M2),
                ],
            )
        ],
    )


@pytest.fixture
def ac_t(db: None) -> Regimen:
    return regimen_create(
        name="Dose-dense AC-T (test)",
        phases=[
            (14, 4, [("Doxorubicin", "60", MG_M2), ("Cyclophosphamide", "600", MG_M2)]),
            (14, 4, [("Paclitaxel", "175", MG_M2)]),
        ],
    )


def _course(patient: Patient, regimen: Regimen, by: User, start: dt.date = START) -> Course:
    return course_start(
        patient=patient,
        regimen=regimen,
        start_date=start,
        intent="curative",
        created_by=by,
        confirm_past_start=True,
    )


def _cycle(course: Course, number: int) -> ChemoCycle:
    return course.cycles.get(number=number)


def _planned(course: Course) -> list[dt.date]:
    return list(course.cycles.order_by("number").values_list("planned_start", flat=True))


def _at(day: dt.date, hour: int = 10) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, 0)))


def _drug(regimen: Regimen, name: str) -> RegimenDrug:
    return RegimenDrug.objects.get(phase__regimen=regimen, drug__name=name)


# --- course_start ----------------------------------------------------------------------------


def test_course_start_schedules_both_phases_of_ac_t(ac_t, clinician):
    patient = PatientFactory.create()
    course = _course(patient, ac_t, clinician)
    cycles = list(course.cycles.order_by("number"))
    assert [c.number for c in cycles] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert cycles[0].planned_start == START
    assert cycles[4].planned_start == START + dt.timedelta(days=56)  # cycle 5 = 2026-03-02
    assert cycles[4].phase.order == 2  # paclitaxel phase begins at cycle 5
    assert cycles[7].planned_start == dt.date(2026, 4, 13)
    assert {c.status for c in cycles} == {ChemoCycle.Status.PLANNED}
    assert course.status == Course.Status.ACTIVE


def test_course_start_uses_each_phase_cycle_length(clinician):
    regimen = regimen_create(
        name="Mixed",
        phases=[(21, 2, [("Drug A", "50", MG_M2)]), (14, 2, [("Drug B", "10", MG_M2)])],
    )
    course = _course(PatientFactory.create(), regimen, clinician)
    # 21, 21 then 14: cycle 3 at +42, cycle 4 at +56
    assert _planned(course) == [
        START,
        START + dt.timedelta(days=21),
        START + dt.timedelta(days=42),
        START + dt.timedelta(days=56),
    ]


def test_course_start_in_the_future_is_planned(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician, start=dt.date(2026, 7, 1))
    assert course.status == Course.Status.PLANNED
    assert course.cycles.count() == 12


def test_course_start_refuses_inactive_regimen_and_writes_nothing(clinician):
    retired = regimen_create(name="Old", is_active=False)
    with pytest.raises(ValidationError) as excinfo:
        _course(PatientFactory.create(), retired, clinician)
    assert "regimen" in excinfo.value.message_dict
    assert not Course.objects.exists()
    assert not ChemoCycle.objects.exists()


def test_course_start_refuses_second_open_course_of_same_regimen(mfolfox6, clinician):
    patient = PatientFactory.create()
    _course(patient, mfolfox6, clinician)
    with pytest.raises(ValidationError) as excinfo:
        _course(patient, mfolfox6, clinician, start=dt.date(2026, 2, 2))
    assert "regimen" in excinfo.value.message_dict
    assert Course.objects.count() == 1
    assert ChemoCycle.objects.count() == 12


# --- cycle_give ------------------------------------------------------------------------------


def test_cycle_give_sets_actual_start_and_end_date(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    cycle = cycle_give(cycle=_cycle(course, 1), actual_start=START, given_by=clinician)
    assert cycle.status == ChemoCycle.Status.GIVEN
    assert cycle.actual_start == START
    assert cycle.end_date == dt.date(2026, 1, 18)  # 14-day cycle: day 14 is start + 13
    assert cycle.status_changed_by == clinician


def test_cycle_give_out_of_order_is_refused(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    with pytest.raises(ValidationError) as excinfo:
        cycle_give(cycle=_cycle(course, 2), actual_start=dt.date(2026, 1, 19), given_by=clinician)
    assert "Cycle 1" in excinfo.value.message_dict["cycle"][0]
    assert not course.cycles.filter(status=ChemoCycle.Status.GIVEN).exists()


def test_cycle_give_twice_is_refused(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    cycle_give(cycle=_cycle(course, 1), actual_start=START, given_by=clinician)
    with pytest.raises(ValidationError) as excinfo:
        cycle_give(cycle=_cycle(course, 1), actual_start=dt.date(2026, 1, 6), given_by=clinician)
    assert "already been given" in excinfo.value.message_dict["cycle"][0]
    assert _cycle(course, 1).actual_start == START


def test_cycle_give_in_the_future_is_refused(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician, start=dt.date(2026, 6, 20))
    with pytest.raises(ValidationError) as excinfo:
        cycle_give(cycle=_cycle(course, 1), actual_start=dt.date(2026, 6, 20), given_by=clinician)
    assert "actual_start" in excinfo.value.message_dict
    assert _cycle(course, 1).status == ChemoCycle.Status.PLANNED


def test_cycle_give_more_than_two_days_early_is_refused(mfolfox6, clinician, settings):
    settings.CYCLE_EARLY_TOLERANCE_DAYS = 2
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    cycle_give(cycle=_cycle(course, 1), actual_start=START, given_by=clinician)  # 14-day cycles
    with pytest.raises(ValidationError) as excinfo:
        cycle_give(
            cycle=_cycle(course, 2), actual_start=START + dt.timedelta(days=11), given_by=clinician
        )
    message = excinfo.value.message_dict["actual_start"][0]
    assert f"cycle 2 can start from {day_text(START + dt.timedelta(days=12))}" in message
    assert _cycle(course, 2).status == ChemoCycle.Status.PLANNED

    given = cycle_give(
        cycle=_cycle(course, 2), actual_start=START + dt.timedelta(days=12), given_by=clinician
    )
    assert given.status == ChemoCycle.Status.GIVEN  # two days early: a holiday, allowed


def test_cycle_give_two_days_late_moves_later_cycles(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    cycle_give(cycle=_cycle(course, 1), actual_start=dt.date(2026, 1, 7), given_by=clinician)
    assert _cycle(course, 2).planned_start == dt.date(2026, 1, 21)  # was 2026-01-19


def test_cycle_give_last_cycle_completes_course(clinician):
    regimen = regimen_create(name="Short", phases=[(21, 2, [("Drug A", "50", MG_M2)])])
    course = _course(PatientFactory.create(), regimen, clinician)
    cycle_give(cycle=_cycle(course, 1), actual_start=START, given_by=clinician)
    course.refresh_from_db()
    assert course.status == Course.Status.ACTIVE
    cycle_give(cycle=_cycle(course, 2), actual_start=dt.date(2026, 1, 26), given_by=clinician)
    course.refresh_from_db()
    assert course.status == Course.Status.COMPLETED


# --- cycle_delay / hold / cancel, course_stop -------------------------------------------------


def test_cycle_delay_moves_this_and_later_cycles_not_earlier(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    before = _planned(course)
    cycle_give(cycle=_cycle(course, 1), actual_start=START, given_by=clinician)
    cycle_give(cycle=_cycle(course, 2), actual_start=dt.date(2026, 1, 19), given_by=clinician)
    delayed = cycle_delay(
        cycle=_cycle(course, 3), days=7, reason="ANC 1.1 x10^9/L on day 1", by=clinician
    )
    after = _planned(course)
    assert after[:2] == before[:2]
    assert after[2:] == [d + dt.timedelta(days=7) for d in before[2:]]
    assert after[2] == dt.date(2026, 2, 9)
    assert after[11] == dt.date(2026, 6, 15)
    assert delayed.status == ChemoCycle.Status.DELAYED
    assert delayed.reason == "ANC 1.1 x10^9/L on day 1"
    assert _cycle(course, 4).status == ChemoCycle.Status.PLANNED


def test_cycle_delay_to_a_new_start_date(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    cycle_delay(
        cycle=_cycle(course, 1), new_start=dt.date(2026, 1, 8), reason="Platelets 80", by=clinician
    )
    assert _planned(course)[:2] == [dt.date(2026, 1, 8), dt.date(2026, 1, 22)]


def test_cycle_delay_without_reason_is_refused_and_writes_nothing(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    before = _planned(course)
    with pytest.raises(ValidationError) as excinfo:
        cycle_delay(cycle=_cycle(course, 3), days=7, reason="  ", by=clinician)
    assert "reason" in excinfo.value.message_dict
    assert _planned(course) == before
    assert _cycle(course, 3).status == ChemoCycle.Status.PLANNED


def test_cycle_delay_of_zero_days_is_refused(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    with pytest.raises(ValidationError) as excinfo:
        cycle_delay(cycle=_cycle(course, 1), days=0, reason="Low counts", by=clinician)
    assert "days" in excinfo.value.message_dict


def test_cycle_hold_keeps_later_cycles_waiting(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    held = cycle_hold(cycle=_cycle(course, 1), reason="Awaiting cardiology review", by=clinician)
    assert held.status == ChemoCycle.Status.HELD
    with pytest.raises(ValidationError) as excinfo:
        cycle_give(cycle=_cycle(course, 2), actual_start=dt.date(2026, 1, 19), given_by=clinician)
    assert "cycle" in excinfo.value.message_dict
    # A held cycle can still be given once the hold is resolved.
    assert (
        cycle_give(cycle=_cycle(course, 1), actual_start=START, given_by=clinician).status
        == ChemoCycle.Status.GIVEN
    )


def test_cycle_cancel_needs_a_reason_and_leaves_the_course_running(clinician):
    regimen = regimen_create(name="Short", phases=[(21, 3, [("Drug A", "50", MG_M2)])])
    course = _course(PatientFactory.create(), regimen, clinician)
    cycle_give(cycle=_cycle(course, 1), actual_start=START, given_by=clinician)
    with pytest.raises(ValidationError) as excinfo:
        cycle_cancel(cycle=_cycle(course, 2), reason="", by=clinician)
    assert "reason" in excinfo.value.message_dict
    assert _cycle(course, 2).status == ChemoCycle.Status.PLANNED
    cycle_cancel(cycle=_cycle(course, 2), reason="Grade 3 neuropathy", by=clinician)
    course.refresh_from_db()
    assert (_cycle(course, 2).status, course.status) == (ChemoCycle.Status.CANCELLED, "active")


def test_the_last_cycle_left_is_not_cancelled_but_the_course_stopped(clinician):
    # Cancelling the remaining cycles one by one showed a course stopped half-way as
    # "Completed", with no reason; ending it early is a stop, with its reason.
    regimen = regimen_create(name="Short", phases=[(21, 2, [("Drug A", "50", MG_M2)])])
    course = _course(PatientFactory.create(), regimen, clinician)
    cycle_give(cycle=_cycle(course, 1), actual_start=START, given_by=clinician)
    with pytest.raises(ValidationError) as excinfo:
        cycle_cancel(cycle=_cycle(course, 2), reason="Patient moving abroad", by=clinician)
    assert "stop the course" in excinfo.value.message_dict["cycle"][0]
    course.refresh_from_db()
    assert (_cycle(course, 2).status, course.status) == (ChemoCycle.Status.PLANNED, "active")
    course_stop(course=course, reason="other", stopped_on=START, by=clinician)
    course.refresh_from_db()
    assert (_cycle(course, 2).status, course.status) == (ChemoCycle.Status.CANCELLED, "stopped")


def test_cycle_cancel_of_given_cycle_is_refused(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    cycle_give(cycle=_cycle(course, 1), actual_start=START, given_by=clinician)
    with pytest.raises(ValidationError) as excinfo:
        cycle_cancel(cycle=_cycle(course, 1), reason="Entered in error", by=clinician)
    assert "cycle" in excinfo.value.message_dict
    assert _cycle(course, 1).status == ChemoCycle.Status.GIVEN


def test_course_stop_cancels_every_cycle_not_given(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    cycle_give(cycle=_cycle(course, 1), actual_start=START, given_by=clinician)
    stopped = course_stop(
        course=course,
        reason=Course.StopReason.NOT_TOLERATED,
        note="Grade 3 neuropathy after cycle 1",
        stopped_on=dt.date(2026, 1, 20),
        by=clinician,
    )
    assert stopped.status == Course.Status.STOPPED
    assert stopped.stopped_by == clinician
    statuses = list(course.cycles.order_by("number").values_list("status", flat=True))
    assert statuses == ["given"] + ["cancelled"] * 11
    assert _cycle(course, 2).reason == "Course stopped: Treatment not tolerated"


def test_course_stop_before_start_is_refused_and_writes_nothing(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    with pytest.raises(ValidationError) as excinfo:
        course_stop(
            course=course,
            reason=Course.StopReason.REFUSED,
            stopped_on=dt.date(2025, 12, 1),
            by=clinician,
        )
    assert "stopped_on" in excinfo.value.message_dict
    course.refresh_from_db()
    assert course.status == Course.Status.ACTIVE
    assert not course.cycles.filter(status=ChemoCycle.Status.CANCELLED).exists()


# --- dose modifications ----------------------------------------------------------------------


def test_dose_percent_for_is_100_without_modification(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    percent, modification = dose_percent_for(
        course=course, cycle_number=5, drug=DrugFactory.create(name="Oxaliplatin")
    )
    assert percent == D("100")
    assert modification is None


def test_dose_modification_carries_forward_until_changed(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    oxaliplatin = DrugFactory.create(name="Oxaliplatin")
    reduced = dose_modification_record(
        course=course,
        from_cycle_number=3,
        percent=80,
        reason="Grade 3 neutropenia",
        created_by=clinician,
    )
    levels = [
        dose_percent_for(course=course, cycle_number=n, drug=oxaliplatin)[0] for n in range(1, 13)
    ]
    assert levels == [D("100")] * 2 + [D("80")] * 10
    assert dose_percent_for(course=course, cycle_number=12, drug=oxaliplatin)[1] == reduced

    with pytest.raises(DoseLevelToConfirm) as excinfo:  # a re-escalation is asked first
        dose_modification_record(
            course=course,
            from_cycle_number=6,
            percent=100,
            reason="Counts recovered",
            created_by=clinician,
        )
    assert "Oxaliplatin goes up from 80% to 100% from cycle 6" in str(excinfo.value)
    dose_modification_record(
        course=course,
        from_cycle_number=6,
        percent=100,
        reason="Counts recovered",
        created_by=clinician,
        confirm_level=True,
    )
    levels = [
        dose_percent_for(course=course, cycle_number=n, drug=oxaliplatin)[0] for n in range(1, 13)
    ]
    assert levels == [D("100")] * 2 + [D("80")] * 3 + [D("100")] * 7


def test_dose_level_below_half_is_asked_before_it_is_recorded(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    kwargs = {"course": course, "from_cycle_number": 3, "reason": "Typo test"}
    dose_modification_record(
        percent=50, created_by=clinician, **{**kwargs, "from_cycle_number": 2}
    )  # half is a usual step: not asked
    with pytest.raises(DoseLevelToConfirm) as excinfo:
        dose_modification_record(percent=8, created_by=clinician, **kwargs)
    assert excinfo.value.message_dict["percent"][0].startswith(
        "8% is less than half the standard dose (was 8 typed for 80?)."
    )
    assert DoseModification.objects.count() == 1
    dose_modification_record(percent=8, created_by=clinician, confirm_level=True, **kwargs)
    assert DoseModification.objects.latest("pk").percent == D("8")


def test_all_drugs_level_that_lifts_a_reduced_drug_is_asked(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    oxaliplatin = _drug(mfolfox6, "Oxaliplatin").drug
    dose_modification_record(
        course=course,
        from_cycle_number=2,
        percent=80,
        drug=oxaliplatin,
        reason="Neuropathy grade 2",
        created_by=clinician,
    )
    with pytest.raises(DoseLevelToConfirm) as excinfo:
        dose_modification_record(
            course=course,
            from_cycle_number=4,
            percent=90,
            reason="Grade 3 neutropenia",
            created_by=clinician,
        )
    # Only the reduced drug goes up; the others come down from 100% as intended.
    assert excinfo.value.message_dict["percent"] == [
        "Oxaliplatin goes up from 80% to 90% from cycle 4. Check it, then confirm the level "
        "to record it."
    ]
    assert DoseModification.objects.count() == 1


def test_a_level_above_100_that_lifts_a_reduced_drug_is_asked_even_with_its_override(
    mfolfox6, clinician
):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    dose_modification_record(
        course=course,
        from_cycle_number=2,
        percent=80,
        drug=_drug(mfolfox6, "Oxaliplatin").drug,
        reason="Grade 3 neuropathy",
        created_by=clinician,
    )
    with pytest.raises(DoseLevelToConfirm) as excinfo:
        dose_modification_record(
            course=course,
            from_cycle_number=3,
            percent=110,
            reason="Under-dosed by BSA error",
            override_reason="Oncologist approved",
            created_by=clinician,
        )
    assert excinfo.value.message_dict["percent"][0].startswith(
        "Oxaliplatin goes up from 80% to 110% from cycle 3."
    )
    assert DoseModification.objects.count() == 1


def test_dose_modification_for_one_drug_leaves_others(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    oxaliplatin = DrugFactory.create(name="Oxaliplatin")
    fluorouracil = DrugFactory.create(name="Fluorouracil")
    dose_modification_record(
        course=course,
        from_cycle_number=4,
        percent=75,
        drug=oxaliplatin,
        reason="Grade 2 persistent neuropathy",
        created_by=clinician,
    )
    assert dose_percent_for(course=course, cycle_number=4, drug=oxaliplatin)[0] == D("75")
    assert dose_percent_for(course=course, cycle_number=4, drug=fluorouracil)[0] == D("100")


def test_dose_modification_over_standard_without_override_writes_nothing(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    with pytest.raises(ValidationError) as excinfo:
        dose_modification_record(
            course=course,
            from_cycle_number=2,
            percent=110,
            reason="Re-escalation",
            created_by=clinician,
        )
    assert "override_reason" in excinfo.value.message_dict
    assert not DoseModification.objects.exists()


def test_dose_modification_over_standard_with_override_is_saved(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    modification = dose_modification_record(
        course=course,
        from_cycle_number=2,
        percent=110,
        reason="Re-escalation",
        override_reason="Under-dosed cycle 1 by BSA error; oncologist approved",
        created_by=clinician,
    )
    assert modification.percent == D("110")
    oxaliplatin = DrugFactory.create(name="Oxaliplatin")
    assert dose_percent_for(course=course, cycle_number=2, drug=oxaliplatin)[0] == D("110")


def test_dose_modification_from_cycle_beyond_course_is_refused(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    with pytest.raises(ValidationError) as excinfo:
        dose_modification_record(
            course=course, from_cycle_number=13, percent=80, reason="x", created_by=clinician
        )
    assert "from_cycle_number" in excinfo.value.message_dict
    assert not DoseModification.objects.exists()


# --- administration_record -------------------------------------------------------------------


@pytest.fixture
def folfox_course(mfolfox6, clinician) -> Course:
    patient = PatientFactory.create()
    BodyMeasurementFactory.create(
        patient=patient, measured_on=dt.date(2026, 1, 2), height_cm=170, weight_kg=70
    )
    course = _course(patient, mfolfox6, clinician)
    cycle_give(cycle=_cycle(course, 1), actual_start=START, given_by=clinician)
    pharmacy_verified(_cycle(course, 1))
    return course


def test_administration_record_mfolfox6_oxaliplatin_at_bsa_1_82(
    folfox_course, mfolfox6, clinician, nurse
):
    administration = administration_record(
        cycle=_cycle(folfox_course, 1),
        regimen_drug=_drug(mfolfox6, "Oxaliplatin"),
        day_of_cycle=1,
        given_at=_at(START),
        administered_by=nurse,
        verified_by=clinician,
    )
    administration.refresh_from_db()
    assert administration.dose_mg == D("154.7")  # 85 mg/m2 x 1.82 m2
    assert administration.standard_dose_mg == D("154.7")
    assert administration.dose_percent == D("100.0")
    assert administration.formula == Administration.Formula.MOSTELLER
    assert administration.inputs["bsa_m2"] == "1.82"
    assert administration.inputs["weight_measured_on"] == "2026-01-02"
    assert administration.inputs["cycle_number"] == 1
    assert administration.verified_at == _at(START)


def _oxaliplatin_given(course: Course, regimen: Regimen, nurse: User, checker: User):
    return administration_record(
        cycle=_cycle(course, 1),
        regimen_drug=_drug(regimen, "Oxaliplatin"),
        day_of_cycle=1,
        given_at=_at(START),
        administered_by=nurse,
        verified_by=checker,
    )


def test_administration_stop_records_what_went_in_and_the_lifetime_total_counts_it(
    folfox_course, mfolfox6, clinician, nurse
):
    administration = _oxaliplatin_given(folfox_course, mfolfox6, nurse, clinician)
    stopped = administration_stop(
        administration=administration,
        amount_given_mg="40.5",
        reason="Grade 3 infusion reaction at 25 minutes",
        by=nurse,
    )
    stopped.refresh_from_db()
    assert (stopped.dose_mg, stopped.amount_given_mg) == (D("154.7"), D("40.50"))
    assert stopped.dose_given_mg == D("40.50")
    assert stopped.stopped_recorded_by == nurse
    (row,) = cumulative_dose_per_drug(patient=folfox_course.patient)
    assert row.total_mg == D("40.5")  # not the 154.7 mg prepared
    assert row.total_mg_m2 == D("22.3")  # 40.5 / 1.82


@pytest.mark.parametrize(
    ("amount", "reason", "field"),
    [
        ("154.7", "Reaction", "amount_given_mg"),  # the whole dose needs no entry
        ("200", "Reaction", "amount_given_mg"),
        ("-1", "Reaction", "amount_given_mg"),
        ("abc", "Reaction", "amount_given_mg"),
        ("40", "   ", "reason"),
    ],
)
def test_administration_stop_bad_input_names_the_field_and_changes_nothing(
    folfox_course, mfolfox6, clinician, nurse, amount, reason, field
):
    administration = _oxaliplatin_given(folfox_course, mfolfox6, nurse, clinician)
    with pytest.raises(ValidationError) as excinfo:
        administration_stop(
            administration=administration, amount_given_mg=amount, reason=reason, by=nurse
        )
    assert field in excinfo.value.message_dict
    administration.refresh_from_db()
    assert administration.given_in_full


def test_administration_stop_is_recorded_once(folfox_course, mfolfox6, clinician, nurse):
    administration = _oxaliplatin_given(folfox_course, mfolfox6, nurse, clinician)
    administration_stop(
        administration=administration, amount_given_mg=0, reason="Refused", by=nurse
    )
    with pytest.raises(ValidationError) as excinfo:
        administration_stop(
            administration=administration, amount_given_mg=20, reason="Typo", by=clinician
        )
    assert "Already recorded as stopped at 0.00 mg" in str(excinfo.value)
    administration.refresh_from_db()
    assert (administration.amount_given_mg, administration.stopped_reason) == (D("0"), "Refused")


def test_administration_record_applies_the_carried_forward_reduction(
    folfox_course, mfolfox6, clinician, nurse
):
    modification = dose_modification_record(
        course=folfox_course,
        from_cycle_number=1,
        percent=80,
        reason="Grade 3 neutropenia in a prior course",
        created_by=clinician,
    )
    pharmacy_verified(_cycle(folfox_course, 1))  # the new level needs a new verification
    administration = administration_record(
        cycle=_cycle(folfox_course, 1),
        regimen_drug=_drug(mfolfox6, "Oxaliplatin"),
        day_of_cycle=1,
        given_at=_at(START),
        administered_by=nurse,
        verified_by=clinician,
    )
    assert administration.dose_mg == D("123.8")  # 154.7 x 80% = 123.76
    assert administration.dose_percent == D("80.0")
    assert administration.inputs["dose_modification_id"] == modification.pk


def test_administration_needs_the_pharmacists_verification_at_the_dose_given(
    folfox_course, mfolfox6, clinician, nurse
):
    cycle = _cycle(folfox_course, 1)
    kwargs = {
        "cycle": cycle,
        "regimen_drug": _drug(mfolfox6, "Oxaliplatin"),
        "day_of_cycle": 1,
        "given_at": _at(START),
        "administered_by": nurse,
        "verified_by": clinician,
    }
    # A weight recorded after the verification changes the dose: verify again first.
    BodyMeasurementFactory.create(
        patient=folfox_course.patient, measured_on=START, height_cm=170, weight_kg=60
    )
    with pytest.raises(ValidationError) as excinfo:
        administration_record(**kwargs)
    message = excinfo.value.message_dict["cycle"][0]
    assert message.startswith("Oxaliplatin day 1: the dose is now 142.8 mg, but ")
    assert "verified 154.7 mg" in message
    assert not Administration.objects.exists()
    pharmacy_verified(cycle)
    assert administration_record(**kwargs).dose_mg == D("142.8")


def test_only_a_pharmacist_verifies_a_cycles_doses(folfox_course, clinician, nurse):
    for colleague in (clinician, nurse):
        with pytest.raises(PermissionDenied):
            cycle_doses_verify(cycle=_cycle(folfox_course, 1), by=colleague)


def test_verification_names_a_dose_it_cannot_compute(mfolfox6, clinician):
    patient = allergy_status_taken(PatientFactory.create())
    course = _course(patient, mfolfox6, clinician)  # no weight on record
    pharmacist = ClinicianFactory.create(discipline=User.Discipline.PHARMACIST)
    with pytest.raises(ValidationError) as excinfo:
        cycle_doses_verify(cycle=_cycle(course, 1), by=pharmacist)
    assert "Cannot verify: Oxaliplatin day 1: No weight recorded" in str(excinfo.value)
    assert not DoseVerification.objects.exists()


def test_administration_record_self_verification_is_refused(folfox_course, mfolfox6, nurse):
    with pytest.raises(ValidationError) as excinfo:
        administration_record(
            cycle=_cycle(folfox_course, 1),
            regimen_drug=_drug(mfolfox6, "Oxaliplatin"),
            day_of_cycle=1,
            given_at=_at(START),
            administered_by=nurse,
            verified_by=nurse,
        )
    assert "verified_by" in excinfo.value.message_dict
    assert not Administration.objects.exists()


def test_administration_record_day_not_in_drug_days_is_refused(
    folfox_course, mfolfox6, nurse, clinician
):
    with pytest.raises(ValidationError) as excinfo:
        administration_record(
            cycle=_cycle(folfox_course, 1),
            regimen_drug=_drug(mfolfox6, "Oxaliplatin"),
            day_of_cycle=8,
            given_at=_at(dt.date(2026, 1, 12)),
            administered_by=nurse,
            verified_by=clinician,
        )
    assert "day_of_cycle" in excinfo.value.message_dict
    assert not Administration.objects.exists()


def test_administration_record_given_at_on_another_day_is_refused(
    folfox_course, mfolfox6, nurse, clinician
):
    with pytest.raises(ValidationError) as excinfo:
        administration_record(
            cycle=_cycle(folfox_course, 1),
            regimen_drug=_drug(mfolfox6, "Oxaliplatin"),
            day_of_cycle=1,
            given_at=_at(dt.date(2026, 1, 6)),
            administered_by=nurse,
            verified_by=clinician,
        )
    assert "given_at" in excinfo.value.message_dict
    assert not Administration.objects.exists()


def test_administration_record_drug_from_another_regimen_is_refused(
    folfox_course, ac_t, nurse, clinician
):
    with pytest.raises(ValidationError) as excinfo:
        administration_record(
            cycle=_cycle(folfox_course, 1),
            regimen_drug=_drug(ac_t, "Doxorubicin"),
            day_of_cycle=1,
            given_at=_at(START),
            administered_by=nurse,
            verified_by=clinician,
        )
    assert "regimen_drug" in excinfo.value.message_dict
    assert not Administration.objects.exists()


def test_administration_record_on_a_planned_cycle_is_refused(
    folfox_course, mfolfox6, nurse, clinician
):
    with pytest.raises(ValidationError) as excinfo:
        administration_record(
            cycle=_cycle(folfox_course, 2),
            regimen_drug=_drug(mfolfox6, "Oxaliplatin"),
            day_of_cycle=1,
            given_at=_at(dt.date(2026, 1, 19)),
            administered_by=nurse,
            verified_by=clinician,
        )
    assert "cycle" in excinfo.value.message_dict
    assert not Administration.objects.exists()


def test_administration_record_twice_on_same_day_is_refused(
    folfox_course, mfolfox6, nurse, clinician
):
    kwargs = {
        "regimen_drug": _drug(mfolfox6, "Oxaliplatin"),
        "day_of_cycle": 1,
        "given_at": _at(START),
        "administered_by": nurse,
        "verified_by": clinician,
    }
    administration_record(cycle=_cycle(folfox_course, 1), **kwargs)
    with pytest.raises(ValidationError):
        administration_record(cycle=_cycle(folfox_course, 1), **kwargs)
    assert Administration.objects.count() == 1


# --- model rules the services rely on --------------------------------------------------------


def test_chemo_cycle_end_before_start_is_invalid_and_refused_by_database(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    cycle = _cycle(course, 1)
    cycle.actual_start = START
    cycle.end_date = START - dt.timedelta(days=1)
    with pytest.raises(ValidationError) as excinfo:
        cycle.full_clean()
    assert "end_date" in excinfo.value.message_dict
    with pytest.raises(IntegrityError), transaction.atomic():
        cycle.save()
    assert _cycle(course, 1).end_date is None


def test_chemo_cycle_duplicate_number_is_refused(mfolfox6, clinician):
    course = _course(PatientFactory.create(), mfolfox6, clinician)
    duplicate = ChemoCycle(
        course=course, phase=_cycle(course, 1).phase, number=3, planned_start=START
    )
    with pytest.raises(ValidationError):
        duplicate.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()
    assert course.cycles.filter(number=3).count() == 1


# --- side effects ----------------------------------------------------------------------------


@pytest.fixture
def backend_results() -> Iterator[list]:
    backend = task_backends["default"]
    backend.clear()
    yield backend.results
    backend.clear()


def test_side_effect_record_copies_ctcae_version(patient, treating_clinician):
    term = CtcaeTermFactory.create(term="Nausea", version="5.0", max_grade=3)
    side_effect = side_effect_record(
        patient=patient,
        term=term,
        grade=2,
        onset=dt.date(2026, 6, 10),
        recorded_by=treating_clinician,
    )
    assert side_effect.ctcae_version == "5.0"
    assert side_effect.reported_by == treating_clinician


@pytest.mark.parametrize("grade", [0, 6, -1])
def test_side_effect_record_grade_outside_1_to_5_writes_nothing(patient, clinician, grade):
    term = CtcaeTermFactory.create(term="Diarrhea")
    with pytest.raises(ValidationError) as excinfo:
        side_effect_record(
            patient=patient, term=term, grade=grade, onset=TODAY, recorded_by=clinician
        )
    assert "grade" in excinfo.value.message_dict
    assert not SideEffect.objects.exists()


def test_side_effect_record_grade_above_term_max_writes_nothing(patient, clinician):
    # Nausea has no grade 4 or 5 in CTCAE v5.0.
    nausea = CtcaeTermFactory.create(term="Nausea", max_grade=3)
    with pytest.raises(ValidationError) as excinfo:
        side_effect_record(
            patient=patient, term=nausea, grade=4, onset=TODAY, recorded_by=clinician
        )
    assert "no grade 4" in excinfo.value.message_dict["grade"][0]
    assert not SideEffect.objects.exists()


def test_side_effect_record_grade_missing_from_term_descriptions_is_refused(patient, clinician):
    # Alopecia has grades 1 and 2 only.
    alopecia = CtcaeTermFactory.create(
        term="Alopecia", max_grade=2, grade_descriptions={"1": "< 50%", "2": ">= 50%"}
    )
    side_effect_record(patient=patient, term=alopecia, grade=2, onset=TODAY, recorded_by=clinician)
    with pytest.raises(ValidationError):
        side_effect_record(
            patient=patient, term=alopecia, grade=3, onset=TODAY, recorded_by=clinician
        )
    assert SideEffect.objects.count() == 1


def test_side_effect_record_future_onset_writes_nothing(patient, clinician):
    term = CtcaeTermFactory.create(term="Fatigue")
    with pytest.raises(ValidationError) as excinfo:
        side_effect_record(
            patient=patient,
            term=term,
            grade=1,
            onset=dt.date(2026, 6, 16),
            recorded_by=clinician,
        )
    assert "onset" in excinfo.value.message_dict
    assert not SideEffect.objects.exists()


def test_side_effect_record_cycle_of_another_patient_is_refused(patient, mfolfox6, clinician):
    other_course = _course(PatientFactory.create(), mfolfox6, clinician)
    term = CtcaeTermFactory.create(term="Vomiting")
    with pytest.raises(ValidationError) as excinfo:
        side_effect_record(
            patient=patient,
            term=term,
            grade=2,
            onset=TODAY,
            recorded_by=clinician,
            cycle=_cycle(other_course, 1),
        )
    assert "cycle" in excinfo.value.message_dict
    assert not SideEffect.objects.exists()


def test_side_effect_record_grade_3_notifies_care_team_after_commit(
    patient, treating_clinician, backend_results, django_capture_on_commit_callbacks
):
    term = CtcaeTermFactory.create(term="Febrile neutropenia", max_grade=5)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        side_effect = side_effect_record(
            patient=patient, term=term, grade=3, onset=TODAY, recorded_by=treating_clinician
        )
        assert backend_results == []  # nothing before the commit
    assert len(callbacks) == 1
    assert [r.task.name for r in backend_results] == [notify_care_team_of_severe_side_effect.name]
    assert backend_results[0].kwargs == {"side_effect_id": side_effect.pk}


def test_side_effect_record_grade_2_notifies_nobody(
    patient, clinician, backend_results, django_capture_on_commit_callbacks
):
    term = CtcaeTermFactory.create(term="Nausea", max_grade=3)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        side_effect_record(patient=patient, term=term, grade=2, onset=TODAY, recorded_by=clinician)
    assert callbacks == []
    assert backend_results == []


def test_side_effect_record_grade_3_rolled_back_notifies_nobody(
    patient, clinician, backend_results, django_capture_on_commit_callbacks
):
    term = CtcaeTermFactory.create(term="Febrile neutropenia")

    def record_then_fail() -> None:
        with transaction.atomic():
            side_effect_record(
                patient=patient, term=term, grade=4, onset=TODAY, recorded_by=clinician
            )
            raise RuntimeError("a later step of the same request failed")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        record_then_fail()
    assert callbacks == []
    assert backend_results == []
    assert not SideEffect.objects.exists()


def test_notify_task_mails_care_team_without_phi(patient, treating_clinician, mailoutbox):
    # A name that cannot be a clinician's or a word of the mail, so its absence proves something.
    patient.family_name = "Qzxwvb"
    patient.save(update_fields=["family_name"])
    term = CtcaeTermFactory.create(term="Febrile neutropenia")
    side_effect = side_effect_record(
        patient=patient, term=term, grade=3, onset=TODAY, recorded_by=treating_clinician
    )
    told = notify_care_team_of_severe_side_effect.call(side_effect_id=side_effect.pk)
    assert told == 1
    assert mailoutbox[0].to == [treating_clinician.email]
    body = mailoutbox[0].subject + mailoutbox[0].body
    assert patient.family_name not in body
    assert patient.mrn not in body
    assert "Febrile" not in body


# --- cumulative dose -------------------------------------------------------------------------


def _doxorubicin_given(times: int) -> Patient:
    """`times` administrations of doxorubicin 60 mg/m2 at BSA 1.82 (109.2 mg each)."""
    doxorubicin = DrugFactory.create(
        name="Doxorubicin", lifetime_limit_mg_m2=D("450"), limit_warning_fraction=D("0.80")
    )
    regimen = regimen_create(name="AC", phases=[(14, times, [("Doxorubicin", "60", MG_M2)])])
    course = CourseFactory.create(regimen=regimen)
    for number in range(1, times + 1):
        AdministrationFactory.create(
            cycle=ChemoCycleFactory.create(
                course=course, number=number, status=ChemoCycle.Status.GIVEN
            ),
            drug=doxorubicin,
            standard_dose_mg=D("109.2"),
            dose_mg=D("109.2"),
            inputs={"bsa_m2": "1.82"},
        )
    return course.patient


def test_cumulative_dose_per_drug_below_warning_fraction():
    patient = _doxorubicin_given(5)
    (row,) = cumulative_dose_per_drug(patient=patient)
    assert row.drug.name == "Doxorubicin"
    assert row.total_mg == D("546.0")  # 5 x 109.2
    assert row.total_mg_m2 == D("300.0")  # 5 x 60
    assert row.fraction_used == D("0.67")  # 300 / 450
    assert row.warning is False


def test_cumulative_dose_per_drug_warns_at_80_percent_of_lifetime_limit():
    patient = _doxorubicin_given(6)
    (row,) = cumulative_dose_per_drug(patient=patient)
    assert row.total_mg_m2 == D("360.0")  # 360 / 450 = 0.80: at the warning fraction
    assert row.fraction_used == D("0.80")
    assert row.warning is True


def test_lifetime_projection_warns_when_a_new_plan_crosses_the_limit():
    # A tester's case: 240 mg/m2 of doxorubicin received, 4 more AC cycles planned (+240).
    patient = _doxorubicin_given(4)
    ac = regimen_create(name="AC again", phases=[(14, 4, [("Doxorubicin", "60", MG_M2)])])
    doxorubicin = RegimenDrug.objects.get(phase__regimen=ac)

    (projection,) = lifetime_projection(patient=patient, planned=[(doxorubicin, 4)])

    assert projection.over is True
    assert projection.message == (
        "Doxorubicin: 240 mg/m² received + 240 planned = 480 mg/m², above the lifetime "
        "limit of 450 mg/m²."
    )


def test_lifetime_projection_is_silent_far_below_the_warning_fraction():
    patient = _doxorubicin_given(1)  # 60 mg/m2
    ac = regimen_create(name="AC again", phases=[(14, 2, [("Doxorubicin", "60", MG_M2)])])
    doxorubicin = RegimenDrug.objects.get(phase__regimen=ac)
    assert lifetime_projection(patient=patient, planned=[(doxorubicin, 2)]) == []  # 180 of 450


def test_cumulative_dose_per_drug_counts_administrations_without_bsa():
    carboplatin = DrugFactory.create(name="Carboplatin")
    administration = AdministrationFactory.create(
        drug=carboplatin,
        dose_mg=D("625.0"),
        formula=Administration.Formula.CALVERT,
        inputs={"auc": "5", "gfr_ml_min": "100"},
    )
    (row,) = cumulative_dose_per_drug(patient=administration.cycle.course.patient)
    assert row.total_mg == D("625.0")
    assert row.total_mg_m2 is None
    assert row.administrations_without_bsa == 1
    assert row.warning is False


def test_administration_record_after_the_last_cycle_completes_the_course(clinician, nurse):
    """Giving the last cycle completes the course; its drugs are still recorded afterwards."""
    regimen = regimen_create(
        name="Single cycle (test)", phases=[(21, 1, [("Oxaliplatin", "85", MG_M2)])]
    )
    patient = PatientFactory.create()
    BodyMeasurementFactory.create(
        patient=patient, measured_on=dt.date(2026, 1, 2), height_cm=170, weight_kg=70
    )
    course = _course(patient, regimen, clinician)
    cycle_give(cycle=_cycle(course, 1), actual_start=START, given_by=clinician)
    course.refresh_from_db()
    assert course.status == Course.Status.COMPLETED
    pharmacy_verified(_cycle(course, 1))

    administration = administration_record(
        cycle=_cycle(course, 1),
        regimen_drug=_drug(regimen, "Oxaliplatin"),
        day_of_cycle=1,
        given_at=_at(START),
        administered_by=nurse,
        verified_by=clinician,
    )
    assert administration.dose_mg == D("154.7")


# --- Dates and links that would rewrite or misplace the record (tester's findings) ----------


def test_course_start_years_back_asks_for_confirmation_and_writes_nothing(mfolfox6, clinician):
    patient = PatientFactory.create()
    with pytest.raises(PastStartToConfirm) as excinfo:
        course_start(
            patient=patient,
            regimen=mfolfox6,
            start_date=dt.date(2020, 1, 1),
            intent="curative",
            created_by=clinician,
        )
    assert "1 Jan 2020 is 2357 days ago" in excinfo.value.message_dict["start_date"][0]
    assert not Course.objects.exists()


def test_course_start_a_week_back_needs_no_confirmation(mfolfox6, clinician):
    patient = PatientFactory.create()
    course = course_start(
        patient=patient,
        regimen=mfolfox6,
        start_date=dt.date(2026, 6, 8),  # today is 2026-06-15 in these tests
        intent="curative",
        created_by=clinician,
    )
    assert course.cycles.count() == 12


@pytest.mark.parametrize(
    ("start", "message"),
    [
        (dt.date(1950, 1, 1), "before the patient's date of birth"),
        (dt.date(2027, 7, 1), "more than a year ahead"),
    ],
)
def test_course_start_before_birth_or_far_ahead_is_refused_even_confirmed(
    mfolfox6, clinician, start, message
):
    patient = PatientFactory.create(date_of_birth=dt.date(1960, 5, 17))
    with pytest.raises(ValidationError) as excinfo:
        course_start(
            patient=patient,
            regimen=mfolfox6,
            start_date=start,
            intent="curative",
            created_by=clinician,
            confirm_past_start=True,
        )
    assert message in excinfo.value.message_dict["start_date"][0]
    assert not Course.objects.exists()


def test_dose_modification_cannot_reach_back_into_cycles_with_drugs_recorded(
    folfox_course, mfolfox6, clinician, nurse
):
    administration_record(
        cycle=_cycle(folfox_course, 1),
        regimen_drug=_drug(mfolfox6, "Oxaliplatin"),
        day_of_cycle=1,
        given_at=_at(START),
        administered_by=nurse,
        verified_by=clinician,
    )
    with pytest.raises(ValidationError) as excinfo:
        dose_modification_record(
            course=folfox_course,
            from_cycle_number=1,
            percent=80,
            reason="Grade 3 neutropenia",
            created_by=clinician,
        )
    assert excinfo.value.message_dict["from_cycle_number"] == [
        "Cycle 1 already has drugs recorded; a new dose level can start at cycle 2 at the earliest."
    ]
    assert not DoseModification.objects.exists()
    later = dose_modification_record(
        course=folfox_course,
        from_cycle_number=2,
        percent=80,
        reason="Grade 3 neutropenia",
        created_by=clinician,
    )
    assert later.from_cycle_number == 2


def test_side_effect_on_a_cycle_not_given_is_refused(folfox_course, clinician):
    term = CtcaeTermFactory.create(term="Nausea", max_grade=3)
    with pytest.raises(ValidationError) as excinfo:
        side_effect_record(
            patient=folfox_course.patient,
            term=term,
            grade=1,
            onset=dt.date(2026, 6, 10),
            recorded_by=clinician,
            cycle=_cycle(folfox_course, 2),  # planned, not given
        )
    assert "Cycle 2 has not been given" in excinfo.value.message_dict["cycle"][0]
    assert not SideEffect.objects.exists()


def test_side_effect_before_its_cycle_started_is_refused(folfox_course, clinician):
    term = CtcaeTermFactory.create(term="Nausea", max_grade=3)
    with pytest.raises(ValidationError) as excinfo:
        side_effect_record(
            patient=folfox_course.patient,
            term=term,
            grade=1,
            onset=START - dt.timedelta(days=3),
            recorded_by=clinician,
            cycle=_cycle(folfox_course, 1),
        )
    assert "before cycle 1 started (5 Jan 2026)" in excinfo.value.message_dict["onset"][0]
    side_effect_record(
        patient=folfox_course.patient,
        term=term,
        grade=1,
        onset=START + dt.timedelta(days=2),
        recorded_by=clinician,
        cycle=_cycle(folfox_course, 1),
    )
    assert SideEffect.objects.count() == 1


def test_side_effect_onset_before_birth_is_refused(clinician):
    patient = PatientFactory.create(date_of_birth=dt.date(1960, 5, 17))
    term = CtcaeTermFactory.create(term="Fatigue")
    with pytest.raises(ValidationError) as excinfo:
        side_effect_record(
            patient=patient, term=term, grade=1, onset=dt.date(1900, 1, 1), recorded_by=clinician
        )
    assert "before the patient's date of birth" in excinfo.value.message_dict["onset"][0]


@pytest.mark.parametrize(
    ("substance", "drug_name", "matches"),
    [
        ("5-FU", "fluorouracil", True),
        ("5FU infusion", "fluorouracil", True),
        ("Adriamycin", "doxorubicin", True),
        ("Paclitaxel (Taxol)", "paclitaxel", True),
        ("TAXOL", "paclitaxel", True),
        ("Carbocisteine", "carboplatin", False),  # "carbo" only as a word of its own
        ("Penicillin", "paclitaxel", False),
        ("Anthracyclines", "doxorubicin", True),  # the class, as it is written down
        ("Taxanes", "paclitaxel", True),
        ("Platins", "oxaliplatin", True),
        ("Taxanes", "doxorubicin", False),
    ],
)
def test_an_allergy_is_matched_by_the_drugs_other_names(substance, drug_name, matches, clinician):
    from patients.services import allergy_record
    from treatments.services import drug_allergies

    classes = {"doxorubicin": "anthracycline", "paclitaxel": "taxane", "oxaliplatin": "platinum"}
    patient = PatientFactory.create()
    drug = DrugFactory.create(name=f"{drug_name}", drug_class=classes.get(drug_name, ""))
    allergy_record(patient=patient, substance=substance, recorded_by=clinician)
    hits = drug_allergies(patient=patient, drugs=[drug])
    assert bool(hits) is matches


def test_verification_needs_the_allergy_status_on_the_chart(mfolfox6, clinician):
    # "Not recorded" is not "none": nobody may have asked the patient.
    patient = PatientFactory.create()
    BodyMeasurementFactory.create(
        patient=patient, measured_on=dt.date(2026, 1, 2), height_cm=170, weight_kg=70
    )
    course = _course(patient, mfolfox6, clinician)
    pharmacist = ClinicianFactory.create(discipline=User.Discipline.PHARMACIST)
    with pytest.raises(ValidationError) as excinfo:
        cycle_doses_verify(cycle=_cycle(course, 1), by=pharmacist)
    assert "allergy status is not recorded" in excinfo.value.message_dict["cycle"][0]
    assert not DoseVerification.objects.exists()
    allergy_status_taken(patient)
    assert cycle_doses_verify(cycle=_cycle(course, 1), by=pharmacist)
