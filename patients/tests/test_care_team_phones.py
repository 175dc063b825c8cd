"""Care-team phone numbers: what the portal tells a patient to call, and never a blank.

A clinical reviewer found "Call your clinic's 24-hour number now" with no number anywhere in the
portal. Numbers here are fictional (Ofcom's drama range, 020 7946 0xxx).
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from oncoplanner.accounts.tests.factories import UserFactory
from patients.models import CareTeam, SymptomReport, tel_uri
from patients.services import care_team_create, care_team_update
from patients.tests.factories import patient_through_service

pytestmark = pytest.mark.django_db

ACUTE = "020 7946 0999"
ACUTE_LINK = '<a class="portal-tel" href="tel:02079460999">020 7946 0999</a>'
DAYTIME = "020 7946 0123"
DAYTIME_LINK = '<a class="portal-tel" href="tel:02079460123">020 7946 0123</a>'
FALLBACK = "call 999 (or 112) now, or go to the nearest emergency department (A&amp;E)"
PAGES = [
    "portal:home",
    "portal:lab_results",
    "portal:symptoms",
    "portal:care_team",
    "portal:access_history",
]


@pytest.fixture
def phones(care_team):
    return care_team_update(team=care_team, updated_by=None, phone_24h=ACUTE, phone_daytime=DAYTIME)


def _banner(page: str) -> str:
    return page.split('id="portal-urgent"', 1)[1].split("</p>", 1)[0]


# --- The numbers: validation and tel: links ---------------------------------------------------


@pytest.mark.parametrize(
    ("number", "uri"),
    [
        ("020 7946 0999", "tel:02079460999"),
        ("+44 20 7946 0999", "tel:+442079460999"),
        ("(020) 7946-0999", "tel:02079460999"),
        ("0117.496.0123", "tel:01174960123"),
    ],
)
def test_care_team_accepts_phone_numbers_and_links_them_for_tapping(number, uri):
    team = care_team_create(name="Phones OK", phone_24h=f"  {number} ", phone_daytime=number)
    team.refresh_from_db()
    assert team.phone_24h == number  # stored as typed, trimmed
    assert (team.phone_24h_uri, team.phone_daytime_uri) == (uri, uri)


@pytest.mark.parametrize(
    "number",
    [
        "call the ward",  # letters
        "999",  # an emergency number is not the team's line (too short)
        "12345",
        "020 7946 0999 ext 12",  # no extension: a patient in a crisis must get through by tapping
        "0207946099912345678",  # more than 15 digits
        "44+20 7946 0999",  # "+" only in front
        "020\x007946",
    ],
)
@pytest.mark.parametrize("field", ["phone_24h", "phone_daytime"])
def test_care_team_refuses_text_that_is_not_a_phone_number(number, field):
    with pytest.raises(ValidationError) as error:
        care_team_create(name="Phones bad", **{field: number})
    assert field in error.value.message_dict
    assert not CareTeam.objects.filter(name="Phones bad").exists()


def test_tel_uri_is_empty_for_free_text():
    assert tel_uri("ring the ward") == ""
    assert tel_uri("") == ""
    assert tel_uri("07700 900123") == "tel:07700900123"


def test_care_team_numbers_are_optional_and_updated_through_the_service(care_team):
    assert (care_team.phone_24h, care_team.phone_daytime) == ("", "")
    care_team_update(team=care_team, updated_by=None, phone_24h=f" {ACUTE} ")
    care_team.refresh_from_db()
    assert (care_team.phone_24h, care_team.phone_daytime) == (ACUTE, "")
    with pytest.raises(ValidationError):
        care_team_update(team=care_team, updated_by=None, phone_24h="not a number")


# --- Admin ------------------------------------------------------------------------------------


def _admin_post(team: CareTeam, **numbers: str) -> dict[str, object]:
    return {
        "name": team.name,
        "description": team.description,
        "phone_24h": "",
        "phone_daytime": "",
        "members": [],
        "leads": [],
        **numbers,
    }


def test_admin_edits_care_team_numbers(client, login, admin_user, care_team):
    login(client, admin_user)
    url = reverse("admin:patients_careteam_change", args=[care_team.pk])
    page = client.get(url).content.decode()
    assert 'name="phone_24h"' in page
    assert 'name="phone_daytime"' in page
    response = client.post(url, _admin_post(care_team, phone_24h=ACUTE, phone_daytime=DAYTIME))
    assert response.status_code == 302
    care_team.refresh_from_db()
    assert (care_team.phone_24h, care_team.phone_daytime) == (ACUTE, DAYTIME)


def test_admin_refuses_a_24_hour_number_that_is_not_one(client, login, admin_user, care_team):
    login(client, admin_user)
    url = reverse("admin:patients_careteam_change", args=[care_team.pk])
    response = client.post(url, _admin_post(care_team, phone_24h="ask at reception"))
    assert response.status_code == 200  # the form again, with the error
    assert "Enter a phone number" in response.content.decode()
    care_team.refresh_from_db()
    assert care_team.phone_24h == ""


# --- Portal: the banner on every page, the care-team page ------------------------------------


@pytest.mark.parametrize("name", PAGES)
def test_portal_banner_gives_the_24_hour_number_as_a_link_on_every_page(
    portal_client, phones, name
):
    page = portal_client.get(reverse(name)).content.decode()
    banner = _banner(page)
    assert f"call your clinic's 24-hour number now: {ACUTE_LINK}" in banner
    assert "999" in banner  # and what to do if the line does not answer


@pytest.mark.parametrize("name", PAGES)
def test_portal_banner_without_a_24_hour_number_never_points_at_a_blank(portal_client, name):
    page = portal_client.get(reverse(name)).content.decode()
    banner = _banner(page)
    assert FALLBACK in banner
    assert "24-hour number now" not in banner
    assert 'href="tel:' not in page


def test_portal_care_team_page_shows_both_numbers(portal_client, phones):
    page = portal_client.get(reverse("portal:care_team")).content.decode()
    card = page.split('id="portal-phones"', 1)[1].split("</section>", 1)[0]
    assert ACUTE_LINK.replace('class="portal-tel"', 'class="portal-tel portal-big"') in card
    assert DAYTIME_LINK in card


def test_portal_care_team_page_without_numbers_says_what_to_do(portal_client):
    page = portal_client.get(reverse("portal:care_team")).content.decode()
    card = page.split('id="portal-phones"', 1)[1].split("</section>", 1)[0]
    assert "Not recorded yet." in card
    assert FALLBACK in card
    assert 'href="tel:' not in card


def test_portal_patient_without_a_care_team_gets_the_fallback(client, db):
    patient = patient_through_service(None)
    user = UserFactory.create()
    patient.portal_user = user
    patient.save()
    client.force_login(user)
    page = client.get(reverse("portal:home")).content.decode()
    assert FALLBACK in _banner(page)


def test_portal_shows_only_the_patients_own_teams_numbers(portal_client, phones):
    other = care_team_create(
        name="Haematology Zanzibar", phone_24h="020 7946 0555", phone_daytime="020 7946 0556"
    )
    patient_through_service(other)
    for name in ("portal:home", "portal:care_team"):
        page = portal_client.get(reverse(name)).content.decode()
        assert ACUTE in page
        assert "020 7946 0555" not in page
        assert "020 7946 0556" not in page


def test_portal_numbers_are_not_shown_to_clinicians(client, login, treating_clinician, phones):
    login(client, treating_clinician)
    assert client.get(reverse("portal:care_team")).status_code == 404


# --- Portal: the acknowledgement after a report ------------------------------------------------


def test_portal_urgent_report_alert_gives_the_24_hour_number(portal_client, phones):
    response = portal_client.post(
        reverse("portal:symptoms"), {"symptom": "Fever or chills", "severity": "2"}
    )
    page = portal_client.get(response["Location"]).content.decode()
    alert = page.split('id="symptom-sent"', 1)[1].split("</section>", 1)[0]
    assert f"Call your clinic's 24-hour number now: {ACUTE_LINK}" in alert


def test_portal_urgent_report_alert_without_a_number_sends_to_999(portal_client):
    response = portal_client.post(
        reverse("portal:symptoms"), {"symptom": "Fever or chills", "severity": "2"}
    )
    page = portal_client.get(response["Location"]).content.decode()
    alert = page.split('id="symptom-sent"', 1)[1].split("</section>", 1)[0]
    assert "Call 999 (or 112) now, or go to the nearest emergency department (A&amp;E)" in alert
    assert "24-hour number now" not in alert


def test_portal_routine_report_gives_a_timeframe_and_the_24_hour_number(portal_client, phones):
    response = portal_client.post(
        reverse("portal:symptoms"),
        {"symptom": "Tiredness", "severity": "1", "description": "Tired after lunch"},
    )
    assert SymptomReport.objects.get().urgent is False
    page = portal_client.get(response["Location"]).content.decode()
    sent = page.split('id="symptom-sent"', 1)[1].split("</section>", 1)[0]
    assert "next review" not in sent
    assert "within one working day" in sent
    assert (
        f"If it gets worse, or you feel very unwell, do not wait for us:</strong> call your clinic's 24-hour number now: {ACUTE_LINK}"
        in sent
    )


def test_portal_routine_report_without_a_number_still_says_what_to_do(portal_client):
    response = portal_client.post(
        reverse("portal:symptoms"), {"symptom": "Tiredness", "severity": "1"}
    )
    page = portal_client.get(response["Location"]).content.decode()
    sent = page.split('id="symptom-sent"', 1)[1].split("</section>", 1)[0]
    assert "within one working day" in sent
    assert FALLBACK in sent


def test_portal_home_gives_the_24_hour_number_before_the_schedule(portal_client, phones):
    page = portal_client.get(reverse("portal:home")).content.decode()
    top = page.split('id="home-call"', 1)[1].split("</p>", 1)[0]
    assert f"Call your clinic's 24-hour number now: {ACUTE_LINK}" in top
    assert page.index('id="home-call"') < page.index('id="next-heading"')


def test_care_team_lead_page_shows_what_patients_are_told_to_call(
    client, login, phones, treating_clinician, admin_user
):
    from patients.services import care_team_lead_set

    care_team_lead_set(team=phones, clinician=treating_clinician, lead=True, granted_by=admin_user)
    login(client, treating_clinician)
    page = client.get(reverse("patients:care_team_manage", args=[phones.pk])).content.decode()
    line = page.split('id="team-phones"', 1)[1].split("</p>", 1)[0]
    assert f"24-hour acute oncology line <strong>{ACUTE}</strong>" in line
    assert f"daytime <strong>{DAYTIME}</strong>" in line


def test_the_emergency_number_is_the_clinics_setting(portal_client, settings):
    # 999/112 had been written into the templates: a clinic in North America tells patients 911.
    settings.EMERGENCY_NUMBER = "911"
    page = portal_client.get(reverse("portal:care_team")).content.decode()
    card = page.split('id="portal-phones"', 1)[1].split("</section>", 1)[0]
    assert "call 911 now, or go to the nearest emergency department" in card
    assert "999" not in page
