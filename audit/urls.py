from __future__ import annotations

from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("", views.report, name="report"),
    path("export.csv", views.export, name="export"),
]
