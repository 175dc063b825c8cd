"""What closes the day unit on a cycle's planned day 1, beside the words: REST closed_day_kind
and GraphQL closedDayKind say whether closed_day is the unit's own closure, a public holiday or
a weekend, so that a mobile app can style a certain closure apart from a usual one, without
parsing a holiday's name or a staff reason. The patient's /me/cycles stays as it was."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import UserFactory
from oncoplanner.graphql_schema import schema
from treatments.models import Course, Regimen, UnitClosure
from treatments.services import course_start, cycle_delay

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_1_march_2026")]

# mFOLFOX6 fortnightly from Friday 2 Oct 2026: cycle 3 on Fri 30 Oct (the unit's training
# day here), cycle 7 on Fri 25 Dec 2026 (Christmas Day), cycle 12 on Fri 5 Mar 2027, delayed
# here by a day onto Saturday 6 Mar 2027.
OCTOBER_FRIDAY = dt.date(2026, 10, 2)
TRAINING = "Staff training day"
EXPECTED = {
    3: (TRAINING, "unit_closure"),
    7: ("Christmas Day", "public_holiday"),
    12: ("weekend", "weekend"),
}
API = "/api/v1"
CYCLES_QUERY = (
    "query($id: ID!) { patient(id: $id) { courses { cycles { number closedDay closedDayKind } } } }"
)
# The cycle list's queries (session, user, gate, course, count, page, closures, access log…):
# the kind is worked out from the closure already looked up, so it adds none.
CYCLE_LIST_QUERIES = 10


@pytest.fixture(autouse=True)
def _english_holidays(settings) -> None:
    settings.CLINIC_HOLIDAYS = "GB-ENG"


@pytest.fixture
def course(treating_clinician, measured) -> Course:
    course = course_start(
        patient=measured,
        regimen=Regimen.objects.get(name="mFOLFOX6", version=1),
        start_date=OCTOBER_FRIDAY,
        intent="adjuvant",
        created_by=treating_clinician,
    )
    cycle_delay(
        cycle=course.cycles.get(number=12), days=1, reason="Pump service", by=treating_clinician
    )
    training_day = dt.date(2026, 10, 30)
    closure = UnitClosure(first_day=training_day, last_day=training_day, reason=TRAINING)
    closure.full_clean()
    closure.save()
    return course


def _list_url(course: Course) -> str:
    return f"{API}/patients/{course.patient_id}/courses/{course.pk}/cycles?limit=20"


def _graphql(client, patient_id: int, query: str = CYCLES_QUERY) -> dict:
    response = client.post(
        "/graphql/",
        {"query": query, "variables": {"id": patient_id}},
        content_type="application/json",
    )
    assert response.status_code == 200
    return response.json()


def _expected(graphql: bool = False) -> dict[int, tuple[str, str | None]]:
    rows = {}
    for number in range(1, 13):
        why, kind = EXPECTED.get(number, ("", None))
        rows[number] = (why, kind.upper() if graphql and kind else kind)
    return rows


# --- REST -------------------------------------------------------------------------------------


def test_rest_names_the_kind_of_each_closed_day_beside_its_words(
    client, login, treating_clinician, course
):
    login(client, treating_clinician)

    response = client.get(_list_url(course))

    assert response.status_code == 200
    rows = {c["number"]: (c["closed_day"], c["closed_day_kind"]) for c in response.json()["items"]}
    assert rows == _expected()  # an open day: "" and null


def test_rest_cycle_detail_and_a_delay_answer_with_the_kind_of_the_new_day(
    client, login, treating_clinician, course
):
    login(client, treating_clinician)
    cycle_7 = course.cycles.get(number=7)
    detail = client.get(f"{API}/patients/{course.patient_id}/cycles/{cycle_7.pk}").json()
    assert (detail["closed_day"], detail["closed_day_kind"]) == ("Christmas Day", "public_holiday")

    # The delay's answer is the moved cycle: the kind of its new day, not of the old one.
    cycle_11 = course.cycles.get(number=11)  # Fri 19 Feb 2027 -> Sat 20 Feb 2027
    assert (
        client.get(f"{API}/patients/{course.patient_id}/cycles/{cycle_11.pk}").json()[
            "closed_day_kind"
        ]
        is None
    )
    delayed = client.post(
        f"{API}/patients/{course.patient_id}/cycles/{cycle_11.pk}/delay",
        {"days": 1, "reason": "Patient away", "seen_version": cycle_11.version},
        content_type="application/json",
    )
    assert delayed.status_code == 200, delayed.json()
    body = delayed.json()
    assert (body["planned_start"], body["closed_day"], body["closed_day_kind"]) == (
        "2027-02-20",
        "weekend",
        "weekend",
    )


def test_openapi_lists_the_kinds_and_null(client, login, treating_clinician):
    login(client, treating_clinician)
    components = client.get(f"{API}/openapi.json").json()["components"]["schemas"]

    for name in ("CycleOut", "CycleDetailOut"):
        field = components[name]["properties"]["closed_day_kind"]
        assert field["anyOf"] == [
            {"enum": ["unit_closure", "public_holiday", "weekend"], "type": "string"},
            {"type": "null"},
        ]
        assert "unit_closure" in field["description"]
        assert "closed_day_kind" in components[name]["required"]
    assert "closed_day" in components["CycleOut"]["properties"]  # unchanged beside it


def test_the_patient_portal_gets_no_kind_and_no_reason(client, treating_clinician, course):
    user = UserFactory.create(role=User.Role.PATIENT)
    patient = course.patient
    patient.portal_user = user
    patient.save(update_fields=["portal_user"])
    client.force_login(user)

    response = client.get(f"{API}/me/cycles?limit=20")

    assert response.status_code == 200
    rows = {row["number"]: row for row in response.json()["items"]}
    assert not {"closed_day", "closed_day_kind"} & set(rows[3])
    assert (rows[3]["unit_closed"], rows[7]["public_holiday"]) == (True, "Christmas Day")
    assert TRAINING not in response.content.decode()


# --- GraphQL ----------------------------------------------------------------------------------


def test_graphql_names_the_kind_of_each_closed_day_as_an_enum(
    client, login, treating_clinician, course
):
    login(client, treating_clinician)

    body = _graphql(client, course.patient_id)

    assert "errors" not in body, body
    (graphql_course,) = body["data"]["patient"]["courses"]
    rows = {c["number"]: (c["closedDay"], c["closedDayKind"]) for c in graphql_course["cycles"]}
    assert rows == _expected(graphql=True)


def test_graphql_schema_has_a_nullable_closed_day_kind_enum():
    sdl = str(schema)
    assert "  closedDayKind: ClosedDayKind\n" in sdl  # no "!": null on an open day
    assert "  closedDay: String!\n" in sdl
    assert "enum ClosedDayKind {\n  UNIT_CLOSURE\n  PUBLIC_HOLIDAY\n  WEEKEND\n}" in sdl


# --- An outsider ------------------------------------------------------------------------------


def test_an_outsider_gets_404_and_not_found(client, login, other_clinician, course):
    login(client, other_clinician)
    cycle_3 = course.cycles.get(number=3)

    assert client.get(_list_url(course)).status_code == 404
    detail = client.get(f"{API}/patients/{course.patient_id}/cycles/{cycle_3.pk}")
    assert detail.status_code == 404
    assert TRAINING not in detail.content.decode()

    body = _graphql(client, course.patient_id)
    assert body["data"] == {"patient": None}
    assert [e["message"] for e in body["errors"]] == ["not found"]


# --- No more queries ---------------------------------------------------


def test_the_cycle_list_query_count_is_pinned(client, login, treating_clinician, course):
    login(client, treating_clinician)

    def count(url_or_query: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            if url_or_query.startswith("/"):
                assert client.get(url_or_query).status_code == 200
            else:
                assert "errors" not in _graphql(client, course.patient_id, url_or_query)
        return len(ctx.captured_queries)

    count(_list_url(course))  # warm per-process caches
    assert count(_list_url(course)) == CYCLE_LIST_QUERIES

    words_only = CYCLES_QUERY.replace(" closedDayKind", "")
    assert count(CYCLES_QUERY) == count(words_only)
