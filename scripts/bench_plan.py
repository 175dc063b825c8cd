"""In-process half of `make bench`: pick the records to measure, and count queries per request.

Run by scripts/bench.py with the benchmark server's environment (same DATABASE_URL, production
settings). Prints one JSON object: the endpoints (method, path, body, headers) that exist in
this checkout, each with its queries per request measured through Django's test client under
CaptureQueriesContext, and the endpoints that were skipped with the reason.

To measure a new endpoint, add an entry to `endpoints()`: a name, and a function that returns
(method, path, body or None, content type or None) given the chosen records.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oncoplanner.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from django.urls import Resolver404, resolve  # noqa: E402
from django.utils import timezone  # noqa: E402

from oncoplanner.accounts.models import User  # noqa: E402

CLINICIAN = "dr.okafor"
GRAPHQL_DASHBOARD = (
    "query Dashboard($id: ID!) { patient(id: $id) { id mrn givenName familyName stage ecog "
    "courses { id } sideEffects { id grade } labResults(first: 20) { id } } }"
)


def choose_records(user: User) -> dict[str, Any]:
    """The clinician's patient with the most lab results (and a cycle, for the POST)."""
    from django.db.models import Count, Q

    from labs.models import LabResult
    from patients.selectors import patient_list_visible_to
    from treatments.models import ChemoCycle, CtcaeTerm

    visible = patient_list_visible_to(user=user)
    patient = visible.annotate(n=Count("lab_results")).order_by("-n").first()
    # A side effect is linked to a cycle already given (treatments.services).
    given = ChemoCycle.Status.GIVEN
    cycled = visible.filter(courses__cycles__status=given).first()
    cycle_patient = cycled or patient
    cycle = (
        ChemoCycle.objects.filter(course__patient=cycle_patient, status=given)
        .order_by("-pk")
        .first()
    )
    term = CtcaeTerm.objects.order_by("pk").first()
    search = patient.family_name[:4]
    # The MRNs' common prefix ("DEMO-") matches every visible patient: a full page of 25 rows at
    # both sizes, so that the two sizes' times compare the same page work over a larger clinic.
    full_page_search = patient.mrn.rstrip("0123456789")
    return {
        "patient_id": patient.pk,
        "patient_labs": LabResult.objects.filter(patient=patient).count(),
        "search": search,
        # The demo draws names from a small pool, so a name search matches ~1 in 30 of the
        # visible patients: a few rows at 100 patients, a full page of 25 (of hundreds) at
        # 10,000. The MRN search finds one chart at any size.
        "search_matches": visible.filter(
            Q(family_name__icontains=search)
            | Q(given_name__icontains=search)
            | Q(mrn__icontains=search)
        ).count(),
        "full_page_search": full_page_search,
        "full_page_search_matches": visible.filter(mrn__icontains=full_page_search).count(),
        "mrn": patient.mrn,
        "cycle_patient_id": cycle_patient.pk,
        "cycle_id": cycle.pk if cycle else None,
        "term_id": term.pk if term else None,
        "visible_patients": visible.count(),
    }


Spec = Callable[[dict[str, Any]], tuple[str, str, str | None, str | None]]
RENDERED_AFRESH = "patient dashboard, rendered afresh"


def endpoints() -> list[tuple[str, bool, Spec]]:
    """(name, needs login, spec). Order = order of the table."""
    return [
        ("baseline", False, lambda r: ("GET", "/bench/baseline/", None, None)),
        # The same bare view with the clinician's session: what any signed-in request pays
        # (session, user, idle clock, MFA check) before a page does its own work. The target
        # stays a ratio to the anonymous baseline above; this row only splits the gap.
        ("baseline, signed in", True, lambda r: ("GET", "/bench/baseline/", None, None)),
        ("login page", False, lambda r: ("GET", "/accounts/login/", None, None)),
        ("patient search", True, lambda r: ("GET", f"/patients/?q={r['search']}", None, None)),
        ("patient search (MRN)", True, lambda r: ("GET", f"/patients/?q={r['mrn']}", None, None)),
        (
            "patient search (full page)",
            True,
            lambda r: ("GET", f"/patients/?q={r['full_page_search']}", None, None),
        ),
        ("patient dashboard", True, lambda r: ("GET", f"/patients/{r['patient_id']}/", None, None)),
        # The same page on a second server with CHART_CACHE=false: what a view costs when
        # its chart has changed since it was last rendered (wrk repeats one URL, so the row
        # above is the kept chart).
        (RENDERED_AFRESH, True, lambda r: ("GET", f"/patients/{r['patient_id']}/", None, None)),
        (
            "chart data (lab trends, 1 y)",
            True,
            lambda r: ("GET", f"/patients/{r['patient_id']}/labs/?days=365", None, None),
        ),
        (
            "REST 200 lab results",
            True,
            lambda r: (
                "GET",
                f"/api/v1/patients/{r['patient_id']}/lab-results?limit=200",
                None,
                None,
            ),
        ),
        (
            "GraphQL dashboard",
            True,
            lambda r: (
                "POST",
                "/graphql/",
                json.dumps({"query": GRAPHQL_DASHBOARD, "variables": {"id": r["patient_id"]}}),
                "application/json",
            ),
        ),
        (
            "HTMX side-effect POST",
            True,
            lambda r: (
                "POST",
                f"/patients/{r['cycle_patient_id']}/side-effects/new/",
                f"term={r['term_id']}&grade=1&onset={timezone.localdate().isoformat()}"
                f"&cycle={r['cycle_id']}&description=bench",
                "application/x-www-form-urlencoded",
            ),
        ),
    ]


def send(
    client: Client,
    method: str,
    path: str,
    body: str | None,
    content_type: str | None,
    headers: dict[str, str],
) -> Any:
    if method == "GET":
        return client.get(path, headers=headers, secure=True)
    return client.generic(
        method, path, body or "", content_type or "", headers=headers, secure=True
    )


def main() -> None:
    user = User.objects.get(username=CLINICIAN)
    records = choose_records(user)
    # The benchmark server's ALLOWED_HOSTS is 127.0.0.1 only: the test client's default host
    # ("testserver") would be answered 400 Bad Request.
    client = Client(enforce_csrf_checks=False, HTTP_HOST="127.0.0.1")
    client.force_login(user)
    anonymous = Client(HTTP_HOST="127.0.0.1")
    measured, skipped = [], []
    for name, needs_login, spec in endpoints():
        try:
            method, path, body, content_type = spec(records)
        except (KeyError, TypeError) as error:
            skipped.append({"name": name, "reason": f"no record to use ({error})"})
            continue
        try:
            resolve(path.split("?")[0])
        except Resolver404:
            skipped.append({"name": name, "reason": f"{path.split('?')[0]} does not exist yet"})
            continue
        if "None" in path or (body and "=None" in body):
            skipped.append({"name": name, "reason": "no suitable record in the demo data"})
            continue
        browser = client if needs_login else anonymous
        headers = {"HX-Request": "true"} if name.startswith("HTMX") else {}
        request = (browser, method, path, body, content_type, headers)
        # Counted on the second request, as wrk's steady state sees it: the first one after
        # sign-in also stamps the session's idle clock (three queries, once per 30 s).
        afresh = name == RENDERED_AFRESH
        with override_settings(CHART_CACHE=not afresh and settings.CHART_CACHE):
            send(*request)
            with CaptureQueriesContext(connection) as queries:
                response = send(*request)
        ok = response.status_code < 400
        text = response.content.decode(errors="replace")
        if ok and name.startswith("GraphQL") and '"errors"' in text:
            ok = False
        if not ok:
            skipped.append(
                {"name": name, "reason": f"answered {response.status_code}: {text[:160]!r}"}
            )
            continue
        measured.append(
            {
                "name": name,
                "method": method,
                "path": path,
                "body": body,
                "content_type": content_type,
                "login": needs_login,
                "server": "afresh" if afresh else "main",
                "htmx": bool(headers),
                "queries": len(queries),
                "status": response.status_code,
            }
        )
    print(json.dumps({"records": records, "endpoints": measured, "skipped": skipped}))


if __name__ == "__main__":
    main()
