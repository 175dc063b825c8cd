"""Admin for the regimen library (editable by administrators until a course uses a version)
and, behind the access gate, read-only views of courses, cycles, dose changes, administrations
and side effects (PHI: clinicians record those in the app, through the services that enforce
the clinical rules)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, ForeignKey, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from labs.models import PreCycleRule
from oncoplanner.admin_history import ValueHistoryAdmin
from patients.admin_gate import GatedPhiAdmin, ReadOnlyInline
from treatments.models import (
    Administration,
    ChemoCycle,
    Course,
    CtcaeTerm,
    CycleStatusChange,
    DoseModification,
    DoseVerification,
    Drug,
    Regimen,
    RegimenApproval,
    RegimenDrug,
    RegimenPhase,
    SideEffect,
    SupportiveMedication,
    UnitClosure,
)
from treatments.regimen_versions import (
    regimen_frozen_note,
    regimen_is_frozen,
    regimen_missing_approvals,
    regimen_new_version,
    regimen_retire_other_versions,
)

FROZEN_CHANGE_FORM = "admin/treatments/regimen_frozen_change_form.html"
# A version rows can still be added to or moved into (regimen_is_frozen, as a filter).
EDITABLE_REGIMEN = Q(courses__isnull=True, approvals__isnull=True, approved_at__isnull=True)


@admin.register(Drug)
class DrugAdmin(ValueHistoryAdmin):
    list_display = (
        "name",
        "drug_class",
        "lifetime_limit_mg_m2",
        "limit_warning_fraction",
        "dose_banding_tolerance_percent",
    )
    list_filter = ("drug_class",)
    search_fields = ("name", "drug_class")


# --- Regimen versions: frozen once approved or used (DOMAIN.md 2) ----------------------------
# A course keeps the version it started on, and its cycles read their doses from these rows;
# an oncologist and a pharmacist approve a version before it is offered. Once a version has an
# approval or a course, its phases, drugs and pre-cycle rules are read-only here for every
# administrator, superusers included. The models refuse the same change on every other door
# (treatments.models.regimen_refuse_if_frozen); a change is made on a new version.


class FrozenWhenInUse:
    """Permissions of an admin or inline of a regimen's rows: no add, change or delete once the
    regimen is approved or used. `regimen_of` maps the object (for an inline, its parent) to
    it."""

    @staticmethod
    def regimen_of(obj: Any) -> Regimen:
        raise NotImplementedError

    def is_frozen(self, obj: Any) -> bool:
        return obj is not None and regimen_is_frozen(regimen=self.regimen_of(obj))

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        # ModelAdmin passes no object; an inline passes its parent.
        frozen = bool(args) and self.is_frozen(args[0])
        return not frozen and super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self.is_frozen(obj) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self.is_frozen(obj) and super().has_delete_permission(request, obj)  # type: ignore[misc]


class FrozenNote:
    """A change page that says why a frozen regimen's rows are read-only (FROZEN_CHANGE_FORM)."""

    change_form_template = FROZEN_CHANGE_FORM

    @staticmethod
    def regimen_of(obj: Any) -> Regimen:
        raise NotImplementedError

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        *args: Any,
        obj: Any = None,
        **kwargs: Any,
    ) -> HttpResponse:
        if obj is not None:
            context["frozen_note"] = regimen_frozen_note(regimen=self.regimen_of(obj))
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)  # type: ignore[misc]


class FrozenRegimenRowsAdmin(FrozenNote, FrozenWhenInUse, ValueHistoryAdmin):
    """Admin of phases, drugs or pre-cycle rules: read-only with a note once frozen; new or
    moved rows can only go to a regimen no course uses. ("Delete selected" asks each row's
    has_delete_permission, so it refuses frozen rows too.)"""

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> Any:
        if db_field.related_model is Regimen:
            kwargs["queryset"] = Regimen.objects.filter(EDITABLE_REGIMEN).distinct()
        elif db_field.related_model is RegimenPhase:
            kwargs["queryset"] = (
                RegimenPhase.objects.filter(regimen__in=Regimen.objects.filter(EDITABLE_REGIMEN))
                .select_related("regimen")
                .distinct()
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class RegimenPhaseInline(FrozenWhenInUse, admin.TabularInline):  # type: ignore[type-arg]
    model = RegimenPhase
    extra = 0
    show_change_link = True  # drugs of a phase are edited on the phase's page
    fields = ("order", "name", "cycle_length_days", "planned_cycles")

    @staticmethod
    def regimen_of(obj: Any) -> Regimen:
        return obj  # type: ignore[no-any-return]


class PreCycleRuleInline(FrozenWhenInUse, admin.TabularInline):  # type: ignore[type-arg]
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

    @staticmethod
    def regimen_of(obj: Any) -> Regimen:
        return obj  # type: ignore[no-any-return]


class SupportiveMedicationInline(FrozenWhenInUse, admin.TabularInline):  # type: ignore[type-arg]
    """Premedication, antiemetics, growth factor, hydration: part of the version, read-only
    once it is frozen like its phases and drugs."""

    model = SupportiveMedication
    extra = 0
    fields = (
        "order",
        "phase",
        "category",
        "medication",
        "dose_route",
        "timing",
        "days",
        "required_before",
        "source",
    )

    @staticmethod
    def regimen_of(obj: Any) -> Regimen:
        return obj  # type: ignore[no-any-return]

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        # Only this version's phases and drugs (the model refuses others; say it up front).
        fields = formset.form.base_fields
        if "phase" in fields:
            fields["phase"].queryset = RegimenPhase.objects.filter(regimen=obj).order_by("order")
        if "required_before" in fields:
            fields["required_before"].queryset = (
                RegimenDrug.objects.filter(phase__regimen=obj)
                .select_related("drug", "phase__regimen")
                .order_by("phase__order", "order")
            )
        return formset


class RegimenApprovalInline(ReadOnlyInline):
    """Approvals are given by an oncologist and a pharmacist on the clinic's Regimens page,
    with their password; here they are only shown."""

    model = RegimenApproval
    fields = readonly_fields = ("discipline", "approved_by", "approved_at", "note")


class RegimenAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    """Offering a version retires the other offered versions of its name
    (regimen_retire_other_versions): the administrator confirms that, naming them, before it
    happens, rather than learning it from a message afterwards."""

    confirm_retire = forms.BooleanField(
        required=False,
        label="Confirm retiring the other offered versions",
        help_text="Needed only when ticking “Offered for new courses” retires another "
        "version of this regimen. Courses on a retired version keep it.",
    )

    class Meta:
        model = Regimen
        fields = "__all__"  # noqa: DJ007 - the admin's fields, as without a custom form

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        name = cleaned.get("name") or self.instance.name
        if not cleaned.get("is_active") or not name:
            return cleaned
        others = Regimen.objects.filter(name=name, is_active=True).order_by("version")
        if self.instance.pk is not None:
            others = others.exclude(pk=self.instance.pk)
        names = ", ".join(str(r) for r in others)
        if names and not cleaned.get("confirm_retire"):
            self.add_error(
                "confirm_retire",
                f"Offering this version stops offering {names} for new courses (courses on it "
                "keep their version). Tick to confirm, then save again.",
            )
        return cleaned


@admin.register(Regimen)
class RegimenAdmin(FrozenNote, ValueHistoryAdmin):
    form = RegimenAdminForm
    list_display = (
        "name",
        "version",
        "intent",
        "indication",
        "approval",
        "is_active",
        "course_count",
        "created_at",
    )
    list_filter = ("intent", "is_active")
    search_fields = ("name", "indication", "source")
    readonly_fields = ("approval", "created_by")
    inlines = (
        RegimenPhaseInline,
        PreCycleRuleInline,
        SupportiveMedicationInline,
        RegimenApprovalInline,
    )
    actions = ("create_new_version",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Regimen]:
        return (
            super()
            .get_queryset(request)
            .annotate(course_count=Count("courses", distinct=True))
            .prefetch_related("approvals")
        )

    @admin.display(description="courses", ordering="course_count")
    def course_count(self, obj: Regimen) -> int:
        return obj.course_count  # type: ignore[attr-defined,no-any-return]

    @admin.display(description="approval")
    def approval(self, obj: Regimen) -> str:
        if obj.pk is None:
            return "Approved by an oncologist and a pharmacist once built (Regimens page)."
        missing = regimen_missing_approvals(regimen=obj)
        if not missing:
            return "Approved"
        return "Awaiting " + " and ".join(missing)

    def save_model(self, request: HttpRequest, obj: Regimen, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]  # the author does not approve it
        super().save_model(request, obj, form, change)
        retired = regimen_retire_other_versions(regimen=obj, by=request.user)  # type: ignore[arg-type]
        if retired:
            names = ", ".join(str(r) for r in retired)
            self.message_user(
                request,
                f"{names} no longer offered for new courses: {obj} replaces it. Courses on it "
                "keep their version.",
                messages.INFO,
            )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = tuple(super().get_readonly_fields(request, obj))
        if obj is None or not regimen_is_frozen(regimen=obj):
            return readonly
        # Frozen: only whether the version is offered for new courses may change (it changes
        # no course), so that an old version can be retired once its successor is ready.
        frozen = tuple(
            f.name
            for f in Regimen._meta.fields
            if f.editable and f.name not in Regimen.FROZEN_IGNORES and f.name not in readonly
        )
        return readonly + frozen

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        frozen = obj is not None and regimen_is_frozen(regimen=obj)
        return not frozen and super().has_delete_permission(request, obj)

    @staticmethod
    def regimen_of(obj: Any) -> Regimen:
        return obj  # type: ignore[no-any-return]

    @admin.action(description="Create a new version", permissions=["add"])
    def create_new_version(
        self, request: HttpRequest, queryset: QuerySet[Regimen]
    ) -> HttpResponse | None:
        regimens = list(queryset[:2])
        if len(regimens) != 1:
            self.message_user(
                request, "Select one regimen to make a new version of.", messages.WARNING
            )
            return None
        old = regimens[0]
        try:
            new = regimen_new_version(regimen=old, by=request.user)  # type: ignore[arg-type]
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return None
        self.message_user(
            request,
            f"Created {new} as a copy of {old} with its phases, drugs, pre-cycle rules and "
            f"supportive care. No "
            f"course uses it yet, so it can be edited. When it is ready, an oncologist and a "
            f"pharmacist approve it on the Regimens page; then tick \u201cOffered for new "
            f"courses\u201d, and {old} is retired (its courses keep it).",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:treatments_regimen_change", args=[new.pk]))


class RegimenDrugInline(FrozenWhenInUse, admin.TabularInline):  # type: ignore[type-arg]
    model = RegimenDrug
    extra = 0
    autocomplete_fields = ("drug",)
    fields = ("order", "drug", "dose", "dose_basis", "route", "days", "duration", "max_dose_mg")

    @staticmethod
    def regimen_of(obj: Any) -> Regimen:
        return obj.regimen  # type: ignore[no-any-return]


@admin.register(RegimenPhase)
class RegimenPhaseAdmin(FrozenRegimenRowsAdmin):
    list_display = ("regimen", "order", "name", "cycle_length_days", "planned_cycles")
    list_filter = ("regimen__intent",)
    search_fields = ("name", "regimen__name")
    list_select_related = ("regimen",)
    inlines = (RegimenDrugInline,)

    @staticmethod
    def regimen_of(obj: Any) -> Regimen:
        return obj.regimen  # type: ignore[no-any-return]


@admin.register(RegimenDrug)
class RegimenDrugAdmin(FrozenRegimenRowsAdmin):
    list_display = ("phase", "drug", "dose", "dose_basis", "route", "days", "max_dose_mg")
    list_filter = ("dose_basis", "route")
    search_fields = ("drug__name", "phase__name", "phase__regimen__name")
    list_select_related = ("phase__regimen", "drug")
    autocomplete_fields = ("drug",)

    @staticmethod
    def regimen_of(obj: Any) -> Regimen:
        return obj.phase.regimen  # type: ignore[no-any-return]


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


class CycleStatusChangeInline(ReadOnlyInline):
    """The cycle's history (append-only: the model refuses any change), shown under the
    gated cycle; it has no admin page of its own."""

    model = CycleStatusChange
    show_change_link = False
    fields = readonly_fields = (
        "at",
        "by",
        "status",
        "planned_start_before",
        "planned_start_after",
        "actual_start",
        "reason",
        "given_despite",
        "from_before_history",
        "moved_with",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[CycleStatusChange]:
        return super().get_queryset(request).select_related("by", "moved_with__cycle")


@admin.register(ChemoCycle)
class ChemoCycleAdmin(GatedPhiAdmin):
    list_display = ("course", "number", "planned_start", "actual_start", "status")
    list_filter = ("status",)
    search_fields = ("course__patient__mrn", "course__patient__family_name")
    date_hierarchy = "planned_start"
    list_select_related = ("course__regimen",)
    inlines = (CycleStatusChangeInline,)


@admin.register(DoseModification)
class DoseModificationAdmin(GatedPhiAdmin):
    list_display = ("course", "drug", "from_cycle_number", "percent", "created_by", "created_at")
    list_filter = ("drug",)
    search_fields = ("course__patient__mrn", "course__patient__family_name", "reason")
    list_select_related = ("course__regimen", "drug", "created_by")


@admin.register(Administration)
class AdministrationAdmin(GatedPhiAdmin):
    list_display = (
        "given_at",
        "drug",
        "dose_mg",
        "dispensed_dose_mg",
        "dose_percent",
        "formula",
        "cycle",
    )
    list_filter = ("formula", "route", "drug")
    search_fields = ("cycle__course__patient__mrn", "cycle__course__patient__family_name")
    date_hierarchy = "given_at"
    list_select_related = ("drug", "cycle")


@admin.register(DoseVerification)
class DoseVerificationAdmin(GatedPhiAdmin):
    list_display = ("verified_at", "cycle", "verified_by")
    # What was verified: the dispensed (banded) doses and the calculation inputs.
    readonly_fields = ("dispensed_doses", "dose_inputs")
    search_fields = ("cycle__course__patient__mrn", "cycle__course__patient__family_name")
    date_hierarchy = "verified_at"
    list_select_related = ("cycle", "verified_by")


@admin.register(CtcaeTerm)
class CtcaeTermAdmin(ValueHistoryAdmin):
    list_display = ("term", "version", "category", "ncit_code", "max_grade", "is_common")
    list_filter = ("version", "is_common", "category")
    search_fields = ("term", "category", "ncit_code", "lab_loinc")


@admin.register(UnitClosure)
class UnitClosureAdmin(ValueHistoryAdmin):
    """The day unit's own closures (treatments.schedule): every page marks a cycle planned on
    one with its reason, and the prescriber is told. Not patient data; the admin history
    records each change's old and new values, like the rest of the clinic's configuration."""

    list_display = ("first_day", "last_day", "days", "reason", "created_by", "created_at")
    list_select_related = ("created_by",)
    ordering = ("-first_day", "-pk")
    date_hierarchy = "first_day"
    search_fields = ("reason",)
    readonly_fields = ("created_by", "created_at")

    @admin.display(description="days")
    def days(self, obj: UnitClosure) -> int:
        return obj.days

    def save_model(self, request: HttpRequest, obj: UnitClosure, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)


@admin.register(SideEffect)
class SideEffectAdmin(GatedPhiAdmin):
    list_display = ("patient", "term", "grade", "onset", "resolved_on", "source")
    list_filter = ("grade", "source", "ctcae_version")
    search_fields = ("patient__mrn", "patient__family_name", "term__term")
    date_hierarchy = "onset"
    list_select_related = ("patient", "term")
