from __future__ import annotations

import pytest
from django.urls import reverse

from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def test_home_requires_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_home_lists_only_care_team_patients(client, treating_clinician, patient):
    stranger = PatientFactory.create(family_name="Outsiderson", mrn="MRN9999999")
    client.force_login(treating_clinician)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert patient.mrn.encode() in response.content
    assert stranger.mrn.encode() not in response.content


def test_home_shows_no_patients_to_a_clinician_outside_the_team(client, other_clinician, patient):
    client.force_login(other_clinician)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert patient.mrn.encode() not in response.content


def test_pages_for_signed_in_users_are_never_cached(client, treating_clinician):
    client.force_login(treating_clinician)
    response = client.get(reverse("home"))
    assert "no-store" in response["Cache-Control"]
