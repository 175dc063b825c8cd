"""SECURITY.md figure 7: schemathesis against /api/v1/openapi.json, in-process (WSGI), as a
clinician and as a patient (personal API tokens).

Checks: not_a_server_error, response_schema_conformance, ignored_auth. The normal suite runs
about 200 cases; `make api-fuzz` (scripts/api-fuzz.sh) sets API_FUZZ_EXAMPLES for >= 2,000 and
prints `FIGURE 7 api-fuzz: cases=N server_errors=0 ...`.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import ignored_auth, response_schema_conformance

from oncoplanner.accounts.api_tokens import api_token_create
from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import UserFactory
from patients.models import Patient

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "3"))
# The full run adds schemathesis' coverage phase (every boundary and negative case the schema
# defines, a few thousand); the suite's quick run keeps to the examples and fuzzing phases.
FULL = os.environ.get("API_FUZZ_FULL") == "1"
CHECKS = [not_a_server_error, response_schema_conformance, ignored_auth]
TALLY: Counter[str] = Counter()

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
if not FULL:
    schema.config.phases.update(phases=["examples", "fuzzing"])


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    """Schemathesis calls the WSGI app directly, so Django's request_finished handler runs
    close_old_connections, which closes a PostgreSQL connection that sits inside the test's
    transaction (the test client avoids this the same way: by disconnecting the handler)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(scope="module", autouse=True)
def _figure() -> Iterator[None]:
    yield
    statuses = " ".join(f"{k}={v}" for k, v in sorted(TALLY.items()) if k.startswith("status_"))
    print(
        f"\nFIGURE 7 api-fuzz: cases={TALLY['cases']} server_errors={TALLY['server_errors']} "
        f"check_failures={TALLY['failures']} clinician={TALLY['clinician']} "
        f"patient={TALLY['patient']} {statuses}"
    )


def _token(user: User) -> str:
    _, raw = api_token_create(
        user=user, name="fuzz", expires_at=timezone.now() + dt.timedelta(days=1), created_by=user
    )
    return raw


def _run(case: Any, *, token: str, persona: str, patient: Patient) -> None:
    params = case.path_parameters or {}
    # Half the cases aim at the persona's real patient so they reach validation and the
    # services; the rest probe other ids (which must be 404, never a 500).
    if (
        "patient_id" in params
        and isinstance(params["patient_id"], int)
        and params["patient_id"] % 2
    ):
        params["patient_id"] = patient.pk
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    TALLY["cases"] += 1
    TALLY[persona] += 1
    TALLY[f"status_{response.status_code}"] += 1
    if response.status_code >= 500:
        TALLY["server_errors"] += 1
    try:
        case.validate_response(
            response, checks=CHECKS, headers={"Authorization": f"Bearer {token}"}
        )
    except Exception:
        TALLY["failures"] += 1
        raise


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_fuzz_as_clinician(case: Any, treating_clinician: User, patient: Patient) -> None:
    _run(case, token=_token(treating_clinician), persona="clinician", patient=patient)


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_fuzz_as_patient(case: Any, patient: Patient) -> None:
    user = User.objects.filter(patient_record=patient).first()
    if user is None:
        user = UserFactory.create(role=User.Role.PATIENT)
        patient.portal_user = user
        patient.save(update_fields=["portal_user"])
    _run(case, token=_token(user), persona="patient", patient=patient)
