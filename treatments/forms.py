"""Input validation for the course, cycle and side-effect pages. Rules live in the services;
these forms parse input and name the field that is wrong."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from labs.rules import fmt_decimal
from oncoplanner.dates import day_text
from treatments.models import (
    ChemoCycle,
    Course,
    CtcaeTerm,
    Drug,
    Intent,
    Regimen,
    RegimenDrug,
)
from treatments.selectors import ctcae_term_grades
from treatments.services import cycle_drug_days, regimen_drug_line

DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _no_nul(value: str, field: str) -> str:
    if "\x00" in value:
        raise forms.ValidationError({field: "Remove the NUL character."})
    return value


class RegimenChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        phases = " then ".join(
            f"{p.name} q{p.cycle_length_days}d x {p.planned_cycles}" for p in obj.phases.all()
        )
        return f"{obj.name} v{obj.version}: {phases}"


class CourseStartForm(forms.Form):
    regimen = RegimenChoiceField(
        queryset=Regimen.objects.offered().prefetch_related("phases"),
        empty_label="Choose a regimen",
    )
    start_date = forms.DateField(widget=DATE_WIDGET)
    intent = forms.ChoiceField(choices=Intent.choices)
    # Shown only after the service asked (a start more than COURSE_START_MAX_DAYS_AGO back).
    confirm_past_start = forms.BooleanField(
        required=False, label="The course really began on this date"
    )
    confirm_lifetime_limit = forms.BooleanField(
        required=False, label="Plan it past the lifetime limit: this is the intended plan"
    )
    confirm_allergy = forms.BooleanField(
        required=False, label="Plan it despite the recorded allergy: this is the intended plan"
    )
    confirm_concurrent_course = forms.BooleanField(
        required=False, label="Start it beside the open course: both are intended"
    )
    # Asked with confirm_allergy or confirm_concurrent_course: the prescriber's own words.
    confirm_reason = forms.CharField(
        label="Why (kept on the course)",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    creatinine_mg_dl = forms.DecimalField(
        label="Serum creatinine (mg/dL), for carboplatin (Calvert) only",
        help_text="Leave empty to use the latest result on record.",
        required=False,
        min_value=Decimal("0.1"),
        max_value=Decimal("30"),
        decimal_places=2,
    )


class DoseModificationForm(forms.Form):
    from_cycle_number = forms.IntegerField(label="From cycle", min_value=1, max_value=100)
    percent = forms.DecimalField(
        label="Dose level (% of standard)",
        min_value=Decimal("1"),
        max_value=Decimal("150"),
        decimal_places=1,
    )
    drug = forms.ModelChoiceField(
        queryset=Drug.objects.none(), required=False, empty_label="All drugs"
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    override_reason = forms.CharField(
        label="Override reason (only for a level above 100%)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    # Shown only after the service asked (DoseLevelToConfirm).
    confirm_level = forms.BooleanField(required=False, label="I have checked: record this level")

    def __init__(self, *args: Any, course: Course, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["drug"].queryset = Drug.objects.filter(  # type: ignore[attr-defined]
            regimen_uses__phase__regimen=course.regimen_id
        ).distinct()
        self.fields["from_cycle_number"].max_value = max(course.cycles.count(), 1)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        percent = data.get("percent")
        if percent is not None and percent > 100 and not data.get("override_reason", "").strip():
            # DOMAIN.md 2: never above the regimen's standard dose without an explicit override.
            self.add_error(
                "override_reason",
                "A dose above the regimen's standard dose needs an explicit override reason.",
            )
        return data


class CourseStopForm(forms.Form):
    reason = forms.ChoiceField(choices=[("", "Choose a reason")] + Course.StopReason.choices)
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    stopped_on = forms.DateField(label="Stopped on", widget=DATE_WIDGET)


class CycleActionForm(forms.Form):
    # ChemoCycle.version as the page showed it (services._lock_cycle refuses a changed cycle).
    seen_version = forms.CharField(required=False, widget=forms.HiddenInput)


class CycleGiveForm(CycleActionForm):
    actual_start = forms.DateField(label="Given on (day 1)", widget=DATE_WIDGET)
    override_reason = forms.CharField(
        label="Why give it although readiness says otherwise",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class CycleDelayForm(CycleActionForm):
    days = forms.IntegerField(label="Delay by (days)", required=False, min_value=1, max_value=365)
    new_start = forms.DateField(label="or new start date", required=False, widget=DATE_WIDGET)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors and (data.get("days") is None) == (data.get("new_start") is None):
            self.add_error("days", "Give either a number of days or a new start date.")
        return data


class CycleReasonForm(CycleActionForm):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class AdministrationForm(forms.Form):
    """One drug on one day of the cycle. The dose is computed by the service, never typed."""

    regimen_drug = forms.ChoiceField(label="Drug and day")
    given_at = forms.DateTimeField(
        label="Given at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )
    verified_by = forms.ModelChoiceField(
        label="Second checker", queryset=None, empty_label="Choose a colleague"
    )
    # Typed by the checker themselves (oncoplanner.accounts.cosign): naming a colleague alone
    # would let a check nobody did be recorded.
    checker_password = forms.CharField(
        label="Second checker's password (typed by them)",
        required=False,  # refused by colleague_cosign unless a cosign_token stands for it
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )
    # A co-sign already accepted on this form (oncoplanner.accounts.cosign), kept across a
    # refusal for another reason.
    cosign_token = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)
    label_dose_mg = forms.DecimalField(
        label="Dose on the label (mg)",
        help_text="As printed on the bag or syringe; it must match the dose the pharmacist "
        "verified to dispense (the banded dose, when the pharmacy banded it).",
        min_value=Decimal("0.01"),
        max_digits=10,
        decimal_places=2,
    )
    creatinine_mg_dl = forms.DecimalField(
        label="Serum creatinine (mg/dL), carboplatin only",
        help_text="Leave empty to use the latest result on record.",
        required=False,
        min_value=Decimal("0.1"),
        max_value=Decimal("30"),
        decimal_places=2,
    )
    # Shown only after the service asked (NewCriticalResultToConfirm).
    confirm_new_results = forms.BooleanField(
        required=False, label="Discussed with the oncologist: record it anyway"
    )
    confirm_allergy = forms.BooleanField(
        required=False, label="Given despite the recorded allergy, as the oncologist planned"
    )
    # Shown whenever the cycle has premedication required before one of its drugs
    # (services.PremedicationToConfirm refuses the drug without it).
    confirm_premedication = forms.BooleanField(
        required=False,
        label="The required premedication for this drug was given (see Supportive care)",
    )
    checklist = forms.BooleanField(
        label=(
            "Independently double-checked: drug, dose, the calculation and its inputs, route, "
            "cycle number and day of cycle"
        )
    )
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(
        self,
        *args: Any,
        cycle: ChemoCycle,
        checkers: QuerySet[Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.cycle = cycle
        self.drug_days = cycle_drug_days(cycle=cycle)
        self.fields["regimen_drug"].choices = [("", "Choose drug and day")] + [
            # The regimen line, as the dose table names a drug given twice on a day (the 5-FU
            # bolus and the 46-hour infusion differ in dose, route and duration).
            (f"{rd.pk}:{day}", f"{regimen_drug_line(rd)}, day {day}")
            for rd, day in self.drug_days
        ]
        self.fields["verified_by"].queryset = checkers  # type: ignore[attr-defined]

    def clean_regimen_drug(self) -> tuple[RegimenDrug, int]:
        value = self.cleaned_data["regimen_drug"]
        for rd, day in self.drug_days:
            if value == f"{rd.pk}:{day}":
                return rd, day
        raise forms.ValidationError("Choose a drug of this cycle's phase.")

    def clean_given_at(self) -> dt.datetime:
        value: dt.datetime = self.cleaned_data["given_at"]
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        return value


class DoseVerifyForm(forms.Form):
    note = forms.CharField(
        label="Note (optional)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    # The doses the page showed ("<regimen drug id>:<day>=mg;..."): services.cycle_doses_verify
    # refuses if they changed before the pharmacist pressed the button.
    seen_doses = forms.CharField(max_length=4000, widget=forms.HiddenInput)
    # Shown only after the service asked (AllergyToConfirm).
    confirm_allergy = forms.BooleanField(
        required=False, label="Verified despite the recorded allergy, as the oncologist planned"
    )

    def __init__(
        self,
        *args: Any,
        bandable: Sequence[tuple[str, str]] = (),
        banded_before: Mapping[str, Decimal] | None = None,
        **kwargs: Any,
    ) -> None:
        """`bandable`: (key, label) of each dose the pharmacy may band (its drug has a
        dose-banding tolerance): each gets an optional dispensed-dose field. `banded_before`:
        by key, the banded dose the latest verification dispensed for the same calculated dose
        (PlannedDose.banded_before), the field's starting value only: verifying again must not
        silently drop a banding (an empty box dispenses the calculated dose)."""
        super().__init__(*args, **kwargs)
        self.dispensed_keys: dict[str, str] = {}  # field name -> "<regimen drug id>:<day>"
        for key, label in bandable:
            name = dispensed_field_name(key)
            self.fields[name] = forms.DecimalField(
                label=f"Dispensed (banded) dose of {label}, mg",
                required=False,
                min_value=Decimal("0.1"),
                max_digits=8,
                decimal_places=1,
                # "4220", as the pharmacist typed it, not the stored "4220.0".
                initial=_typed((banded_before or {}).get(key)),
            )
            self.dispensed_keys[name] = key

    def clean_seen_doses(self) -> dict[str, str]:
        pairs = [item.split("=", 1) for item in self.cleaned_data["seen_doses"].split(";") if item]
        if any(len(pair) != 2 for pair in pairs):
            raise forms.ValidationError("Reload the page: the doses shown could not be read.")
        return dict(pairs)

    def dispensed_doses(self) -> dict[str, Decimal]:
        """The banded doses typed, by dose key (services.cycle_doses_verify checks them)."""
        return {
            key: self.cleaned_data[name]
            for name, key in self.dispensed_keys.items()
            if self.cleaned_data.get(name) is not None
        }


def dispensed_field_name(key: str) -> str:
    """DoseVerifyForm's field for the dose "<regimen drug id>:<day>"."""
    return "dispensed_" + key.replace(":", "_")


def doses_shown(doses: dict[str, str]) -> str:
    """DoseVerifyForm.seen_doses for the doses a page shows."""
    return ";".join(f"{key}={mg}" for key, mg in sorted(doses.items()))


class AdministrationStopForm(forms.Form):
    """An infusion stopped part-way: what went in and why (administration_stop)."""

    amount_given_mg = forms.DecimalField(
        label="Amount given (mg)", min_value=Decimal("0"), max_digits=10, decimal_places=2
    )
    reason = forms.CharField(
        label="Why it was stopped",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class SideEffectForm(forms.Form):
    term = forms.ModelChoiceField(
        queryset=CtcaeTerm.objects.all(),
        widget=forms.HiddenInput,
        error_messages={"required": "Choose a CTCAE term.", "invalid_choice": "Choose a term."},
    )
    grade = forms.TypedChoiceField(
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose a grade.",
            "invalid_choice": "This term has no grade %(value)s in its CTCAE version.",
        },
    )
    onset = forms.DateField(widget=DATE_WIDGET)
    cycle = forms.ModelChoiceField(
        label="Related cycle", queryset=None, required=False, empty_label="Not linked to a cycle"
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(
        self, *args: Any, cycles: QuerySet[ChemoCycle], term: CtcaeTerm | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["cycle"].queryset = cycles  # type: ignore[attr-defined]
        self.fields["cycle"].label_from_instance = lambda c: (  # type: ignore[attr-defined]
            f"{c.course.regimen.name} cycle {c.number} ({day_text(c.start)}, {c.get_status_display()})"
        )
        self.term = term
        self.fields["grade"].choices = grade_choices(term) if term else []

    def clean_description(self) -> str:
        return _no_nul(self.cleaned_data["description"], "description")

    def clean_onset(self) -> dt.date:
        onset: dt.date = self.cleaned_data["onset"]
        if onset > timezone.localdate():
            raise forms.ValidationError("Onset cannot be in the future.")
        return onset


def grade_choices(term: CtcaeTerm) -> list[tuple[int, str]]:
    """Only the grades the term has, each with its meaning (CTCAE defines them per term)."""
    described = ctcae_term_grades(term=term) or [(g, "") for g in range(1, term.max_grade + 1)]
    return [(grade, text) for grade, text in described if grade <= term.max_grade]


class RegimenApproveForm(forms.Form):
    """An oncologist's or a pharmacist's approval of a regimen version (regimen_approve)."""

    checked = forms.BooleanField(
        required=False,
        label="I checked every drug, dose, day, route, pre-cycle rule and supportive medication "
        "against the source",
    )
    note = forms.CharField(
        label="Note (optional)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    # Typed again as a signature; wrong ones are paused and logged like a co-sign.
    password = forms.CharField(
        label="Your password",
        strip=False,
        max_length=200,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


def _typed(mg: Decimal | None) -> str | None:
    return None if mg is None else fmt_decimal(mg)
