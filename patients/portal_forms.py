"""Input validation for the patient portal (writes go through patients.services)."""

from __future__ import annotations

from typing import Any

from django import forms

from patients.models import SymptomReport

OTHER = "other"
# Common symptoms during chemotherapy, in plain words (PRO-CTCAE-like wording), plus "other".
COMMON_SYMPTOMS: list[tuple[str, str]] = [
    ("", "Choose a symptom…"),
    ("Feeling sick (nausea)", "Feeling sick (nausea)"),
    ("Being sick (vomiting)", "Being sick (vomiting)"),
    ("Loose or watery stools (diarrhoea)", "Loose or watery stools (diarrhoea)"),
    ("Hard stools (constipation)", "Hard stools (constipation)"),
    ("Tiredness", "Tiredness"),
    ("Fever or chills", "Fever or chills"),
    ("Mouth sores", "Mouth sores"),
    ("Pain", "Pain"),
    ("Shortness of breath", "Shortness of breath"),
    ("Numbness or tingling in hands or feet", "Numbness or tingling in hands or feet"),
    ("Skin rash", "Skin rash"),
    ("Loss of appetite", "Loss of appetite"),
    ("Bleeding or bruising", "Bleeding or bruising"),
    (OTHER, "Something else"),
]
SEVERITY_HELP = {
    SymptomReport.Severity.NONE: "I did not have it",
    SymptomReport.Severity.MILD: "I noticed it, but it did not get in the way",
    SymptomReport.Severity.MODERATE: "It got in the way of some things I do",
    SymptomReport.Severity.SEVERE: "It stopped me doing many things",
    SymptomReport.Severity.VERY_SEVERE: "It was as bad as I can imagine",
}


class SymptomReportForm(forms.Form):
    symptom = forms.ChoiceField(
        choices=COMMON_SYMPTOMS,
        label="What symptom do you want to tell us about?",
        error_messages={"required": "Choose a symptom, or “Something else”."},
    )
    symptom_other = forms.CharField(
        required=False,
        max_length=120,
        label="If something else, describe it in a few words",
    )
    severity = forms.TypedChoiceField(
        choices=[(s.value, f"{s.label}: {SEVERITY_HELP[s]}") for s in SymptomReport.Severity],
        coerce=int,
        widget=forms.RadioSelect,
        label="At its worst in the past 7 days, how bad was it?",
        error_messages={
            "required": "Choose how bad it was.",
            "invalid_choice": "Choose one of the five answers.",
        },
    )
    description = forms.CharField(
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Anything else you want your care team to know? (optional)",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("symptom") == OTHER:
            other = (cleaned.get("symptom_other") or "").strip()
            if not other:
                self.add_error("symptom_other", "Describe the symptom in a few words.")
            else:
                cleaned["symptom_text"] = other
        elif cleaned.get("symptom"):
            cleaned["symptom_text"] = cleaned["symptom"]
            if (cleaned.get("symptom_other") or "").strip():
                # Never drop what the patient typed: one report per symptom.
                self.add_error(
                    "symptom_other",
                    "You chose a symptom from the list and also typed one. Choose “Something "
                    "else” to send what you typed, or clear this box.",
                )
        return cleaned
