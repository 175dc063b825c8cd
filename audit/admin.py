"""The access log in Django admin: read-only for everyone, superusers included.

No add, change or delete permission and no actions, whatever the user's permissions say
(SECURITY.md figure 13). Django's LogEntry records changes but never views, so this admin
writes its own rows: a LIST row for the changelist, a READ row for each entry opened.
"""

from __future__ import annotations

from typing import Any

from axes.models import AccessLog as AxesLoginLog
from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from audit.models import AccessLog
from audit.services import HASHED_FIELDS, access_log_record


@admin.register(AccessLog)
class AccessLogAdmin(admin.ModelAdmin[AccessLog]):
    list_display = (
        "at",
        "username",
        "user_role",
        "action",
        "object_type",
        "object_id",
        "patient_id",
        "surface",
        "outcome",
        "break_glass",
        "chain",
    )
    list_filter = ("action", "surface", "outcome", "break_glass")
    date_hierarchy = "at"
    search_fields = ("=username", "=object_id")
    actions = None
    list_per_page = 50
    # The table grows without bound: no full COUNT(*) on every changelist view.
    show_full_result_count = False
    # Every column the hash chain covers, plus the chain itself: all shown, none editable.
    readonly_fields = (
        *(f for f in HASHED_FIELDS if f not in {"id", "seq"}),
        "chain",
        "seq",
        "prev_hash",
        "row_hash",
    )
    fields = readonly_fields

    # A reviewer read the newest rows' "-" for seq and hash as missing or tampered rows: say
    # that a row is written first and chained by the sealer a little later.
    @admin.display(description="Hash chain")
    def chain(self, obj: AccessLog) -> str:
        if obj.seq is not None:
            return f"sealed, #{obj.seq}"
        return "not sealed yet (seal_access_log chains new rows every minute)"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Administrators only (the role), not any staff account that happens to hold a perm.
        user = request.user
        return bool(
            user.is_active
            and getattr(user, "is_administrator", False)
            and (user.is_superuser or user.has_perm("audit.view_accesslog"))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        if response.status_code == 200:
            # Written before the page renders: if the row cannot be written, nothing is shown.
            access_log_record(
                action=AccessLog.Action.LIST,
                object_type="AccessLog",
                detail={"admin": "changelist", "query": request.GET.urlencode()[:500]},
            )
        return response

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        if response.status_code == 200:
            access_log_record(
                action=AccessLog.Action.READ,
                object_type="AccessLog",
                object_id=object_id,
                detail={"admin": "detail"},
            )
        return response


# Axes' own "Access logs" (every successful login) sat beside this access log under the same
# name. Logins and logouts are already rows of the access log above, and AXES_DISABLE_ACCESS_LOG
# stops axes writing them; its attempts and failures (the lockout records) stay in admin.
if admin.site.is_registered(AxesLoginLog):
    admin.site.unregister(AxesLoginLog)
