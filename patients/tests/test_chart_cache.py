"""The dashboard's chart is kept rendered per state of its records (patients.chart_cache): a
kept chart is never older than the records, never another viewer's, and every view is still
gated and logged."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AccessLog
from labs.models import Flag
from labs.tests.factories import LabResultFactory
from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import ClinicianFactory, sign_in
from patients import chart_cache
from patients.models import DataVersion
from patients.services import (
    allergy_record,
    care_team_add_member,
    care_team_update,
    emergency_access_open,
    measurement_record,
    symptom_report_create,
)
from patients.tests.factories import patient_through_service

NOW = dt.datetime(2026, 3, 20, 12, 0, 10, tzinfo=dt.UTC)
# Session and user, the gate (reading the chart's tokens with the patient), its access-log
# row, and who accessed the record (two index-ordered reads: the rows about this patient
# alone, the list views that showed it): what a kept chart costs.
KEPT_CHART_QUERIES = 6


@pytest.fixture(autouse=True)
def frozen() -> object:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _url(patient) -> str:
    return reverse("patients:patient_detail", args=[patient.pk])


def _view(client: Client, patient) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(_url(patient))
    assert response.status_code == 200
    return response.content.decode(), len(ctx.captured_queries)


def _tokens() -> dict[str, str]:
    return {row.key: str(row.token) for row in DataVersion.objects.all()}


@pytest.fixture
def nurse(care_team, admin_user) -> User:
    user = ClinicianFactory.create(
        discipline=User.Discipline.NURSE, first_name="Ingrid", last_name="Fjellstad"
    )
    care_team_add_member(team=care_team, clinician=user, granted_by=admin_user)
    return user


def test_a_second_view_with_nothing_changed_is_the_kept_chart(
    client, login, patient, treating_clinician
):
    login(client, treating_clinician)
    first, rendered = _view(client, patient)
    tokens = _tokens()

    again, kept = _view(client, patient)

    assert kept == KEPT_CHART_QUERIES < rendered
    assert _tokens() == tokens  # reading writes no token: reads stay hits
    # Per response: the viewer's CSRF token (forms, htmx headers) and the scripts' nonce.
    strip = re.compile(r'(name="csrfmiddlewaretoken" value=|nonce=|"X-CSRFToken": )"[^"]+"')
    # The same page; only who accessed the record (read afresh: this view) has moved on.
    chart = lambda html: strip.sub("", html.split('id="access-log"')[0])  # noqa: E731
    assert chart(again) == chart(first)


def test_every_view_is_gated_and_logged_kept_or_not(
    client, login, patient, treating_clinician, other_clinician
):
    login(client, treating_clinician)
    reads = AccessLog.objects.filter(patient_id=patient.pk, action=AccessLog.Action.READ)
    before = reads.count()
    _view(client, patient)
    _view(client, patient)
    assert reads.count() == before + 2

    login(client, other_clinician)  # not on the team: the kept chart is not reached
    assert client.get(_url(patient)).status_code == 404


WRITES = {
    "allergy": (
        lambda p, by: allergy_record(
            patient=p,
            substance="Zoledronic acid",
            recorded_by=by,
            severity="severe",
            reaction="Anaphylaxis",
        ),
        "Zoledronic acid",
    ),
    "weight": (
        lambda p, by: measurement_record(
            patient=p,
            measured_on=dt.date(2026, 3, 19),
            height_cm=Decimal("171.0"),
            weight_kg=Decimal("63.4"),
            recorded_by=by,
        ),
        "63.4 kg",
    ),
    "symptom report": (
        lambda p, by: symptom_report_create(
            patient=p,
            reported_by=by,
            symptom="Mouth sores",
            severity=1,
            description="Two small ulcers since Tuesday, eating soft food.",
        ),
        "Two small ulcers since Tuesday",
    ),
    "critical lab result": (
        lambda p, by: LabResultFactory.create(
            patient=p, flag=Flag.CRITICAL_LOW, collected_at=NOW - dt.timedelta(hours=2)
        ),
        'id="open-alerts"',
    ),
}


@pytest.mark.parametrize("write", WRITES, ids=list(WRITES))
def test_a_write_to_the_patients_records_shows_on_the_next_view(
    write, client, login, patient, treating_clinician
):
    make, shown = WRITES[write]
    login(client, treating_clinician)
    html, _ = _view(client, patient)
    assert shown not in html

    make(patient, treating_clinician)

    html, queries = _view(client, patient)
    assert shown in html
    assert queries > KEPT_CHART_QUERIES  # rendered again


def test_a_write_to_another_patients_records_keeps_this_chart(
    client, login, care_team, patient, treating_clinician
):
    other = patient_through_service(care_team, family_name="Quennell", mrn="QUEN-0001")
    login(client, treating_clinician)
    _view(client, patient)
    allergy_record(patient=other, substance="Latex", recorded_by=treating_clinician)
    assert _view(client, patient)[1] == KEPT_CHART_QUERIES


def test_a_change_to_shared_data_shows_on_the_next_view(
    client, login, care_team, patient, treating_clinician
):
    login(client, treating_clinician)
    assert "Care team: GI oncology" in _view(client, patient)[0]

    care_team_update(team=care_team, updated_by=None, name="Upper GI oncology")

    assert "Care team: Upper GI oncology" in _view(client, patient)[0]


def test_a_clinicians_new_name_shows_where_the_chart_names_them(
    client, login, patient, treating_clinician
):
    allergy_record(patient=patient, substance="Iodine contrast", recorded_by=treating_clinician)
    login(client, treating_clinician)
    _view(client, patient)

    treating_clinician.last_name = "Abernethy-Okonjo"
    treating_clinician.save()

    assert "Abernethy-Okonjo" in _view(client, patient)[0]


def test_signing_in_is_not_a_change(client, patient, treating_clinician):
    sign_in(client, treating_clinician)
    _view(client, patient)
    treating_clinician.save(update_fields=["last_login"])  # what every login does
    assert _view(client, patient)[1] == KEPT_CHART_QUERIES


def test_each_viewer_gets_the_chart_for_what_they_may_do(
    patient, treating_clinician, nurse, client
):
    plan = 'id="plan-course"'
    nurse_client = sign_in(Client(), nurse)
    sign_in(client, treating_clinician)

    assert plan in _view(client, patient)[0]  # the oncologist's chart, kept
    assert plan not in _view(nurse_client, patient)[0]  # not served to the nurse
    assert plan in _view(client, patient)[0]


def test_a_non_medical_prescriber_and_an_oncologist_never_get_each_others_chart(
    patient, treating_clinician, care_team, admin_user, client
):
    # A non-medical prescriber prescribes cycles but does not decide to treat: no "Plan a
    # course", whichever of the two opened the chart first.
    prescribing_nurse = ClinicianFactory.create(
        discipline=User.Discipline.NURSE, sact_prescriber=True
    )
    care_team_add_member(team=care_team, clinician=prescribing_nurse, granted_by=admin_user)
    plan = 'id="plan-course"'
    nurse_client = sign_in(Client(), prescribing_nurse)
    sign_in(client, treating_clinician)

    first, _ = _view(nurse_client, patient)
    assert plan not in first
    assert "A course is planned by an oncologist." in first
    assert plan in _view(client, patient)[0]  # not the nurse's kept chart
    assert plan not in _view(nurse_client, patient)[0]  # nor the oncologist's


def test_a_break_glass_visitor_never_gets_the_care_teams_chart(
    client, patient, treating_clinician, other_clinician
):
    sign_in(client, treating_clinician)
    team_html, _ = _view(client, patient)
    assert 'id="access-log"' in team_html

    visitor = sign_in(Client(), other_clinician)
    emergency_access_open(
        user=other_clinician,
        patient_id=patient.pk,
        reason="Seen in the emergency department overnight, team unreachable",
    )
    html, _ = _view(visitor, patient)

    assert "Emergency access." in html
    assert 'id="access-log"' not in html  # names colleagues: the care team only


def test_a_kept_charts_forms_carry_the_viewers_own_csrf_token(patient, treating_clinician, nurse):
    first = sign_in(Client(enforce_csrf_checks=True), treating_clinician)
    second = sign_in(Client(enforce_csrf_checks=True), nurse)
    _view(first, patient)
    html, queries = _view(second, patient)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)

    assert chart_cache.CSRF_PLACEHOLDER not in html
    response = second.post(
        reverse("patients:allergy_none_known", args=[patient.pk]),
        {"csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302  # accepted: the token is the nurse's own
    assert "No known allergies" in _view(second, patient)[0]


def test_a_minute_later_the_chart_is_rendered_again(
    client, login, patient, treating_clinician, frozen
):
    # "collected 2 hours ago", "evaluated 12:00": time alone changes what the chart says.
    LabResultFactory.create(
        patient=patient, flag=Flag.CRITICAL_LOW, collected_at=NOW - dt.timedelta(hours=2)
    )
    login(client, treating_clinician)
    assert "(2\xa0hours ago)" in _view(client, patient)[0]

    frozen.shift(dt.timedelta(seconds=61))

    html, queries = _view(client, patient)
    assert queries > KEPT_CHART_QUERIES
    assert "(2\xa0hours, 1\xa0minute ago)" in html


def test_a_form_with_errors_is_never_kept(client, login, patient, treating_clinician):
    login(client, treating_clinician)
    url = reverse("patients:allergy_create", args=[patient.pk])
    response = client.post(url, {"substance": "", "category": "medication"})
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()

    html, _ = _view(client, patient)
    assert "errorlist" not in html


def test_with_the_cache_off_every_view_is_rendered(
    client, login, patient, treating_clinician, settings
):
    settings.CHART_CACHE = False
    login(client, treating_clinician)
    _, first = _view(client, patient)
    assert _view(client, patient)[1] == first > KEPT_CHART_QUERIES
