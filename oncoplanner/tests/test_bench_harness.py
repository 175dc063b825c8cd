"""`make bench` is not part of `make test` (it takes minutes): these keep its parts honest.

- The report renderer still turns a recorded run (docs/bench-runs, the figures that
  docs/PERFORMANCE.md quotes) into exactly the table that run printed.
- Every endpoint the benchmark drives still exists and answers a signed-in clinician with a
  success, on the demo clinic: a renamed URL or a new required field would otherwise only
  show up as a "skipped" row in the next benchmark.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from django.core.management import call_command
from django.test import override_settings

from oncoplanner.tests.test_url_walk import _urlconf_with_every_conditional_route

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "docs" / "bench-runs" / "20261124T032956Z"


def _script(name: str) -> ModuleType:
    sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_renderer_reproduces_a_recorded_run() -> None:
    bench = _script("bench")
    report = json.loads(RUN.with_suffix(".json").read_text())
    args = argparse.Namespace(**report["settings"])
    assert bench.render(report, args) == RUN.with_suffix(".md").read_text()


@pytest.mark.django_db
def test_bench_endpoints_all_exist_and_answer_on_the_demo_clinic() -> None:
    # The baseline view is mounted only for benchmarks: a URLconf with it, as the URL walk does.
    with override_settings(ROOT_URLCONF=_urlconf_with_every_conditional_route()):
        _drive_every_endpoint()


def _drive_every_endpoint() -> None:
    call_command(
        "seed_demo", "--allow-production", "--patients", "6", "--history-days", "30", verbosity=0
    )
    plan = _script("bench_plan")
    from oncoplanner.accounts.models import User

    user = User.objects.get(username=plan.CLINICIAN)
    records = plan.choose_records(user)
    from django.test import Client

    client = Client()
    client.force_login(user)
    session = client.session
    session["_op_mfa_enrolled"] = True  # past enrolment, as after a TOTP login
    session.save()
    anonymous = Client()
    names = []
    for name, needs_login, make_spec in plan.endpoints():
        method, path, body, content_type = make_spec(records)
        headers = {"HX-Request": "true"} if name.startswith("HTMX") else {}
        response = plan.send(
            client if needs_login else anonymous, method, path, body, content_type, headers
        )
        assert response.status_code < 400, (name, response.status_code)
        if name.startswith("GraphQL"):
            assert "errors" not in response.json(), response.json()
        names.append(name)
    assert "patient dashboard" in names
    assert "baseline" in names
