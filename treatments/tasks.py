"""Background notifications (Django's tasks framework), enqueued only after a commit."""

from __future__ import annotations

from django.core.mail import send_mail
from django.tasks import task

from treatments.models import SideEffect


@task
def notify_care_team_of_severe_side_effect(*, side_effect_id: int) -> int:
    """Tell the patient's care team that a grade >= 3 side effect was recorded.

    The e-mail carries no PHI (no name, MRN, term or grade): mail is not a secure channel, so
    it only says where to look. Returns the number of clinicians told. A side effect deleted
    before the worker ran tells nobody.
    """
    side_effect = (
        SideEffect.objects.select_related("patient__care_team__group")
        .filter(pk=side_effect_id)
        .first()
    )
    if side_effect is None or side_effect.patient.care_team is None:
        return 0
    team = side_effect.patient.care_team
    recipients = sorted(
        team.group.user_set.filter(is_active=True).exclude(email="").values_list("email", flat=True)
    )
    if not recipients:
        return 0
    send_mail(
        subject="OncoPlanner: a severe side effect needs review",
        message=(
            f"A severe (CTCAE grade 3 or higher) side effect was recorded for a patient of "
            f"the care team {team.name}. Sign in to OncoPlanner to review it "
            f"(reference SE-{side_effect.pk})."
        ),
        from_email=None,
        recipient_list=recipients,
    )
    return len(recipients)
