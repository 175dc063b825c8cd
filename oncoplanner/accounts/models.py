"""The custom user: every person who signs in, with the role that decides what they may do."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


class User(AbstractUser):
    class Role(models.TextChoices):
        ADMINISTRATOR = "administrator", "Administrator"
        CLINICIAN = "clinician", "Clinician"
        PATIENT = "patient", "Patient"

    class Discipline(models.TextChoices):
        ONCOLOGIST = "oncologist", "Oncologist"
        NURSE = "nurse", "Oncology nurse"
        PHARMACIST = "pharmacist", "Pharmacist"

    role = models.CharField(
        max_length=20,
        choices=Role.choices,
        default=Role.PATIENT,
        help_text="Decides which doors are open: admin, clinician pages, or the patient portal.",
    )
    discipline = models.CharField(
        max_length=20,
        choices=Discipline.choices,
        blank=True,
        help_text="Clinicians only: oncologist, oncology nurse or pharmacist.",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="clinician_has_discipline",
                condition=(Q(role="clinician") & ~Q(discipline=""))
                | (~Q(role="clinician") & Q(discipline="")),
                violation_error_message="A clinician needs a discipline; other roles have none.",
            ),
        ]

    def clean(self) -> None:
        super().clean()
        if self.role == self.Role.CLINICIAN and not self.discipline:
            raise ValidationError({"discipline": "A clinician needs a discipline."})
        if self.role != self.Role.CLINICIAN and self.discipline:
            raise ValidationError({"discipline": "Only clinicians have a discipline."})

    @property
    def is_clinician(self) -> bool:
        return self.role == self.Role.CLINICIAN

    @property
    def is_prescriber(self) -> bool:
        """Prescribes chemotherapy: plans a course, sets a dose level, stops a course. Nurses
        give and record, pharmacists verify; neither prescribes here."""
        return self.is_clinician and self.discipline == self.Discipline.ONCOLOGIST

    @property
    def is_pharmacist(self) -> bool:
        """Verifies a cycle's doses before they are prepared (treatments.cycle_doses_verify)."""
        return self.is_clinician and self.discipline == self.Discipline.PHARMACIST

    @property
    def is_administrator(self) -> bool:
        return self.role == self.Role.ADMINISTRATOR

    @property
    def is_patient_user(self) -> bool:
        return self.role == self.Role.PATIENT

    def __str__(self) -> str:
        full = self.get_full_name()
        if self.is_clinician and full:
            return f"{full} ({self.get_discipline_display()})"
        return full or self.username


class ApiToken(models.Model):
    """A personal API token (REST `Authorization: Bearer <token>`).

    Only the SHA-256 of the token is stored: the token itself is shown once, when it is made.
    `prefix` (the first characters) lets its owner tell tokens apart without revealing them.
    Every token expires (at most 90 days, oncoplanner.accounts.api_tokens) and can be revoked
    by its owner or an administrator; an inactive user's tokens are dead.
    """

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80, help_text="What the token is for, e.g. 'ward tablet'.")
    prefix = models.CharField(max_length=12, editable=False, help_text="First characters.")
    token_hash = models.CharField(
        max_length=64, unique=True, editable=False, help_text="SHA-256 of the token (hex)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        "accounts.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
