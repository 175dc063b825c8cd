"""Background tasks for labs, queued after commit (DESIGN.md: a rolled-back write alerts nobody)."""

from __future__ import annotations

from datetime import timedelta

from django.core.cache import cache
from django.tasks import task
from django.utils import timezone

from oncoplanner.notify import email_care_team


@task
def notify_care_team_of_critical_result(*, lab_result_id: int) -> int:
    """E-mail the patient's care team that a critical result awaits acknowledgement.

    Returns the number of recipients; a result deleted before the worker ran tells nobody.
    """
    from labs.models import LabResult

    result = (
        LabResult.objects.select_related("patient__care_team__group")
        .filter(pk=lab_result_id)
        .first()
    )
    return email_care_team(
        patient=result.patient if result else None,
        subject="OncoPlanner: a critical lab result needs acknowledgement",
        message=(
            "A critical laboratory result was recorded for a patient of your care team.\n"
            f"Open OncoPlanner to review and acknowledge it (result reference {lab_result_id}).\n"
        ),
    )


@task
def notify_if_next_cycle_not_ready(*, patient_id: int) -> bool:
    """After a new result: if the patient's next cycle (within a week) is now not ready to give
    (delay, hold or contact physician by the regimen's pre-cycle rules), tell the care team once
    per cycle and outcome. 'Not evaluable' is not announced: results arrive one at a time."""
    from labs.rules import PreCycleOutcome
    from labs.services import precycle_evaluate
    from treatments.models import ChemoCycle, Course

    soon = timezone.localdate() + timedelta(days=7)
    cycle = (
        ChemoCycle.objects.select_related("course__regimen", "course__patient__care_team__group")
        .filter(
            course__patient_id=patient_id,
            course__status__in=[Course.Status.PLANNED, Course.Status.ACTIVE],
            status__in=[
                ChemoCycle.Status.PLANNED,
                ChemoCycle.Status.READY,
                ChemoCycle.Status.DELAYED,
            ],
            planned_start__lte=soon,
        )
        .order_by("planned_start", "number")
        .first()
    )
    if cycle is None:
        return False
    patient = cycle.course.patient
    assessment = precycle_evaluate(patient=patient, regimen=cycle.course.regimen, at=timezone.now())
    # Any analyte that already says delay, contact or hold makes the cycle not ready, even
    # while other results are still missing.
    blocking = sorted({a.outcome for a in assessment.analytes} & PreCycleOutcome.NOT_READY)
    if not blocking or not cache.add(f"not-ready:{cycle.pk}:{','.join(blocking)}", True, 8 * 86400):
        return False
    email_care_team(
        patient=patient,
        subject="OncoPlanner: a scheduled cycle is not ready to give",
        message=(
            "New results mean a patient of your care team is not ready for a cycle planned "
            f"within the week. Open OncoPlanner to review it (reference CY-{cycle.pk})."
        ),
    )
    return True
