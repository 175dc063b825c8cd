from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from labs.services import (
    ctcae_grade_suggest_for_patient,
    evidence_lines,
    precycle_evaluate,
    readiness_badge,
)
from oncoplanner.accounts.cosign import colleague_cosign, cosign_token, cosign_token_valid
from oncoplanner.confirmation import ConfirmationRequired
from oncoplanner.dates import day_text
from oncoplanner.forms import add_service_errors
from oncoplanner.http import AuthedHtmxRequest
from patients import selectors as gate
from treatments import regimen_versions, selectors, services
from treatments.dosing import WeightChange, dose_compute, weight_change_needing_review
from treatments.forms import (
    AdministrationForm,
    AdministrationStopForm,
    CourseStartForm,
    CourseStopForm,
    CycleDelayForm,
    CycleGiveForm,
    CycleReasonForm,
    DoseModificationForm,
    DoseVerifyForm,
    RegimenApproveForm,
    SideEffectForm,
    doses_shown,
)
from treatments.models import (
    Administration,
    ChemoCycle,
    Course,
    CtcaeTerm,
    CycleStatusChange,
    DoseModification,
    Regimen,
    RegimenDrug,
    banding_percent,
    mg_text,
)
from treatments.schedule import closed_days_warning

BAD_REQUEST = 400


def _render(
    request: AuthedHtmxRequest,
    template: str,
    context: dict[str, Any],
    *,
    partial: str | None = None,
    status: int = 200,
) -> HttpResponse:
    if request.htmx and partial:
        template += f"#{partial}"
    return render(request, template, context, status=status)


# --- Start a course -------------------------------------------------------------------------


def _schedule_preview(regimen: Regimen, start: dt.date) -> list[dict[str, Any]]:
    """The cycles course_start would plan, without writing anything (same arithmetic)."""
    rows: list[dict[str, Any]] = []
    number, planned = 1, start
    for phase in regimen.phases.all():
        for _ in range(phase.planned_cycles):
            rows.append({"number": number, "phase": phase, "planned": planned})
            number += 1
            planned += dt.timedelta(days=phase.cycle_length_days)
    return rows


def _dose_preview(
    *, patient: Any, regimen_drugs: list[RegimenDrug], on_date: dt.date, **kwargs: Any
) -> list[dict[str, Any]]:
    """dose_compute for each drug: the dose and its inputs, or the missing input named."""
    rows: list[dict[str, Any]] = []
    for rd in regimen_drugs:
        row: dict[str, Any] = {"regimen_drug": rd}
        try:
            row["calc"] = dose_compute(regimen_drug=rd, patient=patient, on_date=on_date, **kwargs)
            row["formula_label"] = Administration.Formula(row["calc"].formula).label
        except ValidationError as error:
            row["errors"] = error.message_dict
        rows.append(row)
    return rows


def _missing_inputs(rows: list[dict[str, Any]], *, patient: Any, on_date: dt.date) -> list[str]:
    labels = {
        "height_cm": "height",
        "weight_kg": "weight",
        "creatinine_mg_dl": "serum creatinine (enter it above)",
        "sex": "sex (female or male)",
    }
    missing: list[str] = []
    # dose_compute stops at the first missing input (weight before height): name both at once.
    needs_height = any(
        row["regimen_drug"].dose_basis == "mg/m2" and "errors" in row for row in rows
    )
    if needs_height and not selectors.height_recorded(patient=patient, on_date=on_date):
        missing.append("height")
    for row in rows:
        for field in row.get("errors", {}):
            label = labels.get(field, field)
            if label not in missing:
                missing.append(label)
    return missing


def _course_create_context(patient: Any, form: CourseStartForm, data: Any = None) -> dict[str, Any]:
    context: dict[str, Any] = {"patient": patient, "form": form, "preview": None}
    data = form.data if data is None else data
    regimen = None
    regimen_id = data.get("regimen")
    if regimen_id and str(regimen_id).isdigit():
        regimen = (
            Regimen.objects.offered()
            .filter(pk=regimen_id)
            .prefetch_related("phases", "phases__drugs__drug")
            .first()
        )
    if regimen is None:
        return context
    try:
        start = dt.date.fromisoformat(str(data.get("start_date") or ""))
    except ValueError:
        start = timezone.localdate()
    creatinine: Decimal | None = None
    try:
        creatinine = Decimal(str(data.get("creatinine_mg_dl") or "")) or None
    except ArithmeticError:
        creatinine = None
    drugs = [rd for phase in regimen.phases.all() for rd in phase.drugs.all()]
    other_courses = services.open_courses(patient=patient)
    on_date = min(start, timezone.localdate())
    doses = _dose_preview(
        patient=patient,
        regimen_drugs=drugs,
        on_date=on_date,
        creatinine_mg_dl=creatinine if creatinine and creatinine.is_finite() else None,
    )
    context["preview"] = {
        "regimen": regimen,
        "start": start,
        "future": start > timezone.localdate(),
        "schedule": _schedule_preview(regimen, start),
        "doses": doses,
        "missing": _missing_inputs(doses, patient=patient, on_date=on_date),
        # The whole plan at 100%, with what the patient's other open courses still plan,
        # against each drug's lifetime limit (anthracyclines).
        "lifetime": services.lifetime_projection(
            patient=patient,
            planned=[
                *services.regimen_planned_doses(regimen),
                *(d for c in other_courses for d in services.course_remaining_doses(c)),
            ],
        ),
        "other_courses": other_courses,
        "allergies": dict(
            services.drug_allergies(patient=patient, drugs={rd.drug for rd in drugs})
        ),
    }
    for row in doses:
        row["allergy"] = context["preview"]["allergies"].get(row["regimen_drug"].drug)
    return context


def _asked_confirmations(form: Any, error: ValidationError, names: tuple[str, ...]) -> set[str]:
    """The confirmation ticks a refused form shows: every one the service asked for, and any
    the user had already ticked (so that a second question does not drop the first answer)."""
    asked = {name for name in names if form.cleaned_data.get(name)}
    if isinstance(error, ConfirmationRequired):
        asked.update(error.confirm_withs)
    return asked


def _confirmations_beside_their_boxes(form: Any, error: ValidationError) -> ValidationError:
    """Put each warning the service asks to confirm on the checkbox that accepts it: several
    asked at once (course_start) each read beside their own box, not as a list under the
    regimen away from them. Return what is left for the other fields (a missing reason)."""
    if not isinstance(error, ConfirmationRequired):
        return error
    boxed: set[tuple[str, str]] = set()
    for confirmation in error.confirmations:
        if confirmation.confirm_with in form.fields:
            form.add_error(confirmation.confirm_with, confirmation.message)
            boxed.add((confirmation.field, confirmation.message))
    left = {
        field: [message for message in messages if (field, message) not in boxed]
        for field, messages in error.message_dict.items()
    }
    return ValidationError({field: messages for field, messages in left.items() if messages})


@login_required
@require_http_methods(["GET", "POST"])
def course_create(request: AuthedHtmxRequest, patient_id: int) -> HttpResponse:
    patient = gate.patient_get_for_user(user=request.user, patient_id=patient_id, perm=gate.CHANGE)
    template = "treatments/course_create.html"
    if request.method == "GET":
        initial = {"start_date": timezone.localdate(), **request.GET.dict()}
        form = CourseStartForm(initial=initial)
        context = _course_create_context(patient, form, request.GET)
        return _render(request, template, context, partial="preview")
    form = CourseStartForm(request.POST)
    if "preview" in request.POST:
        # The no-JavaScript preview: show the schedule and doses, write nothing.
        form = CourseStartForm(initial=request.POST.dict())
        context = _course_create_context(patient, form, request.POST)
        return _render(request, template, context, partial="form")
    if not form.is_valid():
        context = _course_create_context(patient, form)
        return _render(request, template, context, partial="form", status=BAD_REQUEST)
    try:
        course = services.course_start(
            patient=patient,
            regimen=form.cleaned_data["regimen"],
            start_date=form.cleaned_data["start_date"],
            intent=form.cleaned_data["intent"],
            created_by=request.user,
            confirm_past_start=form.cleaned_data["confirm_past_start"],
            confirm_lifetime_limit=form.cleaned_data["confirm_lifetime_limit"],
            confirm_allergy=form.cleaned_data["confirm_allergy"],
            confirm_concurrent_course=form.cleaned_data["confirm_concurrent_course"],
            confirm_reason=form.cleaned_data["confirm_reason"],
        )
    except ValidationError as error:
        # Every warning the service found comes back at once, each beside its own tick.
        add_service_errors(form, _confirmations_beside_their_boxes(form, error))
        context = _course_create_context(patient, form, request.POST)
        # Which ticks to show: all the service asked for (and any already given stays).
        context["ask_confirm"] = _asked_confirmations(
            form,
            error,
            (
                "confirm_past_start",
                "confirm_lifetime_limit",
                "confirm_allergy",
                "confirm_concurrent_course",
            ),
        )
        return _render(request, template, context, partial="form", status=BAD_REQUEST)
    planned = list(course.cycles.values_list("number", "planned_start"))
    messages.success(request, f"Course of {course.regimen} started; {len(planned)} cycles planned.")
    closed_days = closed_days_warning(planned)
    if closed_days:
        messages.warning(request, closed_days)
    url = reverse("treatments:course_detail", args=[patient.pk, course.pk])
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Redirect": url})
    return redirect(url)


# --- Course page ----------------------------------------------------------------------------


def _pct(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _dose_levels(
    cycles: list[ChemoCycle], modifications: list[DoseModification], course: Course
) -> dict[int, str]:
    """Per cycle, the dose level each drug is at (the rule of services.dose_percent_for)."""
    drugs_by_phase = {
        phase.pk: [rd.drug for rd in phase.drugs.all()] for phase in course.regimen.phases.all()
    }
    levels: dict[int, str] = {}
    for cycle in cycles:
        per_drug: dict[str, Decimal] = {}
        for drug in drugs_by_phase.get(cycle.phase_id, []):
            applicable = [
                m
                for m in modifications
                if m.from_cycle_number <= cycle.number and (m.drug_id in (None, drug.pk))
            ]
            latest = max(
                applicable,
                key=lambda m: (m.from_cycle_number, m.created_at, m.pk),
                default=None,
            )
            per_drug[drug.name] = Decimal(latest.percent) if latest else Decimal(100)
        values = set(per_drug.values())
        if len(values) <= 1:
            levels[cycle.number] = f"{_pct(values.pop() if values else Decimal(100))}%"
        else:
            levels[cycle.number] = ", ".join(f"{n} {_pct(p)}%" for n, p in per_drug.items())
    return levels


DELAY_TIMES = {1: "once", 2: "twice"}


def _delay_note(cycle: ChemoCycle, delays: int) -> str:
    """'delayed twice' on a course's cycle line: a second neutropenic delay is a reason for
    G-CSF or a dose reduction, and a given cycle no longer says it was delayed at all."""
    if not delays or (delays == 1 and cycle.status == ChemoCycle.Status.DELAYED):
        return ""  # the status badge says it already
    return f"delayed {DELAY_TIMES.get(delays, f'{delays} times')}"


def _course_context(
    course: Course,
    *,
    dose_form: DoseModificationForm | None = None,
    stop_form: CourseStopForm | None = None,
) -> dict[str, Any]:
    cycles = list(selectors.course_cycles(course=course))
    delays = CycleStatusChange.objects.delay_counts(course=course)  # one query for the course
    modifications = list(selectors.course_dose_modifications(course=course))
    levels = _dose_levels(cycles, modifications, course)
    is_open = course.status in services.OPEN_COURSE_STATUSES
    next_cycle = next((c for c in cycles if c.status in services.OPEN_CYCLE_STATUSES), None)
    return {
        "patient": course.patient,
        "course": course,
        # The regimen version's supportive care (premedication, antiemetics, G-CSF...).
        "supportive": list(
            course.regimen.supportive_medications.select_related(
                "phase", "required_before__drug"
            ).order_by("phase__order", "order", "pk")
        ),
        # What the cycles still to give would add, against each drug's lifetime limit.
        "lifetime": services.lifetime_projection(
            patient=course.patient, planned=services.course_remaining_doses(course)
        )
        if is_open
        else [],
        "cycles": [
            (c, levels.get(c.number, ""), _delay_note(c, delays.get(c.pk, 0))) for c in cycles
        ],
        "next_cycle": next_cycle,
        "modifications": modifications,
        "is_open": is_open,
        "dose_form": dose_form
        or DoseModificationForm(
            course=course,
            initial={"from_cycle_number": next_cycle.number if next_cycle else 1},
        ),
        "stop_form": stop_form or CourseStopForm(initial={"stopped_on": timezone.localdate()}),
    }


@login_required
@require_GET
def course_detail(request: AuthedHtmxRequest, patient_id: int, course_id: int) -> HttpResponse:
    course = selectors.course_get(user=request.user, patient_id=patient_id, course_id=course_id)
    return render(request, "treatments/course_detail.html", _course_context(course))


@login_required
@require_POST
def dose_modification_create(
    request: AuthedHtmxRequest, patient_id: int, course_id: int
) -> HttpResponse:
    course = selectors.course_get(
        user=request.user, patient_id=patient_id, course_id=course_id, perm=gate.CHANGE
    )
    form = DoseModificationForm(request.POST, course=course)
    status = 200
    if form.is_valid():
        try:
            services.dose_modification_record(
                course=course,
                from_cycle_number=form.cleaned_data["from_cycle_number"],
                percent=form.cleaned_data["percent"],
                drug=form.cleaned_data["drug"],
                reason=form.cleaned_data["reason"],
                override_reason=form.cleaned_data["override_reason"],
                confirm_level=form.cleaned_data["confirm_level"],
                created_by=request.user,
            )
        except ValidationError as error:
            add_service_errors(form, error)
            form.ask_confirm = isinstance(error, ConfirmationRequired)
            status = BAD_REQUEST
        else:
            messages.success(request, "Dose modification recorded.")
            url = reverse("treatments:course_detail", args=[patient_id, course.pk])
            if request.htmx:
                return HttpResponse(status=204, headers={"HX-Redirect": url})
            return redirect(url)
    else:
        status = BAD_REQUEST
    return _render(
        request,
        "treatments/course_detail.html",
        _course_context(course, dose_form=form),
        partial="dose-modifications",
        status=status,
    )


@login_required
@require_POST
def course_stop(request: AuthedHtmxRequest, patient_id: int, course_id: int) -> HttpResponse:
    course = selectors.course_get(
        user=request.user, patient_id=patient_id, course_id=course_id, perm=gate.CHANGE
    )
    form = CourseStopForm(request.POST)
    if form.is_valid():
        try:
            services.course_stop(
                course=course,
                reason=form.cleaned_data["reason"],
                note=form.cleaned_data["note"],
                stopped_on=form.cleaned_data["stopped_on"],
                by=request.user,
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "Course stopped; every cycle not yet given is cancelled.")
            url = reverse("treatments:course_detail", args=[patient_id, course.pk])
            if request.htmx:
                return HttpResponse(status=204, headers={"HX-Redirect": url})
            return redirect(url)
    return _render(
        request,
        "treatments/course_detail.html",
        _course_context(course, stop_form=form),
        partial="stop",
        status=BAD_REQUEST,
    )


# --- Cycle page -----------------------------------------------------------------------------


def _administration_plan(
    cycle: ChemoCycle,
    dose_plan: services.CycleDosePlan,
    previous: selectors.PreviousCycleDoses | None,
) -> list[dict[str, Any]]:
    """Each planned (drug, day) of the cycle as the page shows it: its dose as the pharmacist
    verifies it and the chair records it (services.cycle_dose_plan), a recorded allergy to the
    drug, and what the previous cycle gave of it."""
    allergies = dict(
        services.drug_allergies(
            patient=cycle.course.patient, drugs={dose.regimen_drug.drug for dose in dose_plan.doses}
        )
    )
    return [
        {
            "dose": dose,
            "allergy": allergies.get(dose.regimen_drug.drug),
            "formula_label": (
                Administration.Formula(dose.calculation.formula).label if dose.calculation else ""
            ),
            "previous": previous.given.get((dose.regimen_drug.pk, dose.day)) if previous else None,
        }
        for dose in dose_plan.doses
    ]


def _dose_weight_change(patient: Any, dose_plan: services.CycleDosePlan) -> WeightChange | None:
    """The weight this cycle's doses would use against the last dose's, when the change is
    large enough that the doses must be reviewed before they are given."""
    weights = (
        dose.calculation.inputs.get("weight_kg") for dose in dose_plan.to_give if dose.calculation
    )
    weight = next((w for w in weights if w is not None), None)
    if weight is None:
        return None
    return weight_change_needing_review(patient=patient, weight_kg=weight)


def _cycle_context(request: AuthedHtmxRequest, cycle: ChemoCycle, **forms: Any) -> dict[str, Any]:
    course = cycle.course
    patient = course.patient
    is_open = (
        cycle.status in services.OPEN_CYCLE_STATUSES
        and course.status in services.OPEN_COURSE_STATUSES
    )
    readiness = (
        precycle_evaluate(
            patient=patient,
            regimen=course.regimen,
            at=timezone.now(),
            cycle_day=cycle.planned_start,
        )
        if is_open
        else None
    )
    # A given cycle with drugs still to give (day 8, a 46-hour pump): the counts as they stand
    # now, which the readiness panel no longer shows once the cycle is given.
    counts_now = (
        precycle_evaluate(patient=patient, regimen=course.regimen, at=timezone.now())
        if cycle.status == ChemoCycle.Status.GIVEN
        else None
    )
    dose_plan = services.cycle_dose_plan(cycle)
    # What the last cycle gave, beside each dose: a pharmacist compares before verifying.
    previous = selectors.previous_cycle_doses(cycle=cycle)
    plan = _administration_plan(cycle, dose_plan, previous)
    for row in plan:
        adm = row["dose"].administration
        if adm is not None and adm.given_in_full:
            refused = forms.get("stop_form") if forms.get("stop_form_for") == adm.pk else None
            row["stop_form"] = refused or AdministrationStopForm(auto_id=f"stop{adm.pk}_%s")
            row["stop_open"] = refused is not None
    to_give = dose_plan.to_give
    can_record = cycle.status in {ChemoCycle.Status.GIVEN, ChemoCycle.Status.READY} and bool(
        to_give
    )
    may_verify = (
        request.user.is_pharmacist and cycle.status != ChemoCycle.Status.CANCELLED and bool(to_give)
    )
    # Separation of duties: the pharmacist who set a dose level in force for this cycle (as a
    # non-medical prescriber) is told so instead of shown a form the service would refuse.
    own_levels = (
        services.dose_levels_set_by(plan=dose_plan, user=request.user) if may_verify else []
    )
    # Read once for the page: the lifetime warning and the received line both need it.
    received = (
        services.cumulative_dose_per_drug(patient=patient)
        if any(dose.regimen_drug.drug.lifetime_limit_mg_m2 for dose in dose_plan.doses)
        else []
    )
    checkers = selectors.care_team_checkers(patient=patient, exclude=request.user)
    today = timezone.localdate()
    supportive_due = services.cycle_supportive_care(cycle=cycle)
    verify_form = forms.get("verify_form") or DoseVerifyForm(
        auto_id="verify_%s",
        bandable=_bandable(dose_plan),
        # Verifying again starts from the doses banded last, where the calculation stands.
        banded_before={
            dose.key: dose.banded_before
            for dose in dose_plan.to_give
            if dose.banded_before is not None
        },
    )
    return {
        "patient": patient,
        "course": course,
        "cycle": cycle,
        # Every give, delay, hold, cancellation and move, newest first: one query, with who.
        "status_history": list(cycle.status_history.for_display()),
        # Supportive care due with this cycle, by day; the chair confirms the required
        # premedication before recording the drug it goes before.
        "supportive_due": supportive_due,
        "premedication_required": any(d.medication.required_before_id for d in supportive_due),
        "is_open": is_open,
        "readiness": readiness,
        "badge": readiness_badge(readiness),
        "evidence": evidence_lines(readiness),
        "plan": plan,
        "previous_cycle": previous.number if previous else None,
        "can_record": can_record,
        "weight_change": _dose_weight_change(patient, dose_plan),
        # The doses still to give in this cycle, against each drug's lifetime limit.
        "lifetime": services.lifetime_projection(
            patient=patient,
            planned=[(dose.regimen_drug, 1) for dose in to_give],
            received=received,
        ),
        # Received so far of each drug of this cycle with a lifetime limit (anthracyclines):
        # what a pharmacist checks before verifying, shown below the warning threshold too.
        "limited_received": _limited_received(dose_plan, received),
        "counts_now": counts_now,
        "counts_badge": readiness_badge(counts_now) if counts_now else None,
        "counts_evidence": evidence_lines(counts_now) if counts_now else None,
        "verification": dose_plan.verification,
        # What a pharmacist would verify now, and whether the latest verification still holds.
        "seen_doses": doses_shown(dose_plan.doses_to_verify),
        "verification_stale": dose_plan.verification_stale,
        "can_verify": may_verify and not own_levels,
        "verify_refused": services.own_dose_levels_message(cycle, own_levels) if own_levels else "",
        "verify_form": verify_form,
        # Beside each dose the pharmacy may band: its calculated dose, the dispensed-dose
        # field and the doses allowed.
        "banding_rows": _banding_rows(dose_plan, verify_form),
        # What the latest verification holds: calculated and dispensed doses, and the inputs.
        "verification_rows": _verification_rows(dose_plan),
        "give_form": forms.get("give_form")
        or CycleGiveForm(
            initial={"actual_start": min(max(cycle.planned_start, course.start_date), today)},
            auto_id="give_%s",
        ),
        "delay_form": forms.get("delay_form") or CycleDelayForm(auto_id="delay_%s"),
        "hold_form": forms.get("hold_form") or CycleReasonForm(auto_id="hold_%s"),
        "cancel_form": forms.get("cancel_form") or CycleReasonForm(auto_id="cancel_%s"),
        "administration_form": forms.get("administration_form")
        or AdministrationForm(cycle=cycle, checkers=checkers, auto_id="adm_%s"),
    }


@login_required
@require_GET
def cycle_detail(
    request: AuthedHtmxRequest, patient_id: int, course_id: int, number: int
) -> HttpResponse:
    cycle = selectors.cycle_get(
        user=request.user, patient_id=patient_id, course_id=course_id, number=number
    )
    return render(request, "treatments/cycle_detail.html", _cycle_context(request, cycle))


def _cycle_to_change(
    request: AuthedHtmxRequest, patient_id: int, course_id: int, number: int
) -> ChemoCycle:
    return selectors.cycle_get(
        user=request.user,
        patient_id=patient_id,
        course_id=course_id,
        number=number,
        perm=gate.CHANGE,
    )


def _back_to_cycle(
    request: AuthedHtmxRequest, cycle: ChemoCycle, message: str, *, warning: str = ""
) -> HttpResponse:
    """After a cycle-page action: say what was done (and what to look at), and reload the
    cycle page (HX-Redirect for HTMX, a redirect otherwise)."""
    messages.success(request, message)
    if warning:
        messages.warning(request, warning)
    url = reverse(
        "treatments:cycle_detail", args=[cycle.course.patient_id, cycle.course_id, cycle.number]
    )
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Redirect": url})
    return redirect(url)


def _closed_days_warning_from(cycle: ChemoCycle) -> str:
    """Which of `cycle` and the later cycles a delay moved now fall on a weekend, a public
    holiday or a day the unit recorded as closed."""
    moved = cycle.course.cycles.filter(
        number__gte=cycle.number, status__in=services.OPEN_CYCLE_STATUSES
    )
    return closed_days_warning(moved.order_by("number").values_list("number", "planned_start"))


def _bandable(dose_plan: services.CycleDosePlan) -> list[tuple[str, str]]:
    """(key, label) of each dose a verification would hold whose drug the pharmacy bands."""
    return [
        (dose.key, dose.label)
        for dose in dose_plan.to_give
        if dose.calculation is not None and dose.band is not None
    ]


def _banding_rows(dose_plan: services.CycleDosePlan, form: DoseVerifyForm) -> list[dict[str, Any]]:
    by_key = {dose.key: dose for dose in dose_plan.to_give}
    rows = []
    for name, key in form.dispensed_keys.items():
        dose = by_key.get(key)
        if dose is None or dose.band is None:
            continue  # the page changed since the form was filled in: seen_doses says so
        low, high = dose.band
        rows.append(
            {
                "dose": dose,
                "field": form[name],
                "low": low,
                "high": high,
                "tolerance": dose.regimen_drug.drug.dose_banding_tolerance_percent,
            }
        )
    return rows


def _verification_rows(dose_plan: services.CycleDosePlan) -> list[dict[str, Any]]:
    """Each dose the latest verification holds, in the plan's order: the calculated dose, the
    dose dispensed (banded or not), and the inputs verified (none kept on older ones)."""
    verification = dose_plan.verification
    if verification is None:
        return []
    labels = {dose.key: dose.label for dose in dose_plan.doses}
    keys = [key for key in labels if key in verification.doses]
    keys += [key for key in verification.doses if key not in labels]
    dispensed = verification.dispensed
    rows = []
    for key in keys:
        calculated, given = Decimal(verification.doses[key]), Decimal(dispensed[key])
        rows.append(
            {
                "label": labels.get(key, key),
                "calculated": calculated,
                "dispensed": given,
                "banding_percent": (
                    banding_percent(calculated_mg=calculated, dispensed_mg=given)
                    if given != calculated
                    else None
                ),
                "inputs": (verification.dose_inputs or {}).get(key),
            }
        )
    return rows


def _limited_received(
    dose_plan: services.CycleDosePlan, received: list[services.CumulativeDose]
) -> list[dict[str, Any]]:
    limited = {
        dose.regimen_drug.drug.pk: dose.regimen_drug.drug
        for dose in dose_plan.doses
        if dose.regimen_drug.drug.lifetime_limit_mg_m2
    }
    by_drug = {c.drug.pk: c for c in received if c.drug.pk in limited}
    return [
        {
            "drug": drug,
            "mg_m2": by_drug[pk].total_mg_m2 if pk in by_drug else Decimal(0),
            "limit": drug.lifetime_limit_mg_m2,
        }
        for pk, drug in sorted(limited.items(), key=lambda item: item[1].name)
    ]


def _administrations_fragment(
    request: AuthedHtmxRequest, cycle: ChemoCycle, status: int, **forms: Any
) -> HttpResponse:
    """The cycle page's administrations section again, with the refused form and its errors."""
    return _render(
        request,
        "treatments/cycle_detail.html",
        _cycle_context(request, cycle, **forms),
        partial="administrations",
        status=status,
    )


def _cycle_action(
    request: AuthedHtmxRequest,
    patient_id: int,
    course_id: int,
    number: int,
    *,
    action: str,
) -> HttpResponse:
    cycle = _cycle_to_change(request, patient_id, course_id, number)
    form_class: Any = {"give": CycleGiveForm, "delay": CycleDelayForm}.get(action, CycleReasonForm)
    form = form_class(request.POST, auto_id=f"{action}_%s")
    status = BAD_REQUEST
    if form.is_valid():
        data = form.cleaned_data
        seen = data["seen_version"] or None
        closed_days = ""
        try:
            if action == "give":
                services.cycle_give(
                    cycle=cycle,
                    actual_start=data["actual_start"],
                    given_by=request.user,
                    override_reason=data["override_reason"],
                    seen_version=seen,
                )
                done = f"Cycle {cycle.number} given from {day_text(data['actual_start'])}."
            elif action == "delay":
                delayed = services.cycle_delay(
                    cycle=cycle,
                    reason=data["reason"],
                    by=request.user,
                    days=data["days"],
                    new_start=data["new_start"],
                    seen_version=seen,
                )
                done = f"Cycle {cycle.number} delayed; later cycles moved with it."
                closed_days = _closed_days_warning_from(delayed)
            elif action == "hold":
                services.cycle_hold(
                    cycle=cycle, reason=data["reason"], by=request.user, seen_version=seen
                )
                done = f"Cycle {cycle.number} on hold."
            else:
                services.cycle_cancel(
                    cycle=cycle, reason=data["reason"], by=request.user, seen_version=seen
                )
                done = f"Cycle {cycle.number} cancelled."
        except services.CycleChanged as error:
            add_service_errors(form, error)
            cycle.refresh_from_db()  # the page shows the cycle as it is now, and its version
            status = error.http_status
        except ValidationError as error:
            add_service_errors(form, error)
        except PermissionDenied as error:
            # Not this user's decision (cancelling or releasing a held cycle without being a
            # prescriber, giving against the check without being an oncologist): said on the
            # form the user filled in, with the 403 every other door answers.
            form.add_error(None, str(error))
            status = 403
        else:
            return _back_to_cycle(request, cycle, done, warning=closed_days)
    return _render(
        request,
        "treatments/cycle_detail.html",
        _cycle_context(request, cycle, **{f"{action}_form": form}),
        partial="cycle-actions",
        status=status,
    )


@login_required
@require_POST
def cycle_give(
    request: AuthedHtmxRequest, patient_id: int, course_id: int, number: int
) -> HttpResponse:
    return _cycle_action(request, patient_id, course_id, number, action="give")


@login_required
@require_POST
def cycle_delay(
    request: AuthedHtmxRequest, patient_id: int, course_id: int, number: int
) -> HttpResponse:
    return _cycle_action(request, patient_id, course_id, number, action="delay")


@login_required
@require_POST
def cycle_hold(
    request: AuthedHtmxRequest, patient_id: int, course_id: int, number: int
) -> HttpResponse:
    return _cycle_action(request, patient_id, course_id, number, action="hold")


@login_required
@require_POST
def cycle_cancel(
    request: AuthedHtmxRequest, patient_id: int, course_id: int, number: int
) -> HttpResponse:
    return _cycle_action(request, patient_id, course_id, number, action="cancel")


@login_required
@require_POST
def administration_create(
    request: AuthedHtmxRequest, patient_id: int, course_id: int, number: int
) -> HttpResponse:
    cycle = _cycle_to_change(request, patient_id, course_id, number)
    checkers = selectors.care_team_checkers(patient=cycle.course.patient, exclude=request.user)
    form = AdministrationForm(request.POST, cycle=cycle, checkers=checkers, auto_id="adm_%s")
    if form.is_valid():
        regimen_drug, day = form.cleaned_data["regimen_drug"]
        checker = form.cleaned_data["verified_by"]
        scope = f"cycle:{cycle.pk}"
        try:
            if not cosign_token_valid(
                form.cleaned_data["cosign_token"], checker=checker, giver=request.user, scope=scope
            ):
                colleague_cosign(
                    checker=checker,
                    password=form.cleaned_data["checker_password"],
                    field="checker_password",
                )
            # Accepted: a refusal below keeps the co-sign for a few minutes (cosign_token).
            form.cosigned = cosign_token(checker=checker, giver=request.user, scope=scope)
            administration = services.administration_record(
                cycle=cycle,
                regimen_drug=regimen_drug,
                day_of_cycle=day,
                given_at=form.cleaned_data["given_at"],
                administered_by=request.user,
                verified_by=form.cleaned_data["verified_by"],
                notes=form.cleaned_data["notes"],
                creatinine_mg_dl=form.cleaned_data["creatinine_mg_dl"],
                label_dose_mg=form.cleaned_data["label_dose_mg"],
                confirm_new_results=form.cleaned_data["confirm_new_results"],
                confirm_allergy=form.cleaned_data["confirm_allergy"],
                confirm_premedication=form.cleaned_data["confirm_premedication"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
            form.ask_confirm = _asked_confirmations(
                form, error, ("confirm_new_results", "confirm_allergy", "confirm_premedication")
            )
        else:
            return _back_to_cycle(
                request,
                cycle,
                f"{administration.drug} {_dose_recorded(administration)} recorded for day {day}, "
                f"verified by {administration.verified_by}.",
            )
    elif "verified_by" in form.errors and request.POST.get("verified_by") == str(request.user.pk):
        # The select never offers oneself; say why rather than "not one of the choices".
        form.errors["verified_by"] = form.error_class(
            ["The second check must be done by someone other than the person giving the drug."]
        )
    return _administrations_fragment(request, cycle, BAD_REQUEST, administration_form=form)


def _dose_recorded(administration: Administration) -> str:
    """ "780 mg (banded from 772 mg calculated, +1.0%)", or "156.4 mg"."""
    banded = f" ({administration.banding_note})" if administration.banding_note else ""
    return f"{mg_text(administration.prepared_dose_mg)} mg{banded}"


@login_required
@require_POST
def cycle_verify(
    request: AuthedHtmxRequest, patient_id: int, course_id: int, number: int
) -> HttpResponse:
    cycle = _cycle_to_change(request, patient_id, course_id, number)
    form = DoseVerifyForm(
        request.POST, auto_id="verify_%s", bandable=_bandable(services.cycle_dose_plan(cycle))
    )
    status = BAD_REQUEST
    if form.is_valid():
        try:
            services.cycle_doses_verify(
                cycle=cycle,
                by=request.user,
                note=form.cleaned_data["note"],
                seen_doses=form.cleaned_data["seen_doses"],
                dispensed_doses=form.dispensed_doses(),
                confirm_allergy=form.cleaned_data["confirm_allergy"],
            )
        except ValidationError as error:
            add_service_errors(form, _dispensed_errors_beside_their_boxes(form, error))
            form.ask_confirm = _asked_confirmations(form, error, ("confirm_allergy",))
        except PermissionDenied as error:
            form.add_error(None, str(error))
            status = 403
        else:
            return _back_to_cycle(request, cycle, f"Cycle {cycle.number}'s doses verified.")
    return _administrations_fragment(request, cycle, status, verify_form=form)


def _dispensed_errors_beside_their_boxes(
    form: DoseVerifyForm, error: ValidationError
) -> ValidationError:
    """Put each refused dispensed dose on its own box (a reviewer found the refusal at the top
    of a long form, away from the figure to correct); return what is left for the rest of the
    form."""
    if not hasattr(error, "error_dict") or services.DISPENSED not in error.error_dict:
        return error
    left = {name: errors for name, errors in error.error_dict.items() if name != services.DISPENSED}
    boxes = {key: name for name, key in form.dispensed_keys.items()}
    for refusal in error.error_dict[services.DISPENSED]:
        key = (refusal.code or "").removeprefix(services.DISPENSED_CODE)
        box = boxes.get(key)
        if box is None:
            left.setdefault(services.DISPENSED, []).append(refusal)
        else:
            form.add_error(box, refusal)
    return ValidationError(left)


@login_required
@require_POST
def administration_stop(
    request: AuthedHtmxRequest, patient_id: int, course_id: int, number: int, administration_id: int
) -> HttpResponse:
    cycle = _cycle_to_change(request, patient_id, course_id, number)
    administration = get_object_or_404(cycle.administrations, pk=administration_id)
    form = AdministrationStopForm(request.POST, auto_id=f"stop{administration.pk}_%s")
    if form.is_valid():
        try:
            administration = services.administration_stop(
                administration=administration,
                amount_given_mg=form.cleaned_data["amount_given_mg"],
                reason=form.cleaned_data["reason"],
                by=request.user,
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            return _back_to_cycle(
                request,
                cycle,
                f"{administration.drug} recorded as stopped after "
                f"{administration.amount_given_mg} of {administration.dose_mg} mg.",
            )
    # The stop form of the row the refused POST came from keeps its errors.
    return _administrations_fragment(
        request, cycle, BAD_REQUEST, stop_form=form, stop_form_for=administration.pk
    )


@login_required
@require_GET
def pharmacy_worklist(request: AuthedHtmxRequest) -> HttpResponse:
    if not request.user.is_clinician:
        raise Http404("No such page.")  # a clinicians' page, like the inbox
    context = {
        "rows": selectors.pharmacy_worklist(user=request.user),
        "days_ahead": selectors.WORKLIST_DAYS_AHEAD,
    }
    return render(request, "treatments/pharmacy_worklist.html", context)


# --- Side effects ---------------------------------------------------------------------------


def _term_from(value: Any) -> CtcaeTerm | None:
    if value and str(value).isdigit():
        return CtcaeTerm.objects.filter(pk=value).prefetch_related("lab_criteria").first()
    return None


def _side_effect_context(patient: Any, form: SideEffectForm, q: str) -> dict[str, Any]:
    term = form.term
    suggestion = (
        ctcae_grade_suggest_for_patient(patient=patient, term=term)
        if term is not None and term.lab_loinc
        else None
    )
    return {
        "patient": patient,
        "form": form,
        "term": term,
        "suggestion": suggestion,
        "q": q,
        "terms": selectors.ctcae_terms_search(q=q),
    }


@login_required
@require_http_methods(["GET", "POST"])
def side_effect_create(request: AuthedHtmxRequest, patient_id: int) -> HttpResponse:
    patient = gate.patient_get_for_user(user=request.user, patient_id=patient_id, perm=gate.CHANGE)
    cycles = selectors.patient_cycles(patient=patient)
    template = "treatments/side_effect_form.html"
    if request.method == "GET":
        term = _term_from(request.GET.get("term"))
        raw_cycle = request.GET.get("cycle", "")
        # Preselect the cycle the clinician came from, only if it is one of this patient's.
        cycle = cycles.filter(pk=int(raw_cycle)).first() if raw_cycle.isdigit() else None
        form = SideEffectForm(
            cycles=cycles,
            term=term,
            initial={"term": term, "onset": timezone.localdate(), "cycle": cycle},
        )
        context = _side_effect_context(patient, form, request.GET.get("q", ""))
        return _render(request, template, context, partial="grades")
    term = _term_from(request.POST.get("term"))
    form = SideEffectForm(request.POST, cycles=cycles, term=term)
    if form.is_valid():
        try:
            side_effect = services.side_effect_record(
                patient=patient,
                term=form.cleaned_data["term"],
                grade=form.cleaned_data["grade"],
                onset=form.cleaned_data["onset"],
                cycle=form.cleaned_data["cycle"],
                description=form.cleaned_data["description"],
                recorded_by=request.user,
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                f"{side_effect.term.term} grade {side_effect.grade} "
                f"(CTCAE v{side_effect.ctcae_version}) recorded.",
            )
            return redirect("patients:patient_detail", patient_id=patient.pk)
    return render(
        request,
        template,
        _side_effect_context(patient, form, request.POST.get("q", "")),
        status=BAD_REQUEST,
    )


@login_required
@require_GET
def ctcae_term_search(request: AuthedHtmxRequest) -> HttpResponse:
    """Reference data, no PHI: the matching CTCAE terms, common ones first."""
    if request.user.is_patient_user:
        raise Http404("No such page.")
    q = request.GET.get("q", "")
    patient_id = request.GET.get("patient", "")
    # Only used to build the links back to that patient's form; nothing of the patient is read.
    pick_url = (
        reverse("treatments:side_effect_create", args=[int(patient_id)])
        if patient_id.isdigit()
        else ""
    )
    return render(
        request,
        "treatments/_ctcae_terms.html",
        {"terms": selectors.ctcae_terms_search(q=q), "q": q, "pick_url": pick_url},
    )


# --- Treatment summary ----------------------------------------------------------------------


@login_required
@require_GET
def course_summary(request: AuthedHtmxRequest, patient_id: int, course_id: int) -> HttpResponse:
    course = selectors.course_get(user=request.user, patient_id=patient_id, course_id=course_id)
    cycles = list(selectors.course_cycles(course=course))
    modifications = list(selectors.course_dose_modifications(course=course))
    levels = _dose_levels(cycles, modifications, course)
    administrations = list(selectors.course_administrations(course=course))
    by_cycle: dict[int, list[Any]] = {}
    for adm in administrations:
        by_cycle.setdefault(adm.cycle_id, []).append(adm)
    cumulative = services.cumulative_dose_per_drug(patient=course.patient)
    context = {
        "patient": course.patient,
        "course": course,
        "cycles": [(c, levels.get(c.number, ""), by_cycle.get(c.pk, [])) for c in cycles],
        "given_count": sum(1 for c in cycles if c.status == ChemoCycle.Status.GIVEN),
        "modifications": modifications,
        "side_effects": list(selectors.course_side_effects(course=course)),
        "nadirs": selectors.course_nadirs(user=request.user, course=course, cycles=cycles),
        "cumulative": [
            c
            for c in cumulative
            if c.lifetime_limit_mg_m2 or "anthracycline" in c.drug.drug_class.lower()
        ],
        "printed_at": timezone.now(),
        "printed_by": request.user,
    }
    return render(request, "treatments/course_summary.html", context)


# --- Regimen library: what each version holds, and its approval --------------------------------
# Reference data, no PHI: clinicians and administrators read it; an oncologist and a pharmacist
# (neither of them its author) approve a version before anyone can prescribe it.


def _staff_only(request: AuthedHtmxRequest) -> None:
    if not (request.user.is_clinician or request.user.is_administrator):
        raise Http404("No such page.")


@login_required
@require_GET
def regimen_library(request: AuthedHtmxRequest) -> HttpResponse:
    _staff_only(request)
    regimens = Regimen.objects.prefetch_related("approvals").annotate(
        course_count=Count("courses", distinct=True)
    )
    rows = [
        {"regimen": r, "missing": regimen_versions.regimen_missing_approvals(regimen=r)}
        for r in regimens.order_by("name", "-version")
    ]
    awaiting = [row for row in rows if row["missing"]]
    return render(
        request,
        "treatments/regimen_library.html",
        {"rows": rows, "awaiting": awaiting},
    )


def _regimen_detail_context(
    request: AuthedHtmxRequest, regimen: Regimen, form: RegimenApproveForm | None = None
) -> dict[str, Any]:
    user = request.user
    approvals = list(regimen.approvals.all())  # prefetched: read once for the page
    missing = regimen_versions.regimen_missing_approvals(regimen=regimen)
    may_approve = (
        bool(missing)
        and (user.is_oncologist or user.is_pharmacist)
        and regimen.created_by_id != user.pk
        and all(a.approved_by_id != user.pk for a in approvals)
        and ("oncologist" if user.is_oncologist else "pharmacist") in missing
    )
    # What the approvers must look at: what changed from the version before, and the whole
    # plan against each lifetime limit.
    previous = regimen_versions.regimen_previous_version(regimen=regimen)
    changes = (
        regimen_versions.regimen_changes_from(regimen=regimen, previous=previous)
        if previous
        else {}
    )
    phases = list(regimen.phases.order_by("order").prefetch_related("drugs__drug"))
    for phase in phases:
        for rd in phase.drugs.all():
            rd.change = changes.get(rd.pk, "")
    supportive_changes = (
        regimen_versions.regimen_supportive_changes_from(regimen=regimen, previous=previous)
        if previous
        else None
    )
    supportive = list(
        regimen.supportive_medications.select_related("phase", "required_before__drug").order_by(
            "phase__order", "order", "pk"
        )
    )
    for sm in supportive:
        sm.change = supportive_changes.changed.get(sm.pk, "") if supportive_changes else ""
    return {
        "supportive": supportive,
        "supportive_removed": supportive_changes.removed if supportive_changes else [],
        "regimen": regimen,
        "lifetime_totals": regimen_versions.regimen_plan_lifetime_totals(regimen=regimen),
        "previous": previous,
        "phases": phases,
        "rules": list(
            regimen.precycle_rules.select_related("test").order_by("test__name", "priority")
        ),
        "approvals": approvals,
        "missing": missing,
        "may_approve": may_approve,
        "approved_by_me": any(a.approved_by_id == user.pk for a in approvals),
        "form": form or RegimenApproveForm(auto_id="approve_%s"),
        "course_count": regimen.courses.count(),
    }


def _regimen_with_approvals(regimen_id: int) -> Regimen:
    return get_object_or_404(
        Regimen.objects.prefetch_related("approvals__approved_by"), pk=regimen_id
    )


@login_required
@require_GET
def regimen_detail(request: AuthedHtmxRequest, regimen_id: int) -> HttpResponse:
    _staff_only(request)
    regimen = _regimen_with_approvals(regimen_id)
    return render(
        request, "treatments/regimen_detail.html", _regimen_detail_context(request, regimen)
    )


@login_required
@require_POST
def regimen_approve(request: AuthedHtmxRequest, regimen_id: int) -> HttpResponse:
    _staff_only(request)
    regimen = _regimen_with_approvals(regimen_id)
    form = RegimenApproveForm(request.POST, auto_id="approve_%s")
    status = BAD_REQUEST
    if form.is_valid():
        try:
            approval = regimen_versions.regimen_approve(
                regimen=regimen,
                by=request.user,
                password=form.cleaned_data["password"],
                checked=form.cleaned_data["checked"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        except PermissionDenied as error:
            form.add_error(None, str(error))
            status = 403
        else:
            regimen.refresh_from_db()
            done = (
                f"{regimen} approved: it can be offered for new courses."
                if regimen.approved_at
                else f"Your approval of {regimen} is recorded "
                f"({approval.get_discipline_display().lower()}); it awaits the other one."
            )
            messages.success(request, done)
            return redirect("treatments:regimen_detail", regimen_id=regimen.pk)
    context = _regimen_detail_context(request, regimen, form)
    return render(request, "treatments/regimen_detail.html", context, status=status)
