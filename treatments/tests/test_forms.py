from __future__ import annotations

from decimal import Decimal

import pytest

from treatments.forms import CycleDelayForm, DoseModificationForm, SideEffectForm, grade_choices
from treatments.models import ChemoCycle, CtcaeTerm
from treatments.tests.factories import CourseFactory

pytestmark = pytest.mark.django_db


def test_grade_choices_offer_only_the_grades_the_term_has():
    nausea = CtcaeTerm.objects.get(term="Nausea")
    assert [g for g, _ in grade_choices(nausea)] == [1, 2, 3]
    assert grade_choices(nausea)[0][1] == "Loss of appetite without change in eating habits"


def test_side_effect_form_rejects_grade_the_term_lacks():
    nausea = CtcaeTerm.objects.get(term="Nausea")
    form = SideEffectForm(
        {"term": nausea.pk, "grade": "4", "onset": "2026-03-05"},
        cycles=ChemoCycle.objects.none(),
        term=nausea,
    )
    assert not form.is_valid()
    assert "no grade 4" in form.errors["grade"][0]


def test_side_effect_form_rejects_impossible_date():
    nausea = CtcaeTerm.objects.get(term="Nausea")
    form = SideEffectForm(
        {"term": nausea.pk, "grade": "2", "onset": "2026-02-30"},
        cycles=ChemoCycle.objects.none(),
        term=nausea,
    )
    assert not form.is_valid()
    assert "onset" in form.errors


def test_dose_modification_form_over_100_needs_override_reason():
    course = CourseFactory.create()
    form = DoseModificationForm(
        {"from_cycle_number": 1, "percent": "110", "reason": "Underdosed"}, course=course
    )
    assert not form.is_valid()
    assert "override_reason" in form.errors
    ok = DoseModificationForm(
        {
            "from_cycle_number": 1,
            "percent": "110",
            "reason": "Underdosed",
            "override_reason": "Weight gain 12 kg",
        },
        course=course,
    )
    assert ok.is_valid(), ok.errors
    assert ok.cleaned_data["percent"] == Decimal("110")


def test_cycle_delay_form_needs_days_or_new_date_not_both():
    assert "days" in CycleDelayForm({"reason": "ANC 1.2"}).errors
    both = CycleDelayForm({"reason": "ANC 1.2", "days": "7", "new_start": "2026-03-20"})
    assert "days" in both.errors
    assert CycleDelayForm({"reason": "ANC 1.2", "days": "7"}).is_valid()
