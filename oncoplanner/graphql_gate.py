"""The access gate as GraphQL types see it: every PHI type's ``get_queryset`` goes through here.

Clinicians and administrators get ``patients.selectors.scope_queryset`` (care team or
break-glass). Portal users (role patient) get only their own active record and its released
lab results, the same rows the portal selectors give them; every other PHI type is empty for
them. Anonymous users get nothing (the view refuses them before any resolver runs anyway).

Reads are logged by the root resolvers (one record_read per root field), not here: a
``get_queryset`` runs once per prefetch and does not know which rows will be returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from graphql import GraphQLError
from strawberry.types import Info

from oncoplanner.confirmation import Confirmation
from patients.selectors import VIEW, patient_list_visible_to, patient_path

NOT_FOUND = "not found"


class NotFoundError(GraphQLError):
    """The gate's 404 in GraphQL: a missing and a forbidden record read the same."""

    def __init__(self) -> None:
        super().__init__(NOT_FOUND, extensions={"code": "NOT_FOUND"})


class ForbiddenError(GraphQLError):
    """A record the user may see, an act their discipline may not do (prescribing)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": "FORBIDDEN"})


class InputError(GraphQLError):
    """A service's ValidationError: the message names the field(s) in ``extensions.fields``."""

    def __init__(
        self,
        message_dict: dict[str, list[str]],
        *,
        confirm_with: str = "",
        confirmations: Sequence[Confirmation] = (),
    ) -> None:
        text = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in message_dict.items())
        extensions: dict[str, object] = {"code": "BAD_USER_INPUT", "fields": message_dict}
        if confirmations and not confirm_with:
            confirm_with = confirmations[0].confirm_with
        if confirm_with:
            # A value that looks like a typo (oncoplanner.confirmation): send it again with
            # this argument true to record it as it is. Several warnings found at once are
            # all listed (confirmWithAll; each with its field and words in confirmations), so
            # that one request can confirm them all; confirmWith stays the first.
            flags = list(dict.fromkeys(c.confirm_with for c in confirmations)) or [confirm_with]
            extensions.update(
                code="CONFIRMATION_REQUIRED",
                confirmWith=confirm_with,
                confirmWithAll=flags,
                confirmations=[
                    {"field": c.field, "message": c.message, "confirmWith": c.confirm_with}
                    for c in confirmations
                ],
            )
        super().__init__(text or "Invalid input.", extensions=extensions)


def user_of(info: Info) -> Any:
    return info.context.request.user


def is_portal_user(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_patient_user)


def gate_queryset[Q: QuerySet[Any]](queryset: Q, info: Info, *, perm: str = VIEW) -> Q:
    """`queryset` of a PHI model narrowed to what the requesting user may see."""
    user = user_of(info)
    if not (getattr(user, "is_authenticated", False) and user.is_active):
        return queryset.none()
    if user.is_patient_user:
        label = queryset.model._meta.label
        if label == "patients.Patient":
            return queryset.filter(portal_user=user, is_active=True)
        if label == "labs.LabResult":
            # Only released results reach the portal (labs release them after review).
            return queryset.filter(
                patient__portal_user=user, patient__is_active=True, is_released=True
            )
        return queryset.none()
    path = patient_path(queryset.model)
    lookup = f"{path}__in" if path else "pk__in"
    return queryset.filter(**{lookup: visible_patients(info, perm=perm).values("pk")})


def visible_patients(info: Info, *, perm: str = VIEW) -> QuerySet[Any]:
    """patients.selectors.patient_list_visible_to for the requesting user, made once per
    request: building it checks for break-glass grants (a query), and the root list and every
    nested list of a query need it."""
    cache = info.context.request.__dict__.setdefault("_graphql_visible_patients", {})
    if perm not in cache:
        cache[perm] = patient_list_visible_to(user=user_of(info), perm=perm)
    return cache[perm]
