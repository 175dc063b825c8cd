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
from treatments.models import Course, Drug, Regimen, RegimenDrug
from treatments.selectors import pharmacy_worklist
from treatments.services import course_start, cycle_doses_verify, dose_modification_record
from treatments.tests.factories import AdministrationFactory, allergy_status_taken, on_the_team

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
):
    """An mFOLFOX6 course of a new patient on `care_team` (170 cm, 72 kg), cycle 1 on `start`;
    with an 80% level from cycle 1 (of every drug, or of `level_drug`) set by `level_by`."""
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
    BodyMeasurementFactory.create(
        patient=patient,
        measured_on=dt.date(2026, 2, 27),
        height_cm=Decimal("170"),
        weight_kg=Decimal("72"),
    )
    allergy_status_taken(patient)
    course = course_start(
        patient=patient,
        regimen=Regimen.objects.get(name="mFOLFOX6", version=1),
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
    # Pinned for three rows, one of them marked for the prescriber: one query reads the dose
    # levels of every course shown, for any pharmacist (none for an oncologist, who verifies
    # nothing); the marker and its reason cost nothing more. Each row costs its doses.
    # (The list's access-log row indexes the patients it showed: one insert for them all.)
    assert counts == {"another pharmacist": 49, "prescriber": 49, "oncologist": 48}
    # One more row marked (at an oxaliplatin level: the message names the drug), one more at
    # the oncologist's level: each costs the same as the other.
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
    assert one_more - counts["prescriber"] == two_more - one_more
    rows = _rows(client)
    assert MARKER in rows["MRN-OWN-2"]
    assert "80% oxaliplatin from cycle 1" in rows["MRN-OWN-2"]
    assert sum(MARKER in row for row in rows.values()) == 2
