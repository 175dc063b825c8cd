"""Background notifications for patient-reported symptoms, enqueued only after a commit."""

from __future__ import annotations

from django.tasks import task

from oncoplanner.notify import email_care_team
from patients.models import SymptomReport


@task
def notify_care_team_of_severe_symptom_report(*, symptom_report_id: int) -> int:
    """Basch et al. 2017: nurse alerts on severe patient-reported symptoms save lives; a
    red-flag symptom (a fever on chemotherapy) is urgent at any severity."""
    report = (
        SymptomReport.objects.select_related("patient__care_team__group")
        .filter(pk=symptom_report_id)
        .first()
    )
    return email_care_team(
        patient=report.patient if report else None,
        subject="OncoPlanner: a patient reported an urgent symptom",
        message=(
            "A patient of your care team reported an urgent symptom in the portal (severe, or a "
            "red flag such as a fever). Sign in to "
            f"OncoPlanner to review it (reference SR-{symptom_report_id})."
        ),
    )
