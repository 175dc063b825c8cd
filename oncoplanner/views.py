from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.http import require_GET

from labs.selectors import inbox_open_count
from patients import portal_views
from patients.dashboard import patient_list_page


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
        # A worklist, not the whole clinic: what waits in the inbox and whose cycle is due this
        # week (through the access gate; the rows shown are logged as one list read).
        user = request.user
        context["inbox_waiting"] = inbox_open_count(user=user)  # type: ignore[arg-type]
        context["due"] = patient_list_page(user=user, filter="due")  # type: ignore[arg-type]
        context["today"] = timezone.localdate()
    return render(request, "home.html", context)


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    # Pages link the icon; Django admin and browsers that probe /favicon.ico get it here too
    # instead of a 404 in every log.
    return redirect(static("favicon.svg"), permanent=True)
