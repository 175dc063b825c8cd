"""Background tasks for labs, queued after commit (DESIGN.md: a rolled-back write alerts nobody)."""

from __future__ import annotations

from django.tasks import task

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
