"""Admin history that says what a change was, not only which fields it touched.

Clinical configuration changed in admin (a drug's lifetime limit, a reference range, a
pre-cycle rule) changes what the app tells clinicians about every patient. Django's history
records only "Changed Lifetime limit": raising doxorubicin's limit from 450 to 4500 mg/m² left
no old or new value anywhere (a reviewer's find). These admins write "<field>: <old> -> <new>"
for each changed field.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.forms import ModelForm
from django.http import HttpRequest


class ValueHistoryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def construct_change_message(
        self, request: HttpRequest, form: ModelForm, formsets: Any, add: bool = False
    ) -> Any:
        if add or not form.changed_data:
            return super().construct_change_message(request, form, formsets, add)
        changes = []
        for name in form.changed_data:
            field = form.fields[name]
            old = form.initial.get(name)
            new = form.cleaned_data.get(name)
            changes.append(f"{field.label or name}: {_shown(old)} -> {_shown(new)}")
        return "Changed " + "; ".join(changes) + "."


def _shown(value: Any) -> str:
    return "(empty)" if value in (None, "") else str(value)
