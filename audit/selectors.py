"""Reads of the access log: the administrators' report, and one patient's access history.

These return log rows, which name people and patients: callers check who may see them (the
report: role administrator; a chart's history: the access gate on that patient; the portal:
the patient's own record). The report views log their own reads; so does the admin.
"""

from __future__ import annotations

import json
import operator
from collections import namedtuple
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, NotSupportedError
from django.db.models import BooleanField, Expression, F, QuerySet
from django.utils import timezone

from audit.models import AccessLog, AccessLogPatient

# Declared sort keys: the only ones the report accepts (anything else is a 400, never passed to
# order_by, which would otherwise let a caller sort by any column or relation).
SORTS: dict[str, tuple[str, ...]] = {
    "at": ("at", "pk"),
    "-at": ("-at", "-pk"),
    "user": ("username", "-at", "-pk"),
    "-user": ("-username", "-at", "-pk"),
    "patient": ("patient_id", "-at", "-pk"),
    "-patient": ("-patient_id", "-at", "-pk"),
    "action": ("action", "-at", "-pk"),
    "-action": ("-action", "-at", "-pk"),
    "surface": ("surface", "-at", "-pk"),
    "-surface": ("-surface", "-at", "-pk"),
    "outcome": ("outcome", "-at", "-pk"),
    "-outcome": ("-outcome", "-at", "-pk"),
}
DEFAULT_SORT = "-at"


class PatientIdsInclude(Expression):
    """True where the row's patient_ids JSON array holds `patient_id`.

    Django has no JSON `contains` lookup on SQLite; this compiles to jsonb @> on PostgreSQL
    (served by the GIN index of migration 0004) and to json_each on SQLite.
    """

    output_field = BooleanField()
    conditional = True

    def __init__(self, patient_id: int) -> None:
        super().__init__()
        self.patient_id = int(patient_id)
        self.column: Any = F("patient_ids")

    def get_source_expressions(self) -> list[Any]:
        return [self.column]

    def set_source_expressions(self, exprs: list[Any]) -> None:
        (self.column,) = exprs

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.column)
        if connection.vendor == "postgresql":
            return f"({column} @> %s::jsonb)", [*params, json.dumps([self.patient_id])]
        if connection.vendor == "sqlite":
            return (
                # `column` is the compiled column reference, never user input.
                f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = %s)",  # noqa: S608
                [*params, self.patient_id],
            )
        raise NotSupportedError(f"PatientIdsInclude is not implemented for {connection.vendor}")


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def access_log_search(
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    username: str = "",
    patient_id: int | None = None,
    action: str = "",
    surface: str = "",
    outcome: str = "",
    sort: str = DEFAULT_SORT,
) -> QuerySet[AccessLog]:
    """The report's rows. Precondition: the caller is an administrator (views.py checks).

    Dates are whole local days, both ends included. `sort` must be a key of SORTS (KeyError
    otherwise: the view has already answered 400 for anything undeclared).
    """
    rows = AccessLog.objects.all()
    if date_from is not None:
        rows = rows.filter(at__gte=_start_of(date_from))
    if date_to is not None:
        rows = rows.filter(at__lt=_start_of(date_to + timedelta(days=1)))
    if username:
        rows = rows.filter(username=username)
    if patient_id is not None:
        rows = rows.filter(PatientIdsInclude(patient_id))
    if action:
        rows = rows.filter(action=action)
    if surface:
        rows = rows.filter(surface=surface)
    if outcome:
        rows = rows.filter(outcome=outcome)
    return rows.order_by(*SORTS[sort])


@dataclass(frozen=True)
class AccessVisit:
    """Back-to-back log rows of one kind (the same person, action, record type, surface,
    outcome and break-glass state) shown as one line: ten clicks through a chart are a visit,
    and the line for someone else's single look is not pushed off the page by them."""

    row: AccessLog  # the newest of the run
    count: int
    since: datetime  # when the oldest of the run happened
    live: bool = False  # the page's live-update stream was opened with it (not counted)


# What makes two back-to-back rows one visit; the list also shows when and in which role.
VISIT_KEY = ("user_id", "username", "action", "object_type", "surface", "outcome", "break_glass")
VISIT_FIELDS = ("at", "user_role", *VISIT_KEY)
RUN_READ_FACTOR = 5
# The visit columns in the model's field order, as AccessLog.from_db takes them.
_VISIT_COLUMNS = tuple(
    f.attname for f in AccessLog._meta.concrete_fields if f.attname in {"id", *VISIT_FIELDS}
)
_VisitRow = namedtuple("_VisitRow", _VISIT_COLUMNS)  # type: ignore[misc]


# A chart's view compares a hundred rows' keys: one C-level getter, not a generator per row.
_visit_key = operator.attrgetter(*VISIT_KEY)


def _opens_live_stream_of(stream: Any, page: Any) -> bool:
    """A chart page opens its live-update stream as it loads: that read is logged on its own
    door ("stream"), a moment after the page's. Listed, each view showed twice."""
    same = _visit_key(stream)[:4] == _visit_key(page)[:4]  # who, action, record type
    return (
        stream.surface == AccessLog.Surface.STREAM
        and page.surface == AccessLog.Surface.PAGE
        and same
        and (stream.at - page.at).total_seconds() <= LIVE_STREAM_OPENS_WITHIN_SECONDS
    )


LIVE_STREAM_OPENS_WITHIN_SECONDS = 10


def access_visits_for_patient(*, patient: Any, limit: int = 20) -> list[AccessVisit]:
    """The newest `limit` visits to this patient's record (access_log_for_patient, runs of one
    kind collapsed). Reads at most RUN_READ_FACTOR times `limit` rows. Same precondition."""
    visits: list[AccessVisit] = []
    # Only the columns shown, not the patient-id lists, detail or hashes, as plain tuples: a
    # chart reads up to a hundred rows on every view, and only the visits shown become
    # model instances (for their display labels).
    rows = _newest(
        _VisitRow._make(values)
        for part in _rows_touching(patient, limit * RUN_READ_FACTOR)
        for values in part.values_list(*_VISIT_COLUMNS)
    )[: limit * RUN_READ_FACTOR]
    live_channel = False
    last_key = None
    for row, older in zip(rows, [*rows[1:], None], strict=True):
        if older is not None and _opens_live_stream_of(row, older):
            live_channel = True  # listed with its page view, next
            continue
        live, live_channel = live_channel, False
        key = _visit_key(row)
        if key == last_key:
            last = visits[-1]
            visits[-1] = AccessVisit(
                row=last.row, count=last.count + 1, since=row.at, live=last.live or live
            )
        elif len(visits) == limit:
            break
        else:
            shown = AccessLog.from_db(DEFAULT_DB_ALIAS, _VISIT_COLUMNS, row)
            visits.append(AccessVisit(row=shown, count=1, since=row.at, live=live))
            last_key = key
    return visits


def access_log_for_patient(*, patient: Any, limit: int = 100) -> list[AccessLog]:
    """Who accessed this patient's record, newest first: for the chart and the portal.

    Precondition: the caller has passed the access gate for `patient` (a clinician on the
    care team, an administrator, or the patient's own portal account), and logs that read as
    usual. Includes list views that showed the patient among others.
    """
    limit = max(int(limit), 0)
    return _newest(row for part in _rows_touching(patient, limit) for row in part)[:limit]


def _rows_touching(patient: Any, limit: int) -> tuple[QuerySet[AccessLog], QuerySet[AccessLog]]:
    """The newest `limit` log rows about this patient, in two parts to be merged (_newest),
    each an index range: the rows about this patient alone (patient_id, on the (patient_id, at)
    index), and the rows about several patients that showed it (list and search pages), found
    through AccessLogPatient's (patient, at) index. Neither grows with the log: a JSON
    containment test on the log's patient-id lists had walked it back to the hundredth list
    showing the patient."""
    newest_first = ("-at", "-pk")
    alone = AccessLog.objects.filter(patient_id=patient.pk)
    shown = AccessLogPatient.objects.filter(patient_id=patient.pk).order_by("-at", "-log_id")
    among = AccessLog.objects.filter(pk__in=shown.values("log_id")[:limit])
    return alone.order_by(*newest_first)[:limit], among.order_by(*newest_first)


def _newest[R](rows: Iterable[R]) -> list[R]:
    return sorted(rows, key=lambda row: (row.at, row.id), reverse=True)  # type: ignore[attr-defined]
