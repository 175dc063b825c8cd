"""The administrators' access-log report (/audit/) and its CSV export.

Only role administrator; anyone else gets 404, like a chart they may not see. Every view and
every export writes its own log row (SECURITY.md figure 14: viewing the report is logged).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from audit.forms import AccessLogFilterForm
from audit.models import AccessLog
from audit.selectors import SORTS, access_log_search
from audit.services import access_log_record

PAGE_SIZE = 50
FILTER_KEYS = frozenset(AccessLogFilterForm.base_fields)
REPORT_KEYS = FILTER_KEYS | {"page"}
EXPORT_KEYS = FILTER_KEYS
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = (
    ("at", "time"),
    ("username", "username"),
    ("user_role", "role"),
    ("action", "action"),
    ("object_type", "object type"),
    ("object_id", "object id"),
    ("patient_ids", "patient ids"),
    ("surface", "surface"),
    ("outcome", "outcome"),
    ("break_glass", "break glass"),
    ("source_address", "source address"),
    ("request_id", "request id"),
    ("seq", "seq"),
)


def _administrator_or_404(request: HttpRequest) -> None:
    if not getattr(request.user, "is_administrator", False):
        raise Http404


def _bad_request(message: str) -> HttpResponse:
    # text/plain (with nosniff): the message echoes a parameter name, never as HTML.
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


def _filter_form(
    request: HttpRequest, allowed: frozenset[str]
) -> AccessLogFilterForm | HttpResponse:
    unknown = sorted(set(request.GET) - allowed)
    if unknown:
        return _bad_request(
            f"Unknown filter: {unknown[0][:60]!r}. Allowed: {', '.join(sorted(allowed))}."
        )
    sort = request.GET.get("sort", "")
    if sort and sort not in SORTS:
        return _bad_request(f"Unknown sort key: {sort[:60]!r}. Allowed: {', '.join(SORTS)}.")
    form = AccessLogFilterForm(request.GET)
    if not form.is_valid():
        problems = "; ".join(
            f"{field}: {' '.join(str(m) for m in messages)}"
            for field, messages in form.errors.items()
        )
        return _bad_request(f"Invalid filter: {problems}")
    return form


@require_GET
@login_required
@never_cache
def report(request: HttpRequest) -> HttpResponse:
    _administrator_or_404(request)
    form = _filter_form(request, REPORT_KEYS)
    if isinstance(form, HttpResponse):
        return form
    rows = access_log_search(**form.search_kwargs())
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    access_log_record(
        action=AccessLog.Action.LIST,
        object_type="AccessLog",
        detail={"filters": form.applied(), "page": page.number},
    )
    return render(request, "audit/report.html", {"form": form, "page": page})


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def _csv_lines(rows: Any) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow([label for _, label in CSV_COLUMNS])
    for row in rows.values_list(*(name for name, _ in CSV_COLUMNS)).iterator(chunk_size=2000):
        yield writer.writerow([_cell(value) for value in row])


@require_GET
@login_required
@never_cache
def export(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    _administrator_or_404(request)
    form = _filter_form(request, EXPORT_KEYS)
    if isinstance(form, HttpResponse):
        return form
    rows = access_log_search(**form.search_kwargs())
    # Logged before the first byte leaves: an export that fails half-way is still on record.
    access_log_record(
        action=AccessLog.Action.EXPORT,
        object_type="AccessLog",
        surface=AccessLog.Surface.EXPORT,
        detail={"filters": form.applied(), "format": "csv"},
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return StreamingHttpResponse(
        _csv_lines(rows),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="access-log-{stamp}.csv"'},
    )
