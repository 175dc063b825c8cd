"""Starting a course asks every confirmation at once, on every door.

A reviewer started CHOP for a patient with a vincristine allergy, beside an active dose-dense
AC-T, past the doxorubicin lifetime limit: three submits, each showing one warning and hiding
the next. course_start now looks for every warning first and refuses once with all of them
(each under its field, each naming its flag), writing nothing; the page shows every tick at
once, REST one error item per warning, GraphQL every flag.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oncoplanner.accounts.api_tokens import api_token_create
from oncoplanner.confirmation import ConfirmationRequired, ConfirmationsRequired
from oncoplanner.graphql_gate import InputError
from oncoplanner.graphql_schema import _Services
from patients.services import allergy_record
from treatments.models import ChemoCycle, Course, Regimen, RegimenDrug
from treatments.services import AllergyToConfirm, course_start

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_20_march_2026")]

HX = {"HX-Request": "true"}
REASON = "Lymphoma on staging; AC-T stops this week; vincristine desensitisation agreed"
THREE = ["confirm_allergy", "confirm_concurrent_course", "confirm_lifetime_limit"]
ALL_TICKED = {
    "confirm_allergy": True,
    "confirm_concurrent_course": True,
    "confirm_lifetime_limit": True,
    "confirm_reason": REASON,
}
ALLERGY = "Recorded allergy: Vincristine (moderate: neuropathy)"
CONCURRENT = "already has an open course: Dose-dense AC-T v1 (active, from 16 Mar 2026)"
LIFETIME = "540 mg/m², above the lifetime limit of 450 mg/m²"


@pytest.fixture
def chop(db: None) -> Regimen:
    return Regimen.objects.get(name="CHOP", version=1)


@pytest.fixture
def three_warnings(measured, treating_clinician, chop) -> Course:
    """An active AC-T (doxorubicin 240 mg/m² planned) and a vincristine allergy: CHOP (another
    300 mg/m²) is then an allergy, a concurrent course and a lifetime-limit breach at once."""
    vincristine = RegimenDrug.objects.get(phase__regimen=chop, drug__name__iexact="vincristine")
    allergy_record(
        patient=measured,
        substance="Vincristine",
        drug=vincristine.drug,
        reaction="neuropathy",
        severity="moderate",
        recorded_by=treating_clinician,
    )
    return course_start(
        patient=measured,
        regimen=Regimen.objects.get(name="Dose-dense AC-T", version=1),
        start_date=dt.date(2026, 3, 16),
        intent="adjuvant",
        created_by=treating_clinician,
    )


def _start_chop(patient, by, chop, start=dt.date(2026, 3, 18), **confirms) -> Course:
    return course_start(
        patient=patient,
        regimen=chop,
        start_date=start,
        intent="curative",
        created_by=by,
        **confirms,
    )


def _nothing_written(first: Course) -> bool:
    return list(Course.objects.all()) == [first] and set(
        ChemoCycle.objects.values_list("course_id", flat=True)
    ) == {first.pk}


# --- The service ---------------------------------------------------------------------------


def test_allergy_concurrent_course_and_lifetime_limit_are_refused_once_together(
    three_warnings, measured, treating_clinician, chop
):
    with pytest.raises(ConfirmationsRequired) as refused:
        _start_chop(measured, treating_clinician, chop)
    error = refused.value
    assert error.confirm_withs == THREE
    assert error.confirm_with == "confirm_allergy"  # the first, for single-flag readers
    assert [c.field for c in error.confirmations] == ["regimen"] * 3
    allergy, concurrent, lifetime = (c.message for c in error.confirmations)
    assert ALLERGY in allergy
    assert CONCURRENT in concurrent
    assert LIFETIME in lifetime
    assert error.message_dict == {"regimen": [allergy, concurrent, lifetime]}
    assert _nothing_written(three_warnings)


def test_all_three_ticked_with_a_reason_start_the_course_and_keep_every_warning(
    three_warnings, measured, treating_clinician, chop
):
    course = _start_chop(measured, treating_clinician, chop, **ALL_TICKED)
    assert course.cycles.count() == 6
    allergy, concurrent, reason, lifetime = course.confirmed_warnings
    assert ALLERGY in allergy
    assert CONCURRENT in concurrent
    assert reason == f"Reason given: {REASON}"
    assert LIFETIME in lifetime


def test_a_confirmation_already_ticked_is_not_asked_again(
    three_warnings, measured, treating_clinician, chop
):
    with pytest.raises(ConfirmationsRequired) as refused:
        _start_chop(measured, treating_clinician, chop, confirm_allergy=True, confirm_reason=REASON)
    assert refused.value.confirm_withs == ["confirm_concurrent_course", "confirm_lifetime_limit"]
    # One left: raised as itself, as every single confirmation is.
    with pytest.raises(ConfirmationRequired) as refused:
        _start_chop(
            measured,
            treating_clinician,
            chop,
            confirm_allergy=True,
            confirm_concurrent_course=True,
            confirm_reason=REASON,
        )
    assert type(refused.value).__name__ == "LifetimeLimitToConfirm"
    assert _nothing_written(three_warnings)


def test_a_ticked_box_without_its_reason_is_its_own_error_beside_the_warnings_still_asked(
    three_warnings, measured, treating_clinician, chop
):
    with pytest.raises(ConfirmationsRequired) as refused:
        _start_chop(measured, treating_clinician, chop, confirm_allergy=True, confirm_reason="ok")
    error = refused.value
    assert error.confirm_withs == ["confirm_concurrent_course", "confirm_lifetime_limit"]
    assert "Say in your own words why" in error.message_dict["confirm_reason"][0]
    assert "confirm_reason" not in {c.field for c in error.confirmations}  # no flag accepts it
    # Nothing else to confirm: the missing reason alone, a plain refusal as before.
    with pytest.raises(ValidationError) as refused:
        _start_chop(measured, treating_clinician, chop, **{**ALL_TICKED, "confirm_reason": ""})
    assert not isinstance(refused.value, ConfirmationRequired)
    assert list(refused.value.message_dict) == ["confirm_reason"]
    assert _nothing_written(three_warnings)


def test_a_long_past_start_is_asked_under_start_date_with_the_others(
    three_warnings, measured, treating_clinician, chop
):
    with pytest.raises(ConfirmationsRequired) as refused:
        _start_chop(measured, treating_clinician, chop, start=dt.date(2025, 3, 18))
    error = refused.value
    assert error.confirm_withs == ["confirm_past_start", *THREE]
    assert "18 Mar 2025 is 367 days ago" in error.message_dict["start_date"][0]
    assert len(error.message_dict["regimen"]) == 3
    course = _start_chop(
        measured,
        treating_clinician,
        chop,
        start=dt.date(2025, 3, 18),
        confirm_past_start=True,
        **ALL_TICKED,
    )
    assert course.start_date == dt.date(2025, 3, 18)
    # Going past it is part of the record, beside the other warnings confirmed.
    assert course.confirmed_warnings[0].startswith("18 Mar 2025 is 367 days ago")


@pytest.mark.parametrize(
    ("start", "regimen_name", "field", "words"),
    [
        (dt.date(2027, 6, 1), "CHOP", "start_date", "more than a year ahead"),
        (dt.date(2026, 3, 18), "Dose-dense AC-T", "regimen", "already has an open Dose-dense"),
    ],
)
def test_a_hard_refusal_comes_before_any_warning_is_asked(
    three_warnings, measured, treating_clinician, start, regimen_name, field, words
):
    with pytest.raises(ValidationError) as refused:
        _start_chop(
            measured,
            treating_clinician,
            Regimen.objects.get(name=regimen_name, version=1),
            start=start,
            **ALL_TICKED,
        )
    assert not isinstance(refused.value, ConfirmationRequired)
    assert words in refused.value.message_dict[field][0]
    assert _nothing_written(three_warnings)


def test_a_single_warning_is_still_raised_as_its_own_kind(
    measured, treating_clinician, chop, three_warnings
):
    with pytest.raises(AllergyToConfirm) as refused:
        _start_chop(
            measured,
            treating_clinician,
            chop,
            confirm_concurrent_course=True,
            confirm_lifetime_limit=True,
            confirm_reason=REASON,
        )
    assert refused.value.confirm_withs == ["confirm_allergy"]


# --- The page --------------------------------------------------------------------------------


def _page_url(patient) -> str:
    return reverse("treatments:course_create", args=[patient.pk])


def _box_with_its_warning(content: str, flag: str) -> str:
    """The text of the block holding `flag`'s checkbox (its warning and its label)."""
    match = re.search(
        rf'<div class="confirm-change">(?:(?!</div>).)*name="{flag}"(?:(?!</div>).)*</div>',
        content,
        re.S,
    )
    assert match, f"no checkbox for {flag}"
    return match.group(0)


def test_the_page_shows_every_tick_with_its_warning_after_one_submit(
    client, login, treating_clinician, three_warnings, measured, chop
):
    as_clinician = login(client, treating_clinician)
    data = {"regimen": chop.pk, "start_date": "2026-03-18", "intent": "curative"}
    asked = as_clinician.post(_page_url(measured), data, headers=HX)
    assert asked.status_code == 400
    content = asked.content.decode()
    assert ALLERGY in _box_with_its_warning(content, "confirm_allergy")
    assert CONCURRENT in _box_with_its_warning(content, "confirm_concurrent_course")
    assert LIFETIME in _box_with_its_warning(content, "confirm_lifetime_limit")
    assert 'name="confirm_reason"' in content  # asked with the allergy and the other course
    assert 'name="confirm_past_start"' not in content  # not needed: not asked
    assert _nothing_written(three_warnings)

    ticked = {**data, **dict.fromkeys(THREE, "on"), "confirm_reason": REASON}
    started = as_clinician.post(_page_url(measured), ticked)
    assert started.status_code == 302
    assert len(Course.objects.exclude(pk=three_warnings.pk).get().confirmed_warnings) == 4


def test_the_page_keeps_a_tick_given_and_asks_only_the_rest(
    client, login, treating_clinician, three_warnings, measured, chop
):
    as_clinician = login(client, treating_clinician)
    data = {"regimen": chop.pk, "start_date": "2026-03-18", "intent": "curative"}
    asked = as_clinician.post(_page_url(measured), {**data, "confirm_allergy": "on"}, headers=HX)
    assert asked.status_code == 400
    content = asked.content.decode()
    assert "Say in your own words why" in content  # the ticked allergy needs its reason
    allergy = _box_with_its_warning(content, "confirm_allergy")
    assert "checked" in allergy
    assert ALLERGY not in allergy  # answered: not asked again
    assert CONCURRENT in _box_with_its_warning(content, "confirm_concurrent_course")
    assert LIFETIME in _box_with_its_warning(content, "confirm_lifetime_limit")


# --- REST and GraphQL ------------------------------------------------------------------------


def _rest(user, patient, body) -> tuple[int, dict]:
    _, raw = api_token_create(
        user=user, name="test", expires_at=timezone.now() + dt.timedelta(days=7), created_by=user
    )
    response = Client(headers={"Authorization": f"Bearer {raw}"}).post(
        f"/api/v1/patients/{patient.pk}/courses",
        data=json.dumps(body),
        content_type="application/json",
    )
    return response.status_code, response.json()


def test_rest_answers_one_confirmation_item_per_warning(
    three_warnings, measured, treating_clinician, chop
):
    body = {"regimen_id": chop.pk, "start_date": "2026-03-18", "intent": "curative"}
    status, answer = _rest(treating_clinician, measured, body)
    assert status == 400
    items = answer["detail"]
    assert [(i["type"], i["confirm_with"]) for i in items] == [
        ("confirmation_required", flag) for flag in THREE
    ]
    assert [i["loc"] for i in items] == [["body", "regimen"]] * 3
    assert ALLERGY in items[0]["msg"]
    assert LIFETIME in items[2]["msg"]
    assert _nothing_written(three_warnings)

    # A tick without its reason: a plain error beside the two confirmations still asked.
    status, answer = _rest(treating_clinician, measured, {**body, "confirm_allergy": True})
    assert status == 400
    assert [(i["loc"][-1], i["type"], i.get("confirm_with")) for i in answer["detail"]] == [
        ("regimen", "confirmation_required", "confirm_concurrent_course"),
        ("regimen", "confirmation_required", "confirm_lifetime_limit"),
        ("confirm_reason", "value_error", None),
    ]

    status, answer = _rest(treating_clinician, measured, {**body, **ALL_TICKED})
    assert status == 201, answer
    assert len(answer["confirmed_warnings"]) == 4


def test_graphql_reports_every_flag_a_course_start_asks(
    three_warnings, measured, treating_clinician, chop
):
    # No GraphQL mutation starts a course yet: this is the door's translation of the refusal
    # (_Services.call, which every mutation goes through) applied to course_start's.
    with pytest.raises(InputError) as refused:
        _Services.call(lambda: _start_chop(measured, treating_clinician, chop))
    extensions = refused.value.extensions
    assert extensions["code"] == "CONFIRMATION_REQUIRED"
    assert extensions["confirmWith"] == "confirmAllergy"  # the first, as before
    assert extensions["confirmWithAll"] == [
        "confirmAllergy",
        "confirmConcurrentCourse",
        "confirmLifetimeLimit",
    ]
    assert [c["confirmWith"] for c in extensions["confirmations"]] == extensions["confirmWithAll"]
    assert LIFETIME in extensions["confirmations"][2]["message"]
    assert len(extensions["fields"]["regimen"]) == 3
    assert _nothing_written(three_warnings)
