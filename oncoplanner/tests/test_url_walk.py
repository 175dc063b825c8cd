"""SECURITY.md figure 1, the walk: every URL pattern and every admin model must be classified in
oncoplanner/policy.py, so a new door cannot ship without a line in the permission matrix."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest
from django.contrib import admin
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from oncoplanner import policy


def _urlconf_with_every_conditional_route() -> ModuleType:
    """A fresh copy of the root URLconf with every setting-gated route mounted (say, the
    benchmark baseline); the real module and its resolver are left as they are."""
    spec = importlib.util.find_spec("oncoplanner.urls")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with override_settings(**dict.fromkeys(policy.CONDITIONAL_URL_NAMES.values(), True)):
        spec.loader.exec_module(module)
    return module


def _all_patterns() -> list[tuple[str, str]]:
    return _named_patterns(_urlconf_with_every_conditional_route().urlpatterns)


def _named_patterns(
    patterns: list[URLPattern | URLResolver], namespace: str = "", prefix: str = ""
) -> list[tuple[str, str]]:
    """(qualified name or "", route) for every URL pattern, recursively."""
    found: list[tuple[str, str]] = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            found += _named_patterns(pattern.url_patterns, inner, route)
        else:
            name = pattern.name or ""
            found.append((f"{namespace}:{name}" if namespace and name else name, route))
    return found


def _admin_classified() -> dict[str, str | None]:
    return {
        **policy.ADMIN_PHI_MODELS,
        **policy.ADMIN_OVERSIGHT_MODELS,
        **policy.ADMIN_CONFIG_MODELS,
    }


def test_url_walk_every_pattern_is_classified() -> None:
    classified = policy.PUBLIC_URL_NAMES | policy.AUTHENTICATED_URL_NAMES | policy.PHI_URL_NAMES
    unclassified = []
    for name, route in _all_patterns():
        if route.startswith("admin/") or name.startswith(f"{policy.ADMIN_NAMESPACE}:"):
            continue  # every admin view sits behind admin_view (staff, login, MFA): walked below
        if name not in classified:
            unclassified.append(f"{name or '<unnamed>'}  ({route})")
    assert not unclassified, (
        "URL patterns not classified in oncoplanner/policy.py (PUBLIC_URL_NAMES, "
        "AUTHENTICATED_URL_NAMES or PHI_URL_NAMES plus matrix rows):\n" + "\n".join(unclassified)
    )


def test_url_walk_every_phi_url_is_in_the_matrix() -> None:
    in_matrix = {resource["url"] for resource in policy.RESOURCES.values()}
    assert sorted(policy.PHI_URL_NAMES - in_matrix) == []


def test_url_walk_classified_names_still_exist() -> None:
    names = {name for name, _ in _all_patterns()}
    stale = (
        policy.PUBLIC_URL_NAMES | policy.AUTHENTICATED_URL_NAMES | policy.PHI_URL_NAMES
    ) - names
    assert sorted(stale) == []


def test_url_walk_conditional_routes_are_off_by_default() -> None:
    names = {name for name, _ in _named_patterns(get_resolver().url_patterns)}
    assert sorted(set(policy.CONDITIONAL_URL_NAMES) & names) == []


@pytest.mark.django_db
def test_url_walk_benchmark_baseline_is_public_and_holds_no_data() -> None:
    with override_settings(ROOT_URLCONF=_urlconf_with_every_conditional_route()):
        response = Client().get(reverse("bench_baseline"))
    assert response.status_code == 200
    assert b"<h1>Baseline</h1>" in response.content


def test_url_walk_every_admin_model_is_classified() -> None:
    registered = {model._meta.label for model in admin.site._registry}
    unclassified = sorted(registered - set(_admin_classified()))
    assert not unclassified, (
        "admin models not classified in oncoplanner/policy.py (ADMIN_PHI_MODELS, "
        "ADMIN_OVERSIGHT_MODELS or ADMIN_CONFIG_MODELS): " + ", ".join(unclassified)
    )
    assert sorted(set(_admin_classified()) - registered) == []


def test_url_walk_admin_classes_agree_with_the_policy() -> None:
    from patients.admin_gate import GatedPhiAdmin
    from patients.selectors import PHI_PATIENT_PATHS

    for model, model_admin in admin.site._registry.items():
        label = model._meta.label
        gated = isinstance(model_admin, GatedPhiAdmin)
        # PHI in the gate's own table must be PHI (or oversight) in the policy, and the
        # policy's PHI models must all use the gated admin.
        if label in policy.ADMIN_PHI_MODELS:
            assert gated, f"{label} is PHI in the policy but its admin is not GatedPhiAdmin"
        if label in PHI_PATIENT_PATHS:
            assert label in policy.ADMIN_PHI_MODELS or label in policy.ADMIN_OVERSIGHT_MODELS, label
        if label in policy.ADMIN_CONFIG_MODELS:
            assert label not in PHI_PATIENT_PATHS, label


def test_url_walk_every_admin_model_view_is_covered_by_the_matrix() -> None:
    urls = {resource["url"] for resource in policy.RESOURCES.values()}
    missing = []
    for label in _admin_classified():
        app, model = label.lower().split(".")
        if f"admin:{app}_{model}_changelist" not in urls:
            missing.append(label)
    for label, obj in {**policy.ADMIN_PHI_MODELS, **policy.ADMIN_OVERSIGHT_MODELS}.items():
        app, model = label.lower().split(".")
        if obj is not None and f"admin:{app}_{model}_change" not in urls:
            missing.append(f"{label} change")
    assert missing == []
