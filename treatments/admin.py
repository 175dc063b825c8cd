"""Admin for the regimen library (editable by administrators) and, behind the access gate,
read-only views of courses, cycles, dose changes, administrations and side effects (PHI:
clinicians record those in the app, through the services that enforce the clinical rules)."""

from __future__ import annotations

from django.contrib import admin

from labs.models import PreCycleRule
from patients.admin_gate import GatedPhiAdmin, ReadOnlyInline
from treatments.models import (
    Administration,
    ChemoCycle,
    Course,
    CtcaeTerm,
    DoseModification,
    Drug,
    Regimen,
    RegimenDrug,
    RegimenPhase,
    SideEffect,
)


@admin.register(Drug)
class DrugAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "drug_class", "lifetime_limit_mg_m2", "limit_warning_fraction")
    list_filter = ("drug_class",)
    search_fields = ("name", "drug_class")


class RegimenPhaseInline(admin.TabularInline):  # type: ignore[type-arg]
    model = RegimenPhase
    extra = 0
    show_change_link = True  # drugs of a phase are edited on the phase's page
    fields = ("order", "name", "cycle_length_days", "planned_cycles")


class PreCycleRuleInline(admin.TabularInline):  # type: ignore[type-arg]
    model = PreCycleRule
    extra = 0
    autocomplete_fields = ("test",)
    fields = (
        "test",
        "comparator",
        "value",
        "unit",
        "max_age_days",
        "action",
        "action_percent",
        "action_delay_days",
        "priority",
        "source",
    )


@admin.register(Regimen)
class RegimenAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "version", "intent", "indication", "is_active", "created_at")
    list_filter = ("intent", "is_active")
    search_fields = ("name", "indication", "source")
    inlines = (RegimenPhaseInline, PreCycleRuleInline)


class RegimenDrugInline(admin.TabularInline):  # type: ignore[type-arg]
    model = RegimenDrug
    extra = 0
    autocomplete_fields = ("drug",)
    fields = ("order", "drug", "dose", "dose_basis", "route", "days", "duration", "max_dose_mg")


@admin.register(RegimenPhase)
class RegimenPhaseAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("regimen", "order", "name", "cycle_length_days", "planned_cycles")
    list_filter = ("regimen__intent",)
    search_fields = ("name", "regimen__name")
    list_select_related = ("regimen",)
    inlines = (RegimenDrugInline,)


@admin.register(RegimenDrug)
class RegimenDrugAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("phase", "drug", "dose", "dose_basis", "route", "days", "max_dose_mg")
    list_filter = ("dose_basis", "route")
    search_fields = ("drug__name", "phase__name", "phase__regimen__name")
    list_select_related = ("phase__regimen", "drug")
    autocomplete_fields = ("drug",)


class ChemoCycleInline(ReadOnlyInline):
    model = ChemoCycle
    fields = ("number", "phase", "planned_start", "actual_start", "end_date", "status", "reason")
    readonly_fields = fields


@admin.register(Course)
class CourseAdmin(GatedPhiAdmin):
    list_display = ("patient", "regimen", "start_date", "intent", "status", "stopped_on")
    list_filter = ("status", "intent", "regimen__name")
    search_fields = ("patient__mrn", "patient__family_name", "regimen__name")
    date_hierarchy = "start_date"
    list_select_related = ("patient", "regimen")
    inlines = (ChemoCycleInline,)


@admin.register(ChemoCycle)
class ChemoCycleAdmin(GatedPhiAdmin):
    list_display = ("course", "number", "planned_start", "actual_start", "status")
    list_filter = ("status",)
    search_fields = ("course__patient__mrn", "course__patient__family_name")
    date_hierarchy = "planned_start"
    list_select_related = ("course__regimen",)


@admin.register(DoseModification)
class DoseModificationAdmin(GatedPhiAdmin):
    list_display = ("course", "drug", "from_cycle_number", "percent", "created_by", "created_at")
    list_filter = ("drug",)
    search_fields = ("course__patient__mrn", "course__patient__family_name", "reason")
    list_select_related = ("course__regimen", "drug", "created_by")


@admin.register(Administration)
class AdministrationAdmin(GatedPhiAdmin):
    list_display = ("given_at", "drug", "dose_mg", "dose_percent", "formula", "cycle")
    list_filter = ("formula", "route", "drug")
    search_fields = ("cycle__course__patient__mrn", "cycle__course__patient__family_name")
    date_hierarchy = "given_at"
    list_select_related = ("drug", "cycle")


@admin.register(CtcaeTerm)
class CtcaeTermAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("term", "version", "category", "ncit_code", "max_grade", "is_common")
    list_filter = ("version", "is_common", "category")
    search_fields = ("term", "category", "ncit_code", "lab_loinc")


@admin.register(SideEffect)
class SideEffectAdmin(GatedPhiAdmin):
    list_display = ("patient", "term", "grade", "onset", "resolved_on", "source")
    list_filter = ("grade", "source", "ctcae_version")
    search_fields = ("patient__mrn", "patient__family_name", "term__term")
    date_hierarchy = "onset"
    list_select_related = ("patient", "term")
