from __future__ import annotations

import pytest

from audit.models import AccessLog
from audit.selectors import (
    SORTS,
    access_log_for_patient,
    access_log_search,
    access_visits_for_patient,
)
from audit.services import access_log_record
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db
Action = AccessLog.Action


def _read(*patients, action=Action.READ) -> AccessLog:
    return access_log_record(action=action, patient_ids=[p.pk for p in patients])


def test_access_log_for_patient_lists_reads_and_lists_newest_first(patient):
    other = PatientFactory.create()
    read = _read(patient)
    listing = _read(other, patient, action=Action.LIST)
    _read(other)
    rows = access_log_for_patient(patient=patient, limit=10)
    assert rows[:2] == [listing, read]
    assert all(patient.pk in r.patient_ids for r in rows)
    assert other.pk not in {r.patient_id for r in rows}


def test_access_log_for_patient_respects_the_limit(patient):
    for _ in range(5):
        _read(patient)
    assert len(access_log_for_patient(patient=patient, limit=3)) == 3
    assert access_log_for_patient(patient=patient, limit=0) == []


def test_the_newest_rows_interleave_lone_reads_and_list_views(patient):
    # Read in two parts (rows about this patient alone, list views that showed it among
    # others) and merged: the newest `limit` of both together, newest first, nothing else.
    other = PatientFactory.create()
    written = []
    for n in range(12):
        if n % 3 == 0:
            written.append(_read(other, patient, action=Action.LIST))
        else:
            written.append(_read(patient))
        _read(other)  # never this patient's
    newest_five = sorted(written, key=lambda r: (r.at, r.pk), reverse=True)[:5]

    assert access_log_for_patient(patient=patient, limit=5) == newest_five
    everything = access_log_for_patient(patient=patient, limit=50)
    assert set(written) <= set(everything)  # and the fixture's own write of the patient
    shown = access_visits_for_patient(patient=patient, limit=50)
    assert sum(v.count for v in shown) == len(everything)
    assert shown[0].row.pk == newest_five[0].pk
    assert shown[0].row.get_action_display() == "Read"


def test_access_log_search_accepts_only_declared_sorts():
    assert set(SORTS) == {
        f"{d}{k}"
        for d in ("", "-")
        for k in ("at", "user", "patient", "action", "surface", "outcome")
    }
    with pytest.raises(KeyError):
        access_log_search(sort="detail")


def test_access_visits_collapse_back_to_back_rows_of_one_kind(patient):
    other = PatientFactory.create()
    first = _read(patient)
    for _ in range(3):
        _read(other, patient, action=Action.LIST)  # three list views in a row: one visit
    last = _read(patient)

    visits = access_visits_for_patient(patient=patient, limit=10)

    assert [(v.row.action, v.count) for v in visits[:3]] == [
        (Action.READ, 1),
        (Action.LIST, 3),
        (Action.READ, 1),
    ]
    assert visits[0].row == last
    assert visits[2].row == first
    assert visits[1].since <= visits[1].row.at


def test_access_visits_limit_counts_visits_not_rows(patient):
    for _ in range(4):
        _read(patient)
    _read(patient, action=Action.LIST)
    _read(patient)
    visits = access_visits_for_patient(patient=patient, limit=2)
    assert [(v.row.action, v.count) for v in visits] == [(Action.READ, 1), (Action.LIST, 1)]


def test_a_chart_view_and_its_live_stream_are_one_visit(patient):
    # A reviewer: "Who accessed this record" showed every chart view twice, Page then Live
    # stream, as the page opens its live-update stream a moment after it loads.
    def view() -> None:
        access_log_record(action=Action.READ, patient_ids=[patient.pk], surface="page")
        access_log_record(action=Action.READ, patient_ids=[patient.pk], surface="stream")

    view()
    view()
    lone_stream = access_log_record(action=Action.READ, patient_ids=[patient.pk], surface="stream")
    visits = access_visits_for_patient(patient=patient, limit=2)
    assert [(v.row.surface, v.count, v.live) for v in visits] == [
        ("stream", 1, False),  # a stream read on its own (a reconnect) stays listed
        ("page", 2, True),
    ]
    assert visits[0].row == lone_stream
