"""Typed factories for the treatments models (cookiecutter-style; use `.create()`).

Doses and dates are explicit where a test reads them; `regimen_create` builds a regimen with
its phases and drugs in one call, e.g. AC->T as two phases.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from oncoplanner.accounts.tests.factories import ClinicianFactory
from patients.models import Patient
from patients.tests.factories import PatientFactory
from treatments.models import (
    Administration,
    ChemoCycle,
    Course,
    CtcaeTerm,
    DoseBasis,
    DoseModification,
    Drug,
    Intent,
    Regimen,
    RegimenDrug,
    RegimenPhase,
    Route,
    SideEffect,
)

if TYPE_CHECKING:
    from oncoplanner.accounts.models import User
    from patients.models import CareTeam


class DrugFactory(DjangoModelFactory[Drug]):
    class Meta:
        model = Drug
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Drug {n}")


class RegimenFactory(DjangoModelFactory[Regimen]):
    class Meta:
        model = Regimen

    name = factory.Sequence(lambda n: f"Regimen {n}")
    version = 1
    intent = Intent.CURATIVE
    # Offered, but not approved: approve it once its phases are built (regimen_approved).
    is_active = True


class RegimenPhaseFactory(DjangoModelFactory[RegimenPhase]):
    class Meta:
        model = RegimenPhase

    regimen = factory.SubFactory(RegimenFactory)
    order = factory.Sequence(lambda n: n + 1)
    name = factory.LazyAttribute(lambda p: f"Phase {p.order}")
    cycle_length_days = 14
    planned_cycles = 4


class RegimenDrugFactory(DjangoModelFactory[RegimenDrug]):
    class Meta:
        model = RegimenDrug

    phase = factory.SubFactory(RegimenPhaseFactory)
    drug = factory.SubFactory(DrugFactory)
    dose = Decimal("85")
    dose_basis = DoseBasis.MG_M2
    route = Route.IV
    days = "1"


DrugSpec = tuple[str, str, str]  # (drug name, dose, dose basis)


def regimen_create(
    *,
    name: str | None = None,
    phases: Sequence[tuple[int, int, Sequence[DrugSpec]]] = (
        (14, 12, (("Oxaliplatin", "85", DoseBasis.MG_M2),)),
    ),
    version: int = 1,
    is_active: bool = True,
    approved: bool = True,
) -> Regimen:
    """A regimen with phases [(cycle length days, planned cycles, [(drug, dose, basis)…])…],
    approved for prescribing unless `approved` is False (then add to it, and approve it with
    regimen_approved)."""
    # Reference data (labs/migrations) already ships mFOLFOX6, AC-T and CHOP v1: give test
    # regimens their own names so they never collide with it.
    fields = {"version": version, "is_active": is_active} | ({"name": name} if name else {})
    regimen = RegimenFactory.create(**fields)
    for order, (length, cycles, drugs) in enumerate(phases, start=1):
        phase = RegimenPhaseFactory.create(
            regimen=regimen,
            order=order,
            name=f"Phase {order}",
            cycle_length_days=length,
            planned_cycles=cycles,
        )
        for position, (drug_name, dose, basis) in enumerate(drugs, start=1):
            RegimenDrugFactory.create(
                phase=phase,
                drug=DrugFactory.create(name=drug_name),
                dose=Decimal(dose),
                dose_basis=basis,
                order=position,
            )
    return regimen_approved(regimen) if approved else regimen


def regimen_approved(regimen: Regimen) -> Regimen:
    """`regimen`, approved for prescribing as an oncologist and a pharmacist would have (the
    approval itself is tested in test_regimen_approval)."""
    Regimen.objects.filter(pk=regimen.pk).update(approved_at=timezone.now())
    regimen.refresh_from_db()
    return regimen


class CourseFactory(DjangoModelFactory[Course]):
    """A bare course row: no cycles (use services.course_start to schedule them)."""

    class Meta:
        model = Course

    patient = factory.SubFactory(PatientFactory)
    regimen = factory.LazyFunction(regimen_create)
    start_date = dt.date(2026, 1, 5)
    intent = Intent.CURATIVE
    status = Course.Status.ACTIVE
    created_by = factory.SubFactory(ClinicianFactory)


class ChemoCycleFactory(DjangoModelFactory[ChemoCycle]):
    class Meta:
        model = ChemoCycle

    course = factory.SubFactory(CourseFactory)
    phase = factory.LazyAttribute(lambda c: c.course.regimen.phases.order_by("order").first())
    number = 1
    planned_start = factory.LazyAttribute(
        lambda c: c.course.start_date + dt.timedelta(days=14 * (c.number - 1))
    )


class DoseModificationFactory(DjangoModelFactory[DoseModification]):
    class Meta:
        model = DoseModification

    course = factory.SubFactory(CourseFactory)
    from_cycle_number = 1
    percent = Decimal("80")
    reason = "Grade 3 neutropenia"
    created_by = factory.SubFactory(ClinicianFactory)


class CtcaeTermFactory(DjangoModelFactory[CtcaeTerm]):
    """Terms are reference data (labs/migrations ships the common v5.0 ones): get or create."""

    class Meta:
        model = CtcaeTerm
        django_get_or_create = ("term", "version")

    term = factory.Sequence(lambda n: f"Adverse event {n}")
    version = "5.0"
    max_grade = 5


class SideEffectFactory(DjangoModelFactory[SideEffect]):
    class Meta:
        model = SideEffect

    patient = factory.SubFactory(PatientFactory)
    term = factory.SubFactory(CtcaeTermFactory)
    grade = 2
    ctcae_version = factory.LazyAttribute(lambda s: s.term.version)
    onset = dt.date(2026, 1, 12)
    reported_by = factory.SubFactory(ClinicianFactory)


class AdministrationFactory(DjangoModelFactory[Administration]):
    """A stored administration with the dose given directly (no calculation): for reads."""

    class Meta:
        model = Administration

    cycle = factory.SubFactory(ChemoCycleFactory, status=ChemoCycle.Status.GIVEN)
    regimen_drug = factory.LazyAttribute(lambda a: a.cycle.phase.drugs.first())
    drug = factory.LazyAttribute(lambda a: a.regimen_drug.drug)
    day_of_cycle = 1
    given_at = factory.LazyAttribute(
        lambda a: timezone.make_aware(dt.datetime.combine(a.cycle.start, dt.time(10, 0)))
    )
    route = factory.LazyAttribute(lambda a: a.regimen_drug.route)
    standard_dose_mg = Decimal("154.7")
    dose_percent = Decimal("100")
    dose_mg = Decimal("154.7")
    formula = Administration.Formula.MOSTELLER
    inputs = factory.LazyFunction(lambda: {"bsa_m2": "1.82"})
    administered_by = factory.SubFactory(ClinicianFactory)


def pharmacy_verified(cycle: ChemoCycle) -> ChemoCycle:
    """`cycle` with its doses verified by a pharmacist (needed before drugs are recorded)."""
    from oncoplanner.accounts.models import User
    from treatments.services import cycle_doses_verify

    pharmacist = ClinicianFactory.create(discipline=User.Discipline.PHARMACIST)
    allergy_status_taken(cycle.course.patient)
    cycle_doses_verify(cycle=cycle, by=pharmacist)
    return cycle


def allergy_status_taken(patient: Patient) -> Patient:
    """`patient` with an allergy status on the chart (verification needs one): "no known
    allergies" unless an allergy is recorded already."""
    from patients.selectors import allergy_status_recorded
    from patients.services import patient_no_known_allergies_record

    patient.refresh_from_db()
    if not allergy_status_recorded(patient=patient):
        patient_no_known_allergies_record(patient=patient, recorded_by=ClinicianFactory.create())
    return patient


def on_the_team(care_team: CareTeam, admin_user: User, **fields: object) -> User:
    """A clinician (ClinicianFactory `fields`) added to `care_team` by `admin_user`."""
    from patients.services import care_team_add_member

    clinician = ClinicianFactory.create(**fields)
    care_team_add_member(team=care_team, clinician=clinician, granted_by=admin_user)
    return clinician
