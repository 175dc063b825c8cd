from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from oncoplanner.accounts.models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = (
        "username",
        "first_name",
        "last_name",
        "role",
        "discipline",
        "is_active",
        "last_login",
    )
    list_filter = ("role", "discipline", "is_active", "is_staff")
    search_fields = ("username", "first_name", "last_name", "email")
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        ("Role", {"fields": ("role", "discipline")}),
    )
    add_fieldsets = (
        *BaseUserAdmin.add_fieldsets,
        ("Role", {"fields": ("role", "discipline")}),
    )
