"""Writes to the access log: one row per access, and the hash chain that seals them.

`access_log_record` is called by the receivers (audit.receivers) and by the audit views; it
runs in the caller's transaction, so the row commits or rolls back with the change or read it
records, and an error writing it fails the request (fail closed, SECURITY.md figure 12).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit.models import AccessLog, AccessLogPatient, AccessLogSeal
from oncoplanner import access_context

GENESIS_HASH = "0" * 64
SEAL_BATCH_SIZE = 1000

# The columns covered by each row's hash. Adding a column to AccessLog means adding it here
# (and re-sealing is impossible by design), so keep this list in step with the model.
HASHED_FIELDS = (
    "id",
    "seq",
    "at",
    "user_id",
    "username",
    "user_role",
    "patient_id",
    "patient_ids",
    "action",
    "object_type",
    "object_id",
    "surface",
    "outcome",
    "source_address",
    "request_id",
    "break_glass",
    "detail",
)

_UNSET: Any = object()


def access_log_record(
    *,
    action: str,
    patient_ids: Iterable[int] = (),
    object_type: str = "",
    object_id: object = "",
    outcome: str = AccessLog.Outcome.SUCCESS,
    detail: dict[str, Any] | None = None,
    user: Any = _UNSET,
    username: str | None = None,
    surface: str | None = None,
) -> AccessLog:
    """Write one access-log row, in the caller's transaction.

    Who, through which door, from where and under emergency access come from the access
    context; `user` overrides the context's user (the login signals know the user before the
    context does), and `username` records an attempted name when there is no user.
    """
    context = access_context.current()
    if user is _UNSET:
        user = context.user
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    ids = sorted({int(pk) for pk in patient_ids if pk is not None})
    row = AccessLog(
        user_id=user.pk if user is not None else None,
        username=(user.get_username() if user is not None else (username or ""))[:150],
        user_role=(getattr(user, "role", "") or "") if user is not None else "",
        patient_id=ids[0] if len(ids) == 1 else None,
        patient_ids=ids,
        action=action,
        object_type=object_type[:60],
        object_id=str(object_id if object_id is not None else "")[:64],
        surface=surface or context.surface,
        outcome=outcome,
        source_address=context.source_address or None,
        request_id=context.request_id[:64],
        break_glass=context.break_glass,
        detail=detail or {},
    )
    if row.patient_id is None and ids:
        # A list view: each patient it showed gets an index row ("who accessed" reads them).
        # One transaction even in autocommit (reads are logged outside any): the verifier
        # holds every list row to its index rows, so neither may commit without the other.
        with transaction.atomic(savepoint=False):
            _insert(row)
            AccessLogPatient.objects.bulk_create(
                AccessLogPatient(log_id=row.pk, at=row.at, patient_id=pk) for pk in ids
            )
    else:
        _insert(row)
    return row


# The columns a new row is written with: all but the key and the seal's, which the sealer fills.
_SEALED = frozenset({"seq", "prev_hash", "row_hash"})


def _insert(row: AccessLog) -> None:
    """INSERT one new log row, its statement built once per process.

    Model.save() compiled the same INSERT afresh for every row: about 0.2 ms of the 0.5 ms a
    log write costs, paid on every read of every page (the dashboard's whole request is about
    12 ms). The values still go through each field's own get_db_prep_save, as save() does.
    """
    fields, sql = _insert_statement(connection.vendor)
    row.at = timezone.now()  # auto_now_add: what save() would have set
    params = [field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if connection.features.can_return_columns_from_insert:
            (row.pk,) = cursor.fetchone()
        else:
            row.pk = connection.ops.last_insert_id(cursor, AccessLog._meta.db_table, "id")
    row._state.adding = False
    row._state.db = connection.alias


@functools.cache
def _insert_statement(vendor: str) -> tuple[tuple[Any, ...], str]:
    fields = tuple(
        field
        for field in AccessLog._meta.concrete_fields
        if not field.primary_key and field.name not in _SEALED
    )
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(AccessLog._meta.db_table)}"  # noqa: S608 - fixed identifiers
        f" ({', '.join(quote(field.column) for field in fields)})"
        f" VALUES ({', '.join(['%s'] * len(fields))})"
    )
    if connection.features.can_return_columns_from_insert:
        sql += f" RETURNING {quote(AccessLog._meta.pk.column)}"
    return fields, sql


# --- the hash chain -------------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def access_log_row_hash(row: dict[str, Any], prev_hash: str) -> str:
    """sha256 over canonical JSON of the row's hashed fields and the previous row's hash."""
    payload = {name: _canonical(row[name]) for name in HASHED_FIELDS}
    payload["prev_hash"] = prev_hash
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _seal_head_locked() -> AccessLogSeal:
    head = AccessLogSeal.objects.select_for_update().filter(pk=1).first()
    if head is None:  # migration 0004 creates it; this covers a database built without it
        head = AccessLogSeal.objects.create(pk=1)
    return head


def access_log_seal(*, batch_size: int = SEAL_BATCH_SIZE) -> int:
    """Chain every unsealed row onto the log; returns how many rows were sealed.

    Each batch is one transaction holding the row lock on the seal head, so two sealers never
    interleave, while requests, which only INSERT, never wait for it. Rows are taken in id
    order; the chain order is `seq` (ids may commit out of order, which is harmless: a row
    committed late simply gets a later seq).
    """
    total = 0
    while True:
        with transaction.atomic():
            head = _seal_head_locked()
            fields = [name for name in HASHED_FIELDS if name != "seq"]
            batch = list(
                AccessLog.objects.filter(row_hash__isnull=True)
                .order_by("pk")
                .values(*fields)[:batch_size]
            )
            if not batch:
                return total
            seq, prev_hash = head.last_seq, head.last_hash
            for row in batch:
                seq += 1
                row["seq"] = seq
                row_hash = access_log_row_hash(row, prev_hash)
                AccessLog.objects.seal_row(
                    row["id"], seq=seq, prev_hash=prev_hash, row_hash=row_hash
                )
                prev_hash = row_hash
            head.last_seq, head.last_hash, head.sealed_at = seq, prev_hash, timezone.now()
            head.save(update_fields=["last_seq", "last_hash", "sealed_at"])
            total += len(batch)


@dataclass(frozen=True)
class VerifyResult:
    rows_checked: int
    problem: str  # "" when the chain and the list-view index are intact
    head_seq: int
    head_hash: str
    index_rows_checked: int = 0  # AccessLogPatient rows (checked once the chain holds)

    @property
    def ok(self) -> bool:
        return not self.problem

    def summary(self) -> str:
        if self.ok:
            return (
                f"access log intact: {self.rows_checked} rows checked, "
                f"head seq {self.head_seq}, head hash {self.head_hash}; "
                f"list-view index: {self.index_rows_checked} rows match the log"
            )
        return (
            f"access log TAMPERED: {self.rows_checked} rows checked, first problem: {self.problem}"
        )


def _sealed_rows() -> Iterator[dict[str, Any]]:
    fields = (*HASHED_FIELDS, "prev_hash", "row_hash")
    return (
        AccessLog.objects.filter(seq__isnull=False)
        .order_by("seq")
        .values(*fields)
        .iterator(chunk_size=2000)
    )


def access_log_verify(*, seal: bool = True) -> VerifyResult:
    """Recompute the whole chain and report the first altered or missing row.

    Seals first (so every row written so far is covered), then walks the rows in seq order:
    a gap in seq is a removed row, a hash that does not match the row's fields is an edited
    row, a prev_hash that does not match the row before is a row replaced or re-chained, and
    a chain that ends before the seal head is rows cut off the end. When the chain holds, the
    list-view index (AccessLogPatient, outside the chain) is compared with the log's patient
    lists (_index_problem). Read-only apart from the sealing; run it on the primary or a
    replica that has caught up.
    """
    if seal:
        access_log_seal()
    head = AccessLogSeal.objects.filter(pk=1).first()
    head_seq, head_hash = (head.last_seq, head.last_hash) if head else (0, GENESIS_HASH)
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    for row in _sealed_rows():
        seq = row["seq"]
        if seq != expected_seq:
            missing = (
                f"seq {expected_seq}"
                if seq == expected_seq + 1
                else f"seq {expected_seq}-{seq - 1}"
            )
            return VerifyResult(
                checked,
                f"row(s) missing: {missing} (next row is seq {seq}, id {row['id']})",
                head_seq,
                head_hash,
            )
        if access_log_row_hash(row, row["prev_hash"]) != row["row_hash"]:
            return VerifyResult(
                checked,
                f"seq {seq} (id {row['id']}) altered: its hash does not match its fields",
                head_seq,
                head_hash,
            )
        if row["prev_hash"] != prev_hash:
            return VerifyResult(
                checked,
                f"seq {seq} (id {row['id']}) does not chain onto seq {seq - 1}",
                head_seq,
                head_hash,
            )
        prev_hash = row["row_hash"]
        expected_seq += 1
        checked += 1
    last_seq = expected_seq - 1
    if last_seq != head_seq or prev_hash != head_hash:
        if last_seq < head_seq:
            problem = f"row(s) missing at the end: seq {last_seq + 1}-{head_seq} (the seal head is at seq {head_seq})"
        else:
            problem = f"the chain ends at seq {last_seq} but the seal head says seq {head_seq}"
        return VerifyResult(checked, problem, head_seq, head_hash)
    index_rows, problem = _index_problem()
    return VerifyResult(checked, problem, head_seq, head_hash, index_rows)


# --- the list-view index against the log ------------------------------------------------------

# The ids of the log rows whose index rows differ from what their patient list calls for: a
# row about several patients (patient_id NULL) needs one AccessLogPatient row per patient in
# its list, at its own time; any other index row is stray. PostgreSQL compares each log row's
# sorted list with its index rows aggregated per log id (one group per log row, not per
# patient: a third of the time at 4 million index rows); SQLite, a development database,
# counts (log row, patient) pairs on both sides. Patient ids are compared as text, so a
# tampered, non-numeric list entry is reported rather than failing a cast.
_DIFFERING_SQL = {
    "postgresql": """
        indexed AS (
            SELECT log_id, min(at) AS first_at, max(at) AS last_at,
                   array_agg(CAST(patient_id AS TEXT) ORDER BY CAST(patient_id AS TEXT)) AS patients
            FROM audit_accesslogpatient
            GROUP BY log_id
        ), listed AS (
            SELECT log.id AS log_id, log.at, ARRAY(
                SELECT shown.value
                FROM jsonb_array_elements_text(
                    CASE jsonb_typeof(log.patient_ids) WHEN 'array' THEN log.patient_ids
                    ELSE '[]'::jsonb END
                ) AS shown(value)
                ORDER BY shown.value
            ) AS patients
            FROM audit_accesslog log
            WHERE log.patient_id IS NULL
        ), differing AS (
            SELECT coalesce(listed.log_id, indexed.log_id) AS log_id
            FROM listed FULL JOIN indexed ON indexed.log_id = listed.log_id
            WHERE coalesce(listed.patients, '{}') <> coalesce(indexed.patients, '{}')
                OR indexed.first_at <> listed.at OR indexed.last_at <> listed.at
        )
    """,
    "sqlite": """
        shown AS (
            SELECT log.id AS log_id, CAST(shown.value AS TEXT) AS patient, log.at AS log_at,
                   NULL AS index_at, 1 AS listed, 0 AS indexed
            FROM audit_accesslog log, json_each(
                CASE WHEN json_valid(log.patient_ids) THEN
                    CASE json_type(log.patient_ids) WHEN 'array' THEN log.patient_ids ELSE '[]' END
                ELSE '[]' END
            ) AS shown
            WHERE log.patient_id IS NULL
            UNION ALL
            SELECT log_id, CAST(patient_id AS TEXT), NULL, at, 0, 1 FROM audit_accesslogpatient
        ), differing AS (
            SELECT DISTINCT log_id FROM shown
            GROUP BY log_id, patient
            HAVING sum(listed) <> sum(indexed)
                OR min(index_at) <> max(log_at) OR max(index_at) <> max(log_at)
        )
    """,
}

# The first differing log row's own index rows, read only when a log row differs (PostgreSQL
# checks the one-time filter before scanning; the log_id column has no index of its own).
_FIRST_INDEX_ROWS_SQL = {
    "postgresql": """
        LEFT JOIN LATERAL (
            SELECT patient_id, at FROM audit_accesslogpatient
            WHERE first_log.logs > 0 AND log_id = first_log.log_id
        ) AS idx ON true
    """,
    "sqlite": "LEFT JOIN audit_accesslogpatient idx ON idx.log_id = first_log.log_id",
}

# One statement, so one snapshot: a list row and its index rows commit together (see
# access_log_record), so rows not sealed yet are compared too, and a write committing meanwhile
# is seen whole or not at all. Only the lowest differing log id comes back (its row and index
# rows, and how many log ids differ in all): the client's memory stays flat however large the
# log, while the server hashes or sorts on disk past work_mem.
_INDEX_CHECK_SQL = """
WITH {differing},
first_log AS (
    SELECT min(log_id) AS log_id, count(DISTINCT log_id) AS logs FROM differing
), index_rows AS (
    SELECT count(*) AS n FROM audit_accesslogpatient
)
SELECT index_rows.n, first_log.logs, first_log.log_id, log.id, log.seq, log.at, log.patient_id,
       log.patient_ids, idx.patient_id, idx.at, count(idx.patient_id) OVER ()
FROM index_rows
CROSS JOIN first_log
LEFT JOIN audit_accesslog log ON log.id = first_log.log_id
{first_index_rows}
ORDER BY idx.patient_id
LIMIT %s
"""
INDEX_ROWS_READ = 10_000  # of the first differing log row: more than any list shows
INDEX_DIFFERENCES_SHOWN = 20


def _index_check_rows() -> list[tuple[Any, ...]]:
    vendor = connection.vendor
    sql = _INDEX_CHECK_SQL.format(
        differing=_DIFFERING_SQL[vendor], first_index_rows=_FIRST_INDEX_ROWS_SQL[vendor]
    )
    if vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, [INDEX_ROWS_READ])
            return cursor.fetchall()
    with transaction.atomic(), connection.cursor() as cursor:
        # One pass over the whole log and index: longer than the statement timeout a request
        # gets (settings.py). Lifted for this statement only; a rollback would undo it too.
        cursor.execute("SELECT current_setting('statement_timeout')")
        (timeout,) = cursor.fetchone()
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute(sql, [INDEX_ROWS_READ])
        rows = cursor.fetchall()
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [timeout])
        return rows


def _index_problem() -> tuple[int, str]:
    """(AccessLogPatient rows checked, "" or the first log row whose index rows differ).

    Every log row about several patients (patient_id NULL), sealed or not, must have exactly
    one index row per patient in its patient list, at the row's own time; every index row must
    belong to such a row. The index is outside the hash chain, so this is what shows index
    rows removed (a list view hidden from a patient's "who accessed"), moved or forged.
    """
    rows = _index_check_rows()
    index_rows, logs, log_id, found_id, seq, at, single, patient_ids = rows[0][:8]
    if not logs:
        return int(index_rows), ""
    indexed = [(str(row[8]), row[9]) for row in rows if row[8] is not None]
    if found_id is None:
        patients = ", ".join(patient for patient, _ in indexed[:INDEX_DIFFERENCES_SHOWN])
        more = len(indexed) - INDEX_DIFFERENCES_SHOWN
        problem = f"list-view index rows for id {log_id}, which is not in the log (patient "
        problem += f"{patients} and {more} more)" if more > 0 else f"{patients})"
    else:
        where = f"seq {seq} (id {log_id})" if seq is not None else f"unsealed id {log_id}"
        if isinstance(patient_ids, str):
            patient_ids = json.loads(patient_ids)
        listed = patient_ids if single is None and isinstance(patient_ids, list) else []
        if rows[0][10] > len(indexed):
            differences = [f"{rows[0][10]} index rows for {len(listed)} listed patients"]
        else:
            differences = _index_differences(
                [str(patient) for patient in listed], indexed, at=at, single=single is not None
            )
        if len(differences) > INDEX_DIFFERENCES_SHOWN:
            more = len(differences) - INDEX_DIFFERENCES_SHOWN
            differences = [*differences[:INDEX_DIFFERENCES_SHOWN], f"{more} more differences"]
        problem = f"{where} list-view index does not match its patient list: " + "; ".join(
            differences
        )
    if logs > 1:
        problem += f" (and {logs - 1} more log ids whose index rows differ)"
    return int(index_rows), problem


def _index_differences(
    listed: list[str], indexed: list[tuple[str, Any]], *, at: Any, single: bool
) -> list[str]:
    """What differs, patient by patient, between a log row's list and its index rows."""
    listed_count = Counter(listed)
    indexed_count = Counter(patient for patient, _ in indexed)
    wrong_at = {patient: when for patient, when in indexed if when != at}
    differences = []
    for patient in sorted(listed_count | indexed_count, key=lambda p: (len(p), p)):
        if not indexed_count[patient]:
            differences.append(f"lacks patient {patient}")
        elif not listed_count[patient] and single:
            differences.append(
                f"has patient {patient}, but a row about one patient has no index rows"
            )
        elif not listed_count[patient]:
            differences.append(f"has patient {patient}, not in the list")
        elif indexed_count[patient] != listed_count[patient]:
            differences.append(f"has patient {patient} {indexed_count[patient]} times")
        elif patient in wrong_at:
            differences.append(
                f"has patient {patient} at {_canonical(wrong_at[patient])}, "
                f"not at the row's {_canonical(at)}"
            )
    # Nothing named: a list entry that the database's text differs from Python's (say 7.50).
    return differences or ["its index rows differ"]


PARTITION_MONTHS_AHEAD = 3


def access_log_ensure_partitions() -> int:
    """PostgreSQL: create the monthly partitions of the access log (migration audit/0005) and
    of its list-view index (audit/0007) for this month and the next three, so that a month's
    log and index rows can be archived together; the sealer runs this every minute. Returns
    how many were created. Nothing to do on SQLite, whose log and index are one table each."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT audit_accesslog_ensure_partitions(%s)"
            " + audit_accesslogpatient_ensure_partitions(%s)",
            [PARTITION_MONTHS_AHEAD, PARTITION_MONTHS_AHEAD],
        )
        (created,) = cursor.fetchone()
    return int(created)
