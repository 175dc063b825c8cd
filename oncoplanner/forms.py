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
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for name, errors in error.message_dict.items():
        name = (aliases or {}).get(name, name)
        form.add_error(name if name in form.fields else None, errors)
