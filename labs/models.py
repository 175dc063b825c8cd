"""Lab catalogue (LOINC, UCUM, ranges), results with the range that applied, pre-cycle rules.

DOMAIN.md section 4. Ranges and critical limits are institution data with a source, stored on
each result as they applied when it was recorded.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from labs.units import unit_display
from patients.models import Patient
from treatments.models import CtcaeTerm, PartOfRegimenVersion, Regimen

loinc_validator = RegexValidator(r"^\d{1,7}-\d$", "A LOINC code looks like 751-8.")


# Haemoglobin and creatinine are never 0 in a living patient: a 0 is a slip (a reviewer's
# Hb 0 g/dL was accepted and raised a critical alert), where ANC or a count can be 0.
NEVER_ZERO_LOINCS = frozenset({"718-7", "2160-0"})


class LabTest(models.Model):
    loinc = models.CharField("LOINC", max_length=10, unique=True, validators=[loinc_validator])
    name = models.CharField(max_length=120)
    short_name = models.CharField(max_length=30, help_text="Shown on charts, e.g. ANC.")
    unit = models.CharField(max_length=30, help_text="UCUM unit, e.g. 10*3/uL.")
    ref_low = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    ref_high = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    critical_low = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Critical (call-back) low limit; see critical_low_inclusive.",
    )
    critical_low_inclusive = models.BooleanField(
        default=True,
        help_text=(
            "Checked: a value equal to the limit is critical (hemoglobin <= 7 g/dL). "
            "Unchecked: only values strictly below it are (ANC < 0.5 x10*3/uL)."
        ),
    )
    critical_high = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Critical (call-back) high limit; see critical_high_inclusive.",
    )
    critical_high_inclusive = models.BooleanField(
        default=True,
        help_text=(
            "Checked: a value equal to the limit is critical (creatinine >= 6 mg/dL). "
            "Unchecked: only values strictly above it are."
        ),
    )
    critical_source = models.CharField(
        max_length=200,
        blank=True,
        help_text="Where the critical limits come from (required when one is set).",
    )
    decimal_places = models.PositiveSmallIntegerField(default=1, validators=[MaxValueValidator(4)])
    # Entry-error guards, not clinical limits: set beyond anything seen in a living patient, so
    # that only a slip (a decimal point, a unit: 4.2 typed as /mm3) falls outside them. Their
    # source is the reference catalogue that ships them (labs/reference).
    min_plausible = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text=(
            "Values above 0 and below this are rejected as impossible (entry error, most "
            "often a unit slip); 0 (none detected) is always accepted. Blank: no lower guard."
        ),
    )
    max_plausible = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Values above this are rejected as impossible (entry error).",
    )
    is_tumour_marker = models.BooleanField(default=False)
    is_panel_default = models.BooleanField(
        default=False, help_text="Charted by default (ANC, platelets…)."
    )
    range_source = models.CharField(
        max_length=200, blank=True, help_text="Where the ranges come from."
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                name="labtest_ref_low_le_high",
                condition=Q(ref_low__isnull=True)
                | Q(ref_high__isnull=True)
                | Q(ref_low__lte=F("ref_high")),
                violation_error_message="The reference range's low is above its high.",
            ),
            models.CheckConstraint(
                name="labtest_critical_low_le_ref_low",
                condition=Q(critical_low__isnull=True)
                | Q(ref_low__isnull=True)
                | Q(critical_low__lte=F("ref_low")),
                violation_error_message=(
                    "The critical low limit is above the reference range's low."
                ),
            ),
            models.CheckConstraint(
                name="labtest_critical_high_ge_ref_high",
                condition=Q(critical_high__isnull=True)
                | Q(ref_high__isnull=True)
                | Q(critical_high__gte=F("ref_high")),
                violation_error_message=(
                    "The critical high limit is below the reference range's high."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({unit_display(self.unit)})"

    # Every stored result, range and pre-cycle rule of a test is a number in its unit, and its
    # LOINC says what was measured (nadirs, CTCAE grading, delta checks key on it): changing
    # either once results exist would misread all of them (g/dL read as g/L is a tenth).
    IDENTITY_FIELDS = ("loinc", "unit")

    def clean(self) -> None:
        super().clean()
        self.refuse_identity_change()
        errors: dict[str, str] = {}
        if (
            self.min_plausible is not None
            and self.max_plausible is not None
            and self.min_plausible >= self.max_plausible
        ):
            errors["min_plausible"] = "The lowest possible value must be below the highest."
        else:
            for name in ("ref_low", "ref_high", "critical_low", "critical_high"):
                problem = self.implausible_limit_message(getattr(self, name))
                if problem:
                    errors[name] = problem
        # Every threshold carries its source (DOMAIN.md): a limit nobody can trace cannot be
        # checked against the local protocol.
        if (self.ref_low is not None or self.ref_high is not None) and not self.range_source:
            errors["range_source"] = "Say where the reference range comes from."
        if (
            self.critical_low is not None or self.critical_high is not None
        ) and not self.critical_source:
            errors["critical_source"] = "Say where the critical limits come from."
        if errors:
            raise ValidationError(errors)

    def is_below_plausible(self, value: Decimal) -> bool:
        """A `value` (in the test's unit) under `min_plausible`. 0 is "none detected" (ANC 0.00
        in profound neutropenia), except for a test no living patient reads 0 on."""
        if self.min_plausible is None:
            return False
        floor = 0 if self.zero_is_possible else -1
        return floor < value < self.min_plausible

    @property
    def zero_is_possible(self) -> bool:
        return self.loinc not in NEVER_ZERO_LOINCS

    def is_above_plausible(self, value: Decimal) -> bool:
        return self.max_plausible is not None and value > self.max_plausible

    def implausible_limit_message(self, limit: Decimal | None) -> str | None:
        """Why `limit` (a range bound or critical limit in the test's unit) cannot be one, or
        None: a limit no result could reach is a typo or another unit (150000 for 150 x10³/µL)."""
        from labs.rules import fmt_decimal  # labs.rules reads these models

        unit = unit_display(self.unit)
        lowest, highest = self.min_plausible, self.max_plausible
        if limit is None:
            return None
        if lowest is not None and self.is_below_plausible(limit):
            return (
                f"{fmt_decimal(limit)} {unit} is below the lowest possible {self.name} value "
                f"({fmt_decimal(lowest)} {unit}); limits are in the test's unit, {unit}."
            )
        if highest is not None and self.is_above_plausible(limit):
            return (
                f"{fmt_decimal(limit)} {unit} is above the highest possible {self.name} value "
                f"({fmt_decimal(highest)} {unit}); limits are in the test's unit, {unit}."
            )
        return None

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.refuse_identity_change()  # every door, not only forms that call clean()
        super().save(*args, **kwargs)

    def refuse_identity_change(self) -> None:
        if self.pk is None:
            return
        stored = LabTest.objects.filter(pk=self.pk).values(*self.IDENTITY_FIELDS).first()
        changed = [f for f in self.IDENTITY_FIELDS if stored and stored[f] != getattr(self, f)]
        if not changed:
            return
        results = LabResult.all_objects.filter(test_id=self.pk).count()
        rules = PreCycleRule.objects.filter(test_id=self.pk).count()
        if not (results or rules):
            return
        raise ValidationError(
            {
                field: f"{results} results and {rules} pre-cycle rules use this test as "
                f"{stored[field]}: changing it would misread every one of them. Add a new "
                "test (its own LOINC code and unit) instead."
                for field in changed
            }
        )


class ReferenceRange(models.Model):
    """A sex- or age-specific range for a test; overrides the test's default where it matches."""

    class Sex(models.TextChoices):
        ANY = "", "Any"
        FEMALE = "female", "Female"
        MALE = "male", "Male"

    test = models.ForeignKey(LabTest, on_delete=models.CASCADE, related_name="ranges")
    sex = models.CharField(max_length=10, choices=Sex.choices, blank=True)
    age_min = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="In whole years, inclusive; blank: no lower age."
    )
    age_max = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="In whole years, inclusive; blank: no upper age."
    )
    low = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    high = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    source = models.CharField(
        max_length=200,
        help_text="Where the range comes from (laboratory, method, version).",
        error_messages={"blank": "Say where this range comes from: every threshold needs one."},
    )

    class Meta:
        ordering = ["test", "sex", "age_min"]
        constraints = [
            models.CheckConstraint(
                name="range_low_le_high",
                condition=Q(low__isnull=True) | Q(high__isnull=True) | Q(low__lte=F("high")),
                violation_error_message="The range's low is above its high: swap them.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.test.short_name} {self.get_sex_display()}: {self.low}-{self.high}"

    @property
    def has_age_band(self) -> bool:
        return self.age_min is not None or self.age_max is not None

    def age_text(self) -> str:
        if not self.has_age_band:
            return "any age"
        if self.age_max is None:
            return f"ages {self.age_min} and over"
        return f"ages {self.age_min or 0}–{self.age_max}"

    def overlaps(self, other: ReferenceRange) -> bool:
        """Whether a patient could match both ranges with neither winning (labs.services.
        applied_range_for): the same sex, both with an age band or both without, and an age
        in common (bounds inclusive). A sex-specific range beats an "Any" one and a banded one
        an unbanded one, so those pairs are a fallback and its exception, not an overlap."""
        if self.sex != other.sex or self.has_age_band != other.has_age_band:
            return False
        start = max(self.age_min or 0, other.age_min or 0)
        ends = [age for age in (self.age_max, other.age_max) if age is not None]
        return not ends or start <= min(ends)

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            errors["age_max"] = (
                f"The age band ends ({self.age_max}) before it starts ({self.age_min})."
            )
        if self.low is None and self.high is None:
            errors["low"] = "Give a low, a high or both."
        for name in ("low", "high"):
            if (value := getattr(self, name)) is not None and value < 0:
                errors[name] = "A reference limit cannot be negative."
        test = self._test_or_none()
        if test is not None:
            for name in ("low", "high"):
                problem = test.implausible_limit_message(getattr(self, name))
                if problem and name not in errors:
                    errors[name] = problem
            for name, problem in self._reaches_critical_limits(test).items():
                errors.setdefault(name, problem)
            if "age_max" not in errors:
                clash = self._overlapping_range(test)
                if clash is not None:
                    field = "age_min" if self.has_age_band else "sex"
                    sex = clash.get_sex_display().lower() if clash.sex else "either sex"
                    errors[field] = (
                        f"Overlaps the {test.short_name} range for {sex}, {clash.age_text()} "
                        f"({clash.low_high_text()}): a patient matching both would get "
                        "whichever was saved first. Edit that range instead, or make the "
                        "age bands meet without overlapping."
                    )
        if errors:
            raise ValidationError(errors)

    def _reaches_critical_limits(self, test: LabTest) -> dict[str, str]:
        """A "normal" range reaching into the test's critical limits would call a call-back
        value normal (a reviewer saved platelets -5 to 10 under a critical low of 20)."""
        from labs.rules import fmt_decimal  # labs.rules reads these models

        problems: dict[str, str] = {}
        check = "check the value and its unit."
        if None not in (self.low, test.critical_low) and self.low <= test.critical_low:
            problems["low"] = (
                f"The normal range's low is at or below {test.short_name}'s critical low "
                f"({fmt_decimal(test.critical_low)} {unit_display(test.unit)}): {check}"
            )
        if None not in (self.high, test.critical_high) and self.high >= test.critical_high:
            problems["high"] = (
                f"The normal range's high is at or above {test.short_name}'s critical high "
                f"({fmt_decimal(test.critical_high)} {unit_display(test.unit)}): {check}"
            )
        return problems

    def low_high_text(self) -> str:
        from labs.rules import fmt_decimal  # labs.rules reads these models

        low = fmt_decimal(self.low) if self.low is not None else ""
        high = fmt_decimal(self.high) if self.high is not None else ""
        return f"{low}–{high} {unit_display(self.test.unit)}"

    def _test_or_none(self) -> LabTest | None:
        try:
            return self.test
        except LabTest.DoesNotExist:
            return None

    def _overlapping_range(self, test: LabTest) -> ReferenceRange | None:
        if test.pk is None:
            return None  # a new test's inline rows: the admin formset compares them
        others = ReferenceRange.objects.filter(test=test, sex=self.sex).exclude(pk=self.pk)
        return next((other for other in others.order_by("pk") if self.overlaps(other)), None)


class Flag(models.TextChoices):
    """FHIR v3 ObservationInterpretation codes."""

    NORMAL = "N", "Normal"
    LOW = "L", "Low"
    HIGH = "H", "High"
    CRITICAL_LOW = "LL", "Critical low"
    CRITICAL_HIGH = "HH", "Critical high"


CRITICAL_FLAGS = frozenset({Flag.CRITICAL_LOW, Flag.CRITICAL_HIGH})


class CurrentLabResultManager(models.Manager["LabResult"]):
    """Results that count: every result except those marked entered in error.

    The default manager, so every door that reads results through it (the access gate's
    `_default_manager`, related managers such as `patient.lab_results`, subqueries written
    as `LabResult.objects...`) leaves a result entered in error out without remembering to.
    A join through the relation (`Patient.objects.filter(lab_results__...)`) does not go
    through a manager: filter `lab_results__entered_in_error_at__isnull=True` there.
    """

    def get_queryset(self) -> models.QuerySet[LabResult]:
        return super().get_queryset().filter(entered_in_error_at__isnull=True)


class LabResult(models.Model):
    class Source(models.TextChoices):
        MANUAL = "manual", "Entered by hand"
        IMPORT = "import", "CSV import"
        API = "api", "API"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="lab_results")
    test = models.ForeignKey(LabTest, on_delete=models.PROTECT, related_name="results")
    value = models.DecimalField(
        max_digits=12, decimal_places=4, validators=[MinValueValidator(Decimal("0"))]
    )
    unit = models.CharField(max_length=30)
    # As the lab reported it, when that was another unit labs.units converts (g/L for a g/dL
    # test, umol/L for creatinine): `value` and `unit` are the converted figures every rule
    # reads.
    reported_value = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    reported_unit = models.CharField(max_length=30, blank=True)
    collected_at = models.DateTimeField()
    ref_low = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    ref_high = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    critical_low = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    critical_low_inclusive = models.BooleanField(
        default=True, help_text="As on the test when the result was recorded."
    )
    critical_high = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    critical_high_inclusive = models.BooleanField(
        default=True, help_text="As on the test when the result was recorded."
    )
    flag = models.CharField(max_length=2, choices=Flag.choices, default=Flag.NORMAL)
    is_released = models.BooleanField(
        default=False, help_text="Visible to the patient in the portal."
    )
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    released_at = models.DateTimeField(null=True, blank=True)
    # A critical (LL/HH) result needs an acknowledgement: who, when, what was done (DOMAIN.md 4).
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledgement_note = models.TextField(blank=True, help_text="What was done about it.")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    note = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # A result entered in error (wrong patient, typo, wrong unit) stays as a record: who marked
    # it, when and why. It no longer counts anywhere a current result counts (the default
    # manager leaves it out); `all_objects` still reads it (admin, the lab page's correction).
    entered_in_error_at = models.DateTimeField(null=True, blank=True)
    entered_in_error_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # db_default as well: the demo builder inserts synthetic rows without the ORM.
    entered_in_error_reason = models.TextField(blank=True, default="", db_default="")

    objects = CurrentLabResultManager()
    all_objects = models.Manager()

    class Meta:
        ordering = ["-collected_at", "-pk"]
        default_manager_name = "objects"
        base_manager_name = "all_objects"
        indexes = [
            models.Index(
                fields=["patient", "test", "-collected_at"], name="labresult_patient_test_time"
            ),
            # The patient list's "critical result" flag and the inbox look only for open
            # critical results: a partial index keeps that a probe, not a scan of ~800 rows
            # per patient.
            models.Index(
                fields=["patient"],
                name="labresult_open_critical",
                condition=Q(
                    flag__in=sorted(CRITICAL_FLAGS),
                    acknowledged_at__isnull=True,
                    entered_in_error_at__isnull=True,
                ),
            ),
        ]
        constraints = [
            models.CheckConstraint(name="labresult_value_not_negative", condition=Q(value__gte=0)),
        ]

    def clean(self) -> None:
        super().clean()
        if self.test_id and self.unit and self.unit != self.test.unit:
            raise ValidationError(
                {
                    "unit": f"{self.test.name} is stored in {unit_display(self.test.unit)}, "
                    f"not {unit_display(self.unit)}."
                }
            )
        if self.collected_at and self.collected_at > timezone.now() + timedelta(minutes=5):
            raise ValidationError({"collected_at": "Collection time cannot be in the future."})
        # Plausibility is judged when a result is entered (lab_result_record checks it first,
        # with the same rule): a stored result that fails it today (recorded before a guard
        # existed, or the very slip being corrected) must still be acknowledged or marked
        # entered in error, both of which clean the whole row.
        if self._state.adding and self.test_id and self.value is not None:
            from labs.rules import implausible_value_message  # labs.rules reads these models

            problem = implausible_value_message(
                self.test,
                self.value,
                reported_value=self.reported_value,
                reported_unit=self.reported_unit,
            )
            if problem:
                raise ValidationError({"value": problem})

    @property
    def is_critical(self) -> bool:
        return self.flag in CRITICAL_FLAGS

    @property
    def is_entered_in_error(self) -> bool:
        return self.entered_in_error_at is not None

    @property
    def value_text(self) -> str:
        """ "10.5 g/dL", and how the lab wrote it when that differs: "(reported 105 g/L)"."""
        from labs.rules import value_text  # labs.rules reads these models

        return value_text(
            self.value,
            self.unit,
            reported_value=self.reported_value,
            reported_unit=self.reported_unit,
            decimals=self.test.decimal_places,
        )

    def __str__(self) -> str:
        return f"{self.test.short_name} {self.value} {self.unit} ({self.flag})"


class Comparator(models.TextChoices):
    GE = ">=", "≥"
    GT = ">", ">"
    LE = "<=", "≤"
    LT = "<", "<"


class PreCycleAction(models.TextChoices):
    """Ordered from least to most restrictive (see labs.rules.ACTION_SEVERITY)."""

    TREAT = "treat", "Treat"
    TREAT_REDUCED = "treat_reduced", "Treat at reduced dose"
    DELAY = "delay", "Delay"
    CONTACT = "contact", "Contact physician"
    HOLD = "hold", "Hold"


class PreCycleRule(PartOfRegimenVersion):  # part of the version a course keeps
    """`(analyte comparator value, result no older than max_age_days) -> action` for a regimen.

    Rules for one analyte are tried in `priority` order; the first that matches decides.
    """

    regimen = models.ForeignKey(Regimen, on_delete=models.CASCADE, related_name="precycle_rules")
    test = models.ForeignKey(LabTest, on_delete=models.PROTECT, related_name="+")
    comparator = models.CharField(max_length=2, choices=Comparator.choices)
    value = models.DecimalField(
        max_digits=12, decimal_places=4, validators=[MinValueValidator(Decimal("0"))]
    )
    unit = models.CharField(max_length=30)
    max_age_days = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
        help_text="A result older than this does not count (its own outcome: stale).",
    )
    action = models.CharField(max_length=20, choices=PreCycleAction.choices)
    action_percent = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(99)],
        help_text="For 'treat at reduced dose': the dose level in percent.",
    )
    action_delay_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
        help_text="For 'delay': how many days.",
    )
    priority = models.PositiveSmallIntegerField(default=1)
    source = models.CharField(max_length=200, blank=True, help_text="Protocol the rule comes from.")

    class Meta:
        verbose_name = "pre-cycle rule"
        ordering = ["regimen", "test", "priority", "pk"]
        constraints = [
            models.CheckConstraint(
                name="rule_reduced_has_percent",
                condition=~Q(action="treat_reduced") | Q(action_percent__isnull=False),
                violation_error_message="'Treat at reduced dose' needs a percent.",
            ),
            models.CheckConstraint(
                name="rule_delay_has_days",
                condition=~Q(action="delay") | Q(action_delay_days__isnull=False),
                violation_error_message="'Delay' needs a number of days.",
            ),
        ]

    def clean(self) -> None:
        super().clean()
        if self.test_id and self.unit and self.unit != self.test.unit:
            raise ValidationError({"unit": f"{self.test.name} rules must use {self.test.unit}."})
        if self.action == PreCycleAction.TREAT_REDUCED and not self.action_percent:
            raise ValidationError({"action_percent": "Give the reduced dose level in percent."})
        if self.action == PreCycleAction.DELAY and not self.action_delay_days:
            raise ValidationError({"action_delay_days": "Give the delay in days."})

    def __str__(self) -> str:
        return (
            f"{self.test.short_name} {self.comparator} {self.value} -> {self.get_action_display()}"
        )


class CtcaeGradeCriterion(models.Model):
    """One grade's lab cut-off for a lab-defined CTCAE term.

    A grade applies when the value is strictly beyond its threshold (DOMAIN.md 5: "< 1.5–1.0"
    means grade 2 starts just below 1.5). `basis` says what the threshold is measured in.
    """

    class Direction(models.TextChoices):
        BELOW = "below", "Below"
        ABOVE = "above", "Above"

    class Basis(models.TextChoices):
        ABSOLUTE = "absolute", "Absolute value in the test's unit"
        LLN = "lln", "Lower limit of normal"
        ULN = "uln", "Upper limit of normal"
        X_ULN = "x_uln", "Multiple of the upper limit of normal"

    term = models.ForeignKey(CtcaeTerm, on_delete=models.CASCADE, related_name="lab_criteria")
    test = models.ForeignKey(LabTest, on_delete=models.PROTECT, related_name="ctcae_criteria")
    grade = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    direction = models.CharField(max_length=5, choices=Direction.choices)
    basis = models.CharField(max_length=10, choices=Basis.choices)
    threshold = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="The cut-off (absolute) or multiplier (x ULN); blank for LLN/ULN.",
    )

    class Meta:
        verbose_name = "CTCAE grade criterion"
        verbose_name_plural = "CTCAE grade criteria"
        ordering = ["term", "grade"]
        constraints = [
            models.UniqueConstraint(
                fields=["term", "test", "grade"], name="ctcae_criterion_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.term.term} grade {self.grade}: {self.direction} {self.threshold or ''} {self.basis}"
