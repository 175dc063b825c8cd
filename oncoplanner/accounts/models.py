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
    sact_prescriber = models.BooleanField(
        "Non-medical SACT prescriber",
        default=False,
        help_text="Nurse and pharmacist independent prescribers authorised by the trust to "
        "prescribe chemotherapy (SACT) cycles after an oncologist's decision to treat: dose "
        "levels, delaying, cancelling and releasing held cycles. Starting and stopping a course "
        "stay with the oncologist.",
    )

    # The disciplines that may hold sact_prescriber (BOPA/UKONS guidance on non-medical
    # prescribing of SACT): an oncologist prescribes anyway.
    NON_MEDICAL_PRESCRIBER_DISCIPLINES = (Discipline.NURSE, Discipline.PHARMACIST)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="clinician_has_discipline",
                condition=(Q(role="clinician") & ~Q(discipline=""))
                | (~Q(role="clinician") & Q(discipline="")),
                violation_error_message="A clinician needs a discipline; other roles have none.",
            ),
            models.CheckConstraint(
                name="sact_prescriber_is_nurse_or_pharmacist",
                condition=Q(sact_prescriber=False)
                | Q(role="clinician", discipline__in=["nurse", "pharmacist"]),
                violation_error_message="Only a nurse or a pharmacist clinician is a non-medical "
                "SACT prescriber.",
            ),
        ]

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        if self.role == self.Role.CLINICIAN and not self.discipline:
            errors["discipline"] = "A clinician needs a discipline."
        if self.role != self.Role.CLINICIAN and self.discipline:
            errors["discipline"] = "Only clinicians have a discipline."
        if self.sact_prescriber and not (
            self.is_clinician and self.discipline in self.NON_MEDICAL_PRESCRIBER_DISCIPLINES
        ):
            errors["sact_prescriber"] = (
                "An oncologist prescribes anyway: non-medical SACT prescriber is for nurse and "
                "pharmacist independent prescribers."
                if self.is_clinician and self.discipline == self.Discipline.ONCOLOGIST
                else "Only a nurse or a pharmacist clinician can be a non-medical SACT "
                "prescriber: patients and administrators do not prescribe."
            )
        if errors:
            raise ValidationError(errors)

    @property
    def is_clinician(self) -> bool:
        return self.role == self.Role.CLINICIAN

    @property
    def is_oncologist(self) -> bool:
        """A clinician whose discipline is oncologist: who they are, not what they may do (the
        oncologist's signature on a regimen version, treatments.regimen_versions)."""
        return self.is_clinician and self.discipline == self.Discipline.ONCOLOGIST

    @property
    def may_decide_to_treat(self) -> bool:
        """Makes the decision to treat and to end treatment: starts a course (course_start),
        stops one (course_stop), and gives a cycle against its pre-cycle check. A consultant
        oncologist's decision only; non-medical prescribers prescribe the cycles after it
        (may_prescribe_cycles)."""
        return self.is_oncologist

    @property
    def may_prescribe_cycles(self) -> bool:
        """Prescribes the cycles of a course an oncologist decided to start: sets a dose level
        (dose_modification_record), cancels a cycle, and releases a held cycle (gives or
        delays it). An oncologist, or a nurse or pharmacist the trust authorised as a
        non-medical SACT prescriber (sact_prescriber). Nurses without it give and record,
        pharmacists without it verify."""
        if self.is_oncologist:
            return True
        return (
            self.is_clinician
            and self.sact_prescriber
            and self.discipline in self.NON_MEDICAL_PRESCRIBER_DISCIPLINES
        )

    @property
    def is_pharmacist(self) -> bool:
        """Verifies a cycle's doses before they are prepared (treatments.cycle_doses_verify),
        except the doses of a dose level they set themselves as a non-medical prescriber."""
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
