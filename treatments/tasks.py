"""Background notifications (Django's tasks framework), enqueued only after a commit."""

from __future__ import annotations

from django.tasks import task

from oncoplanner.notify import email_care_team
from treatments.models import SideEffect


@task
def notify_care_team_of_severe_side_effect(*, side_effect_id: int) -> int:
    """Tell the patient's care team that a grade >= 3 side effect was recorded.

    Returns the number of clinicians told; a side effect deleted before the worker ran tells
    nobody.
    """
    side_effect = (
        SideEffect.objects.select_related("patient__care_team__group")
        .filter(pk=side_effect_id)
        .first()
    )
    return email_care_team(
        patient=side_effect.patient if side_effect else None,
        subject="OncoPlanner: a severe side effect needs review",
        message=(
            "A severe (CTCAE grade 3 or higher) side effect was recorded for a patient of your "
            f"care team. Sign in to OncoPlanner to review it (reference SE-{side_effect_id})."
        ),
    )
