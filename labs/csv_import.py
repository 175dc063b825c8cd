"""CSV import of lab results: parse and validate every row (preview), then commit all or nothing.

Two scopes share every rule: one patient's file (columns loinc,value,unit,collected_at) and a
clinic file from the lab (an mrn column first), whose MRNs resolve only to patients on the
importer's care teams: any other MRN is "not on your care teams", whether it exists or not.

The delta check (labs.services: a value at least N-fold away from the patient's previous result
of the test within 7 days, most often a typo) runs in the preview against the results on record
and the file's earlier rows, as the commit will meet them. Such a row is not an error: the
preview flags it with the question, and the import needs an explicit "these values are right"
tick to record it; without the tick the commit refuses the row and so imports nothing.

The preview writes nothing. The commit records every row through labs.services.lab_result_record
in one transaction: if any row fails there (a rule the preview missed, a race), nothing is
written. Validated rows travel between preview and confirm in the server-side session, keyed by
a random token and bound to the scope (the patient, or the clinic) and the file's SHA-256, never
in a form field.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from labs.models import LabResult, LabTest
from labs.rules import fmt_decimal, implausible_value_message, to_decimal, value_text
from labs.services import DELTA_CHECK_WINDOW, delta_check_message, lab_result_record
from labs.units import decimal_places, in_test_unit, refused_unit_message, unit_display

if TYPE_CHECKING:
    from django.contrib.sessions.backends.base import SessionBase

    from oncoplanner.accounts.models import User
    from patients.models import Patient

COLUMNS = ["loinc", "value", "unit", "collected_at"]
CLINIC_COLUMNS = ["mrn", *COLUMNS]
MAX_ROWS = 2000
SESSION_KEY = "labs_csv_import"
# LabResult.value is max_digits=12, decimal_places=4.
MAX_DECIMALS = 4
MAX_INTEGER_DIGITS = 8
FUTURE_SKEW = dt.timedelta(minutes=5)


class CsvFileError(Exception):
    """The file as a whole cannot be read (encoding, columns, size): a 400 with this message."""


@dataclass
class CsvRow:
    line: int
    raw: dict[str, str]
    patient: Patient | None = None
    test: LabTest | None = None
    value: Decimal | None = None  # as reported, in raw["unit"]
    stored_value: Decimal | None = None  # in the test's unit: what will be recorded
    collected_at: dt.datetime | None = None
    errors: dict[str, str] = field(default_factory=dict)
    confirm: str = ""  # the delta check's question: recorded only if the importer confirms

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_session(self) -> dict[str, str]:
        if (
            self.patient is None
            or self.test is None
            or self.value is None
            or self.collected_at is None
        ):
            raise ValueError("Only a valid row is kept for the commit.")
        return {
            "patient_id": str(self.patient.pk),
            "loinc": self.test.loinc,
            "value": fmt_decimal(self.value),
            "unit": self.raw["unit"],
            "collected_at": self.collected_at.isoformat(),
            "line": str(self.line),
            "confirm": "1" if self.confirm else "",
        }


@dataclass
class CsvPreview:
    rows: list[CsvRow]
    sha256: str

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r.ok for r in self.rows)

    @property
    def error_count(self) -> int:
        return sum(1 for r in self.rows if not r.ok)

    @property
    def confirm_count(self) -> int:
        return sum(1 for r in self.rows if r.ok and r.confirm)


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")  # Excel writes a byte-order mark
    except UnicodeDecodeError:
        raise CsvFileError("The file is not UTF-8 text. Export it as CSV UTF-8.") from None
    if "\x00" in text:
        raise CsvFileError("The file contains NUL characters; it is not a CSV export.")
    return text


def _parse_time(raw: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    if timezone.is_naive(parsed):
        # No offset: local time in the clinic's time zone (settings.TIME_ZONE).
        parsed = timezone.make_aware(parsed)
    return parsed


def _check_value(
    raw: str, number: Decimal | None, stored: Decimal | None, test: LabTest | None, unit: str
) -> str | None:
    """The problem with a row's value, or None. `number` is `raw` read as a finite decimal
    (None if it is not one), `stored` the value in the test's unit, `unit` the row's unit."""
    if number is None:
        return f"“{raw[:20]}” is not a finite number."
    if number < 0:
        return "A lab value cannot be negative."
    if decimal_places(number) > MAX_DECIMALS:  # as the page and the API take it
        return f"At most {MAX_DECIMALS} decimal places."
    if stored is None or test is None:
        return None  # the unit is refused; its own message says why
    # The plausibility rule of lab_result_record (a unit slip, min/max_plausible), first: a
    # slip such as 0.05 /uL would also meet the decimal places of a figure nobody typed.
    converted = unit != test.unit
    implausible = implausible_value_message(
        test, stored, reported_value=number if converted else None, reported_unit=unit
    )
    if implausible:
        return implausible
    sign, digits, exponent = stored.as_tuple()
    if isinstance(exponent, int) and exponent < -MAX_DECIMALS:
        return f"At most {MAX_DECIMALS} decimal places in {unit_display(test.unit)}."
    if stored >= Decimal(10) ** MAX_INTEGER_DIGITS:
        return "The value is too large."
    return None


def parse(*, data: bytes, patient: Patient) -> CsvPreview:
    """Validate every row of one patient's file; raises CsvFileError when the file itself is
    unusable. No writes. Three queries whatever the number of rows: the lab catalogue, the
    patient's existing results at the same times (duplicates), and those of the week before
    each row (the delta check)."""
    rows = _read_rows(data, COLUMNS)
    for row in rows:
        row.patient = patient
    return _checked(rows, data)


def parse_clinic(
    *, data: bytes, patients_by_mrn: Callable[[set[str]], Mapping[str, Patient]]
) -> CsvPreview:
    """Validate every row of a clinic file (an mrn column first). `patients_by_mrn` is the
    caller's gate: it answers only the MRNs the importer may record results for; every other
    MRN is one error, whether the patient exists or not. No writes."""
    rows = _read_rows(data, CLINIC_COLUMNS)
    patients = patients_by_mrn({r.raw["mrn"] for r in rows if not r.errors})
    for row in rows:
        if row.errors:
            continue
        row.patient = patients.get(row.raw["mrn"])
        if row.patient is None:
            row.errors["mrn"] = f"No patient with MRN “{row.raw['mrn'][:20]}” on your care teams."
    return _checked(rows, data)


def _read_rows(data: bytes, columns: list[str]) -> list[CsvRow]:
    text = _decode(data)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
    except csv.Error as error:
        raise CsvFileError(f"The file is not valid CSV: {error}.") from None
    if header != columns:
        raise CsvFileError(
            f"Expected the columns {','.join(columns)}; found {','.join(header) or 'none'}."
        )
    reader.fieldnames = columns
    rows: list[CsvRow] = []
    try:
        for record in reader:
            if len(rows) >= MAX_ROWS:
                raise CsvFileError(f"At most {MAX_ROWS} rows per file.")
            extra = record.pop(None, None)  # type: ignore[call-overload]
            raw = {k: (v or "").strip() for k, v in record.items()}
            row = CsvRow(line=reader.line_num, raw=raw)
            if extra or any(v is None for v in record.values()):
                row.errors["row"] = f"Expected {len(columns)} columns."
            rows.append(row)
    except csv.Error as error:
        raise CsvFileError(f"The file is not valid CSV: {error}.") from None
    if not rows:
        raise CsvFileError("The file has a header but no rows.")
    return rows


def _checked(rows: list[CsvRow], data: bytes) -> CsvPreview:
    """The test, unit, value and time rules on every row, then duplicates."""
    tests = {t.loinc: t for t in LabTest.objects.filter(loinc__in={r.raw["loinc"] for r in rows})}
    now = timezone.now()
    for row in rows:
        if "row" in row.errors:
            continue
        row.test = tests.get(row.raw["loinc"])
        row.value = to_decimal(row.raw["value"])
        if row.test is None:
            row.errors["loinc"] = f"Unknown LOINC code “{row.raw['loinc'][:20]}”."
        elif row.value is not None:
            row.stored_value = in_test_unit(
                row.value, row.raw["unit"], row.test.unit, loinc=row.test.loinc
            )
            if row.stored_value is None:
                row.errors["unit"] = refused_unit_message(
                    row.test.name, row.test.unit, row.raw["unit"], loinc=row.test.loinc
                )
        message = _check_value(
            row.raw["value"], row.value, row.stored_value, row.test, row.raw["unit"]
        )
        if message:
            row.errors["value"] = message
        row.collected_at = _parse_time(row.raw["collected_at"])
        if row.collected_at is None:
            row.errors["collected_at"] = (
                f"“{row.raw['collected_at'][:30]}” is not a valid date and time "
                "(e.g. 2026-03-02T08:30+00:00)."
            )
        elif row.collected_at > now + FUTURE_SKEW:
            row.errors["collected_at"] = "Collection time cannot be in the future."
        elif row.patient is not None:
            try:
                row.patient.require_in_lifetime(
                    timezone.localdate(row.collected_at),
                    field="collected_at",
                    what="The collection date",
                )
            except ValidationError as error:
                row.errors["collected_at"] = " ".join(error.message_dict["collected_at"])

    _mark_duplicates(rows)
    _mark_changes_to_confirm(rows)
    return CsvPreview(rows=rows, sha256=hashlib.sha256(data).hexdigest())


def _mark_changes_to_confirm(rows: list[CsvRow]) -> None:
    """The delta check of lab_result_record, on each valid row as the commit will meet it: the
    latest result of the same patient and test collected in the week up to the row's time,
    among the results on record and the rows recorded before it (file order, as the commit
    goes). One query."""
    valid = [
        r
        for r in rows
        if r.ok and r.patient and r.test and r.collected_at and r.stored_value is not None
    ]
    if not valid:
        return
    times = [r.collected_at for r in valid if r.collected_at]
    history: dict[tuple[int, int], list[tuple[dt.datetime, Decimal]]] = {}
    on_record = LabResult.objects.filter(
        patient__in={r.patient for r in valid},
        test__in={r.test for r in valid},
        collected_at__gte=min(times) - DELTA_CHECK_WINDOW,
        collected_at__lte=max(times),
    ).order_by("pk")
    for patient_id, test_id, collected_at, value in on_record.values_list(
        "patient_id", "test_id", "collected_at", "value"
    ):
        history.setdefault((patient_id, test_id), []).append((collected_at, value))
    for row in valid:
        if (
            row.patient is None
            or row.test is None
            or row.collected_at is None
            or row.stored_value is None
        ):
            continue  # not a valid row (already left out above): narrows the types
        seen = history.setdefault((row.patient.pk, row.test.pk), [])
        start = row.collected_at - DELTA_CHECK_WINDOW
        # The latest in the window; among equal times the one recorded last (the service's
        # "-collected_at, -pk").
        previous = None
        for at, value in seen:
            if start <= at <= row.collected_at and (previous is None or at >= previous[0]):
                previous = (at, value)
        if previous is not None:
            # As the recorded result will read (LabResult.value_text): converted rows keep the
            # value as reported.
            converted = row.raw["unit"] != row.test.unit
            shown = value_text(
                row.stored_value,
                row.test.unit,
                reported_value=row.value if converted else None,
                reported_unit=row.raw["unit"] if converted else "",
            )
            row.confirm = (
                delta_check_message(
                    test=row.test,
                    value=row.stored_value,
                    shown=shown,
                    previous_value=previous[1],
                    previous_at=previous[0],
                )
                or ""
            )
        seen.append((row.collected_at, row.stored_value))


def _mark_duplicates(rows: list[CsvRow]) -> None:
    """The same test for the same patient at the same collection time twice (in the file or
    already recorded)."""
    valid = [r for r in rows if r.ok and r.patient and r.test and r.collected_at]
    if not valid:
        return
    existing = set(
        LabResult.objects.filter(
            patient__in={r.patient for r in valid},
            test__in={r.test for r in valid},
            collected_at__in={r.collected_at for r in valid},
        ).values_list("patient_id", "test_id", "collected_at")
    )
    seen: dict[tuple[int, int, dt.datetime], int] = {}
    for row in valid:
        key = (row.patient.pk, row.test.pk, row.collected_at)  # type: ignore[union-attr]
        if key in seen:
            row.errors["row"] = f"Duplicate of line {seen[key]}."
        elif key in existing:
            row.errors["row"] = f"{row.test.short_name} at this time is already recorded."  # type: ignore[union-attr]
        else:
            seen[key] = row.line


# --- Keeping the validated rows between preview and confirm ---------------------------------


def stash(*, session: SessionBase, patient: Patient | None, preview: CsvPreview) -> str:
    """Keep a valid preview's rows in the server-side session; returns the confirm token.
    `patient` is the scope: one patient's import, or None for a clinic file."""
    token = secrets.token_urlsafe(16)
    session[SESSION_KEY] = {
        "token": token,
        "patient_id": patient.pk if patient else None,
        "sha256": preview.sha256,
        "rows": [r.as_session() for r in preview.rows],
    }
    return token


def unstash(
    *, session: SessionBase, patient: Patient | None, token: str
) -> list[dict[str, str]] | None:
    """The stashed rows for this scope and token (then forgotten), or None."""
    stored: dict[str, Any] | None = session.get(SESSION_KEY)
    if (
        not stored
        or not token
        or not secrets.compare_digest(str(stored.get("token")), token)
        or stored.get("patient_id") != (patient.pk if patient else None)
    ):
        return None
    del session[SESSION_KEY]
    return list(stored["rows"])


@transaction.atomic
def commit(
    *,
    rows: list[dict[str, str]],
    patients: Mapping[int, Patient],
    by: User,
    confirmed: bool = False,
) -> list[LabResult]:
    """Record every row through lab_result_record in one transaction: all or nothing.

    `confirmed`: the importer ticked "the flagged values are right": the rows the preview
    flagged (delta check) are recorded with confirm_change. A row that trips the check and was
    not flagged (a result recorded since the preview) fails the commit like any other error.

    `patients` are the ones `by` may record results for now, read through the gate by the
    caller at confirm time (access may have changed since the preview): a row for any other
    patient fails the whole commit. A failing row raises ValidationError({"row": "Line N: ..."})
    and rolls everything back.
    """
    tests = {t.loinc: t for t in LabTest.objects.filter(loinc__in={r["loinc"] for r in rows})}
    recorded = []
    for row in rows:
        test = tests.get(row["loinc"])
        patient = patients.get(int(row.get("patient_id") or 0))
        if test is None:
            raise ValidationError({"row": f"Line {row['line']}: unknown LOINC {row['loinc']}."})
        if patient is None:
            raise ValidationError(
                {"row": f"Line {row['line']}: the patient is no longer on your care teams."}
            )
        try:
            recorded.append(
                lab_result_record(
                    patient=patient,
                    test=test,
                    value=row["value"],
                    unit=row["unit"],
                    collected_at=dt.datetime.fromisoformat(row["collected_at"]),
                    recorded_by=by,
                    source=LabResult.Source.IMPORT,
                    confirm_change=confirmed and row.get("confirm") == "1",
                )
            )
        except ValidationError as error:
            messages = "; ".join(
                f"{name}: {' '.join(msgs)}" for name, msgs in error.message_dict.items()
            )
            raise ValidationError({"row": f"Line {row['line']}: {messages}"}) from None
    return recorded
