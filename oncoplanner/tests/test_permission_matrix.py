"""SECURITY.md figure 1: the permission matrix, one test per cell of oncoplanner/policy.py.

Every persona x resource cell is requested against a world built with the real services and
compared with the policy. A cell that hands over a resource the policy denies is an unexpected
allow; the reverse is an unexpected deny; any other difference (say, 404 where the policy says
login) fails the cell too. The last test prints the figure line read by `make security-report`.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings

from oncoplanner import policy
from oncoplanner.tests import security_world
from oncoplanner.tests.security_world import (
    MARKER,
    body_of,
    client_for,
    outcome_of,
    request,
    resource_url,
)
from patients.services import care_team_remove_member

world = security_world.world  # the module-scoped fixture

pytestmark = pytest.mark.django_db


def _cell_param(name: str, persona: str) -> Any:
    """A cell; one the policy lists in the resource's `xfail` is a strict xfail (reported)."""
    reason = policy.RESOURCES[name].get("xfail", {}).get(persona)  # type: ignore[attr-defined]
    if reason is None:
        return pytest.param(name, persona)
    return pytest.param(name, persona, marks=pytest.mark.xfail(strict=True, reason=reason))


CELLS = [
    (name, persona) for name, resource in policy.RESOURCES.items() for persona in resource["expect"]
]
XFAIL_CELLS = sorted(
    (name, persona)
    for name, resource in policy.RESOURCES.items()
    for persona in resource.get("xfail", {})  # type: ignore[attr-defined]
)
# A 400 is an answer to someone who passed the gate (it may show their own form back).
_DENIALS = frozenset({policy.NOT_FOUND, policy.LOGIN, policy.UNAUTHORIZED, policy.NOT_ALLOWED})
_TALLY: dict[str, Any] = {"cells": set(), "unexpected_allow": set(), "unexpected_deny": set()}


@pytest.mark.parametrize(("resource_name", "persona"), [_cell_param(*cell) for cell in CELLS])
def test_permission_matrix_cell_matches_policy(
    world: dict[str, Any], resource_name: str, persona: str
) -> None:
    resource: dict[str, Any] = policy.RESOURCES[resource_name]  # type: ignore[assignment]
    expected = resource["expect"][persona]
    with override_settings(**resource.get("settings", {})):
        response = request(client_for(world, persona), world, resource)
    actual = outcome_of(response)
    if resource.get("stream") and actual == policy.OK:
        # Only the status and headers: the body is an open stream (never read here).
        assert response["Content-Type"].startswith("text/event-stream")
        assert response["Cache-Control"] == "no-store"
        # Not response.close(): that sends request_finished, whose close_old_connections would
        # close the PostgreSQL connection holding this test's transaction.
    elif expected in _DENIALS and not getattr(response, "streaming", False):
        # A deny (or a cell the policy denies that the app answers) never carries P's data.
        assert MARKER not in body_of(response), f"{resource_name} as {persona}: P's data"
    cell = (resource_name, persona)
    _TALLY["cells"].add(cell)
    if actual in policy.ALLOWING and expected not in policy.ALLOWING:
        _TALLY["unexpected_allow"].add(cell)
    if expected in policy.ALLOWING and actual not in policy.ALLOWING:
        _TALLY["unexpected_deny"].add(cell)
    assert actual == expected, f"{resource_name} as {persona}: got {actual}, policy {expected}"


def test_permission_matrix_every_persona_has_a_cell_for_every_resource() -> None:
    for name, resource in policy.RESOURCES.items():
        assert set(resource["expect"]) == set(policy.PERSONAS), name  # type: ignore[arg-type]
        assert set(resource["expect"].values()) <= set(policy.OUTCOMES), name  # type: ignore[attr-defined]


POST_RESOURCES = [
    name for name, r in policy.RESOURCES.items() if r["method"] in {"POST", "PUT", "PATCH"}
]


@pytest.mark.parametrize("resource_name", POST_RESOURCES)
@pytest.mark.parametrize("persona", ["clinician_team", "administrator"])
def test_permission_matrix_post_without_csrf_token_is_refused(
    world: dict[str, Any], resource_name: str, persona: str
) -> None:
    resource: dict[str, Any] = policy.RESOURCES[resource_name]  # type: ignore[assignment]
    client = client_for(world, persona, enforce_csrf_checks=True)
    response = request(client, world, resource)
    # 403 from the CSRF check; a 405 view refuses before any state change as well.
    assert response.status_code in {403, 405}, response.status_code
    if resource["expect"][persona] != policy.NOT_ALLOWED:
        assert response.status_code == 403


def test_permission_matrix_revoked_membership_takes_effect_on_next_request(
    world: dict[str, Any],
) -> None:
    resource: dict[str, Any] = policy.RESOURCES["patient_detail GET"]  # type: ignore[assignment]
    client: Client = client_for(world, "clinician_team")
    assert outcome_of(client.get(resource_url(world, resource))) == policy.OK
    care_team_remove_member(
        team=world["T"], clinician=world["clinician_team"], revoked_by=world["superuser"]
    )
    # Same session, no new login: the very next request is refused.
    assert outcome_of(client.get(resource_url(world, resource))) == policy.NOT_FOUND


def test_permission_matrix_zz_figure() -> None:
    cells = len(_TALLY["cells"])
    # Cells marked xfail in the policy are real differences between app and policy, counted
    # and shown; strict, so the day the app is fixed they fail until the mark is removed.
    known = set(XFAIL_CELLS)
    allow, deny = _TALLY["unexpected_allow"], _TALLY["unexpected_deny"]
    print(
        f"\nFIGURE 1 permission matrix: cells={cells} of {len(CELLS)}"
        f" unexpected_allow={len(allow)} unexpected_deny={len(deny)}"
        f" known_xfail={len(known)} (allow {len(allow & known)}, deny {len(deny & known)})"
    )
    for name, persona in sorted(known):
        reason = policy.RESOURCES[name]["xfail"][persona]  # type: ignore[index]
        print(f"FIGURE 1 known xfail: {name} as {persona}: {reason}")
    assert not allow - known, sorted(allow - known)
    assert not deny - known, sorted(deny - known)
