from __future__ import annotations

from django.urls import path

from labs import views

app_name = "labs"

urlpatterns = [
    path("patients/<int:patient_id>/labs/", views.lab_trends, name="lab_trends"),
    path("patients/<int:patient_id>/labs/new/", views.lab_result_create, name="lab_result_create"),
    path(
        "patients/<int:patient_id>/labs/release/",
        views.lab_results_release,
        name="lab_results_release",
    ),
    path(
        "patients/<int:patient_id>/labs/<int:result_id>/entered-in-error/",
        views.lab_result_entered_in_error,
        name="lab_result_entered_in_error",
    ),
    path("patients/<int:patient_id>/labs/import/", views.lab_import, name="lab_import"),
    path("labs/import/", views.clinic_lab_import, name="clinic_lab_import"),
    path("inbox/", views.inbox, name="inbox"),
    path(
        "inbox/patients/<int:patient_id>/lab-results/<int:item_id>/acknowledge/",
        views.lab_result_acknowledge,
        name="lab_result_acknowledge",
    ),
    path(
        "inbox/patients/<int:patient_id>/side-effects/<int:item_id>/acknowledge/",
        views.side_effect_acknowledge,
        name="side_effect_acknowledge",
    ),
    path(
        "inbox/patients/<int:patient_id>/symptom-reports/<int:item_id>/review/",
        views.symptom_report_review,
        name="symptom_report_review",
    ),
]
