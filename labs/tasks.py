"""Background tasks for labs, queued after commit (DESIGN.md: a rolled-back write alerts nobody)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.tasks import task


@task
def notify_care_team_of_critical_result(*, lab_result_id: int) -> int:
    """E-mail the patient's care team that a critical result awaits acknowledgement.

    The message carries no PHI (no name, MRN or value): e-mail is not a safe channel, so it
    only tells the clinician to open OncoPlanner. Returns the number of recipients.
    """
    from labs.models import LabResult

    result = (
        LabResult.objects.select_related("patient__care_team__group", "test")
        .filter(pk=lab_result_id)
        .first()
    )
    if result is None or result.patient.care_team is None:
        return 0
    members = result.patient.care_team.group.user_set.filter(is_active=True).exclude(email="")
    recipients = sorted(set(members.values_list("email", flat=True)))
    if not recipients:
        return 0
    send_mail(
        subject="OncoPlanner: a critical lab result needs acknowledgement",
        message=(
            "A critical laboratory result was recorded for a patient of your care team.\n"
            f"Open OncoPlanner to review and acknowledge it (result reference {result.pk}).\n"
        ),
        from_email=getattr(settings, "DEFAULT_FROM_EMAIL", None),
        recipient_list=recipients,
    )
    return len(recipients)
