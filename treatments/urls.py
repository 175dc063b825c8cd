from __future__ import annotations

from django.urls import path

from treatments import views

app_name = "treatments"

COURSE = "patients/<int:patient_id>/courses/<int:course_id>/"
CYCLE = COURSE + "cycles/<int:number>/"

urlpatterns = [
    path("patients/<int:patient_id>/courses/new/", views.course_create, name="course_create"),
    path(COURSE, views.course_detail, name="course_detail"),
    path(
        COURSE + "dose-modifications/",
        views.dose_modification_create,
        name="dose_modification_create",
    ),
    path(COURSE + "stop/", views.course_stop, name="course_stop"),
    path(COURSE + "summary/", views.course_summary, name="course_summary"),
    path(CYCLE, views.cycle_detail, name="cycle_detail"),
    path(CYCLE + "give/", views.cycle_give, name="cycle_give"),
    path(CYCLE + "delay/", views.cycle_delay, name="cycle_delay"),
    path(CYCLE + "hold/", views.cycle_hold, name="cycle_hold"),
    path(CYCLE + "cancel/", views.cycle_cancel, name="cycle_cancel"),
    path(CYCLE + "verify/", views.cycle_verify, name="cycle_verify"),
    path(CYCLE + "administrations/", views.administration_create, name="administration_create"),
    path(
        CYCLE + "administrations/<int:administration_id>/stop/",
        views.administration_stop,
        name="administration_stop",
    ),
    path(
        "patients/<int:patient_id>/side-effects/new/",
        views.side_effect_create,
        name="side_effect_create",
    ),
    path("ctcae/terms/", views.ctcae_term_search, name="ctcae_term_search"),
    path("pharmacy/", views.pharmacy_worklist, name="pharmacy_worklist"),
    path("regimens/", views.regimen_library, name="regimen_library"),
    path("regimens/<int:regimen_id>/", views.regimen_detail, name="regimen_detail"),
    path("regimens/<int:regimen_id>/approve/", views.regimen_approve, name="regimen_approve"),
]
