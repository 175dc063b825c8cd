"""Change events: what changed for which patient, persisted so a dropped stream can resume.

An event holds ids and a kind only, never clinical values: the stream tells an open page that
something changed, and the page fetches the new fragment through the access gate (which logs
the read). Events are written in the transaction of the change, so a rolled-back change never
announces itself, and a reconnecting client resumes from Last-Event-ID without a gap.
"""

from __future__ import annotations

from django.db import models


class ChangeEvent(models.Model):
    class Kind(models.TextChoices):
        COURSE = "course", "Course"
        CYCLE = "cycle", "Cycle"
        SIDE_EFFECT = "side_effect", "Side effect"
        LAB_RESULT = "lab_result", "Lab result"
        SYMPTOM_REPORT = "symptom_report", "Symptom report"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # A plain id, not a foreign key: events are short-lived and must never block deleting a
    # record; the stream re-checks access to this patient before delivering anything.
    patient_id = models.BigIntegerField(db_index=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    object_id = models.BigIntegerField()
    attention = models.BooleanField(
        default=False, help_text="Critical lab, grade >= 3 side effect or severe symptom report."
    )

    class Meta:
        ordering = ["pk"]

    def as_data(self) -> dict[str, object]:
        return {
            "patient": self.patient_id,
            "kind": self.kind,
            "object": self.object_id,
            "attention": self.attention,
        }

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id} for patient {self.patient_id}"
