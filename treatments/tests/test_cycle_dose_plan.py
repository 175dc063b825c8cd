"""One computation of a cycle's doses (services.cycle_dose_plan): the cycle page, the
pharmacist's verification, the check at the chair and the pharmacy worklist agree.

They had disagreed on a later day: the page computed day 8 for today, the verification for
day 8 itself. A birthday before day 8 (the age in Cockcroft-Gault) or a weight that is too old
by day 8 made the page show a dose the pharmacist could not verify, or say "changed" right
after a verification.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from labs.models import LabResult, LabTest
from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import ClinicianFactory
from patients.models import Patient
from patients.tests.factories import BodyMeasurementFactory, patient_through_service
from treatments import services
from treatments.models import (
    Administration,
    Course,
    DoseBasis,
    DoseVerification,
    Regimen,
    RegimenDrug,
)
from treatments.services import (
    administration_record,
    course_start,
    cycle_dose_plan,
    cycle_doses_verify,
    cycle_give,
)
from treatments.tests.factories import (
    AdministrationFactory,
    DrugFactory,
    allergy_status_taken,
    on_the_team,
    regimen_create,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_20_march_2026")]

D = Decimal
TODAY = dt.date(2026, 3, 20)  # a Friday: cycle 1's day 1; its day 8 is 27 March
DAY_8 = dt.date(2026, 3, 27)


@pytest.fixture
def nurse(care_team, admin_user) -> User:
    return on_the_team(care_team, admin_user, discipline=User.Discipline.NURSE)


def _days_1_and_8(regimen: Regimen, drug_name: str) -> RegimenDrug:
    # regimen_create plans day 1 only; a weekly drug is given on days 1 and 8.
    RegimenDrug.objects.filter(phase__regimen=regimen, drug__name=drug_name).update(days="1,8")
    return RegimenDrug.objects.get(phase__regimen=regimen, drug__name=drug_name)


def _given_course(patient: Patient, regimen: Regimen, oncologist: User, start: dt.date) -> Course:
    course = course_start(
        patient=patient,
        regimen=regimen,
        start_date=start,
        intent="curative",
        created_by=oncologist,
        confirm_past_start=True,
    )
    cycle_give(cycle=course.cycles.get(number=1), actual_start=start, given_by=oncologist)
    return course


def _cycle_url(course: Course, number: int = 1) -> str:
    return reverse("treatments:cycle_detail", args=[course.patient_id, course.pk, number])


def _verify_on_the_page(client, course: Course) -> str:
    """The pharmacist verifies the doses the cycle page shows her; returns the page."""
    page = client.get(_cycle_url(course)).content.decode()
    seen = re.search(r'name="seen_doses" value="([^"]*)"', page).group(1)
    url = reverse("treatments:cycle_verify", args=[course.patient_id, course.pk, 1])
    response = client.post(url, {"seen_doses": seen})
    assert response.status_code == 302, response.content.decode()
    return page


def _record(course: Course, regimen_drug: RegimenDrug, day: int, giver: User, checker: User):
    return administration_record(
        cycle=course.cycles.get(number=1),
        regimen_drug=regimen_drug,
        day_of_cycle=day,
        given_at=timezone.make_aware(
            dt.datetime.combine(course.start_date + dt.timedelta(days=day - 1), dt.time(10, 0))
        ),
        administered_by=giver,
        verified_by=checker,
    )


# --- A birthday between today and day 8 (Calvert: the age in Cockcroft-Gault) ----------------


@pytest.fixture
def carboplatin_course(care_team, treating_clinician) -> tuple[Course, RegimenDrug]:
    # Female, 60 kg, creatinine 1.0 mg/dL: 65 years old today, 66 on day 8 (25 March).
    patient = patient_through_service(
        care_team, date_of_birth=dt.date(1960, 3, 25), sex="female", family_name="Quennell"
    )
    allergy_status_taken(patient)
    BodyMeasurementFactory.create(patient=patient, measured_on=TODAY, height_cm=165, weight_kg=60)
    creatinine = LabTest.objects.get(loinc="2160-0")
    LabResult.objects.create(
        patient=patient,
        test=creatinine,
        value=D("1.0"),
        unit=creatinine.unit,
        collected_at=timezone.make_aware(dt.datetime(2026, 3, 20, 8, 0)),
    )
    regimen = regimen_create(
        name="Weekly carboplatin (test)",
        phases=[(21, 2, [("Carboplatin", "5", DoseBasis.AUC)])],
    )
    carboplatin = _days_1_and_8(regimen, "Carboplatin")
    return _given_course(patient, regimen, treating_clinician, TODAY), carboplatin


def test_a_birthday_before_day_8_gives_the_page_the_verified_dose_and_the_chair_records_it(
    client, login, carboplatin_course, pharmacist, nurse, treating_clinician
):
    course, carboplatin = carboplatin_course
    login(client, pharmacist)
    page = _verify_on_the_page(client, course)
    # Day 1 at 65: CrCl 53.13, 5 x (53.13 + 25) = 390.7 mg. Day 8 at 66: CrCl 52.42 -> 387.1 mg.
    assert "390.7 mg" in page
    assert "387.1 mg" in page
    verification = DoseVerification.objects.get(cycle__course=course)
    assert verification.dose_for(carboplatin.pk, 8) == D("387.1")

    page = client.get(_cycle_url(course)).content.decode()
    assert "Pharmacy verified</span> by" in page
    assert "Verification no longer holds" not in page
    assert "changed:" not in page
    assert page.count('<span class="badge ok">verified</span>') == 2
    assert cycle_dose_plan(course.cycles.get(number=1)).verification_state == "verified"

    assert _record(course, carboplatin, 1, nurse, treating_clinician).dose_mg == D("390.7")
    with time_machine.travel(dt.datetime(2026, 3, 27, 11, 0, tzinfo=dt.UTC), tick=False):
        day_8 = _record(course, carboplatin, 8, nurse, treating_clinician)
    assert (day_8.dose_mg, day_8.inputs["age_years"]) == (D("387.1"), 66)
    assert day_8.inputs["dose_verification_id"] == verification.pk


# --- A weight in date today but too old by day 8 ---------------------------------------------


@pytest.fixture
def paclitaxel_course(patient, treating_clinician) -> tuple[Course, RegimenDrug]:
    # Weighed on 10 March: in date for day 1 (10 days), too old for day 8 (17 days > 14).
    allergy_status_taken(patient)
    BodyMeasurementFactory.create(
        patient=patient, measured_on=dt.date(2026, 3, 10), height_cm=170, weight_kg=70
    )
    regimen = regimen_create(
        name="Weekly paclitaxel (test)",
        phases=[(21, 2, [("Paclitaxel", "80", DoseBasis.MG_M2)])],
    )
    paclitaxel = _days_1_and_8(regimen, "Paclitaxel")
    return _given_course(patient, regimen, treating_clinician, TODAY), paclitaxel


def test_a_day_8_whose_weight_will_be_too_old_waits_for_its_weight_without_staling_day_1(
    client, login, paclitaxel_course, pharmacist
):
    course, paclitaxel = paclitaxel_course
    login(client, pharmacist)
    page = _verify_on_the_page(client, course)
    # Day 1: 80 mg/m2 x 1.82 m2. Day 8 is not dosed from today's weight: it waits for its own.
    assert "145.6 mg" in page
    assert "awaiting its inputs</span> Dosed from the inputs on record by Fri 27 Mar" in page
    assert "The latest weight is from 10 Mar 2026, 17 days before 27 Mar 2026" in page
    verification = DoseVerification.objects.get(cycle__course=course)
    assert verification.doses == {f"{paclitaxel.pk}:1": "145.6"}

    page = client.get(_cycle_url(course)).content.decode()
    assert "Pharmacy verified</span> by" in page
    assert "Verification no longer holds" not in page
    assert cycle_dose_plan(course.cycles.get(number=1)).verification_state == "verified"
    worklist = client.get(reverse("treatments:pharmacy_worklist")).content.decode()
    assert '<span class="badge ok">Verified</span>' in worklist


def test_day_8_is_verified_again_once_weighed_and_recorded_at_the_dose_the_page_shows(
    client, login, paclitaxel_course, pharmacist, nurse, treating_clinician
):
    course, paclitaxel = paclitaxel_course
    login(client, pharmacist)
    _verify_on_the_page(client, course)
    _record(course, paclitaxel, 1, nurse, treating_clinician)
    cycle = course.cycles.get(number=1)
    with time_machine.travel(dt.datetime(2026, 3, 27, 11, 0, tzinfo=dt.UTC), tick=False):
        # Day 8 has come and the patient is not weighed yet: it can be neither verified nor given.
        assert cycle_dose_plan(cycle).verification_state == "changed"
        with pytest.raises(ValidationError) as excinfo:
            _record(course, paclitaxel, 8, nurse, treating_clinician)
        assert "a dose needs a weight from the last 14 days" in str(excinfo.value)

        BodyMeasurementFactory.create(
            patient=course.patient, measured_on=DAY_8, height_cm=None, weight_kg=66
        )
        login(client, pharmacist)
        page = client.get(_cycle_url(course)).content.decode()
        assert '141.6 mg</span> <span class="badge info">calculated, to be verified' in page
        assert "Verification no longer holds" in page
        assert cycle_dose_plan(cycle).verification_state == "changed"
        with pytest.raises(ValidationError) as excinfo:
            _record(course, paclitaxel, 8, nurse, treating_clinician)
        assert "Paclitaxel day 8: the dose is now 141.6 mg, but " in str(excinfo.value)
        assert "verified no dose" in str(excinfo.value)

        _verify_on_the_page(client, course)
        assert cycle_dose_plan(cycle).verification_state == "verified"
        assert _record(course, paclitaxel, 8, nurse, treating_clinician).dose_mg == D("141.6")
        assert (
            cycle_dose_plan(cycle).verification_state == ""
        )  # every drug is given: off the worklist


def test_a_verification_with_only_a_later_day_waiting_says_what_it_waits_for(
    paclitaxel_course, pharmacist, nurse, treating_clinician
):
    course, paclitaxel = paclitaxel_course
    cycle_doses_verify(cycle=course.cycles.get(number=1), by=pharmacist)
    _record(course, paclitaxel, 1, nurse, treating_clinician)
    with pytest.raises(ValidationError) as excinfo:
        cycle_doses_verify(cycle=course.cycles.get(number=1), by=pharmacist)
    message = excinfo.value.message_dict["cycle"][0]
    assert message.startswith(
        "No dose of cycle 1 can be verified yet: Paclitaxel day 8 (27 Mar 2026): The latest "
        "weight is from 10 Mar 2026"
    )
    assert DoseVerification.objects.filter(cycle__course=course).count() == 1


def test_a_later_day_verified_then_no_longer_computable_needs_verifying_again(
    paclitaxel_course, pharmacist
):
    course, _ = paclitaxel_course
    cycle = course.cycles.get(number=1)
    weighed_today = BodyMeasurementFactory.create(
        patient=course.patient, measured_on=TODAY, height_cm=None, weight_kg=70
    )
    cycle_doses_verify(cycle=cycle, by=pharmacist)  # day 8 too, from today's weight
    assert cycle_dose_plan(cycle).verification_state == "verified"
    weighed_today.delete()  # entered in error: day 8 waits for a weight again
    # The verified 145.6 mg of day 8 can no longer be checked: not a later day left for later.
    assert cycle_dose_plan(cycle).verification_state == "changed"
    plan = services.cycle_dose_plan(cycle)
    day_8 = plan.doses[1]
    assert (day_8.awaiting_inputs, day_8.verified_mg) == (True, D("145.6"))
    assert plan.verification_stale


# --- The previous cycle beside each dose; lifetime totals read once ----------------------------


@pytest.fixture
def folfox_cycle_2(patient, treating_clinician) -> Course:
    allergy_status_taken(patient)
    BodyMeasurementFactory.create(
        patient=patient, measured_on=dt.date(2026, 3, 19), height_cm=170, weight_kg=70
    )
    regimen = regimen_create(
        name="FOLFOX (test)",
        phases=[
            (
                14,
                4,
                [
                    ("Oxaliplatin", "85", DoseBasis.MG_M2),
                    ("Leucovorin", "400", DoseBasis.MG_M2),
                    ("Fluorouracil", "2400", DoseBasis.MG_M2),
                ],
            )
        ],
    )
    return _given_course(patient, regimen, treating_clinician, dt.date(2026, 3, 6))


def _given_in_cycle_1(course: Course, drug_name: str, **fields) -> Administration:
    regimen_drug = RegimenDrug.objects.get(phase__regimen=course.regimen, drug__name=drug_name)
    return AdministrationFactory.create(
        cycle=course.cycles.get(number=1),
        regimen_drug=regimen_drug,
        drug=regimen_drug.drug,
        **fields,
    )


def test_the_cycle_page_shows_what_each_drug_was_given_at_in_the_previous_cycle(
    client, login, folfox_cycle_2, pharmacist
):
    course = folfox_cycle_2
    _given_in_cycle_1(
        course, "Oxaliplatin", standard_dose_mg=D("154.7"), dose_mg=D("123.8"), dose_percent=80
    )
    _given_in_cycle_1(
        course,
        "Fluorouracil",
        standard_dose_mg=D("4368"),
        dose_mg=D("3494.4"),
        dose_percent=80,
        amount_given_mg=D("1200"),
        stopped_reason="Pump failure",
        stopped_recorded_by=ClinicianFactory.create(),
    )
    login(client, pharmacist)
    page = client.get(_cycle_url(course, 2)).content.decode()
    assert "<th>Given in cycle 1</th>" in page
    rows = page.split('<table class="doses">')[1].split("</table>")[0].split("<tr")
    oxaliplatin, leucovorin, fluorouracil = (r for r in rows if "<td><strong>" in r)
    assert "123.8&nbsp;mg at&nbsp;80%" in oxaliplatin
    assert "none recorded" in leucovorin
    assert (
        '1200 of 3494.4&nbsp;mg at&nbsp;80% <span class="badge warn">stopped early' in fluorouracil
    )


def test_the_previous_cycle_column_costs_the_same_queries_however_many_drugs(
    client, login, folfox_cycle_2, pharmacist
):
    course = folfox_cycle_2
    login(client, pharmacist)
    _given_in_cycle_1(course, "Oxaliplatin")

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(_cycle_url(course, 2)).status_code == 200
        return len(ctx.captured_queries)

    queries()  # warm the caches (content types, session)
    one = queries()
    _given_in_cycle_1(course, "Leucovorin")
    _given_in_cycle_1(course, "Fluorouracil")
    assert queries() == one


def test_the_cycle_page_reads_the_lifetime_totals_once(
    client, login, patient, treating_clinician, pharmacist, monkeypatch
):
    DrugFactory.create(
        name="Doxorubicin", lifetime_limit_mg_m2=D("450"), limit_warning_fraction=D("0.80")
    )
    BodyMeasurementFactory.create(patient=patient, measured_on=TODAY, height_cm=170, weight_kg=70)
    regimen = regimen_create(name="AC (test)", phases=[(14, 4, [("Doxorubicin", "60", "mg/m2")])])
    course = _given_course(patient, regimen, treating_clinician, TODAY)
    reads = []
    real = services.cumulative_dose_per_drug

    def counted(**kwargs):
        reads.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(services, "cumulative_dose_per_drug", counted)
    login(client, pharmacist)
    page = client.get(_cycle_url(course)).content.decode()
    assert "Lifetime Doxorubicin received so far: <strong>0 mg/m²</strong>" in page
    assert len(reads) == 1
