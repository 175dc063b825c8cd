"""The world the permission matrix and IDOR probes are played in (see oncoplanner/policy.py).

Built once per test module through the real services (care teams, patients, break-glass,
invitations) inside an outer transaction that is rolled back at the end of the module; each
test then runs in its own savepoint (pytest-django's `db`), like Django's setUpTestData.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oncoplanner import policy
from oncoplanner.access_context import acting_as
from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import (
    AdministratorFactory,
    ClinicianFactory,
    UserFactory,
)
from patients.models import Allergy, BodyMeasurement, Patient, SymptomReport
from patients.services import (
    care_team_add_member,
    care_team_create,
    emergency_access_open,
    invitation_create,
    patient_create,
)

# Written into the records of P (and P_uninvited), which the IDOR probers may not see: it must
# never come back to them. Q's records carry another marker (the outsider clinician sees Q).
MARKER = "ZQXMARKER7731"
Q_MARKER = "QVISIBLE5520"
MFA_ENROLLED_KEY = "_op_mfa_enrolled"


def _patient(*, mrn: str, given: str, family: str, team: Any, marker: str = MARKER) -> Patient:
    return patient_create(
        created_by=None,
        care_team=team,
        mrn=mrn,
        given_name=given,
        family_name=family,
        date_of_birth=dt.date(1958, 4, 11),
        sex=Patient.Sex.FEMALE,
        primary_diagnosis="Adenocarcinoma of sigmoid colon",
        icd10_code="C18.7",
        stage="IIIB",
        ecog=1,
        medical_history=f"History {marker} of hypertension",
    )


def _children(
    world: dict[str, Any], prefix: str, patient: Patient, actor: User, marker: str
) -> None:
    from labs.models import Flag, LabResult, LabTest
    from treatments.models import (
        ChemoCycle,
        Course,
        CtcaeTerm,
        Intent,
        Regimen,
        RegimenPhase,
        SideEffect,
    )
    from treatments.tests.factories import AdministrationFactory, RegimenDrugFactory

    regimen, _ = Regimen.objects.get_or_create(
        name="mFOLFOX6", version=1, defaults={"intent": Intent.CURATIVE}
    )
    phase, _ = RegimenPhase.objects.get_or_create(
        regimen=regimen,
        order=1,
        defaults={"name": "FOLFOX", "cycle_length_days": 14, "planned_cycles": 12},
    )
    course = Course.objects.create(
        patient=patient,
        regimen=regimen,
        start_date=dt.date(2026, 3, 2),
        intent=Intent.ADJUVANT,
        created_by=actor,
    )
    cycle = ChemoCycle.objects.create(
        course=course, phase=phase, number=1, planned_start=dt.date(2026, 3, 2)
    )
    # Cycle 1 is not the course's last: cancelling the last cycle left is refused (stop the
    # course instead), and the doors are probed with a cycle any oncologist may cancel.
    ChemoCycle.objects.create(
        course=course, phase=phase, number=2, planned_start=dt.date(2026, 3, 16)
    )
    test, _ = LabTest.objects.get_or_create(
        loinc="751-8",
        defaults={
            "name": "Neutrophils [#/volume] in Blood",
            "short_name": "ANC",
            "unit": "10*3/uL",
        },
    )
    term, _ = CtcaeTerm.objects.get_or_create(
        term="Nausea", version="5.0", defaults={"category": "Gastrointestinal disorders"}
    )
    # A second regimen to start a course on (a second open course of the same one is refused).
    capox, _ = Regimen.objects.get_or_create(
        name="CAPOX", version=1, defaults={"intent": Intent.CURATIVE}
    )
    RegimenPhase.objects.get_or_create(
        regimen=capox,
        order=1,
        defaults={"name": "CAPOX", "cycle_length_days": 21, "planned_cycles": 8},
    )
    # Approved for prescribing (as an oncologist and a pharmacist would) and offered.
    Regimen.objects.filter(pk=capox.pk).update(is_active=True, approved_at=dt.datetime.now(dt.UTC))
    # A version still being approved: the approval doors are probed on it.
    draft, _ = Regimen.objects.get_or_create(
        name="Draft regimen", version=1, defaults={"intent": Intent.CURATIVE}
    )
    draft_phase, _ = RegimenPhase.objects.get_or_create(
        regimen=draft,
        order=1,
        defaults={"name": "Draft", "cycle_length_days": 21, "planned_cycles": 4},
    )
    if not draft_phase.drugs.exists():
        RegimenDrugFactory.create(phase=draft_phase, days="1")
    world.update(
        regimen=regimen, regimen_second=capox, regimen_draft=draft, lab_test=test, term=term
    )
    world[f"{prefix}_course"] = course
    world[f"{prefix}_cycle"] = cycle
    # Cycle 1 has a drug recorded, so dose modifications are probed from cycle 2 (a level cannot
    # reach back into a cycle with drugs given).
    regimen_drug = phase.drugs.first() or RegimenDrugFactory.create(phase=phase, days="1")
    world[f"{prefix}_administration"] = AdministrationFactory.create(
        cycle=cycle, regimen_drug=regimen_drug, administered_by=actor
    )
    world[f"{prefix}_lab_result"] = LabResult.objects.create(
        patient=patient,
        test=test,
        value=Decimal("1.2"),
        unit=test.unit,
        collected_at=timezone.now() - dt.timedelta(hours=2),
        is_released=True,
    )
    world[f"{prefix}_side_effect"] = SideEffect.objects.create(
        patient=patient,
        cycle=cycle,
        term=term,
        grade=2,
        ctcae_version="5.0",
        onset=dt.date(2026, 3, 5),
        description=f"Nausea {marker} day 3",
        reported_by=actor,
    )
    world[f"{prefix}_measurement"] = BodyMeasurement.objects.create(
        patient=patient,
        measured_on=dt.date(2026, 3, 1),
        height_cm=Decimal("168.0"),
        weight_kg=Decimal("64.5"),
    )
    world[f"{prefix}_symptom_report"] = SymptomReport.objects.create(
        patient=patient,
        symptom=f"Tingling {marker}",
        severity=SymptomReport.Severity.MILD,
        reported_by=actor,
    )
    world[f"{prefix}_allergy"] = Allergy.objects.create(
        patient=patient,
        substance=f"Paclitaxel {marker}",
        category=Allergy.Category.MEDICATION,
        reaction="Anaphylaxis",
        severity=Allergy.Severity.SEVERE,
        recorded_by=actor,
    )
    # What the critical-result inbox asks a clinician to acknowledge or review.
    world[f"{prefix}_critical_lab_result"] = LabResult.objects.create(
        patient=patient,
        test=test,
        value=Decimal("0.3"),
        unit=test.unit,
        flag=Flag.CRITICAL_LOW,
        collected_at=timezone.now() - dt.timedelta(hours=1),
        is_released=False,
    )
    world[f"{prefix}_unreleased_lab_result"] = LabResult.objects.create(
        patient=patient,
        test=test,
        value=Decimal("2.4"),
        unit=test.unit,
        collected_at=timezone.now() - dt.timedelta(hours=3),
        is_released=False,
    )
    world[f"{prefix}_severe_side_effect"] = SideEffect.objects.create(
        patient=patient,
        cycle=cycle,
        term=term,
        grade=3,
        ctcae_version="5.0",
        onset=dt.date(2026, 3, 6),
        description=f"Vomiting {marker} despite antiemetics",
        reported_by=actor,
    )
    world[f"{prefix}_severe_symptom_report"] = SymptomReport.objects.create(
        patient=patient,
        symptom=f"Fever and shivering {marker}",
        severity=SymptomReport.Severity.SEVERE,
        reported_by=actor,
    )


def build_world() -> dict[str, Any]:
    world: dict[str, Any] = {}
    superuser = AdministratorFactory.create(is_superuser=True)
    administrator = AdministratorFactory.create()
    # Model-wide view permission on every model, PHI included: the admin needs it to open a
    # page at all, and the gate must not let it open any chart (accept_global_perms=False).
    administrator.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    team = care_team_create(name="GI oncology (matrix)")
    other_team = care_team_create(name="Breast oncology (matrix)")
    clinician_team = ClinicianFactory.create()
    clinician_outside = ClinicianFactory.create()
    clinician_break_glass = ClinicianFactory.create()
    care_team_add_member(team=team, clinician=clinician_team, granted_by=superuser)
    care_team_add_member(team=other_team, clinician=clinician_outside, granted_by=superuser)

    # The target record carries the marker too: only the personas allowed to see it may.
    target = _patient(mrn="MTX0000001", given="Ada", family=f"Target{MARKER}", team=team)
    uninvited = _patient(mrn="MTX0000002", given="Ines", family=f"Uninvited{MARKER}", team=team)
    other = _patient(
        mrn="MTX0000003", given="Olga", family=f"Other{Q_MARKER}", team=other_team, marker=Q_MARKER
    )
    patient_own = UserFactory.create()
    patient_other = UserFactory.create()
    Patient.objects.filter(pk=target.pk).update(portal_user=patient_own)
    Patient.objects.filter(pk=other.pk).update(portal_user=patient_other)
    target.refresh_from_db()
    other.refresh_from_db()

    reason = "Septic shock, on-call oncologist unreachable"
    grant = emergency_access_open(user=clinician_break_glass, patient_id=target.pk, reason=reason)
    emergency_access_open(user=clinician_break_glass, patient_id=uninvited.pk, reason=reason)
    invitation, token = invitation_create(
        patient=uninvited, email="ines@example.org", created_by=clinician_team
    )
    world.update(
        P=target,
        P_uninvited=uninvited,
        Q=other,
        T=team,
        T2=other_team,
        P_emergency_access=grant,
        P_invitation=invitation,
        invitation_token=token,
        unknown_token="x" * 43,
        anonymous=None,
        patient_own=patient_own,
        patient_other=patient_other,
        clinician_team=clinician_team,
        clinician_outside=clinician_outside,
        clinician_break_glass=clinician_break_glass,
        administrator=administrator,
        superuser=superuser,
    )
    _children(world, "P", target, clinician_team, MARKER)
    _children(world, "Q", other, clinician_outside, Q_MARKER)
    return world


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            with acting_as(None, surface="system"):
                yield build_world()
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def client_for(world: dict[str, Any], persona: str, **kwargs: Any) -> Client:
    client = Client(**kwargs)
    user = world[persona]
    if user is not None:
        client.force_login(user)
        session = client.session
        # Past the MFA step (its own tests are in oncoplanner.accounts), as after a TOTP login.
        session[MFA_ENROLLED_KEY] = True
        session.save()
    return client


def _arg(world: dict[str, Any], name: str) -> Any:
    if "." in name:  # "P_cycle.number": an attribute rather than the pk
        obj, attr = name.split(".", 1)
        return getattr(world[obj], attr)
    value = world[name]
    return value.pk if hasattr(value, "pk") else value


_PLACEHOLDER = re.compile(r"\{(\w+)\.(\w+)\}")


def fill(world: dict[str, Any], value: str) -> str:
    return _PLACEHOLDER.sub(lambda m: str(getattr(world[m.group(1)], m.group(2))), value)


def fill_json(world: dict[str, Any], value: Any) -> Any:
    """A JSON body with placeholders: "{term.pk}" alone becomes the value itself (an int)."""
    if isinstance(value, dict):
        return {k: fill_json(world, v) for k, v in value.items()}
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            return getattr(world[whole.group(1)], whole.group(2))
        return fill(world, value)
    return value


def resource_url(world: dict[str, Any], resource: dict[str, Any]) -> str:
    url = reverse(resource["url"], args=[_arg(world, a) for a in resource.get("args", ())])
    return f"{url}?{fill(world, resource['query'])}" if resource.get("query") else url


def request(client: Client, world: dict[str, Any], resource: dict[str, Any]) -> HttpResponse:
    url = resource_url(world, resource)
    if "json" in resource:
        body = json.dumps(fill_json(world, resource["json"]))
        return client.generic(resource["method"], url, body, content_type="application/json")
    if resource["method"] == "POST":
        data = {k: fill(world, v) for k, v in resource.get("data", {}).items()}
        return client.post(url, data)
    return client.get(url)


def login_paths() -> frozenset[str]:
    return frozenset({reverse("account_login"), reverse("admin:login")})


def outcome_of(response: HttpResponse) -> str:
    if response.status_code == 302:
        path = urlsplit(response["Location"]).path
        return policy.LOGIN if path in login_paths() else policy.DONE
    return {
        200: policy.OK,
        201: policy.CREATED,
        400: policy.BAD_REQUEST,
        401: policy.UNAUTHORIZED,
        404: policy.NOT_FOUND,
        405: policy.NOT_ALLOWED,
    }.get(response.status_code, str(response.status_code))


def body_of(response: HttpResponse) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", "replace")  # type: ignore[attr-defined]
    return response.content.decode("utf-8", "replace")
