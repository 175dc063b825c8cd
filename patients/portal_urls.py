from __future__ import annotations

from django.urls import path

from patients import portal_views

app_name = "portal"

urlpatterns = [
    path("", portal_views.home, name="home"),
    path("results/", portal_views.lab_results, name="lab_results"),
    path("symptoms/", portal_views.symptoms, name="symptoms"),
    path("care-team/", portal_views.care_team, name="care_team"),
    path("access-history/", portal_views.access_history, name="access_history"),
]
