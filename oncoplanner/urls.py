from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from oncoplanner import views
from oncoplanner.accounts import api_tokens
from oncoplanner.accounts import views as account_views
from oncoplanner.api import api
from oncoplanner.graphql_schema import graphql_view

admin.site.site_header = "OncoPlanner administration"
admin.site.site_title = "OncoPlanner admin"
admin.site.index_title = "Users, care teams, regimens, lab catalogue and the access log"

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    # Personal API tokens (before allauth's include, which owns the rest of /accounts/).
    path("accounts/api-tokens/", api_tokens.api_tokens, name="api_tokens"),
    path(
        "accounts/api-tokens/<int:token_id>/revoke/",
        api_tokens.api_token_revoke_view,
        name="api_token_revoke",
    ),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", api.urls),
    # Admin has no login form of its own: allauth's login, MFA stage and axes lock guard it.
    path("admin/login/", account_views.admin_login, name="admin_login_redirect"),
    path("admin/", admin.site.urls),
    path("audit/", include("audit.urls")),
    path("", include("oncoplanner.live.urls")),
    path("graphql/", graphql_view, name="graphql"),
    path("docs/", include("oncoplanner.docs.urls")),
    path("", include("patients.urls")),
    path("", include("labs.urls")),
    path("", include("treatments.urls")),
    path("portal/", include("patients.portal_urls")),
]

# Benchmarks only (scripts/bench.py): the bare baseline view, never mounted otherwise.
if settings.BENCHMARK_BASELINE:
    from oncoplanner import benchviews

    urlpatterns.append(path("bench/baseline/", benchviews.baseline, name="bench_baseline"))
