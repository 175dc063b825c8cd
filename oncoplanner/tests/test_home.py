from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessLog
from oncoplanner.accounts.tests.factories import UserFactory
from patients.tests.dashboard_world import course_with_cycles, regimen_with_anc_rules
from patients.tests.factories import PatientFactory
from treatments.tests.factories import SideEffectFactory

pytestmark = pytest.mark.django_db


def test_home_requires_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def _due_today(patient) -> None:
    course_with_cycles(
        patient, regimen=regimen_with_anc_rules(), given=0, total=4, start=timezone.localdate()
    )


def test_home_is_a_worklist_of_my_cycles_due_this_week_and_my_inbox(
    client, treating_clinician, patient, care_team
):
    _due_today(patient)
    idle = PatientFactory.create(family_name="Idle", mrn="MRN-IDLE-1", care_team=care_team)
    stranger = PatientFactory.create(family_name="Outsiderson", mrn="MRN9999999")
    _due_today(stranger)
    SideEffectFactory.create(patient=patient, grade=3)
    client.force_login(treating_clinician)

    response = client.get(reverse("home"))

    assert response.status_code == 200
    html = response.content.decode()
    assert patient.mrn in html
    assert idle.mrn not in html  # on my team, but nothing due: not on today's worklist
    assert stranger.mrn not in html
    assert response.context["inbox_waiting"] == 1
    assert "1</span> item waits for acknowledgement" in html
    shown = AccessLog.objects.filter(user=treating_clinician, action=AccessLog.Action.LIST)
    assert [row.patient_ids for row in shown] == [[patient.pk]]


def test_home_shows_no_patients_to_a_clinician_outside_the_team(client, other_clinician, patient):
    _due_today(patient)
    client.force_login(other_clinician)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert patient.mrn.encode() not in response.content
    assert response.context["inbox_waiting"] == 0


def test_pages_for_signed_in_users_are_never_cached(client, treating_clinician):
    client.force_login(treating_clinician)
    response = client.get(reverse("home"))
    assert "no-store" in response["Cache-Control"]


def test_clinician_nav_leads_to_the_inbox_and_marks_the_page_shown(client, treating_clinician):
    client.force_login(treating_clinician)
    html = client.get(reverse("labs:inbox")).content.decode()
    assert f'<a href="{reverse("labs:inbox")}" aria-current="page">Inbox</a>' in html
    assert f'<a href="{reverse("patients:patient_list")}">Patients</a>' in html


def test_patient_nav_has_no_clinician_links(client):
    client.force_login(UserFactory.create())  # a patient account
    html = client.get(reverse("home")).content.decode()
    assert reverse("labs:inbox") not in html
    assert reverse("patients:patient_list") not in html


def test_favicon_is_served_without_login(client):
    response = client.get("/favicon.ico", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0].endswith("favicon.svg")
    assert b"<svg" in b"".join(response.streaming_content)


@pytest.mark.parametrize("debug", [False, True])
def test_pages_load_htmx_without_the_debug_script_that_replaces_the_page_on_a_400(
    client, treating_clinician, settings, debug
):
    # Forms answer invalid input with a 400 fragment for htmx to swap in; django-htmx's DEBUG
    # script would instead replace the whole page (patient name and all) with it.
    settings.DEBUG = debug
    client.force_login(treating_clinician)
    html = client.get(reverse("home")).content.decode()
    assert "htmx-2.min.js" in html
    assert "hx-sse-2.min.js" in html
    assert "django-htmx.js" not in html
