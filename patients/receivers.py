"""Reactions of the patients app to changes elsewhere."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from oncoplanner import access_context
from oncoplanner.accounts.models import User
from patients.models import CareTeam
from patients.services import care_team_remove_member


@receiver(post_save, sender=User, dispatch_uid="patients_leave_care_teams_on_deactivate")
def _leave_care_teams_when_deactivated(sender: Any, instance: User, **kwargs: Any) -> None:
    # A leaver's care teams end with the account, each removal logged: re-activating the
    # account (a returning locum) then grants no chart until a team adds them again. The gate
    # already refuses inactive users; this keeps a later re-activation from reopening them.
    if instance.is_active:
        return
    actor = access_context.current().user
    for team in CareTeam.objects.filter(group__in=instance.groups.all()):
        care_team_remove_member(team=team, clinician=instance, revoked_by=actor)
