"""The access context: who acts, through which door; it must end with its request."""

from __future__ import annotations

import pytest

from audit.models import AccessLog
from audit.services import access_log_record
from oncoplanner import access_context

pytestmark = pytest.mark.django_db


def test_update_outside_any_context_does_not_stick_to_the_thread(treating_clinician):
    # A service that flags emergency access, called from a task or a shell with no context
    # opened, must not leave the flag (or a user) on the rows the thread writes afterwards.
    access_context.update(break_glass=True, user=treating_clinician)

    row = access_log_record(action=AccessLog.Action.READ, object_type="Patient", object_id=1)

    assert (row.break_glass, row.username) == (False, "")
    assert access_context._current.get() is None


def test_update_inside_a_context_lasts_until_it_ends(treating_clinician):
    with access_context.acting_as(treating_clinician, surface="page"):
        access_context.update(break_glass=True)
        inside = access_log_record(action=AccessLog.Action.READ, object_type="Patient", object_id=1)
    after = access_log_record(action=AccessLog.Action.READ, object_type="Patient", object_id=1)

    assert (inside.break_glass, inside.username) == (True, treating_clinician.username)
    assert (after.break_glass, after.username) == (False, "")
