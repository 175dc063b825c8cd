from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessLog
from labs.models import Flag, PreCycleAction
from labs.tests.factories import LabResultFactory, PreCycleRuleFactory
from patients.services import care_team_create, patient_create
from patients.tests.dashboard_world import (
    anc_test,
    course_with_cycles,
    lab_history,
    regimen_with_anc_rules,
)
from patients.tests.factories import PatientFactory
from treatments.tests.factories import SideEffectFactory, regimen_approved, regimen_create

pytestmark = pytest.mark.django_db
URL = reverse("patients:patient_list")


def _patient(team, *, family_name=None, mrn=None):
    fields = PatientFactory.build()
    return patient_create(
        created_by=None,
        care_team=team,
        mrn=mrn or fields.mrn,
        given_name=fields.given_name,
        family_name=family_name or fields.family_name,
        date_of_birth=fields.date_of_birth,
        sex="female",
        primary_diagnosis="Adenocarcinoma of the sigmoid colon",
    )


@pytest.fixture
def foreign_patient(db):
    """A patient on another team, in need of attention and due this week: never in my list."""
    team = care_team_create(name="Breast oncology")
    foreign = _patient(team, family_name="Foreigner", mrn="FOREIGN-1")
    anc = anc_test()
    course_with_cycles(
        foreign,
        regimen=regimen_with_anc_rules(anc=anc),
        given=1,
        total=4,
        start=timezone.localdate() - dt.timedelta(days=14),
    )
    LabResultFactory.create(
        patient=foreign,
        test=anc,
        value=Decimal("0.3"),
        flag=Flag.CRITICAL_LOW,
        collected_at=timezone.now(),
    )
    return foreign


def test_patient_list_shows_care_team_patients(client, login, patient, treating_clinician):
    login(client, treating_clinician)
    response = client.get(URL)
    assert response.status_code == 200
    assert patient.mrn in response.content.decode()


@pytest.mark.parametrize("filter_", ["mine", "due", "attention"])
def test_patient_list_filters_show_nothing_foreign(
    client, login, patient, treating_clinician, foreign_patient, filter_
):
    login(client, treating_clinician)
    response = client.get(URL, {"filter": filter_})
    assert response.status_code == 200
    assert "FOREIGN-1" not in response.content.decode()
    assert foreign_patient.pk not in [row.patient.pk for row in response.context["listing"].rows]


def test_patient_list_outsider_sees_none_of_our_patients(client, login, patient, other_clinician):
    login(client, other_clinician)
    response = client.get(URL, {"q": patient.mrn})
    assert response.status_code == 200
    assert response.context["listing"].total == 0
    assert f"MRN {patient.mrn}" not in response.content.decode()  # no row (the box echoes q)


def test_patient_list_is_not_for_portal_users_or_administrators(client, login, admin_user):
    login(client, admin_user)
    assert client.get(URL).status_code == 404


def test_patient_list_search_by_mrn(client, login, care_team, treating_clinician):
    _patient(care_team, family_name="Okafor", mrn="MRN-4471")
    _patient(care_team, family_name="Lindqvist", mrn="MRN-9902")
    login(client, treating_clinician)
    rows = client.get(URL, {"q": "mrn-4471"}).context["listing"].rows
    assert [row.patient.family_name for row in rows] == ["Okafor"]


def test_patient_list_search_by_name_words(client, login, care_team, treating_clinician):
    _patient(care_team, family_name="Okafor", mrn="MRN-4471")
    _patient(care_team, family_name="Lindqvist", mrn="MRN-9902")
    login(client, treating_clinician)
    rows = client.get(URL, {"q": "lindq"}).context["listing"].rows
    assert [row.patient.mrn for row in rows] == ["MRN-9902"]


def test_patient_list_htmx_search_returns_only_the_table(
    client, login, patient, treating_clinician
):
    login(client, treating_clinician)
    response = client.get(URL, {"q": patient.family_name}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert 'id="patient-table"' in html
    assert patient.mrn in html


def test_patient_list_paginates_25_per_page(client, login, care_team, treating_clinician):
    for i in range(30):
        _patient(care_team, family_name=f"Patient{i:02d}", mrn=f"PAGE-{i:03d}")
    login(client, treating_clinician)
    first = client.get(URL).context["listing"]
    second = client.get(URL, {"page": 2}).context["listing"]
    assert first.total == 30
    assert len(first.rows) == 25
    assert len(second.rows) == 5
    assert second.rows[-1].patient.family_name == "Patient29"


def test_patient_list_unknown_filter_is_400_with_a_message(client, login, treating_clinician):
    login(client, treating_clinician)
    response = client.get(URL, {"filter": "everyone"})
    assert response.status_code == 400
    assert "Unknown filter everyone" in response.content.decode()


def test_patient_list_readiness_badges(client, login, care_team, treating_clinician):
    anc = anc_test()
    regimen = regimen_with_anc_rules(anc=anc)
    delayed = _patient(care_team, family_name="Aalto", mrn="READY-1")
    missing = _patient(care_team, family_name="Berg", mrn="READY-2")
    course_with_cycles(delayed, regimen=regimen, given=2, total=6)
    course_with_cycles(missing, regimen=regimen, given=2, total=6)
    lab_history(delayed, test=anc, count=2, latest_value="1.2")
    login(client, treating_clinician)
    response = client.get(URL)
    badges = {
        row.patient.mrn: row.badge.label for row in response.context["listing"].rows if row.badge
    }
    assert badges == {"READY-1": "Delay 7 days", "READY-2": "Not evaluable"}
    assert "Not evaluable" in response.content.decode()
    assert "cycle 3/6" in response.content.decode()


def test_patient_list_attention_filter(client, login, care_team, treating_clinician):
    anc = anc_test()
    regimen = regimen_with_anc_rules(anc=anc)
    calm = _patient(care_team, family_name="Calm", mrn="CALM-1")
    course_with_cycles(calm, regimen=regimen, given=1, total=4)
    lab_history(calm, test=anc, count=1, latest_value="2.5")
    not_ready = _patient(care_team, family_name="Notready", mrn="NR-1")
    course_with_cycles(not_ready, regimen=regimen, given=1, total=4)  # no labs: not evaluable
    severe = _patient(care_team, family_name="Severe", mrn="SEV-1")
    SideEffectFactory.create(patient=severe, grade=3)
    critical = _patient(care_team, family_name="Critical", mrn="CRIT-1")
    LabResultFactory.create(
        patient=critical,
        test=anc,
        value=Decimal("0.3"),
        flag=Flag.CRITICAL_LOW,
        collected_at=timezone.now(),
    )
    login(client, treating_clinician)
    rows = client.get(URL, {"filter": "attention"}).context["listing"].rows
    assert sorted(row.patient.mrn for row in rows) == ["CRIT-1", "NR-1", "SEV-1"]
    by_mrn = {row.patient.mrn: row.attention for row in rows}
    assert by_mrn["CRIT-1"] == ["Critical result"]
    assert by_mrn["SEV-1"] == ["Grade ≥3 side effect"]


def test_patient_list_a_cycle_ten_days_away_without_labs_is_labs_due_not_attention(
    client, login, care_team, treating_clinician
):
    anc = anc_test()
    regimen = regimen_with_anc_rules(anc=anc)
    later = _patient(care_team, family_name="Later", mrn="LATER-1")
    # Cycle 2 in ten days; the ANC drawn today will be too old (3 days) by then.
    course_with_cycles(
        later, regimen=regimen, given=1, total=4, start=timezone.localdate() - dt.timedelta(days=4)
    )
    lab_history(later, test=anc, count=1, latest_value="0.9")  # at the nadir: expected
    login(client, treating_clinician)

    page = client.get(URL)
    mine = page.context["listing"].rows
    assert [(row.patient.mrn, row.badge.label) for row in mine] == [("LATER-1", "Labs due")]
    # ... and the list says what the count in hand says today, so "Labs due" never reads as
    # "all well" (a reviewer scanned past a Delay).
    assert mine[0].badge.now == "now ANC: Hold"
    assert "now ANC: Hold" in page.content.decode()
    attention = client.get(URL, {"filter": "attention"}).context["listing"].rows
    assert attention == []


def test_patient_list_a_critical_count_this_week_is_attention_even_before_the_cycle_day(
    client, login, care_team, treating_clinician
):
    # A tester's case: ANC 0.3 (critical) drawn today, cycle 2 in ten days. "Labs due" hid it.
    anc = anc_test()
    regimen = regimen_with_anc_rules(anc=anc)
    later = _patient(care_team, family_name="Later", mrn="LATER-1")
    course_with_cycles(
        later, regimen=regimen, given=1, total=4, start=timezone.localdate() - dt.timedelta(days=4)
    )
    LabResultFactory.create(
        patient=later,
        test=anc,
        value=Decimal("0.3"),
        flag=Flag.CRITICAL_LOW,
        collected_at=timezone.now() - dt.timedelta(hours=2),
    )
    login(client, treating_clinician)

    attention = client.get(URL, {"filter": "attention"}).context["listing"].rows
    assert [row.patient.mrn for row in attention] == ["LATER-1"]
    assert attention[0].badge.label != "Labs due"
    dashboard = client.get(reverse("patients:patient_detail", args=[later.pk])).content.decode()
    assert "Too old by the cycle day (now: Hold)" in dashboard
    assert "As it stands: ANC 0.3 ×10³/µL" in dashboard


def test_patient_list_due_this_week(client, login, care_team, treating_clinician):
    regimen = regimen_with_anc_rules()
    today = timezone.localdate()
    due = _patient(care_team, family_name="Due", mrn="DUE-1")
    later = _patient(care_team, family_name="Later", mrn="LATER-1")
    course_with_cycles(due, regimen=regimen, given=0, total=4, start=today)
    course_with_cycles(later, regimen=regimen, given=0, total=4, start=today + dt.timedelta(days=8))
    login(client, treating_clinician)
    rows = client.get(URL, {"filter": "due"}).context["listing"].rows
    assert [row.patient.mrn for row in rows] == ["DUE-1"]


# On a Wednesday: "this week" ends on Sunday, and two days ahead of a Saturday is next week.
@time_machine.travel(dt.datetime(2026, 3, 18, 12, 0, tzinfo=dt.UTC), tick=False)
def test_patient_list_due_this_week_is_soonest_first_and_marks_an_overdue_cycle(
    client, login, care_team, treating_clinician
):
    regimen = regimen_with_anc_rules()
    today = timezone.localdate()
    for name, mrn, days in (("Aalto", "SOON-2", 2), ("Berg", "LATE-1", -3), ("Cole", "SOON-1", 0)):
        patient = _patient(care_team, family_name=name, mrn=mrn)
        course_with_cycles(
            patient, regimen=regimen, given=0, total=4, start=today + dt.timedelta(days=days)
        )
    login(client, treating_clinician)
    response = client.get(URL, {"filter": "due"})
    rows = response.context["listing"].rows
    assert [row.patient.mrn for row in rows] == ["LATE-1", "SOON-1", "SOON-2"]
    html = response.content.decode()
    assert html.count('<span class="badge warn">overdue</span>') == 1


def test_patient_list_logs_one_list_row_for_the_patients_shown(
    client, login, patient, treating_clinician
):
    login(client, treating_clinician)
    before = set(AccessLog.objects.values_list("pk", flat=True))
    client.get(URL)
    rows = [r for r in AccessLog.objects.all() if r.pk not in before]
    assert len(rows) == 1
    assert rows[0].action == "list"
    assert rows[0].surface == "page"
    assert rows[0].patient_ids == [patient.pk]


def _count(client, params) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(URL, params).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("filter_", ["mine", "due", "attention"])
def test_patient_list_query_count_is_flat_in_page_size(
    client, login, care_team, treating_clinician, filter_
):
    anc = anc_test()
    regimens = [regimen_with_anc_rules(anc=anc) for _ in range(3)]

    def add(n, offset):
        for i in range(n):
            p = _patient(care_team, family_name=f"Q{offset + i:03d}", mrn=f"Q-{offset + i:04d}")
            course_with_cycles(
                p,
                regimen=regimens[i % 3],
                given=1,
                total=4,
                start=timezone.localdate() - dt.timedelta(days=14),
            )
            lab_history(p, test=anc, count=3, latest_value="1.2")

    login(client, treating_clinician)
    add(2, 0)
    _count(client, {"filter": filter_})  # warm caches
    few = _count(client, {"filter": filter_})
    add(28, 2)  # a full page of 25, on three regimens
    many = _count(client, {"filter": filter_})
    assert few == many
    # 2 of these are the session's (load session and user; clicks within 30 s do not rewrite
    # it), 1 the day unit's own closure days (read once for every next-cycle date marked,
    # treatments.schedule), 2 the list's access-log row and its index of the patients shown
    # (audit.AccessLogPatient). "Mine" reads only the care team, so it skips the other
    # filters' break-glass check.
    assert many == {"mine": 10, "due": 11, "attention": 14}[filter_]


def test_patient_list_table_refreshes_itself_from_the_live_stream(
    client, treating_clinician, patient
):
    from django.urls import reverse

    client.force_login(treating_clinician)
    page = client.get(reverse("patients:patient_list"), {"filter": "attention"}).content.decode()
    assert 'sse-connect="/stream/changes/"' in page
    assert 'hx-trigger="sse:change"' in page
    assert "X-OncoPlanner-Background" in page


def test_patient_list_shows_no_readiness_for_a_course_with_nothing_left_to_give(
    client, treating_clinician, patient
):
    import datetime as dt

    from django.urls import reverse

    from treatments.models import ChemoCycle, Course, Regimen

    regimen = Regimen.objects.get(name="mFOLFOX6", version=1)
    course = Course.objects.create(
        patient=patient,
        regimen=regimen,
        start_date=dt.date(2026, 1, 5),
        intent="adjuvant",
        status=Course.Status.ACTIVE,
        created_by=treating_clinician,
    )
    ChemoCycle.objects.create(
        course=course,
        phase=regimen.phases.get(),
        number=1,
        planned_start=dt.date(2026, 1, 5),
        actual_start=dt.date(2026, 1, 5),
        status=ChemoCycle.Status.GIVEN,
    )
    client.force_login(treating_clinician)
    page = client.get(reverse("patients:patient_list")).content.decode()
    assert patient.mrn in page
    assert "Not evaluable" not in page


# --- Two open courses: each one's readiness on the list ---------------------------------------
# On a Wednesday, so "tomorrow" is always this week and never a weekend.
WEDNESDAY = dt.datetime(2026, 3, 18, 12, 0, tzinfo=dt.UTC)


def _lenient_regimen(*, anc):
    """ANC >= 0.5 treat, below it hold (results at most 3 days old): 1.2 is Treat here, while
    regimen_with_anc_rules says Delay 7 days."""
    regimen = regimen_create(name="Weekly lenient (test)", approved=False)
    PreCycleRuleFactory.create(
        regimen=regimen, test=anc, comparator=">=", value=Decimal("0.5"), priority=1
    )
    PreCycleRuleFactory.create(
        regimen=regimen,
        test=anc,
        comparator="<",
        value=Decimal("0.5"),
        priority=2,
        action=PreCycleAction.HOLD,
    )
    return regimen_approved(regimen)


def _two_courses(patient, *, first, second, second_in_days):
    """`first`: cycle 2 due today; `second`: cycle 1 due in `second_in_days` days."""
    today = timezone.localdate()
    main = course_with_cycles(
        patient, regimen=first, given=1, total=4, start=today - dt.timedelta(days=14)
    )
    other = course_with_cycles(
        patient,
        regimen=second,
        given=0,
        total=4,
        start=today + dt.timedelta(days=second_in_days),
    )
    return main, other


def _other_course_line(html, regimen):
    start = html.index(f"Also open: {regimen.name}")
    return html[start : html.index("</div>", start)]


@time_machine.travel(WEDNESDAY, tick=False)
def test_patient_list_shows_the_readiness_of_each_open_course(
    client, login, care_team, treating_clinician
):
    anc = anc_test()
    strict, lenient = regimen_with_anc_rules(anc=anc), _lenient_regimen(anc=anc)
    patient = _patient(care_team, family_name="Twocourses", mrn="TWO-1")
    main, other = _two_courses(patient, first=strict, second=lenient, second_in_days=1)
    lab_history(patient, test=anc, count=1, latest_value="1.2")
    login(client, treating_clinician)

    response = client.get(URL)
    (row,) = response.context["listing"].rows
    assert (row.course.pk, row.badge.label) == (main.pk, "Delay 7 days")
    # The second course is judged on its own regimen for its own day, not given the first's.
    assert [(line.course.pk, line.badge.label) for line in row.others] == [(other.pk, "Treat")]
    html = response.content.decode()
    line = _other_course_line(html, lenient)
    assert "next cycle 1/4 Thu 19 Mar 2026" in line
    assert '<span class="badge ok" title="OK to treat at the planned dose.">Treat</span>' in line
    assert (
        '<span class="badge warn" title="Delay the cycle by 7 days and repeat the labs.">' in html
    )
    # The list agrees with the dashboard's readiness of every open course.
    board = client.get(reverse("patients:patient_detail", args=[patient.pk])).context["board"]
    assert board.badge.label == row.badge.label
    assert [(r.course.pk, r.badge.label) for r in board.other_readiness] == [(other.pk, "Treat")]
    # The live table (htmx refresh of the rows) renders the same line.
    live = client.get(URL, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in live
    assert _other_course_line(live, lenient) == line


@time_machine.travel(WEDNESDAY, tick=False)
def test_patient_list_other_course_with_nothing_left_to_give_has_no_badge(
    client, login, care_team, treating_clinician
):
    anc = anc_test()
    patient = _patient(care_team, family_name="Finished", mrn="DONE-1")
    course_with_cycles(patient, regimen=regimen_with_anc_rules(anc=anc), given=1, total=4)
    done = _lenient_regimen(anc=anc)
    course_with_cycles(patient, regimen=done, given=2, total=2)
    login(client, treating_clinician)
    response = client.get(URL)
    (row,) = response.context["listing"].rows
    assert [line.badge for line in row.others] == [None]
    assert _other_course_line(response.content.decode(), done) == (
        f"Also open: {done.name} · none open"
    )


@time_machine.travel(WEDNESDAY, tick=False)
def test_patient_list_attention_counts_a_second_course_that_is_not_ready(
    client, login, care_team, treating_clinician
):
    anc = anc_test()
    strict, lenient = regimen_with_anc_rules(anc=anc), _lenient_regimen(anc=anc)
    # The course due first is fine (ANC 1.2: Treat on its rules); the other, due tomorrow on
    # stricter rules, says Delay: the patient needs attention.
    second_not_ready = _patient(care_team, family_name="Secondly", mrn="SECOND-1")
    _two_courses(second_not_ready, first=lenient, second=strict, second_in_days=1)
    lab_history(second_not_ready, test=anc, count=1, latest_value="1.2")
    # Same courses, ANC 2.0 today, the other course's cycle in ten days: its bloods are simply
    # not drawn yet ("Labs due"), which is no reason to look at the chart.
    labs_due = _patient(care_team, family_name="Labsdue", mrn="LABSDUE-1")
    _two_courses(labs_due, first=lenient, second=strict, second_in_days=10)
    lab_history(labs_due, test=anc, count=1, latest_value="2.0")
    login(client, treating_clinician)

    rows = client.get(URL, {"filter": "attention"}).context["listing"].rows
    assert [row.patient.mrn for row in rows] == ["SECOND-1"]
    assert rows[0].badge.label == "Treat"
    assert [line.badge.label for line in rows[0].others] == ["Delay 7 days"]
    everyone = {r.patient.mrn: r for r in client.get(URL).context["listing"].rows}
    assert [line.badge.label for line in everyone["LABSDUE-1"].others] == ["Labs due"]


@pytest.mark.parametrize("filter_", ["mine", "due", "attention"])
@time_machine.travel(WEDNESDAY, tick=False)
def test_patient_list_hides_an_outsiders_two_course_patient(
    client, login, care_team, treating_clinician, filter_
):
    anc = anc_test()
    strict, lenient = regimen_with_anc_rules(anc=anc), _lenient_regimen(anc=anc)
    foreign = _patient(care_team_create(name="Haematology"), family_name="Foreign", mrn="FOR-2")
    _two_courses(foreign, first=lenient, second=strict, second_in_days=1)
    lab_history(foreign, test=anc, count=1, latest_value="1.2")  # second course: Delay
    mine = _patient(care_team, family_name="Mine", mrn="MINE-2")
    _two_courses(mine, first=lenient, second=strict, second_in_days=1)
    lab_history(mine, test=anc, count=1, latest_value="1.2")
    login(client, treating_clinician)
    response = client.get(URL, {"filter": filter_})
    assert [row.patient.mrn for row in response.context["listing"].rows] == ["MINE-2"]
    assert "FOR-2" not in response.content.decode()


@pytest.mark.parametrize("filter_", ["mine", "due", "attention"])
def test_patient_list_query_count_is_flat_with_two_open_courses_per_patient(
    client, login, care_team, treating_clinician, filter_
):
    anc = anc_test()
    regimens = [regimen_with_anc_rules(anc=anc) for _ in range(3)] + [_lenient_regimen(anc=anc)]

    def add(n, offset):
        for i in range(n):
            p = _patient(care_team, family_name=f"Q{offset + i:03d}", mrn=f"Q-{offset + i:04d}")
            _two_courses(p, first=regimens[i % 3], second=regimens[3], second_in_days=1 + i % 5)
            lab_history(p, test=anc, count=3, latest_value="1.2")

    login(client, treating_clinician)
    add(2, 0)
    _count(client, {"filter": filter_})  # warm caches
    few = _count(client, {"filter": filter_})
    add(28, 2)  # a full page of 25 two-course patients, on four regimens
    response = client.get(URL, {"filter": filter_})
    assert len(response.context["listing"].rows) == 25
    assert all(
        len(row.others) == 1 and row.others[0].badge for row in response.context["listing"].rows
    )
    many = _count(client, {"filter": filter_})
    assert few == many
    # The same as with one course each (test_patient_list_query_count_is_flat_in_page_size):
    # every course of every row is judged in the one evaluation the page already made.
    assert many == {"mine": 10, "due": 11, "attention": 14}[filter_]
