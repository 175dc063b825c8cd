from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse


def admin_login(request: HttpRequest) -> HttpResponse:
    """Replaces Django admin's own login form, so admin is behind allauth's login, its MFA
    stage and axes' throttling like every other page: there is no second way in."""
    if request.user.is_authenticated:
        # Logged in but not staff: admin sent them here; going on to the login page would
        # bounce straight back to admin and loop.
        return redirect("home")
    next_url = request.GET.get("next") or reverse("admin:index")
    return redirect_to_login(next_url)
