"""The patient record, measurements over time, and care teams (whose membership grants access)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxValueValidator,
    MinLengthValidator,
    MinValueValidator,
    ProhibitNullCharactersValidator,
    RegexValidator,
)
from django.db import connection, models
from django.db.models import F, Q
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from oncoplanner.dates import day_text

icd10_validator = RegexValidator(
    r"^[A-TV-Z][0-9][0-9AB](\.[0-9A-TV-Z]{1,4})?$",
    "Enter an ICD-10 code such as C18.7 or C50.911.",
)

# A number a patient dials: digits with the usual separators, an optional leading "+", 6 to 15
# digits (E.164 allows 15). No letters, no extension: a patient calling in a crisis must be
# able to tap it and get through.
_PHONE_CHARS = re.compile(r"^\+?[0-9 ()\-.]+$")


def validate_phone_number(value: str) -> None:
    digits = sum(ch.isdigit() for ch in value)
    if not _PHONE_CHARS.match(value) or not 6 <= digits <= 15:
        raise ValidationError(
            "Enter a phone number such as 020 7946 0000 or +44 20 7946 0000 (6 to 15 digits; "
            "spaces, dashes and brackets allowed; no extension).",
            code="invalid_phone",
        )


def tel_uri(number: str) -> str:
    """A `tel:` link for `number`, or "" when it does not look like a phone number.

    RFC 3966 allows no spaces: keep the digits and a leading "+" only.
    """
    number = (number or "").strip()
    digits = "".join(ch for ch in number if ch.isdigit())
    if not 6 <= len(digits) <= 15 or not _PHONE_CHARS.match(number):
        return ""
    return f"tel:{'+' if number.startswith('+') else ''}{digits}"


class CareTeam(models.Model):
    """A group of clinicians who look after a set of patients.

    Membership is the group; guardian object permissions on each patient are granted to the
    group, so adding or removing a member changes access on the next request.
    """

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    group = models.OneToOneField(
        Group, on_delete=models.PROTECT, editable=False, related_name="care_team"
    )
    # What the portal tells a patient to call. Optional here (a new team may not have its line
    # yet); without a 24-hour number the portal sends the patient to 999/112 or the emergency
    # department instead of to a number that is not there.
    phone_daytime = models.CharField(
        "daytime number",
        max_length=30,
        blank=True,
        validators=[validate_phone_number],
        help_text="The team's number in working hours, for questions that can wait. Shown to "
        "the team's patients in the portal.",
    )
    phone_24h = models.CharField(
        "24-hour acute oncology number",
        max_length=30,
        blank=True,
        validators=[validate_phone_number],
        help_text="The 24-hour acute oncology (triage) line: what a patient with a fever or an "
        "urgent symptom is told to call, day or night. Shown in the portal as a tap-to-call link.",
    )

    class Meta:
        ordering = ["name"]
        # Object permission, granted per team to its lead clinicians: they may add and remove
        # members on /patients/care-teams/<id>/. Administrators manage every team by role.
        permissions = [("manage_careteam", "Can add and remove care-team members")]

    def __str__(self) -> str:
        return self.name

    @property
    def phone_daytime_uri(self) -> str:
        return tel_uri(self.phone_daytime)

    @property
    def phone_24h_uri(self) -> str:
        return tel_uri(self.phone_24h)


class Patient(models.Model):
    class Sex(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"
        OTHER = "other", "Other"
        UNKNOWN = "unknown", "Unknown"

    mrn = models.CharField(
        "MRN",
        max_length=20,
        unique=True,
        validators=[
            RegexValidator(
                r"^[A-Z0-9-]{4,20}$", "An MRN is 4-20 capital letters, digits or dashes."
            )
        ],
        help_text="Medical record number, unique in this clinic.",
    )
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100, db_index=True)
    date_of_birth = models.DateField()
    sex = models.CharField(
        max_length=10,
        choices=Sex.choices,
        help_text="Sex for clinical calculations (reference ranges, Cockcroft-Gault).",
    )
    phone = models.CharField(max_length=30, blank=True)
    email = models.EmailField(blank=True)
    address = models.TextField(blank=True)
    medical_history = models.TextField(blank=True, help_text="Relevant past medical history.")
    primary_diagnosis = models.CharField(
        max_length=200, blank=True, help_text="Primary cancer diagnosis."
    )
    icd10_code = models.CharField(
        "ICD-10 code", max_length=10, blank=True, validators=[icd10_validator]
    )
    stage = models.CharField(
        max_length=40, blank=True, help_text="Stage group, e.g. IIIB or pT3N1M0."
    )
    # When the primary cancer was diagnosed (e.g. the date of the biopsy report), not when the
    # chart was typed in: time since diagnosis frames every treatment decision. Optional: a
    # referral may arrive without it.
    diagnosed_on = models.DateField(
        "date of diagnosis",
        null=True,
        blank=True,
        help_text="When the primary cancer was diagnosed, e.g. the date of the biopsy report.",
    )
    ecog = models.PositiveSmallIntegerField(
        "ECOG performance status",
        null=True,
        blank=True,
        validators=[MaxValueValidator(4)],
        help_text="0 (fully active) to 4 (completely disabled).",
    )
    care_team = models.ForeignKey(
        CareTeam, on_delete=models.PROTECT, null=True, blank=True, related_name="patients"
    )
    portal_user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="patient_record",
        help_text="The patient's own portal account, if they have accepted an invitation.",
    )
    is_active = models.BooleanField(default=True)
    # "No known allergies" is a statement someone made, with a date and a name: it is what
    # tells "asked, none" apart from "never asked" (both have no Allergy rows). Recording an
    # allergy clears it (patients.services.allergy_record).
    no_known_allergies_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When a clinician recorded that the patient has no known allergies.",
    )
    no_known_allergies_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["family_name", "given_name"]
        constraints = [
            models.CheckConstraint(
                name="patient_ecog_0_4", condition=Q(ecog__isnull=True) | Q(ecog__lte=4)
            ),
            models.CheckConstraint(
                name="patient_no_known_allergies_complete",
                condition=Q(no_known_allergies_at__isnull=True, no_known_allergies_by__isnull=True)
                | Q(no_known_allergies_at__isnull=False, no_known_allergies_by__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.family_name.upper()}, {self.given_name} ({self.mrn})"

    def clean(self) -> None:
        super().clean()
        errors: dict[str, Any] = {}
        if self.date_of_birth and self.date_of_birth > timezone.localdate():
            errors["date_of_birth"] = "Date of birth cannot be in the future."
        elif self.date_of_birth and self.date_of_birth.year < 1900:
            errors["date_of_birth"] = "Date of birth must be after 1900."
        # Every bad date at once, so a form shows the date of birth's error and this one together.
        if isinstance(self.diagnosed_on, date):
            if self.diagnosed_on > timezone.localdate():  # the clinic's today
                errors["diagnosed_on"] = "Date of diagnosis cannot be in the future."
            elif isinstance(self.date_of_birth, date):
                try:
                    self.require_in_lifetime(
                        self.diagnosed_on, field="diagnosed_on", what="The date of diagnosis"
                    )
                except ValidationError as error:
                    errors.update(error.message_dict)
        if errors:
            raise ValidationError(errors)

    def require_in_lifetime(self, day: date, *, field: str, what: str) -> None:
        """A clinical event dated before the patient was born is a typo (1900 for 2026): refuse
        it by name rather than chart it."""
        if day < self.date_of_birth:
            raise ValidationError(
                {
                    field: f"{what} ({day_text(day)}) is before the patient's date of birth "
                    f"({day_text(self.date_of_birth)})."
                }
            )

    def age_on(self, day: date) -> int:
        dob = self.date_of_birth
        return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))

    @property
    def age(self) -> int:
        return self.age_on(timezone.localdate())


class BodyMeasurement(models.Model):
    """Height and weight on a date: the inputs of every BSA- and weight-based dose."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="measurements")
    measured_on = models.DateField()
    height_cm = models.DecimalField(
        max_digits=5,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("30")), MaxValueValidator(Decimal("260"))],
        help_text="Height in cm (LOINC 8302-2).",
    )
    weight_kg = models.DecimalField(
        max_digits=5,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("1")), MaxValueValidator(Decimal("400"))],
        help_text="Weight in kg (LOINC 29463-7).",
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-measured_on", "-pk"]
        constraints = [
            models.CheckConstraint(
                name="measurement_has_value",
                condition=Q(height_cm__isnull=False) | Q(weight_kg__isnull=False),
                violation_error_message="Enter a height, a weight or both.",
            ),
            models.CheckConstraint(
                name="measurement_positive",
                condition=(Q(height_cm__isnull=True) | Q(height_cm__gt=0))
                & (Q(weight_kg__isnull=True) | Q(weight_kg__gt=0)),
            ),
        ]

    def clean(self) -> None:
        super().clean()
        if self.measured_on and self.measured_on > timezone.localdate():
            raise ValidationError({"measured_on": "A measurement cannot be dated in the future."})

    def __str__(self) -> str:
        return f"{self.measured_on}: {self.height_cm or '-'} cm, {self.weight_kg or '-'} kg"


class CurrentAllergyManager(models.Manager["Allergy"]):
    """Allergies that count: every entry except those marked entered in error.

    The default manager (as labs' CurrentLabResultManager), so the banner, the dashboard,
    REST, GraphQL and `patient.allergies` leave an entry in error out without remembering to;
    `Allergy.all_objects` still reads it (the chart's correction history, admin, FHIR).
    """

    def get_queryset(self) -> models.QuerySet[Allergy]:
        return super().get_queryset().filter(entered_in_error_at__isnull=True)


class Allergy(models.Model):
    """An allergy or intolerance on the chart (FHIR AllergyIntolerance).

    Checked before a chemotherapy cycle is released: taxane and platinum hypersensitivity
    (paclitaxel, carboplatin, oxaliplatin) is common. `drug` links the entry to our formulary
    when the substance is one of our drugs, so pages can match it against a regimen's drugs.
    Severity is the reaction's (FHIR reaction.severity: mild, moderate, severe); a severe
    reaction is exported with criticality "high".
    """

    class Category(models.TextChoices):
        MEDICATION = "medication", "Medication"
        FOOD = "food", "Food"
        ENVIRONMENT = "environment", "Environment"
        OTHER = "other", "Other"

    class Severity(models.TextChoices):
        MILD = "mild", "Mild"
        MODERATE = "moderate", "Moderate"
        SEVERE = "severe", "Severe"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="allergies")
    substance = models.CharField(
        max_length=200,
        validators=[ProhibitNullCharactersValidator()],
        help_text="What the patient reacts to, e.g. Paclitaxel, Penicillin, Latex.",
    )
    drug = models.ForeignKey(
        "treatments.Drug",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="allergies",
        help_text="The formulary drug, when the substance is one of ours.",
    )
    category = models.CharField(
        max_length=20, choices=Category.choices, default=Category.MEDICATION
    )
    reaction = models.CharField(
        max_length=300,
        blank=True,
        validators=[ProhibitNullCharactersValidator()],
        help_text="What happened, e.g. anaphylaxis, urticaria, bronchospasm.",
    )
    severity = models.CharField(
        max_length=10,
        choices=Severity.choices,
        blank=True,
        help_text="Severity of the reaction; blank when not known.",
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)
    # An entry in error is kept, never deleted (as a lab result): who, when and why.
    entered_in_error_at = models.DateTimeField(null=True, blank=True)
    entered_in_error_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    entered_in_error_reason = models.CharField(
        max_length=500, blank=True, validators=[ProhibitNullCharactersValidator()]
    )

    objects = CurrentAllergyManager()
    all_objects = models.Manager()

    class Meta:
        ordering = ["-recorded_at", "-pk"]
        default_manager_name = "objects"
        base_manager_name = "all_objects"
        verbose_name_plural = "allergies"
        constraints = [
            models.CheckConstraint(
                name="allergy_entered_in_error_complete",
                condition=Q(entered_in_error_at__isnull=True, entered_in_error_by__isnull=True)
                | Q(entered_in_error_at__isnull=False, entered_in_error_by__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.substance

    @property
    def is_entered_in_error(self) -> bool:
        return self.entered_in_error_at is not None

    @property
    def summary(self) -> str:
        """ "Paclitaxel (severe: anaphylaxis)": the banner's words."""
        detail = ": ".join(part for part in (self.severity, self.reaction) if part)
        return f"{self.substance} ({detail})" if detail else self.substance


class PatientUserObjectPermission(UserObjectPermissionBase):
    """guardian's direct-FK table: deleting a patient removes its permission rows."""

    content_object = models.ForeignKey(Patient, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        abstract = False


class PatientGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Patient, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        abstract = False


class CareTeamUserObjectPermission(UserObjectPermissionBase):
    """Direct-FK table for per-team grants (manage_careteam): a deleted team leaves no rows."""

    content_object = models.ForeignKey(CareTeam, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        abstract = False


class CareTeamGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(CareTeam, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        abstract = False


EMERGENCY_ACCESS_DURATION = timedelta(minutes=60)
EMERGENCY_REASON_MIN_LENGTH = 20


class EmergencyAccess(models.Model):
    """Break-glass: a clinician outside the care team opens a chart for 60 minutes.

    The written reason is required (SECURITY.md figure 20); while the grant is unexpired the
    access gate lets the clinician in and flags every log row of the request.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="emergency_accesses"
    )
    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="emergency_accesses"
    )
    reason = models.TextField(
        validators=[MinLengthValidator(EMERGENCY_REASON_MIN_LENGTH)],
        help_text=f"Why the chart must be opened now (at least {EMERGENCY_REASON_MIN_LENGTH} characters).",
    )
    granted_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-granted_at", "-pk"]
        verbose_name = "emergency access"
        verbose_name_plural = "emergency accesses"
        indexes = [
            models.Index(
                fields=["user", "patient", "expires_at"], name="emergency_user_patient_exp"
            )
        ]
        constraints = [
            models.CheckConstraint(
                name="emergency_expires_after_grant", condition=Q(expires_at__gt=F("granted_at"))
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} -> patient {self.patient_id} at {self.granted_at:%Y-%m-%d %H:%M}"

    def clean(self) -> None:
        super().clean()
        if len((self.reason or "").strip()) < EMERGENCY_REASON_MIN_LENGTH:
            raise ValidationError(
                {
                    "reason": f"Write the reason for emergency access (at least {EMERGENCY_REASON_MIN_LENGTH} characters)."
                }
            )

    @property
    def is_active(self) -> bool:
        return self.expires_at > timezone.now()


INVITATION_LIFETIME = timedelta(hours=72)


class PatientInvitation(models.Model):
    """A one-time, expiring link that lets a patient create the portal account for their record.

    Only the SHA-256 of the token is stored: a leaked database cannot be turned into sign-ups.
    """

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Invitation for patient {self.patient_id} to {self.email}"

    @property
    def is_usable(self) -> bool:
        return self.accepted_at is None and self.expires_at > timezone.now()


class SymptomReport(models.Model):
    """A patient's own report between visits (PRO-CTCAE-like 5-point scale, past 7 days).

    Basch et al., JAMA 2017: web symptom self-reports with nurse alerts on severe or worsening
    symptoms improved overall survival, so a severe report alerts the care team and stays in
    their inbox until a clinician reviews (and, if needed, grades) it.
    """

    class Severity(models.IntegerChoices):
        NONE = 0, "None"
        MILD = 1, "Mild"
        MODERATE = 2, "Moderate"
        SEVERE = 3, "Severe"
        VERY_SEVERE = 4, "Very severe"

    SEVERE_FROM = 3
    # Red flags during chemotherapy: urgent at any severity. A fever may be neutropenic sepsis,
    # which needs assessment within the hour (NICE NG151, ESMO); breathlessness and bleeding may
    # be a pulmonary embolism or thrombocytopenia. The portal's own wording, by kind:
    RED_FLAG_SYMPTOMS = {
        "Fever or chills": "fever",
        "Shortness of breath": "breath",
        "Bleeding or bruising": "bleeding",
    }
    # The same red flags in the patient's own words ("Something else", or the note): a tester's
    # "High temperature 38.6 and shivering" waited for the next review. Matching on words errs
    # toward alerting (a "temperature was normal" alerts too), the safe side for a fever.
    # Dehydration (UKONS 24-hour triage tool, vomiting and diarrhoea: "red" when the patient
    # cannot keep fluids down or is not passing urine): a patient who "vomited 6 times today,
    # can't keep fluids down" was told to wait for the next review. Bloody diarrhoea or blood
    # in the stool is already a "bleeding" red flag.
    RED_FLAG_WORDS = (
        ("fever", re.compile(r"\b(fever\w*|temperature|temp|shiver\w*|chills?|rigou?rs?)\b", re.I)),
        ("breath", re.compile(r"\b(breath\w*|breathe|breathing|chest pain)\b", re.I)),
        ("bleeding", re.compile(r"(bleed|\bbled\b|blood(?!\s+tests?\b)|bruis)", re.I)),
        (
            "dehydration",
            re.compile(
                r"\b(?:can[’']?t|cannot|can\s+not|could\s*n[’']?t|couldnt|unable\s+to|not\s+able\s+to)"
                r"\s+(?:keep|hold)\s+(?:\w+\s+){0,3}down\b"  # "can't keep fluids/anything down"
                r"|\b(?:can[’']?t|cannot|can\s+not|unable\s+to|not\s+able\s+to)\s+drink\b"
                r"|\bno\s+(?:urine|wee|pee)\b"
                r"|(?:\bnot|n[’']?t)\s+(?:passed|passing|pass|done|had)\s+(?:any\s+)?(?:urine|water|a\s+wee|a\s+pee)\b",
                re.I,
            ),
        ),
    )
    # Six or more episodes a day is UKONS "red" for vomiting (and the edge of it for
    # diarrhoea): "vomited 6 times today". A count alone means nothing ("woke 6 times"), so it
    # counts only in a report about vomiting or diarrhoea.
    GI_WORDS = re.compile(
        r"\b(vomit\w*|sick|throw(?:ing|n)?\s+up|threw\s+up|diarrh\w*|loose|watery|stools?|"
        r"bowels?|poo\w*)\b",
        re.I,
    )
    SIX_OR_MORE_TIMES = re.compile(
        r"\b(?:[6-9]|[1-9][0-9]+|six|seven|eight|nine|ten|eleven|twelve|a\s+dozen)\+?\s*"
        r"(?:x|times)\b",
        re.I,
    )
    RED_FLAG_LABELS = {
        "fever": "fever, possible neutropenic sepsis",
        "breath": "breathlessness or chest pain",
        "bleeding": "bleeding or bruising",
        "dehydration": "dehydration risk",
    }

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="symptom_reports")
    symptom = models.CharField(
        max_length=120, help_text="In the patient's words, or a common term."
    )
    severity = models.PositiveSmallIntegerField(choices=Severity.choices)
    description = models.TextField(blank=True, max_length=4000)
    urgent = models.BooleanField(
        default=False,
        editable=False,
        help_text="Severe or very severe, or a red-flag symptom at any severity: alerts the "
        "care team and waits in their inbox until reviewed. Set when the report is made.",
    )
    recall_period = models.CharField(max_length=40, default="the past 7 days", editable=False)
    reported_at = models.DateTimeField(auto_now_add=True)
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True, max_length=4000)
    side_effect = models.ForeignKey(
        "treatments.SideEffect",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="symptom_reports",
        help_text="The CTCAE-graded side effect a clinician recorded from this report.",
    )

    class Meta:
        ordering = ["-reported_at", "-pk"]
        indexes = [
            # Unreviewed urgent reports: the patient list's attention flag.
            models.Index(
                fields=["patient"],
                name="symptom_open_urgent",
                condition=Q(urgent=True, reviewed_at__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                name="symptom_severity_0_4", condition=Q(severity__gte=0) & Q(severity__lte=4)
            ),
            models.CheckConstraint(
                name="symptom_review_complete",
                condition=Q(reviewed_at__isnull=True, reviewed_by__isnull=True)
                | Q(reviewed_at__isnull=False, reviewed_by__isnull=False),
            ),
        ]

    @property
    def is_severe(self) -> bool:
        return self.severity >= self.SEVERE_FROM

    @property
    def red_flag(self) -> str:
        """The red flag this report raises ("fever", "breath", "bleeding", "dehydration"), or ""."""
        if self.severity == self.Severity.NONE:
            return ""  # "I did not have it"
        return self.red_flag_in(symptom=self.symptom, description=self.description)

    @property
    def is_red_flag(self) -> bool:
        return bool(self.red_flag)

    @property
    def urgent_reasons(self) -> list[str]:
        """Why this report is urgent, in a clinician's words (empty when it is routine).

        The rule that sets `urgent` (urgency_reasons_in), applied to the report as it stands:
        a report flagged under an older rule says so rather than showing no reason.
        """
        reasons = self.urgency_reasons_in(
            symptom=self.symptom, severity=self.severity, description=self.description
        )
        if self.urgent and not reasons:
            return ["flagged urgent when it was reported"]
        return reasons

    @classmethod
    def red_flag_evidence_in(cls, *, symptom: str, description: str = "") -> list[tuple[str, str]]:
        """Every red flag in the report as (kind, the words that raised it), the chosen
        symptom's first; the words are "" when the symptom was picked from the portal's list."""
        found: dict[str, str] = {}
        if symptom in cls.RED_FLAG_SYMPTOMS:
            found[cls.RED_FLAG_SYMPTOMS[symptom]] = ""
        words = f"{symptom}\n{description}"
        for kind, pattern in cls.RED_FLAG_WORDS:
            if kind not in found and (match := pattern.search(words)):
                found[kind] = match.group(0)
        count = cls.SIX_OR_MORE_TIMES.search(words)
        if "dehydration" not in found and count and cls.GI_WORDS.search(words):
            found["dehydration"] = count.group(0)
        return list(found.items())

    @classmethod
    def red_flags_in(cls, *, symptom: str, description: str = "") -> list[str]:
        return [
            kind for kind, _ in cls.red_flag_evidence_in(symptom=symptom, description=description)
        ]

    @classmethod
    def red_flag_in(cls, *, symptom: str, description: str = "") -> str:
        return next(iter(cls.red_flags_in(symptom=symptom, description=description)), "")

    @classmethod
    def urgency_reasons_in(cls, *, symptom: str, severity: int, description: str = "") -> list[str]:
        """Why a report with this content is urgent; empty when it is routine. The one rule
        behind `urgent`, and the reasons the inbox shows beside it."""
        if severity <= cls.Severity.NONE:
            return []  # "I did not have it": no red flag either
        reasons: list[str] = []
        for kind, words in cls.red_flag_evidence_in(symptom=symptom, description=description):
            said = f" (“{' '.join(words.split())}”)" if words else ""
            reasons.append(f"red flag: {cls.RED_FLAG_LABELS[kind]}{said}")
        if severity >= cls.SEVERE_FROM:
            label = dict(cls.Severity.choices).get(severity, str(severity))
            reasons.append(f"reported as {str(label).lower()}")
        return reasons

    @classmethod
    def is_urgent_report(cls, *, symptom: str, severity: int, description: str = "") -> bool:
        return bool(
            cls.urgency_reasons_in(symptom=symptom, severity=severity, description=description)
        )

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Derived, never typed: whichever door made the report, urgency follows its content.
        if isinstance(self.severity, int):
            self.urgent = self.is_urgent_report(
                symptom=self.symptom, severity=self.severity, description=self.description
            )
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.symptom} ({self.get_severity_display()})"


def latest_measurement(
    patient: Patient, column: str, on_date: date | None = None
) -> BodyMeasurement | None:
    """The newest measurement with `column` filled in, taken on or before `on_date` (any date
    when None).

    Height and weight are looked up separately: a clinic weighs at every visit but measures
    height rarely, so the two often come from different rows (and both dates are recorded).
    latest_measurements asked one question: one rule for a dose, a plan and a list of plans.
    """
    key = (patient.pk, column, on_date or date.max)
    return latest_measurements([key])[key]


# The columns latest_measurements answers for (the inputs of a dose).
MEASURED_COLUMNS = ("height_cm", "weight_kg")

MeasurementKey = tuple[int, str, date]  # (patient id, column, on or before this day)


def latest_measurements(
    wanted: Iterable[MeasurementKey],
) -> dict[MeasurementKey, BodyMeasurement | None]:
    """latest_measurement of each (patient id, column, day) in `wanted`, in one query, however
    many: the newest row with `column` filled in, taken on or before the day (the latest
    measured_on, then the latest entered of that day); None where there is none.

    One correlated "latest" subquery per question, as labs.services._latest_results: reading
    every measurement of a list's patients instead would read their whole history (a weight at
    every visit) to keep one or two rows each. The SQL is written out because the ORM cannot
    select from a list of values; PostgreSQL and SQLite both run it, and each VALUES row
    carries its question's index, so every row read answers a known question.
    """
    keys = list(dict.fromkeys(wanted))
    found: dict[MeasurementKey, BodyMeasurement | None] = dict.fromkeys(keys)
    if not keys:
        return found
    quote = connection.ops.quote_name
    table = quote(BodyMeasurement._meta.db_table)
    parts: list[str] = []
    params: list[object] = []
    for column in sorted({column for _, column, _ in keys}):
        if column not in MEASURED_COLUMNS:
            raise ValueError(f"not a measurement column: {column!r}")
        asked = [(index, key) for index, key in enumerate(keys) if key[1] == column]
        # Identifiers from _meta and the fixed list above; every value is bound.
        parts.append(
            "SELECT w.column1 AS asked, (SELECT m.id FROM "  # noqa: S608 - fixed identifiers
            f"{table} m WHERE m.patient_id = w.column2 AND m.measured_on <= w.column3"
            f" AND m.{quote(column)} IS NOT NULL ORDER BY m.measured_on DESC, m.id DESC"
            f" LIMIT 1) AS found FROM (VALUES {', '.join(['(%s, %s, %s)'] * len(asked))}) AS w"
        )
        for index, (patient_id, _, on_date) in asked:
            params += [index, patient_id, connection.ops.adapt_datefield_value(on_date)]
    sql = (
        f"SELECT m.*, latest.asked FROM ({' UNION ALL '.join(parts)}) AS latest"  # noqa: S608
        f" JOIN {table} m ON m.id = latest.found"
    )
    for row in BodyMeasurement.objects.raw(sql, params):  # noqa: S611
        found[keys[row.asked]] = row  # type: ignore[attr-defined]  # the SELECT's extra column
    return found


class DataVersion(models.Model):
    """A token that changes with every write to the records a chart shows.

    One row per patient ("patient:<id>", changed by any write to that patient's records) and one
    for everything shared ("reference": regimens, the lab catalogue, care teams, users...).
    Written in the writer's own transaction, so a reader that sees the new data sees the new
    token too. patients.chart_cache keys rendered charts by these tokens.
    """

    key = models.CharField(max_length=40, primary_key=True)
    token = models.UUIDField()

    def __str__(self) -> str:
        return f"{self.key}: {self.token}"
