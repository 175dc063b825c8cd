"""Form helpers shared by every app's views."""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ValidationError
from django.forms import Form


def add_service_errors(
    form: Form, error: ValidationError, *, aliases: Mapping[str, str] | None = None
) -> None:
    """Put a service's field-named ValidationError on the form's fields, so the page names the
    field the service refused; names the form does not have go on top of the form.

    `aliases` maps a service's field name to the form's (collected_at -> collected_on).
    """
    if not hasattr(form, "cleaned_data"):
        # An unbound form (a button with no fields, e.g. "no known allergies") refused by the
        # service: give it an error list to hold the refusal instead of a 500.
        _ = form.errors
        form.cleaned_data = {}
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for name, errors in error.message_dict.items():
        name = (aliases or {}).get(name, name)
        form.add_error(name if name in form.fields else None, errors)
