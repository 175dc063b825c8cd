from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessLog
from labs.models import Flag
from labs.tests.factories import LabResultFactory
from patients.dashboard import dose_levels_by_cycle
from patients.models import BodyMeasurement
from patients.services import emergency_access_open
from patients.tests.dashboard_world import (
    anc_test,
    course_with_cycles,
    lab_history,
    regimen_with_anc_rules,
)
from patients.tests.factories import PatientFactory
from treatments.models import Drug
from treatments.services import dose_percent_for
from treatments.tests.factories import (
    AdministrationFactory,
    CtcaeTermFactory,
    DoseModificationFactory,
    SideEffectFactory,
)

pytestmark = pytest.mark.django_db


def _url(patient) -> str:
    return reverse("patients:patient_detail", args=[patient.pk])


def test_dashboard_shows_delay_with_the_anc_evidence(client, login, patient, treating_clinician):
    anc = anc_test()
    regimen = regimen_with_anc_rules(anc=anc)
    course_with_cycles(patient, regimen=regimen, given=2, total=12)
    lab_history(patient, test=anc, count=3, latest_value="1.2")
    login(client, treating_clinician)

    response = client.get(_url(patient))

    assert response.status_code == 200
    board = response.context["board"]
    assert board.readiness.outcome == "delay"
    assert board.readiness.delay_days == 7
    html = response.content.decode()
    assert "Delay 7 days" in html
    assert "1.2 ×10³/µL" in html  # the value that decided, with its unit
    assert "ANC ≥ 1 ×10³/µL" in html  # the rule that matched
    assert "needs ≤ 3 d" in html


def test_cycle_page_shows_the_same_readiness_evidence_as_the_dashboard(
    client, login, patient, treating_clinician
):
    anc = anc_test()
    course = course_with_cycles(patient, regimen=regimen_with_anc_rules(anc=anc), given=2, total=12)
    lab_history(patient, test=anc, count=3, latest_value="1.2")
    login(client, treating_clinician)
    cycle_url = reverse("treatments:cycle_detail", args=[patient.pk, course.pk, 3])

    dashboard_html = client.get(_url(patient)).content.decode()
    cycle_html = client.get(cycle_url).content.decode()

    for html in (dashboard_html, cycle_html):
        assert "1.2 ×10³/µL" in html
        assert "ANC ≥ 1 ×10³/µL" in html  # as the lab writes it, not "ANC >= 1.0000 -> Delay"
        assert "needs ≤ 3 d" in html
        assert "{#" not in html  # no template comment or tag leaks onto the page
        assert "{%" not in html


def test_dashboard_missing_labs_are_not_evaluable(client, login, patient, treating_clinician):
    course_with_cycles(patient, regimen=regimen_with_anc_rules(), given=1, total=6)
    login(client, treating_clinician)

    html = client.get(_url(patient)).content.decode()

    assert "Not evaluable" in html
    assert "No result" in html
    assert "OK to treat" not in html


def test_dashboard_stale_labs_are_not_evaluable(client, login, patient, treating_clinician):
    anc = anc_test()
    course_with_cycles(patient, regimen=regimen_with_anc_rules(anc=anc), given=1, total=6)
    LabResultFactory.create(
        patient=patient,
        test=anc,
        value=Decimal("2.4"),
        collected_at=timezone.now() - dt.timedelta(days=5),
    )
    login(client, treating_clinician)

    board = client.get(_url(patient)).context["board"]

    assert board.badge.label == "Not evaluable"
    assert board.readiness.analytes[0].outcome == "stale"


def test_dashboard_hides_patient_from_outsider(client, login, patient, other_clinician):
    login(client, other_clinician)
    assert client.get(_url(patient)).status_code == 404
    assert client.get(reverse("patients:patient_detail", args=[999999])).status_code == 404


def test_dashboard_read_is_one_page_log_row(client, login, patient, treating_clinician):
    anc = anc_test()
    course_with_cycles(patient, regimen=regimen_with_anc_rules(anc=anc), given=2, total=6)
    lab_history(patient, test=anc, count=5, latest_value="2.0")
    login(client, treating_clinician)
    before = set(AccessLog.objects.values_list("pk", flat=True))

    client.get(_url(patient))

    rows = [r for r in AccessLog.objects.all() if r.pk not in before]
    assert len(rows) == 1
    assert rows[0].action == "read"
    assert rows[0].surface == "page"
    assert rows[0].patient_id == patient.pk
    assert rows[0].object_type == "Patient"
    assert rows[0].object_id == str(patient.pk)


def test_dashboard_shows_the_access_log_to_the_care_team(
    client, login, patient, treating_clinician
):
    login(client, treating_clinician)
    html = client.get(_url(patient)).content.decode()
    assert 'id="access-log"' in html
    assert treating_clinician.username in html  # this very read is listed


def test_dashboard_hides_the_access_log_under_break_glass(client, login, patient, other_clinician):
    emergency_access_open(
        user=other_clinician, patient_id=patient.pk, reason="Febrile neutropenia in the ED now"
    )
    login(client, other_clinician)
    response = client.get(_url(patient))
    assert response.status_code == 200
    assert 'id="access-log"' not in response.content.decode()
    assert "Emergency access" in response.content.decode()


def test_dashboard_lists_emergency_accesses_to_the_care_team_only(
    client, login, patient, treating_clinician, other_clinician
):
    reason = "Febrile neutropenia in the ED now"
    login(client, treating_clinician)
    assert 'id="emergency-accesses"' not in client.get(_url(patient)).content.decode()
    emergency_access_open(user=other_clinician, patient_id=patient.pk, reason=reason)
    html = client.get(_url(patient)).content.decode()
    assert 'id="emergency-accesses"' in html
    assert reason in html
    login(client, other_clinician)  # the visitor sees the banner, not the list of colleagues
    html = client.get(_url(patient)).content.decode()
    assert 'id="emergency-accesses"' not in html
    assert reason not in html


def test_dashboard_header_shows_latest_height_weight_and_bsa(
    client, login, patient, treating_clinician
):
    BodyMeasurement.objects.create(
        patient=patient,
        measured_on=dt.date(2026, 1, 5),
        height_cm=Decimal("170"),
        weight_kg=Decimal("80"),
    )
    BodyMeasurement.objects.create(
        patient=patient, measured_on=dt.date(2026, 2, 2), weight_kg=Decimal("70")
    )
    login(client, treating_clinician)
    html = client.get(_url(patient)).content.decode()
    assert "170.0 cm" in html
    assert "70.0 kg" in html
    assert "2 Feb 2026" in html
    assert "1.82 m²" in html  # sqrt(170 x 70 / 3600)


def test_dashboard_timeline_shows_delay_reason_and_dose_level(
    client, login, patient, treating_clinician
):
    course = course_with_cycles(patient, regimen=regimen_with_anc_rules(), given=2, total=4)
    cycle3 = course.cycles.get(number=3)
    cycle3.status, cycle3.reason = "delayed", "ANC 1.2 on day 14"
    cycle3.save()
    DoseModificationFactory.create(
        course=course, from_cycle_number=2, percent=Decimal("80"), reason="Grade 3 neutropenia"
    )
    login(client, treating_clinician)
    html = client.get(_url(patient)).content.decode()
    assert "ANC 1.2 on day 14" in html
    assert "Oxaliplatin 80%" in html
    assert "Delayed" in html


def test_dose_levels_by_cycle_match_dose_percent_for(patient, admin_user):
    course = course_with_cycles(patient, regimen=regimen_with_anc_rules(), given=0, total=6)
    oxaliplatin = Drug.objects.get(name="Oxaliplatin")
    DoseModificationFactory.create(course=course, from_cycle_number=2, percent=Decimal("80"))
    DoseModificationFactory.create(
        course=course, drug=oxaliplatin, from_cycle_number=4, percent=Decimal("60")
    )
    DoseModificationFactory.create(course=course, from_cycle_number=5, percent=Decimal("100"))
    levels = dose_levels_by_cycle(
        modifications=list(course.dose_modifications.all()),
        drugs=[oxaliplatin],
        cycle_numbers=range(1, 7),
    )
    for number in range(1, 7):
        expected, _ = dose_percent_for(course=course, cycle_number=number, drug=oxaliplatin)
        shown = dict(levels[number]).get("Oxaliplatin", Decimal(100))
        assert shown == expected, number


def test_dashboard_side_effects_show_grade_and_ctcae_version(
    client, login, patient, treating_clinician
):
    term = CtcaeTermFactory.create(term="Peripheral sensory neuropathy", version="5.0")
    SideEffectFactory.create(patient=patient, term=term, grade=3, onset=dt.date(2026, 2, 1))
    login(client, treating_clinician)
    html = client.get(_url(patient)).content.decode()
    assert "Peripheral sensory neuropathy" in html
    assert "Grade 3" in html
    assert "CTCAE v5.0" in html
    assert "not acknowledged" in html


def test_dashboard_warns_near_the_lifetime_limit(client, login, patient, treating_clinician):
    regimen = regimen_with_anc_rules()
    course = course_with_cycles(patient, regimen=regimen, given=1, total=2)
    Drug.objects.filter(name="Oxaliplatin").update(lifetime_limit_mg_m2=Decimal("100"))
    # 154.7 mg at BSA 1.82 m² = 85.0 mg/m²: 85 % of a 100 mg/m² limit, past the 80 % warning.
    AdministrationFactory.create(cycle=course.cycles.get(number=1))
    login(client, treating_clinician)
    html = client.get(_url(patient)).content.decode()
    assert "85 mg/m²" in html
    assert "100 mg/m²" in html
    assert "85% of limit" in html


def test_dashboard_writes_large_cumulative_doses_grouped(
    client, login, patient, treating_clinician
):
    # A fluorouracil infusion of 4,368 mg at BSA 1.82 m² is 2,400 mg/m²; seven of them are
    # 16,800 mg/m², which a reader must not take for 1,680.0.
    course = course_with_cycles(patient, regimen=regimen_with_anc_rules(), given=7, total=8)
    for cycle in course.cycles.filter(number__lte=7):
        AdministrationFactory.create(cycle=cycle, dose_mg=Decimal("4368"), standard_dose_mg=4368)
    login(client, treating_clinician)
    html = client.get(_url(patient)).content.decode()
    assert "16,800 mg/m²" in html


def test_dashboard_lists_open_critical_results(client, login, patient, treating_clinician):
    anc = anc_test()
    LabResultFactory.create(
        patient=patient,
        test=anc,
        value=Decimal("0.3"),
        flag=Flag.CRITICAL_LOW,
        collected_at=timezone.now() - dt.timedelta(hours=1),
    )
    login(client, treating_clinician)
    html = client.get(_url(patient)).content.decode()
    assert 'id="open-alerts"' in html
    assert "Critical low" in html


def test_dashboard_critical_result_links_to_its_item_in_the_inbox(
    client, login, patient, treating_clinician
):
    result = LabResultFactory.create(
        patient=patient,
        test=anc_test(),
        value=Decimal("0.3"),
        flag=Flag.CRITICAL_LOW,
        collected_at=timezone.now() - dt.timedelta(hours=1),
    )
    login(client, treating_clinician)
    html = client.get(_url(patient)).content.decode()
    link = f"{reverse('labs:inbox')}#inbox-lab-{result.pk}"
    assert f'href="{link}">acknowledge</a>' in html
    inbox = client.get(reverse("labs:inbox")).content.decode()
    assert f'id="inbox-lab-{result.pk}"' in inbox  # the anchor lands on the item to acknowledge


def test_dashboard_alerts_an_unacknowledged_grade_3_side_effect_however_old(
    client, login, patient, treating_clinician
):
    today = timezone.localdate()
    old = SideEffectFactory.create(patient=patient, grade=3, onset=today - dt.timedelta(days=60))
    for day in range(12):  # twelve newer, milder ones push it off the recent list
        SideEffectFactory.create(patient=patient, grade=1, onset=today - dt.timedelta(days=day))
    login(client, treating_clinician)

    response = client.get(_url(patient))

    board = response.context["board"]
    assert old not in board.side_effects
    assert len(board.side_effects) == 10
    assert board.severe_side_effects == [old]
    html = response.content.decode()
    alerts = html[
        html.index('id="open-alerts"') : html.index("</section>", html.index('id="open-alerts"'))
    ]
    assert f"{old.term.term}" in alerts
    assert f"{reverse('labs:inbox')}#inbox-side_effect-{old.pk}" in alerts


def test_dashboard_links_lab_trends(client, login, patient, treating_clinician):
    login(client, treating_clinician)
    html = client.get(_url(patient)).content.decode()
    assert 'id="lab-trends"' in html
    assert f"/patients/{patient.pk}/labs/" in html


def _count(client, patient, *, kept: bool = False) -> int:
    if not kept:
        caches["charts"].clear()  # the chart rendered afresh
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(_url(patient))
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_dashboard_query_count_is_flat_in_history_length(
    client, login, care_team, treating_clinician, admin_user
):
    from patients.services import patient_create

    def new_patient():
        fields = PatientFactory.build()
        return patient_create(
            created_by=None,
            care_team=care_team,
            mrn=fields.mrn,
            given_name=fields.given_name,
            family_name=fields.family_name,
            date_of_birth=fields.date_of_birth,
            sex="female",
        )

    anc = anc_test()
    regimen = regimen_with_anc_rules(anc=anc, cycles=12)
    short, long = new_patient(), new_patient()
    for p, given, labs in ((short, 2, 50), (long, 11, 500)):
        course = course_with_cycles(p, regimen=regimen, given=given, total=12)
        lab_history(p, test=anc, count=labs, latest_value="1.8")
        DoseModificationFactory.create(course=course, from_cycle_number=2, percent=Decimal("80"))
        SideEffectFactory.create(patient=p, grade=2)
        BodyMeasurement.objects.create(
            patient=p,
            measured_on=dt.date(2026, 1, 5),
            height_cm=Decimal("165"),
            weight_kg=Decimal("60"),
        )
    for cycle in long.courses.get().cycles.all()[:6]:
        AdministrationFactory.create(cycle=cycle)
    login(client, treating_clinician)
    _count(client, short)  # warm caches (content types, permissions)

    few, many = _count(client, short), _count(client, long)

    assert few == many
    # 19 = 17 for the dashboard + 2 for the session (load session and user). The dashboard's:
    # one gate query that also says whether the care team opened the chart and whether anyone
    # ever broke the glass (no query for an empty emergency-access list), the audit insert,
    # who accessed the record (two reads: rows about this patient alone, list views that
    # showed it), the header (latest height and weight, care team), one per section
    # (allergies: one query, current and entered in error together), and the day unit's own
    # closure days, read once for every cycle date marked (treatments.schedule).
    # Back-to-back clicks do not rewrite the session (the activity stamp is every 30 s).
    assert many == 19
    # Shown again with nothing changed: the kept chart. Session and user, the gate (which reads
    # the chart's tokens), its access-log row, and who accessed the record (two reads).
    assert _count(client, long, kept=True) == 6


def test_dashboard_listens_for_live_changes_and_refreshes_only_its_body(
    client, treating_clinician, patient
):
    from django.urls import reverse

    client.force_login(treating_clinician)
    url = reverse("patients:patient_detail", args=[patient.pk])
    page = client.get(url).content.decode()
    assert f'sse-connect="/stream/changes/?patient={patient.pk}"' in page
    assert 'hx-trigger="sse:change"' in page
    refresh = client.get(
        url,
        headers={
            "HX-Request": "true",
            "HX-Target": "dashboard-live",
            "X-OncoPlanner-Background": "1",
        },
    )
    assert refresh.status_code == 200
    body = refresh.content.decode()
    assert "<html" not in body
    assert body.lstrip().startswith('<div id="dashboard-live"')
    assert patient.mrn in body


def test_dashboard_links_to_planning_a_course(client, login, patient, treating_clinician):
    login(client, treating_clinician)
    html = client.get(_url(patient)).content.decode()
    plan = reverse("treatments:course_create", args=[patient.pk])
    assert f'href="{plan}" id="plan-course">Plan a course from the regimen library' in html
