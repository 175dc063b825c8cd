"""SECURITY.md figure 1: the permission matrix, one test per cell of oncoplanner/policy.py.

Every persona x resource cell is requested against a world built with the real services and
compared with the policy. A cell that hands over a resource the policy denies is an unexpected
allow; the reverse is an unexpected deny; any other difference (say, 404 where the policy says
login) fails the cell too. The last test prints the figure line read by `make security-report`.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from oncoplanner import policy
from oncoplanner.tests import security_world
from oncoplanner.tests.security_world import client_for, outcome_of, request, resource_url
from patients.services import care_team_remove_member

world = security_world.world  # the module-scoped fixture

pytestmark = pytest.mark.django_db

CELLS = [
    (name, persona) for name, resource in policy.RESOURCES.items() for persona in resource["expect"]
]
_TALLY: dict[str, Any] = {"cells": set(), "unexpected_allow": set(), "unexpected_deny": set()}


@pytest.mark.parametrize(("resource_name", "persona"), CELLS)
def test_permission_matrix_cell_matches_policy(
    world: dict[str, Any], resource_name: str, persona: str
) -> None:
    resource: dict[str, Any] = policy.RESOURCES[resource_name]  # type: ignore[assignment]
    expected = resource["expect"][persona]
    actual = outcome_of(request(client_for(world, persona), world, resource))
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


POST_RESOURCES = [name for name, r in policy.RESOURCES.items() if r["method"] == "POST"]


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
    print(
        f"\nFIGURE 1 permission matrix: cells={cells} of {len(CELLS)}"
        f" unexpected_allow={len(_TALLY['unexpected_allow'])}"
        f" unexpected_deny={len(_TALLY['unexpected_deny'])}"
    )
    assert not _TALLY["unexpected_allow"], sorted(_TALLY["unexpected_allow"])
    assert not _TALLY["unexpected_deny"], sorted(_TALLY["unexpected_deny"])
