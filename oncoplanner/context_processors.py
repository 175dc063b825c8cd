"""Template context every page gets."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def emergency_number(request: HttpRequest) -> dict[str, str]:
    """The emergency number patients are told to call (settings.EMERGENCY_NUMBER)."""
    return {"emergency_number": settings.EMERGENCY_NUMBER}
