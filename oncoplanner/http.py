"""Request typing and HTTP-level protections shared by every door."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.http import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from django_htmx.middleware import HtmxDetails

    from oncoplanner.accounts.models import User


class AuthedHtmxRequest(HttpRequest):
    user: User
    htmx: HtmxDetails


def no_store_for_authenticated(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Security: nothing shown to a signed-in user may be kept by a browser or proxy cache.

    Pages, fragments, API answers and exports for an authenticated user can hold PHI; a shared
    computer's back button or a proxy must not replay them (SECURITY.md #15).
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not request.path.startswith("/static/"):
            if "no-store" not in response.headers.get("Cache-Control", ""):
                response.headers["Cache-Control"] = "no-store, private"
            response.headers.setdefault("Pragma", "no-cache")
        return response

    return middleware
