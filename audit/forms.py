"""Input validation for the access-log report's filters (GET parameters)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from audit.models import AccessLog
from audit.selectors import DEFAULT_SORT
from patients.models import Patient

# Newest first is the default and comes first: an unchanged form must not flip the order.
SORT_LABELS = {
    "-at": "Newest first",
    "at": "Oldest first",
    "user": "User A-Z",
    "-user": "User Z-A",
    "patient": "Patient id, low to high",
    "-patient": "Patient id, high to low",
    "action": "Action A-Z",
    "-action": "Action Z-A",
    "surface": "Surface A-Z",
    "-surface": "Surface Z-A",
    "outcome": "Outcome A-Z",
    "-outcome": "Outcome Z-A",
}
SORT_ORDER = [DEFAULT_SORT, *(key for key in SORT_LABELS if key != DEFAULT_SORT)]


def _choices(choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [("", "Any"), *choices]


class AccessLogFilterForm(forms.Form):
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    user = forms.CharField(required=False, max_length=150, label="Username")
    patient = forms.CharField(
        required=False,
        max_length=64,
        label="Patient (MRN or id)",
        help_text="The MRN the complaint names, or the id shown in the log.",
    )
    action = forms.ChoiceField(required=False, choices=_choices(AccessLog.Action.choices))
    surface = forms.ChoiceField(required=False, choices=_choices(AccessLog.Surface.choices))
    outcome = forms.ChoiceField(required=False, choices=_choices(AccessLog.Outcome.choices))
    sort = forms.ChoiceField(
        required=False,
        choices=[(key, SORT_LABELS[key]) for key in SORT_ORDER],
        initial=DEFAULT_SORT,
    )

    def clean_patient(self) -> int | None:
        """An id, or an MRN resolved to its id. Only the id is looked up (no chart is read),
        and the report's own log row keeps the filter as typed: who asked about whom."""
        raw = (self.cleaned_data.get("patient") or "").strip()
        if not raw:
            return None
        if raw.isdigit():
            if int(raw) < 1:
                raise ValidationError("Enter an MRN or a patient id of 1 or more.")
            return int(raw)
        pk = Patient.objects.filter(mrn__iexact=raw).values_list("pk", flat=True).first()
        if pk is None:
            raise ValidationError(f"No patient has the MRN “{raw}”.")
        return pk

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            raise ValidationError({"date_to": "The end date is before the start date."})
        return data

    def search_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for audit.selectors.access_log_search."""
        data = self.cleaned_data
        return {
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
            "username": data.get("user") or "",
            "patient_id": data.get("patient"),
            "action": data.get("action") or "",
            "surface": data.get("surface") or "",
            "outcome": data.get("outcome") or "",
            "sort": data.get("sort") or DEFAULT_SORT,
        }

    def applied(self) -> dict[str, str]:
        """The filters actually set, as strings, for the log row's detail."""
        return {k: str(v) for k, v in self.cleaned_data.items() if v not in (None, "")}
