"""Writes to patient records and care teams: the one write path (STYLE.md).

Every function validates with full_clean() and saves in one transaction; post_save reaches the
access log in that same transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, models, transaction
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from oncoplanner import access_context
from oncoplanner.accounts.models import User
from oncoplanner.confirmation import ConfirmationRequired
from oncoplanner.dates import day_text
from oncoplanner.signals import access_changed
from patients.models import (
    EMERGENCY_ACCESS_DURATION,
    INVITATION_LIFETIME,
    Allergy,
    BodyMeasurement,
    CareTeam,
    EmergencyAccess,
    Patient,
    PatientInvitation,
    SymptomReport,
    latest_measurement,
)
from patients.selectors import care_teams_of
from patients.tasks import notify_care_team_of_severe_symptom_report

PATIENT_OBJECT_PERMS = ("patients.view_patient", "patients.change_patient")
MANAGE_CARETEAM = "patients.manage_careteam"


@transaction.atomic
def care_team_create(
    *,
    name: str,
    description: str = "",
    phone_daytime: str = "",
    phone_24h: str = "",
    created_by: User | None = None,
) -> CareTeam:
    """A new team and its group. The numbers are what the team's patients are told to call in
    the portal (validated as phone numbers by full_clean)."""
    group = Group.objects.create(name=f"care-team:{name}")
    team = CareTeam(
        name=name,
        description=description,
        phone_daytime=(phone_daytime or "").strip(),
        phone_24h=(phone_24h or "").strip(),
        group=group,
    )
    team.full_clean()
    team.save()
    return team


@transaction.atomic
def care_team_add_member(*, team: CareTeam, clinician: User, granted_by: User | None) -> None:
    """Give `clinician` access to every patient of `team` (through the team's group).

    Precondition: `granted_by` may manage the team (checked by the caller). Sends
    access_changed so that the access log records the grant in this transaction.
    """
    # Clinicians only: an administrator who could join a team could open any chart by adding
    # herself, with no reason and no second person (separation of duties); the access gate
    # ignores administrators' memberships too.
    if not clinician.is_clinician:
        raise ValidationError(
            {"members": f"{clinician} is not a clinician: only clinicians join a care team."}
        )
    clinician.groups.add(team.group)
    access_changed.send(
        sender=CareTeam,
        patient=None,
        actor=granted_by,
        granted=True,
        detail={"care_team_id": team.pk, "clinician_id": clinician.pk},
    )


@transaction.atomic
def care_team_remove_member(*, team: CareTeam, clinician: User, revoked_by: User | None) -> None:
    """Take `clinician` off `team`: access to its patients ends on their next request.

    A removed member also stops being a lead of the team. Sends access_changed.
    """
    clinician.groups.remove(team.group)
    remove_perm(MANAGE_CARETEAM, clinician, team)
    access_changed.send(
        sender=CareTeam,
        patient=None,
        actor=revoked_by,
        granted=False,
        detail={"care_team_id": team.pk, "clinician_id": clinician.pk},
    )


def _grant_team(patient: Patient, team: CareTeam) -> None:
    for perm in PATIENT_OBJECT_PERMS:
        assign_perm(perm, team.group, patient)


def _revoke_team(patient: Patient, team: CareTeam) -> None:
    for perm in PATIENT_OBJECT_PERMS:
        remove_perm(perm, team.group, patient)


# A date of birth further back than this is a typo (1926 for 1962), not a patient: age drives
# Cockcroft-Gault (so carboplatin by Calvert) and the age-banded reference ranges. (The model
# refuses a date in the future.)
PATIENT_MAX_AGE_YEARS = 120
_DUPLICATE_MRN = (
    "MRN {mrn} is already registered in this clinic. Find the patient in the list (or ask "
    "their care team): one person must not have two charts."
)


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _validate_patient(patient: Patient, *, check_date_of_birth: bool) -> None:
    """full_clean, plus the clinic's rules, with every field's errors in one ValidationError."""
    errors: dict[str, Any] = {}
    dob = patient.date_of_birth
    if check_date_of_birth and isinstance(dob, date):
        oldest = _years_before(timezone.localdate(), PATIENT_MAX_AGE_YEARS)
        if dob < oldest:
            errors["date_of_birth"] = [
                f"Date of birth {day_text(dob)} is more than {PATIENT_MAX_AGE_YEARS} years "
                "ago: check the year."
            ]
    try:
        patient.full_clean()
    except ValidationError as error:
        errors = error.update_error_dict(errors)
    # The MRN is the clinic's identity of the patient: a second record under it would split the
    # chart. Named on the field, without the other record's name.
    if patient._state.adding and Patient.objects.filter(mrn=patient.mrn).exists():
        errors["mrn"] = [_DUPLICATE_MRN.format(mrn=patient.mrn)]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def patient_create(
    *, created_by: User | None, care_team: CareTeam | None = None, **fields: Any
) -> Patient:
    """Create a patient record and give its care team access to it.

    ValidationError naming the field, nothing written: a duplicate MRN ("mrn"), a date of birth
    in the future or more than PATIENT_MAX_AGE_YEARS ago ("date_of_birth"), any field the model
    refuses. Side effects: post_save (audit logs the create in this transaction). Callers decide
    who may create (admin: administrators; the clinicians' page: patient_register).
    """
    patient = Patient(care_team=care_team, **fields)
    _validate_patient(patient, check_date_of_birth=True)
    try:
        with transaction.atomic():  # a savepoint: a race past the check rolls back alone
            patient.save()
    except IntegrityError:
        if Patient.objects.filter(mrn=patient.mrn).exists():  # two registrations at once
            raise ValidationError({"mrn": _DUPLICATE_MRN.format(mrn=patient.mrn)}) from None
        raise
    if care_team is not None:
        _grant_team(patient, care_team)
    return patient


CHOOSE_OWN_TEAM = "Choose one of your own care teams."
# Normalised as the clinic writes them: the MRN is matched for duplicates as written here.
_UPPER_CASE_FIELDS = ("mrn", "icd10_code")


def registration_teams(*, user: User) -> models.QuerySet[CareTeam]:
    """The care teams `user` may register a patient on: their own, for an active clinician.

    Http404 for anyone else (administrators, patient users): registering is the clinicians'
    door, answered on every door (page, REST, GraphQL) like a missing page. Not patient data:
    nothing logged.
    """
    if not (user.is_active and user.is_clinician):
        raise Http404("No such page.")
    return care_teams_of(user=user)


def registration_team_get(*, user: User, care_team_id: Any) -> CareTeam:
    """The care team a registration names by id (REST, GraphQL), one of `user`'s own.

    ValidationError on "care_team" otherwise: another team's id, a missing id and a malformed
    one answer alike, so nobody learns which teams exist. Http404 as registration_teams.
    """
    teams = registration_teams(user=user)
    text = str(care_team_id)
    team = teams.filter(pk=int(text)).first() if text.isdigit() and len(text) <= 10 else None
    if team is None:
        raise ValidationError({"care_team": CHOOSE_OWN_TEAM})
    return team


def patient_register_on_team_id(
    *, registered_by: User, care_team_id: Any, **fields: Any
) -> Patient:
    """patient_register for the doors that name the team by id (REST, GraphQL): Http404 for a
    non-clinician before anything is looked at; `care_team_id` None is patient_register's
    one-team default, any other id must be one of the clinician's own (registration_team_get)."""
    registration_teams(user=registered_by)
    team = (
        registration_team_get(user=registered_by, care_team_id=care_team_id)
        if care_team_id is not None
        else None
    )
    return patient_register(registered_by=registered_by, care_team=team, **fields)


def _registration_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Text as a form cleans it (surrounding spaces dropped); MRN and ICD-10 code in capitals,
    so "mrn0042" on one door and "MRN0042" on another are the same patient."""
    cleaned = {name: v.strip() if isinstance(v, str) else v for name, v in fields.items()}
    for name in _UPPER_CASE_FIELDS:
        if isinstance(cleaned.get(name), str):
            cleaned[name] = cleaned[name].upper()
    return cleaned


@transaction.atomic
def patient_register(
    *, registered_by: User, care_team: CareTeam | None = None, **fields: Any
) -> Patient:
    """A clinician registers a new patient on one of their own care teams: the one rule for
    the page (/patients/new/), REST (POST /api/v1/patients) and GraphQL (registerPatient).

    Precondition checked here: `registered_by` is an active clinician (PermissionDenied
    otherwise) and a member of `care_team` (ValidationError on "care_team" otherwise, with the
    other fields' errors): a patient put on someone else's team would be handed to strangers,
    one on no team seen by nobody (as happened with admin). `care_team` left out (None) is the
    clinician's team when they are on exactly one. Text is normalised (_registration_fields).
    Then as patient_create: nothing written on any error; the team's access is granted in the
    same transaction, so the clinician opens the new chart on the next request; post_save
    logs the create.
    """
    if not (registered_by.is_active and registered_by.is_clinician):
        raise PermissionDenied("Patients are registered by clinicians.")
    fields = _registration_fields(fields)
    if care_team is None:
        only = list(registration_teams(user=registered_by)[:2])
        care_team = only[0] if len(only) == 1 else None
    if care_team is None or not registered_by.groups.filter(pk=care_team.group_id).exists():
        errors: dict[str, Any] = {"care_team": [CHOOSE_OWN_TEAM]}
        try:  # every field's error at once, as the page shows them
            _validate_patient(Patient(**fields), check_date_of_birth=True)
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        raise ValidationError(errors)
    return patient_create(created_by=registered_by, care_team=care_team, **fields)


class DoseInputChangeToConfirm(ConfirmationRequired):
    """A new date of birth or sex: inputs of carboplatin doses (Cockcroft-Gault, Calvert) and
    of the reference range each new result is flagged against. Saved only once confirmed."""

    confirm_with = "confirm_dose_input_change"


@transaction.atomic
def patient_update(
    *,
    patient: Patient,
    updated_by: User | None,
    confirm_dose_input_change: bool = False,
    **fields: Any,
) -> Patient:
    """Update demographic or clinical fields; moving the patient to another team moves access.

    ValidationError naming the field, nothing written: a date of birth in the future or more
    than PATIENT_MAX_AGE_YEARS ago, any field the model refuses. A changed date of birth or sex
    raises DoseInputChangeToConfirm until `confirm_dose_input_change` (the web page says what
    it changes; REST answers confirmation_required). `patient` is changed in memory even then:
    a caller that shows it again passes a copy. Side effects: post_save (audit logs the update
    in this transaction); a team change sends access_changed.
    """
    old_team, old_dob, old_sex = patient.care_team, patient.date_of_birth, patient.sex
    for name, value in fields.items():
        setattr(patient, name, value)
    # A date of birth already on record is not questioned again by an unrelated change.
    _validate_patient(patient, check_date_of_birth=patient.date_of_birth != old_dob)
    changed = [
        name
        for name, old in (("date_of_birth", old_dob), ("sex", old_sex))
        if getattr(patient, name) != old
    ]
    if changed and not confirm_dose_input_change:
        raise DoseInputChangeToConfirm(
            {
                changed[0]: "A new date of birth or sex changes carboplatin doses (Cockcroft-"
                "Gault, Calvert) and the reference ranges results are flagged against: check it "
                "against the patient's identity documents, then confirm the change."
            }
        )
    patient.save()
    if patient.care_team != old_team:
        if old_team is not None:
            _revoke_team(patient, old_team)
        if patient.care_team is not None:
            _grant_team(patient, patient.care_team)
        access_changed.send(
            sender=Patient,
            patient=patient,
            actor=updated_by,
            granted=patient.care_team is not None,
            detail={
                "from_team": getattr(old_team, "pk", None),
                "to_team": getattr(patient.care_team, "pk", None),
            },
        )
    return patient


class MeasurementChangeToConfirm(ConfirmationRequired):
    """A weight or height far from the last one on record: most often a typo (5.5 for 55 kg),
    and every weight-based dose would follow it. Recorded only once the change is confirmed."""

    confirm_with = "confirm_change"


@transaction.atomic
def measurement_record(
    *,
    patient: Patient,
    measured_on: date,
    height_cm: Decimal | None,
    weight_kg: Decimal | None,
    recorded_by: User | None,
    confirm_change: bool = False,
) -> BodyMeasurement:
    """Record a height and/or a weight taken on `measured_on` (doses are computed from them).

    ValidationError naming the field: neither value, a date in the future or before the
    patient's birth, a value outside the model's plausible range. MeasurementChangeToConfirm
    (a ValidationError on the field) when a value differs from the last one on record by
    settings.DOSING_WEIGHT_CHANGE_REVIEW_PERCENT or more and `confirm_change` is false.
    Logged as a write through the model's save signal.
    """
    if height_cm is None and weight_kg is None:
        raise ValidationError({"weight_kg": "Enter a weight, a height or both."})
    if measured_on > timezone.localdate():
        raise ValidationError({"measured_on": "A measurement cannot be dated in the future."})
    patient.require_in_lifetime(measured_on, field="measured_on", what="The measurement date")
    if not confirm_change:
        changes = {
            column: message
            for column, value in (("weight_kg", weight_kg), ("height_cm", height_cm))
            if (message := _change_to_confirm(patient, column, value, measured_on))
        }
        if changes:
            raise MeasurementChangeToConfirm(changes)
    measurement = BodyMeasurement(
        patient=patient,
        measured_on=measured_on,
        height_cm=height_cm,
        weight_kg=weight_kg,
        recorded_by=recorded_by,
    )
    measurement.full_clean()
    measurement.save()
    return measurement


def _change_to_confirm(
    patient: Patient, column: str, value: Decimal | None, measured_on: date
) -> str | None:
    previous = latest_measurement(patient, column, measured_on)
    last = getattr(previous, column, None) if previous is not None else None
    if value is None or not last:
        return None
    change = (Decimal(value) - last) / last * 100
    if abs(change) < settings.DOSING_WEIGHT_CHANGE_REVIEW_PERCENT:
        return None
    what, unit = ("Weight", "kg") if column == "weight_kg" else ("Height", "cm")
    direction = "more" if change > 0 else "less"
    return (
        f"{what} {value} {unit} is {abs(change):.0f}% {direction} than the last one on record "
        f"({last} {unit} on {day_text(previous.measured_on)}). Check it; if it is right, "  # type: ignore[union-attr]
        "confirm the change and record it again."
    )


@transaction.atomic
def care_team_lead_set(*, team: CareTeam, clinician: User, lead: bool, granted_by: User) -> None:
    """Make `clinician` a lead of `team` (may add and remove members) or stop them being one.

    Precondition: `granted_by` is an administrator (checked here: leads cannot appoint leads).
    A lead must be a clinician member of the team. Sends access_changed.
    """
    if not granted_by.is_administrator:
        raise PermissionDenied("Only administrators appoint care-team leads.")
    if lead:
        if not clinician.is_clinician or not clinician.groups.filter(pk=team.group_id).exists():
            raise ValidationError({"lead": "A lead must be a clinician on the team."})
        assign_perm(MANAGE_CARETEAM, clinician, team)
    else:
        remove_perm(MANAGE_CARETEAM, clinician, team)
    access_changed.send(
        sender=CareTeam,
        patient=None,
        actor=granted_by,
        granted=lead,
        detail={"care_team_id": team.pk, "clinician_id": clinician.pk, "lead": lead},
    )


@transaction.atomic
def emergency_access_open(*, user: User, patient_id: Any, reason: str) -> EmergencyAccess:
    """Break-glass: give `user` 60 minutes of access to a chart outside their care teams.

    Clinicians only (PermissionDenied otherwise); a missing or inactive patient is Http404, as
    everywhere. The reason is required (ValidationError on `reason`). Sends access_changed with
    detail kind=break_glass and flags the current access context, so the grant and every
    access in this request are flagged in the log.
    """
    if not (user.is_authenticated and user.is_active and user.is_clinician):
        raise PermissionDenied("Emergency access is for clinicians.")
    try:
        patient = Patient.objects.get(pk=int(patient_id), is_active=True)
    except (Patient.DoesNotExist, TypeError, ValueError):
        raise Http404("No Patient matches the given query.") from None
    now = timezone.now()
    grant = EmergencyAccess(
        user=user,
        patient=patient,
        reason=(reason or "").strip(),
        granted_at=now,
        expires_at=now + EMERGENCY_ACCESS_DURATION,
    )
    grant.full_clean()
    access_context.update(break_glass=True)
    grant.save()
    access_changed.send(
        sender=EmergencyAccess,
        patient=patient,
        actor=user,
        granted=True,
        detail={
            "kind": "break_glass",
            "emergency_access_id": grant.pk,
            "reason": grant.reason,
            "expires_at": grant.expires_at.isoformat(),
        },
    )
    return grant


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def may_invite(user: User, patient: Patient) -> bool:
    if not (user.is_authenticated and user.is_active):
        return False
    if user.is_administrator:
        return True
    # Clinicians on the patient's care team only: not break-glass, not model-wide permissions.
    from patients.selectors import CHANGE, _care_team_patients

    return user.is_clinician and _care_team_patients(user, CHANGE).filter(pk=patient.pk).exists()


@transaction.atomic
def invitation_create(
    *, patient: Patient, email: str, created_by: User, base_url: str | None = None
) -> tuple[PatientInvitation, str]:
    """Invite a patient to create the portal account for `patient`; returns (invitation, token).

    Precondition checked here: `created_by` is an administrator or a clinician on the patient's
    care team (PermissionDenied otherwise). The raw token is returned once and emailed as a
    link (after commit, so a rolled-back invitation sends nothing); only its SHA-256 is stored.
    """
    if not may_invite(created_by, patient):
        raise PermissionDenied("Only the care team or an administrator can invite a patient.")
    if patient.portal_user_id is not None:
        raise ValidationError({"email": "This patient already has a portal account."})
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    invitation = PatientInvitation(
        patient=patient,
        email=email,
        token_hash=_token_hash(token),
        created_by=created_by,
        created_at=now,
        expires_at=now + INVITATION_LIFETIME,
    )
    invitation.full_clean()
    invitation.save()
    base = (base_url or settings.PUBLIC_BASE_URL).rstrip("/")
    link = base + reverse("patients:invitation_accept", args=[token])
    transaction.on_commit(
        lambda: send_mail(
            "Your OncoPlanner patient portal invitation",
            "Your care team has invited you to the OncoPlanner patient portal.\n\n"
            f"Create your account here (the link works once and expires in 72 hours):\n{link}\n",
            settings.DEFAULT_FROM_EMAIL,
            [email],
        )
    )
    return invitation, token


def invitation_get_usable(*, token: str) -> PatientInvitation:
    """The unexpired, unused invitation for `token`; Http404 for any other token."""
    invitation = (
        PatientInvitation.objects.select_related("patient")
        .filter(
            token_hash=_token_hash(token),
            accepted_at__isnull=True,
            expires_at__gt=timezone.now(),
            patient__is_active=True,
            patient__portal_user__isnull=True,
        )
        .first()
    )
    if invitation is None:
        raise Http404("No invitation matches the given query.")
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, username: str, password: str) -> User:
    """Create the patient's portal account (role patient) and link it to the invited record.

    The only way a patient account is created. One-time: the invitation is locked and marked
    accepted in this transaction; a second use, an expired or unknown token is Http404.
    ValidationError names `username` or `password`.
    """
    invitation = invitation_get_usable(token=token)
    invitation = PatientInvitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_usable:
        raise Http404("No invitation matches the given query.")
    user = User(username=username, email=invitation.email, role=User.Role.PATIENT)
    try:
        validate_password(password, user=user)
    except ValidationError as error:
        raise ValidationError({"password": error.messages}) from None
    user.set_password(password)
    user.full_clean()
    user.save()
    patient = Patient.objects.select_for_update().get(pk=invitation.patient_id)
    if patient.portal_user_id is not None:
        raise Http404("No invitation matches the given query.")
    patient.portal_user = user
    patient.save(update_fields=["portal_user", "updated_at"])
    invitation.accepted_at = timezone.now()
    invitation.accepted_user = user
    invitation.save(update_fields=["accepted_at", "accepted_user"])
    access_changed.send(
        sender=Patient,
        patient=patient,
        actor=user,
        granted=True,
        detail={"kind": "portal_account", "invitation_id": invitation.pk},
    )
    return user


@transaction.atomic
def care_team_update(*, team: CareTeam, updated_by: User | None, **fields: Any) -> CareTeam:
    """Rename or describe a team, or change its phone numbers (membership changes go through
    add/remove_member). Not patient data: no access-log row (the admin keeps its history)."""
    for name in ("name", "description", "phone_daytime", "phone_24h"):
        if name in fields:
            value = fields[name]
            setattr(team, name, (value or "").strip() if name.startswith("phone") else value)
    team.full_clean()
    team.save()
    if "name" in fields:
        Group.objects.filter(pk=team.group_id).update(name=f"care-team:{team.name}")
    return team


# --- Patient-reported symptoms ------------------------------------------------------------------


@transaction.atomic
def symptom_report_create(
    *, patient: Patient, reported_by: User, symptom: str, severity: int, description: str = ""
) -> SymptomReport:
    """A patient's symptom report from the portal.

    Precondition: `reported_by` is the patient's own portal user (portal_patient_for) or a
    clinician on the care team entering it for them. Urgent reports (severe or very severe, or
    a red-flag symptom such as a fever at any severity) alert the care team once the
    transaction commits and wait in their inbox.
    """
    for name, text in (("symptom", symptom), ("description", description)):
        if "\x00" in (text or ""):
            raise ValidationError({name: "The text contains a NUL character."})
    if len(description or "") > 4000:  # TextField max_length is not enforced by full_clean
        raise ValidationError({"description": "Keep the description under 4,000 characters."})
    symptom = (symptom or "").strip()
    report = SymptomReport(
        patient=patient,
        reported_by=reported_by,
        symptom=symptom,
        severity=severity,
        description=(description or "").strip(),
    )
    report.full_clean()
    report.save()
    if report.urgent:
        transaction.on_commit(
            partial(notify_care_team_of_severe_symptom_report.enqueue, symptom_report_id=report.pk)
        )
    return report


@transaction.atomic
def symptom_report_review(
    *, report: SymptomReport, by: User, note: str, side_effect: Any = None
) -> SymptomReport:
    """A clinician reviews a patient's report, optionally linking the side effect they graded.

    Precondition: `by` holds change permission on the patient (through the gate).
    """
    if report.reviewed_at is not None:
        raise ValidationError({"note": "This report was already reviewed."})
    if side_effect is not None and side_effect.patient_id != report.patient_id:
        raise ValidationError({"side_effect": "That side effect belongs to another patient."})
    report.reviewed_by = by
    report.reviewed_at = timezone.now()
    report.review_note = (note or "").strip()
    report.side_effect = side_effect
    report.full_clean()
    report.save()
    return report


# --- Allergies and intolerances ---------------------------------------------------------------

ALLERGY_REASON_MAX = 500


def _allergy_text(value: str | None, *, field: str, max_length: int) -> str:
    text = (value or "").strip()
    # NUL bytes and lone surrogates become database errors (500s) unless refused here.
    if "\x00" in text:
        raise ValidationError({field: "Text cannot contain NUL characters."})
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError({field: "Text contains invalid characters."}) from None
    if len(text) > max_length:
        raise ValidationError({field: f"At most {max_length} characters, please."})
    return text


def _formulary_drug(name: str) -> Any:
    # Reference data, not PHI: read directly. Through apps: treatments imports patients.
    drug_model = apps.get_model("treatments", "Drug")
    return drug_model._default_manager.filter(name__iexact=name).first()


@transaction.atomic
def allergy_record(
    *,
    patient: Patient,
    substance: str,
    recorded_by: User,
    category: str = Allergy.Category.MEDICATION,
    reaction: str = "",
    severity: str = "",
    drug: Any = None,
) -> Allergy:
    """Record an allergy or intolerance on `patient`'s chart.

    Precondition: `recorded_by` holds change permission on the patient (the caller fetched it
    through the access gate with perm=change). A medication whose name is a formulary drug is
    linked to it (so pages can match it against a regimen); `drug` given without a substance
    names the substance. A "no known allergies" statement on the patient is cleared: it is no
    longer true. ValidationError naming the field, nothing written: no substance, an active
    entry for the same substance or drug ("substance"), a drug outside the medication category
    ("category"), a severity without the reaction it grades ("reaction"), an unknown category
    or severity, text too long or with NUL characters.
    Side effects: post_save (audit logs the create, and the patient's update, in this
    transaction).
    """
    substance = _allergy_text(substance, field="substance", max_length=200)
    reaction = _allergy_text(reaction, field="reaction", max_length=300)
    if not substance and drug is not None:
        substance = drug.name
    if not substance:
        raise ValidationError({"substance": "Name the substance (e.g. Paclitaxel, Penicillin)."})
    if drug is None and category == Allergy.Category.MEDICATION:
        drug = _formulary_drug(substance)
    if drug is not None and category != Allergy.Category.MEDICATION:
        raise ValidationError({"category": f"{drug.name} is a drug: use the medication category."})
    if severity and not reaction:
        raise ValidationError(
            {"reaction": "Describe the reaction (e.g. anaphylaxis, rash) when giving its severity."}
        )
    # Serialise with other writes to this patient's allergy list (two nurses, one allergy).
    locked = Patient.objects.select_for_update().get(pk=patient.pk)
    same = Allergy.objects.filter(patient=locked, substance__iexact=substance)
    if drug is not None:
        same = Allergy.objects.filter(patient=locked).filter(
            models.Q(substance__iexact=substance) | models.Q(drug=drug)
        )
    existing = same.first()
    if existing is not None:
        raise ValidationError(
            {
                "substance": f"{existing.substance} is already on the allergy list "
                f"(recorded {day_text(timezone.localdate(existing.recorded_at))})."
            }
        )
    allergy = Allergy(
        patient=locked,
        substance=substance,
        drug=drug,
        category=category,
        reaction=reaction,
        severity=severity or "",
        recorded_by=recorded_by,
        recorded_at=timezone.now(),
    )
    allergy.full_clean()
    allergy.save()
    if locked.no_known_allergies_at is not None:
        locked.no_known_allergies_at = None
        locked.no_known_allergies_by = None
        locked.save(update_fields=["no_known_allergies_at", "no_known_allergies_by", "updated_at"])
        patient.no_known_allergies_at = None
        patient.no_known_allergies_by = None
    return allergy


@transaction.atomic
def allergy_mark_entered_in_error(*, allergy: Allergy, by: User, reason: str) -> Allergy:
    """Mark an allergy entered in error (wrong patient, wrong substance): who, when, why.

    Precondition: `by` holds change permission on the allergy's patient (fetched through the
    gate with perm=change). The row is kept, never deleted; from now on it is left out of the
    banner, the dashboard list, REST and GraphQL (Allergy.objects), and the FHIR export sends it
    with verificationStatus entered-in-error. ValidationError naming the field, nothing
    written: no reason or one too long ("reason"), an entry already marked ("allergy").
    Side effects: post_save (audit logs the update in this transaction).
    """
    reason = _allergy_text(reason, field="reason", max_length=ALLERGY_REASON_MAX)
    if allergy.entered_in_error_at is not None:
        raise ValidationError({"allergy": "This allergy is already marked entered in error."})
    if not reason:
        raise ValidationError({"reason": "Say what was wrong (e.g. recorded on the wrong chart)."})
    allergy.entered_in_error_at = timezone.now()
    allergy.entered_in_error_by = by
    allergy.entered_in_error_reason = reason
    fields = ["entered_in_error_at", "entered_in_error_by", "entered_in_error_reason"]
    allergy.clean_fields(exclude=[f.name for f in allergy._meta.fields if f.name not in fields])
    allergy.save(update_fields=fields)
    return allergy


@transaction.atomic
def patient_no_known_allergies_record(*, patient: Patient, recorded_by: User) -> Patient:
    """Record that `patient` has no known allergies (asked today, none): who and when.

    Precondition: `recorded_by` holds change permission on the patient (through the gate).
    Recording it again renews the date. ValidationError naming "no_known_allergies", nothing
    written, while any allergy is on the list: a wrong entry is marked entered in error first.
    Side effects: post_save of the patient (audit logs the update in this transaction).
    """
    locked = Patient.objects.select_for_update().get(pk=patient.pk)
    active = list(Allergy.objects.filter(patient=locked).values_list("substance", flat=True))
    if active:
        raise ValidationError(
            {
                "no_known_allergies": f"Allergies are on record ({', '.join(active)}): if one "
                "is wrong, mark it entered in error first."
            }
        )
    locked.no_known_allergies_at = timezone.now()
    locked.no_known_allergies_by = recorded_by
    locked.save(update_fields=["no_known_allergies_at", "no_known_allergies_by", "updated_at"])
    patient.no_known_allergies_at = locked.no_known_allergies_at
    patient.no_known_allergies_by = recorded_by
    return locked
