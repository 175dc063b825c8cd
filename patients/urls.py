from __future__ import annotations

from django.urls import path

from patients import views

app_name = "patients"

urlpatterns = [
    path("patients/", views.patient_list, name="patient_list"),
    path("patients/new/", views.patient_create, name="patient_create"),
    path("patients/<int:patient_id>/", views.patient_detail, name="patient_detail"),
    path("patients/<int:patient_id>/edit/", views.patient_update, name="patient_update"),
    path(
        "patients/<int:patient_id>/export/fhir/",
        views.patient_fhir_export,
        name="patient_fhir_export",
    ),
    path(
        "patients/<int:patient_id>/measurements/new/",
        views.measurement_create,
        name="measurement_create",
    ),
    path(
        "patients/<int:patient_id>/allergies/",
        views.allergy_create,
        name="allergy_create",
    ),
    path(
        "patients/<int:patient_id>/allergies/none-known/",
        views.allergy_none_known,
        name="allergy_none_known",
    ),
    path(
        "patients/<int:patient_id>/allergies/<int:allergy_id>/entered-in-error/",
        views.allergy_entered_in_error,
        name="allergy_entered_in_error",
    ),
    path(
        "patients/emergency-access/",
        views.emergency_access_create,
        name="emergency_access_create",
    ),
    path("patients/care-teams/<int:team_id>/", views.care_team_manage, name="care_team_manage"),
    path(
        "patients/<int:patient_id>/invitations/",
        views.invitation_create,
        name="invitation_create",
    ),
    path("portal/invite/<str:token>/", views.invitation_accept, name="invitation_accept"),
]
