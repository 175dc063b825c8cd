"""Input validation only (STYLE.md): the services decide and write."""

from __future__ import annotations

from typing import Any

from django import forms

from oncoplanner.accounts.models import User
from patients.models import EMERGENCY_REASON_MIN_LENGTH, Allergy, CareTeam, Patient
from patients.services import CHOOSE_OWN_TEAM


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


# --- Registering a patient and correcting the chart's details ------------------------------

ECOG_CHOICES = [
    ("", "Not assessed"),
    (0, "0 · fully active"),
    (1, "1 · restricted in strenuous activity, ambulatory"),
    (2, "2 · ambulatory, self-care, no work; up > 50% of waking hours"),
    (3, "3 · limited self-care; in bed or chair > 50% of waking hours"),
    (4, "4 · completely disabled"),
]
DOSE_INPUT_HELP = {
    "date_of_birth": "Age enters Cockcroft-Gault creatinine clearance (carboplatin doses by "
    "Calvert) and picks age-banded lab reference ranges.",
    "sex": "Enters Cockcroft-Gault (× 0.85 if female; carboplatin needs female or male) and "
    "picks sex-specific lab reference ranges.",
}


class PatientDetailsForm(forms.Form):
    """The chart's details a clinician may correct: as the REST PATCH, no MRN, no care team."""

    given_name = forms.CharField(max_length=100)
    family_name = forms.CharField(max_length=100)
    date_of_birth = forms.DateField(
        label="Date of birth",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=DOSE_INPUT_HELP["date_of_birth"],
    )
    sex = forms.ChoiceField(
        choices=[("", "Choose…"), *Patient.Sex.choices], help_text=DOSE_INPUT_HELP["sex"]
    )
    phone = forms.CharField(max_length=30, required=False)
    email = forms.EmailField(max_length=254, required=False)
    address = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    primary_diagnosis = forms.CharField(
        max_length=200, required=False, help_text="E.g. Adenocarcinoma of the sigmoid colon."
    )
    icd10_code = forms.CharField(
        label="ICD-10 code", max_length=10, required=False, help_text="E.g. C18.7 or C50.911."
    )
    stage = forms.CharField(max_length=40, required=False, help_text="E.g. IIIB or pT3N1M0.")
    diagnosed_on = forms.DateField(
        label="Date of diagnosis",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="When the primary cancer was diagnosed, e.g. the date of the biopsy report.",
    )
    ecog = forms.TypedChoiceField(
        label="ECOG performance status",
        choices=ECOG_CHOICES,
        coerce=int,
        empty_value=None,
        required=False,
    )
    medical_history = forms.CharField(
        max_length=20000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    # Shown only once the page has said what a new date of birth or sex changes.
    confirm_clinical_change = forms.BooleanField(
        required=False,
        label="I have checked it against the patient's identity documents: the change is right",
    )

    PATIENT_FIELDS = (
        "given_name",
        "family_name",
        "date_of_birth",
        "sex",
        "phone",
        "email",
        "address",
        "primary_diagnosis",
        "icd10_code",
        "stage",
        "diagnosed_on",
        "ecog",
        "medical_history",
    )

    def clean_icd10_code(self) -> str:
        return str(self.cleaned_data["icd10_code"]).strip().upper()

    def patient_fields(self) -> dict[str, Any]:
        """The cleaned values the services take (form-only fields left out)."""
        return {name: self.cleaned_data[name] for name in self.PATIENT_FIELDS}


class PatientRegisterForm(PatientDetailsForm):
    """A new patient: the details, the MRN and one of the clinician's own care teams.

    The rules (who, which team, duplicates, the MRN in capitals) are the service's:
    patients.services.patient_register, which REST and GraphQL call too."""

    mrn = forms.CharField(
        label="MRN", max_length=20, help_text="Medical record number, unique in this clinic."
    )
    care_team = forms.ModelChoiceField(
        queryset=CareTeam.objects.none(),
        label="Care team",
        error_messages={"invalid_choice": CHOOSE_OWN_TEAM},
    )

    PATIENT_FIELDS = ("mrn", *PatientDetailsForm.PATIENT_FIELDS)
    field_order = ["mrn", *PatientDetailsForm.PATIENT_FIELDS, "care_team"]

    def __init__(self, *args: Any, teams: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["confirm_clinical_change"]  # nothing on record to differ from
        field: forms.ModelChoiceField = self.fields["care_team"]  # type: ignore[assignment]
        field.queryset = teams
        field.help_text = "Its members will see and document the chart; you must be one of them."
        only = list(teams[:2])
        if len(only) == 1:
            # One team: it is the team. Shown chosen; left out, the service takes it.
            field.empty_label = None
            field.initial = only[0].pk
            field.required = False
