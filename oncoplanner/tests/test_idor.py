"""SECURITY.md figure 2: IDOR probes against every door that takes an id.

Probers: the clinician outside P's care team, P's neighbour's portal user (patient_other) and
the administrator and superuser (not on P's team) for the admin change views. Ids: the records
of P (which they may not see), each id +/-1, missing ids (max+1 .. max+50) and non-numeric
ids; also ids in form bodies (hidden member id, MRN) and HTMX requests, and a child of P under
a parent the prober can see (Q). Every answer must be free of P's marker string, and the deny
for an existing record must be byte-for-byte the deny for a missing one (after removing CSRF
tokens, nonces and the requested path itself). The last test prints the figure line.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.apps import apps
from django.http import Http404
from django.test import override_settings
from django.urls import reverse

from oncoplanner import policy
from oncoplanner.tests import security_world
from oncoplanner.tests.security_world import MARKER, body_of, client_for
from patients import selectors
from patients.models import Patient

pytestmark = pytest.mark.django_db

world = security_world.world  # the module-scoped fixture

MISSING_SPAN = 50
NON_NUMERIC = ("abc", "-1", "0x1", "1.0", "1e3", "%20", "1;2", "99999999999999999999999")
_TALLY = {"probes": 0, "leaks": 0, "distinguishable": 0}
_LEAKS: list[str] = []

_VOLATILE = (
    re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"'),
    re.compile(r'csrf[_-]?token["\']?\s*[:=]\s*["\'][^"\']*["\']', re.IGNORECASE),
    re.compile(r'nonce="[^"]*"'),
    re.compile(r'"X-CSRFToken"\s*:\s*"[^"]*"'),
)


def _normalise(body: str, path: str) -> str:
    for pattern in _VOLATILE:
        body = pattern.sub("<volatile>", body)
    return body.replace(path, "<path>")


def _probe(client: Any, method: str, url: str, data: dict[str, Any] | None = None, **extra: Any):
    response = (
        client.post(url, data or {}, **extra) if method == "POST" else client.get(url, **extra)
    )
    body = body_of(response)
    _TALLY["probes"] += 1
    if MARKER in body or MARKER in response.get("Location", ""):
        _TALLY["leaks"] += 1
        _LEAKS.append(f"{method} {url}")
    location = response.get("Location", "").split("?")[0]
    return response.status_code, location, _normalise(body, url)


def _ids(model_label: str, forbidden: list[int], visible: set[int]) -> tuple[list[Any], list[Any]]:
    """(ids to probe that exist or might, missing ids) for one model."""
    model = apps.get_model(model_label)
    top = max(model._default_manager.values_list("pk", flat=True), default=0)
    near = {pk + delta for pk in forbidden for delta in (-1, 1)} - set(forbidden) - visible
    existing = [pk for pk in sorted(set(forbidden) | near) if pk > 0 and pk not in visible]
    missing = list(range(top + 1, top + 1 + MISSING_SPAN))
    return existing, missing


def _compare(reference: tuple[Any, ...], answer: tuple[Any, ...], where: str) -> None:
    if reference != answer:
        _TALLY["distinguishable"] += 1
        _LEAKS.append(f"distinguishable: {where}")


# (prober, URL name, model of the id, world names of P's forbidden records, method, form body)
APP_DOORS = [
    (prober, url, method, data)
    for prober in ("clinician_outside", "patient_other", "patient_own")
    for url, method, data in (
        ("patients:patient_detail", "GET", None),
        ("patients:patient_fhir_export", "GET", None),
        ("patients:invitation_create", "POST", {"email": "probe@example.org"}),
        ("treatments:course_create", "GET", None),
        ("treatments:side_effect_create", "POST", {"grade": "2", "onset": "2026-03-05"}),
        ("patients:measurement_create", "POST", {"measured_on": "2026-03-05", "weight_kg": "60"}),
        ("patients:allergy_create", "POST", {"substance": "Latex"}),
        ("patients:allergy_none_known", "POST", {}),
        ("labs:lab_trends", "GET", None),
        ("labs:lab_result_create", "POST", {"value": "1.5"}),
        ("labs:lab_import", "GET", None),
        ("labs:lab_results_release", "POST", {"result": "1"}),
    )
]


def _visible_patients(world: dict[str, Any], prober: str) -> set[int]:
    # The outsider clinician treats Q: Q's chart is theirs to open.
    return {world["Q"].pk} if prober == "clinician_outside" else set()


@pytest.mark.parametrize(("prober", "url_name", "method", "data"), APP_DOORS)
def test_idor_patient_doors_deny_alike(
    world: dict[str, Any], prober: str, url_name: str, method: str, data: dict[str, Any] | None
) -> None:
    client = client_for(world, prober)
    forbidden = [world["P"].pk, world["P_uninvited"].pk]
    existing, missing = _ids("patients.Patient", forbidden, _visible_patients(world, prober))
    reference = None
    for index, pk in enumerate(existing + missing):
        url = reverse(url_name, args=[pk])
        # Every other probe as an HTMX request: fragments go through the same gate.
        extra = {"HTTP_HX_REQUEST": "true"} if index % 2 else {}
        status, location, body = _probe(client, method, url, data, **extra)
        assert status == 404, (url, status)
        answer = (status, location, body)
        reference = reference or answer
        _compare(reference, answer, f"{prober} {method} {url}")
    for raw in NON_NUMERIC:
        path = reverse(url_name, args=[1]).replace("/1/", f"/{raw}/")
        status, _, _ = _probe(client, method, path, data)
        assert status == 404, (path, status)


@pytest.mark.parametrize("prober", ["clinician_outside", "patient_other", "clinician_team"])
def test_idor_care_team_ids_deny_alike(world: dict[str, Any], prober: str) -> None:
    # None of these probers manages a team (no lead, no administrator): T, T2, missing: alike.
    client = client_for(world, prober)
    existing, missing = _ids("patients.CareTeam", [world["T"].pk, world["T2"].pk], set())
    reference = None
    for pk in existing + missing:
        url = reverse("patients:care_team_manage", args=[pk])
        for method, data in (("GET", None), ("POST", {"user": world["clinician_outside"].pk})):
            answer = _probe(client, method, url, data)
            assert answer[0] == 404, (method, url, answer[0])
            reference = reference or answer
            _compare(reference, answer, f"{prober} {method} {url}")


_REGISTRATION = {
    "mrn": "IDOR-0000001",
    "given_name": "Probe",
    "family_name": "Registration",
    "date_of_birth": "1961-07-02",
    "sex": "female",
}


@pytest.mark.parametrize(
    ("prober", "status"),
    [("clinician_outside", 400), ("patient_other", 404), ("administrator", 404)],
)
def test_idor_api_patient_create_care_team_id_deny_alike(
    world: dict[str, Any], prober: str, status: int
) -> None:
    # A care team id in a JSON body: P's team (the outsider is on T2 only), its neighbours and
    # missing ids answer alike (the outsider's 400 naming care_team_id), and create nothing.
    client = client_for(world, prober)
    existing, missing = _ids("patients.CareTeam", [world["T"].pk], {world["T2"].pk})
    before = Patient.objects.count()
    reference = None
    url = reverse("api:patient_create")
    for pk in existing + missing:
        answer = _api_probe(client, "POST", url, {**_REGISTRATION, "care_team_id": pk})
        assert answer[0] == status, (pk, answer)
        reference = reference or answer
        _compare(reference, answer, f"{prober} POST {url} care_team_id={pk}")
    assert Patient.objects.count() == before


# REST routes that take a patient id (JSON 404 {"detail": "Not found."} for everyone else).
API_PATIENT_DOORS = [
    ("api:patient_detail", "GET", None),
    ("api:patient_patch", "PATCH", {"phone": "+1 555 0199"}),
    ("api:patient_readiness", "GET", None),
    ("api:patient_fhir_export", "GET", None),
    ("api:course_list", "GET", None),
    ("api:side_effect_list", "GET", None),
    ("api:lab_result_list", "GET", None),
    ("api:allergy_list", "GET", None),
    ("api:allergy_create", "POST", {"substance": "Latex"}),
    (
        "api:lab_result_create",
        "POST",
        {"test_id": 1, "value": "1.5", "unit": "10*3/uL", "collected_at": "2026-03-01T08:00:00Z"},
    ),
]


def _api_probe(client: Any, method: str, url: str, body: dict[str, Any] | None) -> Any:
    extra = {"data": json.dumps(body), "content_type": "application/json"} if body else {}
    response = client.generic(method, url, **extra)
    text = body_of(response)
    _TALLY["probes"] += 1
    if MARKER in text:
        _TALLY["leaks"] += 1
        _LEAKS.append(f"{method} {url}")
    return response.status_code, text


@pytest.mark.parametrize(("url_name", "method", "body"), API_PATIENT_DOORS)
@pytest.mark.parametrize("prober", ["clinician_outside", "patient_other", "administrator"])
def test_idor_api_patient_ids_deny_alike(
    world: dict[str, Any], prober: str, url_name: str, method: str, body: dict[str, Any] | None
) -> None:
    client = client_for(world, prober)
    visible = _visible_patients(world, prober)
    existing, missing = _ids("patients.Patient", [world["P"].pk, world["P_uninvited"].pk], visible)
    reference = None
    for pk in existing + missing:
        answer = _api_probe(client, method, reverse(url_name, args=[pk]), body)
        assert answer[0] == 404, (url_name, pk, answer)
        reference = reference or answer
        _compare(reference, answer, f"{prober} {method} {url_name} {pk}")


# Parent mine, child theirs, on the doors: Q (the outsider's patient) in the URL, P's child id.
CHILD_DOORS = [
    # (URL name, world name of P's child, method, form or JSON body, is the API)
    ("treatments:course_detail", "P_course", "GET", None, False),
    ("treatments:course_summary", "P_course", "GET", None, False),
    ("treatments:course_stop", "P_course", "POST", {"reason": "407563006"}, False),
    ("labs:lab_result_acknowledge", "P_critical_lab_result", "POST", {"note": "seen"}, False),
    ("labs:side_effect_acknowledge", "P_severe_side_effect", "POST", {"note": "seen"}, False),
    ("labs:symptom_report_review", "P_severe_symptom_report", "POST", {"note": "seen"}, False),
    ("patients:allergy_entered_in_error", "P_allergy", "POST", {"reason": "probe"}, False),
    ("api:allergy_entered_in_error", "P_allergy", "POST", {"reason": "probe"}, True),
    ("api:course_detail", "P_course", "GET", None, True),
    ("api:cycle_list", "P_course", "GET", None, True),
    ("api:cycle_detail", "P_cycle", "GET", None, True),
    ("api:cycle_hold", "P_cycle", "POST", {"reason": "probe", "seen_version": "1"}, True),
    ("api:administration_list", "P_cycle", "GET", None, True),
    ("api:dose_modification_list", "P_course", "GET", None, True),
    ("api:side_effect_detail", "P_side_effect", "GET", None, True),
    ("api:side_effect_acknowledge", "P_severe_side_effect", "POST", {"note": "seen"}, True),
    ("api:lab_result_detail", "P_lab_result", "GET", None, True),
    ("api:lab_result_acknowledge", "P_critical_lab_result", "POST", {"note": "seen"}, True),
]


@pytest.mark.parametrize(("url_name", "child", "method", "body", "is_api"), CHILD_DOORS)
def test_idor_child_doors_parent_mine_child_theirs(
    world: dict[str, Any],
    url_name: str,
    child: str,
    method: str,
    body: dict[str, Any] | None,
    is_api: bool,
) -> None:
    client = client_for(world, "clinician_outside")
    obj = world[child]
    own = {o.pk for name, o in world.items() if name.startswith("Q_") and type(o) is type(obj)}
    existing, missing = _ids(obj._meta.label, [obj.pk], own)
    reference = None
    for pk in existing + missing:
        url = reverse(url_name, args=[world["Q"].pk, pk])
        if is_api:
            answer: Any = _api_probe(client, method, url, body)
        else:
            answer = _probe(client, method, url, body)
        assert answer[0] == 404, (url, answer[0])
        reference = reference or answer
        _compare(reference, answer, f"clinician_outside {method} {url}")


@pytest.mark.parametrize("prober", ["clinician_outside", "patient_other", "administrator"])
@override_settings(LIVE_STREAM_MAX_SECONDS=1, LIVE_STREAM_WAIT_SECONDS=1)
def test_idor_live_stream_patient_param_deny_alike(world: dict[str, Any], prober: str) -> None:
    client = client_for(world, prober)
    visible = _visible_patients(world, prober)
    existing, missing = _ids("patients.Patient", [world["P"].pk, world["P_uninvited"].pk], visible)
    reference = None
    url = reverse("live:changes")
    for pk in existing + missing:
        answer = _probe(client, "GET", url, None, QUERY_STRING=f"patient={pk}")
        assert answer[0] == 404, (pk, answer[0])
        reference = reference or answer
        _compare(reference, answer, f"{prober} stream patient={pk}")


ADMIN_MODELS = {**policy.ADMIN_PHI_MODELS, **policy.ADMIN_OVERSIGHT_MODELS}


def _world_records(world: dict[str, Any], label: str, prefix: str) -> list[int]:
    name = ADMIN_MODELS[label]
    if name is None:
        return []
    key = name.replace("P", prefix, 1) if name.startswith("P") else name
    obj = world.get(key)
    return [obj.pk] if obj is not None else []


@pytest.mark.parametrize("label", sorted(policy.ADMIN_PHI_MODELS))
@pytest.mark.parametrize("prober", ["administrator", "superuser"])
def test_idor_admin_phi_change_views_deny_alike(
    world: dict[str, Any], label: str, prober: str
) -> None:
    client = client_for(world, prober)
    app, model = label.lower().split(".")
    # Neither prober is on any care team: P's and Q's records are both forbidden.
    forbidden = _world_records(world, label, "P") + _world_records(world, label, "Q")
    if label == "patients.Patient":
        forbidden.append(world["P_uninvited"].pk)
    existing, missing = _ids(label, forbidden, set())
    reference = None
    for pk in existing + missing:
        url = reverse(f"admin:{app}_{model}_change", args=[pk])
        answer = _probe(client, "GET", url)
        assert answer[0] == 404, (url, answer[0])
        reference = reference or answer
        _compare(reference, answer, f"{prober} {url}")
    # The other object views of admin go through the same get_object: P's records and one
    # missing id each.
    for pk in [*existing, missing[0]]:
        for view in ("history", "delete"):
            url = reverse(f"admin:{app}_{model}_{view}", args=[pk])
            status, _, _ = _probe(client, "GET", url)
            assert status == 404, (url, status)
    for raw in NON_NUMERIC[:4]:
        url = reverse(f"admin:{app}_{model}_change", args=[raw])
        status, _, _ = _probe(client, "GET", url)
        assert status == 404, (url, status)


@pytest.mark.parametrize("label", sorted(policy.ADMIN_OVERSIGHT_MODELS))
def test_idor_admin_oversight_pages_show_no_chart_data(world: dict[str, Any], label: str) -> None:
    # Administrators see break-glass and invitation rows by design, named by id and MRN only.
    client = client_for(world, "administrator")
    app, model = label.lower().split(".")
    status, _, _ = _probe(client, "GET", reverse(f"admin:{app}_{model}_changelist"))
    assert status == 200
    for pk in _world_records(world, label, "P"):
        status, _, _ = _probe(client, "GET", reverse(f"admin:{app}_{model}_change", args=[pk]))
        assert status == 200


@pytest.mark.parametrize("prober", sorted(policy.PERSONAS))
def test_idor_lists_never_show_foreign_records(world: dict[str, Any], prober: str) -> None:
    allowed_to_see_p = prober in {"clinician_team", "clinician_break_glass", "patient_own"}
    client = client_for(world, prober)
    urls = [reverse("home"), reverse("audit:report"), reverse("audit:export")]
    urls += [
        reverse(f"admin:{label.lower().replace('.', '_')}_changelist")
        for label in {**ADMIN_MODELS, **policy.ADMIN_CONFIG_MODELS}
    ]
    for url in urls:
        if allowed_to_see_p:
            continue
        _probe(client, "GET", url)


@pytest.mark.parametrize("prober", ["patient_other", "administrator", "superuser"])
def test_idor_emergency_mrn_in_body_existing_and_missing_alike(
    world: dict[str, Any], prober: str
) -> None:
    # Break-glass is for clinicians: for anyone else a real MRN and a made-up one answer alike.
    client = client_for(world, prober)
    url = reverse("patients:emergency_access_create")
    reason = "Anaphylaxis during oxaliplatin infusion, chart needed now"
    reference = None
    mrns = [world["P"].mrn, world["P_uninvited"].mrn, world["Q"].mrn]
    mrns += [f"MTX{n:07d}" for n in range(100, 130)]
    for mrn in mrns:
        answer = _probe(client, "POST", url, {"mrn": mrn, "reason": reason})
        assert answer[0] == 404
        reference = reference or answer
        _compare(reference, answer, f"{prober} POST {url} mrn={mrn}")


def test_idor_emergency_mrn_without_reason_existing_and_missing_alike(
    world: dict[str, Any],
) -> None:
    # A clinician outside the team may open a chart, but only with a written reason: without
    # one, a real MRN and a made-up one get the same form back (no lookup happens).
    client = client_for(world, "clinician_outside")
    url = reverse("patients:emergency_access_create")
    reference = None
    for mrn in [world["P"].mrn, world["P_uninvited"].mrn] + [
        f"MTX{n:07d}" for n in range(200, 230)
    ]:
        status, location, body = _probe(client, "POST", url, {"mrn": mrn, "reason": ""})
        assert status == 200
        answer = (status, location, body.replace(mrn, "<mrn>"))
        reference = reference or answer
        _compare(reference, answer, f"clinician_outside POST {url} mrn={mrn} no reason")
    # With a reason, a missing MRN is a 404 and opens nothing.
    reason = "Neutropenic sepsis out of hours, treating team unreachable"
    for n in range(300, 320):
        status, _, _ = _probe(client, "POST", url, {"mrn": f"MTX{n:07d}", "reason": reason})
        assert status == 404


def test_idor_hidden_member_id_in_care_team_form(world: dict[str, Any]) -> None:
    # The "remove member" form carries the member's id in a hidden field: a non-member's id and
    # a missing id answer alike, and remove nobody.
    client = client_for(world, "administrator")
    url = reverse("patients:care_team_manage", args=[world["T"].pk])
    non_members = [world[name].pk for name in ("clinician_outside", "patient_own", "superuser")]
    from oncoplanner.accounts.models import User

    top = max(User.objects.values_list("pk", flat=True))
    reference = None
    for user_id in non_members + list(range(top + 1, top + 31)):
        answer = _probe(client, "POST", url, {"action": "remove", "user_id": user_id})
        assert answer[0] == 404, (user_id, answer[0])
        reference = reference or answer
        _compare(reference, answer, f"administrator remove member {user_id!r}")
    assert selectors.patient_on_care_team_of(user=world["clinician_team"], patient_id=world["P"].pk)


@pytest.mark.parametrize("user_id", ["abc", "1 OR 1=1"])
def test_idor_hidden_member_id_non_numeric_is_404(world: dict[str, Any], user_id: str) -> None:
    client = client_for(world, "administrator")
    client.raise_request_exception = False
    url = reverse("patients:care_team_manage", args=[world["T"].pk])
    status, _, _ = _probe(client, "POST", url, {"action": "remove", "user_id": user_id})
    assert status == 404


CHILD_GETTERS = {
    "treatments.Course": ("course_get_for_user", "course_id", "_course"),
    "treatments.ChemoCycle": ("cycle_get_for_user", "cycle_id", "_cycle"),
    "treatments.SideEffect": ("side_effect_get_for_user", "side_effect_id", "_side_effect"),
    "labs.LabResult": ("lab_result_get_for_user", "lab_result_id", "_lab_result"),
    "patients.Allergy": ("allergy_get_for_user", "allergy_id", "_allergy"),
}


@pytest.mark.parametrize("label", sorted(CHILD_GETTERS))
def test_idor_child_of_other_patient_under_own_parent_is_404(
    world: dict[str, Any], label: str
) -> None:
    # Parent mine (Q, the outsider's patient), child theirs (P's record): the same 404 as a
    # missing child. No URL takes a child id yet; the selectors every future door must use do.
    getter_name, kwarg, suffix = CHILD_GETTERS[label]
    getter = getattr(selectors, getter_name)
    user = world["clinician_outside"]
    own = world[f"Q{suffix}"]
    assert getter(user=user, patient_id=world["Q"].pk, **{kwarg: own.pk}) == own
    top = max(apps.get_model(label)._default_manager.values_list("pk", flat=True))
    messages = set()
    for child_id in [world[f"P{suffix}"].pk, *range(top + 1, top + 1 + MISSING_SPAN), "abc"]:
        _TALLY["probes"] += 1
        with pytest.raises(Http404) as denied:
            getter(user=user, patient_id=world["Q"].pk, **{kwarg: child_id})
        messages.add(str(denied.value))
    if len(messages) != 1:
        _TALLY["distinguishable"] += 1
    assert len(messages) == 1, messages


def test_idor_zz_figure() -> None:
    print(
        f"\nFIGURE 2 idor: probes={_TALLY['probes']} leaks={_TALLY['leaks']}"
        f" distinguishable={_TALLY['distinguishable']}"
    )
    assert _LEAKS == []
    assert _TALLY["leaks"] == 0
    assert _TALLY["distinguishable"] == 0
