from __future__ import annotations

from django.urls import path

from oncoplanner.docs import views

app_name = "docs"

urlpatterns = [
    path("data-dictionary/", views.data_dictionary, name="data_dictionary"),
    path("er-diagram/", views.er_diagram, name="er_diagram"),
]
