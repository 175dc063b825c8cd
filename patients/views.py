from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from oncoplanner import access_context
from oncoplanner.confirmation import ConfirmationRequired
from oncoplanner.dates import day_text
from oncoplanner.forms import add_service_errors
from patients import chart_cache, dashboard, fhir, selectors, services
from patients.forms import (
    AllergyEnteredInErrorForm,
    AllergyForm,
    CareTeamMemberForm,
    EmergencyAccessForm,
    InvitationAcceptForm,
    InvitationForm,
    MeasurementForm,
    PatientDetailsForm,
    PatientListForm,
    PatientRegisterForm,
)
from patients.models import BodyMeasurement, Patient, latest_measurement
from treatments.dosing import weight_change_needing_review


@login_required
@require_http_methods(["GET"])
def patient_list(request: HttpRequest) -> HttpResponse:
    if not request.user.is_clinician:  # type: ignore[union-attr]
        raise Http404("No such page.")
    form = PatientListForm(request.GET or None)
    template = "patients/patient_list.html"
    if request.htmx:  # type: ignore[attr-defined]
        template += "#patient-table"
    if request.GET and not form.is_valid():
        # An unknown filter is a bad link, not an empty list: say so.
        return render(
            request,
            template,
            {"form": form, "listing": None, "filters": dashboard.FILTERS},
            status=400,
        )
    data = form.cleaned_data if request.GET else {}
    listing = dashboard.patient_list_page(
        user=request.user,  # type: ignore[arg-type]
        q=data.get("q") or "",
        filter=data.get("filter") or dashboard.DEFAULT_FILTER,
        page=request.GET.get("page", 1),
    )
    context = {
        "form": form,
        "listing": listing,
        "filters": dashboard.FILTERS,
        "today": timezone.localdate(),
    }
    return render(request, template, context)


PATIENT_FORM_TEMPLATE = "patients/patient_form.html"


@login_required
@require_http_methods(["GET", "POST"])
def patient_create(request: HttpRequest) -> HttpResponse:
    """Register a patient on one of the clinician's own care teams, then open the new chart."""
    teams = services.registration_teams(user=request.user)  # type: ignore[arg-type]
    if request.method == "GET":
        form = PatientRegisterForm(teams=teams)
        return render(request, PATIENT_FORM_TEMPLATE, {"form": form, "has_team": teams.exists()})
    form = PatientRegisterForm(request.POST, teams=teams)
    if form.is_valid():
        try:
            patient = services.patient_register(
                registered_by=request.user,  # type: ignore[arg-type]
                care_team=form.cleaned_data["care_team"],
                **form.patient_fields(),
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Registered {patient}.")
            return redirect("patients:patient_detail", patient_id=patient.pk)
    context = {"form": form, "has_team": teams.exists()}
    return render(request, PATIENT_FORM_TEMPLATE, context, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def patient_update(request: HttpRequest, patient_id: int) -> HttpResponse:
    """Correct the chart's details (not the MRN, not the care team: as the REST PATCH).

    A new date of birth or sex changes doses and reference ranges: the page says how, and the
    change is saved only once confirmed."""
    patient = selectors.patient_get_for_user(
        user=request.user, patient_id=patient_id, perm=selectors.CHANGE
    )
    if request.method == "GET":
        form = PatientDetailsForm(initial=_details_of(patient))
        return render(request, PATIENT_FORM_TEMPLATE, {"form": form, "patient": patient})
    form = PatientDetailsForm(request.POST)
    changes: list[str] = []
    if form.is_valid():
        data = form.cleaned_data
        changes = _dose_input_changes(patient, date_of_birth=data["date_of_birth"], sex=data["sex"])
        if changes and not data["confirm_clinical_change"]:
            for name in ("date_of_birth", "sex"):
                if data[name] != getattr(patient, name):
                    form.add_error(name, "Check this change, then confirm it below.")
        else:
            try:
                # A copy: a refused change must not show on the page as if it were saved.
                services.patient_update(
                    patient=copy.copy(patient),
                    updated_by=request.user,  # type: ignore[arg-type]
                    confirm_dose_input_change=bool(changes),  # confirmed on this page above
                    **form.patient_fields(),
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, "Details saved.")
                if changes:
                    messages.warning(request, " ".join([*changes, _REVIEW_AFTER_CHANGE]))
                return redirect("patients:patient_detail", patient_id=patient.pk)
    context = {"form": form, "patient": patient, "changes": changes}
    return render(request, PATIENT_FORM_TEMPLATE, context, status=400)


def _details_of(patient: Patient) -> dict[str, object]:
    return {name: getattr(patient, name) for name in PatientDetailsForm.PATIENT_FIELDS}


# Cockcroft-Gault (DOMAIN.md 3): CrCl = (140 - age) x weight x (0.85 if female) / (72 x Cr).
_CG_FEMALE_FACTOR = Decimal("0.85")
_CG_SEXES = {Patient.Sex.FEMALE, Patient.Sex.MALE}
_REVIEW_AFTER_CHANGE = (
    "Doses already given and results already recorded keep the values they were computed "
    "and flagged with: review the next dose of each open course."
)


def _percent_words(ratio: Decimal) -> str:
    percent = (ratio - 1) * 100
    return f"{abs(percent):.0f}% {'higher' if percent > 0 else 'lower'}"


def _dose_input_changes(patient: Patient, *, date_of_birth: date, sex: str) -> list[str]:
    """What a new date of birth or sex changes, in plain words; empty when neither changes.

    Both are inputs of carboplatin doses (Calvert, from Cockcroft-Gault clearance) and choose
    the reference range a new lab result is flagged against (labs.services.applied_range_for).
    """
    today = timezone.localdate()
    lines: list[str] = []
    if date_of_birth != patient.date_of_birth:
        old_age = patient.age_on(today)
        age = (
            today.year
            - date_of_birth.year
            - ((today.month, today.day) < (date_of_birth.month, date_of_birth.day))
        )
        line = (
            f"Date of birth {day_text(patient.date_of_birth)} → {day_text(date_of_birth)}: "
            f"age {old_age} → {age}."
        )
        if age != old_age and 0 <= age < 140 and old_age < 140:
            ratio = Decimal(140 - age) / Decimal(140 - old_age)
            line += (
                f" Cockcroft-Gault creatinine clearance (140 − age) becomes {_percent_words(ratio)}"
                " for the same weight and creatinine, and carboplatin (AUC) doses with it."
            )
        lines.append(line + " Age-banded lab reference ranges follow the new age.")
    if sex != patient.sex:
        old_label = Patient.Sex(patient.sex).label if patient.sex in Patient.Sex.values else "—"
        line = f"Sex {old_label} → {Patient.Sex(sex).label}:"
        if patient.sex in _CG_SEXES and sex in _CG_SEXES:
            ratio = _CG_FEMALE_FACTOR if sex == Patient.Sex.FEMALE else 1 / _CG_FEMALE_FACTOR
            line += (
                f" Cockcroft-Gault clearance becomes {_percent_words(ratio)} (× 0.85 for a female "
                "patient), and carboplatin (AUC) doses with it."
            )
        elif sex not in _CG_SEXES:
            line += (
                " carboplatin (AUC) doses can no longer be computed: Cockcroft-Gault needs the "
                "sex recorded as female or male."
            )
        else:
            line += " carboplatin (AUC) doses can be computed again (Cockcroft-Gault)."
        lines.append(line + " Sex-specific lab reference ranges (e.g. haemoglobin) follow it.")
    if lines:
        auc_drugs = selectors.auc_dosed_drugs_for(patient=patient)
        if auc_drugs:
            lines.append(
                f"This patient's open treatment includes {', '.join(auc_drugs)} dosed by AUC: "
                "its next dose changes."
            )
    return lines


@login_required
@require_http_methods(["GET"])
def patient_detail(request: HttpRequest, patient_id: int) -> HttpResponse:
    return _dashboard_page(request, patient_id)


def _dashboard_page(
    request: HttpRequest,
    patient_id: int,
    *,
    invitation_form: InvitationForm | None = None,
    allergy_form: AllergyForm | None = None,
    allergy_error: tuple[int, AllergyEnteredInErrorForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    door = dashboard.chart_door(user=request.user, patient_id=patient_id)  # type: ignore[arg-type]
    patient, on_team = door.patient, door.on_care_team
    break_glass = access_context.current().break_glass and not on_team
    if invitation_form is None and on_team and not patient.portal_user_id:
        invitation_form = InvitationForm()
    viewer = chart_cache.Viewer(
        on_care_team=on_team,
        break_glass=break_glass,
        may_decide_to_treat=request.user.may_decide_to_treat,  # type: ignore[union-attr]
    )

    def render_chart(csrf_token: str) -> str:
        return render_to_string(
            "patients/patient_detail.html#chart",
            {
                "patient": patient,
                "board": dashboard.dashboard_data(door),
                "viewer": viewer,
                "break_glass": break_glass,
                "today": timezone.localdate(),
                "allergy_form": allergy_form or AllergyForm(),
                # The entered-in-error form that came back with errors, and its row.
                "allergy_error_pk": allergy_error[0] if allergy_error else None,
                "allergy_error_form": allergy_error[1] if allergy_error else None,
                "csrf_token": csrf_token,
            },
        )

    chart = chart_cache.chart_html(
        request,
        patient=patient,
        viewer=viewer,
        render=render_chart,
        keep=allergy_form is None and allergy_error is None,  # never a form's errors
    )
    context = {
        "patient": patient,
        "door": door,
        "chart": chart,
        "break_glass": break_glass,
        "emergency_accesses": door.emergency_accesses,
        "invitation_form": invitation_form,
    }
    template = "patients/patient_detail.html"
    if request.htmx and request.htmx.target == "dashboard-live":  # type: ignore[attr-defined]
        template += "#live-body"  # a live refresh: the body only
    return render(request, template, context, status=status)


# --- Allergies: forms on the dashboard; with htmx each answers with the dashboard's live body,
# so the header's allergy banner changes with the list. Without JavaScript: redirect (done) or
# the whole dashboard with the form's errors (400, nothing written).


def _allergy_done(request: HttpRequest, patient_id: int, message: str) -> HttpResponse:
    if not request.htmx:  # type: ignore[attr-defined]
        messages.success(request, message)
        return redirect("patients:patient_detail", patient_id=patient_id)
    return _dashboard_page(request, patient_id)


@login_required
@require_POST
def allergy_create(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = selectors.patient_get_for_user(
        user=request.user, patient_id=patient_id, perm=selectors.CHANGE
    )
    form = AllergyForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            allergy = services.allergy_record(
                patient=patient,
                substance=data["substance"],
                category=data["category"],
                severity=data["severity"],
                reaction=data["reaction"],
                recorded_by=request.user,  # type: ignore[arg-type]
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            return _allergy_done(request, patient.pk, f"Allergy recorded: {allergy.summary}.")
    return _dashboard_page(request, patient.pk, allergy_form=form, status=400)


@login_required
@require_POST
def allergy_none_known(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = selectors.patient_get_for_user(
        user=request.user, patient_id=patient_id, perm=selectors.CHANGE
    )
    try:
        services.patient_no_known_allergies_record(patient=patient, recorded_by=request.user)  # type: ignore[arg-type]
    except ValidationError as error:
        form = AllergyForm()
        add_service_errors(form, error)
        return _dashboard_page(request, patient.pk, allergy_form=form, status=400)
    return _allergy_done(request, patient.pk, "Recorded: no known allergies.")


@login_required
@require_POST
def allergy_entered_in_error(
    request: HttpRequest, patient_id: int, allergy_id: int
) -> HttpResponse:
    allergy = selectors.allergy_get_for_user(
        user=request.user, patient_id=patient_id, allergy_id=allergy_id, perm=selectors.CHANGE
    )
    form = AllergyEnteredInErrorForm(request.POST)
    if form.is_valid():
        try:
            services.allergy_mark_entered_in_error(
                allergy=allergy,
                by=request.user,  # type: ignore[arg-type]
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            return _allergy_done(
                request, allergy.patient_id, f"{allergy.substance} marked entered in error."
            )
    return _dashboard_page(
        request, allergy.patient_id, allergy_error=(allergy.pk, form), status=400
    )


MEASUREMENT_TEMPLATE = "patients/measurement_form.html"


@login_required
@require_http_methods(["GET", "POST"])
def measurement_create(request: HttpRequest, patient_id: int) -> HttpResponse:
    """Record a weight (and a height when measured): weight-based doses need a current one."""
    patient = selectors.patient_get_for_user(
        user=request.user, patient_id=patient_id, perm=selectors.CHANGE
    )
    if request.method == "GET":
        form = MeasurementForm(initial={"measured_on": timezone.localdate()})
        return render(request, MEASUREMENT_TEMPLATE, _measurement_context(patient, form))
    form = MeasurementForm(request.POST)
    ask_confirm = False
    if form.is_valid():
        data = form.cleaned_data
        try:
            measurement = services.measurement_record(
                patient=patient,
                measured_on=data["measured_on"],
                height_cm=data["height_cm"],
                weight_kg=data["weight_kg"],
                recorded_by=request.user,  # type: ignore[arg-type]
                confirm_change=data["confirm_change"],
            )
        except ValidationError as error:
            ask_confirm = isinstance(error, ConfirmationRequired)
            add_service_errors(form, error)
        else:
            messages.success(request, f"Recorded {_measurement_words(measurement)}.")
            _warn_if_the_dose_needs_review(request, patient, measurement.weight_kg)
            return redirect("patients:patient_detail", patient_id=patient.pk)
    context = _measurement_context(patient, form)
    context["ask_confirm"] = ask_confirm
    return render(request, MEASUREMENT_TEMPLATE, context, status=400)


def _measurement_context(patient: Patient, form: MeasurementForm) -> dict[str, object]:
    return {
        "patient": patient,
        "form": form,
        "last_weight": latest_measurement(patient, "weight_kg"),
        "last_height": latest_measurement(patient, "height_cm"),
        "max_age_days": settings.DOSING_WEIGHT_MAX_AGE_DAYS,
    }


def _measurement_words(measurement: BodyMeasurement) -> str:
    values = [
        f"{label} {value} {unit}"
        for label, value, unit in (
            ("weight", measurement.weight_kg, "kg"),
            ("height", measurement.height_cm, "cm"),
        )
        if value is not None
    ]
    return f"{' and '.join(values)} on {day_text(measurement.measured_on)}"


def _warn_if_the_dose_needs_review(
    request: HttpRequest, patient: Patient, weight_kg: Decimal | None
) -> None:
    # Clinical rule: a weight change of 10 % or more (settings) from the weight the last dose
    # was computed from means the dose is recalculated, not carried on.
    change = (
        weight_change_needing_review(patient=patient, weight_kg=weight_kg)
        if weight_kg is not None
        else None
    )
    if change is not None:
        messages.warning(
            request,
            f"Weight {change.percent:+}% against the {change.dosed_weight_kg} kg the last dose "
            f"was computed from ({day_text(change.dosed_on)}): review the dose before the "
            "next cycle.",
        )


@login_required
@require_http_methods(["GET"])
@never_cache
def patient_fhir_export(request: HttpRequest, patient_id: int) -> HttpResponse:
    """The chart as a FHIR R4 Bundle, downloaded: for the next provider's system."""
    access_context.update(surface="export")
    bundle = fhir.patient_fhir_bundle(user=request.user, patient_id=patient_id)
    return HttpResponse(
        json.dumps(bundle, indent=2, ensure_ascii=False),
        content_type="application/fhir+json; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="patient-{int(patient_id)}-fhir-r4.json"'
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def emergency_access_create(request: HttpRequest) -> HttpResponse:
    if not request.user.is_clinician:  # type: ignore[union-attr]
        raise Http404("No such page.")
    form = EmergencyAccessForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        patient_id = selectors.patient_id_for_emergency(
            user=request.user, mrn=form.cleaned_data["mrn"]
        )
        if not selectors.patient_on_care_team_of(user=request.user, patient_id=patient_id):
            try:
                services.emergency_access_open(
                    user=request.user, patient_id=patient_id, reason=form.cleaned_data["reason"]
                )
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
                return render(request, "patients/emergency_access.html", {"form": form})
        return redirect("patients:patient_detail", patient_id=patient_id)
    return render(request, "patients/emergency_access.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def care_team_manage(request: HttpRequest, team_id: int) -> HttpResponse:
    team = selectors.care_team_get_for_manager(user=request.user, team_id=team_id)
    form = CareTeamMemberForm(request.POST or None, team_group_id=team.group_id)
    if request.method == "POST":
        if request.POST.get("action") == "remove":
            raw_id = str(request.POST.get("user_id", ""))
            # Check the id is a number before it reaches the query: a crafted value is a 404.
            member_user = (
                selectors.care_team_members(team=team).filter(pk=int(raw_id)).first()
                if raw_id.isdigit()
                else None
            )
            if member_user is None:
                raise Http404("No member matches the given query.")
            services.care_team_remove_member(
                team=team, clinician=member_user, revoked_by=request.user
            )
            messages.success(request, f"{member_user} removed from {team}.")
            return redirect("patients:care_team_manage", team_id=team.pk)
        if form.is_valid():
            services.care_team_add_member(
                team=team, clinician=form.cleaned_data["user"], granted_by=request.user
            )
            messages.success(request, f"{form.cleaned_data['user']} added to {team}.")
            return redirect("patients:care_team_manage", team_id=team.pk)
    context = {"team": team, "members": selectors.care_team_members(team=team), "form": form}
    return render(request, "patients/care_team.html", context)


@login_required
@require_POST
def invitation_create(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = selectors.patient_get_for_user(
        user=request.user, patient_id=patient_id, perm=selectors.CHANGE
    )
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            services.invitation_create(
                patient=patient, email=form.cleaned_data["email"], created_by=request.user
            )
        except PermissionDenied:
            raise Http404("No Patient matches the given query.") from None
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "Invitation sent.")
            return redirect("patients:patient_detail", patient_id=patient.pk)
    # The chart again, with the form's errors beside the email field (400: nothing was sent).
    return _dashboard_page(request, patient.pk, invitation_form=form, status=400)


@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = services.invitation_get_usable(token=token)
    form = InvitationAcceptForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.invitation_accept(
                token=token,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
            )
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                target = {"password": "password1"}.get(field, field)
                form.add_error(target if target in form.fields else None, errors)
        else:
            messages.success(request, "Your portal account is ready. Please sign in.")
            return redirect("account_login")
    return render(
        request, "patients/invitation_accept.html", {"form": form, "email": invitation.email}
    )
