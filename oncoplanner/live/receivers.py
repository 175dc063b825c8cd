"""Write a ChangeEvent for every saved change a page shows live (same transaction)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save

from labs.models import LabResult
from oncoplanner.live.bus import announce
from oncoplanner.live.models import ChangeEvent
from patients.models import SymptomReport
from treatments.models import ChemoCycle, Course, SideEffect


def _record(*, patient_id: int | None, kind: str, object_id: int, attention: bool) -> None:
    if patient_id is None:
        return
    event = ChangeEvent.objects.create(
        patient_id=patient_id, kind=kind, object_id=object_id, attention=attention
    )
    announce(event.pk)


def _on_lab_result(sender: Any, instance: LabResult, **kwargs: Any) -> None:
    _record(
        patient_id=instance.patient_id,
        kind=ChangeEvent.Kind.LAB_RESULT,
        object_id=instance.pk,
        attention=instance.is_critical and instance.acknowledged_at is None,
    )


def _on_side_effect(sender: Any, instance: SideEffect, **kwargs: Any) -> None:
    _record(
        patient_id=instance.patient_id,
        kind=ChangeEvent.Kind.SIDE_EFFECT,
        object_id=instance.pk,
        attention=instance.grade >= 3 and instance.acknowledged_at is None,
    )


def _on_symptom_report(sender: Any, instance: SymptomReport, **kwargs: Any) -> None:
    _record(
        patient_id=instance.patient_id,
        kind=ChangeEvent.Kind.SYMPTOM_REPORT,
        object_id=instance.pk,
        attention=instance.urgent and instance.reviewed_at is None,
    )


def _on_cycle(sender: Any, instance: ChemoCycle, **kwargs: Any) -> None:
    if kwargs.get("created"):
        return  # scheduling a course creates every cycle at once: the course event covers it
    patient_id = (
        Course.objects.filter(pk=instance.course_id).values_list("patient_id", flat=True).first()
    )
    _record(
        patient_id=patient_id, kind=ChangeEvent.Kind.CYCLE, object_id=instance.pk, attention=False
    )


def _on_course(sender: Any, instance: Course, **kwargs: Any) -> None:
    _record(
        patient_id=instance.patient_id,
        kind=ChangeEvent.Kind.COURSE,
        object_id=instance.pk,
        attention=False,
    )


post_save.connect(_on_lab_result, sender=LabResult, dispatch_uid="live_lab_result")
post_save.connect(_on_side_effect, sender=SideEffect, dispatch_uid="live_side_effect")
post_save.connect(_on_symptom_report, sender=SymptomReport, dispatch_uid="live_symptom_report")
post_save.connect(_on_cycle, sender=ChemoCycle, dispatch_uid="live_cycle")
post_save.connect(_on_course, sender=Course, dispatch_uid="live_course")
