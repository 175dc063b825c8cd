from __future__ import annotations

from typing import Any

# Imported first so that allauth's own registration has happened and can be replaced below,
# whatever the order of INSTALLED_APPS (autodiscover does not import a module twice).
import allauth.mfa.admin  # noqa: F401
from allauth.mfa.models import Authenticator
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest

from oncoplanner.accounts.api_tokens import api_token_create, api_token_revoke
from oncoplanner.accounts.models import ApiToken, User
from oncoplanner.accounts.services import authenticator_remove


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
    list_filter = ("role", "discipline", "sact_prescriber", "is_active", "is_staff")
    search_fields = ("username", "first_name", "last_name", "email")
    # sact_prescriber beside the discipline it depends on (nurse or pharmacist only: the model's
    # clean() says so on the field).
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        ("Role", {"fields": ("role", "discipline", "sact_prescriber")}),
    )
    add_fieldsets = (
        *BaseUserAdmin.add_fieldsets,
        ("Role", {"fields": ("role", "discipline", "sact_prescriber")}),
    )
    # Stamped by the system, shown not edited: as editable wall times, one from the hour the
    # clocks go back (01:00-02:00 happens twice in Europe/London) could not be read back, and
    # the user could not be saved, not even retired.
    readonly_fields = ("last_login", "date_joined")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Administrators make and revoke anyone's tokens; the token is shown once, on creation.

    Only the hash is stored and it is read-only here, like every field but name and expiry.
    """

    list_display = (
        "name",
        "user",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("revoked_at",)
    search_fields = ("name", "user__username", "prefix")
    readonly_fields = (
        "prefix",
        "token_hash",
        "created_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    )
    actions = ("revoke",)

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:
        if obj is None:
            return ["user", "name", "expires_at"]
        return ["user", "name", "expires_at", *self.readonly_fields]

    def get_readonly_fields(
        self, request: HttpRequest, obj: ApiToken | None = None
    ) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("user", "name", "expires_at", *self.readonly_fields)

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            return  # a token is never edited: revoke it and make another
        try:
            token, raw = api_token_create(
                user=obj.user, name=obj.name, expires_at=obj.expires_at, created_by=request.user
            )
        except ValidationError as error:
            messages.error(request, "; ".join(error.messages))
            raise
        obj.pk = token.pk
        obj.__dict__.update(token.__dict__)
        messages.warning(
            request,
            f"Token for {token.user}: {raw} — copy it now, it is not shown again.",
        )

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False  # revoke instead: the row stays as the record of the token

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        for token in queryset:
            api_token_revoke(token=token, by=request.user)
        messages.success(request, f"{queryset.count()} token(s) revoked.")


admin.site.unregister(Authenticator)


@admin.register(Authenticator)
class AuthenticatorAdmin(admin.ModelAdmin[Authenticator]):
    """Second factors, read-only: who has which kind, since when, last used.

    Security: `data` holds the TOTP secret and the recovery-code seed. allauth's own admin shows
    and edits it, so an administrator who also resets a password could sign in as any
    clinician, and the access log would name the clinician (SECURITY.md #11). Here it is never
    shown, edited or filtered on. The only write is removal (a lost phone), through
    authenticator_remove: logged, the owner's sessions ended, enrolment again at next sign-in.
    """

    list_display = ("user", "type", "created_at", "last_used_at")
    list_filter = ("type", "created_at", "last_used_at")
    list_select_related = ("user",)
    search_fields = ("user__username", "user__first_name", "user__last_name")
    fields = ("user", "type", "created_at", "last_used_at")
    readonly_fields = fields
    # Bulk "delete selected" would bypass delete_model; one authenticator at a time is the
    # lost-phone case, and each removal is confirmed on its own page.
    actions = None
    FILTERABLE = frozenset({"id", "pk", "user", "user_id", "type", "created_at", "last_used_at"})

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # Django allows any lookup on a model's own fields in the changelist's query string:
        # ?data__secret__startswith=J would turn the row count into an oracle for the secret.
        if lookup.split(LOOKUP_SEP, 1)[0] not in self.FILTERABLE:
            return False
        return super().lookup_allowed(lookup, value, request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # enrolment is the user's own, with their own authenticator app

    def has_change_permission(self, request: HttpRequest, obj: Authenticator | None = None) -> bool:
        return False  # an edited secret is a second factor the administrator holds

    def has_delete_permission(self, request: HttpRequest, obj: Authenticator | None = None) -> bool:
        # Not one's own: an administrator cannot strip their own second factor here; another
        # administrator handles their lost phone (two people for a factor reset).
        if obj is not None and obj.user_id == request.user.pk:
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: Authenticator) -> None:
        authenticator_remove(authenticator=obj, removed_by=request.user)  # type: ignore[arg-type]

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Authenticator]) -> None:
        for authenticator in queryset:  # not reached while actions is None; kept audited anyway
            if Authenticator.objects.filter(pk=authenticator.pk).exists():
                authenticator_remove(authenticator=authenticator, removed_by=request.user)  # type: ignore[arg-type]
