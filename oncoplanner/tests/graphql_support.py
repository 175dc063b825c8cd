"""Fixtures and helpers for the GraphQL tests (imported by each test_graphql_* module).

World: patient P on care team T (treating_clinician), patient Q on team T2 (q_clinician),
each with a course of cycles, lab results and a side effect; P has a portal account.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from labs.models import LabResult, LabTest
from labs.tests.factories import LabResultFactory
from oncoplanner.access_context import acting_as
from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import ClinicianFactory, UserFactory
from oncoplanner.accounts.tests.factories import sign_in as login
from patients.models import CareTeam, Patient
from patients.services import care_team_add_member, care_team_create
from patients.tests.factories import patient_through_service
from treatments.models import ChemoCycle, Course, CtcaeTerm, SideEffect
from treatments.services import course_start
from treatments.tests.factories import regimen_create

URL = "/graphql/"
TODAY = dt.date(2026, 3, 2)
ANC_LOINC = "751-8"


@pytest.fixture(autouse=True)
def _access_context() -> Iterator[None]:
    # The gate flags the current context under break-glass; keep it from leaking across tests.
    with acting_as(None, surface="system"):
        yield


def gql(
    client: Client, query: str, variables: dict[str, Any] | None = None, **extra: Any
) -> tuple[int, dict[str, Any]]:
    response = client.post(
        URL,
        data=json.dumps({"query": query, "variables": variables or {}}),
        content_type="application/json",
        **extra,
    )
    try:
        body = response.json()
    except ValueError:
        body = {"raw": response.content.decode()}
    return response.status_code, body


def _patient(team: CareTeam, **fields: Any) -> Patient:
    return patient_through_service(team, **fields)


def anc_test() -> LabTest:
    test, _ = LabTest.objects.get_or_create(
        loinc=ANC_LOINC,
        defaults={
            "name": "Neutrophils [#/volume] in Blood",
            "short_name": "ANC",
            "unit": "10*3/uL",
        },
    )
    return test


def add_results(patient: Patient, count: int, *, released: bool = False) -> list[LabResult]:
    test = anc_test()
    start = timezone.make_aware(dt.datetime(2026, 1, 1, 8, 0))
    return [
        LabResultFactory.create(
            patient=patient,
            test=test,
            unit=test.unit,
            value=Decimal("2.4"),
            collected_at=start + dt.timedelta(hours=i),
            is_released=released,
        )
        for i in range(count)
    ]


@dataclass
class World:
    p: Patient
    q: Patient
    clinician: User
    q_clinician: User
    outsider: User
    portal_p: User
    course_p: Course
    course_q: Course
    cycle_p: ChemoCycle
    cycle_q: ChemoCycle
    result_p: LabResult
    result_q: LabResult
    side_effect_q: SideEffect
    term: CtcaeTerm


@pytest.fixture
def world(db: None, admin_user: User) -> World:
    team = care_team_create(name="GI oncology")
    team2 = care_team_create(name="Breast oncology")
    clinician = ClinicianFactory.create(username="dr_p")
    q_clinician = ClinicianFactory.create(username="dr_q")
    outsider = ClinicianFactory.create(username="dr_none")
    care_team_add_member(team=team, clinician=clinician, granted_by=admin_user)
    care_team_add_member(team=team2, clinician=q_clinician, granted_by=admin_user)
    p = _patient(team, family_name="Pearson")
    q = _patient(team2, family_name="Quinn")
    portal_p = UserFactory.create(username="portal_p")
    p.portal_user = portal_p
    p.save(update_fields=["portal_user"])
    regimen = regimen_create(phases=((14, 3, (("Oxaliplatin", "85", "mg/m2"),)),))
    started = {"start_date": TODAY, "intent": "curative", "confirm_past_start": True}
    course_p = course_start(patient=p, regimen=regimen, created_by=clinician, **started)
    course_q = course_start(patient=q, regimen=regimen, created_by=q_clinician, **started)
    term = CtcaeTerm.objects.create(term="Nausea (test)", version="5.0", max_grade=3)
    side_effect_q = SideEffect.objects.create(
        patient=q,
        term=term,
        grade=3,
        ctcae_version="5.0",
        onset=TODAY,
        reported_by=q_clinician,
    )
    (result_p,) = add_results(p, 1, released=True)
    (result_q,) = add_results(q, 1, released=True)
    return World(
        p=p,
        q=q,
        clinician=clinician,
        q_clinician=q_clinician,
        outsider=outsider,
        portal_p=portal_p,
        course_p=course_p,
        course_q=course_q,
        cycle_p=course_p.cycles.get(number=1),
        cycle_q=course_q.cycles.get(number=1),
        result_p=result_p,
        result_q=result_q,
        side_effect_q=side_effect_q,
        term=term,
    )


@pytest.fixture
def as_user(client: Client) -> Callable[[User], Client]:
    return lambda user: login(client, user)
