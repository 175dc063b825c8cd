"""Acknowledging a critical finding: one rule for critical labs and grade >= 3 side effects.

DOMAIN.md 4: a critical result needs an acknowledgement (who, when, what was done) and the
time to acknowledge is shown. The caller authorises `by` through the access gate (change
permission on the patient) and wraps the call in its service's transaction.
"""

from __future__ import annotations

from typing import Any, Protocol

from django.core.exceptions import ValidationError
from django.utils import timezone


class Acknowledgeable(Protocol):
    acknowledged_by: Any
    acknowledged_at: Any
    acknowledgement_note: str

    def full_clean(self) -> None: ...
    def save(self, *args: Any, **kwargs: Any) -> None: ...


def acknowledge(obj: Acknowledgeable, *, by: Any, note: str) -> None:
    note = (note or "").strip()
    if obj.acknowledged_at is not None:
        raise ValidationError({"note": "This was already acknowledged."})
    if not note:
        raise ValidationError({"note": "Say what was done (e.g. patient called, cycle delayed)."})
    if "\x00" in note:
        raise ValidationError({"note": "The note contains a NUL character."})
    obj.acknowledged_by = by
    obj.acknowledged_at = timezone.now()
    obj.acknowledgement_note = note
    obj.full_clean()
    obj.save()
