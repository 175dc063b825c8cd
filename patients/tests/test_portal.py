"""The patient portal (patients/portal_views.py): own data only, released results only, no
clinician-only notes, 404 for everyone but the patient, logged reads, validated reports."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.tasks import default_task_backend
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessLog
from labs.models import LabResult, LabTest
from oncoplanner.accounts.tests.factories import AdministratorFactory, UserFactory
from patients.models import SymptomReport
from patients.services import care_team_update, symptom_report_create, symptom_report_review
from patients.tasks import notify_care_team_of_severe_symptom_report
from patients.tests.factories import PatientFactory
from treatments.models import ChemoCycle, Course, Intent, Regimen, RegimenPhase

pytestmark = pytest.mark.django_db

PAGES = [
    "portal:home",
    "portal:lab_results",
    "portal:symptoms",
    "portal:care_team",
    "portal:access_history",
]
UNRELEASED_MARKER = "987.6"  # an ANC value nobody would ever have: must never be shown
OTHER_MARKER = "555.5"
REASON_MARKER = "MARKER-CLINICAL-REASON"
VALID = {"symptom": "Feeling sick (nausea)", "severity": "2", "description": "After meals"}


@pytest.fixture(autouse=True)
def _clear_tasks():
    default_task_backend.clear()
    yield
    default_task_backend.clear()


@pytest.fixture
def team_phones(care_team):
    """The patient's care team with its numbers recorded (fictional: Ofcom's drama range)."""
    care_team_update(
        team=care_team, updated_by=None, phone_24h="020 7946 0999", phone_daytime="020 7946 0123"
    )
    return care_team


CALL_24H = '<a class="portal-tel" href="tel:02079460999">020 7946 0999</a>'


@pytest.fixture
def anc() -> LabTest:
    test, _ = LabTest.objects.get_or_create(
        loinc="751-8",
        defaults={
            "name": "Neutrophils [#/volume] in Blood",
            "short_name": "ANC",
            "unit": "10*3/uL",
            "decimal_places": 1,
        },
    )
    return test


def _result(patient, test, value, *, released, days_ago):
    return LabResult.objects.create(
        patient=patient,
        test=test,
        value=Decimal(value),
        unit=test.unit,
        collected_at=timezone.now() - dt.timedelta(days=days_ago),
        ref_low=Decimal("1.5"),
        ref_high=Decimal("7.5"),
        is_released=released,
    )


def _course(patient, admin_user, *, regimen_name="mFOLFOX6", cycles=4):
    today = timezone.localdate()
    regimen, _ = Regimen.objects.get_or_create(
        name=regimen_name, version=1, defaults={"intent": Intent.CURATIVE}
    )
    phase, _ = RegimenPhase.objects.get_or_create(
        regimen=regimen,
        order=1,
        defaults={"name": regimen_name, "cycle_length_days": 14, "planned_cycles": cycles},
    )
    start = today - dt.timedelta(days=28)
    course = Course.objects.create(
        patient=patient,
        regimen=regimen,
        start_date=start,
        intent=Intent.ADJUVANT,
        status=Course.Status.ACTIVE,
        created_by=admin_user,
    )
    for number in range(1, cycles + 1):
        planned = start + dt.timedelta(days=14 * (number - 1))
        given = planned < today
        ChemoCycle.objects.create(
            course=course,
            phase=phase,
            number=number,
            planned_start=planned,
            actual_start=planned if given else None,
            status=ChemoCycle.Status.GIVEN if given else ChemoCycle.Status.PLANNED,
        )
    return course


# --- Who may open the portal --------------------------------------------------------------


@pytest.mark.parametrize("name", PAGES)
def test_portal_pages_require_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("name", PAGES)
def test_portal_pages_open_for_the_patient(portal_client, name):
    response = portal_client.get(reverse(name))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize("name", PAGES)
def test_portal_pages_have_one_menu_of_the_patients_sections(portal_client, name):
    html = portal_client.get(reverse(name)).content.decode()
    main_menu = html.split('<nav aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    assert reverse("portal:lab_results") not in main_menu  # the portal's tabs have it
    tabs = html.split('<nav class="portal-tabs"', 1)[1].split("</nav>", 1)[0]
    for section in PAGES:
        assert f'href="{reverse(section)}"' in tabs
    assert tabs.count('aria-current="page"') == 1


@pytest.mark.parametrize("name", PAGES)
def test_portal_pages_hide_from_treating_clinician(client, login, treating_clinician, name):
    login(client, treating_clinician)
    assert client.get(reverse(name)).status_code == 404


@pytest.mark.parametrize("name", PAGES)
def test_portal_pages_hide_from_administrator(client, login, admin_user, name):
    login(client, admin_user)
    assert client.get(reverse(name)).status_code == 404
    login(client, AdministratorFactory.create())  # not a superuser either
    assert client.get(reverse(name)).status_code == 404


@pytest.mark.parametrize("name", PAGES)
def test_portal_pages_hide_from_patient_user_without_record(client, name):
    client.force_login(UserFactory.create())
    assert client.get(reverse(name)).status_code == 404


def test_portal_symptom_post_hides_from_clinician_and_writes_nothing(
    client, login, treating_clinician
):
    login(client, treating_clinician)
    response = client.post(reverse("portal:symptoms"), {**VALID, "severity": "4"})
    assert response.status_code == 404
    assert not SymptomReport.objects.exists()


def test_home_shows_portal_summary_to_patient(portal_client, patient, admin_user):
    _course(patient, admin_user)
    response = portal_client.get(reverse("home"))
    assert response.status_code == 200
    assert b"Your next treatment" in response.content
    assert b"mFOLFOX6" in response.content


def test_home_of_patient_user_without_record_says_not_linked(client):
    client.force_login(UserFactory.create())
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert b"not linked" in response.content


# --- Schedule -------------------------------------------------------------------------------


def test_portal_home_shows_own_cycles_without_clinical_notes(portal_client, patient, admin_user):
    course = _course(patient, admin_user, cycles=4)
    delayed = course.cycles.get(number=4)
    delayed.status = ChemoCycle.Status.DELAYED
    delayed.reason = REASON_MARKER
    delayed.planned_start = timezone.localdate() + dt.timedelta(days=30)
    delayed.save()
    response = portal_client.get(reverse("portal:home"))
    content = response.content.decode()
    assert "cycle 3 of 4" in content  # the next one
    assert "cycle 1 of 4" in content  # given, in the past
    assert "Moved to a later date" in content
    assert REASON_MARKER not in content
    upcoming = [row["number"] for row in response.context["upcoming"]]
    past = [row["number"] for row in response.context["past"]]
    assert upcoming == [3, 4]
    assert past == [2, 1]


def test_portal_home_says_a_treatment_day_on_a_public_holiday_will_be_confirmed(
    portal_client, patient, admin_user, settings
):
    settings.CLINIC_HOLIDAYS = "GB-ENG"
    today = timezone.localdate()
    christmas = dt.date(today.year, 12, 25)
    if christmas <= today:
        christmas = christmas.replace(year=today.year + 1)
    course = _course(patient, admin_user, cycles=4)
    course.cycles.filter(number=3).update(status=ChemoCycle.Status.GIVEN, actual_start=today)
    course.cycles.filter(number=4).update(planned_start=christmas)

    html = portal_client.get(reverse("portal:home")).content.decode()
    assert "This is Christmas Day, a public holiday." in html  # the next treatment
    assert "Christmas Day: your care team will confirm this date with you." in html  # the list


def test_portal_home_never_shows_another_patients_schedule(portal_client, admin_user):
    other = PatientFactory.create()
    _course(other, admin_user, regimen_name="MARKER-OTHER-REGIMEN")
    response = portal_client.get(reverse("portal:home"))
    assert b"MARKER-OTHER-REGIMEN" not in response.content
    assert response.context["upcoming"] == []


def test_portal_home_logs_the_schedule_read(portal_client, patient, portal_user):
    portal_client.get(reverse("portal:home"))
    row = AccessLog.objects.get(object_type="ChemoCycle")
    assert row.action == AccessLog.Action.LIST
    assert row.surface == AccessLog.Surface.PAGE
    assert row.user == portal_user
    assert row.patient_ids == [patient.pk]


# --- Lab results ----------------------------------------------------------------------------


def test_portal_lab_results_show_released_only(portal_client, patient, anc):
    _result(patient, anc, "1.2", released=True, days_ago=10)
    _result(patient, anc, "3.4", released=True, days_ago=3)
    _result(patient, anc, UNRELEASED_MARKER, released=False, days_ago=1)
    response = portal_client.get(reverse("portal:lab_results"))
    content = response.content.decode()
    assert response.status_code == 200
    assert UNRELEASED_MARKER not in content
    assert "3.4" in content
    assert "1.2" in content
    assert "Below the usual range" in content  # 1.2 < 1.5
    assert "Within the usual range" in content  # 3.4
    (analyte,) = response.context["analytes"]
    assert [p["y"] for p in analyte["chart"]["points"]] == [1.2, 3.4]  # oldest first
    assert Decimal(analyte["latest"]["value"]) == Decimal("3.4")
    assert 'data-chart="analyte-1"' in content  # drawn by static/portal/portal_chart.js


def test_portal_lab_results_never_show_another_patients_results(portal_client, anc):
    _result(PatientFactory.create(), anc, OTHER_MARKER, released=True, days_ago=2)
    response = portal_client.get(reverse("portal:lab_results"))
    assert OTHER_MARKER.encode() not in response.content
    assert response.context["analytes"] == []


def test_portal_lab_results_have_no_inline_script(portal_client, patient, anc):
    _result(patient, anc, "1.2", released=True, days_ago=10)
    _result(patient, anc, "2.2", released=True, days_ago=3)
    content = portal_client.get(reverse("portal:lab_results")).content.decode()
    # Only json_script data blocks and nonce'd external scripts (CSP: no inline JS).
    assert content.count("<script") == content.count('type="application/json"') + content.count(
        "src="
    )


def test_portal_lab_results_log_the_read(portal_client, patient, portal_user):
    portal_client.get(reverse("portal:lab_results"))
    row = AccessLog.objects.get(user=portal_user, action=AccessLog.Action.READ)
    assert row.patient_ids == [patient.pk]
    assert row.surface == AccessLog.Surface.PAGE


# --- Symptom reports ------------------------------------------------------------------------


def test_portal_symptom_report_moderate_is_saved_without_alert(
    portal_client, patient, portal_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = portal_client.post(reverse("portal:symptoms"), VALID)
    assert response.status_code == 302
    report = SymptomReport.objects.get()
    assert (report.patient, report.reported_by) == (patient, portal_user)
    assert (report.symptom, report.severity) == ("Feeling sick (nausea)", 2)
    assert report.recall_period == "the past 7 days"
    assert default_task_backend.results == []
    page = portal_client.get(response["Location"])
    assert b"Your report was sent" in page.content
    assert b"care team has been alerted" not in page.content
    assert AccessLog.objects.filter(
        action=AccessLog.Action.CREATE, object_type="SymptomReport", object_id=str(report.pk)
    ).exists()


def test_portal_symptom_report_severe_alerts_after_commit_and_tells_what_to_do(
    portal_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = portal_client.post(
            reverse("portal:symptoms"),
            {"symptom": "other", "symptom_other": "Swollen leg", "severity": "3"},
        )
    assert response.status_code == 302
    report = SymptomReport.objects.get()
    assert (report.symptom, report.severity) == ("Swollen leg", 3)
    (queued,) = default_task_backend.results
    assert queued.task.func is notify_care_team_of_severe_symptom_report.func
    assert queued.kwargs == {"symptom_report_id": report.pk}
    page = portal_client.get(response["Location"]).content.decode()
    assert "Your care team has been alerted" in page
    # No 24-hour number on the team: never a number that is not there, but 999/112 or A&E.
    assert "24-hour number now" not in page
    assert "call 999 (or 112) now, or go to the nearest emergency department" in page
    # The confirmation is shown once (it lives in the server-side session, not a cookie).
    again = portal_client.get(reverse("portal:symptoms")).content.decode()
    assert "has been alerted" not in again


@pytest.mark.parametrize("symptom", sorted(SymptomReport.RED_FLAG_SYMPTOMS))
def test_portal_a_mild_red_flag_symptom_is_urgent_and_says_call_now(
    portal_client, patient, symptom, django_capture_on_commit_callbacks, team_phones
):
    # A mild fever during chemotherapy may be neutropenic sepsis: not a routine report.
    with django_capture_on_commit_callbacks(execute=True):
        response = portal_client.post(
            reverse("portal:symptoms"), {"symptom": symptom, "severity": "1"}
        )
    report = SymptomReport.objects.get()
    assert (report.severity, report.urgent) == (1, True)
    (queued,) = default_task_backend.results
    assert queued.kwargs == {"symptom_report_id": report.pk}
    page = portal_client.get(response["Location"]).content.decode()
    assert "Your care team has been alerted" in page
    alert = page.split('id="symptom-sent"', 1)[1].split("</section>", 1)[0]
    assert f"Call your clinic's 24-hour number now: {CALL_24H}" in alert
    assert ("38 °C" in alert) is (symptom == "Fever or chills")


@pytest.mark.parametrize(
    ("typed", "note", "kind"),
    [
        ("High temperature 38.6 and shivering", "", "fever"),
        ("Headache", "I had a fever last night", "fever"),
        ("Can't catch my breath on the stairs", "", "breath"),
        ("Nosebleed", "", "bleeding"),
    ],
)
def test_portal_a_red_flag_in_the_patients_own_words_is_urgent_and_says_call_now(
    portal_client, typed, note, kind, django_capture_on_commit_callbacks, team_phones
):
    # A tester's "High temperature 38.6 and shivering" (Something else, mild) was told "your
    # care team will see it at your next review".
    body = {"symptom": "other", "symptom_other": typed, "severity": "1", "description": note}
    with django_capture_on_commit_callbacks(execute=True):
        response = portal_client.post(reverse("portal:symptoms"), body)
    report = SymptomReport.objects.get()
    assert (report.urgent, report.red_flag) == (True, kind)
    assert len(default_task_backend.results) == 1
    page = portal_client.get(response["Location"]).content.decode()
    assert f"Call your clinic's 24-hour number now: {CALL_24H}" in page
    assert ("38 °C" in page.split('id="symptom-sent"', 1)[1]) is (kind == "fever")


@pytest.mark.parametrize("typed", ["Dry skin on my hands", "Waiting for my blood test results"])
def test_portal_words_that_are_no_red_flag_stay_routine(portal_client, typed):
    portal_client.post(
        reverse("portal:symptoms"), {"symptom": "other", "symptom_other": typed, "severity": "1"}
    )
    assert SymptomReport.objects.get().urgent is False


def test_portal_a_red_flag_reported_as_absent_is_not_urgent(portal_client):
    portal_client.post(reverse("portal:symptoms"), {"symptom": "Fever or chills", "severity": "0"})
    assert SymptomReport.objects.get().urgent is False
    assert default_task_backend.results == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**VALID, "severity": "7"}, "severity"),
        ({**VALID, "severity": "severe"}, "severity"),
        ({**VALID, "severity": ""}, "severity"),
        ({**VALID, "symptom": ""}, "symptom"),
        ({**VALID, "symptom": "Not on the list"}, "symptom"),
        ({**VALID, "symptom": "other", "symptom_other": "   "}, "symptom_other"),
        ({**VALID, "symptom_other": "Headache"}, "symptom_other"),  # typed text never dropped
        ({**VALID, "symptom": "other", "symptom_other": "Cough\x00"}, "symptom_other"),
        ({**VALID, "description": "Bad\x00night"}, "description"),
        ({**VALID, "description": "x" * 4001}, "description"),
    ],
)
def test_portal_symptom_report_rejects_bad_input(
    portal_client, data, field, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = portal_client.post(reverse("portal:symptoms"), data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert b'class="errorlist' in response.content
    assert not SymptomReport.objects.exists()
    assert default_task_backend.results == []
    assert (
        not AccessLog.objects.filter(object_type="SymptomReport")
        .exclude(action=AccessLog.Action.LIST)
        .exists()
    )


def test_portal_symptom_list_shows_own_reports_and_review_status(
    portal_client, patient, portal_user, treating_clinician
):
    seen = symptom_report_create(
        patient=patient, reported_by=portal_user, symptom="Tiredness", severity=1
    )
    symptom_report_review(report=seen, by=treating_clinician, note="MARKER-REVIEW-NOTE")
    symptom_report_create(patient=patient, reported_by=portal_user, symptom="Pain", severity=2)
    other = PatientFactory.create()
    symptom_report_create(
        patient=other,
        reported_by=UserFactory.create(),
        symptom="MARKER-OTHER-SYMPTOM",
        severity=4,
    )
    content = portal_client.get(reverse("portal:symptoms")).content.decode()
    assert "Seen by your care team" in content
    assert "Waiting for review" in content
    assert "MARKER-REVIEW-NOTE" not in content  # a clinician's note stays internal
    assert "MARKER-OTHER-SYMPTOM" not in content


def test_portal_symptom_page_logs_the_list_read(portal_client, patient, portal_user):
    portal_client.get(reverse("portal:symptoms"))
    row = AccessLog.objects.get(object_type="SymptomReport", action=AccessLog.Action.LIST)
    assert row.user == portal_user
    assert row.patient_ids == [patient.pk]


# --- Care team and access history -----------------------------------------------------------


def test_portal_care_team_lists_members_with_discipline(
    portal_client, patient, treating_clinician, portal_user
):
    treating_clinician.first_name, treating_clinician.last_name = "Grace", "Hopper"
    treating_clinician.save()
    response = portal_client.get(reverse("portal:care_team"))
    content = response.content.decode()
    assert "Grace Hopper" in content
    assert "Oncologist" in content
    assert AccessLog.objects.filter(
        user=portal_user, action=AccessLog.Action.READ, patient_ids=[patient.pk]
    ).exists()


def test_portal_access_history_shows_who_without_ids(
    portal_client, login, patient, treating_clinician
):
    treating_clinician.first_name, treating_clinician.last_name = "Grace", "Hopper"
    treating_clinician.save()
    clinician_client = login(Client(), treating_clinician)
    assert (
        clinician_client.get(reverse("patients:patient_detail", args=[patient.pk])).status_code
        == 200
    )
    response = portal_client.get(reverse("portal:access_history"))
    content = response.content.decode()
    assert "Grace Hopper" in content
    assert "Oncologist" in content
    assert "Viewed: your record" in content
    assert "You" in content  # the patient's own reads, this one included
    assert patient.mrn not in content
    assert f"/patients/{patient.pk}/" not in content


def test_portal_access_history_logs_the_read(portal_client, patient, portal_user):
    portal_client.get(reverse("portal:access_history"))
    assert AccessLog.objects.filter(
        user=portal_user, action=AccessLog.Action.READ, patient_ids=[patient.pk]
    ).exists()


def test_portal_access_history_query_count_is_flat(
    portal_client, django_assert_max_num_queries, treating_clinician, login
):
    clinician_client = login(Client(), treating_clinician)
    portal_client.get(reverse("portal:access_history"))
    for _ in range(5):
        clinician_client.get(reverse("home"))
    with django_assert_max_num_queries(15):
        portal_client.get(reverse("portal:access_history"))
