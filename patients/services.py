"""Writes to patient records and care teams: the one write path (STYLE.md).

Every function validates with full_clean() and saves in one transaction; post_save reaches the
access log in that same transaction.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from oncoplanner.accounts.models import User
from oncoplanner.signals import access_changed
from patients.models import BodyMeasurement, CareTeam, Patient

PATIENT_OBJECT_PERMS = ("patients.view_patient", "patients.change_patient")


@transaction.atomic
def care_team_create(
    *, name: str, description: str = "", created_by: User | None = None
) -> CareTeam:
    group = Group.objects.create(name=f"care-team:{name}")
    team = CareTeam(name=name, description=description, group=group)
    team.full_clean()
    team.save()
    return team


@transaction.atomic
def care_team_add_member(*, team: CareTeam, clinician: User, granted_by: User | None) -> None:
    """Give `clinician` access to every patient of `team` (through the team's group).

    Precondition: `granted_by` may manage the team (checked by the caller). Sends
    access_changed so that the access log records the grant in this transaction.
    """
    if not clinician.is_clinician:
        raise ValueError("Only clinicians can join a care team.")
    clinician.groups.add(team.group)
    access_changed.send(
        sender=CareTeam,
        patient=None,
        actor=granted_by,
        granted=True,
        detail={"care_team_id": team.pk, "clinician_id": clinician.pk},
    )


@transaction.atomic
def care_team_remove_member(*, team: CareTeam, clinician: User, revoked_by: User | None) -> None:
    clinician.groups.remove(team.group)
    access_changed.send(
        sender=CareTeam,
        patient=None,
        actor=revoked_by,
        granted=False,
        detail={"care_team_id": team.pk, "clinician_id": clinician.pk},
    )


def _grant_team(patient: Patient, team: CareTeam) -> None:
    for perm in PATIENT_OBJECT_PERMS:
        assign_perm(perm, team.group, patient)


def _revoke_team(patient: Patient, team: CareTeam) -> None:
    for perm in PATIENT_OBJECT_PERMS:
        remove_perm(perm, team.group, patient)


@transaction.atomic
def patient_create(
    *, created_by: User | None, care_team: CareTeam | None = None, **fields: Any
) -> Patient:
    """Create a patient record and give its care team access to it."""
    patient = Patient(care_team=care_team, **fields)
    patient.full_clean()
    patient.save()
    if care_team is not None:
        _grant_team(patient, care_team)
    return patient


@transaction.atomic
def patient_update(*, patient: Patient, updated_by: User | None, **fields: Any) -> Patient:
    """Update demographic or clinical fields; moving the patient to another team moves access."""
    old_team = patient.care_team
    for name, value in fields.items():
        setattr(patient, name, value)
    patient.full_clean()
    patient.save()
    if patient.care_team != old_team:
        if old_team is not None:
            _revoke_team(patient, old_team)
        if patient.care_team is not None:
            _grant_team(patient, patient.care_team)
        access_changed.send(
            sender=Patient,
            patient=patient,
            actor=updated_by,
            granted=patient.care_team is not None,
            detail={
                "from_team": getattr(old_team, "pk", None),
                "to_team": getattr(patient.care_team, "pk", None),
            },
        )
    return patient


@transaction.atomic
def measurement_record(
    *,
    patient: Patient,
    measured_on: date,
    height_cm: Decimal | None,
    weight_kg: Decimal | None,
    recorded_by: User | None,
) -> BodyMeasurement:
    measurement = BodyMeasurement(
        patient=patient,
        measured_on=measured_on,
        height_cm=height_cm,
        weight_kg=weight_kg,
        recorded_by=recorded_by,
    )
    measurement.full_clean()
    measurement.save()
    return measurement
