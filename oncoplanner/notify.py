"""E-mail a patient's care team about something that needs them, without PHI.

E-mail is not a safe channel: messages name no patient, MRN, value, term or grade, only what
kind of finding waits and a reference to open in OncoPlanner. Used by the notification tasks
(critical lab, grade >= 3 side effect, severe patient report), which run after commit.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail

from patients.models import Patient


def email_care_team(*, patient: Patient | None, subject: str, message: str) -> int:
    """Send `message` to every active member of `patient`'s care team with an e-mail address.

    Returns the number of recipients (0 when the patient is gone or has no team).
    """
    if patient is None or patient.care_team is None:
        return 0
    members = patient.care_team.group.user_set.filter(is_active=True).exclude(email="")
    recipients = sorted(set(members.values_list("email", flat=True)))
    if not recipients:
        return 0
    send_mail(
        subject=subject,
        message=message,
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )
    return len(recipients)
