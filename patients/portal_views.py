"""The patient portal: a signed-in patient's own schedule, released results, symptom reports,
care team and access history.

Only the patient reaches it: every view starts at a portal selector in patients/selectors.py,
which answers 404 for anyone without a linked record (clinicians and administrators included)
and logs the read. Nothing clinician-only is passed to the templates: no cycle reasons, dose
modifications, side-effect descriptions, acknowledgement notes or unreleased results.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from audit.selectors import access_visits_for_patient
from labs.templatetags.lab_values import lab_value  # as the clinicians' pages write it
from labs.units import unit_display
from patients.portal_forms import SymptomReportForm
from patients.selectors import (
    care_team_members,
    portal_allergies_for,
    portal_clinic_phones_for,
    portal_cycles_for,
    portal_lab_results_for,
    portal_patient_for,
    portal_symptom_reports_for,
)
from patients.services import symptom_report_create
from treatments.schedule import public_holiday, unit_closure

# Server-side (session) note of the report just sent, so the confirmation survives the redirect
# without putting a word about the patient's health into a cookie or the URL.
SENT_KEY = "_portal_symptom_sent"
ACCESS_LOG_LIMIT = 50

# What a cycle's status means to a patient (no reasons: those are clinical notes).
CYCLE_STATUS_WORDS = {
    "planned": "Planned",
    "ready": "Planned",
    "given": "Given",
    "delayed": "Moved to a later date",
    "held": "On hold",
    "cancelled": "Cancelled",
}
ACTION_WORDS = {
    "read": "Viewed",
    "list": "Viewed (in a list)",
    "create": "Added information",
    "update": "Changed information",
    "delete": "Removed information",
    "export": "Exported",
    "access_change": "Changed who can see it",
    "break_glass": "Opened it in an emergency",
}
OBJECT_WORDS = {
    "Patient": "your record",
    "ChemoCycle": "your treatment schedule",
    "Course": "your treatment plan",
    "LabResult": "your test results",
    "SymptomReport": "your symptom reports",
    "SideEffect": "your side effects",
    "BodyMeasurement": "your height and weight",
    "Allergy": "your allergies",
    "Administration": "your treatment doses",
    "DoseModification": "your treatment doses",
    "EmergencyAccess": "emergency access to your record",
    "PatientInvitation": "your portal invitation",
}

# What each common test is, for a patient: a plain name (with the abbreviation printed on lab
# reports and letters, so the two can be matched) and one line on what it measures, keyed by
# LOINC (DOMAIN.md, section 4). A test not listed here shows the lab catalogue's name.
PATIENT_TEST_WORDS: dict[str, tuple[str, str]] = {
    "6690-2": (
        "White blood cells (WBC)",
        "All the white cells that fight infection; chemotherapy often lowers them for a while.",
    ),
    "751-8": (
        "Neutrophils (ANC)",
        "White cells that fight infection; low during chemotherapy, when an infection can "
        "become serious quickly.",
    ),
    "718-7": (
        "Haemoglobin (Hb)",
        "Carries oxygen in your red blood cells; when it is low you may feel tired or breathless.",
    ),
    "777-3": (
        "Platelets (PLT)",
        "Cells that help your blood clot; when they are low you may bruise or bleed more easily.",
    ),
    "2160-0": (
        "Creatinine (kidneys)",
        "A waste product your kidneys clear from the blood; a higher value can mean they are "
        "working less well.",
    ),
    "98979-8": (
        "Kidney function (eGFR)",
        "An estimate of how well your kidneys filter your blood; higher is better.",
    ),
    "1742-6": (
        "Liver test (ALT)",
        "An enzyme from the liver; a higher value can mean the liver is under strain.",
    ),
    "1920-8": (
        "Liver test (AST)",
        "An enzyme mostly from the liver; a higher value can mean the liver is under strain.",
    ),
    "1975-2": (
        "Bilirubin (liver)",
        "A yellow substance the liver clears; a high value can make the skin or eyes look yellow.",
    ),
    "2039-6": (
        "CEA (tumour marker)",
        "A protein some cancers, such as bowel cancer, release into the blood; your team "
        "looks at how it changes over time more than at any one result.",
    ),
    "10334-1": (
        "CA-125 (tumour marker)",
        "A protein some cancers, such as ovarian cancer, release into the blood; your team "
        "looks at how it changes over time more than at any one result.",
    ),
    "24108-3": (
        "CA 19-9 (tumour marker)",
        "A protein some cancers, such as pancreatic cancer, release into the blood; your team "
        "looks at how it changes over time more than at any one result.",
    ),
    "2857-1": (
        "PSA (prostate)",
        "A protein made by the prostate gland; your team looks at how it changes over time.",
    ),
}
# The units of those tests, in words (UCUM code -> what a patient reads beside the symbol).
PATIENT_UNIT_WORDS = {
    "10*3/uL": "thousand cells in each microlitre of blood",
    "g/dL": "grams in each decilitre of blood",
    "mg/dL": "milligrams in each decilitre of blood",
    "U/L": "units in each litre of blood",
    "mL/min/{1.73_m2}": "millilitres of blood filtered each minute",
    "ng/mL": "nanograms in each millilitre of blood",
    "U/mL": "units in each millilitre of blood",
}


def _test_words(test: Any) -> tuple[str, str]:
    """(name, explanation) of a lab test for a patient; the catalogue's name if not listed."""
    if test.loinc in PATIENT_TEST_WORDS:
        return PATIENT_TEST_WORDS[test.loinc]
    name = test.name or test.short_name
    if test.short_name and test.short_name not in name:
        name = f"{name} ({test.short_name})"
    return name, ""


def _render(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """Every portal page tells the patient whom to call (the banner, the urgent-symptom alert):
    their care team's numbers go into every page's context. Called after the page's own
    selector, which has already answered 404 to anyone but the patient."""
    context["clinic"] = portal_clinic_phones_for(user=request.user)  # type: ignore[arg-type]
    return render(request, template, context, status=status)


def _cycle_rows(cycles: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(upcoming, past) cycles as plain dicts holding only what the patient may see."""
    today = timezone.localdate()
    cycles = cycles.annotate(course_total=Count("course__cycles")).order_by(
        "course__start_date", "course_id", "number"
    )
    upcoming: list[dict[str, Any]] = []
    past: list[dict[str, Any]] = []
    for cycle in cycles:
        row = {
            "date": cycle.actual_start or cycle.planned_start,
            "regimen": cycle.course.regimen.name,
            "number": cycle.number,
            "total": cycle.course_total,
            "status": cycle.status,
            "status_words": CYCLE_STATUS_WORDS.get(cycle.status, cycle.get_status_display()),
        }
        if cycle.status == "given":
            past.append(row)
        elif cycle.status in {"planned", "ready", "delayed"} and row["date"] >= today:
            # Treatment on Christmas Day reads like a mistake: say the team will confirm it.
            # On a day the unit recorded as closed, say only that it is closed: its reason is
            # the staff's (and the closure is the surer news, so it replaces a holiday's).
            row["unit_closed"] = bool(unit_closure(row["date"]))
            row["holiday"] = "" if row["unit_closed"] else public_holiday(row["date"])
            upcoming.append(row)
        elif cycle.status in {"planned", "ready", "delayed"}:
            # Planned but the date has passed without it being recorded as given yet.
            row["status_words"] = "Waiting to be confirmed"
            upcoming.append(row)
    past.reverse()  # most recent first
    return upcoming, past


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    patient, cycles = portal_cycles_for(user=request.user)  # type: ignore[arg-type]
    upcoming, past = _cycle_rows(cycles)
    context = {
        "patient_name": patient.given_name,
        "next_cycle": upcoming[0] if upcoming else None,
        "upcoming": upcoming,
        "past": past,
        "section": "home",
    }
    return _render(request, "portal/home.html", context)


def _range_words(value: Decimal, low: Decimal | None, high: Decimal | None) -> tuple[str, str]:
    """Plain words and a badge class for a value against its usual (reference) range."""
    if low is not None and value < low:
        return "Below the usual range", "warn"
    if high is not None and value > high:
        return "Above the usual range", "warn"
    if low is None and high is None:
        return "No usual range given", ""
    return "Within the usual range", "ok"


@login_required
@require_GET
def lab_results(request: HttpRequest) -> HttpResponse:
    # Only released results of the user's own record; the selector logs the read.
    results = portal_lab_results_for(user=request.user).order_by(  # type: ignore[arg-type]
        "test__short_name", "test_id", "-collected_at"
    )
    analytes: dict[int, dict[str, Any]] = {}
    for result in results:
        test = result.test
        places = test.decimal_places
        name, explanation = _test_words(test)
        group = analytes.setdefault(
            test.pk,
            {
                "id": f"analyte-{len(analytes) + 1}",
                "loinc": test.loinc,
                "name": name,
                "explanation": explanation,
                "unit": result.unit,
                "unit_words": unit_display(result.unit),
                "unit_explained": PATIENT_UNIT_WORDS.get(result.unit, ""),
                "rows": [],
                "chart": {
                    "name": name,
                    "unit": unit_display(result.unit),
                    "points": [],
                },
            },
        )
        words, badge = _range_words(result.value, result.ref_low, result.ref_high)
        group["rows"].append(
            {
                "collected": timezone.localtime(result.collected_at),
                "value": lab_value(result.value, places),
                "unit": unit_display(result.unit),
                "low": lab_value(result.ref_low, places),
                "high": lab_value(result.ref_high, places),
                "words": words,
                "badge": badge,
            }
        )
        # Only results in the group's unit go on one chart.
        if result.unit == group["unit"]:
            group["chart"]["points"].append(
                {
                    "x": timezone.localtime(result.collected_at).date().isoformat(),
                    "y": float(result.value),
                    "low": float(result.ref_low) if result.ref_low is not None else None,
                    "high": float(result.ref_high) if result.ref_high is not None else None,
                }
            )
    for group in analytes.values():
        group["latest"] = group["rows"][0]
        group["chart"]["points"].reverse()  # oldest first for the line
    # Blood counts first, then kidneys, liver and tumour markers (PATIENT_TEST_WORDS' order),
    # then any other test by name: an order that makes sense to the patient.
    order = {loinc: n for n, loinc in enumerate(PATIENT_TEST_WORDS)}
    shown = sorted(
        analytes.values(), key=lambda g: (order.get(g["loinc"], len(order)), g["name"].lower())
    )
    context = {"analytes": shown, "section": "labs"}
    return _render(request, "portal/lab_results.html", context)


def _symptoms_context(request: HttpRequest, form: SymptomReportForm) -> dict[str, Any]:
    _, reports = portal_symptom_reports_for(user=request.user)  # type: ignore[arg-type]
    reports = list(reports[:50])
    sent_id = request.session.pop(SENT_KEY, None) if request.method == "GET" else None
    sent = next((r for r in reports if r.pk == sent_id), None)
    return {"form": form, "reports": reports, "sent": sent, "section": "symptoms"}


@login_required
@require_http_methods(["GET", "POST"])
def symptoms(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _render(
            request, "portal/symptoms.html", _symptoms_context(request, SymptomReportForm())
        )
    patient = portal_patient_for(user=request.user)  # type: ignore[arg-type]
    form = SymptomReportForm(request.POST)
    if form.is_valid():
        try:
            report = symptom_report_create(
                patient=patient,
                reported_by=request.user,  # type: ignore[arg-type]
                symptom=form.cleaned_data["symptom_text"],
                severity=form.cleaned_data["severity"],
                description=form.cleaned_data["description"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            request.session[SENT_KEY] = report.pk
            return redirect("portal:symptoms")
    context = _symptoms_context(request, form)
    return _render(request, "portal/symptoms.html", context, status=400)


@login_required
@require_GET
def care_team(request: HttpRequest) -> HttpResponse:
    patient = portal_patient_for(user=request.user)  # type: ignore[arg-type]
    members = []
    if patient.care_team is not None:
        members = [
            {
                "name": member.get_full_name() or member.username,
                "discipline": member.get_discipline_display() if member.discipline else "",
            }
            for member in care_team_members(team=patient.care_team).filter(is_active=True)
        ]
    team_name = patient.care_team.name if patient.care_team else ""
    # Read-only: the care team records allergies; a patient who sees one missing tells them.
    _, allergies = portal_allergies_for(user=request.user)  # type: ignore[arg-type]
    context = {
        "team_name": team_name,
        "members": members,
        "section": "team",
        "allergies": allergies,
        "no_known_allergies": patient.no_known_allergies_at is not None and not allergies,
    }
    return _render(request, "portal/care_team.html", context)


@login_required
@require_GET
def access_history(request: HttpRequest) -> HttpResponse:
    patient = portal_patient_for(user=request.user)  # type: ignore[arg-type]
    visits = access_visits_for_patient(patient=patient, limit=ACCESS_LOG_LIMIT)
    user_ids = {visit.row.user_id for visit in visits if visit.row.user_id is not None}
    users = {u.pk: u for u in get_user_model().objects.filter(pk__in=user_ids)}  # one query
    rows = []
    for visit in visits:
        row = visit.row
        person = users.get(row.user_id)
        if row.user_id == request.user.pk:
            name, role = "You", ""
        elif person is not None:
            name = person.get_full_name() or person.username
            role = person.get_discipline_display() if person.discipline else ""
            role = role or person.get_role_display()
        else:
            name, role = (row.username or "The system"), (row.user_role or "").capitalize()
        rows.append(
            {
                "at": timezone.localtime(row.at),
                "count": visit.count,
                "since": timezone.localtime(visit.since),
                "name": name,
                "role": role,
                "what": ACTION_WORDS.get(row.action, row.get_action_display()),
                "object": OBJECT_WORDS.get(row.object_type.rsplit(".", 1)[-1], "your record"),
                "emergency": row.break_glass,
                "denied": row.outcome == "denied",
            }
        )
    context = {"rows": rows, "limit": ACCESS_LOG_LIMIT, "section": "access"}
    return _render(request, "portal/access_history.html", context)
