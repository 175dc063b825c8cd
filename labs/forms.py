"""Input validation for the lab pages; writes happen in labs.services."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from labs.models import LabTest
from labs.units import accepted_units, unit_display

MAX_CSV_BYTES = 1024 * 1024  # 1 MB: a lab export for one patient is a few kB


class LabResultForm(forms.Form):
    test = forms.ModelChoiceField(
        queryset=LabTest.objects.order_by("-is_panel_default", "name"),
        empty_label="Choose a test",
    )
    value = forms.DecimalField(max_digits=12, decimal_places=4, min_value=0)
    # Any text is accepted here and judged by the service (one rule for the page, the API and
    # the import); the select offers the test's unit and those labs.units converts for it.
    unit = forms.CharField(max_length=30, required=False, widget=forms.Select)
    collected_on = forms.DateField(
        label="Collected on", widget=forms.DateInput(attrs={"type": "date"})
    )
    collected_time = forms.TimeField(
        label="at (clinic time)", widget=forms.TimeInput(attrs={"type": "time"})
    )
    # Shown only after the service asked (labs.services.LabValueChangeToConfirm).
    confirm_change = forms.BooleanField(
        required=False, label="The value is right: record it although it is far from the last one"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        test = self._chosen_test()
        self.fields["unit"].widget.choices = (
            [(unit, unit_display(unit)) for unit in accepted_units(test.unit, loinc=test.loinc)]
            if test is not None
            else [("", "—")]
        )

    def _chosen_test(self) -> LabTest | None:
        chosen = self.data.get("test") if self.is_bound else self.initial.get("test")
        if isinstance(chosen, LabTest) or chosen is None:
            return chosen
        return LabTest.objects.filter(pk=chosen).first() if str(chosen).isdigit() else None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        test = data.get("test")
        if test is not None and not data.get("unit"):
            data["unit"] = test.unit
        day, time = data.get("collected_on"), data.get("collected_time")
        if day is not None and time is not None:
            # Entered in the clinic's time zone; stored aware (the service refuses naive times).
            data["collected_at"] = timezone.make_aware(dt.datetime.combine(day, time))
        return data


class TrendFilterForm(forms.Form):
    """The trends page's query string; anything else is a 400 (SECURITY.md figure 4)."""

    days = forms.ChoiceField(
        choices=[("30", "30 days"), ("90", "90 days"), ("180", "180 days"), ("365", "1 year")]
        + [("all", "All")],
        required=False,
    )
    analytes = forms.CharField(required=False, max_length=500)

    def clean_analytes(self) -> list[str]:
        raw = self.cleaned_data.get("analytes") or ""
        return [code.strip() for code in raw.split(",") if code.strip()]


class CsvUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="CSV UTF-8, at most 1 MB.",
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_CSV_BYTES:
            raise ValidationError("The file is larger than 1 MB.")
        return upload


class AcknowledgeForm(forms.Form):
    note = forms.CharField(
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": "What was done, e.g. patient called"}),
    )


class EnteredInErrorForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        label="Why is it entered in error?",
        widget=forms.TextInput(
            attrs={"placeholder": "e.g. typo: platelets 50 entered as 5000", "autocomplete": "off"}
        ),
    )
