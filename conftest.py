"""Shared fixtures: healthchecks' personas (a treating clinician, an outsider, an administrator)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import time_machine
from django.db import connection
from django.test import Client

from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import AdministratorFactory, ClinicianFactory, sign_in
from patients.models import CareTeam, Patient
from patients.services import care_team_add_member, care_team_create
from patients.tests.factories import patient_through_service


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clock",
        metavar="ISO",
        help="run the suite as if started at this time, UTC unless an offset is given (e.g. "
        "2026-11-28T12:00, or 2026-07-15T00:20+01:00 for 00:20 BST), the "
        "clock running on from there: a test that passes on a Wednesday afternoon can fail on "
        "a Saturday (a weekend badge), on Christmas Day or after midnight. Tests that fix "
        "their own time still do.",
    )


def pytest_configure(config: pytest.Config) -> None:
    clock = config.getoption("--clock")
    if clock:
        start = dt.datetime.fromisoformat(clock)
        if start.tzinfo is None:  # UTC unless an offset is given (00:30+01:00 is 23:30 UTC)
            start = start.replace(tzinfo=dt.UTC)
        traveller = time_machine.travel(start, tick=True)
        traveller.start()
        config.add_cleanup(traveller.stop)


@pytest.fixture(autouse=True)
def _skip_postgres_only_elsewhere(request: pytest.FixtureRequest) -> None:
    # Skip only when not on PostgreSQL: CI runs the suite on PostgreSQL too (DATABASE_URL).
    if request.node.get_closest_marker("postgres_only") and connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


@pytest.fixture(autouse=True)
def _no_charts_kept_from_another_test() -> None:
    # Rendered charts are keyed by database tokens that a test's rollback can bring back (a
    # patient with no token at all in two tests, at the same frozen minute): start empty.
    from django.core.cache import caches

    caches["charts"].clear()


@pytest.fixture(autouse=True)
def _unit_closures_read_afresh() -> None:
    # treatments.schedule holds the unit's closures until its request ends; a streamed response
    # a test never reads never ends its request, and a rollback sends no signal: each test
    # starts outside any request, reading the closures it made.
    from treatments.schedule import _request_ended

    _request_ended()


@pytest.fixture(autouse=True)
def _patient_permission_ids_read_afresh(request: pytest.FixtureRequest) -> None:
    # The gate keeps the Patient permissions' ids per process (patients.selectors). Each test
    # reads them afresh before it starts, as a running server has them: a test's query count
    # is the steady state, whichever test ran first in the process.
    from patients.selectors import VIEW, _forget_permission_ids, _patient_permission_id

    _forget_permission_ids()
    if {"db", "transactional_db"} & set(request.fixturenames):
        request.getfixturevalue(
            "transactional_db" if "transactional_db" in request.fixturenames else "db"
        )
        _patient_permission_id(VIEW)


@pytest.fixture
def admin_user(db: None) -> User:
    return AdministratorFactory.create(username="admin", is_superuser=True)


@pytest.fixture
def care_team(db: None) -> CareTeam:
    return care_team_create(name="GI oncology")


@pytest.fixture
def patient(care_team: CareTeam) -> Patient:
    return patient_through_service(care_team)


@pytest.fixture
def treating_clinician(care_team: CareTeam, admin_user: User) -> User:
    clinician = ClinicianFactory.create()
    care_team_add_member(team=care_team, clinician=clinician, granted_by=admin_user)
    return clinician


@pytest.fixture
def other_clinician(db: None) -> User:
    return ClinicianFactory.create()


@pytest.fixture
def login() -> Callable[[Client, User], Client]:
    """Sign a user in on a test client, past the MFA enrolment step (tested in
    oncoplanner.accounts), as after a TOTP login."""

    return sign_in
