from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.http import require_GET

from patients import portal_views
from patients.selectors import patient_rows_for


@login_required
def home(request: HttpRequest) -> HttpResponse:
    context: dict[str, object] = {}
    if request.user.is_patient_user:  # type: ignore[union-attr]
        # A patient's home is their portal summary (their schedule); a patient account not
        # (or no longer) linked to an active record gets the plain page below.
        try:
            return portal_views.home(request)
        except Http404:
            pass
    if request.user.is_clinician:  # type: ignore[union-attr]
        # Through the access gate: only care-team patients, and the list read is logged.
        context["rows"] = patient_rows_for(user=request.user)  # type: ignore[arg-type]
    return render(request, "home.html", context)


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    # Pages link the icon; Django admin and browsers that probe /favicon.ico get it here too
    # instead of a 404 in every log.
    return redirect(static("favicon.svg"), permanent=True)
