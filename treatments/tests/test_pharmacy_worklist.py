"""The pharmacy worklist tells a pharmacist, before they open a cycle, which cycles they may not
verify: those at a dose level in force that they set themselves as a non-medical prescriber
(separation of duties; cycle_doses_verify refuses them). Another pharmacist sees no marker."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from oncoplanner.accounts.models import User
from patients.services import patient_create
from patients.tests.factories import BodyMeasurementFactory, PatientFactory
from treatments import services
from treatments.models import ChemoCycle, Course, DoseBasis, Drug, Regimen, RegimenDrug
from treatments.selectors import pharmacy_worklist
from treatments.services import (
    CycleDosePlan,
    PlannedDose,
    course_start,
    cycle_doses_verify,
    dose_modification_record,
)
from treatments.tests.factories import (
    AdministrationFactory,
    allergy_status_taken,
    on_the_team,
    regimen_create,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_2_march_2026")]

MARKER = "You set this dose level: another pharmacist verifies"
REFUSAL = "another pharmacist verifies doses you prescribed"


@pytest.fixture
def on_2_march_2026():
    """Monday 2 March 2026, 15:00 UTC: the courses below start today or tomorrow."""
    with time_machine.travel(dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC), tick=False):
        yield


@pytest.fixture
def prescribing_pharmacist(care_team, admin_user) -> User:
    """A pharmacist who is also a non-medical prescriber (the demo's pharm.haddad)."""
    return on_the_team(
        care_team, admin_user, discipline=User.Discipline.PHARMACIST, sact_prescriber=True
    )


def _course(
    care_team,
    oncologist,
    mrn: str,
    *,
    start=dt.date(2026, 3, 2),
    level_by=None,
    level_drug: str | None = None,
    regimen: str = "mFOLFOX6",
    weighed: bool = True,
):
    """An mFOLFOX6 (or `regimen`) course of a new patient on `care_team` (170 cm, 72 kg, unless
    not `weighed`), cycle 1 on `start`; with an 80% level from cycle 1 (of every drug, or of
    `level_drug`) set by `level_by`."""
    fields = PatientFactory.build()
    patient = patient_create(
        created_by=None,
        care_team=care_team,
        mrn=mrn,
        given_name=fields.given_name,
        family_name=fields.family_name,
        date_of_birth=fields.date_of_birth,
        sex=fields.sex,
    )
    if weighed:
        BodyMeasurementFactory.create(
            patient=patient,
            measured_on=dt.date(2026, 2, 27),
            height_cm=Decimal("170"),
            weight_kg=Decimal("72"),
        )
    allergy_status_taken(patient)
    course = course_start(
        patient=patient,
        regimen=Regimen.objects.get(name=regimen, version=1),
        start_date=start,
        intent="adjuvant",
        created_by=oncologist,
    )
    if level_by is not None:
        dose_modification_record(
            course=course,
            from_cycle_number=1,
            percent=80,
            reason="Grade 2 neuropathy on the previous course",
            created_by=level_by,
            drug=Drug.objects.get(name__iexact=level_drug) if level_drug else None,
        )
    return course


def _rows(client) -> dict[str, str]:
    """The worklist's rows as the page shows them, by patient MRN, in the page's order."""
    page = client.get(reverse("treatments:pharmacy_worklist")).content.decode()
    body = page.split("<tbody>")[1].split("</tbody>")[0]
    return {row.split("MRN ")[1].split("<")[0]: row for row in body.split("<tr>")[1:]}


@pytest.fixture
def world(care_team, treating_clinician, prescribing_pharmacist) -> dict[str, Course]:
    """Three cycles due: one at the pharmacist's level, one at the oncologist's, one at 100%."""
    return {
        "own": _course(care_team, treating_clinician, "MRN-OWN", level_by=prescribing_pharmacist),
        "oncologist": _course(
            care_team, treating_clinician, "MRN-ONC", level_by=treating_clinician
        ),
        "full": _course(care_team, treating_clinician, "MRN-FULL", start=dt.date(2026, 3, 3)),
    }


def test_the_pharmacist_who_set_a_dose_level_sees_the_marker_on_that_row_only(
    client, login, world, prescribing_pharmacist
):
    login(client, prescribing_pharmacist)
    rows = _rows(client)
    assert MARKER in rows["MRN-OWN"]
    # Why, in the words the cycle page and the verify service use.
    assert (
        "You set the dose level in force for cycle 1 (80% all drugs from cycle 1, "
        in (rows["MRN-OWN"])
    )
    assert REFUSAL in rows["MRN-OWN"]
    assert MARKER not in rows["MRN-ONC"]
    assert MARKER not in rows["MRN-FULL"]
    # All three are unverified: the one they may not verify comes after the two they may,
    # though its day 1 (today) is before MRN-FULL's (tomorrow).
    assert list(rows) == ["MRN-ONC", "MRN-FULL", "MRN-OWN"]


def test_another_pharmacist_sees_no_marker_and_the_usual_order(
    client, login, world, pharmacist, treating_clinician
):
    for user in (pharmacist, treating_clinician):
        login(client, user)
        rows = _rows(client)
        assert set(rows) == {"MRN-OWN", "MRN-ONC", "MRN-FULL"}
        assert all(MARKER not in row for row in rows.values())
        assert list(rows)[-1] == "MRN-FULL"  # by day 1 only


def test_the_worklist_and_the_verify_service_agree_on_who_may_verify(
    world, prescribing_pharmacist, pharmacist, treating_clinician
):
    rows = {row.cycle.course_id: row for row in pharmacy_worklist(user=prescribing_pharmacist)}
    own = rows[world["own"].pk]
    assert (own.may_verify, own.set_dose_level) == (False, True)
    with pytest.raises(PermissionDenied) as refused:
        cycle_doses_verify(cycle=own.cycle, by=prescribing_pharmacist)
    assert own.verify_refused == refused.value.args[0]  # one wording
    for course in (world["oncologist"], world["full"]):
        assert (rows[course.pk].may_verify, rows[course.pk].verify_refused) == (True, "")
    # Another pharmacist may verify all three: the service agrees for the pharmacist's level.
    assert all(row.may_verify for row in pharmacy_worklist(user=pharmacist))
    assert cycle_doses_verify(cycle=own.cycle, by=pharmacist).verified_by == pharmacist
    # An oncologist verifies nothing, and is told so by the same words as the service.
    refusals = {row.verify_refused for row in pharmacy_worklist(user=treating_clinician)}
    assert refusals == {"A cycle's doses are verified by a pharmacist."}
    with pytest.raises(PermissionDenied, match="verified by a pharmacist"):
        cycle_doses_verify(cycle=world["full"].cycles.get(number=1), by=treating_clinician)


def test_a_level_in_force_only_for_a_drug_already_given_still_marks_the_row(
    care_team, treating_clinician, prescribing_pharmacist, pharmacist
):
    # Oxaliplatin at 80% from cycle 1, set by the pharmacist; oxaliplatin given, the other
    # drugs still to give at 100%. The level in force for the cycle is still theirs.
    course = _course(care_team, treating_clinician, "MRN-OXA")
    oxaliplatin = RegimenDrug.objects.get(
        phase__regimen=course.regimen, drug__name__iexact="oxaliplatin"
    )
    dose_modification_record(
        course=course,
        from_cycle_number=1,
        percent=80,
        reason="Grade 2 neuropathy",
        created_by=prescribing_pharmacist,
        drug=oxaliplatin.drug,
    )
    cycle = course.cycles.get(number=1)
    cycle_doses_verify(cycle=cycle, by=pharmacist)
    AdministrationFactory.create(cycle=cycle, regimen_drug=oxaliplatin, dose_percent=80)
    [row] = pharmacy_worklist(user=prescribing_pharmacist)
    assert (row.may_verify, row.set_dose_level) == (False, True)
    assert "80% oxaliplatin from cycle 1" in row.verify_refused
    with pytest.raises(PermissionDenied) as refused:
        cycle_doses_verify(cycle=cycle, by=prescribing_pharmacist)
    assert row.verify_refused == refused.value.args[0]


def _queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("treatments:pharmacy_worklist")).status_code == 200
    return len(captured.captured_queries)


def test_the_worklist_reads_the_dose_levels_once_not_once_per_row(
    client, login, world, care_team, treating_clinician, prescribing_pharmacist, pharmacist
):
    counts = {}
    for name, user in [
        ("another pharmacist", pharmacist),
        ("prescriber", prescribing_pharmacist),
        ("oncologist", treating_clinician),
    ]:
        login(client, user)
        _queries(client)  # warm the caches (content types, the session's user)
        counts[name] = _queries(client)
    # Pinned for three rows, one of them marked for the prescriber. 11 queries whatever the
    # rows: the session, the user, the access gate's emergency-access check, the cycles in the
    # window, the dose levels of their courses (for the doses and for a pharmacist's marker
    # alike: the marker and its reason cost nothing more), their latest verifications, their
    # administrations, their phases' regimen drugs, every row's patient's weight and height on
    # or before each dose's day (patients.models.latest_measurements), and the list's
    # access-log row with its patients (one insert for them all). (Before the plans were read
    # together: 49, 49 and 48; then 10 + 2 per row, the weight and height of each patient.)
    assert counts == {"another pharmacist": 11, "prescriber": 11, "oncologist": 11}
    # One more row marked (at an oxaliplatin level: the message names the drug), one more at
    # the oncologist's level: neither costs a query.
    login(client, prescribing_pharmacist)
    _course(
        care_team,
        treating_clinician,
        "MRN-OWN-2",
        level_by=prescribing_pharmacist,
        level_drug="oxaliplatin",
    )
    one_more = _queries(client)
    _course(care_team, treating_clinician, "MRN-ONC-2", level_by=treating_clinician)
    two_more = _queries(client)
    assert one_more == two_more == counts["prescriber"]
    rows = _rows(client)
    assert MARKER in rows["MRN-OWN-2"]
    assert "80% oxaliplatin from cycle 1" in rows["MRN-OWN-2"]
    assert sum(MARKER in row for row in rows.values()) == 2


def _queries_by_table(client) -> tuple[int, int]:
    """The worklist page's queries: (those reading body measurements, all the others)."""
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("treatments:pharmacy_worklist")).status_code == 200
    sqls = [query["sql"] for query in captured.captured_queries]
    measurements = sum('"patients_bodymeasurement"' in sql for sql in sqls)
    return measurements, len(sqls) - measurements


def test_six_rows_cost_what_three_do(
    client, login, world, care_team, treating_clinician, pharmacist
):
    login(client, pharmacist)
    _queries(client)  # warm the caches
    assert len(_rows(client)) == 3
    three = _queries_by_table(client)
    for mrn, level_by in [("MRN-4", treating_clinician), ("MRN-5", None), ("MRN-6", None)]:
        _course(care_team, treating_clinician, mrn, level_by=level_by)
    assert len(_rows(client)) == 6
    six = _queries_by_table(client)
    # Verifications, administrations, regimen drugs and dose levels: read once for every row.
    # So are the patients' heights and weights: one query for every patient's weight and
    # height on or before each dose's day (they were 2 per row: 6 for three rows, 12 for six).
    assert six == three == (1, 10)


def test_one_cycles_plan_reads_its_patients_height_and_weight_in_one_query(world):
    # The cycle page, verifying and the chair compute one cycle's plan through the same
    # batched reads as the worklist: its latest verification, its administrations, its
    # phase's regimen drugs, its course's dose levels, and its patient's weight and height on
    # or before each dose's day together (they were two queries: 6 in all).
    cycle = ChemoCycle.objects.select_related("course__patient").get(course=world["full"], number=1)
    with CaptureQueriesContext(connection) as captured:
        plan = services.cycle_dose_plan(cycle)
    sqls = [query["sql"] for query in captured.captured_queries]
    assert len(sqls) == 5
    assert sum('"patients_bodymeasurement"' in sql for sql in sqls) == 1
    # Four mg/m² doses, each from 170 cm and 72 kg: BSA 1.84.
    assert [dose.calculation.inputs["bsa_m2"] for dose in plan.to_give] == ["1.84"] * 4


def _dose_fields(dose: PlannedDose) -> dict[str, object]:
    return {
        "regimen_drug": dose.regimen_drug.pk,
        "day": dose.day,
        "date": dose.date,
        "later_day": dose.later_day,
        "administration": dose.administration.pk if dose.administration else None,
        "calculation": dose.calculation,  # dose, standard dose, percent, formula, cap, inputs
        "percent": dose.percent,
        "modification": dose.modification.pk if dose.modification else None,
        "errors": dose.errors,
        "verification": dose.verification.pk if dose.verification else None,
        "verified_mg": dose.verified_mg,
        "dispensed_mg": dose.dispensed_mg,
        "alike": dose.alike,
        "label": dose.label,
        "band": dose.band,
        "verified": dose.verified,
        "banded": dose.banded,
        "verification_holds": dose.verification_holds,
        "banded_before": dose.banded_before,
        "blocked": dose.blocked,
        "awaiting_inputs": dose.awaiting_inputs,
    }


def _plan_fields(plan: CycleDosePlan) -> dict[str, object]:
    return {
        "cycle": plan.cycle.pk,
        "verification": plan.verification.pk if plan.verification else None,
        "doses_to_verify": plan.doses_to_verify,
        "problems": plan.problems,
        "verification_state": plan.verification_state,
        "doses": [_dose_fields(dose) for dose in plan.doses],
    }


def test_the_worklists_plans_are_each_cycles_own_plan(
    world, care_team, treating_clinician, prescribing_pharmacist, pharmacist
):
    """The worklist reads its cycles' doses together (cycle_dose_plans); each must be the very
    plan the cycle page, the verification and the chair compute for that cycle alone."""
    # Oxaliplatin banded at 5%: verified at 100%, dispensed at 160 mg for 156.4 calculated.
    oxaliplatin = Drug.objects.get(name="oxaliplatin")
    oxaliplatin.dose_banding_tolerance_percent = Decimal("5")
    oxaliplatin.full_clean()
    oxaliplatin.save()
    banded = _course(care_team, treating_clinician, "MRN-BAND")
    banded_cycle = banded.cycles.get(number=1)
    key = f"{RegimenDrug.objects.get(phase=banded_cycle.phase, drug=oxaliplatin).pk}:1"
    cycle_doses_verify(cycle=banded_cycle, by=pharmacist, dispensed_doses={key: "160"})
    # Verified, then weighed again: the verification no longer holds.
    changed = _course(care_team, treating_clinician, "MRN-CHANGED")
    cycle_doses_verify(cycle=changed.cycles.get(number=1), by=pharmacist)
    BodyMeasurementFactory.create(
        patient=changed.patient, measured_on=dt.date(2026, 3, 2), weight_kg=Decimal("65")
    )
    # Oxaliplatin given at 80% (its own level), the rest still to give.
    given = _course(care_team, treating_clinician, "MRN-GIVEN")
    given_cycle = given.cycles.get(number=1)
    dose_modification_record(
        course=given,
        from_cycle_number=1,
        percent=80,
        reason="Grade 2 neuropathy",
        created_by=prescribing_pharmacist,
        drug=oxaliplatin,
    )
    cycle_doses_verify(cycle=given_cycle, by=pharmacist)
    AdministrationFactory.create(
        cycle=given_cycle,
        regimen_drug=RegimenDrug.objects.get(phase=given_cycle.phase, drug=oxaliplatin),
        dose_percent=80,
    )
    # Other regimens, other phases; a vincristine-only level (CHOP's capped drug); a patient
    # never weighed, whose doses cannot be computed.
    _course(care_team, treating_clinician, "MRN-CHOP", regimen="CHOP")
    _course(
        care_team,
        treating_clinician,
        "MRN-CHOP-75",
        regimen="CHOP",
        start=dt.date(2026, 3, 1),
        level_by=treating_clinician,
        level_drug="vincristine",
    )
    _course(care_team, treating_clinician, "MRN-ACT", regimen="Dose-dense AC-T")
    _course(care_team, treating_clinician, "MRN-UNWEIGHED", weighed=False)
    # Heights and weights at many dates, read together for every patient: each dose must
    # still get the newest on or before its own day. Two rows of one patient: mFOLFOX6 from
    # yesterday, and a weekly regimen from tomorrow (day 1 and day 8, mg/m² and mg/kg).
    history = _course(
        care_team, treating_clinician, "MRN-HISTORY", start=dt.date(2026, 3, 1), weighed=False
    )
    patient = history.patient
    for measured_on, height, weight in [
        (dt.date(2025, 9, 1), "174", "80"),  # the oldest height and weight
        (dt.date(2026, 2, 10), "172", None),
        (dt.date(2026, 2, 27), None, "76"),
        (dt.date(2026, 3, 1), None, "75.5"),
        (dt.date(2026, 3, 1), None, "75"),  # the same day, entered last: the one that counts
        (dt.date(2026, 3, 2), "171", "74"),  # after yesterday's day 1: only for the later row
    ]:
        BodyMeasurementFactory.create(
            patient=patient,
            measured_on=measured_on,
            height_cm=Decimal(height) if height else None,
            weight_kg=Decimal(weight) if weight else None,
        )
    weekly = regimen_create(
        name="Weekly (test)",
        phases=[(21, 4, [("Gemcitabine", "1000", DoseBasis.MG_M2), ("Trastuzumab", "6", "mg/kg")])],
    )
    RegimenDrug.objects.filter(phase__regimen=weekly, drug__name="Gemcitabine").update(days="1,8")
    second = course_start(
        patient=patient,
        regimen=weekly,
        start_date=dt.date(2026, 3, 3),
        intent="adjuvant",
        created_by=treating_clinician,
        confirm_concurrent_course=True,
        confirm_reason="Second course of the same patient, for the worklist's reads",
    )
    # A weight too old to dose from (20 days before day 1); a weight and no height.
    stale = _course(care_team, treating_clinician, "MRN-STALE", weighed=False)
    BodyMeasurementFactory.create(
        patient=stale.patient,
        measured_on=dt.date(2026, 2, 10),
        height_cm=Decimal("165"),
        weight_kg=Decimal("60"),
    )
    no_height = _course(care_team, treating_clinician, "MRN-NO-HEIGHT", regimen="CHOP")
    no_height.patient.measurements.update(height_cm=None)

    rows = pharmacy_worklist(user=pharmacist)
    assert len(rows) == 14
    cycles = [row.cycle for row in rows]
    batched = services.cycle_dose_plans(cycles)
    alone = {
        cycle.pk: services.cycle_dose_plan(ChemoCycle.objects.get(pk=cycle.pk)) for cycle in cycles
    }
    for row in rows:
        assert _plan_fields(batched[row.cycle.pk]) == _plan_fields(alone[row.cycle.pk])
        assert row.state == alone[row.cycle.pk].verification_state
    # The comparison covered what it claims: every state, a drug's own level and an all-drug
    # one, a banded dose, a dose given, a capped dose, doses that cannot be computed.
    doses = [dose for plan in alone.values() for dose in plan.doses]
    assert {row.state for row in rows} == {"verified", "changed", "unverified"}
    assert {dose.percent for dose in doses} >= {Decimal(80), Decimal(100)}
    assert any(dose.modification and dose.modification.drug_id is None for dose in doses)
    assert any(dose.modification and dose.modification.drug_id for dose in doses)
    assert any(dose.banded and dose.verified for dose in doses)
    assert any(dose.administration is not None for dose in doses)
    assert any(dose.calculation and dose.calculation.capped for dose in doses)
    assert any(dose.blocked for dose in doses)
    assert len({plan.cycle.course.regimen_id for plan in alone.values()}) == 4

    def used(course: Course) -> list[tuple[str, int, str | None, str | None]]:
        """(drug, day, weight on its date, height on its date) of each dose to give."""
        plan = alone[course.cycles.get(number=1).pk]
        return [
            (
                str(dose.regimen_drug.drug).lower(),
                dose.day,
                *(
                    f"{dose.calculation.inputs[value]} ({dose.calculation.inputs[on]})"
                    if dose.calculation and value in dose.calculation.inputs
                    else None
                    for value, on in [
                        ("weight_kg", "weight_measured_on"),
                        ("height_cm", "height_measured_on"),
                    ]
                ),
            )
            for dose in plan.to_give
        ]

    yesterday = ("75.0 (2026-03-01)", "172.0 (2026-02-10)")
    assert used(history) == [
        ("oxaliplatin", 1, *yesterday),
        ("leucovorin", 1, *yesterday),
        ("fluorouracil", 1, *yesterday),
        ("fluorouracil", 1, *yesterday),
    ]
    tomorrow = "74.0 (2026-03-02)"
    assert used(second) == [
        ("gemcitabine", 1, tomorrow, "171.0 (2026-03-02)"),
        ("gemcitabine", 8, tomorrow, "171.0 (2026-03-02)"),  # 10 March: still the newest
        ("trastuzumab", 1, tomorrow, None),
    ]
    stale_plan = alone[stale.cycles.get(number=1).pk]
    assert all("days before" in " ".join(d.errors["weight_kg"]) for d in stale_plan.to_give)
    no_height_plan = alone[no_height.cycles.get(number=1).pk]
    assert {tuple(d.errors) for d in no_height_plan.to_give if d.errors} == {("height_cm",)}
    assert any(d.calculation for d in no_height_plan.to_give)  # prednisone: a flat dose
