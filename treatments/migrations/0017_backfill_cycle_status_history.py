"""Give every cycle that is not planned its latest change as its first history row.

Until 0016 a cycle kept only its latest status and reason: earlier delays, holds and who
decided them are gone, and this cannot bring them back. Each row written here says so
(from_before_history): it holds what the cycle's own fields hold (status, reason or override
reason, who and when it last changed, if recorded) and the planned start as it is now, with no
"before" (a delay's original date was not kept). Cycles still planned or ready had no decision
to record. Reverse: the backfilled rows are removed (new rows are left alone).

Written with bulk_create, as a migration writes with historical models: no access-log row is
sent for these rows, which copy what the cycle rows already hold.
"""

from django.db import migrations

HISTORY_STATUSES = ("given", "delayed", "held", "cancelled")
BATCH = 2000


def _row(CycleStatusChange, cycle):
    given = cycle.status == "given"
    return CycleStatusChange(
        cycle_id=cycle.pk,
        status=cycle.status,
        reason=(cycle.override_reason if given else cycle.reason),
        given_despite=(cycle.given_despite if given and cycle.override_reason else ""),
        planned_start_before=None,
        planned_start_after=cycle.planned_start,
        actual_start=cycle.actual_start if given else None,
        by_id=cycle.status_changed_by_id,
        at=cycle.status_changed_at,
        from_before_history=True,
    )


def backfill(apps, schema_editor):
    ChemoCycle = apps.get_model("treatments", "ChemoCycle")
    CycleStatusChange = apps.get_model("treatments", "CycleStatusChange")
    cycles = (
        ChemoCycle.objects.filter(status__in=HISTORY_STATUSES)
        .exclude(status_history__isnull=False)  # re-run safe: one backfilled row per cycle
        .order_by("pk")
    )
    rows = (_row(CycleStatusChange, cycle) for cycle in cycles.iterator(chunk_size=BATCH))
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            CycleStatusChange.objects.bulk_create(batch)
            batch = []
    if batch:
        CycleStatusChange.objects.bulk_create(batch)


def unbackfill(apps, schema_editor):
    CycleStatusChange = apps.get_model("treatments", "CycleStatusChange")
    # The historical manager is a plain one: the model's append-only refusal is not in it.
    CycleStatusChange.objects.filter(from_before_history=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("treatments", "0016_cycle_status_history"),
    ]

    operations = [
        migrations.RunPython(backfill, unbackfill),
    ]
