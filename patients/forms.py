"""Input validation only (STYLE.md): the services decide and write."""

from __future__ import annotations

from typing import Any

from django import forms

from oncoplanner.accounts.models import User
from patients.models import EMERGENCY_REASON_MIN_LENGTH, Allergy


class EmergencyAccessForm(forms.Form):
    mrn = forms.CharField(label="MRN", max_length=20)
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        min_length=EMERGENCY_REASON_MIN_LENGTH,
        max_length=2000,
        help_text=f"Why you must open this chart now (at least {EMERGENCY_REASON_MIN_LENGTH} characters). "
        "The care team and administrators will see it.",
    )

    def clean_mrn(self) -> str:
        return self.cleaned_data["mrn"].strip().upper()


class CareTeamMemberForm(forms.Form):
    user = forms.ModelChoiceField(queryset=User.objects.none(), label="Clinician")

    def __init__(self, *args: Any, team_group_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only clinicians who are not yet members; patients can never be offered.
        self.fields["user"].queryset = (  # type: ignore[attr-defined]
            User.objects.filter(role=User.Role.CLINICIAN, is_active=True)
            .exclude(groups__pk=team_group_id)
            .order_by("last_name", "first_name", "username")
        )


class MeasurementForm(forms.Form):
    measured_on = forms.DateField(
        label="Measured on", widget=forms.DateInput(attrs={"type": "date"})
    )
    weight_kg = forms.DecimalField(
        label="Weight (kg)",
        required=False,
        max_digits=5,
        decimal_places=1,
        min_value=1,
        max_value=400,
        widget=forms.NumberInput(attrs={"step": "0.1", "inputmode": "decimal"}),
    )
    height_cm = forms.DecimalField(
        label="Height (cm)",
        required=False,
        max_digits=5,
        decimal_places=1,
        min_value=30,
        max_value=260,
        widget=forms.NumberInput(attrs={"step": "0.1", "inputmode": "decimal"}),
        help_text="Only when measured: doses use the latest height on record.",
    )
    # Shown only after the service asked (a value far from the last one on record).
    confirm_change = forms.BooleanField(
        required=False, label="I have checked it: the change is real"
    )


class InvitationForm(forms.Form):
    email = forms.EmailField(label="Patient's email address")


class InvitationAcceptForm(forms.Form):
    username = forms.CharField(max_length=150)
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Password (again)", widget=forms.PasswordInput, strip=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return data


class PatientListForm(forms.Form):
    q = forms.CharField(label="Search by name or MRN", max_length=100, required=False)
    filter = forms.ChoiceField(
        label="Show",
        required=False,
        choices=[
            ("mine", "My patients"),
            ("due", "Due this week"),
            ("attention", "Needs attention"),
        ],
        error_messages={
            "invalid_choice": "Unknown filter %(value)s: choose my patients, due this week or needs attention."
        },
    )


class AllergyForm(forms.Form):
    substance = forms.CharField(
        max_length=200,
        help_text="E.g. Paclitaxel, Carboplatin, Penicillin, Latex. A drug in the formulary is "
        "linked to it.",
    )
    category = forms.ChoiceField(choices=Allergy.Category.choices, initial="medication")
    severity = forms.ChoiceField(
        choices=[("", "Not known"), *Allergy.Severity.choices], required=False
    )
    reaction = forms.CharField(
        max_length=300, required=False, help_text="What happened, e.g. anaphylaxis, hives."
    )


class AllergyEnteredInErrorForm(forms.Form):
    reason = forms.CharField(max_length=500, help_text="What was wrong with this entry.")
