from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from oncoplanner import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("", include("patients.urls")),
]
