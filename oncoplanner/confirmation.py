"""A refusal the user may overrule: the value is allowed, but most often a typo.

A service raises a ConfirmationRequired subclass (a ValidationError naming the field) until
the caller passes the subclass's `confirm_with` flag. Every door reads it the same way: a page
shows that checkbox only then, REST answers the field error with type "confirmation_required"
and the flag's name, GraphQL the same in the error's extensions.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError


class ConfirmationRequired(ValidationError):
    confirm_with: str = ""  # the service argument (and form field) that accepts the value
