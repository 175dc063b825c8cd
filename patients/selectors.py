"""The one access gate: every door (pages, HTMX fragments, admin, exports, REST, GraphQL, streams)
reaches patient data only through these functions.

Who sees what
-------------
- **Clinicians** see the patients of the care teams they belong to (guardian object permissions
  granted to the team's group: view and change), plus any patient on whom they hold an
  unexpired emergency ("break-glass") grant. Every access under break-glass flags the request's
  access context, so each log row of that request carries the break-glass flag.
- **Administrators** get no chart access from their role, from ``is_superuser`` or from a
  model-wide permission (``with_superuser=False``, ``accept_global_perms=False``): they manage
  users, care teams and reference data. They see a chart only as members of its care team
  (break-glass is for clinicians only).
- **Patients** (role ``patient``) never pass the clinician gate, whatever groups or permissions
  they might hold. They see only their own record (``Patient.portal_user``) through
  ``portal_patient_for`` and only *released* lab results through ``portal_lab_results_for``.
- Inactive users and inactive patient records are never visible.

A record the user may not see is a 404, identical to a record that does not exist (no 403),
so nobody can probe which ids exist. Children (courses, cycles, results...) are fetched under
their patient: a child id under a parent the user can see but belonging to another patient is
the same 404 ("parent mine, child theirs").

Reads of PHI send ``record_read`` (audit logs it in the caller's transaction). Querysets
returned by ``scoped`` / ``patient_list_visible_to`` are lazy; the door that evaluates and shows
them sends ``record_read`` (the admin mixin in ``patients/admin_gate.py`` does).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from django.apps import apps
from django.contrib.auth.models import Permission
from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist
from django.db import models
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.signals import post_migrate
from django.http import Http404
from django.utils import timezone

from oncoplanner import access_context
from oncoplanner.signals import record_read
from patients.models import (
    Allergy,
    CareTeam,
    EmergencyAccess,
    Patient,
    PatientGroupObjectPermission,
    PatientUserObjectPermission,
)

if TYPE_CHECKING:
    from oncoplanner.accounts.models import User


VIEW = "patients.view_patient"
CHANGE = "patients.change_patient"
MANAGE_CARETEAM = "patients.manage_careteam"
# Break-glass opens the chart for emergency care, which includes documenting it.
BREAK_GLASS_PERMS = frozenset({VIEW, CHANGE})

# Every model that holds patient data, and its path to the patient. `scoped` filters by it.
# A test walks all models of the domain apps and fails on one with a path to Patient that is
# missing here, so a new PHI model cannot slip past the gate unclassified.
PHI_PATIENT_PATHS: dict[str, str] = {
    "patients.Patient": "",
    "patients.BodyMeasurement": "patient",
    "patients.EmergencyAccess": "patient",
    "patients.PatientInvitation": "patient",
    "treatments.Course": "patient",
    "treatments.ChemoCycle": "course__patient",
    "treatments.CycleStatusChange": "cycle__course__patient",
    "treatments.DoseModification": "course__patient",
    "treatments.Administration": "cycle__course__patient",
    "treatments.DoseVerification": "cycle__course__patient",
    "treatments.SideEffect": "patient",
    "labs.LabResult": "patient",
    "patients.SymptomReport": "patient",
    "patients.Allergy": "patient",
}


def patient_path(model: type[models.Model]) -> str:
    """The lookup path from `model` to its Patient ("" for Patient itself)."""
    try:
        return PHI_PATIENT_PATHS[model._meta.label]
    except KeyError:
        raise ImproperlyConfigured(
            f"{model._meta.label} is not classified as PHI in patients.selectors.PHI_PATIENT_PATHS"
        ) from None


def patient_id_for(obj: models.Model) -> int | None:
    """The id of the patient the PHI row `obj` belongs to, or None if it cannot be resolved.

    Walks PHI_PATIENT_PATHS; the last hop reads the foreign key's `_id` attribute, so objects
    whose parents are already loaded (the usual case inside a service) cost no query. For the
    access log (audit.receivers) and the chart cache's versions (patients.chart_cache).
    """
    path = PHI_PATIENT_PATHS.get(obj._meta.label, "")
    if not path:
        return obj.pk
    *parents, last = path.split("__")
    current: object = obj
    try:
        for name in parents:
            current = getattr(current, name)
            if current is None:
                return None
    except ObjectDoesNotExist:
        # A parent already gone (an unusual cascade order): the caller still records the
        # change, without a patient.
        return None
    value = getattr(current, f"{last}_id", None)
    return int(value) if value is not None else None


def _may_use_clinician_gate(user: User | Any) -> bool:
    # Clinicians only. Patient users never pass, even if someone added them to a care-team
    # group; nor do administrators and superusers: they manage teams and may not join one
    # (an administrator had added herself to a team and opened charts with no reason given).
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and user.is_active
        and user.is_clinician
    )


def _active_emergency_grants(user: User) -> QuerySet[EmergencyAccess]:
    return EmergencyAccess.objects.filter(user=user, expires_at__gt=timezone.now())


def _break_glass_patient_ids(user: User, perm: str) -> QuerySet[EmergencyAccess]:
    if perm not in BREAK_GLASS_PERMS or not user.is_clinician:
        return EmergencyAccess.objects.none()
    return _active_emergency_grants(user).values("patient_id")


_PATIENT_PERMISSION_IDS: dict[str, int] = {}


def _patient_permission_id(perm: str) -> int | None:
    """The id of the Patient permission `perm` ("patients.view_patient"), read once per process.

    Every patient request's gate had read it as a subquery: building it and PostgreSQL
    planning it cost about 2 ms of a 5 ms gate. Permission rows are made by migrate and never
    change while the app runs; migrate and flush (tests) emit post_migrate, which clears this.
    None (no such permission) matches no grant: the gate stays closed.
    """
    if not _PATIENT_PERMISSION_IDS:
        rows = Permission.objects.filter(
            content_type__app_label=Patient._meta.app_label,
            content_type__model=Patient._meta.model_name,
        ).values_list("codename", "pk")
        _PATIENT_PERMISSION_IDS.update(
            {f"{Patient._meta.app_label}.{codename}": pk for codename, pk in rows}
        )
    return _PATIENT_PERMISSION_IDS.get(perm)


def _forget_permission_ids(**_: Any) -> None:
    _PATIENT_PERMISSION_IDS.clear()


post_migrate.connect(_forget_permission_ids, dispatch_uid="patients_forget_permission_ids")


def _care_team_grant(user: User, perm: str) -> Q:
    """Holds `perm` on the patient row through guardian: granted to one of the user's groups
    (the care team) or to the user directly.

    Read from guardian's own direct-FK tables, as a correlated EXISTS per patient row. Why not
    guardian's get_objects_for_user: it builds the set of *every* permitted patient and tests
    membership, so reading one chart cost 15 ms at 10,000 patients (a clinician seeing 3,334)
    and grew with the clinic; EXISTS on content_object_id is an index probe per row. Same
    meaning as get_objects_for_user(accept_global_perms=False, with_superuser=False): a
    model-wide permission or superuser status opens nothing.
    """
    permission_id = _patient_permission_id(perm)
    via_group = PatientGroupObjectPermission.objects.filter(
        content_object_id=OuterRef("pk"),
        group_id__in=user.groups.values("pk"),
        permission_id=permission_id,
    )
    via_user = PatientUserObjectPermission.objects.filter(
        content_object_id=OuterRef("pk"), user_id=user.pk, permission_id=permission_id
    )
    return Q(Exists(via_group)) | Q(Exists(via_user))


def _care_team_patients(user: User, perm: str) -> QuerySet[Patient]:
    return Patient.objects.filter(_care_team_grant(user, perm), is_active=True)


def patient_list_visible_to(*, user: User, perm: str = VIEW) -> QuerySet[Patient]:
    """Active patients on which `user` holds `perm` through a care team, or an unexpired
    break-glass grant (clinicians). Lazy; sends nothing: the door that shows rows logs them.
    If the user holds any active break-glass grant the access context is flagged, because the
    list may include that chart.
    """
    if not _may_use_clinician_gate(user):
        return Patient.objects.none()
    emergency_ids = _break_glass_patient_ids(user, perm)
    if perm in BREAK_GLASS_PERMS and user.is_clinician and emergency_ids.exists():
        access_context.update(break_glass=True)
        return Patient.objects.filter(
            _care_team_grant(user, perm) | Q(pk__in=emergency_ids), is_active=True
        )
    return _care_team_patients(user, perm)


def _authorise_patient_route(
    *, user: User, patient_id: Any, perm: str, annotations: dict[str, Any] | None = None
) -> tuple[Patient, bool]:
    """The patient if `user` may act on it with `perm`, and whether its care team opened it
    (False: break-glass). Http404 otherwise (missing or not). `annotations` are read in the
    same query (a page's header fields), never used to decide."""
    try:
        pk = int(patient_id)
    except (TypeError, ValueError):
        _deny(Patient, requested=patient_id)
    extra = annotations or {}
    if _may_use_clinician_gate(user):
        patient = _care_team_patients(user, perm).annotate(**extra).filter(pk=pk).first()
        if patient is not None:
            return patient, True
        if perm in BREAK_GLASS_PERMS and user.is_clinician:
            patient = (
                Patient.objects.annotate(**extra)
                .filter(pk=pk, is_active=True, pk__in=_break_glass_patient_ids(user, perm))
                .first()
            )
            if patient is not None:
                access_context.update(break_glass=True)
                return patient, False
    _deny(Patient, requested=pk)


def _authorise_patient(*, user: User, patient_id: Any, perm: str) -> Patient:
    """The patient if `user` may act on it with `perm`; Http404 otherwise (missing or not)."""
    return _authorise_patient_route(user=user, patient_id=patient_id, perm=perm)[0]


def _deny(model: type[models.Model], *, requested: Any, patient_id: int | None = None) -> NoReturn:
    """Log the refused access (outcome denied), then answer exactly as for a missing record."""
    if patient_id is None and model is Patient and isinstance(requested, int):
        patient_id = requested
    patients = list(Patient.objects.filter(pk=patient_id)) if patient_id is not None else []
    record_read.send(
        sender=model,
        patients=patients,
        target=None,
        action="read",
        outcome="denied",
        detail={"requested_id": str(requested)[:64]},
    )
    raise Http404(f"No {model._meta.object_name} matches the given query.")


def patient_get_for_user(*, user: User, patient_id: Any, perm: str = VIEW) -> Patient:
    """The patient, or Http404 for a missing and a forbidden id alike (never 403).

    Sends record_read so that audit logs the read in the caller's transaction.
    """
    patient = _authorise_patient(user=user, patient_id=patient_id, perm=perm)
    record_read.send(sender=Patient, patients=[patient], target=patient, action="read")
    return patient


def patient_export_for_user(*, user: User, patient_id: Any, fmt: str) -> Patient:
    """The patient whose chart is being exported, or Http404 as for any read.

    Sends record_read with action "export" (and the format in the detail): an export is one
    access-log row, not one per record it contains.
    """
    patient = _authorise_patient(user=user, patient_id=patient_id, perm=VIEW)
    record_read.send(
        sender=Patient, patients=[patient], target=patient, action="export", detail={"format": fmt}
    )
    return patient


def patient_chart_for_user(
    *, user: User, patient_id: Any, annotations: dict[str, Any] | None = None
) -> tuple[Patient, bool, QuerySet[EmergencyAccess]]:
    """The chart's patient (read and logged as patient_get_for_user does), whether the user
    reaches it through its care team, and every emergency access to it: for the care team
    only, because the list names colleagues (a break-glass visitor gets an empty queryset).

    One gate query for both; it also reads `annotations` (the dashboard's header) and whether there is any emergency
    access at all, so the usual chart without one costs no query for the empty list.
    """
    patient, on_team = _authorise_patient_route(
        user=user,
        patient_id=patient_id,
        perm=VIEW,
        annotations={
            **(annotations or {}),
            "_any_emergency_access": Exists(EmergencyAccess.objects.filter(patient=OuterRef("pk"))),
        },
    )
    record_read.send(sender=Patient, patients=[patient], target=patient, action="read")
    emergency = (
        EmergencyAccess.objects.filter(patient=patient).select_related("user")
        if on_team and patient._any_emergency_access  # type: ignore[attr-defined]
        else EmergencyAccess.objects.none()
    )
    return patient, on_team, emergency


def scoped[M: models.Model](model: type[M], *, user: User, perm: str = VIEW) -> QuerySet[M]:
    """All rows of the PHI `model` that belong to patients visible to `user` with `perm`.

    The reusable door for REST, GraphQL, exports and admin. Lazy; the caller logs what it shows.
    """
    return scope_queryset(model._default_manager.all(), user=user, perm=perm)


def scope_queryset[M: models.Model](
    queryset: QuerySet[M], *, user: User, perm: str = VIEW
) -> QuerySet[M]:
    """`queryset` (of a PHI model) narrowed to rows of patients visible to `user`."""
    path = patient_path(queryset.model)
    visible = patient_list_visible_to(user=user, perm=perm)
    lookup = f"{path}__in" if path else "pk__in"
    return queryset.filter(**{lookup: visible.values("pk")})


def patient_ids_of(queryset: QuerySet[Any]) -> list[int]:
    """The distinct patient ids behind rows of a PHI queryset (for record_read on lists)."""
    path = patient_path(queryset.model)
    field = f"{path}__pk" if path else "pk"
    return sorted({pk for pk in queryset.values_list(field, flat=True) if pk is not None})


def child_get_for_user[M: models.Model](
    model: type[M],
    *,
    user: User,
    patient_id: Any,
    pk: Any,
    perm: str = VIEW,
    extra: dict[str, Any] | None = None,
) -> M:
    """A child record of a patient (course, cycle, result...), fetched *under* that patient.

    A child of another patient is the same 404 as a missing one. Sends record_read.
    """
    patient = _authorise_patient(user=user, patient_id=patient_id, perm=perm)
    path = patient_path(model)
    try:
        obj = model._default_manager.get(pk=pk, **{path: patient}, **(extra or {}))
    except (model.DoesNotExist, ValueError, TypeError):
        _deny(model, requested=pk, patient_id=patient.pk)
    record_read.send(sender=model, patients=[patient], target=obj, action="read")
    return obj


def children_for[M: models.Model](
    model: type[M], *, user: User, patient_id: Any, perm: str = VIEW
) -> tuple[Patient, QuerySet[M]]:
    """The patient and a queryset of its `model` rows. Sends record_read (list) for the patient."""
    patient = _authorise_patient(user=user, patient_id=patient_id, perm=perm)
    queryset = model._default_manager.filter(**{patient_path(model): patient})
    record_read.send(sender=model, patients=[patient], target=None, action="list")
    return patient, queryset


def _model(label: str) -> type[models.Model]:
    return apps.get_model(label)


def course_get_for_user(*, user: User, patient_id: Any, course_id: Any, perm: str = VIEW) -> Any:
    return child_get_for_user(
        _model("treatments.Course"), user=user, patient_id=patient_id, pk=course_id, perm=perm
    )


def cycle_get_for_user(
    *, user: User, patient_id: Any, cycle_id: Any, perm: str = VIEW, course_id: Any = None
) -> Any:
    """A chemo cycle under its patient (and under `course_id` when given)."""
    extra = {"course_id": course_id} if course_id is not None else None
    return child_get_for_user(
        _model("treatments.ChemoCycle"),
        user=user,
        patient_id=patient_id,
        pk=cycle_id,
        perm=perm,
        extra=extra,
    )


def administration_get_for_user(
    *, user: User, patient_id: Any, administration_id: Any, perm: str = VIEW
) -> Any:
    return child_get_for_user(
        _model("treatments.Administration"),
        user=user,
        patient_id=patient_id,
        pk=administration_id,
        perm=perm,
    )


def side_effect_get_for_user(
    *, user: User, patient_id: Any, side_effect_id: Any, perm: str = VIEW
) -> Any:
    return child_get_for_user(
        _model("treatments.SideEffect"),
        user=user,
        patient_id=patient_id,
        pk=side_effect_id,
        perm=perm,
    )


def lab_result_get_for_user(
    *, user: User, patient_id: Any, lab_result_id: Any, perm: str = VIEW
) -> Any:
    return child_get_for_user(
        _model("labs.LabResult"), user=user, patient_id=patient_id, pk=lab_result_id, perm=perm
    )


def lab_results_for(
    *, user: User, patient_id: Any, test_ids: Iterable[int] | None = None
) -> QuerySet[Any]:
    """A patient's lab results for a clinician (released or not). Sends record_read (list)."""
    _, results = children_for(_model("labs.LabResult"), user=user, patient_id=patient_id)
    if test_ids is not None:
        results = results.filter(test_id__in=list(test_ids))
    return results.select_related("test")


def allergy_get_for_user(
    *, user: User, patient_id: Any, allergy_id: Any, perm: str = VIEW
) -> Allergy:
    """A current (not entered-in-error) allergy under its patient; Http404 otherwise."""
    return child_get_for_user(Allergy, user=user, patient_id=patient_id, pk=allergy_id, perm=perm)


_SEVERITY_RANK = {
    Allergy.Severity.SEVERE: 0,
    Allergy.Severity.MODERATE: 1,
    Allergy.Severity.MILD: 2,
}


@dataclass(frozen=True)
class AllergyBanner:
    """What the chart header says about allergies: the current entries (severe first), else
    the "no known allergies" statement (who, when), else that nobody has recorded either."""

    allergies: list[Allergy]
    no_known_at: Any
    no_known_by: Any

    @property
    def state(self) -> str:
        if self.allergies:
            return "allergies"
        return "none_known" if self.no_known_at is not None else "not_recorded"


def _banner(patient: Patient, current: list[Allergy]) -> AllergyBanner:
    allergies = sorted(
        current, key=lambda a: (_SEVERITY_RANK.get(a.severity, 3), a.substance.lower())
    )
    at = None if allergies else patient.no_known_allergies_at
    return AllergyBanner(
        allergies=allergies,
        no_known_at=at,
        no_known_by=patient.no_known_allergies_by if at is not None else None,
    )


def allergy_status_recorded(*, patient: Patient) -> bool:
    """Whether the chart says anything about allergies: a current entry or a "no known
    allergies" statement (AllergyBanner.state other than "not_recorded"). One query at most."""
    return (
        patient.no_known_allergies_at is not None
        or Allergy.objects.filter(patient_id=patient.pk).exists()
    )


def allergy_banner_for(*, patient: Patient) -> AllergyBanner:
    """The allergy banner of a chart page.

    Precondition: `patient` came through the access gate in this request (the page's own gate
    read is the access-log row for what the page shows, banner included, as for the dashboard's
    sections), so this sends no record_read of its own. One query (two for the statement's
    author when there is no allergy but a "no known allergies" statement).
    """
    rows = Allergy.objects.filter(patient_id=patient.pk).select_related("recorded_by", "drug")
    return _banner(patient, list(rows))


def allergy_chart_for(*, patient: Patient) -> tuple[AllergyBanner, list[Allergy]]:
    """The banner and the entries marked entered in error, kept on the record (the chart's
    correction history, newest first), in one query. Precondition as allergy_banner_for."""
    rows = list(
        Allergy.all_objects.filter(patient_id=patient.pk).select_related(
            "recorded_by", "drug", "entered_in_error_by"
        )
    )
    in_error = sorted(
        (a for a in rows if a.is_entered_in_error),
        key=lambda a: (a.entered_in_error_at, a.pk),
        reverse=True,
    )
    return _banner(patient, [a for a in rows if not a.is_entered_in_error]), in_error


# --- Patient portal -------------------------------------------------------------------------


def _require_portal_user(user: User) -> None:
    """Http404 for anyone but a signed-in, active patient account (clinicians included)."""
    if not (
        user is not None
        and getattr(user, "is_authenticated", False)
        and user.is_active
        and user.is_patient_user
    ):
        raise Http404("No Patient matches the given query.")


def portal_patient_for(*, user: User) -> Patient:
    """The patient record of a portal user; Http404 for anyone else (clinicians included).

    Sends record_read: the patient reading their own record is an access too.
    """
    _require_portal_user(user)
    patient = Patient.objects.filter(portal_user=user, is_active=True).first()
    if patient is None:
        raise Http404("No Patient matches the given query.")
    record_read.send(sender=Patient, patients=[patient], target=patient, action="read")
    return patient


def portal_lab_results_for(*, user: User) -> QuerySet[Any]:
    """Only released results of the portal user's own record."""
    patient = portal_patient_for(user=user)
    return (
        _model("labs.LabResult")
        ._default_manager.filter(patient=patient, is_released=True)
        .select_related("test")
    )


def _portal_record(user: User) -> Patient:
    """The portal user's own active record, unlogged (callers log what they show)."""
    if (
        user is not None
        and getattr(user, "is_authenticated", False)
        and user.is_active
        and user.is_patient_user
    ):
        patient = Patient.objects.filter(portal_user=user, is_active=True).first()
        if patient is not None:
            return patient
    raise Http404("No Patient matches the given query.")


def portal_cycles_for(*, user: User) -> tuple[Patient, QuerySet[Any]]:
    """The portal user's record and their chemo cycles (every course), with the course and
    regimen joined. Sends record_read (list, ChemoCycle) for that one patient."""
    patient = _portal_record(user)
    cycles = (
        _model("treatments.ChemoCycle")
        ._default_manager.filter(course__patient=patient)
        .select_related("course__regimen")
    )
    record_read.send(sender=cycles.model, patients=[patient], target=None, action="list")
    return patient, cycles


def portal_allergies_for(*, user: User) -> tuple[Patient, list[Allergy]]:
    """The portal user's record and their current allergies (read-only). Sends record_read
    (list) for that one patient."""
    patient = _portal_record(user)
    allergies = list(Allergy.objects.filter(patient=patient).order_by("substance", "pk"))
    record_read.send(sender=Allergy, patients=[patient], target=None, action="list")
    return patient, allergies


@dataclass(frozen=True)
class ClinicPhones:
    """The numbers a portal patient is told to call: their care team's 24-hour acute oncology
    line and daytime number, each with its `tel:` link ("" when not recorded)."""

    team_name: str = ""
    acute_24h: str = ""
    acute_24h_uri: str = ""
    daytime: str = ""
    daytime_uri: str = ""

    @property
    def has_24h(self) -> bool:
        # A number a phone cannot dial (no tel: link) is no number to send a patient to.
        return bool(self.acute_24h and self.acute_24h_uri)

    @property
    def has_daytime(self) -> bool:
        return bool(self.daytime and self.daytime_uri)


def portal_clinic_phones_for(*, user: User) -> ClinicPhones:
    """The phone numbers of the portal user's own care team; empty if they have no team.

    Not patient data (a team's public numbers), so not logged; one query. Http404 for anyone
    who is not a patient with an active record, as every portal selector.
    """
    _require_portal_user(user)
    team = (
        CareTeam.objects.filter(patients__portal_user=user, patients__is_active=True)
        .only("name", "phone_24h", "phone_daytime")
        .first()
    )
    if team is None:
        return ClinicPhones()
    return ClinicPhones(
        team_name=team.name,
        acute_24h=team.phone_24h,
        acute_24h_uri=team.phone_24h_uri,
        daytime=team.phone_daytime,
        daytime_uri=team.phone_daytime_uri,
    )


def portal_symptom_reports_for(*, user: User) -> tuple[Patient, QuerySet[Any]]:
    """The portal user's record and their own symptom reports. Sends record_read (list)."""
    patient = _portal_record(user)
    reports = _model("patients.SymptomReport")._default_manager.filter(patient=patient)
    record_read.send(sender=reports.model, patients=[patient], target=None, action="list")
    return patient, reports


# --- Break-glass and care teams -------------------------------------------------------------


def emergency_access_active(*, user: User, patient: Patient) -> bool:
    return _active_emergency_grants(user).filter(patient=patient).exists()


def care_team_may_manage(*, user: User, team: CareTeam) -> bool:
    """Administrators manage every team; a clinician needs manage_careteam on that team."""
    if not (user.is_authenticated and user.is_active) or user.is_patient_user:
        return False
    if user.is_administrator:
        return True
    return user.is_clinician and user.has_perm(MANAGE_CARETEAM, team)


def care_team_get_for_manager(*, user: User, team_id: Any) -> CareTeam:
    """The team if `user` may manage it; Http404 otherwise (missing or not)."""
    team = CareTeam.objects.filter(pk=team_id).first() if str(team_id).isdigit() else None
    if team is None or not care_team_may_manage(user=user, team=team):
        raise Http404("No CareTeam matches the given query.")
    return team


def auc_dosed_drugs_for(*, patient: Patient) -> list[str]:
    """Names of the drugs dosed by AUC (Calvert: from Cockcroft-Gault, so from age and sex) in
    the patient's open courses, for the warning of a date-of-birth or sex correction.

    Precondition: `patient` came through the access gate in this request (its read is the
    access-log row); one query, no record_read of its own."""
    from treatments.models import Course, DoseBasis, RegimenDrug  # treatments imports us

    rows = (
        RegimenDrug.objects.filter(
            dose_basis=DoseBasis.AUC,
            phase__regimen__courses__patient=patient,
            phase__regimen__courses__status__in=(Course.Status.PLANNED, Course.Status.ACTIVE),
        )
        .values_list("drug__name", flat=True)
        .distinct()
    )
    return sorted(set(rows))


def care_teams_of(*, user: User) -> QuerySet[CareTeam]:
    """The care teams `user` is a member of, for a clinician (none for anyone else: the gate
    ignores administrators' and patients' memberships). Not patient data: not logged."""
    if not _may_use_clinician_gate(user):
        return CareTeam.objects.none()
    return CareTeam.objects.filter(group__in=user.groups.all()).order_by("name")


def care_team_members(*, team: CareTeam) -> QuerySet[Any]:
    return team.group.user_set.order_by("last_name", "first_name", "username")


def patient_id_for_emergency(*, user: User, mrn: str) -> int:
    """The id of the active patient with `mrn`, for the break-glass door only (clinicians).

    Http404 for a missing MRN and for non-clinicians alike. Returns an id, never the record:
    the chart is read afterwards through patient_get_for_user, which logs it.
    """
    if not (_may_use_clinician_gate(user) and user.is_clinician):
        raise Http404("No Patient matches the given query.")
    patient_id = (
        Patient.objects.filter(mrn=mrn, is_active=True).values_list("pk", flat=True).first()
    )
    if patient_id is None:
        raise Http404("No Patient matches the given query.")
    return patient_id


def patient_on_care_team_of(*, user: User, patient_id: Any, perm: str = VIEW) -> bool:
    """Whether `user` reaches the patient through a care team (not through break-glass)."""
    if not _may_use_clinician_gate(user):
        return False
    return _care_team_patients(user, perm).filter(pk=patient_id).exists()


def patient_list_on_care_teams_of(*, user: User, perm: str = VIEW) -> QuerySet[Patient]:
    """Active patients `user` reaches through a care team only (no break-glass charts): the
    clinician's "my patients". Lazy; sends nothing: the door that shows rows logs them."""
    if not _may_use_clinician_gate(user):
        return Patient.objects.none()
    return _care_team_patients(user, perm)


def patients_by_mrn_for_import(*, user: User, mrns: set[str]) -> dict[str, Patient]:
    """The patients among `mrns` on whom `user` may record results through a care team (a
    clinic lab file is for the clinician's own patients; break-glass is for one chart, opened
    on purpose). Any other MRN is simply absent, existing or not. Sends record_read for the
    patients found: the import preview shows their names."""
    if not mrns:
        return {}
    found = list(patient_list_on_care_teams_of(user=user, perm=CHANGE).filter(mrn__in=mrns))
    if found:
        record_read.send(sender=Patient, patients=found, target=None, action="list")
    return {p.mrn: p for p in found}


def patients_by_id_for_import(*, user: User, patient_ids: set[int]) -> dict[int, Patient]:
    """The same rule at confirm time, by id: access may have changed since the preview."""
    queryset = patient_list_on_care_teams_of(user=user, perm=CHANGE)
    return {p.pk: p for p in queryset.filter(pk__in=patient_ids)}
