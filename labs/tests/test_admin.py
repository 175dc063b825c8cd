"""Reference ranges in admin: nonsense is a form error on its field, and nothing is saved.

A reviewer's finds on /admin/labs/referencerange/add/: age 60 to 18, a second range for the
same test, sex and ages, a blank source, platelets 150000-450000 for a test in x10³/µL, and
low above high answered with the raw "Constraint “range_low_le_high” is violated."
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from labs.models import LabTest, ReferenceRange

pytestmark = pytest.mark.django_db

ADD = "admin:labs_referencerange_add"
HB, PLT = "718-7", "777-3"


def _range(loinc: str = HB, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "test": LabTest.objects.get(loinc=loinc).pk,
        "sex": "female",
        "age_min": "65",
        "age_max": "120",
        "low": "11.5",
        "high": "15.0",
        "source": "St Elsewhere laboratory, 2026 ranges",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def admin_client(client, login, admin_user):
    login(client, admin_user)
    return client


def _form_errors(response) -> dict[str, list[str]]:
    assert response.status_code == 200  # re-rendered with its errors, not saved
    return response.context["adminform"].form.errors


def test_admin_adds_a_sound_range(admin_client):
    before = ReferenceRange.objects.count()
    response = admin_client.post(reverse(ADD), _range())
    assert response.status_code == 302
    assert ReferenceRange.objects.count() == before + 1


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"age_min": "60", "age_max": "18"},
            "age_max",
            "The age band ends (18) before it starts (60).",
        ),
        ({"source": ""}, "source", "Say where this range comes from: every threshold needs one."),
        ({"low": None, "high": None}, "low", "Give a low, a high or both."),
        # The shipped female hemoglobin range has no age band: a second one is an overlap.
        ({"age_min": None, "age_max": None}, "sex", "Overlaps the Hb range for female, any age"),
        (
            {"low": "0.5"},
            "low",
            "0.5 g/dL is below the lowest possible Hemoglobin value (1 g/dL); limits are in "
            "the test's unit, g/dL.",
        ),
    ],
)
def test_admin_refuses_a_nonsense_range_on_its_field(admin_client, changes, field, message):
    before = ReferenceRange.objects.count()
    errors = _form_errors(admin_client.post(reverse(ADD), _range(**changes)))
    assert any(message in error for error in errors[field]), errors
    assert ReferenceRange.objects.count() == before


def test_admin_refuses_platelets_per_ul_in_a_test_in_thousands(admin_client):
    errors = _form_errors(admin_client.post(reverse(ADD), _range(PLT, low="150000", high="450000")))
    assert errors["low"] == [
        "150000 ×10³/µL is above the highest possible Platelets value (5000 ×10³/µL); limits "
        "are in the test's unit, ×10³/µL."
    ]
    assert "450000 ×10³/µL is above the highest possible" in errors["high"][0]
    assert not ReferenceRange.objects.filter(test__loinc=PLT).exists()


def test_admin_refuses_a_negative_limit_or_a_normal_range_inside_the_critical_limits(
    admin_client,
):
    # A reviewer saved platelets -5 to 10 for men over 100, under a critical low of 20.
    errors = _form_errors(
        admin_client.post(reverse(ADD), _range(PLT, sex="male", age_min="100", low="-5", high="10"))
    )
    assert errors["low"] == ["A reference limit cannot be negative."]
    errors = _form_errors(
        admin_client.post(
            reverse(ADD), _range(PLT, sex="male", age_min="100", low="10", high="300")
        )
    )
    assert errors["low"][0].startswith("The normal range's low is at or below PLT's critical low")
    assert not ReferenceRange.objects.filter(test__loinc=PLT, age_min=100).exists()


def test_admin_says_low_above_high_in_words(admin_client):
    before = ReferenceRange.objects.count()
    response = admin_client.post(reverse(ADD), _range(low="15.0", high="11.5"))
    errors = _form_errors(response)
    assert errors["__all__"] == ["The range's low is above its high: swap them."]
    assert b"is violated" not in response.content
    assert ReferenceRange.objects.count() == before


def test_admin_refuses_overlapping_age_bands_but_takes_bands_that_meet(admin_client):
    assert admin_client.post(reverse(ADD), _range(age_min="18", age_max="64")).status_code == 302
    errors = _form_errors(admin_client.post(reverse(ADD), _range(age_min="60", age_max="80")))
    assert "Overlaps the Hb range for female, ages 18–64 (11.5–15 g/dL)" in errors["age_min"][0]
    # 65 and over meets 18-64 without overlapping; a male band is another range altogether.
    assert admin_client.post(reverse(ADD), _range(age_min="65", age_max=None)).status_code == 302
    assert admin_client.post(reverse(ADD), _range(sex="male", age_min="60")).status_code == 302


def test_admin_edits_a_range_without_it_overlapping_itself(admin_client):
    rng = ReferenceRange.objects.get(test__loinc=HB, sex="female")
    url = reverse("admin:labs_referencerange_change", args=[rng.pk])
    data = _range(age_min=None, age_max=None, low="12.1", high="15.5")
    assert admin_client.post(url, data).status_code == 302
    rng.refresh_from_db()
    assert rng.low == Decimal("12.1")


def test_admin_refuses_two_overlapping_rows_of_a_new_test(admin_client):
    data = {
        "loinc": "90001-0",
        "name": "Test analyte",
        "short_name": "TA",
        "unit": "g/dL",
        "ref_low": "1.0",
        "ref_high": "2.0",
        "range_source": "St Elsewhere laboratory",
        "critical_low_inclusive": "on",
        "critical_high_inclusive": "on",
        "decimal_places": "1",
        "max_plausible": "25",
        "ranges-TOTAL_FORMS": "2",
        "ranges-INITIAL_FORMS": "0",
        "ranges-MIN_NUM_FORMS": "0",
        "ranges-MAX_NUM_FORMS": "1000",
    }
    for index, (age_min, age_max) in enumerate([("18", "65"), ("60", "90")]):
        data |= {
            f"ranges-{index}-sex": "female",
            f"ranges-{index}-age_min": age_min,
            f"ranges-{index}-age_max": age_max,
            f"ranges-{index}-low": "1.0",
            f"ranges-{index}-high": "2.0",
            f"ranges-{index}-source": "St Elsewhere laboratory",
        }
    response = admin_client.post(reverse("admin:labs_labtest_add"), data)
    assert response.status_code == 200
    (formset,) = response.context["inline_admin_formsets"]
    assert (
        "Overlaps another row (Female, ages 18–65)" in formset.formset.forms[1].errors["age_min"][0]
    )
    assert not LabTest.objects.filter(loinc="90001-0").exists()


def test_admin_refuses_a_critical_limit_without_its_source(admin_client):
    wbc = LabTest.objects.get(loinc="6690-2")
    response = admin_client.get(reverse("admin:labs_labtest_change", args=[wbc.pk]))
    form = response.context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and not isinstance(value, bool)
    }
    data |= {"critical_source": "", "critical_high_inclusive": "on"}
    data |= {
        "ranges-TOTAL_FORMS": "0",
        "ranges-INITIAL_FORMS": "0",
        "ranges-MIN_NUM_FORMS": "0",
        "ranges-MAX_NUM_FORMS": "1000",
    }
    errors = _form_errors(
        admin_client.post(reverse("admin:labs_labtest_change", args=[wbc.pk]), data)
    )
    assert errors["critical_source"] == ["Say where the critical limits come from."]
    wbc.refresh_from_db()
    assert wbc.critical_source
