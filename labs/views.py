from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from labs import csv_import, selectors, services
from labs.forms import (
    AcknowledgeForm,
    CsvUploadForm,
    EnteredInErrorForm,
    LabResultForm,
    TrendFilterForm,
)
from labs.models import LabResult, LabTest
from oncoplanner.confirmation import ConfirmationRequired
from oncoplanner.forms import add_service_errors
from oncoplanner.http import AuthedHtmxRequest
from patients import selectors as gate
from patients import services as patient_services
from patients.models import Patient, SymptomReport
from treatments import services as treatment_services

TRENDS_TEMPLATE = "labs/lab_trends.html"
IMPORT_TEMPLATE = "labs/lab_import.html"
ENTERED_IN_ERROR_TEMPLATE = "labs/entered_in_error.html"
TREND_QUERY_KEYS = {"days", "analytes"}
# A service field shown under a differently named form field (date and time are two inputs).
FIELD_ALIASES = {"collected_at": "collected_on"}


def _trend_params(
    request: AuthedHtmxRequest, *, extra: frozenset[str] = frozenset()
) -> tuple[str, list[LabTest]] | HttpResponse:
    """The period and tests from the query string, or a 400 naming what is wrong."""
    unknown = set(request.GET) - TREND_QUERY_KEYS - extra
    if unknown:
        return HttpResponseBadRequest(f"Unknown parameter: {sorted(unknown)[0][:40]}")
    # Checkboxes send analytes=a&analytes=b; links send analytes=a,b. Both mean the same.
    query = {
        "days": request.GET.get("days", ""),
        "analytes": ",".join(request.GET.getlist("analytes")),
    }
    form = TrendFilterForm(query)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        return HttpResponseBadRequest(f"{field}: {errors[0]}")
    tests = selectors.lab_tests_for_trends(loincs=form.cleaned_data["analytes"])
    if tests is None:
        return HttpResponseBadRequest("analytes: unknown LOINC code.")
    return form.cleaned_data["days"] or selectors.DEFAULT_PERIOD, tests


def _trends_context(
    request: AuthedHtmxRequest,
    *,
    patient_id: int,
    period: str,
    tests: list[LabTest],
    entry_form: LabResultForm | None = None,
) -> dict[str, Any]:
    trends = selectors.lab_trends_for(
        user=request.user, patient_id=patient_id, tests=tests, period=period
    )
    chosen = {t.loinc for t in tests}
    query = _query(period, tests)
    return {
        "patient": trends.patient,
        "trends": trends,
        "chart_data": trends.as_json(),
        "period": period,
        "periods": [("30", "30 d"), ("90", "90 d"), ("180", "180 d"), ("365", "1 y")]
        + [("all", "All")],
        "all_tests": [(t, t.loinc in chosen) for t in LabTest.objects.order_by("name")],
        "query": query,
        "entry_form": entry_form or LabResultForm(),
        "correct_url": reverse(
            "labs:lab_result_entered_in_error", args=[trends.patient.pk, 0]
        ),  # the values table puts each row's id in place of the 0
    }


def _query(period: str, tests: list[LabTest]) -> str:
    return f"days={period}&analytes={','.join(t.loinc for t in tests)}"


@login_required
@require_GET
def lab_trends(request: AuthedHtmxRequest, patient_id: int) -> HttpResponse:
    params = _trend_params(request)
    if isinstance(params, HttpResponse):
        return params
    period, tests = params
    context = _trends_context(request, patient_id=patient_id, period=period, tests=tests)
    template = TRENDS_TEMPLATE + ("#lab-workspace" if request.htmx else "")
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
def lab_result_create(request: AuthedHtmxRequest, patient_id: int) -> HttpResponse:
    params = _trend_params(request, extra=frozenset({"test", "collected_on", "collected_time"}))
    if isinstance(params, HttpResponse):
        return params
    period, tests = params
    patient = gate.patient_get_for_user(user=request.user, patient_id=patient_id, perm=gate.CHANGE)
    if request.method == "GET" and not request.htmx:
        # Opened as a page (a bookmark, a shared link): the form lives on the patient's lab
        # page, under the patient's name, not as a bare fragment.
        return redirect(reverse("labs:lab_trends", args=[patient.pk]) + f"?days={period}#lab-entry")
    if request.method == "GET":
        # The test select asks for the form again so the unit follows the chosen test.
        test_id = request.GET.get("test", "")
        test = LabTest.objects.filter(pk=test_id).first() if test_id.isdigit() else None
        # The sample's collection date and time, typed before the test was chosen, stay.
        kept = {k: request.GET[k] for k in ("collected_on", "collected_time") if request.GET.get(k)}
        form = LabResultForm(initial={"test": test, "unit": test.unit if test else "", **kept})
        context = {
            "patient": patient,
            "entry_form": form,
            "query": _query(period, tests),
        }
        return render(request, TRENDS_TEMPLATE + "#lab-entry", context)
    form = LabResultForm(request.POST)
    status = 200
    recorded = ""
    recorded_critical = False
    ask_confirm = False
    if form.is_valid():
        data = form.cleaned_data
        try:
            result = services.lab_result_record(
                patient=patient,
                test=data["test"],
                value=data["value"],
                unit=data["unit"],
                collected_at=data["collected_at"],
                recorded_by=request.user,
                confirm_change=data["confirm_change"],
            )
        except ValidationError as error:
            # The checkbox is offered only once the service asked for it.
            ask_confirm = isinstance(error, ConfirmationRequired)
            add_service_errors(form, error, aliases=FIELD_ALIASES)
        else:
            text = f"Recorded {result.test.short_name} {result.value_text}."
            if result.is_critical:
                # A critical value must not read like a routine save: say who acts, and where.
                text = (
                    f"Critical result recorded: {result.test.short_name} {result.value_text} "
                    f"({result.get_flag_display().lower()}). Tell the treating oncologist now, "
                    "then acknowledge it in the inbox with what was done."
                )
            if not request.htmx:
                (messages.error if result.is_critical else messages.success)(request, text)
                return redirect(reverse("labs:lab_trends", args=[patient.pk]) + f"?days={period}")
            # The next result is most often from the same sample (a blood count is four):
            # keep its collection date and time, so they are not typed again.
            form = LabResultForm(initial={k: data[k] for k in ("collected_on", "collected_time")})
            recorded = text  # the swapped-in form says what it saved
            recorded_critical = result.is_critical
    if form.errors:
        status = 400
    context = _trends_context(
        request, patient_id=patient.pk, period=period, tests=tests, entry_form=form
    )
    context["recorded"] = recorded
    context["recorded_critical"] = recorded_critical
    context["ask_confirm"] = ask_confirm
    template = TRENDS_TEMPLATE + ("#lab-workspace" if request.htmx else "")
    return render(request, template, context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def lab_result_entered_in_error(
    request: AuthedHtmxRequest, patient_id: int, result_id: int
) -> HttpResponse:
    """Mark one result entered in error, with a reason. GET: the form (a row under the result
    in the values table with htmx, a page without). POST: the lab page again (the workspace
    with htmx), the result struck through under "Entered in error"."""
    result = gate.child_get_for_user(
        LabResult, user=request.user, patient_id=patient_id, pk=result_id, perm=gate.CHANGE
    )
    params = _trend_params(request)
    if isinstance(params, HttpResponse):
        return params
    period, tests = params
    query = _query(period, tests)
    form = EnteredInErrorForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.lab_result_mark_entered_in_error(
                result=result, by=request.user, reason=form.cleaned_data["reason"]
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            text = (
                f"Marked {result.test.short_name} {result.value_text} of "
                f"{timezone.localtime(result.collected_at):%-d %b %Y %H:%M} entered in error; "
                "it no longer counts."
            )
            if not request.htmx:
                messages.success(request, text)
                return redirect(reverse("labs:lab_trends", args=[result.patient_id]) + f"?{query}")
            context = _trends_context(
                request, patient_id=result.patient_id, period=period, tests=tests
            )
            context["corrected"] = text
            return render(request, TRENDS_TEMPLATE + "#lab-workspace", context)
    context = {
        "patient": result.patient,
        "result": result,
        "form": form,
        "query": query,
        "colspan": 8 if result.test.is_tumour_marker else 6,
        "in_row": bool(request.htmx),  # the page (no JavaScript) posts the plain form
    }
    status = 400 if form.errors else 200
    if not request.htmx:
        return render(request, ENTERED_IN_ERROR_TEMPLATE, context, status=status)
    response = render(request, ENTERED_IN_ERROR_TEMPLATE + "#correct-row", context, status=status)
    if request.method == "POST":
        # The form's target is the workspace (for the success); an error replaces the form row.
        response = reswap(retarget(response, f"#correct-row-{result.pk}"), "outerHTML")
    return response


@login_required
@require_POST
def lab_results_release(request: AuthedHtmxRequest, patient_id: int) -> HttpResponse:
    raw_ids = request.POST.getlist("result")
    try:
        ids = sorted({int(i) for i in raw_ids})
    except ValueError:
        return HttpResponseBadRequest("result: not a result id.")
    if not ids:
        return HttpResponseBadRequest("result: select at least one result to release.")
    results = selectors.lab_results_for_change(
        user=request.user, patient_id=patient_id, result_ids=ids
    )
    released = services.lab_results_release(results=results, by=request.user)
    messages.success(request, f"Released {released} result(s) to the patient portal.")
    return redirect("labs:lab_trends", patient_id=patient_id)


@login_required
@require_http_methods(["GET", "POST"])
def lab_import(request: AuthedHtmxRequest, patient_id: int) -> HttpResponse:
    patient = gate.patient_get_for_user(user=request.user, patient_id=patient_id, perm=gate.CHANGE)
    return _import_page(
        request,
        patient=patient,
        parse=lambda data: csv_import.parse(data=data, patient=patient),
        patients_now=lambda ids: {patient.pk: patient} if ids <= {patient.pk} else {},
        done=reverse("labs:lab_trends", args=[patient.pk]),
    )


@login_required
@require_http_methods(["GET", "POST"])
def clinic_lab_import(request: AuthedHtmxRequest) -> HttpResponse:
    """The lab's file for many patients (an mrn column): the clinicians' door, like the inbox."""
    if not request.user.is_clinician:
        raise Http404("No such page.")
    user = request.user
    return _import_page(
        request,
        patient=None,
        parse=lambda data: csv_import.parse_clinic(
            data=data,
            patients_by_mrn=lambda mrns: gate.patients_by_mrn_for_import(user=user, mrns=mrns),
        ),
        patients_now=lambda ids: gate.patients_by_id_for_import(user=user, patient_ids=ids),
        done=reverse("home"),
    )


def _import_page(
    request: AuthedHtmxRequest,
    *,
    patient: Patient | None,
    parse: Callable[[bytes], csv_import.CsvPreview],
    patients_now: Callable[[set[int]], Mapping[int, Patient]],
    done: str,
) -> HttpResponse:
    """Upload -> preview (nothing written) -> confirm (all rows or none), for either scope."""
    columns = csv_import.COLUMNS if patient else csv_import.CLINIC_COLUMNS
    context: dict[str, Any] = {
        "patient": patient,
        "form": CsvUploadForm(),
        "import_url": request.path,
        "columns": ",".join(columns),
    }
    if request.method == "GET":
        return render(request, IMPORT_TEMPLATE, context)

    if "confirm" in request.POST:
        rows = csv_import.unstash(
            session=request.session, patient=patient, token=request.POST.get("confirm", "")
        )
        if rows is None:
            context["confirm_error"] = (
                "This preview has expired or was already imported; upload the file again."
            )
            return render(request, IMPORT_TEMPLATE, context, status=400)
        patients = patients_now({int(r.get("patient_id") or 0) for r in rows})
        try:
            recorded = csv_import.commit(
                rows=rows,
                patients=patients,
                by=request.user,
                confirmed=request.POST.get("confirm_change") == "on",
            )
        except ValidationError as error:
            context["confirm_error"] = " ".join(error.messages) + " Nothing was imported."
            return render(request, IMPORT_TEMPLATE, context, status=400)
        count = len({r.patient_id for r in recorded})
        who = "" if patient else f" for {count} patient{'s' if count != 1 else ''}"
        messages.success(request, f"Imported {len(recorded)} lab result(s){who}.")
        return redirect(done)

    form = CsvUploadForm(request.POST, request.FILES)
    context["form"] = form
    if not form.is_valid():
        return render(request, IMPORT_TEMPLATE, context, status=400)
    try:
        preview = parse(form.cleaned_data["file"].read())
    except csv_import.CsvFileError as error:
        form.add_error("file", str(error))
        return render(request, IMPORT_TEMPLATE, context, status=400)
    context["preview"] = preview
    if not preview.ok:
        return render(request, IMPORT_TEMPLATE, context, status=400)
    context["token"] = csv_import.stash(session=request.session, patient=patient, preview=preview)
    return render(request, IMPORT_TEMPLATE, context)


# --- Critical-result inbox -------------------------------------------------------------------


@login_required
@require_GET
def inbox(request: AuthedHtmxRequest) -> HttpResponse:
    if not request.user.is_clinician:
        raise Http404("No such page.")  # the clinicians' inbox, like the patient list
    context = {"inbox": selectors.inbox_for(user=request.user)}
    template = "labs/inbox.html" + ("#inbox-list" if request.htmx else "")
    return render(request, template, context)


def _acknowledge(
    request: AuthedHtmxRequest, *, kind: str, model: type, patient_id: int, item_id: int
) -> HttpResponse:
    obj = gate.child_get_for_user(
        model, user=request.user, patient_id=patient_id, pk=item_id, perm=gate.CHANGE
    )
    form = AcknowledgeForm(request.POST)
    if form.is_valid():
        note = form.cleaned_data["note"]
        try:
            if kind == "lab":
                services.lab_result_acknowledge(result=obj, by=request.user, note=note)
            elif kind == "side_effect":
                treatment_services.side_effect_acknowledge(
                    side_effect=obj, by=request.user, note=note
                )
            else:
                patient_services.symptom_report_review(report=obj, by=request.user, note=note)
        except ValidationError as error:
            add_service_errors(form, error, aliases=FIELD_ALIASES)
        else:
            if not request.htmx:
                messages.success(request, "Acknowledged.")
                return redirect("labs:inbox")
            item = selectors.inbox_item_for(kind, obj)
            return render(request, "labs/inbox.html#inbox-done", {"item": item})
    item = selectors.inbox_item_for(kind, obj)
    context: dict[str, Any] = {"item": item, "form": form, "form_for": item.dom_id}
    if request.htmx:
        return render(request, "labs/inbox.html#inbox-item", context, status=400)
    # Without JavaScript: the whole inbox again, the error shown on this item.
    context["inbox"] = selectors.inbox_for(user=request.user)
    return render(request, "labs/inbox.html", context, status=400)


@login_required
@require_POST
def lab_result_acknowledge(
    request: AuthedHtmxRequest, patient_id: int, item_id: int
) -> HttpResponse:
    return _acknowledge(
        request, kind="lab", model=LabResult, patient_id=patient_id, item_id=item_id
    )


@login_required
@require_POST
def side_effect_acknowledge(
    request: AuthedHtmxRequest, patient_id: int, item_id: int
) -> HttpResponse:
    from treatments.models import SideEffect

    return _acknowledge(
        request, kind="side_effect", model=SideEffect, patient_id=patient_id, item_id=item_id
    )


@login_required
@require_POST
def symptom_report_review(
    request: AuthedHtmxRequest, patient_id: int, item_id: int
) -> HttpResponse:
    return _acknowledge(
        request, kind="symptom", model=SymptomReport, patient_id=patient_id, item_id=item_id
    )
