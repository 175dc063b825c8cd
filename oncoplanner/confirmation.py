"""A refusal the user may overrule: the value is allowed, but most often a typo.

A service raises a ConfirmationRequired subclass (a ValidationError naming the field) until
the caller passes the subclass's `confirm_with` flag. Every door reads it the same way: a page
shows that checkbox only then, REST answers the field error with type "confirmation_required"
and the flag's name, GraphQL the same in the error's extensions.

A service that finds several such warnings at once (course_start: a long-past start, an
allergy, another open course, a lifetime limit) asks them all in one refusal,
ConfirmationsRequired, rather than one per round trip: `confirmations` lists each warning with
its field and its own flag, and every door shows them all (a page every checkbox, REST one
error item per warning, GraphQL `confirmWithAll`). A single warning is raised as its own
subclass, as before, so `confirm_with` still names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError


@dataclass(frozen=True)
class Confirmation:
    """One warning to confirm: the field it names, its words, the flag that accepts it."""

    field: str
    message: str
    confirm_with: str


class ConfirmationRequired(ValidationError):
    confirm_with: str = ""  # the service argument (and form field) that accepts the value

    @property
    def confirmations(self) -> list[Confirmation]:
        """Each warning with the flag that accepts it (all under `confirm_with` here)."""
        if not hasattr(self, "error_dict"):
            return [Confirmation(NON_FIELD_ERRORS, m, self.confirm_with) for m in self.messages]
        return [
            Confirmation(field, message, self.confirm_with)
            for field, messages in self.message_dict.items()
            for message in messages
        ]

    @property
    def confirm_withs(self) -> list[str]:
        """Every flag this refusal asks for, in the order asked, each once."""
        return list(dict.fromkeys(c.confirm_with for c in self.confirmations))


class ConfirmationsRequired(ConfirmationRequired):
    """Several warnings refused together, each with its own flag (see the module docstring).

    `also` is a plain refusal found with them (a confirmation ticked without the reason it
    needs): it is reported beside them, so that one answer can settle everything, but it is not
    something a flag accepts, so it is not among `confirmations`.
    """

    def __init__(
        self, asked: Sequence[ConfirmationRequired], *, also: ValidationError | None = None
    ) -> None:
        merged: dict[str, list[str]] = {}
        for refusal in [*asked, *([also] if also is not None else [])]:
            for field, messages in _by_field(refusal).items():
                merged.setdefault(field, []).extend(messages)
        super().__init__(merged)
        self.asked = list(asked)
        self.confirm_with = self.asked[0].confirm_with if self.asked else ""

    @property
    def confirmations(self) -> list[Confirmation]:
        return [c for refusal in self.asked for c in refusal.confirmations]


def refuse_unconfirmed(
    asked: Sequence[ConfirmationRequired], *, also: ValidationError | None = None
) -> None:
    """Raise every warning still to confirm at once, with `also` beside them; return when there
    is nothing to refuse. One warning alone is raised as itself (its subclass, its flag)."""
    if not asked:
        if also is not None:
            raise also
        return
    if len(asked) == 1 and also is None:
        raise asked[0]
    raise ConfirmationsRequired(asked, also=also)


def _by_field(error: ValidationError) -> dict[str, list[str]]:
    if hasattr(error, "error_dict"):
        return error.message_dict
    return {NON_FIELD_ERRORS: error.messages}
