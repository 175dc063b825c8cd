from __future__ import annotations

from django.urls import path

from oncoplanner.live import views

app_name = "live"

urlpatterns = [
    path("stream/changes/", views.changes, name="changes"),
]
