from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from patients.selectors import patient_rows_for


@login_required
def home(request: HttpRequest) -> HttpResponse:
    context: dict[str, object] = {}
    if request.user.is_clinician:  # type: ignore[union-attr]
        # Through the access gate: only care-team patients, and the list read is logged.
        context["rows"] = patient_rows_for(user=request.user)  # type: ignore[arg-type]
    return render(request, "home.html", context)
