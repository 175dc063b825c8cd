"""The data dictionary and ER diagram as pages, for staff (clinicians and administrators).

Generated from the models on each request (the same generators as ``export_schema``), so the
pages never drift from the schema. Patients get the gate's 404: nothing here is theirs.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from oncoplanner.schema_export import mermaid_er, model_docs


def _require_staff(request: HttpRequest) -> None:
    user = request.user
    if not (user.is_clinician or user.is_administrator):  # type: ignore[union-attr]
        raise Http404("No such page.")


@login_required
@require_http_methods(["GET"])
def data_dictionary(request: HttpRequest) -> HttpResponse:
    _require_staff(request)
    return render(request, "docs/data_dictionary.html", {"models": model_docs()})


@login_required
@require_http_methods(["GET"])
def er_diagram(request: HttpRequest) -> HttpResponse:
    _require_staff(request)
    return render(request, "docs/er_diagram.html", {"mermaid": mermaid_er()})
