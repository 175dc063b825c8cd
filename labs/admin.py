"""Admin for the lab catalogue, pre-cycle rules and CTCAE lab cut-offs (reference data), and a
read-only, gated view of lab results (PHI)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from labs.models import CtcaeGradeCriterion, LabResult, LabTest, PreCycleRule, ReferenceRange
from oncoplanner.admin_history import ValueHistoryAdmin
from patients.admin_gate import GatedPhiAdmin
from patients.selectors import scope_queryset
from treatments.admin import FrozenRegimenRowsAdmin
from treatments.models import Regimen


class ReferenceRangeForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = ReferenceRange
        fields = ("test", "sex", "age_min", "age_max", "low", "high", "source")
        # The model's own message for a blank source, not the form's generic "required".
        error_messages = {
            "source": {"required": ReferenceRange._meta.get_field("source").error_messages["blank"]}
        }


class ReferenceRangeInlineFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    """Rows added or changed together, compared with each other: ReferenceRange.clean compares
    one row with those already saved, and a new test's rows have none yet."""

    def clean(self) -> None:
        super().clean()
        kept: list[ReferenceRange] = []
        for form in self.forms:
            if not getattr(form, "cleaned_data", None) or self._should_delete_form(form):
                continue
            if form.errors:
                continue
            candidate: ReferenceRange = form.instance
            clash = next((other for other in kept if candidate.overlaps(other)), None)
            if clash is not None:
                field = "age_min" if candidate.has_age_band else "sex"
                form.add_error(
                    field,
                    f"Overlaps another row ({clash.get_sex_display()}, {clash.age_text()}): "
                    "a patient matching both would get whichever was saved first. Make the "
                    "age bands meet without overlapping.",
                )
                continue
            kept.append(candidate)


class ReferenceRangeInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ReferenceRange
    form = ReferenceRangeForm
    formset = ReferenceRangeInlineFormSet
    extra = 0
    fields = ("sex", "age_min", "age_max", "low", "high", "source")


@admin.register(LabTest)
class LabTestAdmin(ValueHistoryAdmin):
    list_display = (
        "name",
        "short_name",
        "loinc",
        "unit",
        "ref_low",
        "ref_high",
        "critical_low",
        "critical_high",
        "is_panel_default",
    )
    list_filter = ("is_panel_default", "is_tumour_marker")
    search_fields = ("name", "short_name", "loinc")
    inlines = (ReferenceRangeInline,)


@admin.register(ReferenceRange)
class ReferenceRangeAdmin(ValueHistoryAdmin):
    """Validated by ReferenceRange.clean (age order, no overlap, bounds within the test's
    plausible values, a source) and its constraint: refusals are form errors, nothing saved."""

    form = ReferenceRangeForm
    list_display = ("test", "sex", "age_min", "age_max", "low", "high", "source")
    list_filter = ("sex",)
    search_fields = ("test__name", "test__short_name", "test__loinc")
    list_select_related = ("test",)


@admin.register(LabResult)
class LabResultAdmin(GatedPhiAdmin):
    """Every result, those entered in error included (the record and its correction), read-only
    and scoped to the user's care teams like every PHI admin."""

    list_display = (
        "patient",
        "test",
        "value",
        "unit",
        "flag",
        "collected_at",
        "is_released",
        "entered_in_error_at",
    )
    list_filter = (
        "flag",
        "is_released",
        "source",
        ("entered_in_error_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("patient__mrn", "patient__family_name", "test__short_name", "test__loinc")
    date_hierarchy = "collected_at"
    list_select_related = ("patient", "test")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # LabResult.objects leaves results entered in error out; admin shows the whole record.
        queryset = LabResult.all_objects.all()
        ordering = self.get_ordering(request)
        if ordering:
            queryset = queryset.order_by(*ordering)
        return scope_queryset(queryset, user=request.user)  # type: ignore[arg-type]


@admin.register(PreCycleRule)
class PreCycleRuleAdmin(FrozenRegimenRowsAdmin):
    """A regimen version's rules are frozen with it once a course uses it (DOMAIN.md 2)."""

    list_display = ("regimen", "test", "comparator", "value", "unit", "max_age_days", "action")
    list_filter = ("action", "regimen")
    search_fields = ("regimen__name", "test__short_name", "test__loinc", "source")
    list_select_related = ("regimen", "test")
    autocomplete_fields = ("test",)

    @staticmethod
    def regimen_of(obj: Any) -> Regimen:
        return obj.regimen  # type: ignore[no-any-return]


@admin.register(CtcaeGradeCriterion)
class CtcaeGradeCriterionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("term", "test", "grade", "direction", "basis", "threshold")
    list_filter = ("grade", "direction", "basis")
    search_fields = ("term__term", "test__short_name", "test__loinc")
    list_select_related = ("term", "test")
    autocomplete_fields = ("term", "test")
