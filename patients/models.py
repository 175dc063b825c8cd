"""The patient record, measurements over time, and care teams (whose membership grants access)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

icd10_validator = RegexValidator(
    r"^[A-TV-Z][0-9][0-9AB](\.[0-9A-TV-Z]{1,4})?$",
    "Enter an ICD-10 code such as C18.7 or C50.911.",
)


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

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["family_name", "given_name"]
        constraints = [
            models.CheckConstraint(
                name="patient_ecog_0_4", condition=Q(ecog__isnull=True) | Q(ecog__lte=4)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.family_name.upper()}, {self.given_name} ({self.mrn})"

    def clean(self) -> None:
        super().clean()
        if self.date_of_birth and self.date_of_birth > timezone.localdate():
            raise ValidationError({"date_of_birth": "Date of birth cannot be in the future."})
        if self.date_of_birth and self.date_of_birth.year < 1900:
            raise ValidationError({"date_of_birth": "Date of birth must be after 1900."})

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


class PatientUserObjectPermission(UserObjectPermissionBase):
    """guardian's direct-FK table: deleting a patient removes its permission rows."""

    content_object = models.ForeignKey(Patient, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        abstract = False


class PatientGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Patient, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        abstract = False
