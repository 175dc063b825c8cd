"""Admin for patients: care teams (membership through the audited services), PHI behind the gate."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from guardian.shortcuts import get_users_with_perms

from oncoplanner.accounts.models import User
from patients import services
from patients.admin_gate import GatedPhiAdmin, ReadOnlyInline
from patients.models import (
    Allergy,
    BodyMeasurement,
    CareTeam,
    EmergencyAccess,
    Patient,
    PatientInvitation,
    SymptomReport,
)
from patients.selectors import care_team_members, scope_queryset


def _team_candidates() -> QuerySet[User]:
    # Clinicians only (patients.services.care_team_add_member): administrators manage teams.
    return User.objects.filter(role=User.Role.CLINICIAN, is_active=True).order_by(
        "last_name", "first_name", "username"
    )


class CareTeamForm(forms.ModelForm):  # type: ignore[type-arg]
    members = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(),
        required=False,
        widget=admin.widgets.FilteredSelectMultiple("members", is_stacked=False),
        help_text="Members see and edit every patient of the team from their next request.",
    )
    leads = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(),
        required=False,
        widget=admin.widgets.FilteredSelectMultiple("leads", is_stacked=False),
        help_text="Clinician members who may add and remove members on the care-team page.",
    )

    class Meta:
        model = CareTeam
        fields = ("name", "description", "phone_daytime", "phone_24h")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["members"].queryset = _team_candidates()  # type: ignore[attr-defined]
        self.fields["leads"].queryset = _team_candidates().filter(role=User.Role.CLINICIAN)  # type: ignore[attr-defined]
        if self.instance.pk:
            self.fields["members"].initial = list(care_team_members(team=self.instance))
            self.fields["leads"].initial = list(_leads(self.instance))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        members = set(data.get("members") or [])
        if set(data.get("leads") or []) - members:
            self.add_error("leads", "A lead must also be a member of the team.")
        return data


def _leads(team: CareTeam) -> QuerySet[User]:
    return get_users_with_perms(  # type: ignore[no-any-return]
        team, only_with_perms_in=["manage_careteam"], with_group_users=False
    )


@admin.register(CareTeam)
class CareTeamAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Membership is written through care_team_add_member/remove_member, so each grant and
    revocation reaches the access log; the patients of a team are not listed (PHI)."""

    form = CareTeamForm
    list_display = ("name", "member_count", "patient_count", "phone_24h", "description")
    search_fields = ("name", "description")
    fieldsets = (
        (None, {"fields": ("name", "description")}),
        (
            "Numbers patients are given",
            {
                "fields": ("phone_24h", "phone_daytime"),
                "description": "Shown in the patient portal as tap-to-call links. Without a "
                "24-hour number, patients with an urgent symptom are told to call 999/112 or go "
                "to the emergency department.",
            },
        ),
        ("Members", {"fields": ("members", "leads")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[CareTeam]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                _members=Count("group__user", distinct=True),
                _patients=Count("patients", distinct=True),
            )
        )

    @admin.display(description="members", ordering="_members")
    def member_count(self, team: CareTeam) -> int:
        return team._members  # type: ignore[attr-defined,no-any-return]

    @admin.display(description="patients", ordering="_patients")
    def patient_count(self, team: CareTeam) -> int:
        return team._patients  # type: ignore[attr-defined,no-any-return]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a team with history is renamed or emptied, never deleted

    def save_model(self, request: HttpRequest, obj: CareTeam, form: Any, change: bool) -> None:
        fields = {
            name: form.cleaned_data[name]
            for name in ("name", "description", "phone_daytime", "phone_24h")
        }
        if change:
            services.care_team_update(team=obj, updated_by=request.user, **fields)  # type: ignore[arg-type]
        else:
            team = services.care_team_create(created_by=request.user, **fields)  # type: ignore[arg-type]
            obj.pk, obj.group_id = team.pk, team.group_id
            obj._state.adding = False

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        team: CareTeam = form.instance
        actor: User = request.user  # type: ignore[assignment]
        current = set(care_team_members(team=team))
        wanted = set(form.cleaned_data.get("members") or [])
        current_leads = set(_leads(team))
        wanted_leads = set(form.cleaned_data.get("leads") or [])
        for user in current_leads - wanted_leads:
            services.care_team_lead_set(team=team, clinician=user, lead=False, granted_by=actor)
        for user in current - wanted:
            services.care_team_remove_member(team=team, clinician=user, revoked_by=actor)
        for user in wanted - current:
            services.care_team_add_member(team=team, clinician=user, granted_by=actor)
        for user in wanted_leads - current_leads:
            services.care_team_lead_set(team=team, clinician=user, lead=True, granted_by=actor)


class BodyMeasurementInline(ReadOnlyInline):
    model = BodyMeasurement
    fields = ("measured_on", "height_cm", "weight_kg", "recorded_by")
    readonly_fields = fields


@admin.register(Patient)
class PatientAdmin(GatedPhiAdmin):
    """Administrators register patients and assign their care team (through the services, so
    the team's access is granted and logged); they see only patients of their own teams."""

    phi_read_only = False
    list_display = ("mrn", "family_name", "given_name", "date_of_birth", "care_team", "is_active")
    list_filter = ("care_team", "is_active", "sex")
    search_fields = ("mrn", "family_name", "given_name")
    readonly_fields = ("portal_user", "created_at", "updated_at")
    inlines = (BodyMeasurementInline,)
    list_select_related = ("care_team",)

    def save_model(self, request: HttpRequest, obj: Patient, form: Any, change: bool) -> None:
        editable = [name for name in form.fields if name not in self.readonly_fields]
        if change:
            services.patient_update(
                patient=Patient.objects.get(pk=obj.pk),
                updated_by=request.user,  # type: ignore[arg-type]
                # The admin's own save is its confirmation (and charts are gated from admins).
                confirm_dose_input_change=True,
                **{name: getattr(obj, name) for name in form.changed_data if name in editable},
            )
        else:
            fields = {name: getattr(obj, name) for name in editable if name != "care_team"}
            created = services.patient_create(
                created_by=request.user,  # type: ignore[arg-type]
                care_team=obj.care_team,
                **fields,
            )
            obj.pk = created.pk
            obj._state.adding = False


@admin.register(BodyMeasurement)
class BodyMeasurementAdmin(GatedPhiAdmin):
    list_display = ("patient", "measured_on", "height_cm", "weight_kg", "recorded_by")
    list_filter = ("measured_on",)
    search_fields = ("patient__mrn", "patient__family_name")
    date_hierarchy = "measured_on"
    list_select_related = ("patient", "recorded_by")


@admin.register(Allergy)
class AllergyAdmin(GatedPhiAdmin):
    """Every entry, those entered in error included (the record and its correction), read-only
    and scoped to the user's care teams like every PHI admin."""

    list_display = (
        "patient",
        "substance",
        "category",
        "severity",
        "reaction",
        "recorded_at",
        "recorded_by",
        "entered_in_error_at",
    )
    list_filter = ("category", "severity", ("entered_in_error_at", admin.EmptyFieldListFilter))
    search_fields = ("patient__mrn", "patient__family_name", "substance")
    date_hierarchy = "recorded_at"
    list_select_related = ("patient", "recorded_by")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # Allergy.objects leaves entries in error out; admin shows the whole record.
        queryset = Allergy.all_objects.all()
        ordering = self.get_ordering(request)
        if ordering:
            queryset = queryset.order_by(*ordering)
        return scope_queryset(queryset, user=request.user)  # type: ignore[arg-type]


@admin.register(SymptomReport)
class SymptomReportAdmin(GatedPhiAdmin):
    list_display = ("patient", "symptom", "severity", "reported_at", "reviewed_by", "reviewed_at")
    list_filter = ("severity",)
    search_fields = ("patient__mrn", "patient__family_name", "symptom")
    date_hierarchy = "reported_at"
    list_select_related = ("patient", "reviewed_by")


@admin.register(EmergencyAccess)
class EmergencyAccessAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Oversight of break-glass use for administrators: read-only, and naming the patient only
    by id and MRN (no chart data), since administrators do not see charts by role."""

    list_display = ("granted_at", "user", "patient_ref", "expires_at", "active", "reason")
    list_filter = ("granted_at",)
    search_fields = ("user__username", "user__last_name", "patient__mrn", "reason")
    date_hierarchy = "granted_at"
    fields = ("user", "patient_ref", "reason", "granted_at", "expires_at")
    readonly_fields = fields
    list_select_related = ("user", "patient")

    @admin.display(description="patient")
    def patient_ref(self, access: EmergencyAccess) -> str:
        return f"#{access.patient_id} (MRN {access.patient.mrn})"

    @admin.display(boolean=True)
    def active(self, access: EmergencyAccess) -> bool:
        return access.is_active

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # opened by clinicians on /patients/emergency-access/ only

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PatientInvitationForm(forms.ModelForm):  # type: ignore[type-arg]
    # An MRN, not a patient drop-down: a select would list every patient's name to the admin.
    mrn = forms.CharField(label="Patient MRN", max_length=20)

    class Meta:
        model = PatientInvitation
        fields = ("email",)

    request_user: User | None = None  # set by PatientInvitationAdmin.get_form

    def clean_mrn(self) -> Patient:
        patient = Patient.objects.filter(mrn=self.cleaned_data["mrn"].strip().upper()).first()
        if patient is None:
            raise ValidationError("No patient has this MRN.")
        if patient.portal_user_id is not None:
            raise ValidationError("This patient already has a portal account.")
        if self.request_user is None or not services.may_invite(self.request_user, patient):
            raise ValidationError("You may not invite this patient.")
        return patient


@admin.register(PatientInvitation)
class PatientInvitationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Administrators invite a patient by MRN; the link is emailed, only its hash is stored."""

    list_display = ("created_at", "patient_ref", "email", "created_by", "expires_at", "status")
    list_filter = ("created_at",)
    search_fields = ("email", "patient__mrn")
    list_select_related = ("patient", "created_by")
    readonly_fields = (
        "patient_ref",
        "email",
        "created_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "accepted_user",
    )

    @admin.display(description="patient")
    def patient_ref(self, invitation: PatientInvitation) -> str:
        return f"#{invitation.patient_id} (MRN {invitation.patient.mrn})"

    @admin.display(description="status")
    def status(self, invitation: PatientInvitation) -> str:
        if invitation.accepted_at:
            return "accepted"
        return "open" if invitation.is_usable else "expired"

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = type(
                "PatientInvitationAddForm", (PatientInvitationForm,), {"request_user": request.user}
            )
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("mrn", "email") if obj is None else self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.readonly_fields

    def save_model(
        self, request: HttpRequest, obj: PatientInvitation, form: Any, change: bool
    ) -> None:
        invitation, _token = services.invitation_create(
            patient=form.cleaned_data["mrn"],
            email=form.cleaned_data["email"],
            created_by=request.user,  # type: ignore[arg-type]
        )
        obj.pk = invitation.pk
        obj._state.adding = False
        messages.info(request, "The invitation link was emailed; it is not shown here.")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
