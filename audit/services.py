"""Writes to the access log: one row per access, and the hash chain that seals them.

`access_log_record` is called by the receivers (audit.receivers) and by the audit views; it
runs in the caller's transaction, so the row commits or rolls back with the change or read it
records, and an error writing it fails the request (fail closed, SECURITY.md figure 12).
"""

from __future__ import annotations

import hashlib
import json
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
    row.save(force_insert=True)
    if row.patient_id is None and ids:
        # A list view: each patient it showed gets an index row ("who accessed" reads them).
        AccessLogPatient.objects.bulk_create(
            AccessLogPatient(log_id=row.pk, at=row.at, patient_id=pk) for pk in ids
        )
    return row


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
    problem: str  # "" when the chain is intact
    head_seq: int
    head_hash: str

    @property
    def ok(self) -> bool:
        return not self.problem

    def summary(self) -> str:
        if self.ok:
            return (
                f"access log intact: {self.rows_checked} rows checked, "
                f"head seq {self.head_seq}, head hash {self.head_hash}"
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
    a chain that ends before the seal head is rows cut off the end. Read-only apart from the
    sealing; run it on the primary or a replica that has caught up.
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
    return VerifyResult(checked, "", head_seq, head_hash)


PARTITION_MONTHS_AHEAD = 3


def access_log_ensure_partitions() -> int:
    """PostgreSQL: create the access log's monthly partitions for this month and the next
    three (migration audit/0005); the sealer runs this every minute. Returns how many were
    created. Nothing to do on SQLite, whose log is one table."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT audit_accesslog_ensure_partitions(%s)", [PARTITION_MONTHS_AHEAD])
        (created,) = cursor.fetchone()
    return int(created)
