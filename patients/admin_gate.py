"""The access gate for Django admin, the second PHI pathway (SECURITY.md pitfalls).

Every admin of a PHI model uses `GatedPhiAdmin`:
- `get_queryset` goes through `patients.selectors.scope_queryset`: a clinician with admin
  access sees only the patients of their care teams; an administrator or a superuser by role
  sees none (administrators cannot join a care team, and the gate lets clinicians only);
- a record outside that set is a 404 (not Django's "does not exist" redirect, which would
  tell a probe apart from a missing id);
- the changelist and the change view send `record_read`, so admin reads are logged like
  every other door (Django's LogEntry records changes, never views);
- PHI is read-only in admin by default: clinicians work in the app, whose services validate,
  enforce the clinical rules and audit each write.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest

from oncoplanner.signals import record_read
from patients.models import Patient
from patients.selectors import patient_ids_of, patient_path, scope_queryset


def _patient_of(obj: Model) -> Patient:
    path = patient_path(type(obj))
    current: Any = obj
    for part in path.split("__") if path else []:
        current = getattr(current, part)
    return current  # type: ignore[no-any-return]


class GatedPhiAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    phi_read_only = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return scope_queryset(super().get_queryset(request), user=request.user)  # type: ignore[arg-type]

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(f"No {self.model._meta.object_name} matches the given query.")
        record_read.send(sender=self.model, patients=[_patient_of(obj)], target=obj, action="read")
        return obj

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        if rows:
            # The base manager: every listed row, including any the default manager leaves
            # out (a lab result entered in error is still listed in admin, and still logged).
            ids = patient_ids_of(self.model._base_manager.filter(pk__in=[r.pk for r in rows]))
            patients = list(Patient.objects.filter(pk__in=ids))
            record_read.send(sender=self.model, patients=patients, target=None, action="list")
        return changelist

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        # An empty list must not read as "the clinic has no patients": say why it is empty.
        messages.info(
            request,
            "Only patients of your own care teams are listed here, and administrators are on "
            "none: administrators see no patient data. Manage care teams and their members "
            "under Care teams.",
        )
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return not self.phi_read_only and super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self.phi_read_only and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting PHI from admin would bypass the services and the clinical record's history.
        return False


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    """Inline rows of a PHI parent: shown, never edited in admin."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
