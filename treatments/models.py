"""Regimen library, courses, cycles, administrations, dose changes and CTCAE side effects.

DOMAIN.md section 2: regimen -> course -> cycle -> administration. Every threshold here is
data with provenance, never a constant buried in code.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from oncoplanner.dates import day_text
from patients.models import Patient
from treatments.schedule import OPEN, Closure, day_closure

# A banded dose is never further than this from the calculated one, whatever a pharmacy sets.
BANDING_TOLERANCE_MIN = Decimal("0.1")
BANDING_TOLERANCE_MAX = Decimal("10")
TENTH_MG = Decimal("0.1")  # doses are given to 0.1 mg (treatments.dosing.round_mg)


def mg_text(value: Decimal) -> str:
    """A dose as the record says it: 780.0 -> "780", 772.4 -> "772.4"."""
    return f"{value.quantize(TENTH_MG, rounding=ROUND_HALF_UP).normalize():f}"


def banding_percent(*, calculated_mg: Decimal, dispensed_mg: Decimal) -> Decimal:
    """How far a dispensed (banded) dose is from the calculated one, signed, to 0.1%."""
    change = (dispensed_mg - calculated_mg) / calculated_mg * 100
    return change.quantize(TENTH_MG, rounding=ROUND_HALF_UP)


DAYS_PATTERN = re.compile(r"^\d{1,2}(-\d{1,2})?(,\d{1,2}(-\d{1,2})?)*$")


def parse_days(days: str) -> list[int]:
    """'1' -> [1]; '1-5' -> [1..5]; '1,8' -> [1, 8]. Raises ValueError on anything else."""
    if not DAYS_PATTERN.match(days):
        raise ValueError(days)
    result: list[int] = []
    for part in days.split(","):
        first, _, last = part.partition("-")
        start, end = int(first), int(last or first)
        if start < 1 or end < start:
            raise ValueError(days)
        result.extend(range(start, end + 1))
    return sorted(set(result))


# --- A regimen version that a course uses is frozen (DOMAIN.md 2) ---------------------------
# "A course keeps the version it started on": its cycles read their drugs and doses from the
# regimen rows, so changing those rows in place would silently change every course on them.
# The guard sits in save()/delete() (and clean(), for a form error) so that every door (admin,
# shell, API, a future service) is refused alike; QuerySet.update()/delete() skip it, like
# every model method, and are not used on these tables.


NEW_VERSION_HINT = (
    "Create a new version (admin: Regimens, action 'Create a new version') and change that one "
    "instead."
)


def regimen_frozen_message(regimen: Regimen, course_count: int) -> str:
    if not course_count:
        # Approved (or being approved): what the oncologist and the pharmacist checked is what
        # is prescribed, so the version cannot change under their signatures.
        return (
            f"{regimen} has been approved for prescribing (or one approval of two is in), so "
            f"this version can no longer be changed. {NEW_VERSION_HINT}"
        )
    courses = f"{course_count} course{'s' if course_count != 1 else ''}"
    return (
        f"{regimen} is used by {courses}, and a course keeps the regimen version it started "
        f"on, so this version can no longer be changed. {NEW_VERSION_HINT}"
    )


def regimen_refuse_if_frozen(regimens: models.QuerySet[Regimen]) -> None:
    """Raise ValidationError if any of `regimens` is used by a course, approved, or has one
    approval of its two."""
    frozen = (
        regimens.annotate(
            course_count=models.Count("courses", distinct=True),
            approval_count=models.Count("approvals", distinct=True),
        )
        .filter(Q(course_count__gt=0) | Q(approval_count__gt=0) | Q(approved_at__isnull=False))
        .first()
    )
    if frozen is not None:
        raise ValidationError(regimen_frozen_message(frozen, frozen.course_count))


def stored_if_changed(
    instance: models.Model, *, ignore: tuple[str, ...] = ()
) -> dict[str, Any] | None:
    """The stored row of `instance` if a concrete field (except `ignore`) differs from it;
    {} for an instance not stored yet; None when nothing changed (a no-op save is allowed)."""
    fields = [f for f in instance._meta.concrete_fields if f.attname not in ignore]
    stored = None
    if instance.pk is not None:
        stored = (
            type(instance)
            ._base_manager.filter(pk=instance.pk)
            .values(*(f.attname for f in fields))
            .first()
        )
    if stored is None:
        return {}
    for field in fields:
        try:
            value = field.to_python(getattr(instance, field.attname))
        except ValidationError:
            return stored  # an invalid value is a change; clean() reports the value itself
        if value != stored[field.attname]:
            return stored
    return None


class RefusesChangeWhenInUse(models.Model):
    """clean() and save() ask refuse_change_if_in_use() first (a regimen version and its rows)."""

    class Meta:
        abstract = True

    def refuse_change_if_in_use(self) -> None:
        raise NotImplementedError

    def clean(self) -> None:
        super().clean()
        self.refuse_change_if_in_use()

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.refuse_change_if_in_use()
        super().save(*args, **kwargs)


class PartOfRegimenVersion(RefusesChangeWhenInUse):
    """A row of a regimen version (a phase, a drug, a pre-cycle rule): frozen once a course uses
    its regimen. `regimen_link` names the column that places the row in a regimen: a change,
    a move (old and new regimen both) or a deletion is refused when either is in use."""

    regimen_link = "regimen_id"  # or "phase_id" (a drug sits in a phase)

    class Meta:
        abstract = True

    def refuse_change_if_in_use(self, *, deleting: bool = False) -> None:
        stored = stored_if_changed(self)
        if stored is None and not deleting:
            return
        ids = {getattr(self, self.regimen_link), (stored or {}).get(self.regimen_link)} - {None}
        if self.regimen_link == "phase_id":
            regimen_refuse_if_frozen(Regimen.objects.filter(phases__in=ids))
        else:
            regimen_refuse_if_frozen(Regimen.objects.filter(pk__in=ids))

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        self.refuse_change_if_in_use(deleting=True)
        return super().delete(*args, **kwargs)


class Drug(models.Model):
    """A drug in the formulary, with an optional lifetime cumulative limit (anthracyclines)."""

    name = models.CharField(max_length=100, unique=True)
    drug_class = models.CharField(
        max_length=60, blank=True, help_text="E.g. anthracycline, platinum."
    )
    lifetime_limit_mg_m2 = models.DecimalField(
        "lifetime limit (mg/m²)",
        max_digits=8,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.1"))],
        help_text="Cumulative lifetime dose limit in mg/m², if one applies.",
    )
    limit_warning_fraction = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.80"),
        validators=[MinValueValidator(Decimal("0.10")), MaxValueValidator(Decimal("1.00"))],
        help_text="Warn when the cumulative dose reaches this fraction of the limit.",
    )
    limit_source = models.CharField(
        max_length=200, blank=True, help_text="Where the limit comes from."
    )
    # Dose banding: many chemotherapy pharmacies dispense a calculated dose as the nearest
    # standard dose (a pre-filled bag or syringe) when that is close enough. Which drugs they
    # band, and how far, is each pharmacy's choice; the bands themselves are in the pharmacy's
    # own table (the pharmacist enters the banded dose), never here.
    dose_banding_tolerance_percent = models.DecimalField(
        "dose-banding tolerance (%)",
        max_digits=3,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[
            MinValueValidator(BANDING_TOLERANCE_MIN),
            MaxValueValidator(BANDING_TOLERANCE_MAX),
        ],
        help_text="Blank: never banded, always dispensed at the calculated dose. Otherwise the "
        "pharmacist may dispense a standard (banded) dose from the pharmacy's own band table "
        "within this percent of the calculated dose (NHS England's dose-banding principle: at "
        f"most 5%; {BANDING_TOLERANCE_MAX}% at most here). Set by each pharmacy.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                name="drug_banding_tolerance_range",
                condition=Q(dose_banding_tolerance_percent__isnull=True)
                | Q(
                    dose_banding_tolerance_percent__gte=BANDING_TOLERANCE_MIN,
                    dose_banding_tolerance_percent__lte=BANDING_TOLERANCE_MAX,
                ),
                violation_error_message=(
                    f"A dose-banding tolerance is {BANDING_TOLERANCE_MIN}% to "
                    f"{BANDING_TOLERANCE_MAX}%, or blank."
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def dose_band(self, calculated_mg: Decimal) -> tuple[Decimal, Decimal] | None:
        """The lowest and highest dose (0.1 mg) the pharmacy may dispense for `calculated_mg`:
        within the tolerance, rounded inwards so that both ends are allowed; None when the
        drug is not banded."""
        tolerance = self.dose_banding_tolerance_percent
        if tolerance is None:
            return None
        spread = calculated_mg * Decimal(tolerance) / Decimal(100)
        return (
            (calculated_mg - spread).quantize(TENTH_MG, rounding=ROUND_CEILING),
            (calculated_mg + spread).quantize(TENTH_MG, rounding=ROUND_FLOOR),
        )


class Intent(models.TextChoices):
    """mCODE treatment intent (SNOMED CT codes in `INTENT_SNOMED`)."""

    CURATIVE = "curative", "Curative"
    PALLIATIVE = "palliative", "Palliative"
    SUPPORTIVE = "supportive", "Supportive"
    ADJUVANT = "adjuvant", "Adjuvant (curative)"
    NEOADJUVANT = "neoadjuvant", "Neoadjuvant (curative)"


INTENT_SNOMED = {
    "curative": "373808002",
    "adjuvant": "373808002",
    "neoadjuvant": "373808002",
    "palliative": "363676003",
    "supportive": "399707004",
}


class RegimenQuerySet(models.QuerySet["Regimen"]):
    def offered(self) -> RegimenQuerySet:
        """The versions a course may start on: approved, and not retired."""
        return self.filter(is_active=True, approved_at__isnull=False)


class Regimen(RefusesChangeWhenInUse):
    """A reusable, versioned treatment template. A course keeps the version it started on."""

    name = models.CharField(max_length=100, help_text="E.g. mFOLFOX6.")
    version = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    intent = models.CharField(max_length=20, choices=Intent.choices, default=Intent.CURATIVE)
    indication = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    source = models.CharField(
        max_length=300, blank=True, help_text="Published source of the doses."
    )
    # One label everywhere (the admin list said "Is active", the form "Offered for new courses").
    is_active = models.BooleanField(
        "offered for new courses",
        default=False,
        help_text="Tick once an oncologist and a pharmacist have approved this version. It "
        "retires the other offered versions of its name (their courses keep them).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        help_text="Who built this version: two other people approve it.",
    )
    # ASCO/ONS chemotherapy safety standards: an order template is reviewed and approved by a
    # physician and a pharmacist before it is used. Set when the second of the two approvals
    # (RegimenApproval) lands; the migration that added it set it on the library then in use.
    approved_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = RegimenQuerySet.as_manager()

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="regimen_name_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def offered(self) -> bool:
        return self.is_active and self.approved_at is not None

    # Whether a version is offered for new courses changes no course: it stays editable, so
    # an old version can be retired once its successor is ready. approved_at is set by the
    # approval itself (treatments.regimen_versions.regimen_approve).
    FROZEN_IGNORES = ("is_active", "approved_at")

    def refuse_change_if_in_use(self) -> None:
        stored = stored_if_changed(self, ignore=self.FROZEN_IGNORES)
        if stored:  # a new regimen has no course yet
            regimen_refuse_if_frozen(Regimen.objects.filter(pk=self.pk))

    def clean(self) -> None:
        super().clean()
        # Offering an unapproved version would also retire the approved one it replaces
        # (regimen_retire_other_versions), leaving nothing safe to prescribe.
        if self.is_active and self.approved_at is None:
            raise ValidationError(
                {
                    "is_active": "A version is offered for new courses only once an oncologist "
                    "and a pharmacist have approved it (Regimens page in the clinic); leave "
                    "this unticked until then."
                }
            )


class RegimenApproval(models.Model):
    """An oncologist's or a pharmacist's approval of a regimen version for prescribing: one of
    each, two different people, neither of them its author. Append-only."""

    class Discipline(models.TextChoices):
        ONCOLOGIST = "oncologist", "Oncologist"
        PHARMACIST = "pharmacist", "Pharmacist"

    regimen = models.ForeignKey(Regimen, on_delete=models.PROTECT, related_name="approvals")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    discipline = models.CharField(max_length=20, choices=Discipline.choices)
    approved_at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True, max_length=2000)

    class Meta:
        ordering = ["approved_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["regimen", "discipline"], name="regimen_approval_one_per_discipline"
            ),
            models.UniqueConstraint(
                fields=["regimen", "approved_by"], name="regimen_approval_two_people"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.regimen} approved by {self.approved_by} ({self.get_discipline_display()})"


class RegimenPhase(PartOfRegimenVersion):
    """One phase of a regimen (AC->T has two), run in `order`."""

    regimen = models.ForeignKey(Regimen, on_delete=models.CASCADE, related_name="phases")
    order = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    name = models.CharField(max_length=100)
    cycle_length_days = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    planned_cycles = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(100)]
    )

    class Meta:
        ordering = ["regimen", "order"]
        constraints = [
            models.UniqueConstraint(fields=["regimen", "order"], name="phase_order_unique"),
            models.CheckConstraint(
                name="phase_cycle_length_positive", condition=Q(cycle_length_days__gte=1)
            ),
            models.CheckConstraint(
                name="phase_planned_cycles_positive", condition=Q(planned_cycles__gte=1)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.regimen}: {self.name} (q{self.cycle_length_days}d x {self.planned_cycles})"


class DoseBasis(models.TextChoices):
    MG_M2 = "mg/m2", "mg/m² (BSA)"
    MG_KG = "mg/kg", "mg/kg"
    AUC = "auc", "AUC (Calvert)"
    FLAT = "mg", "flat mg"


class Route(models.TextChoices):
    IV = "IV", "Intravenous"
    IV_BOLUS = "IV bolus", "IV bolus"
    IV_INFUSION = "IV infusion", "IV continuous infusion"
    PO = "PO", "By mouth"
    SC = "SC", "Subcutaneous"
    IM = "IM", "Intramuscular"
    IT = "IT", "Intrathecal"


class RegimenDrug(PartOfRegimenVersion):
    """A drug within a phase: the standard dose, its basis, route and days of the cycle."""

    regimen_link = "phase_id"

    phase = models.ForeignKey(RegimenPhase, on_delete=models.CASCADE, related_name="drugs")
    drug = models.ForeignKey(Drug, on_delete=models.PROTECT, related_name="regimen_uses")
    dose = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="Standard dose in the unit of the dose basis (AUC target for carboplatin).",
    )
    dose_basis = models.CharField(max_length=10, choices=DoseBasis.choices)
    route = models.CharField(max_length=20, choices=Route.choices)
    days = models.CharField(
        max_length=40, default="1", help_text="Days of the cycle: 1, 1-5 or 1,8."
    )
    duration = models.CharField(max_length=60, blank=True, help_text="E.g. over 2 h, over 46 h.")
    max_dose_mg = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Cap per administration in mg (e.g. vincristine 2 mg), if any.",
    )
    order = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["phase", "order", "pk"]
        constraints = [
            models.CheckConstraint(name="regimen_drug_dose_positive", condition=Q(dose__gt=0)),
        ]

    def clean(self) -> None:
        super().clean()
        try:
            days = parse_days(self.days)
        except ValueError:
            raise ValidationError({"days": "Days look like 1, 1-5 or 1,8."}) from None
        if self.phase_id and days[-1] > self.phase.cycle_length_days:
            raise ValidationError({"days": "A day is beyond the cycle length."})
        self.refuse_never_route()

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.refuse_never_route()  # every door, not only forms
        super().save(*args, **kwargs)

    def refuse_never_route(self) -> None:
        if self.route == Route.IT and self.drug_id and is_vinca_alkaloid(self.drug):
            # WHO and ISMP: a vinca alkaloid given intrathecally is fatal; it is never ordered.
            raise ValidationError(
                {
                    "route": f"{self.drug} is a vinca alkaloid: fatal if given intrathecally. "
                    "It is given intravenously only."
                }
            )

    def __str__(self) -> str:
        return f"{self.drug} {self.dose} {self.dose_basis} {self.route} d{self.days}"


VINCA_ALKALOIDS = ("vincristine", "vinblastine", "vinorelbine", "vindesine", "vinflunine")


def is_vinca_alkaloid(drug: Drug) -> bool:
    return "vinca" in drug.drug_class.lower() or drug.name.lower().startswith(VINCA_ALKALOIDS)


class SupportiveMedication(PartOfRegimenVersion):
    """Supportive care that goes with a regimen version: premedication, antiemetics, growth
    factor, hydration. Part of the version: frozen with it like its drugs (a course keeps the
    version it started on, supportive care included; a change is a new version).

    Written as the order set writes it (dose and route as text, "20 mg PO"): these are not
    dosed by the app. A row `required_before` a drug of the version (paclitaxel's
    premedication against hypersensitivity) must be confirmed as given by the nurse before
    that drug is recorded (treatments.services.administration_record). Every row names its
    source (a guideline or the drug's label), like the pre-cycle rules.
    """

    class Category(models.TextChoices):
        PREMEDICATION = "premedication", "Premedication"
        ANTIEMETIC = "antiemetic", "Antiemetic"
        GROWTH_FACTOR = "growth_factor", "Growth factor"
        HYDRATION = "hydration", "Hydration"
        OTHER = "other", "Other"

    regimen = models.ForeignKey(
        Regimen, on_delete=models.CASCADE, related_name="supportive_medications"
    )
    phase = models.ForeignKey(
        RegimenPhase,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="supportive_medications",
        help_text="The phase it goes with; blank: every phase (set from the drug below when "
        "required before one).",
    )
    category = models.CharField(max_length=20, choices=Category.choices)
    medication = models.CharField(
        max_length=120, help_text="Name, or class when the agent is chosen locally."
    )
    dose_route = models.CharField(
        "dose and route",
        max_length=120,
        blank=True,
        help_text='As written, e.g. "20 mg PO"; blank when the local protocol sets it.',
    )
    timing = models.CharField(
        max_length=200, blank=True, help_text='E.g. "12 h and 6 h before paclitaxel".'
    )
    days = models.CharField(
        max_length=40, default="1", help_text="Days of the cycle: 1, 1-5, 1,8 or 3-10."
    )
    # RESTRICT, not PROTECT: deleting the drug alone is refused (the premedication would
    # silently stop being asked for), deleting its phase or version deletes both.
    required_before = models.ForeignKey(
        RegimenDrug,
        on_delete=models.RESTRICT,
        null=True,
        blank=True,
        related_name="required_supportive_medications",
        help_text="A drug of this version that is not given until this has been: the nurse "
        "confirms it before recording the drug.",
    )
    source = models.CharField(
        max_length=300,
        help_text="Guideline or label it comes from.",
        error_messages={"blank": "Say where this comes from (a guideline or the drug's label)."},
    )
    order = models.PositiveSmallIntegerField(default=1)

    class Meta:
        verbose_name = "supportive medication"
        ordering = ["regimen", "phase__order", "order", "pk"]

    def __str__(self) -> str:
        dose = f" {self.dose_route}" if self.dose_route else ""
        return f"{self.get_category_display()}: {self.medication}{dose} d{self.days}"

    @property
    def day_list(self) -> list[int]:
        try:
            return parse_days(self.days)
        except ValueError:
            return []

    def clean(self) -> None:
        super().clean()  # refused first when the version is frozen
        errors: dict[str, str] = {}
        if not self.medication.strip():
            errors["medication"] = "Name the medication (or its class)."
        if not self.source.strip():
            errors["source"] = "Say where this comes from (a guideline or the drug's label)."
        try:
            days = parse_days(self.days)
        except ValueError:
            errors["days"] = "Days look like 1, 1-5 or 1,8."
            days = []
        rd = self.required_before if self.required_before_id else None
        if rd is not None and self.regimen_id and rd.phase.regimen_id != self.regimen_id:
            errors["required_before"] = f"{rd.drug} is not a drug of this regimen version."
        elif rd is not None:
            if self.phase_id is None:
                self.phase = rd.phase
            elif self.phase_id != rd.phase_id:
                errors["required_before"] = (
                    f"{rd.drug} is given in {rd.phase.name}, not in {self.phase.name}."
                )
            missing = sorted(set(days) - set(parse_days(rd.days)))
            if days and missing and "required_before" not in errors:
                errors["days"] = (
                    f"Required before {rd.drug}, which is given on day(s) {rd.days}: not on "
                    f"day {', '.join(map(str, missing))}."
                )
        if self.phase_id and self.regimen_id and self.phase.regimen_id != self.regimen_id:
            errors["phase"] = "That phase belongs to another regimen version."
        elif days and self.regimen_id:
            # For every phase (no phase): within the shortest cycle of the version.
            phases = [self.phase] if self.phase_id else list(self.regimen.phases.all())
            length = min((p.cycle_length_days for p in phases), default=None)
            if length is not None and days[-1] > length:
                errors.setdefault("days", f"A day is beyond the cycle length ({length} days).")
        if errors:
            raise ValidationError(errors)


class Course(models.Model):
    """A patient on one regimen version."""

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        ACTIVE = "active", "Active"
        COMPLETED = "completed", "Completed"
        STOPPED = "stopped", "Stopped"

    class StopReason(models.TextChoices):
        """mCODE termination reasons (SNOMED CT), plus a few everyday ones."""

        NOT_TOLERATED = "407563006", "Treatment not tolerated"
        NO_RESPONSE = "266721009", "No response to treatment"
        REFUSED = "105480006", "Refusal of treatment by patient"
        PROGRESSION = "progression", "Disease progression"
        DEATH = "death", "Patient died"
        OTHER = "other", "Other"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="courses")
    regimen = models.ForeignKey(Regimen, on_delete=models.PROTECT, related_name="courses")
    start_date = models.DateField()
    intent = models.CharField(max_length=20, choices=Intent.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLANNED)
    stop_reason = models.CharField(max_length=20, choices=StopReason.choices, blank=True)
    stop_note = models.TextField(blank=True)
    stopped_on = models.DateField(null=True, blank=True)
    stopped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    # The warnings the user confirmed to go ahead (services._confirmed), word for word.
    confirmed_warnings = models.JSONField(default=list, blank=True, editable=False)

    class Meta:
        ordering = ["-start_date", "-pk"]
        constraints = [
            # Two open courses of the same regimen for one patient is a double entry, and would
            # double every dose; the service gives the field-named message first.
            models.UniqueConstraint(
                fields=["patient", "regimen"],
                condition=Q(status__in=["planned", "active"]),
                name="course_one_open_per_patient_regimen",
                violation_error_message="This patient already has an open course of this regimen.",
            ),
            models.CheckConstraint(
                name="course_stopped_has_reason",
                condition=~Q(status="stopped") | (~Q(stop_reason="") & Q(stopped_on__isnull=False)),
                violation_error_message="A stopped course needs a reason and a date.",
            ),
            # No "stop after start" constraint: a course planned but not begun (planned in
            # error, or no longer wanted) stops before its start date. services.course_stop
            # allows that only for such a course, as of today.
        ]

    @property
    def stopped_before_it_began(self) -> bool:
        """Stopped before its start date: planned in error or no longer wanted; nothing given."""
        return self.stopped_on is not None and self.stopped_on < self.start_date

    def __str__(self) -> str:
        return f"{self.regimen} from {self.start_date}"


class ChemoCycle(models.Model):
    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        READY = "ready", "Ready"
        GIVEN = "given", "Given"
        DELAYED = "delayed", "Delayed"
        HELD = "held", "Held"
        CANCELLED = "cancelled", "Cancelled"

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="cycles")
    phase = models.ForeignKey(RegimenPhase, on_delete=models.PROTECT, related_name="+")
    number = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    planned_start = models.DateField()
    actual_start = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLANNED)
    reason = models.TextField(
        blank=True, help_text="Why the cycle was delayed, held, cancelled or reduced."
    )
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who last gave, delayed, held or cancelled the cycle.",
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # Given although the pre-cycle check said otherwise: what it said then, and why it was
    # given anyway (a physician's decision, kept with the cycle).
    given_despite = models.CharField(max_length=20, blank=True)
    override_reason = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Counts saves (see `version`); a clock can repeat a timestamp, a counter cannot.
    row_version = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["course", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["course", "number"], name="cycle_number_unique_in_course"
            ),
            models.CheckConstraint(
                name="cycle_end_after_start",
                condition=Q(end_date__isnull=True)
                | Q(end_date__gte=F("actual_start"))
                | (Q(actual_start__isnull=True) & Q(end_date__gte=F("planned_start"))),
                violation_error_message="A cycle cannot end before it starts.",
            ),
            models.CheckConstraint(
                name="cycle_status_needs_reason",
                condition=~Q(status__in=["delayed", "held", "cancelled"]) | ~Q(reason=""),
                violation_error_message="A delay, hold or cancellation needs a reason.",
            ),
        ]

    @property
    def given_despite_label(self) -> str:
        from labs.rules import PreCycleOutcome  # labs depends on treatments, not the reverse

        return PreCycleOutcome.LABELS.get(self.given_despite, self.given_despite)

    def __str__(self) -> str:
        return f"Cycle {self.number} ({self.get_status_display()})"

    @property
    def version(self) -> str:
        """Changes with every save: a form carries the version it was shown, so that an action
        taken on a cycle someone else (or a double click) changed meanwhile is refused."""
        return str(self.row_version)

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.row_version += 1
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "row_version"}
        super().save(*args, **kwargs)

    @property
    def patient(self) -> Patient:
        return self.course.patient

    @property
    def planned_closure(self) -> Closure:
        """Why the day unit may be closed on the planned day 1 of this cycle, while it is still
        to give (see treatments.schedule); a given or cancelled cycle is history: open."""
        if self.status in {self.Status.GIVEN, self.Status.CANCELLED}:
            return OPEN
        return day_closure(self.planned_start)

    @property
    def planned_on_closed_day(self) -> str:
        """Why the day unit may be closed on the planned day 1 of this cycle, while it is still
        to give: a closure the unit recorded ("Staff training day"), a public holiday's name
        ("Christmas Day"), "weekend", or "". A given or cancelled cycle is history: ""."""
        return self.planned_closure.why

    @property
    def start(self):  # noqa: ANN201 - a date
        return self.actual_start or self.planned_start

    def clean(self) -> None:
        super().clean()
        start = self.actual_start or self.planned_start
        if self.end_date and start and self.end_date < start:
            raise ValidationError({"end_date": "A cycle cannot end before it starts."})
        if (
            self.status in {self.Status.DELAYED, self.Status.HELD, self.Status.CANCELLED}
            and not self.reason.strip()
        ):
            raise ValidationError({"reason": f"Give a reason for a {self.status} cycle."})


# --- A cycle's history: every give, delay, hold and cancellation -----------------------------
# ChemoCycle keeps only its latest status and reason. A cycle delayed for ANC 0.9 and again for
# platelets 80 is a reason for G-CSF or a dose reduction, and dose intensity is read from the
# delays: the whole story is part of the medical record, so each decision is kept as it was
# taken. Written only by treatments.services, in the transaction that saves the cycle.

HISTORY_STATUSES = ("given", "delayed", "held", "cancelled")
# A cycle moved with an earlier cycle's delay or give is one not yet given nor cancelled: its
# move row keeps the status it had (services.OPEN_CYCLE_STATUSES).
MOVED_STATUSES = ("planned", "ready", "delayed", "held")


def _day_month(day: dt.date, *, year: bool = True) -> str:
    return f"{day.day} {day:%b}" + (f" {day:%Y}" if year else "")


def _from_to(before: dt.date, after: dt.date) -> str:
    """The span of a move: "12 Mar → 19 Mar 2026" (a year on the left only if it differs)."""
    return f"{_day_month(before, year=before.year != after.year)} → {_day_month(after)}"


class AppendOnlyError(PermissionError):
    """A change or deletion of a row of the medical record's history."""


class CycleStatusChangeQuerySet(models.QuerySet["CycleStatusChange"]):
    # QuerySet.update()/delete() skip the model's save()/delete(): refused here too, so no
    # door (a shell, a related manager, a future service) can rewrite the history in bulk.
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("A cycle's status history is append-only.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("A cycle's status history is append-only.")

    def delay_counts(self, *, course: Course) -> dict[int, int]:
        """Delays recorded per cycle of `course` (one the caller read through the access
        gate), by cycle id, in one query. Only the cycle's own delays: a cycle moved with an
        earlier cycle's delay (a move row, status delayed if it was delayed before) was not
        delayed again."""
        rows = (
            self.filter(
                cycle__course=course, status=ChemoCycle.Status.DELAYED, moved_with__isnull=True
            )
            .order_by()
            .values("cycle_id")
            .annotate(delays=models.Count("pk"))
            .values_list("cycle_id", "delays")
        )
        return dict(rows)

    def for_display(self) -> CycleStatusChangeQuerySet:
        """With who made each change and, for a move, the cycle it moved with (its summary
        names it): one query however many rows."""
        return self.select_related("by", "moved_with__cycle")


class CycleStatusChange(models.Model):
    """One give, delay, hold or cancellation of a cycle, as it was decided. Append-only.

    `reason` is the delay, hold or cancellation reason; for a give, the override reason when
    the pre-cycle check did not say treat (`given_despite` keeps what it said). A delay moves
    the planned start from `planned_start_before` to `planned_start_after`.

    Rows from before the history was kept (`from_before_history`, migration 0017) hold each
    cycle's latest change only, from its own fields: who and when may be unknown, and the
    planned start before it was not kept.

    A delay or a late or early give moves every later cycle not yet given; each moved cycle
    gets a move row (`moved_with`, the earlier cycle's delay or give row): its own status
    then (planned, ready, delayed or held), the planned start before and after, and the
    cause's reason, who and when. It is not a delay of its own (`delay_counts` skips it).
    Moves made before migration 0019 were not recorded anywhere and are not backfilled.
    """

    cycle = models.ForeignKey(ChemoCycle, on_delete=models.PROTECT, related_name="status_history")
    status = models.CharField(max_length=20, choices=ChemoCycle.Status.choices)
    reason = models.TextField(
        blank=True,
        help_text="Why it was delayed, held or cancelled; for a give against the pre-cycle "
        "check, why it was given anyway.",
    )
    given_despite = models.CharField(
        max_length=20, blank=True, help_text="What the pre-cycle check said, for such a give."
    )
    planned_start_before = models.DateField(null=True, blank=True)
    planned_start_after = models.DateField()
    actual_start = models.DateField(null=True, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    from_before_history = models.BooleanField(
        default=False,
        help_text="Recorded from the cycle's own fields when the history began: earlier "
        "changes of this cycle were not kept.",
    )
    moved_with = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="moved_cycles",
        help_text="For a cycle moved with an earlier cycle's delay or give: that change. "
        "The status is then this cycle's own, and the reason, who and when are the cause's.",
    )

    objects = CycleStatusChangeQuerySet.as_manager()

    class Meta:
        # Newest first. A backfilled row may have no time: it is the cycle's oldest row.
        ordering = [F("at").desc(nulls_last=True), "-pk"]
        # Related managers and internals use the refusing queryset too (as audit.AccessLog).
        base_manager_name = "objects"
        constraints = [
            models.CheckConstraint(
                name="cycle_change_status",
                condition=Q(moved_with__isnull=True, status__in=HISTORY_STATUSES)
                | Q(moved_with__isnull=False, status__in=MOVED_STATUSES),
            ),
            models.CheckConstraint(
                name="cycle_change_needs_reason",
                # A move keeps its cause's reason: none for a give on the pre-cycle check.
                condition=Q(status="given") | Q(moved_with__isnull=False) | ~Q(reason=""),
                violation_error_message="A delay, hold or cancellation needs a reason.",
            ),
            models.CheckConstraint(
                name="cycle_change_override_has_reason",
                condition=Q(given_despite="") | (Q(status="given") & ~Q(reason="")),
                violation_error_message="A give against the pre-cycle check needs its reason.",
            ),
            models.CheckConstraint(
                name="cycle_change_who_when_before",
                condition=Q(from_before_history=True)
                | Q(by__isnull=False, at__isnull=False, planned_start_before__isnull=False),
                violation_error_message="A change records who made it, when, and the planned "
                "start before it.",
            ),
            models.CheckConstraint(
                name="cycle_change_delay_moves_later",
                # A move row of a cycle delayed before keeps "delayed": an early give of an
                # earlier cycle moves it earlier (clean() holds a delay's moves to later).
                condition=~Q(status="delayed")
                | Q(moved_with__isnull=False)
                | Q(planned_start_before__isnull=True)
                | Q(planned_start_after__gt=F("planned_start_before")),
                violation_error_message="A delay moves the planned start later.",
            ),
            models.CheckConstraint(
                name="cycle_change_move_moves",
                condition=Q(moved_with__isnull=True)
                | (
                    Q(from_before_history=False, planned_start_before__isnull=False)
                    & ~Q(planned_start_after=F("planned_start_before"))
                ),
                violation_error_message="A move changes the planned start, and records it "
                "before and after.",
            ),
            models.CheckConstraint(
                name="cycle_change_given_has_start",
                condition=~Q(status="given")
                | Q(actual_start__isnull=False)
                | Q(from_before_history=True),
                violation_error_message="A give records the day the cycle started.",
            ),
        ]

    def __str__(self) -> str:
        return f"Cycle {self.cycle.number}: {self.summary}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("A cycle's status history is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("A cycle's status history is append-only.")

    def clean(self) -> None:
        super().clean()
        cause = self.moved_with
        if cause is None:
            return
        # Objects the service already holds: no query.
        if cause.cycle.course_id != self.cycle.course_id or cause.cycle.number >= self.cycle.number:
            raise ValidationError(
                {"moved_with": "A cycle moves with an earlier cycle of its own course."}
            )
        if cause.status not in {ChemoCycle.Status.DELAYED, ChemoCycle.Status.GIVEN}:
            raise ValidationError(
                {"moved_with": "A cycle moves with an earlier cycle's delay or give."}
            )
        before = self.planned_start_before
        if (
            cause.status == ChemoCycle.Status.DELAYED
            and before is not None
            and self.planned_start_after <= before
        ):
            raise ValidationError(
                {"planned_start_after": "A move with a delay moves the planned start later."}
            )

    @property
    def delay_days(self) -> int | None:
        """By how many days this cycle's own delay moved it (None for a move with another)."""
        if (
            self.status != ChemoCycle.Status.DELAYED
            or self.moved_with_id is not None
            or self.planned_start_before is None
        ):
            return None
        return (self.planned_start_after - self.planned_start_before).days

    @property
    def moved_with_cycle(self) -> int | None:
        """The number of the earlier cycle whose delay or give moved this one."""
        return self.moved_with.cycle.number if self.moved_with is not None else None

    @property
    def given_despite_label(self) -> str:
        from labs.rules import PreCycleOutcome  # labs depends on treatments, not the reverse

        return PreCycleOutcome.LABELS.get(self.given_despite, self.given_despite)

    @property
    def summary(self) -> str:
        """What was done, as the cycle page says it: "Delayed 7 days: 12 Mar → 19 Mar 2026",
        "Moved 7 days with cycle 2's delay: 5 Dec → 12 Dec 2026"."""
        if self.moved_with is not None:
            return self._move_summary(self.moved_with)
        if self.status == ChemoCycle.Status.GIVEN:
            return f"Given on {_day_month(self.actual_start)}" if self.actual_start else "Given"
        if self.status == ChemoCycle.Status.DELAYED:
            before, after = self.planned_start_before, self.planned_start_after
            if before is None:  # a backfilled row: the start before it was not kept
                return f"Delayed to {_day_month(after)}"
            days = (after - before).days
            return f"Delayed {days} day{'s' if days != 1 else ''}: {_from_to(before, after)}"
        return str(ChemoCycle.Status(self.status).label)

    def _move_summary(self, cause: CycleStatusChange) -> str:
        before, after = self.planned_start_before, self.planned_start_after
        if before is None:  # never for a move (constraint cycle_change_move_moves)
            return f"Moved to {_day_month(after)} with cycle {cause.cycle.number}"
        days = (after - before).days
        span = f"{abs(days)} day{'s' if abs(days) != 1 else ''}" + (" earlier" if days < 0 else "")
        if cause.status == ChemoCycle.Status.GIVEN and cause.actual_start is not None:
            given = cause.actual_start
            what = f"cycle {cause.cycle.number}, given on {_day_month(given, year=given.year != after.year)}"
        else:
            what = f"cycle {cause.cycle.number}'s delay"
        return f"Moved {span} with {what}: {_from_to(before, after)}"


class DoseModification(models.Model):
    """A dose level (percent of standard) from a cycle onwards, carried forward until changed."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="dose_modifications")
    drug = models.ForeignKey(
        Drug,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The drug changed; blank means every drug in the course.",
    )
    from_cycle_number = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    percent = models.DecimalField(
        max_digits=5,
        decimal_places=1,
        validators=[MinValueValidator(Decimal("1")), MaxValueValidator(Decimal("150"))],
        help_text="Dose level as a percent of the standard dose (80 = 80%).",
    )
    reason = models.TextField()
    override_reason = models.TextField(
        blank=True,
        help_text="Required for a dose above the regimen's standard dose.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["course", "from_cycle_number", "created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                name="dose_mod_percent_range", condition=Q(percent__gt=0) & Q(percent__lte=150)
            ),
            models.CheckConstraint(
                name="dose_mod_over_standard_needs_override",
                condition=Q(percent__lte=100) | ~Q(override_reason=""),
                violation_error_message="A dose above the standard dose needs an override reason.",
            ),
            models.CheckConstraint(name="dose_mod_has_reason", condition=~Q(reason="")),
        ]

    def clean(self) -> None:
        super().clean()
        if self.percent is not None and self.percent > 100 and not self.override_reason.strip():
            raise ValidationError(
                {
                    "override_reason": "A dose above the regimen's standard dose needs an explicit override reason."
                }
            )

    def __str__(self) -> str:
        return f"{self.percent}% {self.drug or 'all drugs'} from cycle {self.from_cycle_number}"


class DoseVerification(models.Model):
    """A pharmacist's verification of a cycle's doses before they are prepared.

    The doses verified, by (regimen drug, day), are kept as they were computed then, with the
    dose dispensed for each (a banded standard dose, or the calculated one) and the inputs of
    its calculation; a drug is recorded as given only while its calculated dose is the one the
    latest verification holds (a weight, a level or a creatinine changed afterwards needs a new
    verification), and only from a bag labelled with the dose dispensed. Append-only:
    verifying again adds a row.
    """

    cycle = models.ForeignKey(ChemoCycle, on_delete=models.PROTECT, related_name="verifications")
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    verified_at = models.DateTimeField(default=timezone.now)
    doses = models.JSONField(
        help_text="The calculated dose verified for each drug and day: "
        '{"<regimen drug id>:<day>": "mg"}.'
    )
    # What the pharmacy dispenses for each of `doses`: the banded standard dose the pharmacist
    # chose (Drug.dose_banding_tolerance_percent), or the calculated dose. The label at the
    # bedside must show this dose. Verifications made before dose banding have none: they
    # dispensed the calculated dose (dispensed_for).
    dispensed_doses = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="The dose dispensed for each drug and day, banded or calculated: "
        '{"<regimen drug id>:<day>": "mg"}.',
    )
    # ASCO/ONS 2024: the dose calculation and its inputs are verified, so the record keeps the
    # inputs the pharmacist saw (height, weight and their dates, BSA, creatinine and GFR, level).
    dose_inputs = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text='The calculation inputs of each dose verified: {"<regimen drug id>:<day>": '
        "{...}} (none kept on verifications made before they were).",
    )
    note = models.TextField(blank=True, max_length=2000)
    # The warnings the pharmacist confirmed to verify (an allergy), word for word.
    confirmed_warnings = models.JSONField(default=list, blank=True, editable=False)

    class Meta:
        ordering = ["-verified_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.cycle} verified by {self.verified_by} at {self.verified_at:%Y-%m-%d %H:%M}"

    def dose_for(self, regimen_drug_id: int, day: int) -> Decimal | None:
        """The calculated dose verified for the drug and day."""
        value = (self.doses or {}).get(f"{regimen_drug_id}:{day}")
        return None if value is None else Decimal(value)

    def dispensed_for(self, regimen_drug_id: int, day: int) -> Decimal | None:
        """The dose dispensed for the drug and day: banded, or the calculated dose."""
        value = (self.dispensed_doses or {}).get(f"{regimen_drug_id}:{day}")
        return self.dose_for(regimen_drug_id, day) if value is None else Decimal(value)

    @property
    def dispensed(self) -> dict[str, str]:
        """Every dose verified, as dispensed ({"<regimen drug id>:<day>": "mg"})."""
        return {key: (self.dispensed_doses or {}).get(key, mg) for key, mg in self.doses.items()}


class Administration(models.Model):
    """What was actually given (the seed's Treatment): the dose, and every input that made it.

    ASCO/ONS 2024: a second competent person independently verifies drug, dose, calculation and
    inputs, route, and cycle number and day; `verified_by` records who.
    """

    class Formula(models.TextChoices):
        MOSTELLER = "mosteller", "BSA (Mosteller) x mg/m²"
        WEIGHT = "weight", "Weight x mg/kg"
        CALVERT = "calvert", "Calvert: AUC x (GFR + 25)"
        FLAT = "flat", "Flat dose"

    cycle = models.ForeignKey(ChemoCycle, on_delete=models.PROTECT, related_name="administrations")
    regimen_drug = models.ForeignKey(RegimenDrug, on_delete=models.PROTECT, related_name="+")
    drug = models.ForeignKey(Drug, on_delete=models.PROTECT, related_name="administrations")
    day_of_cycle = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    given_at = models.DateTimeField()
    route = models.CharField(max_length=20, choices=Route.choices)
    standard_dose_mg = models.DecimalField(
        max_digits=10, decimal_places=2, help_text="Full (100%) dose in mg."
    )
    dose_percent = models.DecimalField(max_digits=5, decimal_places=1, default=Decimal("100"))
    dose_mg = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="The calculated dose, in mg (given as it is unless banded).",
    )
    # A banded dose (DoseVerification.dispensed_doses): the standard bag or syringe the
    # pharmacy dispensed instead of the calculated dose_mg, as its label said.
    dispensed_dose_mg = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="Only when the pharmacy dispensed a banded dose: the dose on the label, "
        "given instead of the calculated dose.",
    )
    formula = models.CharField(max_length=20, choices=Formula.choices)
    inputs = models.JSONField(
        default=dict,
        help_text="Every input of the calculation: height, weight and dates, BSA, GFR, AUC…",
    )
    notes = models.TextField(blank=True)
    administered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    # An infusion stopped part-way (a reaction, extravasation, a line failure) gives less than
    # the prepared dose. The lifetime totals (anthracycline cardiotoxicity) count what went in.
    amount_given_mg = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Only when less than the dose went in: the mg actually given.",
    )
    stopped_reason = models.TextField(blank=True, help_text="Why the full dose was not given.")
    stopped_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    # The warnings the user confirmed to go ahead (services._confirmed), word for word.
    confirmed_warnings = models.JSONField(default=list, blank=True, editable=False)
    # The required premedication the nurse confirmed as given before this drug (the regimen's
    # SupportiveMedication rows required before it), word for word as they were asked.
    premedication_confirmed = models.JSONField(default=list, blank=True, editable=False)

    class Meta:
        ordering = ["given_at", "pk"]
        constraints = [
            models.CheckConstraint(name="administration_dose_positive", condition=Q(dose_mg__gt=0)),
            models.CheckConstraint(
                name="administration_dispensed_dose_positive",
                condition=Q(dispensed_dose_mg__isnull=True) | Q(dispensed_dose_mg__gt=0),
            ),
            # The same drug entry twice on one day of one cycle is a double entry or a double dose.
            models.UniqueConstraint(
                fields=["cycle", "regimen_drug", "day_of_cycle"],
                name="administration_once_per_drug_day",
                violation_error_message="This drug is already recorded for that day of the cycle.",
            ),
            models.CheckConstraint(
                name="administration_independent_check",
                condition=Q(verified_by__isnull=True) | ~Q(verified_by=F("administered_by")),
                violation_error_message="The second check must be done by another person.",
            ),
            models.CheckConstraint(
                name="administration_partial_dose_has_reason",
                condition=Q(
                    amount_given_mg__isnull=True,
                    stopped_reason="",
                    stopped_recorded_by__isnull=True,
                )
                | (
                    Q(
                        amount_given_mg__gte=0,
                        amount_given_mg__lt=Coalesce(F("dispensed_dose_mg"), F("dose_mg")),
                    )
                    & ~Q(stopped_reason="")
                    & Q(stopped_recorded_by__isnull=False)
                ),
                violation_error_message=(
                    "A dose not given in full needs the amount given (less than the dose) "
                    "and the reason."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.drug} {self.dose_given_mg} mg on {self.given_at:%Y-%m-%d}"

    @property
    def given_in_full(self) -> bool:
        return self.amount_given_mg is None

    @property
    def prepared_dose_mg(self) -> Decimal:
        """The dose in the bag or syringe: the banded dose, or the calculated one."""
        return self.dose_mg if self.dispensed_dose_mg is None else self.dispensed_dose_mg

    @property
    def dose_given_mg(self) -> Decimal:
        """What went into the patient: the dose prepared (banded or calculated), or the amount
        recorded when stopped early. Lifetime totals count this."""
        return self.prepared_dose_mg if self.amount_given_mg is None else self.amount_given_mg

    @property
    def banding_percent(self) -> Decimal | None:
        """How far the banded dose is from the calculated one, signed, to 0.1%."""
        if self.dispensed_dose_mg is None:
            return None
        return banding_percent(calculated_mg=self.dose_mg, dispensed_mg=self.dispensed_dose_mg)

    @property
    def banding_note(self) -> str:
        """ "banded from 772 mg calculated, +1.0%" for a banded dose; "" otherwise."""
        percent = self.banding_percent
        if percent is None:
            return ""
        return f"banded from {mg_text(self.dose_mg)} mg calculated, {percent:+}%"


class CtcaeTerm(models.Model):
    """A CTCAE adverse-event term in one CTCAE version, with the meaning of each grade."""

    term = models.CharField(max_length=120)
    version = models.CharField(max_length=10, default="5.0")
    category = models.CharField(max_length=120, blank=True, help_text="System organ class.")
    ncit_code = models.CharField(
        "NCIt code", max_length=20, blank=True, help_text="Open NCI Thesaurus identifier."
    )
    max_grade = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    grade_descriptions = models.JSONField(
        default=dict, blank=True, help_text="Grade number -> meaning."
    )
    is_common = models.BooleanField(default=False, help_text="Offered first in the term picker.")
    lab_loinc = models.CharField(
        max_length=20, blank=True, help_text="LOINC of the lab that defines this term."
    )

    class Meta:
        verbose_name = "CTCAE term"
        ordering = ["-is_common", "term"]
        constraints = [
            models.UniqueConstraint(fields=["term", "version"], name="ctcae_term_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.term} (CTCAE v{self.version})"


class SideEffect(models.Model):
    class Source(models.TextChoices):
        CLINICIAN = "clinician", "Clinician"
        PATIENT = "patient", "Patient report"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="side_effects")
    cycle = models.ForeignKey(
        ChemoCycle, on_delete=models.PROTECT, null=True, blank=True, related_name="side_effects"
    )
    term = models.ForeignKey(CtcaeTerm, on_delete=models.PROTECT, related_name="+")
    grade = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    ctcae_version = models.CharField(max_length=10)
    onset = models.DateField()
    resolved_on = models.DateField(null=True, blank=True)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.CLINICIAN)
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Grade >= 3 needs an acknowledgement in the care team's inbox (who, when, what was done).
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledgement_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-onset", "-pk"]
        indexes = [
            # Unacknowledged grade >= 3 (DOMAIN.md 5): the patient list's attention flag.
            models.Index(
                fields=["patient"],
                name="sideeffect_open_severe",
                condition=Q(grade__gte=3, acknowledged_at__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                name="side_effect_grade_1_5", condition=Q(grade__gte=1) & Q(grade__lte=5)
            ),
            models.CheckConstraint(
                name="side_effect_resolved_after_onset",
                condition=Q(resolved_on__isnull=True) | Q(resolved_on__gte=F("onset")),
                violation_error_message="A side effect cannot resolve before its onset.",
            ),
        ]

    def clean(self) -> None:
        super().clean()
        from django.utils import timezone

        if self.term_id and self.grade and self.grade > self.term.max_grade:
            raise ValidationError(
                {
                    "grade": f"{self.term.term} has no grade {self.grade} in CTCAE v{self.term.version}."
                }
            )
        if self.onset and self.onset > timezone.localdate():
            raise ValidationError({"onset": "Onset cannot be in the future."})
        if self.cycle_id and self.patient_id and self.cycle.course.patient_id != self.patient_id:
            raise ValidationError({"cycle": "That cycle belongs to another patient."})

    def __str__(self) -> str:
        return f"{self.term.term} grade {self.grade}"


class UnitClosure(models.Model):
    """Days the day unit itself is closed (a staff training day, a refurbishment week, a local
    holiday), beside the public holidays of settings.CLINIC_HOLIDAYS. Reference data kept by
    administrators, not patient data: a cycle planned on one is marked on every page and its
    prescriber is told (treatments.schedule). Patients are told only that the unit is closed,
    never the reason."""

    # Longer is most likely a mistyped year (2207 for 2027), which would mark every cycle.
    MAX_DAYS = 366

    first_day = models.DateField()
    last_day = models.DateField(
        help_text="The last day the unit is closed (inclusive): the first day again for one day."
    )
    reason = models.CharField(
        max_length=80,
        help_text="Shown to clinicians beside each cycle planned then, e.g. “Staff training "
        "day”. Patients are told only that the day unit is closed.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "unit closure"
        ordering = ["-first_day", "-pk"]
        constraints = [
            models.CheckConstraint(
                name="unit_closure_last_day_not_before_first",
                condition=Q(last_day__gte=F("first_day")),
                violation_error_message="A closure cannot end before it begins.",
            ),
        ]

    def __str__(self) -> str:
        if self.first_day == self.last_day:
            return f"{self.reason}, {day_text(self.first_day)}"
        return f"{self.reason}, {day_text(self.first_day)} to {day_text(self.last_day)}"

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def clean(self) -> None:
        super().clean()
        self.reason = (self.reason or "").strip()
        errors: dict[str, str] = {}
        if not self.reason:
            errors["reason"] = "Say why the day unit is closed, e.g. “Staff training day”."
        if self.first_day and self.last_day:
            if self.last_day < self.first_day:
                errors["last_day"] = (
                    f"The last day ({day_text(self.last_day)}) is before the first day "
                    f"({day_text(self.first_day)})."
                )
            elif self.days > self.MAX_DAYS:
                errors["last_day"] = (
                    f"A closure spans at most {self.MAX_DAYS} days; this one spans "
                    f"{self.days}. Check the year, or record a longer closure as several."
                )
        if errors:
            raise ValidationError(errors)
